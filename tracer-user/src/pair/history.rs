//! What a direction's data sequence space saw so far: for each DSN range, the first packet that
//! carried it and the earliest time any carrier of it reached the other capture point. The
//! reinjection listing and qualification ask it "who carried these bytes before?".
//!
//! Memory: one entry per distinct range boundary, pruned by age (`prune_before`): a range whose
//! last carrier was sent more than the window ago is forgotten, so a reinjection later than that
//! finds no original.

use std::collections::BTreeMap;

/// A packet that carried data: its TCP stream, frame number and time (ns since the epoch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Carrier {
    pub tcp_stream: u64,
    pub frame: u64,
    pub ts_ns: u64,
}

/// One earlier packet overlapping a range looked up, with the overlap `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Original {
    pub carrier: Carrier,
    pub start: u64,
    pub end: u64,
}

/// What `History::record` found about the range before recording the new carrier.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Earlier {
    /// The first copies of the bytes carried before, in DSN order, adjacent pieces of the same
    /// packet merged.
    pub originals: Vec<Original>,
    /// Bytes of the range carried before.
    pub seen_bytes: u64,
    /// Over the bytes carried before, the latest of their earliest arrivals: when the earlier
    /// copies had delivered all of them. `None` if some were never delivered by an earlier carrier
    /// (or when no arrival is tracked).
    pub delivered_ns: Option<u64>,
}

#[derive(Clone, Copy, Debug)]
struct Segment {
    end: u64,
    first: Carrier,
    earliest_arrival: Option<u64>,
    last_sent_ns: u64,
}

#[derive(Debug, Default)]
pub struct History {
    segments: BTreeMap<u64, Segment>,
}

impl History {
    pub fn new() -> Self {
        History::default()
    }

    /// Records that `carrier` carried `[start, end)` and arrived at `arrival` (receiver's clock;
    /// `None`: lost or not tracked), and returns what earlier copies of those bytes did. A
    /// range that wraps around 2^64 is not recorded.
    pub fn record(
        &mut self,
        start: u64,
        end: u64,
        carrier: Carrier,
        arrival: Option<u64>,
    ) -> Earlier {
        let mut earlier = Earlier::default();
        if end <= start {
            return earlier;
        }
        self.split_at(start);
        self.split_at(end);
        let mut cursor = start;
        let mut gaps = Vec::new();
        let mut all_delivered = true;
        let mut latest = 0;
        for (&s, segment) in self.segments.range_mut(start..end) {
            if s > cursor {
                gaps.push((cursor, s));
            }
            cursor = segment.end;
            earlier.seen_bytes += segment.end - s;
            match segment.earliest_arrival {
                Some(at) => latest = latest.max(at),
                None => all_delivered = false,
            }
            match earlier.originals.last_mut() {
                Some(last) if last.carrier == segment.first && last.end == s => {
                    last.end = segment.end;
                }
                _ => earlier.originals.push(Original {
                    carrier: segment.first,
                    start: s,
                    end: segment.end,
                }),
            }
            segment.earliest_arrival = min_arrival(segment.earliest_arrival, arrival);
            segment.last_sent_ns = segment.last_sent_ns.max(carrier.ts_ns);
        }
        if cursor < end {
            gaps.push((cursor, end));
        }
        earlier.delivered_ns = (earlier.seen_bytes > 0 && all_delivered).then_some(latest);
        for (s, e) in gaps {
            self.segments.insert(
                s,
                Segment {
                    end: e,
                    first: carrier,
                    earliest_arrival: arrival,
                    last_sent_ns: carrier.ts_ns,
                },
            );
        }
        earlier
    }

    /// Forgets the lowest ranges whose last carrier was sent before `ts_ns`, up to the first one
    /// still fresh (ranges are sent mostly in DSN order, so this keeps the map to about the
    /// window's worth of data).
    pub fn prune_before(&mut self, ts_ns: u64) {
        while let Some(entry) = self.segments.first_entry() {
            if entry.get().last_sent_ns >= ts_ns {
                return;
            }
            entry.remove();
        }
    }

    /// Splits the segment containing `at` (strictly inside it) in two.
    fn split_at(&mut self, at: u64) {
        let Some((&s, segment)) = self.segments.range_mut(..at).next_back() else {
            return;
        };
        if segment.end > at && s < at {
            let tail = Segment { ..*segment };
            segment.end = at;
            self.segments.insert(at, tail);
        }
    }
}

fn min_arrival(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn carrier(tcp_stream: u64, frame: u64) -> Carrier {
        Carrier {
            tcp_stream,
            frame,
            ts_ns: frame * 1000,
        }
    }

    /// Two originals of 100 bytes, one delivered at 50 and one lost, then a reinjection over
    /// both and beyond: both originals, 200 bytes seen, not all delivered; a second
    /// reinjection of the first 100 bytes sees them delivered at 50.
    #[test]
    fn originals_and_deliveries() {
        let mut h = History::new();
        assert_eq!(
            h.record(0, 100, carrier(0, 1), Some(50)),
            Earlier::default()
        );
        h.record(100, 200, carrier(0, 2), None);
        let e = h.record(50, 250, carrier(1, 3), Some(90));
        assert_eq!(
            e.originals,
            [
                Original {
                    carrier: carrier(0, 1),
                    start: 50,
                    end: 100
                },
                Original {
                    carrier: carrier(0, 2),
                    start: 100,
                    end: 200
                }
            ]
        );
        assert_eq!((e.seen_bytes, e.delivered_ns), (150, None));
        let e = h.record(0, 100, carrier(2, 4), Some(200));
        assert_eq!((e.seen_bytes, e.delivered_ns), (100, Some(50)));
        assert_eq!(e.originals.len(), 1);
        // 100..200 now has the reinjection's arrival 90 as its earliest.
        let e = h.record(100, 200, carrier(2, 5), None);
        assert_eq!(e.delivered_ns, Some(90));
        assert_eq!(e.originals[0].carrier, carrier(0, 2));
        // Pruning forgets the oldest ranges first.
        h.prune_before(4500);
        assert_eq!(h.record(0, 50, carrier(0, 9), None).seen_bytes, 0);
    }
}
