//! Running totals over every connection seen: each connection's last counts are kept, and an
//! update hands back only what grew since the last one. Counters built on that never go down,
//! and the bytes of a connection the trace forgot (`--long-run`) stay counted.

use rustc_hash::{FxHashMap, FxHashSet};

use super::series::Candidate;
use crate::{
    analysis::summary::{
        Direction, EventKind, MptcpConnectionInfo, MptcpDirectionSummary, MptcpSummary,
        SubflowInfo, SubflowRole,
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
/// The per-connection byte series: all of `BYTE_KINDS`.
pub(super) const CONNECTION_KINDS: [(&str, &str); 5] = BYTE_KINDS;
/// The per-subflow byte series: `BYTE_KINDS` but acked (DATA_ACKs acknowledge the connection's
/// data, not a subflow's).
pub(super) const SUBFLOW_KINDS: [(&str, &str); 4] =
    [BYTE_KINDS[0], BYTE_KINDS[1], BYTE_KINDS[3], BYTE_KINDS[4]];
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
    /// MP_JOIN subflows that failed (`join_failed`).
    failed_joins: u64,
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
        let joins = || info.subflows.iter().filter(|s| s.role == SubflowRole::Join);
        seen.joined = joins().count() as u64;
        seen.failed_joins = joins().filter(|s| join_failed(s, summary)).count() as u64;
        for event in &summary.events {
            if let Some(index) = SIGNALS.iter().position(|(kind, _)| *kind == event.kind) {
                seen.signals[index] += 1;
            }
        }
        seen
    }
}

/// A join failed when its MP_JOIN SYN/ACK never came (refused with a plain RST, or
/// unanswered), or when it was reset (MP_TCPRST, as Linux refuses a join it cannot take after
/// the SYN/ACK) without having carried a byte either way.
fn join_failed(subflow: &SubflowInfo, summary: &MptcpSummary) -> bool {
    let stream = subflow.tcp_stream;
    let carried = summary
        .directions
        .iter()
        .flat_map(|direction| &direction.subflows)
        .any(|carried| carried.tcp_stream == stream && carried.wire_bytes > 0);
    let reset = summary
        .events
        .iter()
        .any(|event| event.kind == EventKind::MpTcprst && event.tcp_stream == stream);
    subflow.server_addr_id.is_none() || (reset && !carried)
}

/// A direction's counts in `BYTE_KINDS` order.
pub(super) fn byte_values(direction: &MptcpDirectionSummary) -> [u64; BYTE_KINDS.len()] {
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
    /// Join subflows that failed, counted when their connection closes (before, a join
    /// may still be waiting for its SYN/ACK).
    pub failed_joins: u64,
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
                growth.failed_joins += now.failed_joins;
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
