use super::*;

fn candidate(id: u64, wire: u64) -> Candidate {
    Candidate {
        id,
        client: format!("10.0.0.1:{}", 40_000 + id),
        server: "10.0.0.2:5201".into(),
        wire,
        values: [[wire, 0], [wire / 2, 0], [wire / 2, 0], [0, 0], [0, 0]],
        subflows: Vec::new(),
    }
}

fn ids(candidates: &[Candidate]) -> Vec<u64> {
    let mut ids: Vec<u64> = candidates.iter().map(|c| c.id).collect();
    ids.sort_unstable();
    ids
}

/// Only the N open connections with the most wire bytes have series; one that falls out of
/// them loses its series at the next update.
#[test]
fn the_busiest_open_connections_have_series() {
    let mut selection = Selection::new(2);
    let open = [candidate(0, 10), candidate(1, 30), candidate(2, 20)];
    let plan = selection.update(&open, &[], 0);
    assert_eq!(ids(&plan.show), [1, 2]);
    assert!(plan.remove.is_empty());
    assert_eq!(selection.shown(), [1, 2]);

    let open = [candidate(0, 100), candidate(1, 30), candidate(2, 20)];
    let plan = selection.update(&open, &[], 0);
    assert_eq!(ids(&plan.show), [0, 1]);
    assert_eq!(ids(&plan.remove), [2]);
    assert_eq!(selection.shown(), [0, 1]);
}

/// A closed connection shows its final counts until a scrape has seen them: its series go at
/// the first update after that scrape, not before.
#[test]
fn closed_connections_go_after_one_update_past_a_scrape() {
    let mut selection = Selection::new(10);
    selection.update(&[candidate(0, 10), candidate(1, 20)], &[], 0);
    let final_counts = candidate(1, 25);
    let plan = selection.update(&[candidate(0, 11)], std::slice::from_ref(&final_counts), 0);
    assert!(plan.show.contains(&final_counts), "{plan:?}");
    assert!(plan.remove.is_empty(), "{plan:?}");
    assert_eq!(selection.shown(), [0, 1]);
    // No scrape yet: still there.
    let plan = selection.update(&[candidate(0, 12)], &[], 0);
    assert!(plan.remove.is_empty(), "{plan:?}");
    // Scraped once: gone at the next update.
    let plan = selection.update(&[candidate(0, 13)], &[], 1);
    assert_eq!(ids(&plan.remove), [1]);
    assert_eq!(selection.shown(), [0]);
    // A connection closed without ever having series gets none.
    let plan = selection.update(&[candidate(0, 14)], &[candidate(7, 99)], 1);
    assert_eq!(ids(&plan.show), [0]);
}

/// When nobody scrapes, at most N closed connections keep their series.
#[test]
fn closed_series_are_bounded_without_scrapes() {
    let mut selection = Selection::new(2);
    for id in 0..5 {
        selection.update(&[candidate(id, 10)], &[], 0);
        selection.update(&[], &[candidate(id, 10)], 0);
    }
    assert_eq!(selection.shown(), [3, 4]);
}

/// The exposition is OpenMetrics text: every family typed and described, `# EOF` last; the
/// health counters follow `LiveStats` and never go down.
#[test]
fn an_update_shows_in_the_exposition() {
    let (mut metrics, exposition) = Metrics::new(DEFAULT_MAX_CONNECTIONS);
    let stats = LiveStats {
        packets_seen: 7,
        events_received: 5,
        ringbuf_full: 2,
        interfaces_attached: 2,
        ..LiveStats::default()
    };
    metrics.update(&stats, &Snapshot::default(), &[]);
    // A counter of the kernel's that read lower (it cannot) does not take the metric down.
    metrics.update(
        &LiveStats {
            packets_seen: 3,
            ..stats.clone()
        },
        &Snapshot::default(),
        &[],
    );
    let text = exposition.scrape(Format::OpenMetrics).expect("encodes");
    assert_eq!(text.lines().last(), Some("# EOF"), "{text}");
    for line in [
        "# TYPE mptcp_tracer_packets_seen counter",
        "mptcp_tracer_packets_seen_total 7",
        "mptcp_tracer_events_received_total 5",
        "mptcp_tracer_events_lost_total{cause=\"ringbuf_full\"} 2",
        "mptcp_tracer_interfaces_attached 2",
        "# TYPE mptcp_unique_bytes counter",
        "# UNIT mptcp_unique_bytes bytes",
        "mptcp_connections_open 0",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
    }
    for family in text.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
        let name = family.split(' ').next().unwrap_or_default();
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "{name} has no HELP:\n{text}"
        );
    }
}

#[test]
fn only_get_metrics_is_answered() {
    let (_, exposition) = Metrics::new(1);
    let answer = |head: &str| String::from_utf8(server::respond(head.as_bytes(), &exposition));
    let ok = answer("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").expect("UTF-8");
    assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
    assert!(ok.contains(&format!("Content-Type: {}\r\n", server::CONTENT_TYPE)));
    assert!(ok.ends_with("# EOF\n"), "{ok}");
    let text =
        answer("GET /metrics HTTP/1.1\r\nAccept: text/plain;version=0.0.4\r\n\r\n").expect("UTF-8");
    assert!(
        text.contains("Content-Type: text/plain; version=0.0.4"),
        "{text}"
    );
    assert!(
        text.contains("# HELP mptcp_subflows_joined_total "),
        "{text}"
    );
    for other in [
        "GET / HTTP/1.1\r\n\r\n",
        "POST /metrics HTTP/1.1\r\n\r\n",
        "",
        "junk",
    ] {
        let answer = answer(other).expect("UTF-8");
        assert!(
            answer.starts_with("HTTP/1.1 404 Not Found\r\n"),
            "{other:?}: {answer}"
        );
    }
}

/// A port in use and an address that is none are errors that name what was given.
#[test]
fn bind_errors_name_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let address = taken.local_addr().expect("an address").to_string();
    let (_, exposition) = Metrics::new(1);
    let error = MetricsServer::bind(&address, exposition.clone())
        .err()
        .expect("in use");
    let error = format!("{:#}", anyhow::Error::new(error));
    assert_eq!(
        error,
        format!("--metrics {address}: cannot listen there: Address already in use (os error 98)"),
        "the cause once"
    );
    let error = MetricsServer::bind("127.0.0.1", exposition)
        .err()
        .expect("no port")
        .to_string();
    assert!(
        error.starts_with("--metrics 127.0.0.1: not an ADDR:PORT address"),
        "{error}"
    );
}

mod totals {
    use super::*;
    use crate::{
        analysis::summary::{
            Direction, MptcpConnectionInfo, MptcpDirectionSummary, MptcpList, MptcpSummary,
            SubflowInfo, SubflowRole,
        },
        live::evict::EndReason,
    };

    fn direction(direction: Direction, unique: u64) -> MptcpDirectionSummary {
        MptcpDirectionSummary {
            direction,
            duration_s: 1.0,
            wire_bytes: unique + 10,
            unique_bytes: unique,
            acked_bytes: unique,
            reinjected_bytes: 0,
            reinjections: 0,
            retransmissions: 0,
            retransmitted_bytes: 0,
            goodput_bps: 0.0,
            throughput_bps: 0.0,
            unmapped_segments: 0,
            unmapped_bytes: 0,
            subflows: Vec::new(),
        }
    }

    /// Connection `id` having carried `unique` bytes from its client (none back).
    fn connection(id: u64, unique: u64) -> (MptcpConnectionInfo, MptcpSummary) {
        let subflow = SubflowInfo {
            tcp_stream: id,
            client: format!("10.0.0.1:{}", 40_000 + id)
                .parse()
                .expect("an address"),
            server: "10.0.0.2:5201".parse().expect("an address"),
            join: false,
            role: SubflowRole::Initial,
            backup: false,
            client_addr_id: None,
            server_addr_id: None,
        };
        let info = MptcpConnectionInfo {
            id,
            version: 1,
            client_key: None,
            server_key: None,
            client_token: None,
            server_token: None,
            client_idsn: None,
            server_idsn: None,
            fallback: false,
            subflows: vec![subflow],
        };
        let summary = MptcpSummary {
            id,
            version: 1,
            fallback: false,
            directions: vec![
                direction(Direction::ClientToServer, unique),
                direction(Direction::ServerToClient, 0),
            ],
            events: Vec::new(),
            events_dropped: 0,
        };
        (info, summary)
    }

    /// The live state holding these open connections.
    fn snapshot(open: &[(u64, u64)]) -> Snapshot {
        let (list, summaries): (Vec<_>, Vec<_>) = open
            .iter()
            .map(|&(id, unique)| connection(id, unique))
            .unzip();
        Snapshot {
            list: MptcpList {
                mptcp_connections: list,
                orphan_subflows: Vec::new(),
            },
            summaries,
            open: open.iter().map(|&(id, _)| id).collect(),
            ..Snapshot::default()
        }
    }

    /// `snapshot(open)` also holding `closed` connections (id, bytes, how they ended), which a
    /// trace without `--long-run` keeps.
    fn snapshot_with_closed(open: &[(u64, u64)], closed: &[(u64, u64, EndReason)]) -> Snapshot {
        let mut snapshot = snapshot(open);
        for &(id, unique, reason) in closed {
            let (info, summary) = connection(id, unique);
            snapshot.list.mptcp_connections.push(info);
            snapshot.summaries.push(summary);
            snapshot.closed.push((id, reason));
        }
        snapshot
    }

    /// The value of the sample `series` (name and labels exactly as written), if present.
    fn value(text: &str, series: &str) -> Option<u64> {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    const UNIQUE: &str = "mptcp_unique_bytes_total{direction=\"client_to_server\"}";
    const CONNECTION_0: &str = "mptcp_connection_unique_bytes_total{id=\"0\",client=\"10.0.0.1:40000\",server=\"10.0.0.2:5201\",direction=\"client_to_server\"}";

    /// The totals add what each connection grew by; a connection that ended and was forgotten
    /// (`--long-run`) keeps its bytes in them, and its own series go after a scrape.
    #[test]
    fn totals_keep_the_bytes_of_forgotten_connections() {
        let (mut metrics, exposition) = Metrics::new(10);
        let stats = LiveStats::default();
        metrics.update(&stats, &snapshot(&[(0, 100)]), &[]);
        metrics.update(&stats, &snapshot(&[(0, 300), (1, 50)]), &[]);
        let text = exposition.scrape(Format::OpenMetrics).expect("encodes");
        assert_eq!(value(&text, UNIQUE), Some(350), "{text}");
        assert_eq!(value(&text, CONNECTION_0), Some(300), "{text}");
        assert_eq!(value(&text, "mptcp_connections_opened_total"), Some(2));

        let (info, summary) = connection(0, 400);
        let ended = Ended::Mptcp {
            reason: EndReason::DataFin,
            connection: info,
            summary,
        };
        metrics.update(&stats, &snapshot(&[(1, 60)]), &[ended]);
        let text = exposition.scrape(Format::OpenMetrics).expect("encodes");
        assert_eq!(value(&text, UNIQUE), Some(460), "{text}");
        assert_eq!(
            value(&text, CONNECTION_0),
            Some(400),
            "final counts, {text}"
        );
        assert_eq!(
            value(&text, "mptcp_connections_closed_total{reason=\"data_fin\"}"),
            Some(1)
        );
        assert_eq!(value(&text, "mptcp_connections_open"), Some(1));

        metrics.update(&stats, &snapshot(&[(1, 60)]), &[]);
        let text = exposition.scrape(Format::OpenMetrics).expect("encodes");
        assert_eq!(value(&text, UNIQUE), Some(460), "{text}");
        assert_eq!(
            value(&text, CONNECTION_0),
            None,
            "scraped, then gone: {text}"
        );
        assert_eq!(value(&text, "mptcp_connections_opened_total"), Some(2));
    }

    /// Without `--long-run` closed connections stay in the state: each counts as closed once,
    /// by how it ended, and its bytes stay in the totals.
    #[test]
    fn closed_connections_count_by_reason_without_long_run() {
        let (mut metrics, exposition) = Metrics::new(10);
        let stats = LiveStats::default();
        metrics.update(&stats, &snapshot(&[(0, 100), (1, 10), (2, 5)]), &[]);
        let closed = [(0, 200, EndReason::DataFin), (1, 10, EndReason::Fastclose)];
        for _ in 0..2 {
            metrics.update(&stats, &snapshot_with_closed(&[(2, 5)], &closed), &[]);
        }
        let text = exposition.scrape(Format::OpenMetrics).expect("encodes");
        let closed_by = |reason: &str| {
            value(
                &text,
                &format!("mptcp_connections_closed_total{{reason=\"{reason}\"}}"),
            )
        };
        assert_eq!(closed_by("data_fin"), Some(1), "once: {text}");
        assert_eq!(closed_by("fastclose"), Some(1), "{text}");
        assert_eq!(closed_by("unknown"), None, "{text}");
        assert_eq!(value(&text, "mptcp_connections_open"), Some(1), "{text}");
        assert_eq!(value(&text, UNIQUE), Some(215), "{text}");
    }
}
