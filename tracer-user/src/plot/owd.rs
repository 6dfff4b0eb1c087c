//! The `owd` plot: one-way delay of each data packet against its send time, one series per
//! subflow, from two captures of the same traffic (`pair::owd`, the same matching as the `owd`
//! command). Retransmissions and reinjections are marked; lost packets have no delay to draw
//! and are counted in the title.

use std::{collections::BTreeMap, path::Path};

use super::{DirectionArg, PlotError, PlotKind, PlotOptions, connection_info, series};
use crate::{
    analysis::{Analyzer, direction::Direction},
    offline::{self, OfflineOptions},
    pair::{map::map_mptcp, matcher::OwdPacket, owd::OwdOptions},
};

/// The plot of connection `options.id` of `capture` against its counterpart in `--peer`.
pub fn collect(
    analyzer: &Analyzer,
    capture: &Path,
    options: &PlotOptions,
) -> Result<series::Plot, PlotError> {
    let peer_path = options.peer.as_deref().ok_or(PlotError::OwdNeedsPeer)?;
    let info = connection_info(analyzer, capture, options.id)?;
    let peer = offline::analyze_file(peer_path, &OfflineOptions::default())?;
    let matched = map_mptcp(analyzer, &peer.analyzer, Some(options.id))
        .mappings
        .into_iter()
        .next()
        .ok_or_else(|| PlotError::NoCounterpart {
            capture: capture.to_path_buf(),
            peer: peer_path.to_path_buf(),
            id: options.id,
        })?;
    let direction = match options.direction {
        DirectionArg::ClientToServer => Direction::ClientToServer,
        DirectionArg::ServerToClient => Direction::ServerToClient,
    };
    let wanted: Vec<(usize, u64)> = info
        .subflows
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            options.subflows.is_empty() || options.subflows.contains(&(s.tcp_stream as u32))
        })
        .map(|(index, s)| (index, s.tcp_stream))
        .collect();
    let mut delays = Delays::default();
    let owd_options = OwdOptions::new(options.offset, None);
    crate::pair::owd::owd(
        capture,
        peer_path,
        &matched,
        &owd_options,
        &mut |p: &OwdPacket| {
            if p.direction == direction && wanted.iter().any(|&(_, s)| s == p.tcp_stream) {
                delays.add(p);
            }
        },
    )?;
    let (name, y_label) = PlotKind::Owd.labels();
    let offset = match options.offset {
        Some(offset) => format!("clock offset {offset} s"),
        None => "clock offset unknown (included)".to_owned(),
    };
    Ok(series::Plot {
        title: format!(
            "{name}: {} → {} connection {}, {}, {} lost, {offset}",
            capture.file_name().unwrap_or_default().to_string_lossy(),
            peer_path.file_name().unwrap_or_default().to_string_lossy(),
            options.id,
            direction.as_str().replace('_', " "),
            delays.lost
        ),
        x_label: "send time since the direction's first data packet (s)".to_owned(),
        y_label: y_label.to_owned(),
        series: delays.series(&wanted),
        events: Vec::new(),
    })
}

/// Per subflow: (send time ns, delay ms, marked) of each received packet.
#[derive(Default)]
struct Delays {
    by_stream: BTreeMap<u64, Vec<(u64, f64, bool)>>,
    first_ns: Option<u64>,
    lost: u64,
}

impl Delays {
    fn add(&mut self, p: &OwdPacket) {
        self.first_ns = Some(self.first_ns.map_or(p.sent_ns, |t| t.min(p.sent_ns)));
        match p.owd_ns {
            Some(owd) => self.by_stream.entry(p.tcp_stream).or_default().push((
                p.sent_ns,
                owd as f64 / 1e6,
                p.retransmission || p.reinjection,
            )),
            None => self.lost += 1,
        }
    }

    fn series(&self, wanted: &[(usize, u64)]) -> Vec<series::Series> {
        let start = self.first_ns.unwrap_or(0);
        wanted
            .iter()
            .map(|&(index, stream)| {
                let delays = self.by_stream.get(&stream).map_or(&[][..], Vec::as_slice);
                let point = |&(sent, ms, _): &(u64, f64, bool)| {
                    (sent.saturating_sub(start) as f64 / 1e9, ms)
                };
                series::Series {
                    label: format!("subflow {index} (tcp stream {stream})"),
                    tcp_stream: Some(stream as u32),
                    points: delays.iter().map(point).collect(),
                    marked: delays.iter().filter(|d| d.2).map(point).collect(),
                }
            })
            .collect()
    }
}
