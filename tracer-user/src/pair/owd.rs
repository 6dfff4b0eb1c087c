//! One-way delays between two capture points of one MPTCP connection: for every data packet of
//! the connection, in both directions, when it left the sender's capture point, when it reached
//! the receiver's (or that it never did), and per subflow and direction the statistics of those
//! delays. The matching itself is `matcher`'s (its module doc says what is matched and when a
//! packet counts as lost), the reading of both captures at once `reading`'s, the text `render`'s;
//! this module summarises.
//!
//! Definitions:
//! - a **packet** is a record of connection `id` in the sender's capture (the client capture
//!   for client→server, the server capture's connection `peer_id` for server→client) with
//!   payload (`payload_len > 0`, keep-alive probes excepted), on a subflow `matched` maps;
//! - `sent_s` / `received_s`: seconds since the Unix epoch, each on its own capture's clock, as
//!   f64 (so about a microsecond of precision); `owd_s` = `received_s − sent_s` minus the clock
//!   offset (server clock − client clock) client→server, plus it server→client, computed from
//!   the nanoseconds; without `--offset` the offset is taken as 0 and `clock_offset_s` is null;
//! - per subflow and direction: `packets` (sent), `lost` (never received within the horizon),
//!   and over the received ones' delays `min_s`, `median_s`, `p95_s`, `max_s`, percentiles by
//!   nearest rank over the n sorted delays (the p-th is the ⌈p·n/100⌉-th smallest, so the
//!   median is the lower middle value); null when nothing was received.
//!
//! Memory: records cross from the two reading threads in bounded batches; the matcher holds
//! the packets in flight (and those sent within a loss horizon after a lost one); the delays
//! go to a temporary file from which the percentiles are found by a few narrowing passes
//! (`quantiles`); `render::write_owd` spills each direction's packet rows to a temporary file
//! too. Nothing kept in memory grows with the capture's length.

use std::{collections::HashMap, path::Path};

use serde::Serialize;

use super::{
    PairError,
    map::MptcpMatch,
    matcher::OwdPacket,
    quantiles::{Limits, SpilledValues},
    reading::match_captures,
};
use crate::analysis::direction::Direction;

/// How the delays are measured.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct OwdOptions {
    /// The server capture's clock minus the client capture's, in seconds; `None`: unknown.
    pub offset_s: Option<f64>,
    /// How far (seconds) the receiver's capture must have moved past a packet before it is
    /// declared lost; `None`: 10 s + twice the largest delay seen (see `matcher`).
    pub horizon_s: Option<f64>,
}

impl OwdOptions {
    pub fn new(offset_s: Option<f64>, horizon_s: Option<f64>) -> Self {
        OwdOptions {
            offset_s,
            horizon_s,
        }
    }

    /// The offset in ns, 0 when unknown.
    pub(crate) fn offset_ns(&self) -> i64 {
        self.offset_s.map_or(0, |s| (s * 1e9).round() as i64)
    }

    pub(crate) fn horizon_ns(&self) -> Option<i64> {
        self.horizon_s.map(|s| (s * 1e9).round() as i64)
    }
}

/// The delays of one connection, per direction and subflow.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[non_exhaustive]
pub struct OwdReport {
    pub id: u64,
    pub peer_id: u64,
    /// The offset given (server − client, seconds); null: unknown, delays include it.
    pub clock_offset_s: Option<f64>,
    /// The loss horizon in force at the end (seconds).
    pub horizon_s: f64,
    /// What a reader should know: damaged captures, an unknown clock offset.
    pub notes: Vec<String>,
    pub directions: Vec<OwdDirection>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[non_exhaustive]
pub struct OwdDirection {
    pub direction: Direction,
    pub subflows: Vec<SubflowDelays>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[non_exhaustive]
pub struct SubflowDelays {
    pub tcp_stream: u64,
    pub peer_tcp_stream: Option<u64>,
    pub packets: u64,
    pub lost: u64,
    /// Received records no sent packet accounted for (e.g. packets the sender's capture
    /// missed).
    pub unmatched_received: u64,
    pub min_s: Option<f64>,
    pub median_s: Option<f64>,
    pub p95_s: Option<f64>,
    pub max_s: Option<f64>,
}

/// Measures the one-way delays of `matched.id` (client capture) / `matched.peer_id` (server
/// capture), handing every packet to `each_packet` as soon as it is resolved: per direction in
/// send order, the two directions interleaved.
pub fn owd(
    client: &Path,
    server: &Path,
    matched: &MptcpMatch,
    options: &OwdOptions,
    each_packet: &mut dyn FnMut(&OwdPacket),
) -> Result<OwdReport, PairError> {
    let mut stats = DelayStats::new(Limits::default())?;
    let mut failed = None;
    let (offset_ns, horizon_ns) = (options.offset_ns(), options.horizon_ns());
    let mut run = match_captures(
        client,
        server,
        matched,
        offset_ns,
        horizon_ns,
        &mut |p: &OwdPacket| {
            if let Err(error) = stats.add(p.direction, p.tcp_stream, p.owd_ns) {
                failed.get_or_insert(error);
            }
            each_packet(p);
        },
    )?;
    if let Some(error) = failed {
        return Err(error.into());
    }
    let mut summaries = stats.summaries()?;
    let mut notes = std::mem::take(&mut run.notes);
    if options.offset_s.is_none() {
        notes.push(String::from(
            "the clocks' offset is unknown: delays include it (give --offset)",
        ));
    }
    let directions = Direction::BOTH
        .into_iter()
        .map(|direction| OwdDirection {
            direction,
            subflows: matched
                .subflows
                .iter()
                .map(|s| {
                    let summary = summaries
                        .remove(&(direction, s.tcp_stream))
                        .unwrap_or_default();
                    summary.named(
                        s.tcp_stream,
                        s.peer_tcp_stream,
                        run.unmatched(direction, s.tcp_stream),
                    )
                })
                .collect(),
        })
        .collect();
    Ok(OwdReport {
        id: matched.id,
        peer_id: matched.peer_id,
        clock_offset_s: options.offset_s,
        horizon_s: run.horizon_s,
        notes,
        directions,
    })
}

/// The delays of every subflow and direction: counts here, the delays themselves spilled
/// (`quantiles`), so memory does not grow with the capture.
struct DelayStats {
    keys: HashMap<(Direction, u64), u32>,
    /// Per key: packets and lost.
    counts: Vec<(u64, u64)>,
    delays: SpilledValues,
}

impl DelayStats {
    fn new(limits: Limits) -> std::io::Result<Self> {
        Ok(DelayStats {
            keys: HashMap::new(),
            counts: Vec::new(),
            delays: SpilledValues::create(limits)?,
        })
    }

    fn add(
        &mut self,
        direction: Direction,
        tcp_stream: u64,
        owd_ns: Option<i64>,
    ) -> std::io::Result<()> {
        let next = self.counts.len() as u32;
        let key = *self.keys.entry((direction, tcp_stream)).or_insert(next);
        if key == next {
            self.counts.push((0, 0));
        }
        let counts = &mut self.counts[key as usize];
        counts.0 += 1;
        match owd_ns {
            Some(ns) => self.delays.add(key, ns),
            None => {
                counts.1 += 1;
                Ok(())
            }
        }
    }

    /// The statistics of every key, by key.
    fn summaries(mut self) -> std::io::Result<HashMap<(Direction, u64), Summary>> {
        let percentiles = self.delays.percentiles(&[50, 95])?;
        let s = |ns: Option<i64>| ns.map(|ns| ns as f64 / 1e9);
        Ok(self
            .keys
            .iter()
            .map(|(&at, &key)| {
                let stats = self.delays.stats(key);
                let received = stats.count > 0;
                let p = percentiles.get(key as usize);
                let (packets, lost) = self.counts[key as usize];
                let summary = Summary {
                    packets,
                    lost,
                    min_s: s(received.then_some(stats.min)),
                    median_s: s(p.and_then(|p| p[0])),
                    p95_s: s(p.and_then(|p| p[1])),
                    max_s: s(received.then_some(stats.max)),
                };
                (at, summary)
            })
            .collect())
    }
}

/// One subflow and direction's numbers, before they are named in a `SubflowDelays`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Summary {
    packets: u64,
    lost: u64,
    min_s: Option<f64>,
    median_s: Option<f64>,
    p95_s: Option<f64>,
    max_s: Option<f64>,
}

impl Summary {
    fn named(self, tcp_stream: u64, peer: Option<u64>, unmatched: u64) -> SubflowDelays {
        SubflowDelays {
            tcp_stream,
            peer_tcp_stream: peer,
            packets: self.packets,
            lost: self.lost,
            unmatched_received: unmatched,
            min_s: self.min_s,
            median_s: self.median_s,
            p95_s: self.p95_s,
            max_s: self.max_s,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::{
        analysis::record::PacketRecord,
        offline::{self, OfflineOptions},
        pair::{
            map::SubflowMatch,
            render::{render_owd_table, write_owd},
        },
    };

    /// The shared captures of one experiment at the client and at the server, if present.
    fn shared_pair() -> Option<(PathBuf, PathBuf)> {
        let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/pcaps"));
        let pair = (dir.join("client_2.pcap"), dir.join("server_2.pcap"));
        (pair.0.exists() && pair.1.exists()).then_some(pair)
    }

    /// Connection 0 of the shared pair, mapped by hand from `list-mptcp --json` of both files
    /// (same keys): client stream 0 ↔ 0 (10.0.0.1:59482), 1 ↔ 5 (11.0.0.1:60453, whose early
    /// packets the server capture files as stream 2, before the join SYN), 2 ↔ 1
    /// (10.0.0.1:49807), 6 ↔ 7 (11.0.0.1:55233).
    fn shared_match() -> MptcpMatch {
        let subflow = |tcp_stream, peer| SubflowMatch {
            tcp_stream,
            peer_tcp_stream: Some(peer),
        };
        MptcpMatch {
            id: 0,
            peer_id: 0,
            score: 0,
            evidence: Vec::new(),
            subflows: vec![subflow(0, 0), subflow(1, 5), subflow(2, 1), subflow(6, 7)],
            peer_unmatched_subflows: vec![2],
        }
    }

    /// Data packets of connection `id` sent in `direction` as a capture's records count them.
    fn data_packets(path: &Path, id: u32, direction: Direction) -> u64 {
        let mut count = 0;
        let mut observer = |r: &PacketRecord| {
            if r.payload_len > 0
                && !r.keep_alive
                && r.mptcp
                    .is_some_and(|m| m.connection == id && m.direction == direction)
            {
                count += 1;
            }
        };
        offline::analyze_file_observed(path, &OfflineOptions::default(), &mut observer)
            .expect("readable");
        count
    }

    /// Connection 1 (the bulk transfer), mapped the same way: 3 ↔ 3, 4 ↔ 4, 5 ↔ 6, and 7
    /// (11.0.0.1:40191 → 10.0.0.2, a join the server capture does not have) ↔ nothing.
    fn shared_match_1() -> MptcpMatch {
        let subflow = |tcp_stream, peer_tcp_stream| SubflowMatch {
            tcp_stream,
            peer_tcp_stream,
        };
        MptcpMatch {
            id: 1,
            peer_id: 1,
            score: 0,
            evidence: Vec::new(),
            subflows: vec![
                subflow(3, Some(3)),
                subflow(4, Some(4)),
                subflow(5, Some(6)),
                subflow(7, None),
            ],
            peer_unmatched_subflows: vec![],
        }
    }

    /// `owd` on the shared pair: every data packet of the connection is reported once (the
    /// counts equal the records' own), delays are plausible for a lab whose clocks agree (the
    /// two captures were taken on one host: ≥ 0 and below a second), and the per-subflow
    /// statistics are those of the packets handed out.
    fn check_shared(matched: &MptcpMatch) {
        let Some((client, server)) = shared_pair() else {
            eprintln!("skipped: /work/shared/pcaps is absent");
            return;
        };
        let mut packets = Vec::new();
        let report = owd(
            &client,
            &server,
            matched,
            &OwdOptions::default(),
            &mut |p| {
                packets.push(*p);
            },
        )
        .expect("both captures have the connection");
        eprintln!("{}", render_owd_table(&report));
        let total = |d: usize| -> (u64, u64) {
            report.directions[d]
                .subflows
                .iter()
                .fold((0, 0), |(p, l), s| (p + s.packets, l + s.lost))
        };
        let id = u32::try_from(matched.id).expect("small id");
        let peer_id = u32::try_from(matched.peer_id).expect("small id");
        // Client→server from the client capture, server→client from the server capture.
        let c2s = data_packets(&client, id, Direction::ClientToServer);
        let s2c = data_packets(&server, peer_id, Direction::ServerToClient);
        assert!(c2s + s2c > 0);
        assert_eq!(total(0).0, c2s);
        assert_eq!(total(1).0, s2c);
        assert_eq!(packets.len() as u64, c2s + s2c);
        let lost = packets.iter().filter(|p| p.received_ns.is_none()).count() as u64;
        assert_eq!(lost, total(0).1 + total(1).1);
        for p in &packets {
            if let Some(owd) = p.owd_ns {
                assert!((0..1_000_000_000).contains(&owd), "{p:?}");
            }
        }
        assert!(report.clock_offset_s.is_none() && !report.notes.is_empty());
    }

    #[test]
    fn shared_pair_connection_0() {
        check_shared(&shared_match());
    }

    #[test]
    fn shared_pair_connection_1() {
        check_shared(&shared_match_1());
    }

    /// Connection 1's client→server statistics against tshark 4.0.17: per client port, the
    /// data packets of the client capture (`tcp.len > 0`), each received when the server
    /// capture's packets of the same port and TSval cover its `tcp.seq` range, at the latest
    /// covering packet's `frame.time_epoch`; percentiles by nearest rank (a Python script over
    /// `tshark -T fields`, run once; the numbers are its output, in µs).
    #[test]
    fn shared_pair_statistics_match_tshark() {
        let Some((client, server)) = shared_pair() else {
            eprintln!("skipped: /work/shared/pcaps is absent");
            return;
        };
        let report = owd(
            &client,
            &server,
            &shared_match_1(),
            &OwdOptions::default(),
            &mut |_| {},
        )
        .expect("connection 1");
        let us = |s: Option<f64>| s.map(|s| (s * 1e6).round() as i64);
        let seen: Vec<_> = report.directions[0]
            .subflows
            .iter()
            .map(|s| {
                (
                    s.tcp_stream,
                    s.packets,
                    s.lost,
                    us(s.min_s),
                    us(s.median_s),
                    us(s.p95_s),
                    us(s.max_s),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                (
                    3,
                    410,
                    3,
                    Some(50_009),
                    Some(51_158),
                    Some(56_923),
                    Some(70_803)
                ),
                (
                    4,
                    504,
                    7,
                    Some(50_009),
                    Some(50_891),
                    Some(56_879),
                    Some(171_734)
                ),
                (
                    5,
                    17,
                    4,
                    Some(20_022),
                    Some(20_381),
                    Some(21_376),
                    Some(21_376)
                ),
                (7, 0, 0, None, None, None, None),
            ]
        );
    }

    /// Without the packets, the written JSON is the report's own serialisation.
    fn assert_json_is_report(written: &serde_json::Value, report: &OwdReport) {
        let mut without_packets = written.clone();
        for direction in without_packets["directions"]
            .as_array_mut()
            .expect("directions")
        {
            direction.as_object_mut().expect("object").remove("packets");
        }
        assert_eq!(without_packets, serde_json::to_value(report).expect("JSON"));
    }

    /// Five delays and a loss: nearest-rank statistics by hand. Sorted delays 5, 7, 9, 12,
    /// 30 ms: median = the ⌈2.5⌉ = 3rd = 9 ms, p95 = the ⌈4.75⌉ = 5th = 30 ms. With limits
    /// that force narrowing passes, the same.
    #[test]
    fn statistics_by_nearest_rank() {
        for limits in [
            Limits::default(),
            Limits {
                sort_at_most: 1,
                buckets: 2,
            },
        ] {
            let mut stats = DelayStats::new(limits).expect("temp file");
            let c2s = Direction::ClientToServer;
            for ms in [Some(5), Some(12), None, Some(7), Some(30), Some(9)] {
                stats
                    .add(c2s, 3, ms.map(|ms: i64| ms * 1_000_000))
                    .expect("spilled");
            }
            stats
                .add(Direction::ServerToClient, 3, None)
                .expect("spilled");
            let summaries = stats.summaries().expect("read back");
            let s = summaries[&(c2s, 3)].named(3, Some(4), 2);
            assert_eq!((s.tcp_stream, s.peer_tcp_stream), (3, Some(4)));
            assert_eq!((s.packets, s.lost, s.unmatched_received), (6, 1, 2));
            assert_eq!(
                (s.min_s, s.median_s, s.p95_s, s.max_s),
                (Some(0.005), Some(0.009), Some(0.03), Some(0.03))
            );
            let none = summaries[&(Direction::ServerToClient, 3)];
            assert_eq!((none.packets, none.lost), (1, 1));
            assert_eq!(
                (none.min_s, none.median_s, none.p95_s, none.max_s),
                (None, None, None, None)
            );
        }
    }

    /// `write_owd` on the shared pair: the JSON has the shape (keys, DSN as a decimal
    /// string, one row per packet in its direction) and the same statistics as `owd`; the
    /// table starts with the statistics and lists every packet.
    #[test]
    fn written_json_and_table() {
        let Some((client, server)) = shared_pair() else {
            eprintln!("skipped: /work/shared/pcaps is absent");
            return;
        };
        let matched = shared_match_1();
        let options = OwdOptions::new(Some(0.0), None);
        let mut json = Vec::new();
        let report = write_owd(&mut json, true, &client, &server, &matched, &options, true)
            .expect("written");
        let value: serde_json::Value = serde_json::from_slice(&json).expect("valid JSON");
        // Without the packets, the written JSON is the report's own serialisation.
        let mut without_packets = value.clone();
        for direction in without_packets["directions"]
            .as_array_mut()
            .expect("directions")
        {
            direction.as_object_mut().expect("object").remove("packets");
        }
        assert_eq!(
            without_packets,
            serde_json::to_value(&report).expect("JSON")
        );
        assert_eq!(value["id"], 1);
        assert_eq!(value["clock_offset_s"], 0.0);
        let directions = value["directions"].as_array().expect("directions");
        assert_eq!(directions.len(), 2);
        assert_eq!(directions[0]["direction"], "client_to_server");
        for (d, written) in report.directions.iter().zip(directions) {
            let packets = written["packets"].as_array().expect("packets");
            let sum: u64 = d.subflows.iter().map(|s| s.packets).sum();
            assert_eq!(packets.len() as u64, sum);
            assert_eq!(
                written["subflows"],
                serde_json::to_value(&d.subflows).expect("json")
            );
            for p in packets {
                for key in ["sent_s", "received_s", "owd_s", "tcp_stream", "dsn", "len"] {
                    assert!(p.get(key).is_some(), "{key} in {p}");
                }
                assert!(p["dsn"].is_string() || p["dsn"].is_null());
                assert!(p["retransmission"].is_boolean() && p["reinjection"].is_boolean());
            }
        }
        let mut table = Vec::new();
        write_owd(
            &mut table, false, &client, &server, &matched, &options, true,
        )
        .expect("written");
        let table = String::from_utf8(table).expect("text");
        assert!(table.starts_with(&render_owd_table(&report)));
        let sum: u64 = report
            .directions
            .iter()
            .flat_map(|d| &d.subflows)
            .map(|s| s.packets)
            .sum();
        // Packet rows start with the send time; no other line starts with a number.
        let rows = table
            .lines()
            .filter(|l| {
                l.split_whitespace()
                    .next()
                    .is_some_and(|t| t.parse::<f64>().is_ok())
            })
            .count();
        assert_eq!(rows as u64, sum);
    }

    /// A measuring aid, not a check: `MPTCP_OWD_PAIR=client,server` (connection 0, one
    /// subflow, stream 0 in both) through `write_owd` with every packet to nowhere;
    /// `MPTCP_OWD_HORIZON` seconds if set. Run it under `/usr/bin/time -v` for time and peak
    /// memory.
    #[test]
    #[ignore = "needs MPTCP_OWD_PAIR"]
    fn measure_owd_of_a_pair() {
        let Ok(pair) = std::env::var("MPTCP_OWD_PAIR") else {
            eprintln!("skipped: MPTCP_OWD_PAIR is not set");
            return;
        };
        let Some((client, server)) = pair.split_once(',') else {
            panic!("MPTCP_OWD_PAIR=client,server");
        };
        let horizon = std::env::var("MPTCP_OWD_HORIZON")
            .ok()
            .and_then(|h| h.parse().ok());
        let matched = MptcpMatch {
            id: 0,
            peer_id: 0,
            score: 0,
            evidence: Vec::new(),
            subflows: vec![SubflowMatch {
                tcp_stream: 0,
                peer_tcp_stream: Some(0),
            }],
            peer_unmatched_subflows: vec![],
        };
        let options = OwdOptions::new(Some(0.0), horizon);
        let report = write_owd(
            &mut std::io::sink(),
            true,
            Path::new(client),
            Path::new(server),
            &matched,
            &options,
            true,
        )
        .expect("owd");
        eprintln!("{}", render_owd_table(&report));
    }

    /// Hand-made captures written as pcapng files (raw IPv4, only the headers captured, as
    /// with a 128-byte snap length): the client and the server side of one MPTCP v0
    /// connection.
    pub(crate) mod tiny_pair {
        use super::*;
        use crate::{output::pcapng::PcapngEventWriter, source::pcap::tests::TempDir};

        // Keys of the shared captures' connection 0 and the IDSNs they hash to (SHA-1).
        const C_KEY: u64 = 14568871653868829995;
        const S_KEY: u64 = 12070231261294881532;
        const S_TOKEN: u32 = 804647408;
        pub(crate) const C_IDSN: u64 = 5947950023132234492;
        const S_IDSN: u64 = 5227567736771178707;
        pub(crate) const T0: u64 = 1_700_000_000_000_000_000;
        const US: u64 = 1000;
        const SYN: u8 = 0x02;
        const ACK: u8 = 0x10;

        /// The clients of subflows 0 and 1: 10.0.0.1:40000 and 11.0.0.1:40001 as the client
        /// capture sees them, 192.0.2.7:50000 and :50001 behind a NAT as the server capture
        /// sees them; server 10.0.0.2:5201. ISNs 1000 (client), 9000 (server) on both.
        #[derive(Clone, Copy)]
        struct Ends {
            clients: [([u8; 4], u16); 2],
            server: ([u8; 4], u16),
        }

        const AT_CLIENT: Ends = Ends {
            clients: [([10, 0, 0, 1], 40000), ([11, 0, 0, 1], 40001)],
            server: ([10, 0, 0, 2], 5201),
        };
        const AT_SERVER: Ends = Ends {
            clients: [([192, 0, 2, 7], 50000), ([192, 0, 2, 7], 50001)],
            server: ([10, 0, 0, 2], 5201),
        };

        fn capable(keys: &[u64]) -> Vec<u8> {
            let mut o = vec![30, 4 + 8 * keys.len() as u8, 0x00, 0x01];
            keys.iter().for_each(|k| o.extend(k.to_be_bytes()));
            o
        }

        fn dss(dsn: u64, ssn: u32, len: u16) -> Vec<u8> {
            let mut o = vec![30, 18, 0x20, 0x0c];
            o.extend(dsn.to_be_bytes());
            o.extend(ssn.to_be_bytes());
            o.extend(len.to_be_bytes());
            o
        }

        fn timestamps(tsval: u32) -> Vec<u8> {
            let mut o = vec![1, 1, 8, 10];
            o.extend(tsval.to_be_bytes());
            o.extend(0u32.to_be_bytes());
            o
        }

        /// One segment's headers (what a 128-byte snap length keeps) and its length on the
        /// wire.
        struct Segment {
            subflow: usize,
            from_client: bool,
            seq: u32,
            ack: u32,
            flags: u8,
            options: Vec<u8>,
            payload: u16,
        }

        fn bytes(ends: Ends, s: &Segment) -> (Vec<u8>, u32) {
            let client = ends.clients[s.subflow];
            let (src, dst) = if s.from_client {
                (client, ends.server)
            } else {
                (ends.server, client)
            };
            let mut options = s.options.clone();
            options.resize(options.len().div_ceil(4) * 4, 0);
            let tcp_len = 20 + options.len();
            let total = (20 + tcp_len) as u16 + s.payload;
            let mut b = vec![0x45, 0];
            b.extend(total.to_be_bytes());
            b.extend([0, 1, 0x40, 0, 64, 6, 0, 0]);
            b.extend(src.0);
            b.extend(dst.0);
            b.extend(src.1.to_be_bytes());
            b.extend(dst.1.to_be_bytes());
            b.extend(s.seq.to_be_bytes());
            b.extend(s.ack.to_be_bytes());
            b.extend([((tcp_len / 4) as u8) << 4, s.flags, 0xff, 0xff, 0, 0, 0, 0]);
            b.extend(options);
            (b, u32::from(total))
        }

        fn write(dir: &TempDir, name: &str, ends: Ends, segments: &[(u64, &Segment)]) -> PathBuf {
            let path = dir.0.join(name);
            let mut writer = PcapngEventWriter::create(&path, false).expect("create");
            let iface = writer.add_interface("eth0", 1, None).expect("interface");
            for (at_us, segment) in segments {
                let (data, orig_len) = bytes(ends, segment);
                writer
                    .write_packet(iface, T0 + at_us * US, true, &data, orig_len, 0)
                    .expect("write");
            }
            writer.flush().expect("flush");
            path
        }

        /// Data of the connection at data offset `off` (from the IDSN) carried by subflow
        /// sequence `seq`.
        fn data(
            subflow: usize,
            from_client: bool,
            seq: u32,
            off: u32,
            len: u16,
            tsval: u32,
        ) -> Segment {
            let (isn, idsn) = if from_client {
                (1000, C_IDSN)
            } else {
                (9000, S_IDSN)
            };
            let mut options = timestamps(tsval);
            options.extend(dss(idsn + u64::from(off), seq, len));
            Segment {
                subflow,
                from_client,
                seq: isn + seq,
                ack: 0,
                flags: ACK,
                options,
                payload: len,
            }
        }

        /// The handshake, client data [1, 1001) sent at 20 ms and received at 25 ms, [1001,
        /// 2001) sent at 21 ms (TSval 101) and lost, its retransmission (TSval 150) sent at
        /// 300 ms and received at 305 ms, and server data [1, 501) sent at 50 ms (server
        /// clock) and received at 55 ms. A join (subflow 1) at 60 ms reinjects data [1001,
        /// 2001) at 100 ms (received at 105 ms, before the retransmission) and [1, 1001) at
        /// 110 ms (received at 115 ms, after the original). Both clocks agree.
        pub(crate) fn captures(dir: &TempDir) -> (PathBuf, PathBuf) {
            let handshake = |subflow: usize, from_client, seq, ack, flags, options| Segment {
                subflow,
                from_client,
                seq,
                ack,
                flags,
                options,
                payload: 0,
            };
            let syn = handshake(0, true, 1000, 0, SYN, capable(&[C_KEY]));
            let syn_ack = handshake(0, false, 9000, 1001, SYN | ACK, capable(&[S_KEY]));
            let third = handshake(0, true, 1001, 9001, ACK, capable(&[C_KEY, S_KEY]));
            let mut join = vec![30, 12, 0x10, 2];
            join.extend(S_TOKEN.to_be_bytes());
            join.extend(7u32.to_be_bytes());
            let join_syn = handshake(1, true, 1000, 0, SYN, join);
            let mut join_ack = vec![30, 16, 0x10, 0];
            join_ack.extend([0; 12]);
            let join_syn_ack = handshake(1, false, 9000, 1001, SYN | ACK, join_ack);
            let d1 = data(0, true, 1, 1, 1000, 100);
            let d2 = data(0, true, 1001, 1001, 1000, 101);
            let d2_again = data(0, true, 1001, 1001, 1000, 150);
            let back = data(0, false, 1, 1, 500, 7);
            let reinjected_d2 = data(1, true, 1, 1001, 1000, 500);
            let reinjected_d1 = data(1, true, 1001, 1, 1000, 501);
            let client = write(
                dir,
                "client.pcapng",
                AT_CLIENT,
                &[
                    (0, &syn),
                    (10_000, &syn_ack),
                    (10_100, &third),
                    (20_000, &d1),
                    (21_000, &d2),
                    (55_000, &back),
                    (60_000, &join_syn),
                    (70_000, &join_syn_ack),
                    (100_000, &reinjected_d2),
                    (110_000, &reinjected_d1),
                    (300_000, &d2_again),
                ],
            );
            let server = write(
                dir,
                "server.pcapng",
                AT_SERVER,
                &[
                    (5_000, &syn),
                    (5_100, &syn_ack),
                    (15_100, &third),
                    (25_000, &d1),
                    (50_000, &back),
                    (65_000, &join_syn),
                    (65_100, &join_syn_ack),
                    (105_000, &reinjected_d2),
                    (115_000, &reinjected_d1),
                    (305_000, &d2_again),
                ],
            );
            (client, server)
        }

        /// Subflow 0 ↔ 0 and subflow 1 ↔ 1.
        pub(crate) fn both_subflows() -> MptcpMatch {
            let mut matched = one_subflow();
            matched.subflows.push(SubflowMatch {
                tcp_stream: 1,
                peer_tcp_stream: Some(1),
            });
            matched
        }

        fn one_subflow() -> MptcpMatch {
            MptcpMatch {
                id: 0,
                peer_id: 0,
                score: 0,
                evidence: Vec::new(),
                subflows: vec![SubflowMatch {
                    tcp_stream: 0,
                    peer_tcp_stream: Some(0),
                }],
                peer_unmatched_subflows: vec![],
            }
        }

        /// `owd` from the files: the lost copy, the retransmission matched by its TSval, the
        /// way back, exact delays and statistics; the JSON carries the DSNs; a connection the
        /// capture does not have is an error.
        #[test]
        fn owd_of_a_tiny_pcap_pair() {
            let dir = TempDir::new("owd-tiny-pair");
            let (client, server) = captures(&dir);
            let mut packets = Vec::new();
            let options = OwdOptions::new(Some(0.0), None);
            let report = owd(&client, &server, &one_subflow(), &options, &mut |p| {
                packets.push(*p);
            })
            .expect("owd");
            let seen: Vec<_> = packets
                .iter()
                .map(|p| {
                    (
                        p.direction,
                        p.frame,
                        p.owd_ns.map(|ns| ns / 1000),
                        p.data.map(|d| d.start),
                        p.retransmission,
                    )
                })
                .collect();
            let (c2s, s2c) = (Direction::ClientToServer, Direction::ServerToClient);
            assert_eq!(
                seen,
                [
                    (c2s, 4, Some(5_000), Some(C_IDSN + 1), false),
                    (s2c, 5, Some(5_000), Some(S_IDSN + 1), false),
                    (c2s, 5, None, Some(C_IDSN + 1001), false),
                    (c2s, 11, Some(5_000), Some(C_IDSN + 1001), true),
                ]
            );
            let sub = &report.directions[0].subflows[0];
            assert_eq!(
                (sub.packets, sub.lost, sub.min_s, sub.max_s),
                (3, 1, Some(0.005), Some(0.005))
            );
            let back = &report.directions[1].subflows[0];
            assert_eq!(
                (back.packets, back.lost, back.median_s),
                (1, 0, Some(0.005))
            );
            assert_eq!(report.clock_offset_s, Some(0.0));
            // Subflow 1's two reinjections are in both captures, but this mapping lacks it.
            assert_eq!(
                report.notes,
                [
                    "2 data packets of the connection in the client capture are on subflows the mapping has no counterpart for: not reported",
                    "2 data packets of the connection in the server capture are on subflows the mapping has no counterpart for: not reported",
                ]
            );

            let mut json = Vec::new();
            write_owd(
                &mut json,
                true,
                &client,
                &server,
                &one_subflow(),
                &options,
                true,
            )
            .expect("written");
            let value: serde_json::Value = serde_json::from_slice(&json).expect("JSON");
            assert_json_is_report(&value, &report);
            let row = &value["directions"][0]["packets"][0];
            assert_eq!(row["dsn"], (C_IDSN + 1).to_string());
            assert_eq!(
                (row["len"].as_u64(), row["owd_s"].as_f64()),
                (Some(1000), Some(0.005))
            );
            assert_eq!(
                value["directions"][0]["packets"][1]["received_s"],
                serde_json::Value::Null
            );

            let mut other = one_subflow();
            other.id = 3;
            assert!(matches!(
                owd(&client, &server, &other, &options, &mut |_| {}),
                Err(PairError::NoConnection { id: 3, .. })
            ));
        }
    }
}
