//! `reorder-buffer`: the data-level out-of-order bytes a receiver had to hold over time, from a
//! capture made at that receiver (mptcptrace's / mptcpanalyzer's "required buffer").
//!
//! The definition (README, "Reorder buffer"): walk the packets of one connection's direction
//! that arrive at the capturing side, in capture order. The *in-order point* is the next data
//! sequence number the receiver expects: the direction's IDSN + 1, or the first DSN seen when
//! the keys were not captured. Data beyond the in-order point is held; data that reaches it
//! advances it over itself and over all held data contiguous with it. The occupancy is the
//! number of bytes held (a union: data carried twice is held once). Every change of occupancy is
//! a sample; the maximum and the first time it was reached are the result, with the bytes each
//! subflow had brought (first) to the held data at that moment.
//!
//! The walk reads the analysis's per-packet records (`analysis::record`): the data ranges are
//! the ones the summaries count, not a second parse. Data sequence numbers are modular: the
//! walk measures everything as a signed distance from the in-order point, so a transfer may
//! cross 2^64. The held data is a map of its own rather than `analysis::ranges::RangeSet`:
//! delivering needs the lowest held piece, which a `RangeSet` does not give, and attributing
//! held bytes to subflows needs each piece's carrier, which merging would lose.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use clap::{Args, ValueEnum};
use serde::Serialize;

use crate::{
    analysis::{Analyzer, direction::Direction, record::PacketRecord},
    offline::{self, OfflineOptions},
    output::table,
    source::pcap::CaptureError,
};

/// The side a capture was made at: the receiver whose buffer is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The capture was made at the client: the server-to-client data is buffered.
    Client,
    /// The capture was made at the server: the client-to-server data is buffered.
    Server,
}

impl Side {
    /// The connection-level direction of the data arriving at this side.
    pub fn receives(self) -> Direction {
        match self {
            Side::Client => Direction::ServerToClient,
            Side::Server => Direction::ClientToServer,
        }
    }

    /// The name the JSON uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }
}

/// `reorder-buffer`'s arguments after the capture: what the CLI and the shell share.
#[derive(Debug, Clone, Args)]
pub struct ReorderArgs {
    /// MPTCP connection id, as list-mptcp shows it.
    pub id: u64,
    /// Where the capture was made: `server` buffers the client-to-server data, `client` the
    /// server-to-client data.
    #[arg(long, value_enum, default_value_t = Side::Server)]
    pub side: Side,
    /// List every sample in the table (the JSON always has them).
    #[arg(long)]
    pub full: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ReorderError {
    #[error("{capture}: no MPTCP connection {id} (list-mptcp shows the connections)")]
    NoConnection { capture: PathBuf, id: u64 },
    #[error(transparent)]
    Capture(#[from] CaptureError),
}

/// `reorder-buffer --json`.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[non_exhaustive]
pub struct ReorderBuffer {
    pub id: u64,
    /// The receiving side (`--side`).
    pub side: Side,
    /// The most bytes held at once.
    pub max_bytes: u64,
    /// Seconds since the connection's first packet when `max_bytes` was first reached; `None`
    /// when nothing was ever held.
    pub at_s: Option<f64>,
    /// Occupancy after each packet that changed it, in capture order.
    pub samples: Vec<Sample>,
    /// At the maximum, the held bytes by the subflow whose packet brought them first, in
    /// subflow order; subflows holding nothing left out.
    pub subflows_at_max: Vec<SubflowHeld>,
    /// Data bytes the receiver acknowledged (DATA_ACK) that the capture never showed arriving:
    /// the in-order point moved over them at the acknowledgement.
    pub uncaptured_bytes: u64,
}

#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
#[non_exhaustive]
pub struct Sample {
    /// Seconds since the connection's first packet.
    pub t_s: f64,
    pub bytes: u64,
}

#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubflowHeld {
    pub tcp_stream: u64,
    pub bytes: u64,
}

/// The receiver's data-level reassembly, fed one arriving data range at a time. Positions are
/// offsets from `base` (the first expected DSN), so that the modular DSNs of one transfer
/// become plain, growing numbers.
#[derive(Debug, Default)]
pub struct Reassembly {
    /// DSN of offset 0; the first DSN fed when not given.
    base: Option<u64>,
    /// The in-order point, an offset.
    next: u64,
    /// Held data, all beyond `next`: start offset → (end offset, subflow index that brought
    /// it). Disjoint; pieces of different subflows are kept apart to attribute them.
    held: BTreeMap<u64, (u64, u32)>,
    held_bytes: u64,
    held_by: BTreeMap<u32, u64>,
    max: Max,
    /// Bytes the receiver's DATA_ACKs moved the in-order point over without the capture
    /// having shown them.
    uncaptured: u64,
    /// The DATA_FIN's data sequence number, once seen.
    fin: Option<u64>,
    /// (timestamp ns, occupancy) at each change.
    samples: Vec<(u64, u64)>,
}

#[derive(Debug, Default)]
struct Max {
    bytes: u64,
    at_ns: Option<u64>,
    by_subflow: BTreeMap<u32, u64>,
}

impl Reassembly {
    /// `first_expected`: the direction's IDSN + 1 when the keys are known.
    pub fn new(first_expected: Option<u64>) -> Self {
        Reassembly {
            base: first_expected,
            ..Default::default()
        }
    }

    /// Data `[start, start + len)` arrives at `ts_ns` on subflow `subflow`.
    pub fn feed(&mut self, ts_ns: u64, subflow: u32, start: u64, len: u64) {
        if len == 0 {
            return;
        }
        let base = *self.base.get_or_insert(start);
        // Signed distance from the in-order point: data behind it was delivered already.
        let ahead = start.wrapping_sub(base.wrapping_add(self.next)) as i64;
        let (from, len) = if ahead >= 0 {
            (self.next.saturating_add(ahead.unsigned_abs()), len)
        } else {
            let behind = ahead.unsigned_abs();
            if behind >= len {
                return;
            }
            (self.next, len - behind)
        };
        self.hold(from, from.saturating_add(len), subflow);
        self.deliver();
        self.sample(ts_ns);
    }

    /// The receiver sent DATA_ACK `ack` at `ts_ns`. It acknowledges only data it has in
    /// order, so an `ack` beyond the in-order point means data the capture did not show (lost
    /// before the capture point, dropped by the capture) reached the receiver: the in-order
    /// point moves to `ack`, and the held data below it is delivered.
    pub fn acked(&mut self, ts_ns: u64, ack: u64) {
        let Some(base) = self.base else { return };
        let ahead = ack.wrapping_sub(base.wrapping_add(self.next)) as i64;
        if ahead <= 0 {
            return;
        }
        let to = self.next.saturating_add(ahead.unsigned_abs());
        let mut held_below = 0;
        while let Some(entry) = self.held.first_entry()
            && *entry.key() < to
        {
            let (start, (end, subflow)) = entry.remove_entry();
            let delivered = end.min(to) - start;
            held_below += delivered;
            self.release(subflow, delivered);
            if end > to {
                self.held.insert(to, (end, subflow));
            }
        }
        // DATA_FIN takes a data sequence number the receiver acknowledges; it is not a byte.
        let fin = self
            .fin
            .map(|fin| fin.wrapping_sub(base.wrapping_add(self.next)) as i64);
        let fin_acked = u64::from(fin.is_some_and(|f| (0..ahead).contains(&f)));
        self.uncaptured += ((to - self.next) - held_below).saturating_sub(fin_acked);
        self.next = to;
        self.deliver();
        self.sample(ts_ns);
    }

    /// The sender's DATA_FIN takes data sequence number `dsn`.
    pub fn data_fin(&mut self, dsn: u64) {
        self.fin = Some(dsn);
    }

    /// Records the occupancy if it changed, and the maximum.
    fn sample(&mut self, ts_ns: u64) {
        let last = self.samples.last().map_or(0, |&(_, bytes)| bytes);
        if self.held_bytes != last {
            self.samples.push((ts_ns, self.held_bytes));
        }
        if self.held_bytes > self.max.bytes {
            self.max = Max {
                bytes: self.held_bytes,
                at_ns: Some(ts_ns),
                by_subflow: self.held_by.clone(),
            };
        }
    }

    /// Holds the parts of `[from, end)` not held yet, as `subflow`'s.
    fn hold(&mut self, from: u64, end: u64, subflow: u32) {
        // The held pieces overlapping [from, end), in order: disjoint, so going down from
        // `end` their ends fall, and the first ending at or before `from` ends the search.
        let mut covered: Vec<(u64, u64)> = self
            .held
            .range(..end)
            .rev()
            .map(|(&s, &(e, _))| (s, e))
            .take_while(|&(_, e)| e > from)
            .collect();
        covered.reverse();
        let mut at = from;
        for (s, e) in covered.into_iter().chain([(end, end)]) {
            if s > at {
                self.held.insert(at, (s, subflow));
                self.held_bytes += s - at;
                *self.held_by.entry(subflow).or_default() += s - at;
            }
            at = at.max(e);
        }
    }

    /// Advances the in-order point over the held data that reaches it.
    fn deliver(&mut self) {
        while let Some(entry) = self.held.first_entry()
            && *entry.key() <= self.next
        {
            let (start, (end, subflow)) = entry.remove_entry();
            self.next = self.next.max(end);
            self.release(subflow, end - start);
        }
    }

    /// `bytes` of `subflow`'s held data were delivered.
    fn release(&mut self, subflow: u32, bytes: u64) {
        self.held_bytes -= bytes;
        if let Some(held) = self.held_by.get_mut(&subflow) {
            *held -= bytes;
        }
    }

    /// Bytes held now.
    pub fn held_bytes(&self) -> u64 {
        self.held_bytes
    }

    /// The result: times relative to `start_ns`, subflow indexes as their TCP streams.
    pub fn finish(self, id: u64, side: Side, start_ns: u64, streams: &[u64]) -> ReorderBuffer {
        let seconds = |ns: u64| ns.saturating_sub(start_ns) as f64 / 1e9;
        ReorderBuffer {
            id,
            side,
            max_bytes: self.max.bytes,
            uncaptured_bytes: self.uncaptured,
            at_s: self.max.at_ns.map(seconds),
            samples: self
                .samples
                .iter()
                .map(|&(ns, bytes)| Sample {
                    t_s: seconds(ns),
                    bytes,
                })
                .collect(),
            subflows_at_max: self
                .max
                .by_subflow
                .iter()
                .filter(|&(_, &bytes)| bytes > 0)
                .map(|(&index, &bytes)| SubflowHeld {
                    tcp_stream: streams.get(index as usize).copied().unwrap_or(u64::MAX),
                    bytes,
                })
                .collect(),
        }
    }
}

/// The reorder buffer of connection `args.id` in a capture already analysed as `analyzer`:
/// reads the capture once more for the connection's records.
pub fn reorder_buffer(
    analyzer: &Analyzer,
    capture: &Path,
    args: &ReorderArgs,
) -> Result<ReorderBuffer, ReorderError> {
    let id = args.id;
    let info = analyzer
        .mptcp_info(id)
        .ok_or_else(|| ReorderError::NoConnection {
            capture: capture.to_path_buf(),
            id,
        })?;
    let direction = args.side.receives();
    let idsn = match direction {
        Direction::ClientToServer => info.client_idsn,
        Direction::ServerToClient => info.server_idsn,
    };
    let mut reassembly = Reassembly::new(idsn.map(|i| i.wrapping_add(1)));
    let mut start_ns = None;
    let mut observe = |r: &PacketRecord| {
        let Some(m) = r.mptcp.filter(|m| u64::from(m.connection) == id) else {
            return;
        };
        start_ns.get_or_insert(r.ts_ns);
        if m.direction == direction {
            if let Some(data) = m.data {
                reassembly.feed(r.ts_ns, m.subflow, data.start, data.len());
            }
            // The mapping's length counts the DATA_FIN, last (0 is the infinite mapping).
            if let Some(map) = m.mapping.filter(|map| m.data_fin && map.len > 0) {
                reassembly.data_fin(map.dsn.wrapping_add(u64::from(map.len) - 1));
            }
        } else if let Some(ack) = m.data_ack {
            // The receiver's own acknowledgement of the buffered direction's data.
            reassembly.acked(r.ts_ns, ack);
        }
    };
    offline::analyze_file_observed(capture, &OfflineOptions::default(), &mut observe)?;
    let streams: Vec<u64> = info.subflows.iter().map(|s| s.tcp_stream).collect();
    Ok(reassembly.finish(id, args.side, start_ns.unwrap_or(0), &streams))
}

/// The table: the maximum, its subflows, and the samples with `full` (else their count).
pub fn table(result: &ReorderBuffer, full: bool) -> String {
    let data = match result.side.receives() {
        Direction::ClientToServer => "client->server",
        Direction::ServerToClient => "server->client",
    };
    let mut text = format!(
        "MPTCP connection {}: out-of-order data held at the {} ({data} data)\n",
        result.id,
        result.side.as_str()
    );
    let at = result
        .at_s
        .map_or_else(String::new, |t| format!(" at {}", table::seconds(t)));
    text.push_str(&format!(
        "maximum held  {}{at}\n",
        table::bytes(result.max_bytes)
    ));
    let hint = if full || result.samples.is_empty() {
        ""
    } else {
        " (--full lists them)"
    };
    text.push_str(&format!("changes       {}{hint}\n", result.samples.len()));
    if result.uncaptured_bytes > 0 {
        text.push_str(&format!(
            "uncaptured    {} acknowledged by the receiver, never seen arriving\n",
            table::bytes(result.uncaptured_bytes)
        ));
    }
    if !result.subflows_at_max.is_empty() {
        text.push_str("\nHeld at the maximum, by the subflow that brought it:\n  STREAM  BYTES\n");
        for s in &result.subflows_at_max {
            text.push_str(&format!("  {:>6}  {}\n", s.tcp_stream, s.bytes));
        }
    }
    if full && !result.samples.is_empty() {
        text.push_str("\n      TIME_S  HELD_BYTES\n");
        for s in &result.samples {
            text.push_str(&format!("  {:>10.6}  {:>10}\n", s.t_s, s.bytes));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn samples(r: &ReorderBuffer) -> Vec<(f64, u64)> {
        r.samples.iter().map(|s| (s.t_s, s.bytes)).collect()
    }

    /// The brief's case, derived by hand: DSN ranges 1..1000, 2001..3000, 3001..4000,
    /// 1001..2000 (1-based, inclusive) arrive in that order, 10 ms apart: 1000 bytes are held
    /// after the second, 2000 after the third, 0 after the fourth fills the gap.
    #[test]
    fn a_gap_filled_last_holds_what_came_after_it() {
        let idsn = 41u64;
        let mut r = Reassembly::new(Some(idsn + 1));
        let first = idsn + 1;
        for (i, (offset, subflow)) in [(0, 0), (2000, 1), (3000, 1), (1000, 0)]
            .into_iter()
            .enumerate()
        {
            r.feed(10 * MS * (i as u64 + 1), subflow, first + offset, 1000);
        }
        let result = r.finish(0, Side::Server, 0, &[3, 5]);
        assert_eq!(samples(&result), [(0.02, 1000), (0.03, 2000), (0.04, 0)]);
        assert_eq!((result.max_bytes, result.at_s), (2000, Some(0.03)));
        assert_eq!(
            result.subflows_at_max,
            [SubflowHeld {
                tcp_stream: 5,
                bytes: 2000
            }]
        );
    }

    /// Duplicates are held once; data behind the in-order point is not held; a range
    /// straddling the in-order point delivers its front and holds nothing; the maximum keeps
    /// its first time.
    #[test]
    fn duplicates_and_old_data_are_not_held_twice() {
        let mut r = Reassembly::new(Some(1000));
        r.feed(MS, 0, 1500, 100); // held 100
        r.feed(2 * MS, 1, 1550, 100); // 1550..1650: 50 new → 150
        r.feed(3 * MS, 0, 1500, 150); // all held already
        assert_eq!(r.held_bytes(), 150);
        r.feed(4 * MS, 0, 1000, 100); // in order, gap 1100..1500 remains
        r.feed(5 * MS, 1, 900, 150); // 900..1050 is behind the in-order point
        r.feed(6 * MS, 0, 1700, 50); // 200
        r.feed(7 * MS, 0, 1100, 400); // fills the gap up to 1650; 1700..1750 stays
        assert_eq!(r.held_bytes(), 50);
        r.feed(8 * MS, 1, 1650, 50); // fills the last gap
        let result = r.finish(7, Side::Client, 0, &[10, 11]);
        assert_eq!(
            samples(&result),
            [
                (0.001, 100),
                (0.002, 150),
                (0.006, 200),
                (0.007, 50),
                (0.008, 0)
            ]
        );
        assert_eq!((result.max_bytes, result.at_s), (200, Some(0.006)));
        // At the maximum: 1500..1600 and 1700..1750 came first on subflow 0, 1600..1650 on 1.
        let by: Vec<_> = result
            .subflows_at_max
            .iter()
            .map(|s| (s.tcp_stream, s.bytes))
            .collect();
        assert_eq!(by, [(10, 150), (11, 50)]);
    }

    /// Without the keys the first DSN seen is the in-order point; the walk crosses 2^64.
    #[test]
    fn first_dsn_is_the_start_without_keys_and_2_pow_64_is_crossed() {
        let mut r = Reassembly::new(None);
        let start = u64::MAX - 99;
        r.feed(MS, 0, start, 50);
        r.feed(2 * MS, 0, start.wrapping_add(100), 100); // past 2^64: held
        assert_eq!(r.held_bytes(), 100);
        r.feed(3 * MS, 0, start.wrapping_add(50), 50);
        assert_eq!(r.held_bytes(), 0);
        let result = r.finish(0, Side::Server, MS, &[0]);
        assert_eq!(samples(&result), [(0.001, 100), (0.002, 0)]);
    }

    /// The receiver's DATA_ACK beyond the in-order point: the data the capture missed was
    /// delivered, and so is the held data up to the ACK and contiguous with it.
    #[test]
    fn a_data_ack_past_a_gap_delivers_what_the_capture_missed() {
        let mut r = Reassembly::new(Some(100));
        r.feed(MS, 0, 100, 100); // in order: next 200
        r.feed(2 * MS, 1, 300, 100); // 100 held: 200..300 never captured
        r.feed(3 * MS, 1, 500, 100); // 200 held
        r.acked(4 * MS, 150); // behind: nothing
        r.acked(5 * MS, 350); // 200..300 uncaptured, 300..350 delivered, 350..400 contiguous
        assert_eq!(r.held_bytes(), 100);
        r.acked(6 * MS, 600); // 400..500 uncaptured, 500..600 delivered
        r.data_fin(600);
        r.acked(7 * MS, 601); // the DATA_FIN is not a byte
        let result = r.finish(0, Side::Server, 0, &[0, 1]);
        assert_eq!(
            samples(&result),
            [(0.002, 100), (0.003, 200), (0.005, 100), (0.006, 0)]
        );
        assert_eq!(result.uncaptured_bytes, 200);
        assert_eq!(result.max_bytes, 200);
    }

    #[test]
    fn nothing_held_is_a_maximum_of_zero_at_no_time() {
        let mut r = Reassembly::new(Some(1));
        r.feed(MS, 0, 1, 10);
        r.feed(2 * MS, 0, 11, 10);
        let result = r.finish(0, Side::Server, 0, &[0]);
        assert_eq!((result.max_bytes, result.at_s), (0, None));
        assert!(result.samples.is_empty() && result.subflows_at_max.is_empty());
        let json = serde_json::to_value(&result).expect("serialises");
        assert_eq!(json["side"], "server");
        assert!(json["at_s"].is_null());
        assert!(table(&result, true).contains("maximum held  0 B\n"));
    }
}
