//! The series of each plot kind, computed from the analysis's per-packet records of one
//! connection and direction (`analysis::record`): one series per subflow, one point per packet
//! the kind counts, so a series has as many points as the analysis has such packets.

use std::collections::VecDeque;

use serde::Serialize;

use super::PlotKind;
use crate::analysis::record::PacketRecord;

/// A plot's data, ready to draw or print.
#[derive(Clone, Debug, Serialize)]
pub struct Plot {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// One per subflow, in subflow order; then, for throughput and goodput, the total.
    pub series: Vec<Series>,
    /// Connection events drawn as vertical markers: (seconds, name).
    pub events: Vec<Marker>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Series {
    pub label: String,
    /// The subflow's TCP stream; `None` for the total.
    pub tcp_stream: Option<u32>,
    /// (seconds since the connection's first packet, value).
    pub points: Vec<(f64, f64)>,
    /// Points drawn marked (reinjections on `dsn`, retransmissions on `subflow-seq`).
    pub marked: Vec<(f64, f64)>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Marker {
    pub time_s: f64,
    pub kind: String,
}

/// What a kind's series need besides the records.
pub struct Context {
    /// Time zero: the connection's first packet.
    pub start_ns: u64,
    /// The direction's data sequence number zero (IDSN + 1), when known; else the lowest DSN
    /// carried.
    pub dsn_zero: Option<u64>,
    /// The subflows to draw: (index in the connection, TCP stream).
    pub subflows: Vec<(u32, u32)>,
    /// Sliding window of throughput and goodput, seconds.
    pub window_s: f64,
}

/// The series of `kind` from `records` (one connection and direction, in capture order).
pub fn series_of(kind: PlotKind, records: &[PacketRecord], context: &Context) -> Vec<Series> {
    let time = |r: &PacketRecord| r.ts_ns.saturating_sub(context.start_ns) as f64 / 1e9;
    let dsn_zero = context.dsn_zero.unwrap_or_else(|| {
        records
            .iter()
            .filter_map(|r| r.mptcp?.data.map(|d| d.start))
            .min()
            .unwrap_or(0)
    });
    let mut series: Vec<Series> = context
        .subflows
        .iter()
        .map(|&(index, stream)| {
            let of_subflow = records
                .iter()
                .filter(move |r| r.mptcp.is_some_and(|m| m.subflow == index));
            let (points, marked) = match kind {
                PlotKind::Dsn => dsn(of_subflow, dsn_zero, &time),
                PlotKind::Throughput => windowed(of_subflow, context.window_s, &time, |r| {
                    u64::from(r.payload_len)
                }),
                PlotKind::Goodput => windowed(of_subflow, context.window_s, &time, |r| {
                    r.mptcp.map_or(0, |m| m.new_bytes)
                }),
                PlotKind::Interarrival => interarrival(of_subflow, &time),
                PlotKind::Reinjections => reinjections(of_subflow, &time),
                PlotKind::SubflowSeq => subflow_seq(of_subflow, &time),
                // Its series come from two captures (`super::owd`), not from one's records.
                PlotKind::Owd => (Vec::new(), Vec::new()),
            };
            Series {
                label: format!("subflow {index} (tcp stream {stream})"),
                tcp_stream: Some(stream),
                points,
                marked,
            }
        })
        .collect();
    if matches!(kind, PlotKind::Throughput | PlotKind::Goodput) {
        let wanted = |r: &&PacketRecord| {
            r.mptcp
                .is_some_and(|m| context.subflows.iter().any(|&(i, _)| i == m.subflow))
        };
        let (points, _) = match kind {
            PlotKind::Throughput => windowed(
                records.iter().filter(wanted),
                context.window_s,
                &time,
                |r| u64::from(r.payload_len),
            ),
            _ => windowed(
                records.iter().filter(wanted),
                context.window_s,
                &time,
                |r| r.mptcp.map_or(0, |m| m.new_bytes),
            ),
        };
        series.push(Series {
            label: "total".to_owned(),
            tcp_stream: None,
            points,
            marked: Vec::new(),
        });
    }
    series
}

type Points = (Vec<(f64, f64)>, Vec<(f64, f64)>);

/// Data sequence number (relative to `zero`) of each packet carrying data; reinjections marked.
fn dsn<'a>(
    records: impl Iterator<Item = &'a PacketRecord>,
    zero: u64,
    time: &dyn Fn(&PacketRecord) -> f64,
) -> Points {
    let (mut points, mut marked) = (Vec::new(), Vec::new());
    for r in records {
        let Some(m) = r.mptcp else { continue };
        let Some(data) = m.data else { continue };
        let point = (time(r), data.start.wrapping_sub(zero) as f64);
        points.push(point);
        if m.reinjected_bytes > 0 {
            marked.push(point);
        }
    }
    (points, marked)
}

/// At each packet, the bytes `bytes` counts over the last `window_s` seconds, in Mbit/s.
fn windowed<'a>(
    records: impl Iterator<Item = &'a PacketRecord>,
    window_s: f64,
    time: &dyn Fn(&PacketRecord) -> f64,
    bytes: impl Fn(&PacketRecord) -> u64,
) -> Points {
    let mut window: VecDeque<(f64, u64)> = VecDeque::new();
    let mut sum = 0u64;
    let mut points = Vec::new();
    for r in records {
        let t = time(r);
        let b = bytes(r);
        window.push_back((t, b));
        sum += b;
        while let Some(&(oldest, old)) = window.front() {
            if oldest > t - window_s {
                break;
            }
            window.pop_front();
            sum -= old;
        }
        points.push((t, sum as f64 * 8.0 / window_s / 1e6));
    }
    (points, Vec::new())
}

/// Milliseconds since the subflow's previous packet with payload, at each packet with payload
/// but the first.
fn interarrival<'a>(
    records: impl Iterator<Item = &'a PacketRecord>,
    time: &dyn Fn(&PacketRecord) -> f64,
) -> Points {
    let mut last = None;
    let mut points = Vec::new();
    for r in records.filter(|r| r.payload_len > 0) {
        let t = time(r);
        if let Some(previous) = last {
            points.push((t, (t - previous) * 1e3));
        }
        last = Some(t);
    }
    (points, Vec::new())
}

/// Reinjected bytes so far, at each packet that reinjected some.
fn reinjections<'a>(
    records: impl Iterator<Item = &'a PacketRecord>,
    time: &dyn Fn(&PacketRecord) -> f64,
) -> Points {
    let mut total = 0u64;
    let mut points = Vec::new();
    for r in records {
        let bytes = r.mptcp.map_or(0, |m| m.reinjected_bytes);
        if bytes > 0 {
            total += bytes;
            points.push((time(r), total as f64));
        }
    }
    (points, Vec::new())
}

/// Relative TCP sequence number of each packet with payload; retransmissions marked.
fn subflow_seq<'a>(
    records: impl Iterator<Item = &'a PacketRecord>,
    time: &dyn Fn(&PacketRecord) -> f64,
) -> Points {
    let (mut points, mut marked) = (Vec::new(), Vec::new());
    for r in records.filter(|r| r.payload_len > 0) {
        let Some(seq) = r.relative_seq else { continue };
        let point = (time(r), seq as f64);
        points.push(point);
        if r.tcp_retransmitted_bytes > 0 {
            marked.push(point);
        }
    }
    (points, marked)
}
