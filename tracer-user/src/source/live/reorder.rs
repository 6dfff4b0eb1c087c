//! Hands events on in time order. The classifiers queue events per CPU and each CPU's batch
//! reaches the ring buffer when it fills, ages, or the reader flushes it, so the batches of
//! different CPUs arrive in any order: a SYN can sit in one CPU's batch while the SYN-ACK
//! arrives in another's. The analysis needs them in the order they happened.
//!
//! The reader's flush ends each CPU's part of a round with a mark (see `mptcp_trc_flush`):
//! every event that CPU stamped before the mark is ahead of it in the ring. Once the marks of a
//! round have come from every CPU the round ran on, every event older than the oldest of them
//! has been read: those are sorted by time and handed on; the rest wait for a later round.

use std::{
    cmp::{Ordering, Reverse},
    collections::{BTreeMap, BinaryHeap},
};

use tracer_common::EventHeader;

/// Events held at most (about 40 MB of them): past this, the oldest are handed on without
/// waiting for a round (a CPU whose batch stayed busy round after round, or marks lost to a
/// full ring), at the risk of handing on an event before an older one still queued.
pub(super) const MAX_PENDING: usize = 1 << 18;

struct Pending {
    ktime_ns: u64,
    /// Arrival order, for events stamped the same nanosecond.
    seq: u64,
    header: EventHeader,
    data: Box<[u8]>,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Pending {}

impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Pending {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.ktime_ns, self.seq).cmp(&(other.ktime_ns, other.seq))
    }
}

#[derive(Default)]
pub(super) struct Reorder {
    /// Oldest first.
    pending: BinaryHeap<Reverse<Pending>>,
    seq: u64,
    /// Rounds whose marks are coming in: round → (CPUs that marked it, the oldest mark).
    rounds: BTreeMap<u64, (usize, u64)>,
    /// CPUs each round runs on.
    cpus: usize,
    /// The last round completed: a late mark of an earlier one changes nothing.
    completed: u64,
    /// Every event stamped up to this has been read.
    until: u64,
}

impl Reorder {
    /// Holds an event until a round says that no older one can still come.
    pub(super) fn push(&mut self, header: EventHeader, data: &[u8]) {
        self.seq += 1;
        self.pending.push(Reverse(Pending {
            ktime_ns: header.ktime_ns,
            seq: self.seq,
            header,
            data: data.into(),
        }));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.pending.len()
    }

    /// A round starts on `cpus` CPUs.
    pub(super) fn round_started(&mut self, cpus: usize) {
        self.cpus = cpus;
    }

    /// A CPU's mark of `round`: when it completes the round, every event stamped up to the
    /// round's oldest mark has been read and may be handed on.
    pub(super) fn mark(&mut self, round: u64, ktime_ns: u64) {
        if round <= self.completed {
            return;
        }
        let (marked, oldest) = self.rounds.entry(round).or_insert((0, u64::MAX));
        *marked += 1;
        *oldest = (*oldest).min(ktime_ns);
        if *marked < self.cpus {
            return;
        }
        self.until = self.until.max(*oldest);
        // This round and the ones before it (a CPU busy in those never marked them) are done.
        self.rounds = self.rounds.split_off(&(round + 1));
        self.completed = round;
    }

    /// Nothing more will be read: everything held may be handed on.
    pub(super) fn finish(&mut self) {
        self.until = u64::MAX;
    }

    /// Hands on, oldest first, at most `limit` of the events that may be handed on, and the
    /// oldest beyond `MAX_PENDING` whatever the rounds say. Returns whether such events are
    /// left, and whether the overflow valve opened.
    pub(super) fn hand_on(
        &mut self,
        limit: usize,
        mut sink: impl FnMut(&EventHeader, &[u8]),
    ) -> (bool, bool) {
        let mut overflowed = false;
        for _ in 0..limit {
            let Some(Reverse(oldest)) = self.pending.peek() else {
                return (false, overflowed);
            };
            let over = self.pending.len() > MAX_PENDING;
            if oldest.ktime_ns > self.until && !over {
                return (false, overflowed);
            }
            overflowed |= over;
            let Some(Reverse(event)) = self.pending.pop() else {
                break;
            };
            sink(&event.header, &event.data);
        }
        let more = self
            .pending
            .peek()
            .is_some_and(|Reverse(p)| p.ktime_ns <= self.until || self.pending.len() > MAX_PENDING);
        (more, overflowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(ktime_ns: u64) -> EventHeader {
        EventHeader {
            ktime_ns,
            ifindex: 1,
            skb_len: 60,
            cap_len: 1,
            direction: 0,
            flags: 0,
            gso_segs: 1,
            _pad: 0,
        }
    }

    fn handed(reorder: &mut Reorder, limit: usize) -> Vec<(u64, u8)> {
        let mut out = Vec::new();
        reorder.hand_on(limit, |h, data| out.push((h.ktime_ns, data[0])));
        out
    }

    #[test]
    fn a_round_hands_on_what_precedes_its_oldest_mark_in_time_order() {
        let mut reorder = Reorder::default();
        reorder.round_started(2);
        // CPU 1's batch (times 20, 40) arrives before CPU 0's (10, 30, 50).
        for (t, tag) in [(20, b'b'), (40, b'd'), (10, b'a'), (30, b'c'), (50, b'e')] {
            reorder.push(header(t), &[tag]);
        }
        reorder.mark(1, 45);
        assert_eq!(handed(&mut reorder, 100), [], "one CPU of two marked");
        reorder.mark(1, 35);
        assert_eq!(
            handed(&mut reorder, 100),
            [(10, b'a'), (20, b'b'), (30, b'c')]
        );
        assert_eq!(reorder.len(), 2);
        // An event stamped later but arriving now, and the next round.
        reorder.push(header(45), b"x");
        reorder.round_started(2);
        reorder.mark(2, 60);
        reorder.mark(2, 61);
        // At most `limit` at a time.
        assert_eq!(handed(&mut reorder, 2), [(40, b'd'), (45, b'x')]);
        assert_eq!(handed(&mut reorder, 2), [(50, b'e')]);
        assert_eq!(reorder.len(), 0);
    }

    #[test]
    fn a_round_a_cpu_never_marked_is_completed_by_a_later_one() {
        let mut reorder = Reorder::default();
        reorder.push(header(15), b"a");
        reorder.round_started(2);
        reorder.mark(1, 10);
        // The other CPU was busy in round 1; round 2 completes.
        reorder.mark(2, 20);
        reorder.mark(2, 25);
        // Round 1's late mark changes nothing.
        reorder.mark(1, 30);
        assert!(reorder.rounds.is_empty());
        assert_eq!(handed(&mut reorder, 10), [(15, b'a')]);
    }

    #[test]
    fn same_time_events_keep_their_arrival_order_and_finish_hands_on_all() {
        let mut reorder = Reorder::default();
        for tag in [b'a', b'b', b'c'] {
            reorder.push(header(7), &[tag]);
        }
        assert_eq!(handed(&mut reorder, 10), []);
        reorder.finish();
        assert_eq!(handed(&mut reorder, 10), [(7, b'a'), (7, b'b'), (7, b'c')]);
    }

    #[test]
    fn past_the_limit_the_oldest_go_without_a_round() {
        let mut reorder = Reorder::default();
        for t in 0..=MAX_PENDING as u64 {
            reorder.push(header(t), b"z");
        }
        let (more, overflowed) = reorder.hand_on(usize::MAX, |_, _| {});
        assert!(!more && overflowed);
        assert_eq!(reorder.len(), MAX_PENDING);
    }
}
