//! Running totals over every connection seen: each connection's last counts are kept, and an
//! update hands back only what grew since the last one. Counters built on that never go down,
//! and the bytes of a connection the trace forgot (`--long-run`) stay counted.

use rustc_hash::{FxHashMap, FxHashSet};

use super::series::Candidate;
use crate::{
    analysis::summary::{
        Direction, EventKind, MptcpConnectionInfo, MptcpDirectionSummary, MptcpSummary, SubflowRole,
    },
    live::{Ended, Snapshot, evict::EndReason},
};

/// The aggregate byte counters (name before `_bytes_total`, help), in `Seen::bytes` order.
pub(super) const BYTE_KINDS: [(&str, &str); 5] = [
    (
        "wire",
        "TCP payload over all subflows, retransmissions and reinjections included",
    ),
    ("unique", "Data-level bytes carried, each once"),
    ("acked", "Data-level bytes acknowledged by DATA_ACK"),
    (
        "reinjected",
        "Data-level bytes sent again on a subflow by the MPTCP layer",
    ),
    (
        "retransmitted",
        "Bytes TCP retransmitted on the same subflow",
    ),
];
/// The per-connection byte series: the first four of `BYTE_KINDS`.
pub(super) const CONNECTION_KINDS: [(&str, &str); 4] =
    [BYTE_KINDS[0], BYTE_KINDS[1], BYTE_KINDS[2], BYTE_KINDS[3]];
/// The signalling options counted, with their label values.
pub(super) const SIGNALS: [(EventKind, &str); 4] = [
    (EventKind::AddAddr, "add_addr"),
    (EventKind::RemoveAddr, "rm_addr"),
    (EventKind::MpPrio, "mp_prio"),
    (EventKind::MpFail, "mp_fail"),
];

/// Byte counts by kind (`BYTE_KINDS`), then direction (client to server first).
pub(super) type Bytes = [[u64; 2]; BYTE_KINDS.len()];

/// What one connection had counted at the last update.
#[derive(Clone, Copy, Default)]
struct Seen {
    bytes: Bytes,
    joined: u64,
    signals: [u64; SIGNALS.len()],
    closed: bool,
}

impl Seen {
    fn of(info: &MptcpConnectionInfo, summary: &MptcpSummary) -> Self {
        let mut seen = Seen::default();
        for direction in &summary.directions {
            let index = direction_index(direction.direction);
            for (kind, value) in byte_values(direction).into_iter().enumerate() {
                seen.bytes[kind][index] = value;
            }
        }
        seen.joined = info
            .subflows
            .iter()
            .filter(|s| s.role == SubflowRole::Join)
            .count() as u64;
        for event in &summary.events {
            if let Some(index) = SIGNALS.iter().position(|(kind, _)| *kind == event.kind) {
                seen.signals[index] += 1;
            }
        }
        seen
    }
}

fn byte_values(direction: &MptcpDirectionSummary) -> [u64; BYTE_KINDS.len()] {
    [
        direction.wire_bytes,
        direction.unique_bytes,
        direction.acked_bytes,
        direction.reinjected_bytes,
        direction.retransmitted_bytes,
    ]
}

fn direction_index(direction: Direction) -> usize {
    match direction {
        Direction::ClientToServer => 0,
        Direction::ServerToClient => 1,
    }
}

/// What grew since the last update, and the connections as the series need them.
#[derive(Default)]
pub(super) struct Growth {
    pub opened: u64,
    /// Connections that closed, by reason.
    pub closed: Vec<(EndReason, u64)>,
    pub joined: u64,
    pub bytes: Bytes,
    pub signals: [u64; SIGNALS.len()],
    pub subflows_open: u64,
    pub open: Vec<Candidate>,
    /// Connections seen closed for the first time, with their final counts.
    pub just_closed: Vec<Candidate>,
}

#[derive(Default)]
pub(super) struct Totals {
    seen: FxHashMap<u64, Seen>,
}

impl Totals {
    /// Follows every connection of `snapshot` and `ended`; forgets those in neither (their
    /// counts were added already). A connection closes once: as one of `snapshot.closed`
    /// (without `--long-run`, where closed connections stay in the state) or as an `ended`
    /// (with it), each with how it ended.
    pub fn update(&mut self, snapshot: &Snapshot, ended: &[Ended]) -> Growth {
        let mut growth = Growth::default();
        let open: FxHashSet<u64> = snapshot.open.iter().copied().collect();
        let closed: FxHashMap<u64, EndReason> = snapshot.closed.iter().copied().collect();
        let infos: FxHashMap<u64, &MptcpConnectionInfo> = snapshot
            .list
            .mptcp_connections
            .iter()
            .map(|info| (info.id, info))
            .collect();
        let mut present = FxHashSet::default();
        for summary in &snapshot.summaries {
            let Some(info) = infos.get(&summary.id) else {
                continue;
            };
            present.insert(summary.id);
            let is_open = open.contains(&summary.id);
            let closing = closed.get(&summary.id).copied();
            let newly_closed = self.add(&mut growth, info, summary, closing);
            if is_open {
                growth.subflows_open += info.subflows.len() as u64;
                growth.open.push(Candidate::of(info, summary));
            } else if newly_closed {
                growth.just_closed.push(Candidate::of(info, summary));
            }
        }
        for ended in ended {
            if let Ended::Mptcp {
                reason,
                connection,
                summary,
            } = ended
                && self.add(&mut growth, connection, summary, Some(*reason))
            {
                growth.just_closed.push(Candidate::of(connection, summary));
            }
        }
        self.seen.retain(|id, _| present.contains(id));
        growth
    }

    /// Adds what grew to `growth`; `closing` is how the connection ended, if it has. True if
    /// it closed now for the first time.
    fn add(
        &mut self,
        growth: &mut Growth,
        info: &MptcpConnectionInfo,
        summary: &MptcpSummary,
        closing: Option<EndReason>,
    ) -> bool {
        let seen = self.seen.entry(summary.id).or_insert_with(|| {
            growth.opened += 1;
            Seen::default()
        });
        let now = Seen::of(info, summary);
        for (kind, by_direction) in now.bytes.iter().enumerate() {
            for (direction, &value) in by_direction.iter().enumerate() {
                let last = &mut seen.bytes[kind][direction];
                growth.bytes[kind][direction] += grow(last, value);
            }
        }
        growth.joined += grow(&mut seen.joined, now.joined);
        for (index, &value) in now.signals.iter().enumerate() {
            growth.signals[index] += grow(&mut seen.signals[index], value);
        }
        match closing {
            Some(reason) if !seen.closed => {
                seen.closed = true;
                growth.closed.push((reason, 1));
                true
            }
            _ => false,
        }
    }
}

/// How much `value` is past `*last`, which becomes the larger of the two.
fn grow(last: &mut u64, value: u64) -> u64 {
    let growth = value.saturating_sub(*last);
    *last = (*last).max(value);
    growth
}
