//! The questions about two captures of the same traffic (`crate::pair`): the first capture is
//! the client side's, the second (the peer) the server side's. The one-shot commands take both
//! files; the shell asks them about the loaded capture and the one loaded with
//! `load-pcap --peer`.

use std::{io::Write, path::Path};

use anyhow::{Context as _, anyhow, bail};
use clap::{Args, Subcommand};

use crate::{
    analysis::Analyzer,
    output::json,
    pair::{
        self,
        map::{MptcpMapping, MptcpMatch, TcpMapping},
        owd::OwdOptions,
        reinjections, render,
    },
};

pub(crate) const ABOUT_MAP_TCP: &str =
    "Map each TCP stream of the client capture to its stream in the server capture";
pub(crate) const ABOUT_MAP_MPTCP: &str =
    "Map each MPTCP connection (and its subflows) of the client capture to the server capture's";
pub(crate) const ABOUT_OWD: &str =
    "One-way delay of every data packet of an MPTCP connection between the two captures";
pub(crate) const ABOUT_QUALIFY_REINJECTIONS: &str =
    "Whether each reinjection of an MPTCP connection was useful or redundant at the receiver";

/// A question about two captures.
#[derive(Debug, Clone, Subcommand)]
pub enum PairQuery {
    #[command(about = ABOUT_MAP_TCP)]
    MapTcp(MapTcpArgs),
    #[command(about = ABOUT_MAP_MPTCP)]
    MapMptcp(MapMptcpArgs),
    #[command(about = ABOUT_OWD)]
    Owd(OwdArgs),
    #[command(about = ABOUT_QUALIFY_REINJECTIONS)]
    QualifyReinjections(QualifyArgs),
}

#[derive(Debug, Clone, Args)]
pub struct DelayArgs {
    /// MPTCP connection id in the client capture (list-mptcp's id).
    pub id: u64,
    /// The server capture's clock minus the client capture's, in seconds: subtracted from
    /// client-to-server delays, added to server-to-client ones. Without it delays are reported
    /// as the two clocks give them.
    #[arg(long, value_name = "SECONDS", allow_hyphen_values = true)]
    pub offset: Option<f64>,
    /// Seconds the receiver's capture must have moved past a packet before it counts as lost
    /// [default: 10 + twice the largest delay seen]. Bounds the memory held behind a loss.
    #[arg(long, value_name = "SECONDS")]
    pub horizon: Option<f64>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl DelayArgs {
    fn options(&self) -> anyhow::Result<OwdOptions> {
        if let Some(offset) = self.offset
            && !offset.is_finite()
        {
            bail!("--offset must be a number of seconds");
        }
        if let Some(horizon) = self.horizon
            && !(horizon > 0.0 && horizon.is_finite())
        {
            bail!("--horizon must be a positive number of seconds");
        }
        Ok(OwdOptions::new(self.offset, self.horizon))
    }
}

#[derive(Debug, Clone, Args)]
pub struct OwdArgs {
    #[command(flatten)]
    pub delay: DelayArgs,
    /// Also list every packet in the table (the JSON always has them).
    #[arg(long)]
    pub packets: bool,
}

#[derive(Debug, Clone, Args)]
pub struct QualifyArgs {
    #[command(flatten)]
    pub delay: DelayArgs,
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
        PairQuery::Owd(args) => {
            let options = args.delay.options()?;
            let matched = counterpart(capture, peer, args.delay.id)?;
            let with_packets = args.delay.json || args.packets;
            render::write_owd(
                out,
                args.delay.json,
                capture.path,
                peer.path,
                &matched,
                &options,
                with_packets,
            )?;
            return Ok(());
        }
        PairQuery::QualifyReinjections(args) => {
            let options = args.delay.options()?;
            let matched = counterpart(capture, peer, args.delay.id)?;
            let report =
                reinjections::qualify_reinjections(capture.path, peer.path, &matched, &options)?;
            render::write_qualify(out, args.delay.json, &report)?;
            return Ok(());
        }
    };
    out.write_all(text.as_bytes())
        .context("writing the output")?;
    Ok(())
}

/// Connection `id` of `capture` with its counterpart in `peer`.
fn counterpart(capture: Capture<'_>, peer: Capture<'_>, id: u64) -> anyhow::Result<MptcpMatch> {
    known_connection(capture, id)?;
    let mapping = pair::map::map_mptcp(capture.analyzer, peer.analyzer, Some(id));
    mapping.mappings.into_iter().next().ok_or_else(|| {
        anyhow!(
            "{}: MPTCP connection {id} has no counterpart in {} (neither its keys nor its \
             subflows are there; map-mptcp shows what maps)",
            capture.path.display(),
            peer.path.display()
        )
    })
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
