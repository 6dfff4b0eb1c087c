//! Long runs with bounded memory (`trace --long-run`): the live state is a short list of
//! *generations*, each an `Analyzer` of its own. New streams start in the newest generation;
//! once it has seen `GENERATION_STREAMS` streams it stops taking new ones and a fresh one
//! starts. A connection that has ended (DATA_FIN acknowledged both ways, MP_FASTCLOSE, every
//! subflow reset, a fallen-back connection's subflows all closed — `Analyzer::mptcp_open` —
//! or no packet for the idle timeout) is summarised once, as an `Ended`, and a generation
//! whose every stream has ended is dropped whole (the newest too, a fresh one taking its
//! place). Memory thus follows the open connections, not the ones seen, with one bound to
//! know: a connection that stays open keeps its generation (at most `GENERATION_STREAMS`
//! streams' state) alive until it ends.
//!
//! Why generations and not per-connection removal: the analysis numbers streams and
//! connections densely (as Wireshark's `tcp.stream`) and indexes its state by those numbers on
//! every packet; dropping whole analyzers keeps that hot path — and the offline numbers and
//! speed — untouched. The analysis is the same one: every summary is the analyzer's own.
//!
//! Ids: generation `g`'s connection and stream numbers are offset by `g * ID_SPAN`, so they
//! stay unique in a run (the first generation's are the analyzer's own, as without eviction).

use std::time::{Duration, SystemTime};

use rustc_hash::FxHashSet;

use crate::{
    analysis::{
        Analyzer, Diagnostics, MAX_KEPT_PROBLEMS, StreamEnd,
        summary::{
            EventKind, MptcpConnectionInfo, MptcpList, MptcpSummary, TcpConnectionInfo, TcpList,
            TcpSummary,
        },
    },
    decode::{self, Packet},
    source::{RawPacket, live::EventSink},
};

/// Streams a generation takes before the next one starts.
pub const GENERATION_STREAMS: usize = 1024;
/// A generation whose streams all ended is dropped only after no packet reached it for this
/// long: the last ACKs and FINs of its subflows, which follow the end of the connection,
/// must still find their streams there instead of starting stray streams in a newer one.
pub const LINGER: Duration = Duration::from_secs(3);
/// Id offset between two generations (`GENERATION_STREAMS` plus room for the MP_JOINs of its
/// connections that arrive after it stopped taking new streams).
pub const ID_SPAN: u64 = 1_000_000;

/// Why an ended connection or stream counts as ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// DATA_FIN sent and acknowledged both ways (or, plain TCP, FIN both ways).
    DataFin,
    Fastclose,
    /// Every subflow (the stream) was reset.
    Reset,
    /// Fallen back to TCP, and every subflow closed.
    Fallback,
    /// No packet for the idle timeout.
    IdleTimeout,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::DataFin => "data_fin",
            EndReason::Fastclose => "fastclose",
            EndReason::Reset => "reset",
            EndReason::Fallback => "fallback",
            EndReason::IdleTimeout => "idle_timeout",
        }
    }
}

/// A connection or plain TCP stream that ended, summarised once (ids already offset).
#[derive(Clone, Debug)]
pub enum Ended {
    Mptcp {
        reason: EndReason,
        connection: MptcpConnectionInfo,
        summary: MptcpSummary,
    },
    Tcp {
        reason: EndReason,
        stream: TcpConnectionInfo,
        summary: TcpSummary,
    },
}

/// What is left in the live state: the connections not reported as ended (all of them
/// without eviction), ids offset, in generation then creation order.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub list: MptcpList,
    pub summaries: Vec<MptcpSummary>,
    /// Ids of `list`'s connections still open at the last packet.
    pub open: Vec<u64>,
    /// Ids of `list`'s other connections (closed at the last packet), with how they ended:
    /// without eviction closed connections stay in the state, and the metrics count them by
    /// the same reason `--long-run` would have reported.
    pub closed: Vec<(u64, EndReason)>,
    /// Every TCP stream not reported (MPTCP subflows included).
    pub tcp: TcpList,
    /// Summaries of `tcp`'s plain (non-MPTCP) streams.
    pub tcp_summaries: Vec<TcpSummary>,
}

impl Default for Snapshot {
    fn default() -> Self {
        Snapshot {
            list: MptcpList {
                mptcp_connections: Vec::new(),
                orphan_subflows: Vec::new(),
            },
            summaries: Vec::new(),
            open: Vec::new(),
            closed: Vec::new(),
            tcp: TcpList {
                tcp_connections: Vec::new(),
            },
            tcp_summaries: Vec::new(),
        }
    }
}

/// The live state of a trace: one analyzer, or with eviction a few generations of them.
pub struct Generations {
    /// Oldest first; the last one takes new streams.
    generations: Vec<Generation>,
    next_base: u64,
    /// `None`: no eviction (one generation, nothing reported as ended).
    eviction: Option<Eviction>,
    /// The diagnostics of dropped generations, summed.
    dropped_diagnostics: Diagnostics,
    /// Generations dropped so far.
    pub dropped: u64,
}

/// What eviction needs to know.
#[derive(Clone, Copy, Debug)]
pub struct Eviction {
    /// A connection or stream without a packet for this long has ended.
    pub idle_timeout: Duration,
    /// Report ended plain TCP streams too (`--all-tcp`).
    pub plain_tcp: bool,
}

struct Generation {
    analyzer: Analyzer,
    base: u64,
    /// Connection ids reported as ended.
    reported: FxHashSet<u64>,
    /// Streams of reported connections, and plain streams reported or ended.
    done_streams: FxHashSet<u64>,
    /// Time of the last TCP packet fed to it (ns since the epoch).
    last_packet_ns: u64,
}

impl Generation {
    fn new(base: u64) -> Self {
        Generation {
            analyzer: Analyzer::new(),
            base,
            reported: FxHashSet::default(),
            done_streams: FxHashSet::default(),
            last_packet_ns: 0,
        }
    }
}

impl Generations {
    pub fn new(eviction: Option<Eviction>) -> Self {
        Generations {
            generations: vec![Generation::new(0)],
            next_base: ID_SPAN,
            eviction,
            dropped_diagnostics: Diagnostics::default(),
            dropped: 0,
        }
    }

    /// Generations alive (for the tests of eviction).
    pub fn generation_count(&self) -> usize {
        self.generations.len()
    }

    /// The analysis's diagnostics over the whole run, dropped generations included.
    pub fn diagnostics(&self) -> Diagnostics {
        let mut sum = self.dropped_diagnostics.clone();
        for generation in &self.generations {
            add_diagnostics(&mut sum, generation.analyzer.diagnostics());
        }
        sum
    }

    fn feed(&mut self, number: u64, decoded: Result<Option<&Packet>, &decode::DecodeError>) {
        let index = match decoded {
            // One generation (always so without eviction): no lookup to pay per packet.
            _ if self.generations.len() == 1 => 0,
            // The newest generation that has the packet's stream or connection takes it: a
            // port reused in a newer generation must not go to the old, ended stream.
            Ok(Some(packet)) => self
                .generations
                .iter()
                .rposition(|g| g.analyzer.holds(packet))
                .unwrap_or(self.generations.len() - 1),
            _ => self.generations.len() - 1,
        };
        let generation = &mut self.generations[index];
        if let Ok(Some(packet)) = decoded {
            generation.last_packet_ns = generation.last_packet_ns.max(packet.ts_ns);
        }
        generation.analyzer.feed_decoded(number, decoded);
        let current = &self.generations[self.generations.len() - 1];
        if self.eviction.is_some() && current.analyzer.tcp_stream_count() >= GENERATION_STREAMS {
            self.generations.push(Generation::new(self.next_base));
            self.next_base += ID_SPAN;
        }
    }

    /// Summarises what ended since the last call (`now` for the idle timeout) and drops the
    /// generations whose streams have all ended, once quiet for `LINGER`. Nothing without
    /// eviction.
    pub fn evict(&mut self, now: SystemTime) -> Vec<Ended> {
        let Some(eviction) = self.eviction else {
            return Vec::new();
        };
        let now_ns = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let idle_before = now_ns.saturating_sub(eviction.idle_timeout.as_nanos() as u64);
        let quiet_before = now_ns.saturating_sub(LINGER.as_nanos() as u64);
        let mut ended = Vec::new();
        for generation in &mut self.generations {
            generation.report_ended(idle_before, eviction.plain_tcp, &mut ended);
        }
        let newest = self.generations.len() - 1;
        let dropped_before = self.dropped;
        let mut index = 0;
        self.generations.retain(|generation| {
            // The newest goes too once all its streams ended and are quiet (a fresh one takes
            // its place below): after a burst the heap then falls back to no state at all
            // instead of keeping up to a generation of ended connections until new ones come.
            let keep = (index == newest && generation.analyzer.tcp_stream_count() == 0)
                || generation.last_packet_ns >= quiet_before
                || !generation.all_done(idle_before);
            index += 1;
            if !keep {
                add_diagnostics(
                    &mut self.dropped_diagnostics,
                    generation.analyzer.diagnostics(),
                );
                self.dropped += 1;
                log::info!(
                    "every stream of generation {} ended; its state is dropped ({} dropped so far)",
                    generation.base / ID_SPAN,
                    self.dropped
                );
            }
            keep
        });
        if self.generations.is_empty() {
            self.generations.push(Generation::new(self.next_base));
            self.next_base += ID_SPAN;
        }
        if self.dropped > dropped_before {
            give_back_freed_memory();
        }
        log::debug!(
            "{} ended; {} generations alive, {} dropped",
            ended.len(),
            self.generations.len(),
            self.dropped
        );
        ended
    }

    /// The connections and streams not reported as ended.
    pub fn snapshot(&self) -> Snapshot {
        let mut snapshot = Snapshot::default();
        for generation in &self.generations {
            generation.add_to(&mut snapshot);
        }
        snapshot
    }
}

impl EventSink for Generations {
    fn packet(&mut self, raw: &RawPacket<'_>) {
        let mut packet = Packet::empty();
        let decoded = decode::decode_into(raw, &mut packet);
        self.feed(
            raw.number,
            decoded.as_ref().map(|&tcp| tcp.then_some(&packet)),
        );
    }
}

impl Generation {
    fn report_ended(&mut self, idle_before: u64, plain_tcp: bool, ended: &mut Vec<Ended>) {
        let analyzer = &self.analyzer;
        for connection in analyzer.mptcp_list().mptcp_connections {
            if self.reported.contains(&connection.id) {
                continue;
            }
            let Some(reason) = self.connection_end(&connection, idle_before) else {
                continue;
            };
            let Some(mut summary) = analyzer.mptcp_summary(connection.id) else {
                continue;
            };
            self.reported.insert(connection.id);
            self.done_streams
                .extend(connection.subflows.iter().map(|s| s.tcp_stream));
            let mut connection = connection;
            offset_connection(&mut connection, self.base);
            offset_summary(&mut summary, self.base);
            ended.push(Ended::Mptcp {
                reason,
                connection,
                summary,
            });
        }
        for stream in analyzer.tcp_list().tcp_connections {
            if stream.mptcp || self.done_streams.contains(&stream.stream) {
                continue;
            }
            let Some(reason) = self.stream_end(stream.stream, idle_before) else {
                continue;
            };
            self.done_streams.insert(stream.stream);
            if !plain_tcp {
                continue;
            }
            let Some(mut summary) = analyzer.tcp_summary(stream.stream) else {
                continue;
            };
            let mut stream = stream;
            stream.stream += self.base;
            summary.stream += self.base;
            ended.push(Ended::Tcp {
                reason,
                stream,
                summary,
            });
        }
    }

    /// Why `connection` counts as ended, or None while it is open.
    fn connection_end(
        &self,
        connection: &MptcpConnectionInfo,
        idle_before: u64,
    ) -> Option<EndReason> {
        let analyzer = &self.analyzer;
        if analyzer.mptcp_open(connection.id) == Some(false)
            && let Some(summary) = analyzer.mptcp_summary(connection.id)
        {
            return closed_reason(analyzer, connection, &summary);
        }
        let last = connection
            .subflows
            .iter()
            .filter_map(|s| analyzer.tcp_last_packet_ns(s.tcp_stream))
            .max()?;
        (last < idle_before).then_some(EndReason::IdleTimeout)
    }

    fn stream_end(&self, stream: u64, idle_before: u64) -> Option<EndReason> {
        match self.analyzer.tcp_end(stream) {
            Some(StreamEnd::Reset) => Some(EndReason::Reset),
            Some(StreamEnd::Fin) => Some(EndReason::DataFin),
            None => self
                .analyzer
                .tcp_last_packet_ns(stream)
                .filter(|&last| last < idle_before)
                .map(|_| EndReason::IdleTimeout),
        }
    }

    /// Every connection reported and every stream done or over.
    fn all_done(&self, idle_before: u64) -> bool {
        let list = self.analyzer.mptcp_list();
        list.mptcp_connections
            .iter()
            .all(|c| self.reported.contains(&c.id))
            && (0..self.analyzer.tcp_stream_count() as u64).all(|stream| {
                self.done_streams.contains(&stream)
                    || self.stream_end(stream, idle_before).is_some()
            })
    }

    fn add_to(&self, snapshot: &mut Snapshot) {
        let analyzer = &self.analyzer;
        let list = analyzer.mptcp_list();
        for mut connection in list.mptcp_connections {
            if self.reported.contains(&connection.id) {
                continue;
            }
            if let Some(mut summary) = analyzer.mptcp_summary(connection.id) {
                if let Some(reason) = closed_reason(analyzer, &connection, &summary) {
                    snapshot.closed.push((connection.id + self.base, reason));
                }
                offset_summary(&mut summary, self.base);
                snapshot.summaries.push(summary);
            }
            if analyzer.mptcp_open(connection.id) == Some(true) {
                snapshot.open.push(connection.id + self.base);
            }
            offset_connection(&mut connection, self.base);
            snapshot.list.mptcp_connections.push(connection);
        }
        for mut orphan in list.orphan_subflows {
            orphan.tcp_stream += self.base;
            snapshot.list.orphan_subflows.push(orphan);
        }
        for mut stream in analyzer.tcp_list().tcp_connections {
            if self.done_streams.contains(&stream.stream) {
                continue;
            }
            if !stream.mptcp
                && let Some(mut summary) = analyzer.tcp_summary(stream.stream)
            {
                summary.stream += self.base;
                snapshot.tcp_summaries.push(summary);
            }
            stream.stream += self.base;
            snapshot.tcp.tcp_connections.push(stream);
        }
    }
}

/// How `connection` (with its `summary`, ids as `analyzer`'s) closed, or None while it is
/// open at the last packet (`Analyzer::mptcp_open`). One function for `--long-run`'s ended
/// lines and for the metrics of a trace without it, so both name the same reason for the same
/// connection.
pub fn closed_reason(
    analyzer: &Analyzer,
    connection: &MptcpConnectionInfo,
    summary: &MptcpSummary,
) -> Option<EndReason> {
    if analyzer.mptcp_open(connection.id) != Some(false) {
        return None;
    }
    let fastclosed = summary
        .events
        .iter()
        .any(|event| event.kind == EventKind::MpFastclose);
    let all_reset = connection
        .subflows
        .iter()
        .all(|s| analyzer.tcp_end(s.tcp_stream) == Some(StreamEnd::Reset));
    Some(if fastclosed {
        EndReason::Fastclose
    } else if all_reset {
        EndReason::Reset
    } else if connection.fallback {
        EndReason::Fallback
    } else {
        EndReason::DataFin
    })
}

fn offset_connection(connection: &mut MptcpConnectionInfo, base: u64) {
    connection.id += base;
    for subflow in &mut connection.subflows {
        subflow.tcp_stream += base;
    }
}

fn offset_summary(summary: &mut MptcpSummary, base: u64) {
    summary.id += base;
    for direction in &mut summary.directions {
        for subflow in &mut direction.subflows {
            subflow.tcp_stream += base;
        }
    }
    for event in &mut summary.events {
        event.tcp_stream += base;
    }
}

/// Returns the heap pages a dropped generation freed to the system: glibc keeps them
/// otherwise, and the process's RSS would stay at its highest point after a burst.
fn give_back_freed_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases free memory of the allocator; it touches no live
    // allocation.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Adds `more`'s counts to `sum`, keeping at most `MAX_KEPT_PROBLEMS` problems.
fn add_diagnostics(sum: &mut Diagnostics, more: &Diagnostics) {
    sum.packets += more.packets;
    sum.tcp_packets += more.tcp_packets;
    sum.other_packets += more.other_packets;
    sum.decode_errors += more.decode_errors;
    sum.truncated_options += more.truncated_options;
    sum.unknown_mptcp_options += more.unknown_mptcp_options;
    sum.malformed_mptcp_options += more.malformed_mptcp_options;
    sum.mptcp_overflow_packets += more.mptcp_overflow_packets;
    sum.problems_found += more.problems_found;
    let room = MAX_KEPT_PROBLEMS.saturating_sub(sum.problems.len());
    sum.problems
        .extend(more.problems.iter().take(room).cloned());
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::{
        decode::tcp_flags::{ACK, FIN, SYN},
        source::pcap::CaptureReader,
    };

    const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    const SERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

    /// A plain TCP segment of the connection from client port `port`, at time `ts_ns`.
    fn segment(port: u16, from_client: bool, flags: u8, seq: u32, ts_ns: u64) -> Packet {
        let mut packet = Packet::empty();
        (packet.src, packet.dst) = if from_client {
            (CLIENT, SERVER)
        } else {
            (SERVER, CLIENT)
        };
        (packet.src_port, packet.dst_port) = if from_client { (port, 80) } else { (80, port) };
        packet.flags = flags;
        packet.seq = seq;
        packet.ts_ns = ts_ns;
        packet
    }

    fn feed(state: &mut Generations, packet: &Packet) {
        state.feed(packet.number, Ok(Some(packet)));
    }

    fn evicting(idle_timeout: Duration) -> Generations {
        Generations::new(Some(Eviction {
            idle_timeout,
            plain_tcp: true,
        }))
    }

    /// Now, and now in ns since the epoch (the packets' timestamps).
    fn now_and_ns() -> (SystemTime, u64) {
        let now = SystemTime::now();
        let ns = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .expect("a clock after 1970")
            .as_nanos() as u64;
        (now, ns)
    }

    /// A full generation hands new streams to the next one, its own streams' packets still
    /// reach it, and once all its streams ended it is reported (ids as the analyzer's) and
    /// dropped; the next generation's ids are offset by `ID_SPAN`.
    #[test]
    fn a_full_generation_keeps_its_streams_and_goes_once_they_ended() {
        let mut state = evicting(Duration::from_secs(600));
        let (now, ts) = now_and_ns();
        let ports: Vec<u16> = (0..GENERATION_STREAMS as u16).map(|i| 10_000 + i).collect();
        for &port in &ports {
            feed(&mut state, &segment(port, true, SYN, 1, ts));
        }
        assert_eq!(state.generation_count(), 2, "full: the next one started");
        feed(&mut state, &segment(9_000, true, SYN, 1, ts));
        // A packet of the first generation's stream 0 goes there, not to a new stream.
        feed(&mut state, &segment(ports[0], false, SYN | ACK, 7, ts));
        let snapshot = state.snapshot();
        let ids: Vec<u64> = snapshot
            .tcp
            .tcp_connections
            .iter()
            .map(|s| s.stream)
            .collect();
        assert_eq!(ids.len(), GENERATION_STREAMS + 1);
        assert_eq!(ids[GENERATION_STREAMS], ID_SPAN);
        assert_eq!(snapshot.tcp.tcp_connections[0].packets, 2);
        assert!(state.evict(now).is_empty(), "nothing ended yet");

        for &port in &ports {
            feed(&mut state, &segment(port, true, FIN | ACK, 2, ts));
            feed(&mut state, &segment(port, false, FIN | ACK, 8, ts));
        }
        let ended = state.evict(now);
        assert_eq!(ended.len(), GENERATION_STREAMS, "each reported once");
        assert_eq!(
            state.generation_count(),
            2,
            "kept while its last packets may come"
        );
        let now = now + LINGER + Duration::from_secs(1);
        assert!(state.evict(now).is_empty(), "reported once, before");
        assert!(ended.iter().enumerate().all(|(i, e)| matches!(e,
            Ended::Tcp { reason: EndReason::DataFin, stream, .. } if stream.stream == i as u64)));
        assert_eq!(
            state.generation_count(),
            1,
            "the first generation is dropped"
        );
        assert_eq!(state.dropped, 1);
        assert!(state.evict(now).is_empty(), "nothing is reported twice");
        let left = state.snapshot();
        assert_eq!(left.tcp.tcp_connections.len(), 1);
        assert_eq!(left.tcp_summaries[0].stream, ID_SPAN);
        assert_eq!(
            state.diagnostics().tcp_packets,
            (3 * GENERATION_STREAMS + 2) as u64,
            "the dropped generation's packets still count"
        );
    }

    /// A client port that comes back once its connection ended — in the same generation, and
    /// while that generation is still alive behind a newer one — starts a new stream each time:
    /// every connection of the 4-tuple is reported once, with its own packets, and nothing is
    /// reported twice.
    #[test]
    fn a_reused_four_tuple_is_a_new_stream_reported_once() {
        let mut state = evicting(Duration::from_secs(600));
        let (now, ts) = now_and_ns();
        let run = |state: &mut Generations, isn: u32| {
            feed(state, &segment(1_000, true, SYN, isn, ts));
            feed(state, &segment(1_000, false, SYN | ACK, 7, ts));
            feed(state, &segment(1_000, true, FIN | ACK, isn + 1, ts));
            feed(state, &segment(1_000, false, FIN | ACK, 8, ts));
        };
        let reported = |ended: &[Ended]| -> Vec<(u64, u64)> {
            ended
                .iter()
                .filter_map(|e| match e {
                    Ended::Tcp { stream, .. } if stream.client.port() == 1_000 => {
                        Some((stream.stream, stream.packets))
                    }
                    _ => None,
                })
                .collect()
        };
        run(&mut state, 100);
        run(&mut state, 200);
        assert_eq!(reported(&state.evict(now)), [(0, 4), (1, 4)]);
        // Fill generation 0: the next use of the port goes to generation 1, while generation 0,
        // which knows the 4-tuple, is alive.
        for port in 0..GENERATION_STREAMS as u16 - 2 {
            feed(&mut state, &segment(10_000 + port, true, SYN, 1, ts));
        }
        assert_eq!(state.generation_count(), 2);
        run(&mut state, 300);
        assert_eq!(reported(&state.evict(now)), [(ID_SPAN, 4)]);
        assert!(reported(&state.evict(now)).is_empty(), "nothing twice");
    }

    /// A trace without eviction keeps a closed connection, with the reason `--long-run` reports
    /// it ended by: here a capture's connection whose applications both finished (DATA_FIN).
    #[test]
    fn a_closed_connection_has_the_same_reason_with_and_without_eviction() {
        let capture = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/data/v4-2sf-full.pcap"
        );
        let mut kept = Generations::new(None);
        let mut evicting = evicting(Duration::from_secs(1 << 40));
        let mut reader = CaptureReader::open(std::path::Path::new(capture)).expect("opens");
        reader
            .for_each(|raw| {
                kept.packet(raw);
                evicting.packet(raw);
            })
            .expect("reads");
        let snapshot = kept.snapshot();
        assert_eq!(snapshot.closed, [(0, EndReason::DataFin)]);
        assert!(snapshot.open.is_empty());
        let reasons: Vec<(u64, EndReason)> = evicting
            .evict(SystemTime::now())
            .iter()
            .filter_map(|ended| match ended {
                Ended::Mptcp {
                    reason, connection, ..
                } => Some((connection.id, *reason)),
                Ended::Tcp { .. } => None,
            })
            .collect();
        assert_eq!(reasons, snapshot.closed);
    }

    /// Once every stream ended and no packet came for `LINGER`, the newest generation goes
    /// too: nothing is left of the state, and the next stream starts a fresh generation (ids
    /// go on from `ID_SPAN`). An empty newest generation stays.
    #[test]
    fn the_newest_generation_goes_once_all_ended_and_quiet() {
        let mut state = evicting(Duration::from_secs(600));
        let (now, ts) = now_and_ns();
        feed(&mut state, &segment(1_000, true, SYN, 1, ts));
        feed(&mut state, &segment(1_000, false, SYN | ACK, 7, ts));
        feed(&mut state, &segment(1_000, true, FIN | ACK, 2, ts));
        feed(&mut state, &segment(1_000, false, FIN | ACK, 8, ts));
        assert_eq!(state.evict(now).len(), 1);
        assert_eq!(state.dropped, 0, "kept while its last packets may come");
        let later = now + LINGER + Duration::from_secs(1);
        assert!(state.evict(later).is_empty());
        assert_eq!((state.dropped, state.generation_count()), (1, 1));
        assert!(state.snapshot().tcp.tcp_connections.is_empty());
        assert_eq!(
            state.diagnostics().tcp_packets,
            4,
            "its packets still count"
        );
        for _ in 0..3 {
            state.evict(later);
        }
        assert_eq!(state.dropped, 1, "an empty generation stays");
        feed(&mut state, &segment(1_001, true, SYN, 1, ts));
        let left = state.snapshot();
        assert_eq!(left.tcp.tcp_connections[0].stream, ID_SPAN);
    }

    /// A stream without a packet for the idle timeout has ended; without eviction nothing is.
    #[test]
    fn idle_streams_end_and_nothing_ends_without_eviction() {
        let (now, ts) = now_and_ns();
        let old = ts - 20_000_000_000;
        let mut state = evicting(Duration::from_secs(10));
        feed(&mut state, &segment(1_000, true, SYN, 1, old));
        feed(&mut state, &segment(1_001, true, SYN, 1, ts));
        let ended = state.evict(now);
        assert_eq!(ended.len(), 1);
        assert!(matches!(&ended[0],
            Ended::Tcp { reason: EndReason::IdleTimeout, stream, .. } if stream.stream == 0));

        let mut kept = Generations::new(None);
        feed(&mut kept, &segment(1_000, true, SYN, 1, old));
        assert!(kept.evict(now).is_empty());
        assert_eq!(kept.snapshot().tcp.tcp_connections.len(), 1);
    }
}
