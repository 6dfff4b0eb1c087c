//! `trace --metrics`: the `/metrics` endpoint during a lab transfer, its OpenMetrics text
//! checked line by line and its unique-bytes series (aggregate and per connection) against
//! the application's byte counts, the per-connection ones gone once the closed connection's
//! were scraped; then a real Prometheus scraping it, queried through its HTTP API, and
//! `promtool check metrics` on a scrape; the ended connection counted as closed by DATA_FIN
//! (as the kernels' counters say it ended), with `--long-run` as without, and with it its bytes
//! kept in the totals once forgotten. With the kernel's BPF statistics on, the classifiers' run
//! counts and run time are the kernel's (bpftool); a refused join is a failed subflow. The
//! systemd unit's own test is `service`. A port in use is refused before anything is attached.
//!
//! The tracer attaches in the lab's client namespace (`--netns`) but serves the metrics in
//! the namespace it was started in: 127.0.0.1 of the test's own.

use std::{
    collections::BTreeMap,
    io::Write,
    net::{TcpListener, TcpStream},
    path::Path,
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use integration_tests::{can_use_namespaces, tracer};
use mptcp_lab::{
    HttpResponse, Lab, LabConfig, Side, TransferCounts, TransferSpec, free_loopback_port, http_get,
    skip::skipped_without_tools,
};
use serde_json::Value;

use crate::live::{Attach, LiveTracer, Scratch, hooks, wait_for_quiet};

const CLIENT_SENDS: u64 = 1_000_000;
const SERVER_SENDS: u64 = 200_000;
/// Generous: the machine is small and shared, and Prometheus takes a while to start.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(60);
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A port of 127.0.0.1 nobody listens on now.
pub(crate) fn free_port() -> u16 {
    free_loopback_port().expect("a free loopback port")
}

/// One HTTP/1.1 GET without an `Accept` header: status line, headers, body.
pub(crate) fn get(
    address: &str,
    path: &str,
) -> std::io::Result<(String, BTreeMap<String, String>, String)> {
    let response = http_get(address, path, None, Duration::from_secs(10))?;
    Ok((response.status, response.headers, response.body))
}

/// One sample of an OpenMetrics exposition.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    pub(crate) name: String,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) value: f64,
}

/// Parses OpenMetrics text strictly enough for what the tracer writes: every line a
/// `# TYPE`, `# HELP`, `# UNIT` or a sample of a family typed before, each family typed and
/// described once, `# EOF` the last line.
pub(crate) fn parse_openmetrics(text: &str) -> Vec<Sample> {
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
    let interfaces = lab.interfaces(Side::Client);
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
    // Its subflows' series: the bytes each carried first add up to the connection's unique
    // bytes, and each subflow's wire bytes are at least what it carried first.
    let per_subflow = by_direction(&samples, "mptcp_subflow_unique_bytes_total");
    let subflow_wire = by_direction(&samples, "mptcp_subflow_wire_bytes_total");
    for (direction, bytes) in expected {
        let series = per_subflow.get(direction).cloned().unwrap_or_default();
        assert!(!series.is_empty(), "{direction}: subflow series\n{text}");
        for sample in &series {
            assert_eq!(
                sample.labels.get("id").map(String::as_str),
                Some("0"),
                "{text}"
            );
            let wire = subflow_wire[direction]
                .iter()
                .find(|w| w.labels == sample.labels)
                .unwrap_or_else(|| panic!("wire bytes of {:?}\n{text}", sample.labels));
            assert!(
                wire.value >= sample.value,
                "{direction}: {wire:?} < {sample:?}"
            );
        }
        let carried: f64 = series.iter().map(|s| s.value).sum();
        assert_eq!(
            carried, bytes as f64,
            "{direction}: subflows' unique bytes\n{text}"
        );
    }
    let opened = samples
        .iter()
        .find(|s| s.name == "mptcp_connections_opened_total")
        .map(|s| s.value);
    assert_eq!(opened, Some(1.0), "{text}");

    // Closed and scraped: its series go at the next update; the totals stay, and also without
    // --long-run the connection counts as closed by how it ended: both applications shut their
    // side down, so by DATA_FIN, which the kernels' counters confirm (no MP_FASTCLOSE, no
    // fallback, not every subflow reset on either host).
    assert_closed_by_data_fin(&lab);
    let deadline = Instant::now() + SCRAPE_TIMEOUT;
    loop {
        let (_, _, text) = get(&address, "/metrics").expect("GET /metrics");
        let samples = parse_openmetrics(&text);
        let per_connection = samples.iter().any(|s| {
            s.name.starts_with("mptcp_connection_") || s.name.starts_with("mptcp_subflow_")
        });
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

/// The kernels of both hosts saw the lab's connection end without MP_FASTCLOSE, without a
/// fallback to TCP and without every subflow reset: what is left for an orderly end is
/// DATA_FIN. An MP_TCPRST on one subflow (a join torn down as the connection closes, seen once
/// on a loaded machine) does not end the connection, so resets are allowed on fewer subflows
/// than it had (1 + the joins the server completed).
fn assert_closed_by_data_fin(lab: &Lab) {
    let server = lab
        .mptcp_counters(Side::Server)
        .expect("the server's MPTCP counters");
    let count = |counters: &[(String, u64)], name: &str| {
        counters
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("{name} in the kernel's counters"))
    };
    let subflows = 1 + count(&server, "MPTcpExtMPJoinAckRx");
    for side in [Side::Client, Side::Server] {
        let counters = lab
            .mptcp_counters(side)
            .expect("the kernel's MPTCP counters");
        for name in [
            "MPTcpExtMPFastcloseTx",
            "MPTcpExtMPFastcloseRx",
            "MPTcpExtMPCapableFallbackACK",
            "MPTcpExtMPCapableFallbackSYNACK",
        ] {
            assert_eq!(count(&counters, name), 0, "{name} of the {side:?}");
        }
        for name in ["MPTcpExtMPRstTx", "MPTcpExtMPRstRx"] {
            let resets = count(&counters, name);
            assert!(
                resets < subflows,
                "{name} of the {side:?}: {resets} of {subflows} subflows reset"
            );
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
    let HttpResponse {
        headers,
        body: text,
        ..
    } = http_get(
        &target,
        "/metrics",
        Some("text/plain;version=0.0.4"),
        Duration::from_secs(10),
    )
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

/// The BPF program ids `pid` holds open (its classifiers), from its fdinfo files.
fn program_ids_held_by(pid: i32) -> Vec<u32> {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fdinfo")).expect("the tracer's fdinfo");
    let mut ids: Vec<u32> = fds
        .flatten()
        .filter_map(|fd| std::fs::read_to_string(fd.path()).ok())
        .filter_map(|text| {
            let line = text.lines().find_map(|l| l.strip_prefix("prog_id:"))?;
            line.trim().parse().ok()
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// What bpftool says of program `id`: its name, run count and run time in ns.
fn bpftool_program(id: u32) -> (String, u64, u64) {
    let output = Command::new("bpftool")
        .args(["-j", "prog", "show", "id", &id.to_string()])
        .output()
        .expect("running bpftool");
    let shown: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("bpftool prog show id {id}: {e}: {output:?}"));
    let number = |key: &str| shown[key].as_u64().unwrap_or(0);
    (
        shown["name"].as_str().unwrap_or_default().to_owned(),
        number("run_cnt"),
        number("run_time_ns"),
    )
}

/// One sample's value by name and `program` label.
fn program_sample(samples: &[Sample], name: &str, program: &str) -> Option<f64> {
    samples
        .iter()
        .find(|s| s.name == name && s.labels.get("program").map(String::as_str) == Some(program))
        .map(|s| s.value)
}

#[test]
fn program_runs_are_the_kernels_while_bpf_statistics_are_on() {
    let test = "program_runs_are_the_kernels_while_bpf_statistics_are_on";
    if !can_use_namespaces(test) || skipped_without_tools(test, &["bpftool"]) {
        return;
    }
    // On while this descriptor is open; the kernel counts holders, so the sysctl and anyone
    // else's setting are left as they were.
    let _statistics = aya::sys::enable_stats(aya::sys::Stats::RunTime)
        .expect("BPF_ENABLE_STATS (root on Linux >= 5.8)");
    let address = format!("127.0.0.1:{}", free_port());
    let (_lab, mut tracer, _counts) = trace_a_transfer(&address, &[]);
    let ids = program_ids_held_by(tracer.pid().as_raw());
    assert_eq!(
        ids.len(),
        3,
        "the tracer holds its two classifiers and its flush program: {ids:?}"
    );

    // The network is quiet: the kernel's counts stand still, and an update later the
    // endpoint shows them.
    let deadline = Instant::now() + SCRAPE_TIMEOUT;
    let (kernel, samples, text) = loop {
        let kernel: BTreeMap<String, (u64, u64)> = ids
            .iter()
            .map(|id| {
                let (name, runs, ns) = bpftool_program(*id);
                (name, (runs, ns))
            })
            .collect();
        let (_, _, text) = get(&address, "/metrics").expect("GET /metrics");
        let samples = parse_openmetrics(&text);
        let same = [("ingress", "mptcp_trc_in"), ("egress", "mptcp_trc_eg")]
            .iter()
            .all(|(program, name)| {
                program_sample(&samples, "mptcp_tracer_bpf_runs_total", program)
                    == kernel.get(*name).map(|(runs, _)| *runs as f64)
            });
        if same {
            break (kernel, samples, text);
        }
        assert!(
            Instant::now() < deadline,
            "run counts never reached bpftool's {kernel:?}:\n{text}"
        );
        thread::sleep(Duration::from_millis(100));
    };
    let mut all_runs = 0.0;
    for (program, name) in [("ingress", "mptcp_trc_in"), ("egress", "mptcp_trc_eg")] {
        let (runs, ns) = kernel[name];
        assert!(
            runs > 100,
            "{name} ran for the transfer's packets: {kernel:?}"
        );
        let seconds = program_sample(&samples, "mptcp_tracer_bpf_run_time_seconds_total", program)
            .unwrap_or_else(|| panic!("{program}'s run time in\n{text}"));
        // The same instant's counts (the runs are equal), printed with f64's precision.
        assert!(
            (seconds * 1e9 - ns as f64).abs() <= 1.0,
            "{program}: {seconds} s vs bpftool's {ns} ns"
        );
        eprintln!(
            "{test}: {program}: {runs} runs, {:.0} ns per run, as bpftool says",
            ns as f64 / runs as f64
        );
        all_runs += runs as f64;
    }
    // Every run counts one packet seen: the tracer's own per-CPU counter agrees.
    let seen = samples
        .iter()
        .find(|s| s.name == "mptcp_tracer_packets_seen_total")
        .map(|s| s.value);
    assert_eq!(seen, Some(all_runs), "{text}");
    let exit = tracer.stop();
    assert_eq!(exit.status.code(), Some(0), "{}", exit.stderr);
}

/// The server's kernel counter of one MPTCP MIB entry.
fn server_counter(lab: &Lab, name: &str) -> u64 {
    lab.mptcp_counters(Side::Server)
        .expect("nstat in the server namespace")
        .into_iter()
        .find_map(|(counter, value)| (counter == name).then_some(value))
        .unwrap_or(0)
}

/// A server that accepts no additional subflow refuses the client's MP_JOIN (Linux answers
/// the SYN, then resets with MP_TCPRST "administratively prohibited"): once the connection
/// has ended, `mptcp_subflows_failed_total` counts what the server's kernel counted
/// as rejected joins (`MPTcpExtMPJoinRejected`).
#[test]
fn refused_joins_are_failed_subflows() {
    let test = "refused_joins_are_failed_subflows";
    if !can_use_namespaces(test) {
        return;
    }
    let lab = Lab::new(&LabConfig::default()).expect("building the lab");
    let server_namespace = lab.namespace(Side::Server).to_owned();
    let limits = [
        "-n",
        &server_namespace,
        "mptcp",
        "limits",
        "set",
        "subflows",
        "0",
    ];
    let status = Command::new("ip")
        .args(limits)
        .status()
        .expect("running ip");
    assert!(status.success(), "ip {limits:?}");
    let namespace = lab.namespace(Side::Client).to_owned();
    let interfaces = lab.interfaces(Side::Client);
    let address = format!("127.0.0.1:{}", free_port());
    let mut tracer = LiveTracer::start(
        &namespace,
        &interfaces,
        Attach::Auto,
        &["--metrics", &address, "--interval", "0.2"],
    );
    let rejected_before = server_counter(&lab, "MPTcpExtMPJoinRejected");
    let counts = lab
        .transfer(&TransferSpec {
            client_sends: CLIENT_SENDS,
            server_sends: SERVER_SENDS,
            wait_for_subflows: 0,
            timeout: Duration::from_secs(60),
            ..TransferSpec::default()
        })
        .expect("the transfer");
    assert_eq!(counts.server_received, CLIENT_SENDS);
    wait_for_quiet(&lab);
    let rejected = server_counter(&lab, "MPTcpExtMPJoinRejected") - rejected_before;
    assert!(
        rejected >= 1,
        "the server refused no join: is the client's endpoint there?"
    );

    let deadline = Instant::now() + SCRAPE_TIMEOUT;
    let value = |samples: &[Sample], name: &str| {
        samples
            .iter()
            .filter(|s| s.name == name)
            .map(|s| s.value)
            .sum::<f64>()
    };
    loop {
        let (_, _, text) = get(&address, "/metrics").expect("GET /metrics");
        let samples = parse_openmetrics(&text);
        if value(&samples, "mptcp_connections_closed_total") == 1.0 {
            let failed = value(&samples, "mptcp_subflows_failed_total");
            assert_eq!(failed, rejected as f64, "{text}");
            let joined = value(&samples, "mptcp_subflows_joined_total");
            assert!(joined >= failed, "{text}");
            eprintln!("{test}: {failed} failed of {joined} joins; the server rejected {rejected}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the connection never closed:\n{text}"
        );
        thread::sleep(Duration::from_millis(100));
    }
    let exit = tracer.stop();
    assert_eq!(exit.status.code(), Some(0), "{}", exit.stderr);
}
