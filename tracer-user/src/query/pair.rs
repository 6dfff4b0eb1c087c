//! The questions about two captures of the same traffic (`crate::pair`): the first capture is
//! the client side's, the second (the peer) the server side's. The one-shot commands take both
//! files; the shell asks them about the loaded capture and the one loaded with
//! `load-pcap --peer`.

use std::{io::Write, path::Path};

use anyhow::{Context as _, anyhow};
use clap::{Args, Subcommand};

use crate::{
    analysis::Analyzer,
    output::json,
    pair::{
        self,
        map::{MptcpMapping, TcpMapping},
    },
};

pub(crate) const ABOUT_MAP_TCP: &str =
    "Map each TCP stream of the client capture to its stream in the server capture";
pub(crate) const ABOUT_MAP_MPTCP: &str =
    "Map each MPTCP connection (and its subflows) of the client capture to the server capture's";

/// A question about two captures.
#[derive(Debug, Clone, Subcommand)]
pub enum PairQuery {
    #[command(about = ABOUT_MAP_TCP)]
    MapTcp(MapTcpArgs),
    #[command(about = ABOUT_MAP_MPTCP)]
    MapMptcp(MapMptcpArgs),
}

#[derive(Debug, Clone, Args)]
pub struct MapTcpArgs {
    /// Only this TCP stream of the client capture (list-tcp's number).
    pub stream: Option<u64>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct MapMptcpArgs {
    /// Only this MPTCP connection of the client capture (list-mptcp's id).
    pub id: Option<u64>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// One analysed capture and the file it came from (named in errors, re-read for per-packet
/// questions).
#[derive(Clone, Copy)]
pub struct Capture<'a> {
    pub path: &'a Path,
    pub analyzer: &'a Analyzer,
}

/// Answers `query` about the client capture `capture` and the server capture `peer` on `out`.
pub fn run_pair_query(
    capture: Capture<'_>,
    peer: Capture<'_>,
    query: &PairQuery,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let text = match query {
        PairQuery::MapTcp(args) => {
            if let Some(stream) = args.stream {
                capture.analyzer.tcp_stream(stream).ok_or_else(|| {
                    anyhow!(
                        "{}: no TCP stream {stream} (list-tcp shows the streams)",
                        capture.path.display()
                    )
                })?;
            }
            let mapping = pair::map::map_tcp(capture.analyzer, peer.analyzer, args.stream);
            if args.json {
                json::to_pretty(&mapping)?
            } else {
                tcp_mapping_table(&mapping)
            }
        }
        PairQuery::MapMptcp(args) => {
            if let Some(id) = args.id {
                known_connection(capture, id)?;
            }
            let mapping = pair::map::map_mptcp(capture.analyzer, peer.analyzer, args.id);
            if args.json {
                json::to_pretty(&mapping)?
            } else {
                mptcp_mapping_table(&mapping)
            }
        }
    };
    out.write_all(text.as_bytes())
        .context("writing the output")?;
    Ok(())
}

/// `Err` naming the capture when it has no MPTCP connection `id`.
fn known_connection(capture: Capture<'_>, id: u64) -> anyhow::Result<()> {
    capture.analyzer.mptcp_info(id).map(|_| ()).ok_or_else(|| {
        anyhow!(
            "{}: no MPTCP connection {id} (list-mptcp shows the connections)",
            capture.path.display()
        )
    })
}

fn evidence_text(evidence: &[pair::map::Evidence]) -> String {
    evidence
        .iter()
        .map(|e| e.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn list_text(items: &[u64]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn tcp_mapping_table(mapping: &TcpMapping) -> String {
    let mut text = format!(
        "{:>6}  {:>6}  {:>5}  {:<44}  {:<44}  {}\n",
        "STREAM", "PEER", "SCORE", "CLIENT -> SERVER", "PEER CLIENT -> SERVER", "EVIDENCE"
    );
    for m in &mapping.mappings {
        text += &format!(
            "{:>6}  {:>6}  {:>5}  {:<44}  {:<44}  {}\n",
            m.tcp_stream,
            m.peer_tcp_stream,
            m.score,
            format!("{} -> {}", m.client, m.server),
            format!("{} -> {}", m.peer_client, m.peer_server),
            evidence_text(&m.evidence)
        );
    }
    text += &format!("unmatched: {}\n", list_text(&mapping.unmatched));
    text += &format!("peer unmatched: {}\n", list_text(&mapping.peer_unmatched));
    text
}

fn mptcp_mapping_table(mapping: &MptcpMapping) -> String {
    let mut text = String::new();
    for m in &mapping.mappings {
        text += &format!(
            "connection {} -> peer connection {} (score {}: {})\n",
            m.id,
            m.peer_id,
            m.score,
            evidence_text(&m.evidence)
        );
        for s in &m.subflows {
            let peer = s
                .peer_tcp_stream
                .map_or_else(|| "not in the peer capture".to_owned(), |p| p.to_string());
            text += &format!("  subflow tcp stream {} -> {peer}\n", s.tcp_stream);
        }
        if !m.peer_unmatched_subflows.is_empty() {
            text += &format!(
                "  peer subflows without counterpart: {}\n",
                list_text(&m.peer_unmatched_subflows)
            );
        }
    }
    text += &format!("unmatched: {}\n", list_text(&mapping.unmatched));
    text += &format!("peer unmatched: {}\n", list_text(&mapping.peer_unmatched));
    text
}
