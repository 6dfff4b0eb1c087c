//! `reorder-buffer`: the out-of-order bytes a receiver held. Checked against truths computed
//! another way: a naive walk written here (the union of every held range recomputed from
//! scratch after each packet of the exported rows), `mptcp-summary`'s unique and acknowledged
//! bytes, and the truth file of the project's own capture (the application's byte counts,
//! tcpdump's drops, the receiving kernel's out-of-order queue counter).

use std::path::{Path, PathBuf};

use integration_tests::{
    as_u64, data_dir, direction, list_mptcp, mptcp_summary, shared_pcaps, tracer,
    tracer_with_stdin, truth_captures,
};
use serde_json::Value;

/// A scratch directory removed at the end of the test.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("mptcp-reorder-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch directory");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn reorder_json(capture: &Path, id: u64, side: &str) -> Value {
    let capture = capture.to_string_lossy();
    let id = id.to_string();
    tracer(&["reorder-buffer", &capture, &id, "--side", side, "--json"])
        .assert_success()
        .json()
}

/// One exported row of a connection, what the naive walk reads.
struct Row {
    ts_ns: u64,
    direction: String,
    data: Option<(u64, u64)>,
    data_ack: Option<u64>,
}

/// The rows of connection `id`, in capture order, from `export`.
fn rows_of(capture: &Path, id: u64, scratch: &Scratch) -> Vec<Row> {
    let out = scratch.0.join("rows.csv");
    let _ = std::fs::remove_file(&out);
    tracer(&[
        "export",
        &capture.to_string_lossy(),
        "-o",
        &out.to_string_lossy(),
    ])
    .assert_success();
    let mut reader = csv::Reader::from_path(&out).expect("CSV");
    let header = reader.headers().expect("header").clone();
    let column = |name: &str| header.iter().position(|h| h == name).expect(name);
    let [conn, dir, ts, start, end, ack] = [
        "mptcp_connection",
        "mptcp_direction",
        "ts_ns",
        "dsn_start",
        "dsn_end",
        "data_ack",
    ]
    .map(column);
    reader
        .records()
        .map(|r| r.expect("record"))
        .filter(|r| r[conn] == id.to_string())
        .map(|r| Row {
            ts_ns: r[ts].parse().expect("ts"),
            direction: r[dir].to_owned(),
            data: (!r[start].is_empty())
                .then(|| (r[start].parse().expect("dsn"), r[end].parse().expect("dsn"))),
            data_ack: r[ack].parse().ok(),
        })
        .collect()
}

/// The README's definition walked naively: offsets from `first` (no wrap in these captures),
/// the held ranges kept as they came and their union recomputed after every packet. Returns
/// (ns since the connection's first row, bytes) at each change.
fn naive_walk(rows: &[Row], data_direction: &str, first: Option<u64>) -> Vec<(u64, u64)> {
    let start_ns = rows.first().map_or(0, |r| r.ts_ns);
    let mut base = first.map(i128::from);
    let mut next: i128 = 0;
    let mut held: Vec<(i128, i128)> = Vec::new();
    let mut samples = Vec::new();
    let mut last = 0;
    for row in rows {
        if row.direction == data_direction {
            let Some((s, e)) = row.data else { continue };
            let b = *base.get_or_insert(i128::from(s));
            held.push((i128::from(s) - b, i128::from(e) - b));
        } else if let (Some(ack), Some(b)) = (row.data_ack, base) {
            next = next.max(i128::from(ack) - b);
        } else {
            continue;
        }
        // Advance over everything contiguous, then measure the union above the point.
        held.sort_unstable();
        for &(s, e) in &held {
            if s <= next {
                next = next.max(e);
            }
        }
        held.retain(|&(_, e)| e > next);
        let (mut bytes, mut reach) = (0, next);
        for &(s, e) in &held {
            let s = s.max(reach);
            if e > s {
                bytes += e - s;
                reach = e;
            }
        }
        let bytes = u64::try_from(bytes).expect("positive");
        if bytes != last {
            samples.push((row.ts_ns - start_ns, bytes));
            last = bytes;
        }
    }
    samples
}

/// The tool's samples against the naive walk's, its maximum against its samples, and against
/// `mptcp-summary`: the maximum is at most the direction's unique bytes, what is held at the
/// end at most what the receiver had not acknowledged, nothing when it acknowledged it all.
/// Returns the final occupancy.
fn check_connection(capture: &Path, id: u64, side: &str, scratch: &Scratch) -> u64 {
    let what = format!("{} connection {id} --side {side}", capture.display());
    let result = reorder_json(capture, id, side);
    let data_direction = if side == "server" {
        "client_to_server"
    } else {
        "server_to_client"
    };
    let list = list_mptcp(capture);
    let info = list["mptcp_connections"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["id"] == id))
        .expect("the connection");
    let idsn = info[if side == "server" {
        "client_idsn"
    } else {
        "server_idsn"
    }]
    .as_str()
    .map(|i| i.parse::<u64>().expect("IDSN") + 1);
    let expected = naive_walk(&rows_of(capture, id, scratch), data_direction, idsn);
    let samples: Vec<(f64, u64)> = result["samples"]
        .as_array()
        .expect("samples")
        .iter()
        .map(|s| {
            (
                s["t_s"].as_f64().expect("t_s"),
                as_u64(&s["bytes"], "bytes"),
            )
        })
        .collect();
    assert_eq!(samples.len(), expected.len(), "{what}: samples");
    for (&(t, bytes), &(ns, naive)) in samples.iter().zip(&expected) {
        assert_eq!(bytes, naive, "{what}: bytes at {t} s");
        assert!((t - ns as f64 / 1e9).abs() < 1e-6, "{what}: {t} s, {ns} ns");
    }
    let max = as_u64(&result["max_bytes"], "max_bytes");
    let first_max = samples.iter().find(|&&(_, b)| b == max);
    assert_eq!(
        max,
        samples.iter().map(|&(_, b)| b).max().unwrap_or(0),
        "{what}"
    );
    assert_eq!(
        result["at_s"].as_f64(),
        first_max.map(|&(t, _)| t),
        "{what}"
    );

    let summary = mptcp_summary(capture, id);
    let d = direction(&summary, data_direction);
    let unique = as_u64(&d["unique_bytes"], "unique_bytes");
    let acked = as_u64(&d["acked_bytes"], "acked_bytes");
    let end = samples.last().map_or(0, |&(_, b)| b);
    assert!(max <= unique, "{what}: max {max} > unique {unique}");
    assert!(end <= unique - acked, "{what}: {end} held at the end");
    if acked == unique {
        assert_eq!(end, 0, "{what}: all acknowledged, nothing held at the end");
    }
    end
}

/// The shared v0 capture made at the server, every connection.
#[test]
fn reorder_buffer_of_the_shared_server_capture() {
    let Some(dir) = shared_pcaps("reorder_buffer_of_the_shared_server_capture") else {
        return;
    };
    let scratch = Scratch::new("shared");
    let capture = dir.join("server_2.pcap");
    let connections = list_mptcp(&capture)["mptcp_connections"]
        .as_array()
        .expect("connections")
        .len() as u64;
    assert!(connections >= 4);
    let mut held_any = false;
    for id in 0..connections {
        check_connection(&capture, id, "server", &scratch);
        held_any |= as_u64(
            &reorder_json(&capture, id, "server")["max_bytes"],
            "max_bytes",
        ) > 0;
    }
    assert!(held_any, "two paths of different delays reorder some data");
}

/// The project's own capture with data both ways, made at the client: the server-to-client
/// data arrives there. The application read all of it, so nothing is held at the end, and the
/// maximum is at most what the application received.
#[test]
fn reorder_buffer_of_an_own_capture_at_the_client() {
    let scratch = Scratch::new("own");
    let truth = truth_captures()
        .into_iter()
        .find(|c| c.name == "v4-2sf-bidir")
        .expect("v4-2sf-bidir");
    let end = check_connection(&truth.file, 0, "client", &scratch);
    assert_eq!(end, 0);
    let result = reorder_json(&truth.file, 0, "client");
    let max = as_u64(&result["max_bytes"], "max_bytes");
    assert!(max <= truth.server_to_client_bytes());
    assert_eq!(result["side"], "client");
    assert_eq!(result["id"], 0);
    // tcpdump at the client's interfaces dropped nothing: every packet that reached the
    // client is in the capture, so its DATA_ACKs never pass data the capture did not show.
    let dropped: u64 = truth.truth["tcpdump"]["interfaces"]
        .as_array()
        .expect("tcpdump interfaces")
        .iter()
        .map(|i| as_u64(&i["dropped_by_kernel"], "dropped"))
        .sum();
    if dropped == 0 {
        assert_eq!(as_u64(&result["uncaptured_bytes"], "uncaptured"), 0);
    }
    // The client's kernel queued data out of order (MPTcpExtOFOQueue, one skb per packet
    // with offloads off): the walk saw data beyond the in-order point too.
    let kernel_ofo = truth.truth["kernel_mptcp_counters"]["client"]["MPTcpExtOFOQueue"]
        .as_u64()
        .unwrap_or(0);
    if kernel_ofo > 0 {
        assert!(max > 0, "the kernel queued {kernel_ofo} skbs out of order");
    }

    // The table says the same maximum; --full lists one line per sample.
    let file = truth.file.to_string_lossy();
    let table = tracer(&["reorder-buffer", &file, "0", "--side", "client"]);
    table.assert_success();
    assert!(
        table.stdout.contains(&format!("maximum held  {max} B")),
        "{}",
        table.stdout
    );
    let full = tracer(&["reorder-buffer", &file, "0", "--side", "client", "--full"]);
    let samples = result["samples"].as_array().expect("samples").len();
    let listed = full
        .assert_success()
        .stdout
        .lines()
        .skip_while(|l| !l.contains("HELD_BYTES"))
        .skip(1)
        .count();
    assert_eq!(listed, samples);
}

/// The shell answers as the one-shot command does; an unknown connection is an error naming
/// the capture.
#[test]
fn reorder_buffer_in_the_shell_and_bad_ids() {
    let file = data_dir().join("v4-2sf-lossy.pcap");
    let path = file.to_string_lossy();
    let cli = tracer(&["reorder-buffer", &path, "0", "--json"]);
    cli.assert_success();
    let shell = tracer_with_stdin(
        &[],
        Some(&format!(
            "load-pcap {path}\nreorder-buffer 0 --json\nquit\n"
        )),
    );
    shell.assert_success();
    assert_eq!(shell.json_documents(), vec![cli.json()]);

    let run = tracer(&["reorder-buffer", &path, "9"]);
    assert_eq!(run.code(), 1);
    assert!(
        run.stderr
            .contains("v4-2sf-lossy.pcap: no MPTCP connection 9"),
        "{}",
        run.stderr
    );
}
