//! The JSON of every offline query (`list-tcp`, `tcp-summary` of every stream, `list-mptcp`,
//! `mptcp-summary` of every connection), byte for byte, for the project's captures and the
//! shared ones when present, against files in `tests/data/pinned`. It pins the documented
//! schema and today's numbers through refactorings: a difference is either a regression or a
//! deliberate change, made by running with `PIN_UPDATE=1` and committed with its reason.
//! (The numbers themselves are checked against independent truth elsewhere: truth files,
//! tshark, hand-derived examples.)

use std::path::{Path, PathBuf};

use super::to_pretty;
use crate::offline::{OfflineOptions, analyze_file};

fn json<T: serde::Serialize>(value: &T) -> String {
    to_pretty(value).expect("summaries serialise")
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every query's JSON for one capture, each document after a `== query ==` line.
fn every_query(capture: &Path) -> String {
    let report = analyze_file(capture, &OfflineOptions::default())
        .unwrap_or_else(|e| panic!("{}: {e}", capture.display()));
    assert!(report.error.is_none(), "{}: damaged", capture.display());
    let analyzer = &report.analyzer;
    let mut out = String::new();
    let tcp = analyzer.tcp_list();
    out.push_str("== list-tcp ==\n");
    out.push_str(&json(&tcp));
    for stream in &tcp.tcp_connections {
        let summary = analyzer.tcp_summary(stream.stream).expect("listed stream");
        out.push_str(&format!("== tcp-summary {} ==\n", stream.stream));
        out.push_str(&json(&summary));
    }
    let mptcp = analyzer.mptcp_list();
    out.push_str("== list-mptcp ==\n");
    out.push_str(&json(&mptcp));
    for connection in &mptcp.mptcp_connections {
        let summary = analyzer
            .mptcp_summary(connection.id)
            .expect("listed connection");
        out.push_str(&format!("== mptcp-summary {} ==\n", connection.id));
        out.push_str(&json(&summary));
    }
    out
}

/// The captures of `dir` (`*.pcap`, `*.pcapng`), each named with `prefix`, in name order.
fn captures(dir: &Path, prefix: &str) -> Vec<(String, PathBuf)> {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut captures: Vec<_> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            (name.ends_with(".pcap") || name.ends_with(".pcapng"))
                .then(|| (format!("{prefix}{name}"), entry.path()))
        })
        .collect();
    captures.sort();
    captures
}

#[test]
fn json_of_every_query_is_pinned_for_our_captures() {
    assert_pinned(&captures(&workspace().join("tests/data"), ""));
}

#[test]
fn json_of_every_query_is_pinned_for_the_shared_captures() {
    let test = "json_of_every_query_is_pinned_for_the_shared_captures";
    if let Some(dir) = mptcp_lab::shared_pcaps(test) {
        assert_pinned(&captures(&dir, "shared-"));
    }
}

/// Compares every query's JSON of `captures` with its pinned file (or rewrites them all with
/// `PIN_UPDATE=1`).
fn assert_pinned(captures: &[(String, PathBuf)]) {
    assert!(!captures.is_empty(), "no captures to pin");
    let pinned_dir = workspace().join("tests/data/pinned");
    let update = std::env::var_os("PIN_UPDATE").is_some();
    let mut differ = Vec::new();
    for (name, capture) in captures {
        let actual = every_query(capture);
        let pinned = pinned_dir.join(format!("{name}.json.txt"));
        if update {
            std::fs::create_dir_all(&pinned_dir).expect("creating tests/data/pinned");
            std::fs::write(&pinned, &actual).expect("writing a pinned file");
            continue;
        }
        let expected = std::fs::read_to_string(&pinned)
            .unwrap_or_else(|e| panic!("{}: {e} (PIN_UPDATE=1 writes it)", pinned.display()));
        if actual != expected {
            let line = actual
                .lines()
                .zip(expected.lines())
                .position(|(a, e)| a != e)
                .map_or(actual.lines().count().min(expected.lines().count()), |i| i);
            differ.push(format!(
                "{name}: first difference at line {}: now {:?}, pinned {:?}",
                line + 1,
                actual.lines().nth(line),
                expected.lines().nth(line)
            ));
        }
    }
    assert!(differ.is_empty(), "JSON changed:\n{}", differ.join("\n"));
}
