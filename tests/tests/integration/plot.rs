//! `plot`: every kind as SVG (parsed as XML: axis labels, a legend entry and one dot per point
//! for each subflow) and PNG (decoded: the asked size, not blank). Point counts are checked
//! against the analysis's own counts: mptcp-summary's per-subflow packets (throughput,
//! goodput) and the exported rows carrying data (dsn). Bad input gives clear errors.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use integration_tests::{
    as_u64, data_dir, direction, mptcp_summary, shared_pcaps, tracer, tracer_with_stdin,
};

const KINDS: [&str; 6] = [
    "dsn",
    "throughput",
    "goodput",
    "interarrival",
    "reinjections",
    "subflow-seq",
];

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("mptcp-plot-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch directory");
        Scratch(dir)
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The plotted connections: (capture, id) of the project's own and, where present, the shared
/// captures.
fn connections() -> Vec<(PathBuf, u64)> {
    let mut list = vec![
        (data_dir().join("v4-2sf-lossy.pcap"), 0),
        (data_dir().join("v6-2sf.pcapng"), 0),
    ];
    if let Some(dir) = shared_pcaps("every_plot_kind_draws_one_series_per_subflow") {
        list.push((dir.join("client_2.pcap"), 1));
    }
    list
}

/// `plot --data json`: the series' labels and point counts.
fn series(capture: &Path, id: u64, kind: &str) -> Vec<(String, usize)> {
    let capture = capture.display().to_string();
    let id = id.to_string();
    let json = tracer(&["plot", kind, &capture, &id, "--data", "json"])
        .assert_success()
        .json();
    json["series"]
        .as_array()
        .expect("series")
        .iter()
        .map(|s| {
            let label = s["label"].as_str().expect("label").to_owned();
            (label, s["points"].as_array().expect("points").len())
        })
        .collect()
}

/// The SVG's texts and its dots (circles) counted by fill colour, in first-seen order.
fn read_svg(path: &str) -> (Vec<String>, Vec<(String, usize)>) {
    let text = std::fs::read_to_string(path).expect("SVG written");
    let doc = roxmltree::Document::parse(&text).expect("the SVG parses as XML");
    let texts = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| n.text().unwrap_or_default().trim().to_owned())
        .collect();
    let mut dots: Vec<(String, usize)> = Vec::new();
    for circle in doc.descendants().filter(|n| n.has_tag_name("circle")) {
        let fill = circle.attribute("fill").unwrap_or_default().to_owned();
        match dots.iter_mut().find(|(f, _)| *f == fill) {
            Some((_, n)) => *n += 1,
            None => dots.push((fill, 1)),
        }
    }
    (texts, dots)
}

/// Each kind on each connection: the SVG has the title, both axis labels, a legend entry per
/// subflow and, per subflow colour, as many dots as the series has points; those counts are
/// the analysis's own (mptcp-summary packets per subflow for throughput and goodput, exported
/// rows with a data range for dsn).
#[test]
fn every_plot_kind_draws_one_series_per_subflow() {
    let scratch = Scratch::new("svg");
    let mut series_checked = 0;
    for (capture, id) in connections() {
        let summary = mptcp_summary(&capture, id);
        let subflows = direction(&summary, "client_to_server")["subflows"]
            .as_array()
            .expect("subflows")
            .clone();
        let dsn_rows = data_rows(&scratch, &capture, id);
        for kind in KINDS {
            let out = scratch.path(&format!("{kind}.svg"));
            let capture_arg = capture.display().to_string();
            tracer(&[
                "plot",
                kind,
                &capture_arg,
                &id.to_string(),
                "-o",
                &out,
                "--force",
            ])
            .assert_success();
            let (texts, dots) = read_svg(&out);
            let has = |needle: &str| texts.iter().any(|t| t.contains(needle));
            assert!(
                has("time since the connection's first packet (s)"),
                "{kind}: x label"
            );
            assert!(has("connection"), "{kind}: title");
            let series = series(&capture, id, kind);
            let per_subflow: Vec<_> = series.iter().filter(|(l, _)| l != "total").collect();
            assert_eq!(
                per_subflow.len(),
                subflows.len(),
                "{kind}: one series per subflow"
            );
            // Each subflow's colour has one dot per point (the legend's marks are rectangles).
            let mut drawn: Vec<usize> = dots.iter().map(|(_, n)| *n).collect();
            let mut points: Vec<usize> = per_subflow
                .iter()
                .map(|(_, n)| *n)
                .filter(|&n| n > 0)
                .collect();
            drawn.sort_unstable();
            points.sort_unstable();
            assert_eq!(drawn, points, "{kind}: dots per colour = points per series");
            for ((label, points), subflow) in per_subflow.iter().zip(&subflows) {
                assert!(has(label), "{kind}: legend {label}");
                let stream = as_u64(&subflow["tcp_stream"], "tcp_stream");
                assert!(label.contains(&format!("tcp stream {stream}")), "{label}");
                let expected = match kind {
                    "throughput" | "goodput" => {
                        Some(as_u64(&subflow["packets"], "packets") as usize)
                    }
                    "dsn" => Some(dsn_rows.get(&(stream as u32)).copied().unwrap_or(0)),
                    _ => None,
                };
                if let Some(expected) = expected {
                    assert_eq!(*points, expected, "{kind} {label}: points = the analysis's");
                    series_checked += 1;
                }
            }
            let y_label = match kind {
                "dsn" => "data sequence number − IDSN (bytes)",
                "throughput" => "throughput (Mbit/s)",
                "goodput" => "goodput (Mbit/s)",
                "interarrival" => "time since previous packet (ms)",
                "reinjections" => "reinjected bytes so far (bytes)",
                _ => "relative TCP sequence number (bytes)",
            };
            assert!(has(y_label), "{kind}: y label {y_label}");
        }
    }
    assert!(series_checked >= 12, "{series_checked} series checked");
}

/// Rows of `export` for connection `id`, client to server, carrying a data range, per TCP
/// stream.
fn data_rows(scratch: &Scratch, capture: &Path, id: u64) -> BTreeMap<u32, usize> {
    let out = scratch.path("rows.csv");
    let capture = capture.display().to_string();
    tracer(&["export", &capture, "-o", &out, "--force"]).assert_success();
    let mut reader = csv::Reader::from_path(&out).expect("CSV");
    let header = reader.headers().expect("header").clone();
    let column = |name: &str| header.iter().position(|h| h == name).expect("column");
    let [conn, dir, stream, start] = [
        "mptcp_connection",
        "mptcp_direction",
        "tcp_stream",
        "dsn_start",
    ]
    .map(column);
    let mut counts = BTreeMap::new();
    for row in reader.records() {
        let row = row.expect("row");
        if row[conn] == id.to_string() && &row[dir] == "client_to_server" && !row[start].is_empty()
        {
            *counts
                .entry(row[stream].parse().expect("stream"))
                .or_default() += 1;
        }
    }
    counts
}

/// PNG: decodes to the asked size, and is not blank (many pixels neither white nor grey).
#[test]
fn png_plots_decode_to_the_asked_size_and_are_not_blank() {
    let scratch = Scratch::new("png");
    let capture = data_dir().join("v4-2sf-lossy.pcap").display().to_string();
    for kind in ["dsn", "throughput"] {
        let out = scratch.path(&format!("{kind}.png"));
        tracer(&["plot", kind, &capture, "0", "-o", &out, "--size", "900x500"]).assert_success();
        let decoder = png::Decoder::new(std::io::BufReader::new(
            std::fs::File::open(&out).expect("PNG written"),
        ));
        let mut reader = decoder.read_info().expect("PNG header");
        let mut buffer = vec![0; reader.output_buffer_size().expect("buffer size")];
        let info = reader.next_frame(&mut buffer).expect("PNG frame");
        assert_eq!((info.width, info.height), (900, 500), "{kind}");
        let channels = info.color_type.samples();
        let coloured = buffer[..info.buffer_size()]
            .chunks(channels)
            .filter(|p| !(p[0] == p[1] && p[1] == p[2]))
            .count();
        let dark = buffer[..info.buffer_size()]
            .chunks(channels)
            .filter(|p| p[0] < 80 && p[1] < 80 && p[2] < 80)
            .count();
        // Coloured dots of the subflows, and dark text and axes (the embedded font renders).
        assert!(coloured > 200, "{kind}: {coloured} coloured pixels");
        assert!(dark > 2000, "{kind}: {dark} dark pixels");
    }
}

/// The shell answers `plot` as the one-shot command does.
#[test]
fn shell_plots_as_the_command_line_does() {
    let capture = data_dir().join("v4-2sf.pcap").display().to_string();
    let one_shot = tracer(&["plot", "dsn", &capture, "0", "--data", "csv"])
        .assert_success()
        .stdout
        .clone();
    let script = format!("load-pcap {capture}\nplot dsn 0 --data csv\nquit\n");
    let shell = tracer_with_stdin(&[], Some(&script));
    assert!(one_shot.lines().count() > 100, "{one_shot}");
    assert!(shell.stdout.contains(&one_shot), "{}", shell.stdout);
}

/// Bad input: unknown kind, connection id not present, a capture without MPTCP, output
/// directory missing, an output that exists (kept without --force), an unknown image format,
/// no output asked.
#[test]
fn plot_refuses_bad_input_clearly() {
    let scratch = Scratch::new("bad");
    let capture = data_dir().join("v4-2sf.pcap").display().to_string();
    let svg = scratch.path("p.svg");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["plot", "owd", &capture, "0", "-o", &svg],
            "give --peer SERVER_FILE",
        ),
        (
            vec!["plot", "latency", &capture, "0", "-o", &svg],
            "invalid value 'latency'",
        ),
        (
            vec!["plot", "dsn", &capture, "7", "-o", &svg],
            "no MPTCP connection 7",
        ),
        (
            vec!["plot", "dsn", &capture, "0"],
            "give -o OUT.svg|OUT.png",
        ),
        (
            vec!["plot", "dsn", &capture, "0", "-o", "/nonexistent-dir/p.svg"],
            "directory does not exist",
        ),
        (
            vec!["plot", "dsn", &capture, "0", "-o", "p.jpg"],
            "must end in .svg or .png",
        ),
        (
            vec!["plot", "dsn", &capture, "0", "-o", &svg, "--window", "0"],
            "--window",
        ),
    ];
    for (args, message) in cases {
        let run = tracer(&args);
        assert_eq!(run.code(), 1, "{args:?}");
        assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
        assert!(!Path::new(&svg).exists(), "{args:?} wrote nothing");
    }
    std::fs::write(&svg, "mine").expect("write");
    let run = tracer(&["plot", "dsn", &capture, "0", "-o", &svg]);
    assert_eq!(run.code(), 1);
    assert!(run.stderr.contains("exists (add --force"), "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&svg).expect("kept"), "mine");
    if let Some(dir) = shared_pcaps("plot_refuses_bad_input_clearly") {
        let tcp_only = dir.join("client_1_tcp_only.pcap").display().to_string();
        let run = tracer(&["plot", "dsn", &tcp_only, "0", "-o", &svg, "--force"]);
        assert_eq!(run.code(), 1);
        assert!(
            run.stderr.contains("has no MPTCP connection"),
            "{}",
            run.stderr
        );
    }
}

/// `plot owd` on the shared pair: one series per subflow of the client capture, with one
/// point per packet the `owd` command reports received on it (lost ones have no delay), the
/// delays equal to the command's; the SVG parses with its axis labels; without --peer, a
/// clear error.
#[test]
fn owd_plot_draws_the_delays_the_owd_command_reports() {
    let Some(dir) = shared_pcaps("owd_plot_draws_the_delays_the_owd_command_reports") else {
        return;
    };
    let (client, server) = (dir.join("client_2.pcap"), dir.join("server_2.pcap"));
    let (client, server) = (client.display().to_string(), server.display().to_string());
    let owd = tracer(&["owd", &client, &server, "1", "--json"])
        .assert_success()
        .json_documents();
    let owd = &owd[0];
    let c2s = owd["directions"]
        .as_array()
        .expect("directions")
        .iter()
        .find(|d| d["direction"] == "client_to_server")
        .expect("client_to_server");
    let mut received: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    for packet in c2s["packets"].as_array().expect("packets") {
        if let Some(owd_s) = packet["owd_s"].as_f64() {
            received
                .entry(as_u64(&packet["tcp_stream"], "tcp_stream"))
                .or_default()
                .push(owd_s * 1e3);
        }
    }
    let plot = tracer(&[
        "plot", "owd", &client, "1", "--peer", &server, "--data", "json",
    ])
    .assert_success()
    .json();
    let series = plot["series"].as_array().expect("series");
    assert_eq!(series.len(), 4, "one series per subflow of connection 1");
    for s in series {
        let stream = as_u64(&s["tcp_stream"], "tcp_stream");
        let mut delays: Vec<f64> = s["points"]
            .as_array()
            .expect("points")
            .iter()
            .map(|p| p[1].as_f64().expect("a delay"))
            .collect();
        let mut expected = received.get(&stream).cloned().unwrap_or_default();
        delays.sort_by(f64::total_cmp);
        expected.sort_by(f64::total_cmp);
        assert_eq!(delays.len(), expected.len(), "stream {stream}");
        for (a, b) in delays.iter().zip(&expected) {
            assert!((a - b).abs() < 1e-6, "stream {stream}: {a} vs {b}");
        }
    }
    let scratch = Scratch::new("owd");
    let svg = scratch.path("owd.svg");
    tracer(&["plot", "owd", &client, "1", "--peer", &server, "-o", &svg]).assert_success();
    let (texts, _) = read_svg(&svg);
    assert!(texts.iter().any(|t| t == "one-way delay (ms)"), "{texts:?}");
    let missing = tracer(&["plot", "owd", &client, "1", "-o", &scratch.path("x.svg")]);
    assert_eq!(missing.code(), 1);
    assert!(missing.stderr.contains("--peer"), "{}", missing.stderr);
}
