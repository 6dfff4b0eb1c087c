//! `trace --plot DIR`: the `dsn` and `throughput` plots of every MPTCP connection of a
//! capture, drawn after a live trace from the pcapng it wrote (the same records, and so the
//! same pictures, as `plot` on that file later).
//!
//! One analysis of the capture keeps the records of every MPTCP connection at once (about
//! 200 bytes per MPTCP packet): meant for the traces of an experiment, not for days of
//! `--long-run` (which does not take `--plot`).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use super::{ConnectionRecords, PlotError, PlotKind, PlotOptions, draw};
use crate::{
    analysis::{Analyzer, direction::Direction, record::PacketRecord},
    offline::{self, OfflineOptions},
};

/// The kinds drawn for each connection.
pub const KINDS: [PlotKind; 2] = [PlotKind::Dsn, PlotKind::Throughput];

/// `DIR/mptcp-<id>-<kind>.svg`.
pub fn image_path(dir: &Path, id: u64, kind: PlotKind) -> PathBuf {
    // The kind as the command line spells it.
    let kind = clap::ValueEnum::to_possible_value(&kind)
        .map_or_else(|| String::from("plot"), |v| v.get_name().to_owned());
    dir.join(format!("mptcp-{id}-{kind}.svg"))
}

/// Images of an earlier run in `dir` that a new one would overwrite: checked before a trace
/// starts, when the connection ids are not known yet.
pub fn existing_images(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("mptcp-") && name.ends_with(".svg"))
        })
        .collect();
    found.sort();
    found
}

/// Draws the `KINDS` plots of every MPTCP connection of `capture` into `dir`, each in the
/// direction that carried more data; returns the images written.
pub fn plot_every_connection(
    capture: &Path,
    dir: &Path,
    force: bool,
) -> Result<Vec<PathBuf>, PlotError> {
    let mut by_connection: BTreeMap<u64, ConnectionRecords> = BTreeMap::new();
    let mut keep = |record: &PacketRecord| {
        if let Some(m) = record.mptcp {
            let id = u64::from(m.connection);
            by_connection
                .entry(id)
                .or_insert_with(|| ConnectionRecords::new(id))
                .keep(record);
        }
    };
    let report = offline::analyze_file_observed(capture, &OfflineOptions::default(), &mut keep)?;
    let analyzer = &report.analyzer;
    let mut written = Vec::new();
    for (&id, records) in &by_connection {
        let options = PlotOptions::for_connection(id);
        let direction = busier_direction(analyzer, id);
        for kind in KINDS {
            let path = image_path(dir, id, kind);
            if path.exists() && !force {
                return Err(PlotError::OutputExists(path));
            }
            let plot = records.plot(analyzer, capture, kind, direction, &options);
            draw::draw(&plot, &path, options.size)?;
            written.push(path);
        }
    }
    Ok(written)
}

/// The direction with more unique data bytes (client to server on a tie).
fn busier_direction(analyzer: &Analyzer, id: u64) -> Direction {
    let unique = |direction: Direction| {
        analyzer.mptcp_summary(id).map_or(0, |s| {
            s.directions
                .iter()
                .filter(|d| d.direction == direction)
                .map(|d| d.unique_bytes)
                .sum::<u64>()
        })
    };
    if unique(Direction::ServerToClient) > unique(Direction::ClientToServer) {
        Direction::ServerToClient
    } else {
        Direction::ClientToServer
    }
}
