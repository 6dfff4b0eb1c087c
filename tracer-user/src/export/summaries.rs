//! `export --summaries`: the connection summaries of one or more captures as two tables, one
//! row per MPTCP connection and direction (`connections`), one per subflow and direction
//! (`subflows`). Two tables do not fit one CSV or Parquet file, so the output is a directory
//! holding `connections.{csv,parquet}` and `subflows.{csv,parquet}`.
//!
//! Every number is `analysis::summary`'s, as `mptcp-summary --json` gives it: the rows hold
//! the summary structs themselves and the columns only read their fields. The column lists
//! (`CONNECTION_COLUMNS`, `SUBFLOW_COLUMNS`) serve both formats; the README documents them.

use std::{
    fs::File,
    io::{BufWriter, Write as _},
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use arrow_array::{ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema};
use parquet::{arrow::ArrowWriter, basic::Compression, file::properties::WriterProperties};

use super::{CaptureExport, ExportError, ExportFormat, check_output};
use crate::{
    analysis::{
        Analyzer,
        direction::Direction,
        summary::{MptcpDirectionSummary, SubflowDirectionSummary, SubflowRole},
    },
    offline::{self, OfflineOptions},
};

/// One MPTCP connection's direction.
#[derive(Clone, Debug)]
pub struct ConnectionRow {
    pub capture: Arc<str>,
    pub id: u64,
    /// The initial subflow's endpoints (the connection's client and server), as
    /// `list-mptcp` prints them.
    pub client: Option<String>,
    pub server: Option<String>,
    pub version: u8,
    pub fallback: bool,
    pub client_key: Option<u64>,
    pub server_key: Option<u64>,
    pub summary: MptcpDirectionSummary,
}

/// One subflow's direction.
#[derive(Clone, Debug)]
pub struct SubflowRow {
    pub capture: Arc<str>,
    pub connection: u64,
    pub direction: Direction,
    pub role: Option<SubflowRole>,
    pub client: Option<String>,
    pub server: Option<String>,
    pub summary: SubflowDirectionSummary,
}

/// The two tables of some captures.
#[derive(Clone, Debug, Default)]
pub struct SummaryRows {
    pub connections: Vec<ConnectionRow>,
    pub subflows: Vec<SubflowRow>,
}

/// A value of one cell.
pub enum Value<'a> {
    U64(Option<u64>),
    F64(f64),
    Bool(bool),
    Str(Option<&'a str>),
}

/// The type of a column's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    U64,
    F64,
    Bool,
    Str,
}

impl Kind {
    fn data_type(self) -> DataType {
        match self {
            Kind::U64 => DataType::UInt64,
            Kind::F64 => DataType::Float64,
            Kind::Bool => DataType::Boolean,
            Kind::Str => DataType::Utf8,
        }
    }
}

/// A column: its name, type, whether it may be empty (null), and how a row gives its value.
pub struct Column<R> {
    pub name: &'static str,
    pub kind: Kind,
    pub nullable: bool,
    pub get: fn(&R) -> Value<'_>,
}

const fn col<R>(name: &'static str, kind: Kind, get: fn(&R) -> Value<'_>) -> Column<R> {
    Column {
        name,
        kind,
        nullable: false,
        get,
    }
}

const fn nullable<R>(name: &'static str, kind: Kind, get: fn(&R) -> Value<'_>) -> Column<R> {
    Column {
        name,
        kind,
        nullable: true,
        get,
    }
}

fn u64_of(n: u64) -> Value<'static> {
    Value::U64(Some(n))
}

/// The `connections` table's columns, in output order.
pub const CONNECTION_COLUMNS: &[Column<ConnectionRow>] = &[
    col("capture", Kind::Str, |r| Value::Str(Some(&r.capture))),
    col("mptcp_connection", Kind::U64, |r| u64_of(r.id)),
    col("direction", Kind::Str, |r| {
        Value::Str(Some(r.summary.direction.as_str()))
    }),
    nullable("client", Kind::Str, |r| Value::Str(r.client.as_deref())),
    nullable("server", Kind::Str, |r| Value::Str(r.server.as_deref())),
    col("version", Kind::U64, |r| u64_of(u64::from(r.version))),
    col("fallback", Kind::Bool, |r| Value::Bool(r.fallback)),
    nullable("client_key", Kind::U64, |r| Value::U64(r.client_key)),
    nullable("server_key", Kind::U64, |r| Value::U64(r.server_key)),
    col("duration_s", Kind::F64, |r| {
        Value::F64(r.summary.duration_s)
    }),
    col("wire_bytes", Kind::U64, |r| u64_of(r.summary.wire_bytes)),
    col("unique_bytes", Kind::U64, |r| {
        u64_of(r.summary.unique_bytes)
    }),
    col("acked_bytes", Kind::U64, |r| u64_of(r.summary.acked_bytes)),
    col("reinjected_bytes", Kind::U64, |r| {
        u64_of(r.summary.reinjected_bytes)
    }),
    col("reinjections", Kind::U64, |r| {
        u64_of(r.summary.reinjections)
    }),
    col("retransmitted_bytes", Kind::U64, |r| {
        u64_of(r.summary.retransmitted_bytes)
    }),
    col("retransmissions", Kind::U64, |r| {
        u64_of(r.summary.retransmissions)
    }),
    col("unmapped_segments", Kind::U64, |r| {
        u64_of(r.summary.unmapped_segments)
    }),
    col("unmapped_bytes", Kind::U64, |r| {
        u64_of(r.summary.unmapped_bytes)
    }),
    col("goodput_bps", Kind::F64, |r| {
        Value::F64(r.summary.goodput_bps)
    }),
    col("throughput_bps", Kind::F64, |r| {
        Value::F64(r.summary.throughput_bps)
    }),
    col("subflows", Kind::U64, |r| {
        u64_of(r.summary.subflows.len() as u64)
    }),
];

/// The `subflows` table's columns, in output order.
pub const SUBFLOW_COLUMNS: &[Column<SubflowRow>] = &[
    col("capture", Kind::Str, |r| Value::Str(Some(&r.capture))),
    col("mptcp_connection", Kind::U64, |r| u64_of(r.connection)),
    col("tcp_stream", Kind::U64, |r| u64_of(r.summary.tcp_stream)),
    col("direction", Kind::Str, |r| {
        Value::Str(Some(r.direction.as_str()))
    }),
    nullable("role", Kind::Str, |r| {
        Value::Str(r.role.map(SubflowRole::as_str))
    }),
    nullable("client", Kind::Str, |r| Value::Str(r.client.as_deref())),
    nullable("server", Kind::Str, |r| Value::Str(r.server.as_deref())),
    col("packets", Kind::U64, |r| u64_of(r.summary.packets)),
    col("wire_bytes", Kind::U64, |r| u64_of(r.summary.wire_bytes)),
    col("unique_bytes", Kind::U64, |r| {
        u64_of(r.summary.unique_bytes)
    }),
    col("reinjected_bytes", Kind::U64, |r| {
        u64_of(r.summary.reinjected_bytes)
    }),
    col("retransmitted_bytes", Kind::U64, |r| {
        u64_of(r.summary.retransmitted_bytes)
    }),
    col("share", Kind::F64, |r| Value::F64(r.summary.share)),
];

/// The rows of every MPTCP connection of an analysed capture (`capture` names it in each row),
/// in connection order, client to server first.
pub fn rows_of(capture: &str, analyzer: &Analyzer) -> SummaryRows {
    let capture: Arc<str> = capture.into();
    let mut rows = SummaryRows::default();
    for info in analyzer.mptcp_list().mptcp_connections {
        let Some(summary) = analyzer.mptcp_summary(info.id) else {
            continue;
        };
        let initial = info
            .subflows
            .iter()
            .find(|s| s.role == SubflowRole::Initial)
            .or(info.subflows.first());
        for direction in summary.directions {
            for subflow in &direction.subflows {
                let known = info
                    .subflows
                    .iter()
                    .find(|s| s.tcp_stream == subflow.tcp_stream);
                rows.subflows.push(SubflowRow {
                    capture: Arc::clone(&capture),
                    connection: info.id,
                    direction: direction.direction,
                    role: known.map(|s| s.role),
                    client: known.map(|s| s.client.to_string()),
                    server: known.map(|s| s.server.to_string()),
                    summary: subflow.clone(),
                });
            }
            rows.connections.push(ConnectionRow {
                capture: Arc::clone(&capture),
                id: info.id,
                client: initial.map(|s| s.client.to_string()),
                server: initial.map(|s| s.server.to_string()),
                version: info.version,
                fallback: info.fallback,
                client_key: info.client_key,
                server_key: info.server_key,
                summary: direction,
            });
        }
    }
    rows
}

/// What `export --summaries` wrote.
#[derive(Debug)]
pub struct SummariesReport {
    /// Per capture, in the order given: `rows` counts its connection rows.
    pub captures: Vec<CaptureExport>,
    pub subflow_rows: u64,
    pub connections_file: PathBuf,
    pub subflows_file: PathBuf,
}

impl SummariesReport {
    /// One warning per capture whose reading stopped early (exit code 2).
    pub fn warnings(&self) -> Vec<String> {
        self.captures
            .iter()
            .filter_map(|c| {
                let error = c.stopped_early.as_ref()?;
                Some(format!(
                    "{error}; its summaries cover the packets before it"
                ))
            })
            .collect()
    }

    /// The line the front ends print.
    pub fn message(&self) -> String {
        let connections: u64 = self.captures.iter().map(|c| c.rows).sum();
        format!(
            "{connections} connection rows and {} subflow rows from {} captures written to {} \
             and {}",
            self.subflow_rows,
            self.captures.len(),
            self.connections_file.display(),
            self.subflows_file.display()
        )
    }
}

/// Analyses `inputs` (in parallel, as the packet export does) and writes their summaries into
/// the directory `dir`.
pub fn export_summaries(
    inputs: &[PathBuf],
    dir: &Path,
    format: Option<ExportFormat>,
    force: bool,
) -> Result<SummariesReport, ExportError> {
    if inputs.is_empty() {
        return Err(ExportError::NoInput);
    }
    let mut rows = SummaryRows::default();
    let mut captures = Vec::new();
    for analysed in analyse_all(inputs) {
        let (capture_rows, capture) = analysed?;
        rows.connections.extend(capture_rows.connections);
        rows.subflows.extend(capture_rows.subflows);
        captures.push(capture);
    }
    write(&rows, captures, dir, format, force)
}

/// Writes the summaries of a capture already analysed (the shell's loaded one).
pub fn export_analyzed(
    capture: &Path,
    analyzer: &Analyzer,
    dir: &Path,
    format: Option<ExportFormat>,
    force: bool,
) -> Result<SummariesReport, ExportError> {
    let rows = rows_of(&capture.display().to_string(), analyzer);
    let captures = vec![CaptureExport {
        capture: capture.to_path_buf(),
        rows: rows.connections.len() as u64,
        stopped_early: None,
    }];
    write(&rows, captures, dir, format, force)
}

type Analysed = Result<(SummaryRows, CaptureExport), ExportError>;

/// Each input's rows, in input order, analysed by as many workers as half the cores (each
/// analysis already decodes on a second thread).
fn analyse_all(inputs: &[PathBuf]) -> Vec<Analysed> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get() / 2)
        .clamp(1, inputs.len().max(1));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Analysed)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(input) = inputs.get(i) else { break };
                    let result = analyse(input);
                    results
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push((i, result));
                }
            });
        }
    });
    let mut results = results
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

fn analyse(input: &Path) -> Analysed {
    let report = offline::analyze_file(input, &OfflineOptions::default())?;
    let rows = rows_of(&input.display().to_string(), &report.analyzer);
    let capture = CaptureExport {
        capture: input.to_path_buf(),
        rows: rows.connections.len() as u64,
        stopped_early: report.error.map(|e| e.to_string()),
    };
    Ok((rows, capture))
}

/// Writes both tables into `dir` (made if missing; its parent must exist): to temporary files
/// first, renamed once both are written, so a failure leaves neither, and nothing is
/// overwritten without `force`.
fn write(
    rows: &SummaryRows,
    captures: Vec<CaptureExport>,
    dir: &Path,
    format: Option<ExportFormat>,
    force: bool,
) -> Result<SummariesReport, ExportError> {
    let format = format.unwrap_or(ExportFormat::Csv);
    let extension = match format {
        ExportFormat::Csv => "csv",
        ExportFormat::Parquet => "parquet",
    };
    let connections_file = dir.join(format!("connections.{extension}"));
    let subflows_file = dir.join(format!("subflows.{extension}"));
    let created = prepare_dir(dir)?;
    let checked = check_output(&connections_file, force)
        .and_then(|c| Ok((c, check_output(&subflows_file, force)?)));
    let (connections_tmp, subflows_tmp) = match checked {
        Ok(temporaries) => temporaries,
        Err(error) => {
            if created {
                let _ = std::fs::remove_dir(dir);
            }
            return Err(error);
        }
    };
    let written = write_table(
        &connections_tmp,
        format,
        CONNECTION_COLUMNS,
        &rows.connections,
    )
    .and_then(|()| write_table(&subflows_tmp, format, SUBFLOW_COLUMNS, &rows.subflows))
    .and_then(|()| rename(&connections_tmp, &connections_file))
    .and_then(|()| rename(&subflows_tmp, &subflows_file));
    if let Err(error) = written {
        let _ = std::fs::remove_file(&connections_tmp);
        let _ = std::fs::remove_file(&subflows_tmp);
        return Err(error);
    }
    Ok(SummariesReport {
        captures,
        subflow_rows: rows.subflows.len() as u64,
        connections_file,
        subflows_file,
    })
}

/// Makes `dir` if it does not exist (not its parents: a missing parent is a typo). True when
/// it was made here.
fn prepare_dir(dir: &Path) -> Result<bool, ExportError> {
    if dir.is_dir() {
        return Ok(false);
    }
    if dir.exists() {
        return Err(ExportError::NotADirectory(dir.to_path_buf()));
    }
    let parent = match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return Err(ExportError::OutputDirMissing(dir.to_path_buf()));
    }
    std::fs::create_dir(dir).map_err(|source| ExportError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    Ok(true)
}

fn rename(from: &Path, to: &Path) -> Result<(), ExportError> {
    std::fs::rename(from, to).map_err(|source| ExportError::Io {
        path: to.to_path_buf(),
        source,
    })
}

fn write_table<R>(
    path: &Path,
    format: ExportFormat,
    columns: &[Column<R>],
    rows: &[R],
) -> Result<(), ExportError> {
    let file = File::create(path).map_err(|source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    match format {
        ExportFormat::Csv => write_csv(path, file, columns, rows),
        ExportFormat::Parquet => write_parquet(path, file, columns, rows),
    }
}

fn write_csv<R>(
    path: &Path,
    file: File,
    columns: &[Column<R>],
    rows: &[R],
) -> Result<(), ExportError> {
    let csv_error = |source| ExportError::Csv {
        path: path.to_path_buf(),
        source,
    };
    let mut writer = csv::Writer::from_writer(BufWriter::new(file));
    writer
        .write_record(columns.iter().map(|c| c.name))
        .map_err(csv_error)?;
    for row in rows {
        for column in columns {
            // f64's Display is the shortest text that reads back as the same number.
            let text = match (column.get)(row) {
                Value::U64(value) => value.map(|n| n.to_string()).unwrap_or_default(),
                Value::F64(value) => value.to_string(),
                Value::Bool(value) => value.to_string(),
                Value::Str(value) => value.unwrap_or_default().to_owned(),
            };
            writer.write_field(text).map_err(csv_error)?;
        }
        writer.write_record(None::<&[u8]>).map_err(csv_error)?;
    }
    let mut inner = writer.into_inner().map_err(|e| ExportError::Io {
        path: path.to_path_buf(),
        source: e.into_error(),
    })?;
    inner.flush().map_err(|source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn write_parquet<R>(
    path: &Path,
    file: File,
    columns: &[Column<R>],
    rows: &[R],
) -> Result<(), ExportError> {
    let fields: Vec<Field> = columns
        .iter()
        .map(|c| Field::new(c.name, c.kind.data_type(), c.nullable))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let arrays = columns.iter().map(|c| array(c, rows)).collect();
    let batch =
        RecordBatch::try_new(Arc::clone(&schema), arrays).map_err(|source| ExportError::Arrow {
            path: path.to_path_buf(),
            source,
        })?;
    let parquet_error = |source| ExportError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut writer = ArrowWriter::try_new(file, schema, Some(properties)).map_err(parquet_error)?;
    writer.write(&batch).map_err(parquet_error)?;
    writer.close().map(|_| ()).map_err(parquet_error)
}

/// One column of `rows` as an Arrow array of the column's kind.
fn array<R>(column: &Column<R>, rows: &[R]) -> ArrayRef {
    let values = rows.iter().map(|r| (column.get)(r));
    match column.kind {
        Kind::U64 => Arc::new(
            values
                .map(|v| match v {
                    Value::U64(n) => n,
                    _ => None,
                })
                .collect::<UInt64Array>(),
        ),
        Kind::F64 => Arc::new(
            values
                .map(|v| match v {
                    Value::F64(x) => Some(x),
                    _ => None,
                })
                .collect::<Float64Array>(),
        ),
        Kind::Bool => Arc::new(
            values
                .map(|v| match v {
                    Value::Bool(b) => Some(b),
                    _ => None,
                })
                .collect::<BooleanArray>(),
        ),
        Kind::Str => Arc::new(
            values
                .map(|v| match v {
                    Value::Str(s) => s,
                    _ => None,
                })
                .collect::<StringArray>(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each column's values are of its kind, and null only where it is nullable: on the
    /// project's own capture of four subflows.
    #[test]
    fn columns_give_values_of_their_kind() {
        let capture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/v4-4sf.pcap");
        let report = offline::analyze_file(&capture, &OfflineOptions::default()).expect("reads");
        let rows = rows_of("v4-4sf.pcap", &report.analyzer);
        assert_eq!(rows.connections.len(), 2, "one connection, two directions");
        assert_eq!(rows.subflows.len(), 8, "four subflows, two directions");
        check_kinds(CONNECTION_COLUMNS, &rows.connections);
        check_kinds(SUBFLOW_COLUMNS, &rows.subflows);
    }

    fn check_kinds<R>(columns: &[Column<R>], rows: &[R]) {
        for column in columns {
            for row in rows {
                let (kind, null) = match (column.get)(row) {
                    Value::U64(v) => (Kind::U64, v.is_none()),
                    Value::F64(_) => (Kind::F64, false),
                    Value::Bool(_) => (Kind::Bool, false),
                    Value::Str(v) => (Kind::Str, v.is_none()),
                };
                assert_eq!(kind, column.kind, "{}", column.name);
                assert!(!null || column.nullable, "{} is null", column.name);
            }
        }
    }
}
