//! `plot`: pictures of one MPTCP connection (SVG or PNG, drawn with `plotters`, no Python), or
//! their series as CSV/JSON. The series come from the analysis's per-packet records
//! (`analysis::record`) of the connection, kept while the capture is analysed once more: only
//! the plotted connection's records are kept, so memory is bounded by what is drawn.
//!
//! Kinds: `dsn`, `throughput`, `goodput`, `interarrival`, `reinjections`, `subflow-seq`
//! (`series`), and `owd`, one-way delay from two captures (`owd`).

pub mod batch;
pub mod draw;
pub mod owd;
pub mod series;

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use clap::{Args, ValueEnum};

use self::series::{Context, Marker, Plot};
use crate::{
    analysis::{
        Analyzer,
        direction::Direction,
        record::PacketRecord,
        summary::{EventKind, MptcpConnectionInfo},
    },
    offline::{self, OfflineOptions},
    source::pcap::CaptureError,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PlotKind {
    /// Data sequence number (relative to the IDSN) against time, per subflow.
    Dsn,
    /// Payload bits per second over a sliding window, per subflow and in total.
    Throughput,
    /// Bits of data carried first (new at the data level) per second, sliding window.
    Goodput,
    /// Time between consecutive packets with payload, per subflow.
    Interarrival,
    /// Reinjected bytes so far, per subflow.
    Reinjections,
    /// Relative TCP sequence number per subflow, retransmissions marked.
    SubflowSeq,
    /// One-way delay per subflow against send time, from two captures (needs --peer).
    Owd,
}

impl PlotKind {
    fn labels(self) -> (&'static str, &'static str) {
        match self {
            PlotKind::Dsn => (
                "data sequence number",
                "data sequence number − IDSN (bytes)",
            ),
            PlotKind::Throughput => ("throughput", "throughput (Mbit/s)"),
            PlotKind::Goodput => ("goodput", "goodput (Mbit/s)"),
            PlotKind::Interarrival => ("interarrival time", "time since previous packet (ms)"),
            PlotKind::Reinjections => ("reinjections", "reinjected bytes so far (bytes)"),
            PlotKind::SubflowSeq => ("subflow sequence", "relative TCP sequence number (bytes)"),
            PlotKind::Owd => ("one-way delay", "one-way delay (ms)"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DataFormat {
    Csv,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DirectionArg {
    ClientToServer,
    ServerToClient,
}

/// A plot's options after the kind and the capture: what the CLI and the shell share.
#[derive(Debug, Clone, Args)]
pub struct PlotOptions {
    /// MPTCP connection id, as list-mptcp shows it.
    pub id: u64,
    /// Output image: .svg or .png.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Print the series on stdout instead of (or besides) drawing them.
    #[arg(long, value_enum)]
    pub data: Option<DataFormat>,
    /// The connection-level direction plotted.
    #[arg(long, value_enum, default_value_t = DirectionArg::ClientToServer)]
    pub direction: DirectionArg,
    /// Only these subflows (TCP stream numbers, comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub subflows: Vec<u32>,
    /// Sliding window of throughput and goodput, seconds.
    #[arg(long, default_value_t = DEFAULT_WINDOW_S)]
    pub window: f64,
    /// Image size in pixels, WIDTHxHEIGHT.
    #[arg(long, default_value = DEFAULT_SIZE, value_parser = parse_size)]
    pub size: (u32, u32),
    /// Overwrite the output image if it exists.
    #[arg(long)]
    pub force: bool,
    /// owd: the capture of the same traffic at the server side (FILE being the client's).
    #[arg(long, value_name = "SERVER_FILE")]
    pub peer: Option<PathBuf>,
    /// owd: the server capture's clock minus the client capture's, seconds.
    #[arg(long, value_name = "SECONDS", allow_hyphen_values = true)]
    pub offset: Option<f64>,
}

impl PlotOptions {
    /// The defaults of the command line for connection `id`, drawing nothing yet.
    pub fn for_connection(id: u64) -> Self {
        Self {
            id,
            output: None,
            data: None,
            direction: DirectionArg::ClientToServer,
            subflows: Vec::new(),
            window: DEFAULT_WINDOW_S,
            size: parse_size(DEFAULT_SIZE).expect("the default size parses"),
            force: false,
            peer: None,
            offset: None,
        }
    }
}

/// `--window`'s and `--size`'s defaults, for the command line and `for_connection` alike.
const DEFAULT_WINDOW_S: f64 = 1.0;
const DEFAULT_SIZE: &str = "1280x720";

fn parse_size(text: &str) -> Result<(u32, u32), String> {
    let (w, h) = text
        .split_once('x')
        .ok_or_else(|| format!("{text}: expected WIDTHxHEIGHT"))?;
    let parse = |v: &str| {
        v.parse::<u32>()
            .ok()
            .filter(|&n| (100..=10_000).contains(&n))
            .ok_or_else(|| format!("{text}: sizes from 100 to 10000 pixels"))
    };
    Ok((parse(w)?, parse(h)?))
}

#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("{capture}: no MPTCP connection {id} (list-mptcp shows the connections)")]
    NoConnection { capture: PathBuf, id: u64 },
    #[error("{0}: the capture has no MPTCP connection")]
    NoMptcp(PathBuf),
    #[error("the owd plot compares two captures: give --peer SERVER_FILE")]
    OwdNeedsPeer,
    #[error(
        "{capture}: MPTCP connection {id} has no counterpart in {peer} (map-mptcp shows what maps)"
    )]
    NoCounterpart {
        capture: PathBuf,
        peer: PathBuf,
        id: u64,
    },
    #[error(transparent)]
    Pair(#[from] crate::pair::PairError),
    #[error("give -o OUT.svg|OUT.png, --data csv|json, or both")]
    NothingToDo,
    #[error("{0}: the image's name must end in .svg or .png")]
    UnknownImageFormat(PathBuf),
    #[error("{0}: exists (add --force to overwrite it)")]
    OutputExists(PathBuf),
    #[error("{0}: the output's directory does not exist")]
    OutputDirMissing(PathBuf),
    #[error("--window must be a positive number of seconds")]
    BadWindow,
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error("{path}: drawing: {message}")]
    Draw { path: PathBuf, message: String },
    #[error("writing the series: {0}")]
    Io(#[from] std::io::Error),
}

/// Plots `kind` of a capture already analysed as `analyzer`: analyses it once more for the
/// connection's records, then draws to `-o` and/or prints the series on `out`.
pub fn run(
    analyzer: &Analyzer,
    capture: &Path,
    kind: PlotKind,
    options: &PlotOptions,
    out: &mut dyn Write,
) -> Result<(), PlotError> {
    if options.output.is_none() && options.data.is_none() {
        return Err(PlotError::NothingToDo);
    }
    if !(options.window > 0.0 && options.window.is_finite()) {
        return Err(PlotError::BadWindow);
    }
    if let Some(path) = &options.output {
        check_image_output(path, options.force)?;
    }
    let plot = match kind {
        PlotKind::Owd => owd::collect(analyzer, capture, options)?,
        _ => collect(analyzer, capture, kind, options)?,
    };
    if let Some(path) = &options.output {
        draw::draw(&plot, path, options.size)?;
    }
    match options.data {
        Some(DataFormat::Json) => {
            serde_json::to_writer_pretty(&mut *out, &plot).map_err(std::io::Error::from)?;
            writeln!(out)?;
        }
        Some(DataFormat::Csv) => {
            writeln!(out, "series,tcp_stream,time_s,value,marked")?;
            for s in &plot.series {
                let stream = s.tcp_stream.map(|n| n.to_string()).unwrap_or_default();
                for &(x, y) in &s.points {
                    let marked = s.marked.contains(&(x, y));
                    writeln!(out, "{},{stream},{x},{y},{marked}", s.label)?;
                }
            }
        }
        None => {}
    }
    Ok(())
}

fn check_image_output(path: &Path, force: bool) -> Result<(), PlotError> {
    if draw::ImageFormat::of(path).is_none() {
        return Err(PlotError::UnknownImageFormat(path.to_path_buf()));
    }
    if path.exists() && !force {
        return Err(PlotError::OutputExists(path.to_path_buf()));
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if dir.is_some_and(|d| !d.is_dir()) {
        return Err(PlotError::OutputDirMissing(path.to_path_buf()));
    }
    Ok(())
}

/// The plot's data: the connection's records of the asked direction and subflows.
pub fn collect(
    analyzer: &Analyzer,
    capture: &Path,
    kind: PlotKind,
    options: &PlotOptions,
) -> Result<Plot, PlotError> {
    let id = options.id;
    connection_info(analyzer, capture, id)?;
    let direction = match options.direction {
        DirectionArg::ClientToServer => Direction::ClientToServer,
        DirectionArg::ServerToClient => Direction::ServerToClient,
    };
    let mut records = ConnectionRecords::new(id);
    offline::analyze_file_observed(
        capture,
        &OfflineOptions::default(),
        &mut |r: &PacketRecord| {
            records.keep(r);
        },
    )?;
    Ok(records.plot(analyzer, capture, kind, direction, options))
}

/// The connection's description, or the error naming the capture.
fn connection_info(
    analyzer: &Analyzer,
    capture: &Path,
    id: u64,
) -> Result<MptcpConnectionInfo, PlotError> {
    analyzer.mptcp_info(id).ok_or_else(|| {
        if analyzer.mptcp_list().mptcp_connections.is_empty() {
            PlotError::NoMptcp(capture.to_path_buf())
        } else {
            PlotError::NoConnection {
                capture: capture.to_path_buf(),
                id,
            }
        }
    })
}

/// One connection's records (both directions), kept while a capture is analysed.
pub struct ConnectionRecords {
    id: u64,
    /// Time of the connection's first packet.
    start_ns: Option<u64>,
    records: Vec<PacketRecord>,
}

impl ConnectionRecords {
    pub fn new(id: u64) -> Self {
        Self {
            id,
            start_ns: None,
            records: Vec::new(),
        }
    }

    /// Keeps `record` if it belongs to the connection.
    pub fn keep(&mut self, record: &PacketRecord) {
        if let Some(m) = record.mptcp
            && u64::from(m.connection) == self.id
        {
            self.start_ns.get_or_insert(record.ts_ns);
            self.records.push(*record);
        }
    }

    /// The plot of `kind` in `direction`, with `options`' subflows and window.
    pub fn plot(
        &self,
        analyzer: &Analyzer,
        capture: &Path,
        kind: PlotKind,
        direction: Direction,
        options: &PlotOptions,
    ) -> Plot {
        let id = self.id;
        let info = analyzer.mptcp_info(id);
        let subflows = info
            .iter()
            .flat_map(|info| info.subflows.iter())
            .enumerate()
            .filter(|(_, s)| {
                options.subflows.is_empty() || options.subflows.contains(&(s.tcp_stream as u32))
            })
            .map(|(i, s)| (i as u32, s.tcp_stream as u32))
            .collect();
        let idsn = info.as_ref().and_then(|info| match direction {
            Direction::ClientToServer => info.client_idsn,
            Direction::ServerToClient => info.server_idsn,
        });
        let context = Context {
            start_ns: self.start_ns.unwrap_or(0),
            dsn_zero: idsn.map(|i| i.wrapping_add(1)),
            subflows,
            window_s: options.window,
        };
        let records: Vec<PacketRecord> = self
            .records
            .iter()
            .filter(|r| r.mptcp.is_some_and(|m| m.direction == direction))
            .copied()
            .collect();
        let (name, y_label) = kind.labels();
        Plot {
            title: format!(
                "{name}: {} connection {id}, {}",
                capture.file_name().unwrap_or_default().to_string_lossy(),
                direction.as_str().replace('_', " ")
            ),
            x_label: "time since the connection's first packet (s)".to_owned(),
            y_label: y_label.to_owned(),
            series: series::series_of(kind, &records, &context),
            events: event_markers(analyzer, id),
        }
    }
}

/// The events drawn as vertical markers.
fn event_markers(analyzer: &Analyzer, id: u64) -> Vec<Marker> {
    analyzer
        .mptcp_summary(id)
        .map(|s| s.events)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| {
            matches!(
                e.kind,
                EventKind::DataFin | EventKind::AddAddr | EventKind::MpPrio | EventKind::Fallback
            )
        })
        .map(|e| Marker {
            time_s: e.time_s,
            kind: e.kind.as_str().to_owned(),
        })
        .collect()
}
