//! `export`: one row per TCP packet of one or more captures, written as CSV or Parquet. The
//! rows are the analysis's per-packet records (`analysis::record`), so every number is the one
//! the summaries count; `rows` lays them out in columns.
//!
//! Captures are analysed by worker threads (as many as half the cores: each analysis already
//! decodes on a second thread), which hand bounded batches of rows through a bounded channel
//! to the one thread writing the output. A batch is the records (`rows`); the writer formats
//! them as CSV lines, or (`parquet_file`) lays them out in columns (`columns`) and encodes
//! those, cutting a row group every `ROW_GROUP_ROWS` rows: the analysis thread only copies
//! records, which keeps the two threads' shares of the work about even. Memory stays a few
//! batches and one encoded row group whatever the captures' size. Rows of different
//! captures may interleave batch by batch; each row names its capture. The output is written
//! to a temporary file beside it and renamed at the end, so a failed export leaves nothing
//! half-written and nothing is overwritten without `force`.
//!
//! `summaries` writes the connection summaries instead (`--summaries`): two tables, one row
//! per connection and direction and one per subflow and direction, into a directory.

pub mod columns;
mod dictionary;
mod parquet_file;
pub mod rows;
pub mod summaries;

use std::{
    fs::File,
    io::{BufWriter, Write},
    path::{Path, PathBuf},
    sync::{Arc, Mutex, mpsc},
};

use self::{parquet_file::ParquetSink, rows::Rows};
use crate::{
    analysis::{Analyzer, record::PacketRecord},
    offline::{self, OfflineOptions},
    source::pcap::CaptureError,
};

/// The output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Csv,
    Parquet,
}

impl ExportFormat {
    /// The format a file name's extension names, if any.
    pub fn from_extension(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()? {
            "csv" => Some(Self::Csv),
            "parquet" => Some(Self::Parquet),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{0}: exists (add --force to overwrite it)")]
    OutputExists(PathBuf),
    #[error("{0}: the output's directory does not exist")]
    OutputDirMissing(PathBuf),
    #[error(
        "{0}: not a directory (--summaries writes connections.* and subflows.* into a directory)"
    )]
    NotADirectory(PathBuf),
    #[error("{0}: cannot tell the format from the name: give --format csv or --format parquet")]
    UnknownFormat(PathBuf),
    #[error("no capture to export")]
    NoInput,
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: writing CSV: {source}")]
    Csv { path: PathBuf, source: csv::Error },
    #[error("{path}: writing Parquet: {source}")]
    Parquet {
        path: PathBuf,
        source: parquet::errors::ParquetError,
    },
    #[error("{path}: building a batch: {source}")]
    Arrow {
        path: PathBuf,
        source: arrow_schema::ArrowError,
    },
}

/// Where and how to export: the options the one-shot `export` and the shell's share.
#[derive(Debug, Clone, clap::Args)]
pub struct ExportOptions {
    /// Output file; with --summaries, the directory that gets connections.{csv,parquet} and
    /// subflows.{csv,parquet} (made if missing).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Output format (default: from the output's extension, .csv or .parquet; with
    /// --summaries, csv).
    #[arg(long, value_enum)]
    pub format: Option<ExportFormat>,
    /// Write the connection summaries (one row per MPTCP connection and direction, one per
    /// subflow and direction) instead of one row per packet.
    #[arg(long)]
    pub summaries: bool,
    /// Overwrite the output if it exists.
    #[arg(long)]
    pub force: bool,
}

/// The shell's `export`: the loaded capture, analysed as `analyzer`, as `options` say.
/// Returns the lines to print: what was written, and a warning when reading the capture
/// again stopped early.
pub fn export_loaded(
    analyzer: &Analyzer,
    capture: &Path,
    options: &ExportOptions,
) -> Result<String, ExportError> {
    if options.summaries {
        let report = summaries::export_analyzed(
            capture,
            analyzer,
            &options.output,
            options.format,
            options.force,
        )?;
        return Ok(format!("{}\n", report.message()));
    }
    let inputs = [capture.to_path_buf()];
    let report = export_packets(&inputs, &options.output, options.format, options.force)?;
    let mut text = String::new();
    for warning in report.warnings() {
        text.push_str(&format!("warning: {warning}\n"));
    }
    text.push_str(&report.message(&options.output));
    text.push('\n');
    Ok(text)
}

/// What was exported of each capture, in the order given.
#[derive(Debug, Default)]
pub struct ExportReport {
    pub captures: Vec<CaptureExport>,
}

impl ExportReport {
    /// The line the front ends print.
    pub fn message(&self, output: &Path) -> String {
        let rows: u64 = self.captures.iter().map(|c| c.rows).sum();
        format!(
            "{rows} rows from {} captures written to {}",
            self.captures.len(),
            output.display()
        )
    }

    /// One warning per capture whose reading stopped early (exit code 2).
    pub fn warnings(&self) -> Vec<String> {
        self.captures
            .iter()
            .filter_map(CaptureExport::warning)
            .collect()
    }
}

#[derive(Debug)]
pub struct CaptureExport {
    pub capture: PathBuf,
    pub rows: u64,
    /// Set when reading stopped before the end (truncated or corrupt record): the rows cover
    /// the packets before it.
    pub stopped_early: Option<String>,
}

impl CaptureExport {
    /// Why the capture's rows cover only part of it, if they do.
    pub fn warning(&self) -> Option<String> {
        self.stopped_early
            .as_ref()
            .map(|error| format!("{error}; {} rows cover the packets before it", self.rows))
    }
}

/// Exports the packets of `inputs` to `output`. `format` defaults to the one the output's
/// extension names.
pub fn export_packets(
    inputs: &[PathBuf],
    output: &Path,
    format: Option<ExportFormat>,
    force: bool,
) -> Result<ExportReport, ExportError> {
    if inputs.is_empty() {
        return Err(ExportError::NoInput);
    }
    let format = format
        .or_else(|| ExportFormat::from_extension(output))
        .ok_or_else(|| ExportError::UnknownFormat(output.to_path_buf()))?;
    let temporary = check_output(output, force)?;
    let result = write_all(inputs, &temporary, format);
    match result {
        Ok(report) => {
            std::fs::rename(&temporary, output).map_err(|source| ExportError::Io {
                path: output.to_path_buf(),
                source,
            })?;
            Ok(report)
        }
        Err(error) => {
            let _ = std::fs::remove_file(&temporary);
            Err(error)
        }
    }
}

/// Refuses an existing output without `force` and an output in a missing directory; returns
/// the temporary file to write before renaming it to `output`.
pub fn check_output(output: &Path, force: bool) -> Result<PathBuf, ExportError> {
    if output.exists() && !force {
        return Err(ExportError::OutputExists(output.to_path_buf()));
    }
    let dir = match output.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(ExportError::OutputDirMissing(output.to_path_buf()));
    }
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(dir.join(format!(".{name}.{}.partial", std::process::id())))
}

/// Analyses the inputs on worker threads and writes their rows to `path` on this one.
fn write_all(
    inputs: &[PathBuf],
    path: &Path,
    format: ExportFormat,
) -> Result<ExportReport, ExportError> {
    let file = File::create(path).map_err(|source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if format == ExportFormat::Parquet {
        reuse_large_allocations();
    }
    let mut sink = Sink::new(format, file, path)?;
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let workers = (cores / 2).clamp(1, inputs.len());
    // Each worker decodes on a thread of its own only if that leaves a core for the writer:
    // on two cores, three busy threads took turns (measured about 7 % slower than two).
    let options = OfflineOptions {
        one_thread: 2 * workers + 1 > cores,
        ..OfflineOptions::default()
    };
    let next = Mutex::new(0usize);
    // A few batches waiting per worker (for Parquet about a sixth of a row group, so that
    // the analysis does not wait on the writer's every hiccup): memory is bounded whatever
    // the captures' size.
    let waiting = match format {
        ExportFormat::Csv => 1,
        ExportFormat::Parquet => 16,
    };
    let (tx, rx) = mpsc::sync_channel::<Rows>(workers * waiting);
    let results = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let tx = tx.clone();
                let (next, options) = (&next, &options);
                scope.spawn(move || {
                    let mut done = Vec::new();
                    loop {
                        let i = {
                            let mut n = next
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner);
                            *n += 1;
                            *n - 1
                        };
                        let Some(input) = inputs.get(i) else {
                            break done;
                        };
                        done.push((i, export_capture(input, format, options, &tx)));
                    }
                })
            })
            .collect();
        drop(tx);
        let mut written = Ok(());
        for rows in rx {
            if written.is_ok() {
                written = sink.write(rows);
            }
        }
        let mut results: Vec<_> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect();
        results.sort_by_key(|(i, _)| *i);
        written.map(|()| results)
    })?;
    sink.finish()?;
    let mut report = ExportReport::default();
    for (_, result) in results {
        report.captures.push(result?);
    }
    Ok(report)
}

/// Lets the allocator keep and reuse blocks of up to 4 MiB. The Parquet writer allocates,
/// grows and frees buffers of a few hundred kB per column and page; glibc serves blocks over
/// 128 kB with `mmap` (and grows them with `mremap`) and gives them back with `munmap`, so
/// every page was faulted in anew and every unmap interrupted the other threads' cores to
/// flush their TLBs. Served from the heap, with up to 32 MiB free kept at its top, they are
/// reused instead: the export ran about 12 % faster, measured. Process-wide and set once (the
/// shell may export again); glibc only, other C libraries keep their own policy. Raw libc:
/// nix has no binding for `mallopt`.
fn reuse_large_allocations() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: mallopt only changes allocator thresholds (glibc documents it MT-Safe); it
        // takes plain integers and touches no memory of ours.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 32 << 20);
        }
    });
}

/// Analyses one capture, sending its rows in batches. Stops early if the writer is gone.
fn export_capture(
    input: &Path,
    format: ExportFormat,
    options: &OfflineOptions,
    tx: &mpsc::SyncSender<Rows>,
) -> Result<CaptureExport, ExportError> {
    let name: Arc<str> = input.display().to_string().into();
    let limit = batch_rows(format);
    let mut rows = Rows::with_limit(Arc::clone(&name), limit);
    let mut count = 0u64;
    let mut observer = |record: &PacketRecord| {
        rows.push(record);
        count += 1;
        if rows.is_full() {
            let full = std::mem::replace(&mut rows, Rows::with_limit(Arc::clone(&name), limit));
            // A closed channel means the writer failed: its error is the one reported.
            let _ = tx.send(full);
        }
    };
    let report = offline::analyze_file_observed(input, options, &mut observer)?;
    if !rows.is_empty() {
        let _ = tx.send(rows);
    }
    Ok(CaptureExport {
        capture: input.to_path_buf(),
        rows: count,
        stopped_early: report.error.map(|e| e.to_string()),
    })
}

/// Records per batch on their way to the writer. For Parquet, small enough (about 270 kB)
/// that the batch is still in the cache when the writer thread lays it out in columns
/// (`columns`, which gathers eight of them into one `BATCH_ROWS` batch).
fn batch_rows(format: ExportFormat) -> usize {
    match format {
        ExportFormat::Csv => rows::BATCH_ROWS,
        ExportFormat::Parquet => columns::BATCH_ROWS / 8,
    }
}

/// The output being written.
enum Sink {
    Csv {
        path: PathBuf,
        writer: csv::Writer<BufWriter<File>>,
    },
    Parquet {
        path: PathBuf,
        sink: ParquetSink,
    },
}

impl Sink {
    fn new(format: ExportFormat, file: File, path: &Path) -> Result<Self, ExportError> {
        let path = path.to_path_buf();
        Ok(match format {
            ExportFormat::Csv => {
                let mut writer = csv::Writer::from_writer(BufWriter::with_capacity(1 << 20, file));
                let header = rows::COLUMNS.iter().map(|(name, _, _)| *name);
                writer
                    .write_record(header)
                    .map_err(|source| ExportError::Csv {
                        path: path.clone(),
                        source,
                    })?;
                Sink::Csv { path, writer }
            }
            ExportFormat::Parquet => {
                let sink = ParquetSink::new(file).map_err(|source| ExportError::Parquet {
                    path: path.clone(),
                    source,
                })?;
                Sink::Parquet { path, sink }
            }
        })
    }

    fn write(&mut self, rows: Rows) -> Result<(), ExportError> {
        match self {
            Sink::Csv { path, writer } => {
                rows.write_csv(writer).map_err(|source| ExportError::Csv {
                    path: path.clone(),
                    source,
                })
            }
            Sink::Parquet { path, sink } => {
                sink.write(&rows).map_err(|source| ExportError::Parquet {
                    path: path.clone(),
                    source,
                })
            }
        }
    }

    fn finish(self) -> Result<(), ExportError> {
        match self {
            Sink::Csv { path, writer } => {
                let mut inner = writer.into_inner().map_err(|e| ExportError::Io {
                    path: path.clone(),
                    source: e.into_error(),
                })?;
                inner
                    .flush()
                    .map_err(|source| ExportError::Io { path, source })
            }
            Sink::Parquet { path, sink } => sink
                .close()
                .map_err(|source| ExportError::Parquet { path, source }),
        }
    }
}
