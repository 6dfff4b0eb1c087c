//! The questions both front ends ask about an analysed capture, and how their answers and
//! problems reach the user: the one-shot commands (`cli`) and the shell (`shell`) parse their
//! own lines, then load, answer and warn through here, so a flag, an output format or an exit
//! code cannot differ between them. Neither front end is needed to use this module, and this
//! module needs neither.

pub mod pair;

use std::{io::Write, path::Path};

use anyhow::{Context as _, anyhow};
use clap::{Args, Subcommand};

use crate::{
    analysis::{
        Analyzer, Diagnostics,
        summary::{MptcpList, MptcpSummary},
    },
    export::{self, ExportOptions},
    offline::{self, OfflineOptions, OfflineReport},
    output::{json, table},
    plot::{self, PlotKind, PlotOptions},
    reorder::{self, ReorderArgs},
};

/// Everything worked.
pub const EXIT_OK: i32 = 0;
/// An error: bad command line, unreadable capture, unknown stream or connection id, failed
/// live trace. In the shell's batch mode: at least one command failed.
pub const EXIT_ERROR: i32 = 1;
/// Results were printed but cover only part of the data: the capture is truncated or damaged
/// after some point, or a live trace lost events.
pub const EXIT_PARTIAL: i32 = 2;

/// How many of the kept decode problems a warning lists.
const PROBLEMS_SHOWN: usize = 5;

/// Options of loading a capture that come from the command line.
#[derive(Clone, Copy, Debug, Default)]
pub struct LoadOptions {
    /// Draw a progress bar (only ever drawn on a terminal).
    pub progress: bool,
}

pub(crate) const ABOUT_LIST_TCP: &str = "List the TCP connections (streams) of the capture";
pub(crate) const ABOUT_LIST_MPTCP: &str =
    "List the MPTCP connections, their keys, tokens and subflows";
pub(crate) const ABOUT_TCP_SUMMARY: &str = "Per-direction byte counts of one TCP stream";
pub(crate) const ABOUT_PLOT: &str =
    "Plot one MPTCP connection (SVG or PNG) or print the plot's series (CSV or JSON)";
pub(crate) const ABOUT_REORDER_BUFFER: &str =
    "Out-of-order data bytes the receiver held over time, and their maximum (from its capture)";
pub(crate) const ABOUT_MPTCP_SUMMARY: &str =
    "Per-direction data-level byte counts, subflow shares and events of one MPTCP connection";

pub(crate) const ABOUT_LIST_REINJECTIONS: &str =
    "Every reinjection of an MPTCP connection in one capture, with the packets it re-sent";

/// A question about an analysed capture: the commands the one-shot CLI and the shell share.
#[derive(Debug, Clone, Subcommand)]
pub enum Query {
    #[command(about = ABOUT_LIST_TCP)]
    ListTcp(ListArgs),
    #[command(about = ABOUT_LIST_MPTCP)]
    ListMptcp(ListArgs),
    #[command(about = ABOUT_TCP_SUMMARY)]
    TcpSummary(TcpSummaryArgs),
    #[command(about = ABOUT_MPTCP_SUMMARY)]
    MptcpSummary(MptcpSummaryArgs),
    #[command(about = ABOUT_PLOT)]
    Plot(PlotArgs),
    #[command(about = ABOUT_LIST_REINJECTIONS)]
    ListReinjections(ConnectionArgs),
    #[command(about = ABOUT_REORDER_BUFFER)]
    ReorderBuffer(ReorderArgs),
    /// Write the loaded capture's packets (one row each) or, with --summaries, its connection
    /// summaries as CSV or Parquet (columns: README "Exports").
    Export(ExportOptions),
}

#[derive(Debug, Clone, Args)]
pub struct PlotArgs {
    /// What to plot.
    #[arg(value_enum)]
    pub kind: PlotKind,
    #[command(flatten)]
    pub options: PlotOptions,
}

#[derive(Debug, Clone, Args)]
pub struct ConnectionArgs {
    /// MPTCP connection id, as list-mptcp shows it.
    pub id: u64,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct TcpSummaryArgs {
    /// TCP stream number, as list-tcp shows it (Wireshark's tcp.stream).
    pub stream: u64,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct MptcpSummaryArgs {
    /// MPTCP connection id, as list-mptcp shows it.
    pub id: u64,
    /// Also show every per-subflow counter and the signalling event timeline (tables only;
    /// the JSON always has everything).
    #[arg(long)]
    pub full: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Analyses a capture file. `Err` when nothing could be read.
pub fn load(file: &Path, options: LoadOptions) -> anyhow::Result<OfflineReport> {
    Ok(offline::analyze_file(
        file,
        &OfflineOptions {
            progress: options.progress,
            ..OfflineOptions::default()
        },
    )?)
}

/// Answers `query` about an analysed capture (`capture` names it in errors) on `out`. The
/// one-shot commands and the shell both answer through here.
pub fn run_query(
    analyzer: &Analyzer,
    capture: &Path,
    query: &Query,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let text = match query {
        Query::ListTcp(args) => {
            let list = analyzer.tcp_list();
            if args.json {
                json::to_pretty(&list)?
            } else {
                table::tcp_list(&list)
            }
        }
        Query::ListMptcp(args) => {
            let list = analyzer.mptcp_list();
            if args.json {
                json::to_pretty(&list)?
            } else {
                table::mptcp_list(&list)
            }
        }
        Query::TcpSummary(args) => {
            let summary = analyzer.tcp_summary(args.stream).ok_or_else(|| {
                anyhow!(
                    "{}: no TCP stream {} (list-tcp shows the streams)",
                    capture.display(),
                    args.stream
                )
            })?;
            if args.json {
                json::to_pretty(&summary)?
            } else {
                table::tcp_summary(&summary)
            }
        }
        Query::Plot(args) => {
            plot::run(analyzer, capture, args.kind, &args.options, out)?;
            return Ok(());
        }
        Query::ListReinjections(args) => {
            analyzer.mptcp_info(args.id).ok_or_else(|| {
                anyhow!(
                    "{}: no MPTCP connection {} (list-mptcp shows the connections)",
                    capture.display(),
                    args.id
                )
            })?;
            let list = crate::pair::reinjections::list_reinjections(capture, args.id)?;
            crate::pair::render::write_reinjection_list(out, args.json, &list)?;
            return Ok(());
        }
        Query::ReorderBuffer(args) => {
            let result = reorder::reorder_buffer(analyzer, capture, args)?;
            if args.json {
                json::to_pretty(&result)?
            } else {
                reorder::table(&result, args.full)
            }
        }
        Query::Export(options) => export::export_loaded(analyzer, capture, options)?,
        Query::MptcpSummary(args) => {
            let summary = analyzer.mptcp_summary(args.id).ok_or_else(|| {
                anyhow!(
                    "{}: no MPTCP connection {} (list-mptcp shows the connections)",
                    capture.display(),
                    args.id
                )
            })?;
            if args.json {
                json::to_pretty(&summary)?
            } else {
                table::mptcp_summary(&summary, args.full)
            }
        }
    };
    out.write_all(text.as_bytes())
        .context("writing the output")?;
    Ok(())
}

/// Warns on `err` about a capture that stopped early and about packets the decoder could not
/// make sense of; returns the exit code the damage calls for.
pub fn warn_damage(report: &OfflineReport, err: &mut dyn Write) -> i32 {
    warn_stopped_early(
        report.analyzer.diagnostics(),
        report.error.as_ref().map(|e| e as _),
        err,
    )
}

/// `warn_damage` on its parts: `error` is why reading stopped early, if it did.
fn warn_stopped_early(
    diagnostics: &Diagnostics,
    error: Option<&dyn std::fmt::Display>,
    err: &mut dyn Write,
) -> i32 {
    warn_diagnostics(diagnostics, err);
    match error {
        Some(error) => {
            let _ = writeln!(err, "warning: {error}; results cover the packets before it");
            EXIT_PARTIAL
        }
        None => EXIT_OK,
    }
}

/// One line per kind of problem with its count, then the first problems kept. These packets
/// are counted, not lost, so they do not change the exit code.
pub fn warn_diagnostics(diagnostics: &Diagnostics, err: &mut dyn Write) {
    let categories = [
        (
            diagnostics.decode_errors,
            "packet could not be decoded",
            "packets could not be decoded",
        ),
        (
            diagnostics.truncated_options,
            "packet has invalid TCP option lengths (options after it ignored)",
            "packets have invalid TCP option lengths (options after it ignored)",
        ),
        (
            diagnostics.unknown_mptcp_options,
            "MPTCP option of unknown subtype",
            "MPTCP options of unknown subtype",
        ),
        (
            diagnostics.malformed_mptcp_options,
            "MPTCP option has an impossible length",
            "MPTCP options have an impossible length",
        ),
        (
            diagnostics.mptcp_overflow_packets,
            "packet has more MPTCP options than are decoded (the rest ignored)",
            "packets have more MPTCP options than are decoded (the rest ignored)",
        ),
    ];
    let mut any = false;
    for (count, one, many) in categories {
        if count > 0 {
            any = true;
            let _ = writeln!(
                err,
                "warning: {count} {}",
                if count == 1 { one } else { many }
            );
        }
    }
    if !any || diagnostics.problems.is_empty() {
        return;
    }
    let total = diagnostics.problems_found;
    for problem in diagnostics.problems.iter().take(PROBLEMS_SHOWN) {
        let _ = writeln!(err, "  {problem}");
    }
    let shown = diagnostics.problems.len().min(PROBLEMS_SHOWN) as u64;
    if total > shown {
        let _ = writeln!(err, "  ... and {} more", total - shown);
    }
}

/// The summary of every connection of `list`, in its order: what a live trace prints at the end.
pub fn summaries_of(analyzer: &Analyzer, list: &MptcpList) -> Vec<MptcpSummary> {
    list.mptcp_connections
        .iter()
        .filter_map(|c| analyzer.mptcp_summary(c.id))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostics_warnings_count_each_category() {
        let diagnostics = Diagnostics {
            packets: 100,
            decode_errors: 2,
            unknown_mptcp_options: 1,
            truncated_options: 4,
            problems: vec![
                "packet 3: truncated TCP header".into(),
                "packet 9: truncated IPv4 header".into(),
                "packet 12: MPTCP subtype 15".into(),
            ],
            problems_found: 3,
            ..Default::default()
        };
        let mut err = Vec::new();
        warn_diagnostics(&diagnostics, &mut err);
        assert_eq!(
            String::from_utf8(err).expect("UTF-8"),
            "\
warning: 2 packets could not be decoded
warning: 4 packets have invalid TCP option lengths (options after it ignored)
warning: 1 MPTCP option of unknown subtype
  packet 3: truncated TCP header
  packet 9: truncated IPv4 header
  packet 12: MPTCP subtype 15
"
        );
        // Past the lines shown, the count of the others (truncated options, which name no
        // packet, are not among them).
        let many = Diagnostics {
            decode_errors: 9,
            problems: (1..=9).map(|n| format!("packet {n}: x")).collect(),
            problems_found: 9,
            truncated_options: 100,
            ..Default::default()
        };
        let mut err = Vec::new();
        warn_diagnostics(&many, &mut err);
        let err = String::from_utf8(err).expect("UTF-8");
        assert!(err.ends_with("  packet 5: x\n  ... and 4 more\n"), "{err}");
        let mut err = Vec::new();
        warn_diagnostics(
            &Diagnostics {
                packets: 5,
                ..Default::default()
            },
            &mut err,
        );
        assert!(err.is_empty());
    }

    #[test]
    fn damaged_capture_is_exit_code_two() {
        let diagnostics = Diagnostics::default();
        let mut err = Vec::new();
        let error = "x.pcap: truncated record";
        assert_eq!(
            warn_stopped_early(&diagnostics, Some(&error), &mut err),
            EXIT_PARTIAL
        );
        assert_eq!(
            String::from_utf8(err).expect("UTF-8"),
            "warning: x.pcap: truncated record; results cover the packets before it\n"
        );
        let report = OfflineReport {
            analyzer: Analyzer::new(),
            error: None,
        };
        assert_eq!(warn_damage(&report, &mut Vec::new()), EXIT_OK);
    }
}
