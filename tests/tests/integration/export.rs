//! `export`: one row per TCP packet, CSV and Parquet. The rows are checked against truths
//! computed another way: list-tcp's packet counts, mptcp-summary's wire and unique bytes (the
//! union of the exported DSN ranges, computed here), the CSV against the Parquet read back by
//! the `parquet` crate, and, where Python has DuckDB, DuckDB's reading of the Parquet.

use std::{
    collections::BTreeMap,
    fs::File,
    path::{Path, PathBuf},
    process::Command,
};

use arrow_array::{
    Array, RecordBatch,
    cast::AsArray,
    types::{Float64Type, UInt8Type, UInt16Type, UInt32Type, UInt64Type},
};
use integration_tests::{
    as_u64, data_dir, direction, list_mptcp, list_tcp, mptcp_summary, shared_pcaps, tracer,
    tracer_with_stdin, truth_captures,
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;

/// A scratch directory removed at the end of the test.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("mptcp-export-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch directory");
        Scratch(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The captures the tests run on: the project's own and, where present, the shared ones.
fn captures() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data_dir())
        .expect("tests/data")
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    if let Some(dir) = shared_pcaps("export_rows_match_the_analysis") {
        files.push(dir.join("client_2.pcap"));
        files.push(dir.join("server_2.pcap"));
    }
    files.sort();
    files
}

/// A table as header and rows of text fields (a missing value is "").
struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn column(&self, name: &str) -> usize {
        self.header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name}"))
    }
}

fn read_csv(path: &Path) -> Table {
    let mut reader = csv::Reader::from_path(path).expect("CSV readable");
    let header = reader
        .headers()
        .expect("CSV header")
        .iter()
        .map(String::from)
        .collect();
    let rows = reader
        .records()
        .map(|r| r.expect("CSV record").iter().map(String::from).collect())
        .collect();
    Table { header, rows }
}

/// Reads a Parquet file with the parquet crate, each value as the CSV writes it.
fn read_parquet(path: &Path) -> (Table, usize) {
    let file = File::open(path).expect("Parquet file");
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).expect("Parquet metadata");
    let row_groups = builder.metadata().num_row_groups();
    let header = builder
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let mut rows = Vec::new();
    for batch in builder.build().expect("Parquet reader") {
        let batch = batch.expect("Parquet batch");
        rows.extend((0..batch.num_rows()).map(|i| row_text(&batch, i)));
    }
    (Table { header, rows }, row_groups)
}

fn row_text(batch: &RecordBatch, i: usize) -> Vec<String> {
    batch
        .columns()
        .iter()
        .map(|column| {
            if column.is_null(i) {
                return String::new();
            }
            match column.data_type() {
                arrow_schema::DataType::Utf8 => column.as_string::<i32>().value(i).to_owned(),
                arrow_schema::DataType::UInt64 => {
                    column.as_primitive::<UInt64Type>().value(i).to_string()
                }
                arrow_schema::DataType::UInt32 => {
                    column.as_primitive::<UInt32Type>().value(i).to_string()
                }
                arrow_schema::DataType::UInt16 => {
                    column.as_primitive::<UInt16Type>().value(i).to_string()
                }
                arrow_schema::DataType::UInt8 => {
                    column.as_primitive::<UInt8Type>().value(i).to_string()
                }
                arrow_schema::DataType::Boolean => column.as_boolean().value(i).to_string(),
                arrow_schema::DataType::Float64 => {
                    column.as_primitive::<Float64Type>().value(i).to_string()
                }
                other => panic!("unexpected column type {other}"),
            }
        })
        .collect()
}

fn export(files: &[&Path], out: &Path) {
    let mut args = vec!["export".to_owned()];
    args.extend(files.iter().map(|f| f.display().to_string()));
    args.extend(["-o".to_owned(), out.display().to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    tracer(&args).assert_success();
}

/// Size of the union of `[start, end)` ranges (no range crosses 2^64 in these captures).
fn union_len(mut ranges: Vec<(u64, u64)>) -> u64 {
    ranges.sort();
    let (mut total, mut reach) = (0u64, 0u64);
    for (start, end) in ranges {
        let start = start.max(reach);
        if end > start {
            total += end - start;
            reach = end;
        }
    }
    total
}

/// Every capture: CSV and Parquet hold the same rows; one row per packet list-tcp counts;
/// per connection and direction the payload lengths add up to mptcp-summary's wire bytes, the
/// DSN ranges cover its unique bytes (a union computed here), and the rows' byte counters add
/// up to its unique, reinjected and retransmitted bytes.
#[test]
fn export_rows_match_the_analysis() {
    let scratch = Scratch::new("match");
    let mut checked_directions = 0;
    for capture in captures() {
        let name = capture.file_name().and_then(|n| n.to_str()).expect("name");
        let csv_path = scratch.path(&format!("{name}.csv"));
        let parquet_path = scratch.path(&format!("{name}.parquet"));
        export(&[&capture], &csv_path);
        export(&[&capture], &parquet_path);
        let csv = read_csv(&csv_path);
        let (parquet, row_groups) = read_parquet(&parquet_path);
        assert_eq!(csv.header, parquet.header, "{name}: columns");
        assert_eq!(csv.rows.len(), parquet.rows.len(), "{name}: row count");
        for (a, b) in csv.rows.iter().zip(&parquet.rows) {
            assert_eq!(a, b, "{name}: a CSV row and its Parquet row");
        }
        assert!(row_groups >= 1, "{name}: {row_groups} row groups");

        let streams = list_tcp(&capture);
        let packets: u64 = streams["tcp_connections"]
            .as_array()
            .expect("streams")
            .iter()
            .map(|s| as_u64(&s["packets"], "packets"))
            .sum();
        assert_eq!(
            csv.rows.len() as u64,
            packets,
            "{name}: rows = list-tcp packets"
        );
        let capture_column = csv.column("capture");
        assert!(
            csv.rows
                .iter()
                .all(|r| r[capture_column] == capture.display().to_string())
        );

        checked_directions += check_connections(&capture, &csv);
    }
    assert!(
        checked_directions >= 10,
        "{checked_directions} directions checked exactly"
    );
}

/// Checks the rows of each MPTCP connection against its summary; returns how many directions
/// carried data and were checked exactly (no payload ahead of its mapping).
fn check_connections(capture: &Path, table: &Table) -> usize {
    let [conn, dir, len, start, end, unmapped_column] = [
        "mptcp_connection",
        "mptcp_direction",
        "payload_len",
        "dsn_start",
        "dsn_end",
        "unmapped_bytes",
    ]
    .map(|c| table.column(c));
    let mut wire: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut unmapped: BTreeMap<(String, String), u64> = BTreeMap::new();
    // unique, reinjected and retransmitted bytes as the rows' counters add them up.
    let mut counted: BTreeMap<(String, String), [u64; 3]> = BTreeMap::new();
    let number = |row: &Vec<String>, column: &str| -> u64 {
        row[table.column(column)].parse().expect("a number")
    };
    let mut ranges: BTreeMap<(String, String), Vec<(u64, u64)>> = BTreeMap::new();
    for row in table.rows.iter().filter(|r| !r[conn].is_empty()) {
        let key = (row[conn].clone(), row[dir].clone());
        *wire.entry(key.clone()).or_default() += row[len].parse::<u64>().expect("length");
        let sums = counted.entry(key.clone()).or_default();
        sums[0] += number(row, "new_bytes") + number(row, "resolved_new_bytes");
        sums[1] += number(row, "reinjected_bytes") + number(row, "resolved_reinjected_bytes");
        sums[2] += number(row, "retransmitted_bytes");
        if let Ok(bytes) = row[unmapped_column].parse::<u64>() {
            *unmapped.entry(key.clone()).or_default() += bytes;
        }
        if !row[start].is_empty() {
            let range = (
                row[start].parse().expect("dsn"),
                row[end].parse().expect("dsn"),
            );
            ranges.entry(key).or_default().push(range);
        }
    }
    let list = list_mptcp(capture);
    let mut checked = 0;
    for c in list["mptcp_connections"].as_array().expect("connections") {
        let id = as_u64(&c["id"], "id");
        let summary = mptcp_summary(capture, id);
        for name in ["client_to_server", "server_to_client"] {
            let d = direction(&summary, name);
            let key = (id.to_string(), name.to_owned());
            let what = format!("{} connection {id} {name}", capture.display());
            assert_eq!(
                wire.get(&key).copied().unwrap_or(0),
                as_u64(&d["wire_bytes"], "wire_bytes"),
                "{what}: wire bytes"
            );
            let unique = as_u64(&d["unique_bytes"], "unique_bytes");
            let sums = counted.get(&key).copied().unwrap_or_default();
            let summary_sums = ["unique_bytes", "reinjected_bytes", "retransmitted_bytes"]
                .map(|name| as_u64(&d[name], name));
            assert_eq!(
                sums, summary_sums,
                "{what}: unique, reinjected, retransmitted bytes"
            );
            let covered = union_len(ranges.remove(&key).unwrap_or_default());
            // Payload carried before its mapping was known (its row's unmapped_bytes) is
            // credited to the data when a later mapping covers it, without a row of its own:
            // with none, the rows' ranges are the whole data; with some, at most that much
            // is missing from them.
            let late = unmapped.get(&key).copied().unwrap_or(0);
            if late == 0 {
                assert_eq!(covered, unique, "{what}: unique bytes");
            } else {
                assert!(
                    covered <= unique && unique <= covered + late,
                    "{what}: {covered} covered, {late} unmapped, {unique} unique"
                );
            }
            checked += usize::from(unique > 0 && late == 0);
        }
    }
    checked
}

/// Several captures into one file: each row names its capture, and each capture has as many
/// rows as exporting it alone gives.
#[test]
fn export_of_several_captures_names_each_row_s_capture() {
    let scratch = Scratch::new("several");
    let files = [
        data_dir().join("v4-2sf.pcap"),
        data_dir().join("v6-2sf.pcapng"),
        data_dir().join("v4-2sf-lossy.pcap"),
    ];
    let out = scratch.path("all.parquet");
    export(
        &files.iter().map(PathBuf::as_path).collect::<Vec<_>>(),
        &out,
    );
    let (table, _) = read_parquet(&out);
    let capture = table.column("capture");
    for file in &files {
        let alone = scratch.path("alone.csv");
        let _ = std::fs::remove_file(&alone);
        export(&[file], &alone);
        let expected = read_csv(&alone).rows.len();
        assert!(expected > 0);
        let rows = table
            .rows
            .iter()
            .filter(|r| r[capture] == file.display().to_string())
            .count();
        assert_eq!(rows, expected, "{}", file.display());
    }
    let total: usize = files
        .iter()
        .map(|f| {
            list_tcp(f)["tcp_connections"]
                .as_array()
                .expect("streams")
                .iter()
                .map(|s| as_u64(&s["packets"], "packets") as usize)
                .sum::<usize>()
        })
        .sum();
    assert_eq!(table.rows.len(), total);
}

/// DuckDB (where Python has it) reads the Parquet: as many rows and the same payload sum as
/// the parquet crate.
#[test]
fn duckdb_reads_the_parquet() {
    let test = "duckdb_reads_the_parquet";
    let has_duckdb = Command::new("python3")
        .args(["-c", "import duckdb"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_duckdb {
        mptcp_lab::skip::skip(test, "python3 has no duckdb module (pip install duckdb)");
        return;
    }
    let scratch = Scratch::new("duckdb");
    let out = scratch.path("v4.parquet");
    export(&[&data_dir().join("v4-2sf-lossy.pcap")], &out);
    let (table, _) = read_parquet(&out);
    let len = table.column("payload_len");
    let sum: u64 = table
        .rows
        .iter()
        .map(|r| r[len].parse::<u64>().expect("len"))
        .sum();
    let query = format!(
        "import duckdb; print(*duckdb.sql(\"select count(*), sum(payload_len) from '{}'\").fetchall()[0])",
        out.display()
    );
    let output = Command::new("python3")
        .args(["-c", &query])
        .output()
        .expect("python3");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("{} {sum}", table.rows.len())
    );
}

/// Bad input: an output that exists (refused without --force, kept as it was), a missing
/// output directory, an unknown format, a file that is not a capture: clear errors, exit 1.
#[test]
fn export_refuses_bad_input_clearly() {
    let scratch = Scratch::new("bad");
    let capture = data_dir().join("v4-2sf.pcap");
    let capture = capture.to_str().expect("UTF-8 path");
    let existing = scratch.path("existing.csv");
    std::fs::write(&existing, "mine").expect("write");
    let existing = existing.to_str().expect("UTF-8 path");
    let run = tracer(&["export", capture, "-o", existing]);
    assert_eq!(run.code(), 1);
    assert!(run.stderr.contains("exists (add --force"), "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(existing).expect("kept"), "mine");
    tracer(&["export", capture, "-o", existing, "--force"]).assert_success();
    assert!(
        std::fs::read_to_string(existing)
            .expect("written")
            .starts_with("capture,frame")
    );

    let missing = scratch.path("no/such/dir/out.parquet");
    let run = tracer(&["export", capture, "-o", missing.to_str().expect("UTF-8")]);
    assert_eq!(run.code(), 1);
    assert!(
        run.stderr.contains("directory does not exist"),
        "{}",
        run.stderr
    );

    let unknown = scratch.path("out.txt");
    let run = tracer(&["export", capture, "-o", unknown.to_str().expect("UTF-8")]);
    assert_eq!(run.code(), 1);
    assert!(
        run.stderr.contains("--format csv or --format parquet"),
        "{}",
        run.stderr
    );
    let run = tracer(&[
        "export", capture, "-o", existing, "--format", "xml", "--force",
    ]);
    assert_eq!(run.code(), 1);
    assert!(run.stderr.contains("invalid value 'xml'"), "{}", run.stderr);

    let not_capture = scratch.path("not-a-capture.pcap");
    std::fs::write(&not_capture, "hello, world").expect("write");
    let out = scratch.path("never.csv");
    let run = tracer(&[
        "export",
        not_capture.to_str().expect("UTF-8"),
        "-o",
        out.to_str().expect("UTF-8"),
    ]);
    assert_eq!(run.code(), 1);
    assert!(run.stderr.contains("not-a-capture.pcap"), "{}", run.stderr);
    assert!(!out.exists(), "a failed export leaves no output");
    assert!(
        std::fs::read_dir(&scratch.0).expect("scratch").all(|e| !e
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .ends_with(".partial")),
        "nor a temporary file"
    );
}

/// `export --summaries DIR` of `files`, CSV and Parquet; returns the CSV tables (connections,
/// subflows) after checking that the Parquet tables hold the same rows.
fn export_summaries(files: &[&Path], scratch: &Scratch, name: &str) -> (Table, Table) {
    let mut tables = Vec::new();
    for format in ["csv", "parquet"] {
        let dir = scratch.path(&format!("{name}-{format}"));
        let mut args = vec!["export".to_owned(), "--summaries".to_owned()];
        args.extend(files.iter().map(|f| f.display().to_string()));
        args.extend(["-o", &dir.display().to_string(), "--format", format].map(String::from));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        tracer(&args).assert_success();
        tables.push(dir);
    }
    let [csv_dir, parquet_dir] = [&tables[0], &tables[1]];
    let mut out = Vec::new();
    for table in ["connections", "subflows"] {
        let csv = read_csv(&csv_dir.join(format!("{table}.csv")));
        let (parquet, _) = read_parquet(&parquet_dir.join(format!("{table}.parquet")));
        assert_eq!(csv.header, parquet.header, "{table}: columns");
        assert_eq!(csv.rows, parquet.rows, "{table}: CSV and Parquet rows");
        out.push(csv);
    }
    let subflows = out.pop().expect("subflows");
    (out.pop().expect("connections"), subflows)
}

/// A field of a row as JSON would give it, for comparing with mptcp-summary's JSON.
fn same(field: &str, json: &Value) -> bool {
    match json {
        // serde_json's default float parsing may miss the last bit: equal to 1e-12.
        Value::Number(n) if n.is_f64() => field.parse::<f64>().is_ok_and(|x| {
            n.as_f64()
                .is_some_and(|y| (x - y).abs() <= 1e-12 * y.abs().max(1.0))
        }),
        Value::Number(n) => field.parse::<u64>().ok() == n.as_u64(),
        Value::Bool(b) => field == b.to_string(),
        Value::String(s) => field == s,
        Value::Null => field.is_empty(),
        _ => false,
    }
}

/// Every row of both tables against `mptcp-summary --json` and `list-mptcp --json` of its
/// capture: the same numbers, one connection row per connection and direction, one subflow
/// row per subflow and direction. Returns the connection rows checked.
fn check_summary_rows(capture: &Path, connections: &Table, subflows: &Table) -> usize {
    let name = capture.display().to_string();
    let of_capture = |t: &Table| -> Vec<Vec<String>> {
        let c = t.column("capture");
        t.rows.iter().filter(|r| r[c] == name).cloned().collect()
    };
    let (conn_rows, sub_rows) = (of_capture(connections), of_capture(subflows));
    let list = list_mptcp(capture);
    let infos = list["mptcp_connections"].as_array().expect("connections");
    assert_eq!(conn_rows.len(), 2 * infos.len(), "{name}: connection rows");
    let mut subflow_rows = 0;
    for row in &conn_rows {
        let field = |c: &str| row[connections.column(c)].as_str();
        let id: u64 = field("mptcp_connection").parse().expect("id");
        let info = infos.iter().find(|i| i["id"] == id).expect("listed");
        let initial = &info["subflows"][0];
        let summary = mptcp_summary(capture, id);
        let d = direction(&summary, field("direction"));
        let what = format!("{name} connection {id} {}", field("direction"));
        for (column, json) in [
            ("version", &info["version"]),
            ("fallback", &info["fallback"]),
            ("client_key", &info["client_key"]),
            ("server_key", &info["server_key"]),
            ("client", &initial["client"]),
            ("server", &initial["server"]),
        ] {
            assert!(same(field(column), json), "{what}: {column} {json}");
        }
        for column in [
            "duration_s",
            "wire_bytes",
            "unique_bytes",
            "acked_bytes",
            "reinjected_bytes",
            "reinjections",
            "retransmitted_bytes",
            "retransmissions",
            "unmapped_segments",
            "unmapped_bytes",
            "goodput_bps",
            "throughput_bps",
        ] {
            assert!(same(field(column), &d[column]), "{what}: {column}");
        }
        let summary_subflows = d["subflows"].as_array().expect("subflows");
        assert_eq!(field("subflows"), summary_subflows.len().to_string());
        for s in summary_subflows {
            let row = sub_rows
                .iter()
                .find(|r| {
                    let f = |c: &str| r[subflows.column(c)].as_str();
                    f("mptcp_connection") == id.to_string()
                        && f("direction") == field("direction")
                        && same(f("tcp_stream"), &s["tcp_stream"])
                })
                .unwrap_or_else(|| panic!("{what}: no row of subflow {}", s["tcp_stream"]));
            let f = |c: &str| row[subflows.column(c)].as_str();
            for column in [
                "packets",
                "wire_bytes",
                "unique_bytes",
                "reinjected_bytes",
                "retransmitted_bytes",
                "share",
            ] {
                assert!(same(f(column), &s[column]), "{what}: subflow {column}");
            }
            let listed = info["subflows"]
                .as_array()
                .and_then(|l| l.iter().find(|l| l["tcp_stream"] == s["tcp_stream"]))
                .expect("listed subflow");
            for column in ["role", "client", "server"] {
                assert!(same(f(column), &listed[column]), "{what}: {column}");
            }
            subflow_rows += 1;
        }
    }
    assert_eq!(sub_rows.len(), subflow_rows, "{name}: subflow rows");
    conn_rows.len()
}

/// `export --summaries` of the project's own capture and a shared one at once: every row is
/// mptcp-summary's and list-mptcp's, CSV and Parquet agree, and the own capture's unique bytes
/// are what the application sent each way (its truth file).
#[test]
fn export_summaries_rows_are_the_summaries() {
    let scratch = Scratch::new("summaries");
    let own = truth_captures()
        .into_iter()
        .find(|c| c.name == "v4-2sf-bidir")
        .expect("v4-2sf-bidir");
    let mut files = vec![own.file.clone()];
    if let Some(dir) = shared_pcaps("export_summaries_rows_are_the_summaries") {
        files.push(dir.join("server_2.pcap"));
    }
    let paths: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let (connections, subflows) = export_summaries(&paths, &scratch, "both");
    let checked: usize = files
        .iter()
        .map(|f| check_summary_rows(f, &connections, &subflows))
        .sum();
    assert_eq!(checked, connections.rows.len());
    let [dir, unique] = ["direction", "unique_bytes"].map(|c| connections.column(c));
    let own_name = own.file.display().to_string();
    let unique_of = |direction: &str| -> u64 {
        connections
            .rows
            .iter()
            .find(|r| r[0] == own_name && r[dir] == direction)
            .map(|r| r[unique].parse().expect("unique"))
            .expect("own capture's row")
    };
    assert_eq!(unique_of("client_to_server"), own.client_to_server_bytes());
    assert_eq!(unique_of("server_to_client"), own.server_to_client_bytes());
}

/// The summaries' directory: existing tables are refused without --force and kept; a file
/// where the directory should be and a missing parent are clear errors; nothing half-written.
#[test]
fn export_summaries_refuses_to_overwrite() {
    let scratch = Scratch::new("summaries-bad");
    let capture = data_dir().join("v4-2sf.pcap");
    let capture = capture.to_str().expect("UTF-8 path");
    let dir = scratch.path("out");
    let dir_text = dir.to_str().expect("UTF-8 path");
    tracer(&["export", "--summaries", capture, "-o", dir_text]).assert_success();
    std::fs::write(dir.join("subflows.csv"), "mine").expect("write");
    let run = tracer(&["export", "--summaries", capture, "-o", dir_text]);
    assert_eq!(run.code(), 1);
    // connections.csv is there too: the first table refused is named.
    assert!(
        run.stderr.contains("connections.csv: exists (add --force"),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("subflows.csv")).expect("kept"),
        "mine"
    );
    tracer(&["export", "--summaries", capture, "-o", dir_text, "--force"]).assert_success();
    assert!(
        std::fs::read_to_string(dir.join("subflows.csv"))
            .expect("written")
            .starts_with("capture,mptcp_connection,tcp_stream")
    );

    let file = dir.join("connections.csv");
    let run = tracer(&[
        "export",
        "--summaries",
        capture,
        "-o",
        file.to_str().expect("UTF-8"),
    ]);
    assert_eq!(run.code(), 1);
    assert!(run.stderr.contains("not a directory"), "{}", run.stderr);
    let missing = scratch.path("no/such");
    let run = tracer(&[
        "export",
        "--summaries",
        capture,
        "-o",
        missing.to_str().expect("UTF-8"),
    ]);
    assert_eq!(run.code(), 1);
    assert!(
        run.stderr.contains("directory does not exist"),
        "{}",
        run.stderr
    );
    let names: Vec<String> = std::fs::read_dir(&dir)
        .expect("out")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| !n.ends_with(".partial")),
        "no temporary file left: {names:?}"
    );
}

/// The shell's `export` of the loaded capture writes the same files as the one-shot command,
/// packets and summaries; refusing an existing output fails the batch.
#[test]
fn shell_exports_the_loaded_capture() {
    let scratch = Scratch::new("shell");
    let capture = data_dir().join("v4-2sf-lossy.pcap");
    let capture_text = capture.display().to_string();
    let cli_packets = scratch.path("cli.csv");
    export(&[&capture], &cli_packets);
    let cli_summaries = scratch.path("cli-summaries");
    tracer(&[
        "export",
        "--summaries",
        &capture_text,
        "-o",
        cli_summaries.to_str().expect("UTF-8"),
        "--format",
        "parquet",
    ])
    .assert_success();

    let shell_packets = scratch.path("shell.csv");
    let shell_summaries = scratch.path("shell-summaries");
    let script = format!(
        "load-pcap {capture_text}\nexport -o {}\nexport --summaries --format parquet -o {}\nquit\n",
        shell_packets.display(),
        shell_summaries.display()
    );
    let shell = tracer_with_stdin(&[], Some(&script));
    shell.assert_success();
    assert!(
        shell.stdout.contains("rows from 1 captures written to"),
        "{shell:?}"
    );
    let read = |p: PathBuf| std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    assert_eq!(read(shell_packets.clone()), read(cli_packets));
    for table in ["connections", "subflows"] {
        let name = format!("{table}.parquet");
        let (cli, _) = read_parquet(&cli_summaries.join(&name));
        let (shell, _) = read_parquet(&shell_summaries.join(&name));
        assert_eq!(cli.rows, shell.rows, "{table}");
        assert!(!cli.rows.is_empty());
    }

    let again = format!(
        "load-pcap {capture_text}\nexport -o {}\nquit\n",
        shell_packets.display()
    );
    let refused = tracer_with_stdin(&[], Some(&again));
    assert_eq!(refused.code(), 1);
    assert!(
        refused.stderr.contains("exists (add --force"),
        "{refused:?}"
    );
}

/// A capture cut short: its summaries are written, and the damage is a warning with exit
/// code 2, as for the packet rows.
#[test]
fn export_summaries_of_a_truncated_capture_warn() {
    let scratch = Scratch::new("summaries-cut");
    let bytes = std::fs::read(data_dir().join("v4-2sf.pcap")).expect("capture");
    let cut = scratch.path("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() - 50]).expect("write");
    let dir = scratch.path("out");
    let run = tracer(&[
        "export",
        "--summaries",
        cut.to_str().expect("UTF-8"),
        "-o",
        dir.to_str().expect("UTF-8"),
    ]);
    run.assert_no_panic();
    assert_eq!(run.code(), 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("cut.pcap") && run.stderr.contains("its summaries cover the packets"),
        "{}",
        run.stderr
    );
    let connections = read_csv(&dir.join("connections.csv"));
    assert_eq!(connections.rows.len(), 2, "one connection, two directions");
}
