//! Both captures read at once for the matcher: one thread per capture runs the offline
//! analysis and forwards the connection's records in bounded batches; this thread merges the
//! two streams in aligned time order (`matcher` module doc) and feeds the matcher.

use std::{
    collections::{HashMap, VecDeque},
    path::Path,
    sync::mpsc::{self, Receiver, SyncSender},
};

use super::{
    PairError,
    map::MptcpMatch,
    matcher::{Matcher, OwdPacket, Side},
};
use crate::{
    analysis::{
        direction::Direction,
        record::{PacketObserver, PacketRecord},
    },
    offline::{self, OfflineOptions},
    source::pcap::CaptureError,
};

/// What a run of the matcher over two captures leaves besides the packets.
pub(crate) struct MatchRun {
    pub notes: Vec<String>,
    pub horizon_s: f64,
    unmatched: HashMap<(Direction, u64), u64>,
}

impl MatchRun {
    pub fn unmatched(&self, direction: Direction, tcp_stream: u64) -> u64 {
        self.unmatched
            .get(&(direction, tcp_stream))
            .copied()
            .unwrap_or(0)
    }
}

/// Records per batch from a reading thread to the matcher.
const FORWARD_BATCH: usize = 1024;
/// Batches a reading thread may be ahead.
const BATCHES_IN_FLIGHT: usize = 4;

/// Reads both captures at once (one thread each), feeds the connection's records to the
/// matcher in aligned time order, and hands out every resolved packet. `offset_ns` and
/// `horizon_ns`: `Matcher::new`.
pub(crate) fn match_captures(
    client: &Path,
    server: &Path,
    matched: &MptcpMatch,
    offset_ns: i64,
    horizon_ns: Option<i64>,
    emit: &mut dyn FnMut(&OwdPacket),
) -> Result<MatchRun, PairError> {
    let mut matcher = Matcher::new(matched, offset_ns, horizon_ns);
    let (client_tx, client_rx) = mpsc::sync_channel(BATCHES_IN_FLIGHT);
    let (server_tx, server_rx) = mpsc::sync_channel(BATCHES_IN_FLIGHT);
    let (seen, results) = std::thread::scope(|scope| {
        let c = scope.spawn(|| read_connection(client, matched.id, client_tx));
        let s = scope.spawn(|| read_connection(server, matched.peer_id, server_tx));
        let seen = merge(&mut matcher, client_rx, server_rx, emit);
        (seen, [(client, c.join()), (server, s.join())])
    });
    let mut notes = Vec::new();
    for ((path, result), (seen, id)) in results
        .into_iter()
        .zip([(seen[0], matched.id), (seen[1], matched.peer_id)])
    {
        let damage = result.map_err(|_| PairError::Thread {
            path: path.to_path_buf(),
        })??;
        if let Some(error) = damage {
            notes.push(format!(
                "reading stopped early, the rest is missing: {error}"
            ));
        }
        if !seen {
            return Err(PairError::NoConnection {
                path: path.to_path_buf(),
                id,
            });
        }
    }
    for (side, name) in [(Side::Client, "client"), (Side::Server, "server")] {
        let unmapped = matcher.unmapped(side);
        if unmapped > 0 {
            notes.push(format!(
                "{unmapped} data packets of the connection in the {name} capture are on subflows the mapping has no counterpart for: not reported"
            ));
        }
    }
    let unmatched = Direction::BOTH
        .into_iter()
        .flat_map(|d| matched.subflows.iter().map(move |s| (d, s.tcp_stream)))
        .map(|(d, s)| ((d, s), matcher.unmatched_received(d, s)))
        .collect();
    Ok(MatchRun {
        notes,
        horizon_s: matcher.horizon_s(),
        unmatched,
    })
}

/// Feeds the records of both streams to the matcher, the earliest (aligned) first; returns
/// whether each side had any record of the connection.
pub(crate) fn merge(
    matcher: &mut Matcher,
    client: Receiver<Vec<PacketRecord>>,
    server: Receiver<Vec<PacketRecord>>,
    emit: &mut dyn FnMut(&OwdPacket),
) -> [bool; 2] {
    let mut streams = [RecordStream::new(client), RecordStream::new(server)];
    let sides = [Side::Client, Side::Server];
    loop {
        let heads = [streams[0].head(), streams[1].head()];
        let aligned = [0, 1].map(|i| heads[i].map(|r| matcher.aligned_ns(sides[i], r.ts_ns)));
        let next = match (aligned[0], aligned[1]) {
            (Some(c), Some(s)) => usize::from(s < c),
            (Some(_), None) => 0,
            (None, Some(_)) => 1,
            (None, None) => break,
        };
        if let Some(record) = heads[next] {
            matcher.feed(sides[next], &record, emit);
        }
        streams[next].advance();
    }
    matcher.finish(emit);
    [streams[0].any, streams[1].any]
}

/// The records of one capture as they come from its reading thread.
struct RecordStream {
    rx: Receiver<Vec<PacketRecord>>,
    batch: VecDeque<PacketRecord>,
    done: bool,
    any: bool,
}

impl RecordStream {
    fn new(rx: Receiver<Vec<PacketRecord>>) -> Self {
        RecordStream {
            rx,
            batch: VecDeque::new(),
            done: false,
            any: false,
        }
    }

    /// The next record, waiting for the reading thread if needed; `None` at the end.
    fn head(&mut self) -> Option<PacketRecord> {
        while self.batch.is_empty() && !self.done {
            match self.rx.recv() {
                Ok(batch) => self.batch = batch.into(),
                Err(_) => self.done = true,
            }
        }
        let head = self.batch.front().copied();
        self.any |= head.is_some();
        head
    }

    fn advance(&mut self) {
        self.batch.pop_front();
    }
}

/// Passes a connection's records on in batches.
struct Forwarder {
    id: u64,
    batch: Vec<PacketRecord>,
    tx: SyncSender<Vec<PacketRecord>>,
}

impl PacketObserver for Forwarder {
    fn observe(&mut self, record: &PacketRecord) {
        if record
            .mptcp
            .is_some_and(|m| u64::from(m.connection) == self.id)
        {
            self.batch.push(*record);
            if self.batch.len() == FORWARD_BATCH {
                let full = std::mem::replace(&mut self.batch, Vec::with_capacity(FORWARD_BATCH));
                // The matcher gone (it panicked): reading on is harmless.
                let _ = self.tx.send(full);
            }
        }
    }
}

/// Analyses a capture, forwarding connection `id`'s records; returns the damage that stopped
/// reading early, if any.
fn read_connection(
    path: &Path,
    id: u64,
    tx: SyncSender<Vec<PacketRecord>>,
) -> Result<Option<CaptureError>, CaptureError> {
    let mut forwarder = Forwarder {
        id,
        batch: Vec::with_capacity(FORWARD_BATCH),
        tx,
    };
    let report = offline::analyze_file_observed(path, &OfflineOptions::default(), &mut forwarder)?;
    if !forwarder.batch.is_empty() {
        let _ = forwarder.tx.send(forwarder.batch);
    }
    Ok(report.error)
}
