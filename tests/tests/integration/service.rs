//! `contrib/mptcp-tracer.service` as the README tells people to use it: systemd accepts the
//! unit, and its `ExecStart` command line, run as written (its interface replaced by the
//! lab's), traces a transfer with the application's byte counts, serves metrics at the
//! address the README's scrape configuration names, and ends cleanly on the unit's
//! `KillSignal`.

use std::{
    path::{Path, PathBuf},
    process::Command,
    thread,
    time::{Duration, Instant},
};

use integration_tests::{can_use_namespaces, tracer_binary};
use mptcp_lab::{Lab, LabConfig, Side, TransferSpec, skip::skipped_without_tools};
use serde_json::Value;

use crate::{
    live::{Attach, LiveTracer, wait_for_quiet},
    live_faults::assert_unique_bytes,
    metrics::{get, parse_openmetrics},
};

const INSTALLED_BINARY: &str = "/usr/local/bin/mptcp-tracer";

fn unit_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../contrib/mptcp-tracer.service")
}

/// The value of the unit's one `key=` line.
fn unit_setting(unit: &str, key: &str) -> String {
    let prefix = format!("{key}=");
    let values: Vec<&str> = unit
        .lines()
        .filter_map(|line| line.strip_prefix(prefix.as_str()))
        .collect();
    assert_eq!(values.len(), 1, "one {key}= in the unit:\n{unit}");
    values[0].to_owned()
}

/// `systemd-analyze verify` on a copy of the unit whose binary is the one under test.
fn systemd_accepts(unit: &str, test: &str) {
    if skipped_without_tools(test, &["systemd-analyze"]) {
        return;
    }
    let directory = std::env::temp_dir().join(format!("mptcp-tracer-unit-{}", std::process::id()));
    std::fs::create_dir_all(&directory).expect("a temporary directory");
    let copy = directory.join("mptcp-tracer.service");
    let binary = tracer_binary().to_str().expect("a UTF-8 path");
    std::fs::write(&copy, unit.replace(INSTALLED_BINARY, binary)).expect("writing the unit");
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .expect("running systemd-analyze");
    let said = String::from_utf8_lossy(&output.stderr).into_owned();
    let _ = std::fs::remove_dir_all(&directory);
    assert!(
        !said
            .lines()
            .any(|line| line.contains("mptcp-tracer.service")),
        "systemd-analyze verify: {said}"
    );
}

/// Every JSON value of the trace's stdout: ended lines, then the final document.
fn json_values(stdout: &str) -> Vec<Value> {
    serde_json::Deserializer::from_str(stdout)
        .into_iter::<Value>()
        .map(|value| value.unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{stdout}")))
        .collect()
}

/// The connection's summaries: from its ended line, or from the final document if it was
/// still there.
fn summaries(values: &[Value]) -> Vec<Value> {
    let mut found = Vec::new();
    for value in values {
        if value["ended"].is_string() && value["summary"].is_object() {
            found.push(value["summary"].clone());
        }
        if let Some(summaries) = value["summaries"].as_array() {
            found.extend(summaries.iter().cloned());
        }
    }
    found
}

#[test]
fn the_systemd_units_command_line_traces_as_the_readme_says() {
    let test = "the_systemd_units_command_line_traces_as_the_readme_says";
    if !can_use_namespaces(test) {
        return;
    }
    let unit = std::fs::read_to_string(unit_path()).expect("contrib/mptcp-tracer.service");
    systemd_accepts(&unit, test);
    assert_eq!(unit_setting(&unit, "KillSignal"), "SIGTERM");
    let exec_start = unit_setting(&unit, "ExecStart");
    let words: Vec<&str> = exec_start.split_whitespace().collect();
    assert_eq!(words[..2], [INSTALLED_BINARY, "trace"], "{exec_start}");
    // As written, but for the interface: the lab's instead of eth0.
    let mut args: Vec<&str> = Vec::new();
    let mut rest = words[2..].iter();
    while let Some(word) = rest.next() {
        if *word == "-i" {
            rest.next();
        } else {
            args.push(word);
        }
    }
    let metrics = words
        .windows(2)
        .find(|pair| pair[0] == "--metrics")
        .map(|pair| pair[1])
        .expect("the unit serves metrics");

    let lab = Lab::new(&LabConfig::default()).expect("building the lab");
    let namespace = lab.namespace(Side::Client).to_owned();
    let interfaces = lab.interfaces(Side::Client);
    let mut tracer = LiveTracer::start(&namespace, &interfaces, Attach::Auto, &args);
    let counts = lab
        .transfer(&TransferSpec {
            client_sends: 400_000,
            server_sends: 100_000,
            timeout: Duration::from_secs(60),
            ..TransferSpec::default()
        })
        .expect("the transfer");
    wait_for_quiet(&lab);
    // The README's scrape target answers, in OpenMetrics.
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        match get(metrics, "/metrics") {
            Ok((status, _, text)) if status == "HTTP/1.1 200 OK" => break text,
            other => assert!(
                Instant::now() < deadline,
                "GET {metrics}/metrics: {other:?}"
            ),
        }
        thread::sleep(Duration::from_millis(200));
    };
    assert!(
        parse_openmetrics(&text)
            .iter()
            .any(|s| s.name == "mptcp_tracer_packets_seen_total"),
        "{text}"
    );

    let exit = tracer.stop();
    assert_eq!(exit.status.code(), Some(0), "{}", exit.stderr);
    let values = json_values(&exit.stdout);
    let summaries = summaries(&values);
    assert_eq!(
        summaries.len(),
        1,
        "one connection, reported once:\n{}",
        exit.stdout
    );
    assert_unique_bytes(&summaries[0], &counts, test);
}
