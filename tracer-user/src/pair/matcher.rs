//! The one matching of two captures' records: which packet seen at the sender's capture point
//! arrived when at the receiver's, or never did. `owd` and `reinjections` both read its
//! results; nothing else matches packets.
//!
//! # What is matched
//! Per subflow and direction, on what survives a snap length of 128 bytes, never on payload:
//! - the subflow sequence range `[relative_seq, relative_seq + payload_len)` (relative to the
//!   ISN, which NAT does not change);
//! - the TCP timestamps' TSval: when both the sent and the received record have one, they must
//!   be equal (GRO only merges segments of equal options, and a retransmission carries a new
//!   TSval, so this tells the copies of a segment apart);
//! - the IPv4 ID, only to break ties: without timestamps, a received piece goes first to a
//!   pending copy of exactly its range and IP ID;
//! - otherwise repeated copies of a range are matched in the order they were sent.
//!
//! TCP flags and DSS contents are not compared: GSO copies the first segment's options to
//! every piece and GRO keeps one piece's, so they would reject true matches, while the ranges
//! and TSvals already tell copies apart.
//!
//! # Ranges, not records
//! A TSO/GSO super-segment seen at the sender may arrive as several segments, and GRO may merge
//! several sent segments into one record at the receiver. So each received record is a piece of
//! sequence space that credits its bytes to the pending sent copies it overlaps (oldest first,
//! each byte to one copy only). A sent copy is **received** once pieces have covered every byte
//! of its range; its arrival time is that of the piece that completed the coverage (the latest
//! of them). A copy only partly covered when it is declared lost counts as lost.
//!
//! # Streaming and the loss horizon
//! Records of both captures are fed in one stream, ordered by their time since the connection's
//! first record in their own capture (normally its SYN): this alignment only paces the reading
//! and never enters a reported delay. A sent copy not yet covered waits; received pieces that
//! came before their sent copy (the alignment is approximate) wait too. A sent copy is declared
//! **lost** when the receiver's capture has moved past its (aligned) send time by the horizon:
//! `OwdOptions::horizon_s` if given, otherwise 10 s + 2 × the largest aligned delay seen so
//! far. Received pieces nobody claimed within the horizon are dropped and counted
//! (`unmatched_received`). Results are handed out per direction in the order the packets were
//! sent, as soon as they and every packet sent before them are resolved, so memory holds the
//! packets in flight between the two capture points — and, behind a lost packet, those sent
//! within one horizon after it (a shorter `horizon_s` bounds this).
//!
//! The alignment assumes both captures saw the connection's start. If one began much later
//! (more than the horizon), its records come too early or too late in the merged stream and
//! its arrivals wait in vain: packets are reported lost and arrivals unmatched.

use std::collections::{BTreeMap, HashMap, VecDeque};

use super::map::MptcpMatch;
use crate::analysis::{
    direction::Direction,
    record::{DataRange, PacketRecord},
};

/// Which capture a record comes from: the first (client side) or the second (server side).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Client,
    Server,
}

impl Side {
    fn index(self) -> usize {
        match self {
            Side::Client => 0,
            Side::Server => 1,
        }
    }

    /// The capture that sees a direction's data leave.
    fn sender_of(direction: Direction) -> Side {
        match direction {
            Direction::ClientToServer => Side::Client,
            Direction::ServerToClient => Side::Server,
        }
    }
}

fn dir_index(direction: Direction) -> usize {
    match direction {
        Direction::ClientToServer => 0,
        Direction::ServerToClient => 1,
    }
}

/// One data-carrying packet seen at its sender's capture point, and its fate.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct OwdPacket {
    pub direction: Direction,
    /// Frame number and time (ns since the epoch, the sender capture's clock) at the sender.
    pub frame: u64,
    pub sent_ns: u64,
    /// Time (ns since the epoch, the receiver capture's clock) the last piece completing its
    /// range arrived, and that piece's frame number; `None`: lost between the capture points.
    pub received_ns: Option<u64>,
    pub peer_frame: Option<u64>,
    /// `received - sent`, corrected by the clock offset (see `Matcher::new`).
    pub owd_ns: Option<i64>,
    /// The subflow: its TCP stream in the client capture and in the server capture.
    pub tcp_stream: u64,
    pub peer_tcp_stream: Option<u64>,
    /// Subflow sequence number relative to the ISN (`None` if unknown: never matched).
    pub seq: Option<u64>,
    pub len: u32,
    /// The data sequence range the analysis gave the payload (`None`: no mapping known).
    pub data: Option<DataRange>,
    /// Some of its bytes were sent before on this subflow (TCP or subflow-level
    /// retransmission), or at the data level on another subflow / under new subflow sequence
    /// numbers (reinjection); from the sender capture's records.
    pub retransmission: bool,
    pub reinjection: bool,
}

impl OwdPacket {
    pub fn sent_s(&self) -> f64 {
        ns_to_s(self.sent_ns)
    }

    pub fn received_s(&self) -> Option<f64> {
        self.received_ns.map(ns_to_s)
    }

    pub fn owd_s(&self) -> Option<f64> {
        self.owd_ns.map(|ns| ns as f64 / 1e9)
    }
}

pub(crate) fn ns_to_s(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// Sorted, disjoint byte ranges `[start, end)`; a handful at most.
type Ranges = Vec<(u64, u64)>;

/// Removes from both `a` and `b` the bytes they have in common; true if there were any.
fn take_common(a: &mut Ranges, b: &mut Ranges) -> bool {
    let mut common = Vec::new();
    for &(s1, e1) in a.iter() {
        for &(s2, e2) in b.iter() {
            let (s, e) = (s1.max(s2), e1.min(e2));
            if s < e {
                common.push((s, e));
            }
        }
    }
    for &(s, e) in &common {
        remove(a, s, e);
        remove(b, s, e);
    }
    !common.is_empty()
}

fn remove(ranges: &mut Ranges, s: u64, e: u64) {
    let mut kept = Vec::with_capacity(ranges.len() + 1);
    for &(rs, re) in ranges.iter() {
        if re <= s || rs >= e {
            kept.push((rs, re));
            continue;
        }
        if rs < s {
            kept.push((rs, s));
        }
        if re > e {
            kept.push((e, re));
        }
    }
    *ranges = kept;
}

/// A sent copy waiting for its pieces, or resolved and waiting for its turn to be handed out.
struct Sent {
    packet: OwdPacket,
    aligned_ns: i64,
    tsval: Option<u32>,
    ip_id: Option<u16>,
    uncovered: Ranges,
    resolved: bool,
}

/// A received record's bytes not yet credited to a sent copy.
struct Piece {
    remaining: Ranges,
    exact: (u64, u64),
    tsval: Option<u32>,
    ip_id: Option<u16>,
    ts_ns: u64,
    aligned_ns: i64,
    frame: u64,
}

/// Both captures' view of one subflow in one direction.
#[derive(Default)]
struct SubflowState {
    pending: Pending,
    arrived: VecDeque<Piece>,
}

/// The sent copies of a subflow not yet resolved, by the start of their sequence range, so
/// that a received piece looks only at the copies it may overlap, however many wait (a lost
/// packet waits for a whole horizon).
#[derive(Default)]
struct Pending {
    /// Range start → ids of the copies starting there, in send order.
    by_start: BTreeMap<u64, Vec<u64>>,
    /// The longest range inserted: a copy overlapping `[s, e)` starts after `s − longest`.
    longest: u64,
}

impl Pending {
    fn insert(&mut self, start: u64, len: u64, id: u64) {
        self.longest = self.longest.max(len);
        self.by_start.entry(start).or_default().push(id);
    }

    fn remove(&mut self, start: u64, id: u64) {
        if let Some(ids) = self.by_start.get_mut(&start) {
            ids.retain(|&i| i != id);
            if ids.is_empty() {
                self.by_start.remove(&start);
            }
        }
    }

    /// The copies whose range may overlap `[s, e)`, in send order.
    fn overlapping(&self, s: u64, e: u64) -> Vec<u64> {
        let from = s.saturating_sub(self.longest);
        let mut ids: Vec<u64> = self
            .by_start
            .range(from..e)
            .flat_map(|(_, ids)| ids.iter().copied())
            .collect();
        ids.sort_unstable();
        ids
    }
}

/// The sent copies of one direction in send order; the copy with id `base` is first.
#[derive(Default)]
struct Outbox {
    base: u64,
    entries: VecDeque<Sent>,
}

impl Outbox {
    fn get_mut(&mut self, id: u64) -> Option<&mut Sent> {
        let at = usize::try_from(id.checked_sub(self.base)?).ok()?;
        self.entries.get_mut(at)
    }
}

/// How long to wait for a packet before declaring it lost.
#[derive(Clone, Copy, Debug)]
struct Horizon {
    fixed_ns: Option<i64>,
    max_delay_ns: i64,
}

/// Added to twice the largest delay seen, when no horizon is given.
const HORIZON_BASE_NS: i64 = 10_000_000_000;

impl Horizon {
    fn ns(&self) -> i64 {
        self.fixed_ns
            .unwrap_or(HORIZON_BASE_NS.saturating_add(self.max_delay_ns.saturating_mul(2)))
    }
}

/// Matches the records of connection `id` of the client capture and `peer_id` of the server
/// capture, fed in one stream (see the module doc).
pub struct Matcher {
    offset_ns: i64,
    horizon: Horizon,
    /// Server capture stream → client capture stream, and back.
    to_client_stream: HashMap<u64, u64>,
    to_peer_stream: HashMap<u64, Option<u64>>,
    subflows: HashMap<(usize, u64), SubflowState>,
    outboxes: [Outbox; 2],
    /// Per side: the first record's time, and the aligned time of the latest record.
    first_ns: [Option<u64>; 2],
    clock_ns: [i64; 2],
    unmatched_received: HashMap<(usize, u64), u64>,
    /// Per side: data records on streams the mapping does not have.
    unmapped: [u64; 2],
}

impl Matcher {
    /// `offset_ns`: the server's clock minus the client's (0 when unknown), taken off every
    /// delay: client→server `owd = received − sent − offset`, server→client
    /// `owd = received − sent + offset`. `horizon_ns`: see the module doc.
    pub fn new(matched: &MptcpMatch, offset_ns: i64, horizon_ns: Option<i64>) -> Self {
        let mut to_client_stream = HashMap::new();
        let mut to_peer_stream = HashMap::new();
        for subflow in &matched.subflows {
            to_peer_stream.insert(subflow.tcp_stream, subflow.peer_tcp_stream);
            if let Some(peer) = subflow.peer_tcp_stream {
                to_client_stream.insert(peer, subflow.tcp_stream);
            }
        }
        Matcher {
            offset_ns,
            horizon: Horizon {
                fixed_ns: horizon_ns,
                max_delay_ns: 0,
            },
            to_client_stream,
            to_peer_stream,
            subflows: HashMap::new(),
            outboxes: [Outbox::default(), Outbox::default()],
            first_ns: [None, None],
            clock_ns: [0, 0],
            unmatched_received: HashMap::new(),
            unmapped: [0, 0],
        }
    }

    /// Data records of the client capture (`Side::Client`) or the server capture on streams
    /// the mapping does not have: neither matched nor reported.
    pub fn unmapped(&self, side: Side) -> u64 {
        self.unmapped[side.index()]
    }

    /// The time of a record of `side` since that side's first record (the first call for a
    /// side sets it): the order in which to feed records of both sides.
    pub fn aligned_ns(&mut self, side: Side, ts_ns: u64) -> i64 {
        let first = *self.first_ns[side.index()].get_or_insert(ts_ns);
        (i128::from(ts_ns) - i128::from(first)) as i64
    }

    /// The horizon in force now, in seconds.
    pub fn horizon_s(&self) -> f64 {
        self.horizon.ns() as f64 / 1e9
    }

    /// Received records of a subflow and direction that no sent copy claimed, per direction
    /// and client-capture TCP stream.
    pub fn unmatched_received(&self, direction: Direction, tcp_stream: u64) -> u64 {
        self.unmatched_received
            .get(&(dir_index(direction), tcp_stream))
            .copied()
            .unwrap_or(0)
    }

    /// Feeds one record of the connection (the caller keeps the connection's records only;
    /// records of streams `matched` does not map, and records without MPTCP, are ignored) and
    /// hands to `emit` the packets that became resolved, in send order per direction.
    pub fn feed(&mut self, side: Side, record: &PacketRecord, emit: &mut dyn FnMut(&OwdPacket)) {
        let Some(mptcp) = record.mptcp else {
            return;
        };
        let aligned = self.aligned_ns(side, record.ts_ns);
        self.clock_ns[side.index()] = self.clock_ns[side.index()].max(aligned);
        let stream = match side {
            Side::Client => {
                Some(u64::from(record.tcp_stream)).filter(|s| self.to_peer_stream.contains_key(s))
            }
            Side::Server => self
                .to_client_stream
                .get(&u64::from(record.tcp_stream))
                .copied(),
        };
        let data = record.payload_len > 0 && !record.keep_alive;
        if data && stream.is_none() {
            self.unmapped[side.index()] += 1;
        }
        if let Some(stream) = stream
            && data
        {
            let direction = mptcp.direction;
            if side == Side::sender_of(direction) {
                self.on_sent(direction, stream, record, aligned);
            } else {
                self.on_received(direction, stream, record, aligned);
            }
        }
        self.expire();
        self.drain(emit);
    }

    /// Both captures are read to the end: whatever is still waiting was lost.
    pub fn finish(&mut self, emit: &mut dyn FnMut(&OwdPacket)) {
        self.clock_ns = [i64::MAX, i64::MAX];
        self.expire();
        self.drain(emit);
        for (key, state) in self.subflows.drain() {
            // As `expire_pieces` counts them: pieces no sent copy took any byte of.
            let untouched = state.arrived.iter().filter(|p| p.remaining == [p.exact]);
            *self.unmatched_received.entry(key).or_default() += untouched.count() as u64;
        }
    }

    fn on_sent(&mut self, direction: Direction, stream: u64, record: &PacketRecord, aligned: i64) {
        let d = dir_index(direction);
        let mptcp = record.mptcp;
        let range = record
            .relative_seq
            .map(|s| (s, s.saturating_add(u64::from(record.payload_len))));
        let packet = OwdPacket {
            direction,
            frame: record.number,
            sent_ns: record.ts_ns,
            received_ns: None,
            peer_frame: None,
            owd_ns: None,
            tcp_stream: stream,
            peer_tcp_stream: self.to_peer_stream.get(&stream).copied().flatten(),
            seq: record.relative_seq,
            len: record.payload_len,
            data: mptcp.and_then(|m| m.data),
            retransmission: record.tcp_retransmitted_bytes > 0
                || mptcp.is_some_and(|m| m.retransmitted_bytes > 0),
            reinjection: mptcp
                .is_some_and(|m| m.reinjected_bytes + m.resolved_reinjected_bytes > 0),
        };
        let mut sent = Sent {
            packet,
            aligned_ns: aligned,
            tsval: record.timestamps.map(|t| t.tsval),
            ip_id: record.ip_id,
            uncovered: range.into_iter().collect(),
            resolved: false,
        };
        let horizon = self.horizon.ns();
        let clock = self.clock_ns[Side::sender_of(direction).index()];
        let state = self.subflows.entry((d, stream)).or_default();
        let mut last = None;
        for piece in &mut state.arrived {
            if compatible(sent.tsval, piece.tsval)
                && take_common(&mut sent.uncovered, &mut piece.remaining)
            {
                last = later(last, piece);
            }
        }
        let expired = expire_pieces(state, clock, horizon);
        *self.unmatched_received.entry((d, stream)).or_default() += expired;
        let outbox = &mut self.outboxes[d];
        let id = outbox.base + outbox.entries.len() as u64;
        if let (true, Some(arrival)) = (sent.uncovered.is_empty(), last) {
            resolve(&mut sent, arrival, self.offset_ns, &mut self.horizon);
        } else if let Some((start, end)) = range {
            state.pending.insert(start, end - start, id);
        }
        outbox.entries.push_back(sent);
    }

    fn on_received(
        &mut self,
        direction: Direction,
        stream: u64,
        record: &PacketRecord,
        aligned: i64,
    ) {
        let d = dir_index(direction);
        let Some(start) = record.relative_seq else {
            *self.unmatched_received.entry((d, stream)).or_default() += 1;
            return;
        };
        let exact = (start, start.saturating_add(u64::from(record.payload_len)));
        let mut piece = Piece {
            remaining: vec![exact],
            exact,
            tsval: record.timestamps.map(|t| t.tsval),
            ip_id: record.ip_id,
            ts_ns: record.ts_ns,
            aligned_ns: aligned,
            frame: record.number,
        };
        let state = self.subflows.entry((d, stream)).or_default();
        let outbox = &mut self.outboxes[d];
        let candidates = state.pending.overlapping(exact.0, exact.1);
        // Without timestamps, a copy of exactly this range and IP ID goes first.
        let preferred = if piece.tsval.is_none() && piece.ip_id.is_some() {
            candidates.iter().copied().find(|&id| {
                outbox
                    .get_mut(id)
                    .is_some_and(|s| s.ip_id == piece.ip_id && s.uncovered == [exact])
            })
        } else {
            None
        };
        for id in preferred.into_iter().chain(candidates) {
            if piece.remaining.is_empty() {
                break;
            }
            let Some(sent) = outbox.get_mut(id) else {
                continue;
            };
            if !sent.resolved
                && compatible(sent.tsval, piece.tsval)
                && take_common(&mut sent.uncovered, &mut piece.remaining)
                && sent.uncovered.is_empty()
            {
                resolve(sent, piece.arrival(), self.offset_ns, &mut self.horizon);
                if let Some(start) = sent.packet.seq {
                    state.pending.remove(start, id);
                }
            }
        }
        if !piece.remaining.is_empty() {
            state.arrived.push_back(piece);
        }
    }

    /// Declares lost the sent copies the receiver's capture has moved past by the horizon.
    fn expire(&mut self) {
        let horizon = self.horizon.ns();
        for direction in Direction::BOTH {
            let d = dir_index(direction);
            let receiver_clock = self.clock_ns[1 - Side::sender_of(direction).index()];
            let outbox = &mut self.outboxes[d];
            let mut lost = Vec::new();
            for (at, sent) in outbox.entries.iter_mut().enumerate() {
                if sent.aligned_ns.saturating_add(horizon) >= receiver_clock {
                    break;
                }
                if !sent.resolved {
                    sent.resolved = true;
                    sent.uncovered = Vec::new();
                    if let Some(start) = sent.packet.seq {
                        lost.push((sent.packet.tcp_stream, start, outbox.base + at as u64));
                    }
                }
            }
            for (stream, start, id) in lost {
                if let Some(state) = self.subflows.get_mut(&(d, stream)) {
                    state.pending.remove(start, id);
                }
            }
        }
    }

    /// Hands out each direction's resolved copies from the front of its outbox.
    fn drain(&mut self, emit: &mut dyn FnMut(&OwdPacket)) {
        for outbox in &mut self.outboxes {
            while outbox.entries.front().is_some_and(|s| s.resolved) {
                if let Some(sent) = outbox.entries.pop_front() {
                    emit(&sent.packet);
                }
                outbox.base += 1;
            }
        }
    }
}

/// Whether a received piece may be a copy of a sent one: equal TSvals when both have one.
fn compatible(sent: Option<u32>, received: Option<u32>) -> bool {
    match (sent, received) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

/// When and where a piece arrived: time (ns since the epoch), frame, aligned time.
#[derive(Clone, Copy)]
struct Arrival {
    ts_ns: u64,
    frame: u64,
    aligned_ns: i64,
}

impl Piece {
    fn arrival(&self) -> Arrival {
        Arrival {
            ts_ns: self.ts_ns,
            frame: self.frame,
            aligned_ns: self.aligned_ns,
        }
    }
}

/// The later of an arrival kept so far and `piece`'s.
fn later(kept: Option<Arrival>, piece: &Piece) -> Option<Arrival> {
    match kept {
        Some(a) if a.ts_ns >= piece.ts_ns => kept,
        _ => Some(piece.arrival()),
    }
}

/// Drops the pieces the sender's capture has moved past by the horizon, and the emptied ones;
/// returns how many unclaimed pieces were dropped.
fn expire_pieces(state: &mut SubflowState, sender_clock: i64, horizon: i64) -> u64 {
    let mut dropped = 0;
    state.arrived.retain(|piece| {
        if piece.remaining.is_empty() {
            return false;
        }
        let keep = piece.aligned_ns.saturating_add(horizon) >= sender_clock;
        if !keep && piece.remaining == [piece.exact] {
            dropped += 1;
        }
        keep
    });
    dropped
}

/// Marks `sent` received at `arrival` and widens the horizon to its aligned delay (not the
/// reported one: clocks hours apart must not make the horizon hours long).
fn resolve(sent: &mut Sent, arrival: Arrival, offset_ns: i64, horizon: &mut Horizon) {
    let ts_ns = arrival.ts_ns;
    let raw = i128::from(ts_ns) - i128::from(sent.packet.sent_ns);
    let owd = match sent.packet.direction {
        Direction::ClientToServer => raw - i128::from(offset_ns),
        Direction::ServerToClient => raw + i128::from(offset_ns),
    };
    let owd = i64::try_from(owd).unwrap_or(i64::MAX);
    sent.packet.received_ns = Some(ts_ns);
    sent.packet.peer_frame = Some(arrival.frame);
    sent.packet.owd_ns = Some(owd);
    sent.resolved = true;
    // It may wait behind a lost packet for a horizon: keep nothing it no longer needs.
    sent.uncovered = Vec::new();
    let aligned_delay = arrival.aligned_ns.saturating_sub(sent.aligned_ns);
    horizon.max_delay_ns = horizon.max_delay_ns.max(aligned_delay.saturating_abs());
}

#[cfg(test)]
pub(crate) mod tests {
    use std::{net::IpAddr, sync::mpsc};

    use super::*;
    use crate::{
        analysis::{record::MptcpRecord, summary::SubflowRole},
        decode::Timestamps,
        pair::{map::SubflowMatch, reading::merge},
    };

    /// An arbitrary epoch: 2023-11-14T22:13:20Z, in ns.
    pub const T0: u64 = 1_700_000_000_000_000_000;
    const MS: u64 = 1_000_000;

    /// Client stream 0 ↔ server stream 10, client stream 1 ↔ server stream 11.
    pub fn two_subflows() -> MptcpMatch {
        MptcpMatch {
            id: 0,
            peer_id: 0,
            score: 0,
            evidence: Vec::new(),
            subflows: vec![
                SubflowMatch {
                    tcp_stream: 0,
                    peer_tcp_stream: Some(10),
                },
                SubflowMatch {
                    tcp_stream: 1,
                    peer_tcp_stream: Some(11),
                },
            ],
            peer_unmatched_subflows: vec![],
        }
    }

    /// A record of connection 0 on `stream` (as its capture numbers it) carrying `[seq, seq +
    /// len)` of `direction` at `T0 + at_us` µs, frame `frame`, TSval `tsval`.
    pub fn rec(
        frame: u64,
        at_us: u64,
        stream: u32,
        direction: Direction,
        seq: u64,
        len: u32,
        tsval: Option<u32>,
    ) -> PacketRecord {
        let addr: IpAddr = "10.0.0.1".parse().expect("address");
        PacketRecord {
            number: frame,
            ts_ns: T0 + at_us * 1000,
            iface: 0,
            src: addr,
            dst: addr,
            src_port: 1,
            dst_port: 2,
            tcp_stream: stream,
            tcp_direction: direction,
            seq: 0,
            ack: 0,
            relative_seq: Some(seq),
            relative_ack: None,
            payload_len: len,
            flags: 0x10,
            mptcp_subtypes: 0,
            tcp_retransmitted_bytes: 0,
            keep_alive: false,
            ip_id: None,
            timestamps: tsval.map(|tsval| Timestamps { tsval, tsecr: 0 }),
            mptcp: Some(MptcpRecord {
                connection: 0,
                subflow: stream % 10,
                role: SubflowRole::Initial,
                direction,
                data: None,
                data_ack: None,
                mapping: None,
                data_fin: false,
                new_bytes: u64::from(len),
                retransmitted_bytes: 0,
                reinjected_bytes: 0,
                unmapped_bytes: 0,
                resolved_new_bytes: 0,
                resolved_reinjected_bytes: 0,
            }),
        }
    }

    /// Runs the matcher over the two captures' records through `owd`'s merge.
    fn run(
        client: Vec<PacketRecord>,
        server: Vec<PacketRecord>,
        offset_ns: i64,
        horizon_ns: Option<i64>,
    ) -> Vec<OwdPacket> {
        let mut matcher = Matcher::new(&two_subflows(), offset_ns, horizon_ns);
        let (client_tx, client_rx) = mpsc::sync_channel(1);
        let (server_tx, server_rx) = mpsc::sync_channel(1);
        client_tx.send(client).expect("capacity 1");
        server_tx.send(server).expect("capacity 1");
        drop((client_tx, server_tx));
        let mut out = Vec::new();
        let seen = merge(&mut matcher, client_rx, server_rx, &mut |p| out.push(*p));
        assert_eq!(seen, [true, true]);
        out
    }

    const C2S: Direction = Direction::ClientToServer;
    const S2C: Direction = Direction::ServerToClient;

    /// The (frame, owd in µs, peer frame) of each packet handed out.
    fn fates(packets: &[OwdPacket]) -> Vec<(u64, Option<i64>, Option<u64>)> {
        packets
            .iter()
            .map(|p| (p.frame, p.owd_ns.map(|ns| ns / 1000), p.peer_frame))
            .collect()
    }

    /// The connection's first record in each capture: no payload, it only aligns the streams.
    fn syn(at_us: u64, stream: u32) -> PacketRecord {
        rec(1, at_us, stream, C2S, 0, 0, None)
    }

    /// Three segments sent at 10, 20, 30 ms and received at 15, 32, 37 ms: delays 5, 12, 7 ms.
    fn three_segments() -> (Vec<PacketRecord>, Vec<PacketRecord>) {
        let client = vec![
            syn(0, 0),
            rec(2, 10_000, 0, C2S, 1, 100, Some(1)),
            rec(3, 20_000, 0, C2S, 101, 100, Some(2)),
            rec(4, 30_000, 0, C2S, 201, 100, Some(3)),
        ];
        let server = vec![
            syn(5_000, 10),
            rec(2, 15_000, 10, C2S, 1, 100, Some(1)),
            rec(3, 32_000, 10, C2S, 101, 100, Some(2)),
            rec(4, 37_000, 10, C2S, 201, 100, Some(3)),
        ];
        (client, server)
    }

    #[test]
    fn in_order_delivery_with_known_delays() {
        let (client, server) = three_segments();
        let out = run(client, server, 0, None);
        assert_eq!(
            fates(&out),
            [
                (2, Some(5_000), Some(2)),
                (3, Some(12_000), Some(3)),
                (4, Some(7_000), Some(4))
            ]
        );
        assert!(
            out.iter()
                .all(|p| p.tcp_stream == 0 && p.peer_tcp_stream == Some(10))
        );
        assert_eq!(out[1].sent_ns, T0 + 20 * MS);
        assert_eq!(out[1].received_ns, Some(T0 + 32 * MS));
    }

    /// The second segment never reaches the server; a server ACK 5 s later moves the server's
    /// capture past the 1 s horizon, so it is declared lost before the end, and the third is
    /// handed out after it.
    #[test]
    fn dropped_packet_is_lost() {
        let (client, mut server) = three_segments();
        server.remove(2);
        server.push(rec(5, 5_000_000, 10, S2C, 1, 0, None));
        let out = run(client, server, 0, Some(1_000_000_000));
        assert_eq!(
            fates(&out),
            [
                (2, Some(5_000), Some(2)),
                (3, None, None),
                (4, Some(7_000), Some(4))
            ]
        );
    }

    /// A segment sent at 10 ms (TSval 10) is lost; its retransmission at 300 ms (TSval 20)
    /// arrives at 310 ms. With timestamps the arrival goes to the retransmission; without,
    /// copies are matched in order and it goes to the first.
    #[test]
    fn retransmission_matched_by_tsval() {
        let records = |ts: [Option<u32>; 2]| {
            let mut retransmission = rec(3, 300_000, 0, C2S, 1, 100, ts[1]);
            retransmission.tcp_retransmitted_bytes = 100;
            let client = vec![
                syn(0, 0),
                rec(2, 10_000, 0, C2S, 1, 100, ts[0]),
                retransmission,
            ];
            let server = vec![syn(5_000, 10), rec(2, 310_000, 10, C2S, 1, 100, ts[1])];
            (client, server)
        };
        let (client, server) = records([Some(10), Some(20)]);
        let out = run(client, server, 0, None);
        assert_eq!(fates(&out), [(2, None, None), (3, Some(10_000), Some(2))]);
        assert!(!out[0].retransmission && out[1].retransmission);
        let (client, server) = records([None, None]);
        let out = run(client, server, 0, None);
        assert_eq!(fates(&out), [(2, Some(300_000), Some(2)), (3, None, None)]);
    }

    /// A 3000-byte GSO super-segment sent at 10 ms arrives as three segments at 15, 16, 17 ms:
    /// received when the last piece arrived (7 ms). Two segments sent at 20 and 21 ms arrive
    /// merged by GRO at 30 ms: 10 and 9 ms.
    #[test]
    fn gso_split_and_gro_merge() {
        let client = vec![
            syn(0, 0),
            rec(2, 10_000, 0, C2S, 1, 3000, Some(7)),
            rec(3, 20_000, 0, C2S, 3001, 1000, Some(8)),
            rec(4, 21_000, 0, C2S, 4001, 1000, Some(8)),
        ];
        let server = vec![
            syn(5_000, 10),
            rec(2, 15_000, 10, C2S, 1, 1000, Some(7)),
            rec(3, 16_000, 10, C2S, 1001, 1000, Some(7)),
            rec(4, 17_000, 10, C2S, 2001, 1000, Some(7)),
            rec(5, 30_000, 10, C2S, 3001, 2000, Some(8)),
        ];
        let out = run(client, server, 0, None);
        assert_eq!(
            fates(&out),
            [
                (2, Some(7_000), Some(4)),
                (3, Some(10_000), Some(5)),
                (4, Some(9_000), Some(5))
            ]
        );
    }

    /// The server capture's first record came 100 ms after the client's (a slow SYN), so the
    /// alignment feeds the arrival (aligned 5 ms) before the sending (aligned 10 ms): it waits
    /// for its sent copy, and the delay is the clocks' (95 ms), not the alignment's.
    #[test]
    fn an_arrival_fed_first_waits_for_its_sender() {
        let client = vec![syn(0, 0), rec(2, 10_000, 0, C2S, 1, 100, None)];
        let server = vec![syn(100_000, 10), rec(2, 105_000, 10, C2S, 1, 100, None)];
        assert_eq!(
            fates(&run(client, server, 0, None)),
            [(2, Some(95_000), Some(2))]
        );
    }

    /// Server→client on the second subflow (server stream 11 ↔ client stream 1), the server's
    /// clock 2 s ahead: sent at 2.010 s server time, received at 0.015 s client time; with the
    /// offset given the delay is 5 ms, without it −1995 ms.
    #[test]
    fn server_to_client_with_a_clock_offset() {
        let client = || vec![syn(0, 0), rec(2, 15_000, 1, S2C, 1, 100, Some(3))];
        let server = || {
            vec![
                syn(2_005_000, 10),
                rec(2, 2_010_000, 11, S2C, 1, 100, Some(3)),
            ]
        };
        let out = run(client(), server(), 2_000_000_000, None);
        assert_eq!(fates(&out), [(2, Some(5_000), Some(2))]);
        assert_eq!((out[0].tcp_stream, out[0].peer_tcp_stream), (1, Some(11)));
        assert_eq!(out[0].direction, S2C);
        let out = run(client(), server(), 0, None);
        assert_eq!(fates(&out), [(2, Some(-1_995_000), Some(2))]);
    }

    /// Without timestamps, the IPv4 ID tells the copies apart: the first copy (ID 1) is lost,
    /// the second (ID 2) arrives with ID 2 and is matched to it, not to the first in order.
    #[test]
    fn ip_id_breaks_the_tie_without_timestamps() {
        let with_id = |mut r: PacketRecord, id| {
            r.ip_id = Some(id);
            r
        };
        let client = vec![
            syn(0, 0),
            with_id(rec(2, 10_000, 0, C2S, 1, 100, None), 1),
            with_id(rec(3, 300_000, 0, C2S, 1, 100, None), 2),
        ];
        let server = vec![
            syn(5_000, 10),
            with_id(rec(2, 310_000, 10, C2S, 1, 100, None), 2),
        ];
        let out = run(client, server, 0, None);
        assert_eq!(fates(&out), [(2, None, None), (3, Some(10_000), Some(2))]);
    }

    /// A segment the server capture has and the client capture missed is counted as an
    /// unmatched arrival of its subflow and direction, not as a packet; a piece only partly
    /// claimed is not counted.
    #[test]
    fn arrivals_nobody_sent_are_counted() {
        let mut matcher = Matcher::new(&two_subflows(), 0, None);
        let mut out = Vec::new();
        let mut emit = |p: &OwdPacket| out.push(*p);
        matcher.feed(Side::Client, &syn(0, 0), &mut emit);
        matcher.feed(Side::Server, &syn(5_000, 10), &mut emit);
        matcher.feed(
            Side::Client,
            &rec(2, 10_000, 0, C2S, 1, 100, None),
            &mut emit,
        );
        // Half of it claimed by the packet above, then one nobody sent.
        matcher.feed(
            Side::Server,
            &rec(2, 15_000, 10, C2S, 51, 100, None),
            &mut emit,
        );
        matcher.feed(
            Side::Server,
            &rec(3, 16_000, 10, C2S, 1001, 100, None),
            &mut emit,
        );
        matcher.finish(&mut emit);
        assert_eq!(matcher.unmatched_received(C2S, 0), 1);
        assert_eq!(matcher.unmatched_received(S2C, 0), 0);
        // The sent packet was only half covered: lost.
        assert_eq!(fates(&out), [(2, None, None)]);
    }

    /// Pseudo-random records of both sides (random streams, directions, ranges, TSvals, IP
    /// IDs, missing sequence numbers, times out of order): no panic, every sent data record of
    /// a mapped stream handed out exactly once, in send order per direction, and a delay for
    /// exactly the received ones.
    #[test]
    fn random_records_are_each_handed_out_once_in_order() {
        let mut x: u64 = 99;
        let mut next = |m: u64| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) % m
        };
        for round in 0..20 {
            let mut matcher =
                Matcher::new(&two_subflows(), 0, (round % 2 == 0).then_some(50_000_000));
            let mut out = Vec::new();
            let mut sent = [0u64; 2];
            for frame in 1..=400u64 {
                let side = if next(2) == 0 {
                    Side::Client
                } else {
                    Side::Server
                };
                let direction = if next(2) == 0 { C2S } else { S2C };
                let stream = match side {
                    Side::Client => next(3) as u32,
                    Side::Server => 10 + next(3) as u32,
                };
                let len = [0, 100, 1000, 3000][next(4) as usize];
                let mut r = rec(
                    frame,
                    frame * 1000 + next(5000),
                    stream,
                    direction,
                    next(20) * 100,
                    len,
                    Some(next(3) as u32).filter(|_| next(4) > 0),
                );
                r.ip_id = Some(next(4) as u16).filter(|_| next(2) == 0);
                if next(10) == 0 {
                    r.relative_seq = None;
                }
                if side == Side::sender_of(direction) && len > 0 && u64::from(stream % 10) < 2 {
                    sent[dir_index(direction)] += 1;
                }
                matcher.feed(side, &r, &mut |p| out.push(*p));
            }
            matcher.finish(&mut |p| out.push(*p));
            for direction in Direction::BOTH {
                let frames: Vec<u64> = out
                    .iter()
                    .filter(|p| p.direction == direction)
                    .map(|p| p.frame)
                    .collect();
                assert_eq!(
                    frames.len() as u64,
                    sent[dir_index(direction)],
                    "round {round}"
                );
                assert!(
                    frames.windows(2).all(|w| w[0] < w[1]),
                    "round {round}: {frames:?}"
                );
            }
            assert!(
                out.iter()
                    .all(|p| p.received_ns.is_some() == p.owd_ns.is_some())
            );
        }
    }
}
