//! `trace --metrics`: the `/metrics` endpoint during a lab transfer, its OpenMetrics text
//! checked line by line and its unique-bytes series (aggregate and per connection) against
//! the application's byte counts, the per-connection ones gone once the closed connection's
//! were scraped; then a real Prometheus scraping it, queried through its HTTP API, and
//! `promtool check metrics` on a scrape; the ended connection counted as closed by DATA_FIN
//! (as the kernels' counters say it ended), with `--long-run` as without, and with it its bytes
//! kept in the totals once forgotten. A port in use is
//! refused before anything is attached.
//!
//! The tracer attaches in the lab's client namespace (`--netns`) but serves the metrics in
//! the namespace it was started in: 127.0.0.1 of the test's own.

use std::{
    collections::BTreeMap,
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::Path,
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use integration_tests::{can_use_namespaces, tracer};
use mptcp_lab::{Lab, LabConfig, Side, TransferCounts, TransferSpec, skip::skipped_without_tools};
use serde_json::Value;

use crate::live::{Attach, LiveTracer, Scratch, hooks, wait_for_quiet};

const CLIENT_SENDS: u64 = 1_000_000;
const SERVER_SENDS: u64 = 200_000;
/// Generous: the machine is small and shared, and Prometheus takes a while to start.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(60);
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A port of 127.0.0.1 nobody listens on now.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a free port");
    listener.local_addr().expect("its address").port()
}

/// What `get` returns: the status line, the headers (names lowercased) and the body.
type Response = (String, BTreeMap<String, String>, String);

/// One HTTP/1.1 GET without an `Accept` header.
fn get(address: &str, path: &str) -> std::io::Result<Response> {
    get_accepting(address, path, "")
}

/// One HTTP/1.1 GET, with `accept` as its `Accept` header unless empty.
fn get_accepting(address: &str, path: &str, accept: &str) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let accept = if accept.is_empty() {
        String::new()
    } else {
        format!("Accept: {accept}\r\n")
    };
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\n{accept}Connection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or((response.as_str(), ""));
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default().to_owned();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    Ok((status, headers, body.to_owned()))
}

/// One sample of an OpenMetrics exposition.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses OpenMetrics text strictly enough for what the tracer writes: every line a
/// `# TYPE`, `# HELP`, `# UNIT` or a sample of a family typed before, each family typed and
/// described once, `# EOF` the last line.
fn parse_openmetrics(text: &str) -> Vec<Sample> {
    assert!(text.ends_with("# EOF\n"), "not ended by # EOF:\n{text}");
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut helps = BTreeMap::new();
    let mut samples = Vec::new();
    for line in text.lines().take_while(|line| *line != "# EOF") {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kind, family, what) = (parts.next(), parts.next(), parts.next());
            let (Some(kind), Some(family), Some(what)) = (kind, family, what) else {
                panic!("bad metadata line {line:?}");
            };
            let earlier = match kind {
                "TYPE" => types.insert(family.to_owned(), what.to_owned()),
                "HELP" => helps.insert(family.to_owned(), what.to_owned()),
                "UNIT" => {
                    assert!(family.ends_with(&format!("_{what}")), "{line}");
                    None
                }
                _ => panic!("unknown metadata {line:?}"),
            };
            assert!(earlier.is_none(), "{kind} of {family} twice");
            continue;
        }
        let sample = parse_sample(line);
        let family = types
            .keys()
            .find(|family| sample.name == **family || sample.name == format!("{family}_total"))
            .unwrap_or_else(|| panic!("{line:?}: no # TYPE before it"));
        if types[family] == "counter" {
            assert!(sample.name.ends_with("_total"), "{line}");
        }
        samples.push(sample);
    }
    for family in types.keys() {
        assert!(helps.contains_key(family), "{family} has no # HELP");
    }
    samples
}

/// `name{a="x",b="y"} value` (labels optional).
fn parse_sample(line: &str) -> Sample {
    let (series, value) = line
        .rsplit_once(' ')
        .unwrap_or_else(|| panic!("no value in {line:?}"));
    let value = value
        .parse()
        .unwrap_or_else(|_| panic!("bad value in {line:?}"));
    let (name, labels) = match series.split_once('{') {
        Some((name, labels)) => (
            name,
            labels
                .strip_suffix('}')
                .unwrap_or_else(|| panic!("{line:?}")),
        ),
        None => (series, ""),
    };
    let labels = labels
        .split("\",")
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair
                .split_once("=\"")
                .unwrap_or_else(|| panic!("bad label in {line:?}"));
            (key.to_owned(), value.trim_end_matches('"').to_owned())
        })
        .collect();
    Sample {
        name: name.to_owned(),
        labels,
        value,
    }
}

/// The samples of `name`, by their `direction` label.
fn by_direction(samples: &[Sample], name: &str) -> BTreeMap<String, Vec<Sample>> {
    let mut map: BTreeMap<String, Vec<Sample>> = BTreeMap::new();
    for sample in samples.iter().filter(|s| s.name == name) {
        let direction = sample.labels.get("direction").cloned().unwrap_or_default();
        map.entry(direction).or_default().push(sample.clone());
    }
    map
}

/// The application's data-level bytes by direction label.
fn expected_bytes(counts: &TransferCounts) -> [(&'static str, u64); 2] {
    [
        ("client_to_server", counts.server_received),
        ("server_to_client", counts.client_received),
    ]
}

/// Whether the aggregate unique bytes of every direction are `expected`.
fn aggregates_reached(samples: &[Sample], expected: &[(&str, u64); 2]) -> bool {
    let unique = by_direction(samples, "mptcp_unique_bytes_total");
    expected.iter().all(|(direction, bytes)| {
        unique
            .get(*direction)
            .is_some_and(|s| s.len() == 1 && s[0].value == *bytes as f64)
    })
}

/// A lab, a tracer on its client interfaces serving metrics at `address` (with `more`
/// arguments), and the application's counts of one transfer (after which both hosts are
/// quiet).
fn trace_a_transfer(address: &str, more: &[&str]) -> (Lab, LiveTracer, TransferCounts) {
    let lab = Lab::new(&LabConfig::default()).expect("building the lab");
    let namespace = lab.namespace(Side::Client).to_owned();
    let interfaces: Vec<String> = (1..=lab.paths())
        .map(|path| lab.interface(Side::Client, path).expect("a lab path"))
        .collect();
    let mut args = vec!["--metrics", address, "--interval", "0.2"];
    args.extend(more);
    let tracer = LiveTracer::start(&namespace, &interfaces, Attach::Auto, &args);
    let counts = lab
        .transfer(&TransferSpec {
            client_sends: CLIENT_SENDS,
            server_sends: SERVER_SENDS,
            wait_for_subflows: 1,
            subflow_timeout: Duration::from_secs(20),
            timeout: Duration::from_secs(60),
            ..TransferSpec::default()
        })
        .expect("the transfer");
    assert_eq!(
        (counts.client_sent, counts.server_sent),
        (CLIENT_SENDS, SERVER_SENDS)
    );
    wait_for_quiet(&lab);
    (lab, tracer, counts)
}

#[test]
fn metrics_endpoint_serves_openmetrics_with_the_applications_bytes() {
    let test = "metrics_endpoint_serves_openmetrics_with_the_applications_bytes";
    if !can_use_namespaces(test) {
        return;
    }
    let address = format!("127.0.0.1:{}", free_port());
    let (lab, mut tracer, counts) = trace_a_transfer(&address, &[]);
    let expected = expected_bytes(&counts);

    // Scrape until an interval's update has the whole transfer (the scrape only reads).
    let deadline = Instant::now() + SCRAPE_TIMEOUT;
    let (headers, text, samples) = loop {
        let (status, headers, text) = get(&address, "/metrics").expect("GET /metrics");
        assert_eq!(status, "HTTP/1.1 200 OK", "{text}");
        let samples = parse_openmetrics(&text);
        if aggregates_reached(&samples, &expected) {
            break (headers, text, samples);
        }
        assert!(
            Instant::now() < deadline,
            "unique bytes never reached the application's {expected:?}:\n{text}"
        );
        thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        headers.get("content-type").map(String::as_str),
        Some(CONTENT_TYPE)
    );

    // The connection's own series: the same bytes, labelled with its endpoints.
    let per_connection = by_direction(&samples, "mptcp_connection_unique_bytes_total");
    for (direction, bytes) in expected {
        let series = per_connection.get(direction).cloned().unwrap_or_default();
        assert_eq!(series.len(), 1, "{direction}: one connection\n{text}");
        let labels = &series[0].labels;
        assert_eq!(labels.get("id").map(String::as_str), Some("0"), "{text}");
        assert_eq!(labels.get("client"), Some(&counts.client_addr.to_string()));
        assert_eq!(labels.get("server"), Some(&counts.server_addr.to_string()));
        eprintln!(
            "{test}: {direction}: per-connection unique {} and aggregate unique equal the \
             application's {bytes}",
            series[0].value
        );
        assert_eq!(series[0].value, bytes as f64, "{direction}\n{text}");
    }
    let opened = samples
        .iter()
        .find(|s| s.name == "mptcp_connections_opened_total")
        .map(|s| s.value);
    assert_eq!(opened, Some(1.0), "{text}");

    // Closed and scraped: its series go at the next update; the totals stay, and also without
    // --long-run the connection counts as closed by how it ended: both applications shut their
    // side down, so by DATA_FIN, which the kernels' counters confirm (no MP_FASTCLOSE, no
    // MP_RST, no fallback on either host).
    assert_closed_by_data_fin(&lab);
    let deadline = Instant::now() + SCRAPE_TIMEOUT;
    loop {
        let (_, _, text) = get(&address, "/metrics").expect("GET /metrics");
        let samples = parse_openmetrics(&text);
        let per_connection = samples
            .iter()
            .any(|s| s.name.starts_with("mptcp_connection_"));
        let reasons: Vec<(&str, f64)> = samples
            .iter()
            .filter(|s| s.name == "mptcp_connections_closed_total")
            .map(|s| (s.labels.get("reason").map_or("", String::as_str), s.value))
            .collect();
        if !per_connection && !reasons.is_empty() {
            assert_eq!(reasons, [("data_fin", 1.0)], "{text}");
            assert!(aggregates_reached(&samples, &expected), "{text}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the closed connection's series stay:\n{text}"
        );
        thread::sleep(Duration::from_millis(100));
    }

    let (status, _, _) = get(&address, "/").expect("GET /");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    let (status, _, _) = get(&address, "/metricsx").expect("GET /metricsx");
    assert_eq!(status, "HTTP/1.1 404 Not Found");

    let exit = tracer.stop();
    assert_eq!(exit.status.code(), Some(0), "{}", exit.stderr);
    assert!(
        TcpStream::connect(&address).is_err(),
        "{address} still answers after the trace ended"
    );
}

/// The kernels of both hosts saw the lab's connections end without MP_FASTCLOSE, MP_RST or a
/// fallback to TCP: what is left for an orderly end is DATA_FIN.
fn assert_closed_by_data_fin(lab: &Lab) {
    for side in [Side::Client, Side::Server] {
        let counters = lab
            .mptcp_counters(side)
            .expect("the kernel's MPTCP counters");
        for name in [
            "MPTcpExtMPFastcloseTx",
            "MPTcpExtMPFastcloseRx",
            "MPTcpExtMPRstTx",
            "MPTcpExtMPRstRx",
            "MPTcpExtMPCapableFallbackACK",
            "MPTcpExtMPCapableFallbackSYNACK",
        ] {
            let value = counters.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
            assert_eq!(value, Some(0), "{name} of the {side:?}");
        }
    }
}

/// Prometheus, killed (and waited for) when the test ends.
struct Prometheus(Child);

impl Prometheus {
    fn start(scratch: &Scratch, target: &str, listen: &str) -> Self {
        let config = scratch.file("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  \
                 - job_name: mptcp-tracer\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .expect("writing prometheus.yml");
        let log = std::fs::File::create(scratch.file("prometheus.log")).expect("a log file");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                scratch.file("tsdb").display()
            ))
            .arg(format!("--web.listen-address={listen}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the log again"))
            .stderr(log)
            .spawn()
            .expect("starting prometheus");
        Prometheus(child)
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `query`'s instant vector from Prometheus's HTTP API, by `direction` label (empty until it
/// has scraped).
fn query_by_direction(prometheus: &str, query: &str) -> BTreeMap<String, f64> {
    let Ok((_, _, body)) = get(prometheus, &format!("/api/v1/query?query={query}")) else {
        return BTreeMap::new();
    };
    let Ok(answer) = serde_json::from_str::<Value>(&body) else {
        return BTreeMap::new();
    };
    let mut values = BTreeMap::new();
    for result in answer["data"]["result"].as_array().into_iter().flatten() {
        let direction = result["metric"]["direction"].as_str().unwrap_or_default();
        if let Some(value) = result["value"][1].as_str().and_then(|v| v.parse().ok()) {
            values.insert(direction.to_owned(), value);
        }
    }
    values
}

/// `promtool check metrics` on a scrape: its lint must find nothing.
fn promtool_check(text: &str, log: &Path) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting promtool");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(text.as_bytes())
        .expect("feeding promtool");
    let output = child.wait_with_output().expect("promtool's verdict");
    assert!(
        output.status.success(),
        "promtool check metrics: {}\n{}{}\n(prometheus log: {})",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        log.display()
    );
}

#[test]
fn prometheus_scrapes_the_tracer() {
    let test = "prometheus_scrapes_the_tracer";
    if !can_use_namespaces(test) || skipped_without_tools(test, &["prometheus", "promtool"]) {
        return;
    }
    let scratch = Scratch::new(test);
    let target = format!("127.0.0.1:{}", free_port());
    let listen = format!("127.0.0.1:{}", free_port());
    let _prometheus = Prometheus::start(&scratch, &target, &listen);
    let (lab, mut tracer, counts) = trace_a_transfer(&target, &["--long-run"]);
    let expected = expected_bytes(&counts);

    let deadline = Instant::now() + SCRAPE_TIMEOUT;
    let query = "mptcp_unique_bytes_total";
    loop {
        let values = query_by_direction(&listen, query);
        let reached = expected
            .iter()
            .all(|(direction, bytes)| values.get(*direction) == Some(&(*bytes as f64)));
        if reached {
            eprintln!("{test}: Prometheus's {query} {values:?}, application {expected:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus's {query} {values:?} never reached the application's {expected:?} \
             (its log: {})",
            scratch.file("prometheus.log").display()
        );
        thread::sleep(Duration::from_millis(500));
    }
    // --long-run reported the connection as ended (DATA_FIN both ways) and forgot it; the
    // totals keep its bytes.
    assert_closed_by_data_fin(&lab);
    let deadline = Instant::now() + SCRAPE_TIMEOUT;
    let samples = loop {
        let (_, _, text) = get(&target, "/metrics").expect("GET /metrics");
        let samples = parse_openmetrics(&text);
        let value = |name: &str, label: Option<(&str, &str)>| {
            samples
                .iter()
                .find(|s| {
                    s.name == name
                        && label.is_none_or(|(k, v)| s.labels.get(k).map(String::as_str) == Some(v))
                })
                .map(|s| s.value)
        };
        let closed = value(
            "mptcp_connections_closed_total",
            Some(("reason", "data_fin")),
        );
        if closed == Some(1.0) {
            assert_eq!(value("mptcp_connections_open", None), Some(0.0), "{text}");
            assert_eq!(
                value("mptcp_connections_opened_total", None),
                Some(1.0),
                "{text}"
            );
            break samples;
        }
        assert!(
            Instant::now() < deadline,
            "never closed by data_fin:\n{text}"
        );
        thread::sleep(Duration::from_millis(200));
    };
    assert!(aggregates_reached(&samples, &expected), "{samples:?}");

    // promtool 2.42 reads only the Prometheus text format (it takes OpenMetrics' family
    // names for missing HELP lines), so it gets that one; Prometheus above read OpenMetrics.
    let (_, headers, text) = get_accepting(&target, "/metrics", "text/plain;version=0.0.4")
        .expect("GET /metrics, Prometheus text");
    assert_eq!(
        headers.get("content-type").map(String::as_str),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    promtool_check(&text, &scratch.file("prometheus.log"));
    let exit = tracer.stop();
    assert_eq!(exit.status.code(), Some(0), "{}", exit.stderr);
}

/// A port in use, or an address that is none, stops `trace` before it attaches or writes
/// anything, with a message naming what was given.
#[test]
fn metrics_address_in_use_is_refused_before_attaching() {
    let test = "metrics_address_in_use_is_refused_before_attaching";
    if !can_use_namespaces(test) {
        return;
    }
    let scratch = Scratch::new(test);
    let lab = Lab::new(&LabConfig {
        paths: 1,
        ..LabConfig::default()
    })
    .expect("building the lab");
    let namespace = lab.namespace(Side::Client).to_owned();
    let interface = lab.interface(Side::Client, 1).expect("path 1");
    let hooks_before = hooks(&namespace, std::slice::from_ref(&interface));
    let file = scratch.file("never.pcapng");
    let path = file.to_string_lossy().into_owned();
    let taken = TcpListener::bind("127.0.0.1:0").expect("binding a port");
    let taken = taken.local_addr().expect("its address").to_string();
    for (address, message) in [
        (
            taken.as_str(),
            format!("error: --metrics {taken}: cannot listen there: Address already in use"),
        ),
        (
            "localhost",
            "error: --metrics localhost: not an ADDR:PORT address".to_owned(),
        ),
    ] {
        let run = tracer(&[
            "-v",
            "trace",
            "-i",
            &interface,
            "--netns",
            &namespace,
            "-w",
            &path,
            "--metrics",
            address,
            "--duration",
            "1",
        ]);
        run.assert_no_panic();
        assert_eq!(run.code(), 1, "{}: {}", run.command, run.stderr);
        assert!(run.stderr.contains(&message), "{}", run.stderr);
        assert!(!run.stderr.contains("tracing "), "attached: {}", run.stderr);
        assert!(!file.exists(), "{} was created", file.display());
        assert_eq!(
            hooks(&namespace, std::slice::from_ref(&interface)),
            hooks_before
        );
    }
}
