//! The project's own MPTCP v1 captures (tests/data, made by `cargo xtask make-captures`) against
//! what the lab recorded while making them: the application's byte counts, `ip mptcp monitor`
//! and tcpdump. None of these numbers comes from mptcp-tracer.

use integration_tests::{
    as_u64, direction, list_mptcp, list_tcp, mptcp_summary, truth_captures, tshark_fields,
    tshark_fields_with,
};
use serde_json::Value;

fn connections(list: &Value) -> &Vec<Value> {
    list["mptcp_connections"]
        .as_array()
        .unwrap_or_else(|| panic!("no mptcp_connections array in {list}"))
}

#[test]
fn connection_and_subflow_counts_match_ip_mptcp_monitor() {
    for capture in truth_captures() {
        let list = list_mptcp(&capture.file);
        let connections = connections(&list);
        assert_eq!(
            connections.len() as u64,
            capture.monitor_connections(),
            "{}: MPTCP connections vs ip mptcp monitor",
            capture.name
        );
        let subflows: usize = connections
            .iter()
            .map(|connection| connection["subflows"].as_array().map_or(0, Vec::len))
            .sum();
        assert_eq!(
            subflows as u64,
            capture.monitor_subflows(),
            "{}: subflows vs ip mptcp monitor (CREATED + SF_ESTABLISHED)",
            capture.name
        );
        assert_eq!(
            list["orphan_subflows"],
            serde_json::json!([]),
            "{}",
            capture.name
        );
        for connection in connections {
            assert_eq!(connection["version"], 1, "{}: MPTCP version", capture.name);
            assert_eq!(connection["fallback"], false, "{}: fallback", capture.name);
            let joins = connection["subflows"].as_array().map_or(0, |subflows| {
                subflows.iter().filter(|s| s["join"] == true).count()
            });
            assert_eq!(
                joins as u64,
                as_u64(&capture.truth["ip_mptcp_monitor"]["joins"], "truth joins"),
                "{}: joined subflows vs SF_ESTABLISHED",
                capture.name
            );
        }
    }
}

/// `ip mptcp monitor` prints each side's local token: the client's monitor the client's, the
/// server's monitor the server's.
#[test]
fn tokens_match_ip_mptcp_monitor() {
    for capture in truth_captures() {
        let list = list_mptcp(&capture.file);
        let connection = &connections(&list)[0];
        let monitor = &capture.truth["ip_mptcp_monitor"];
        assert_eq!(
            connection["client_token"], monitor["client_tokens"][0],
            "{}: client token",
            capture.name
        );
        assert_eq!(
            connection["server_token"], monitor["server_tokens"][0],
            "{}: server token",
            capture.name
        );
    }
}

#[test]
fn subflow_addresses_match_the_application() {
    for capture in truth_captures() {
        let list = list_mptcp(&capture.file);
        let initial = connections(&list)[0]["subflows"]
            .as_array()
            .and_then(|subflows| subflows.iter().find(|s| s["join"] == false).cloned())
            .unwrap_or_else(|| panic!("{}: no initial subflow", capture.name));
        assert_eq!(
            initial["client"], capture.truth["client_addr"],
            "{}",
            capture.name
        );
        assert_eq!(
            initial["server"], capture.truth["server_addr"],
            "{}",
            capture.name
        );
    }
}

#[test]
fn unique_and_acked_bytes_match_the_application() {
    for capture in truth_captures() {
        let summary = mptcp_summary(&capture.file, 0);
        for (name, expected) in [
            ("client_to_server", capture.client_to_server_bytes()),
            ("server_to_client", capture.server_to_client_bytes()),
        ] {
            let direction = direction(&summary, name);
            assert_eq!(
                as_u64(&direction["unique_bytes"], "unique_bytes"),
                expected,
                "{}: {name} unique_bytes vs the bytes the application wrote and the peer read",
                capture.name
            );
            // The whole exchange, DATA_FIN and its DATA_ACK included, is in every capture.
            assert_eq!(
                as_u64(&direction["acked_bytes"], "acked_bytes"),
                expected,
                "{}: {name} acked_bytes",
                capture.name
            );
        }
    }
}

#[test]
fn shares_sum_to_one_and_subflow_bytes_add_up() {
    for capture in truth_captures() {
        let summary = mptcp_summary(&capture.file, 0);
        for direction in summary["directions"].as_array().into_iter().flatten() {
            let unique = as_u64(&direction["unique_bytes"], "unique_bytes");
            let subflows = direction["subflows"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let subflow_unique: u64 = subflows
                .iter()
                .map(|s| as_u64(&s["unique_bytes"], "subflow unique_bytes"))
                .sum();
            let subflow_wire: u64 = subflows
                .iter()
                .map(|s| as_u64(&s["wire_bytes"], "subflow wire_bytes"))
                .sum();
            assert_eq!(subflow_unique, unique, "{}: {direction}", capture.name);
            assert_eq!(
                subflow_wire,
                as_u64(&direction["wire_bytes"], "wire_bytes"),
                "{}: {direction}",
                capture.name
            );
            if unique > 0 {
                let share: f64 = subflows.iter().filter_map(|s| s["share"].as_f64()).sum();
                assert!(
                    (share - 1.0).abs() <= 1e-9,
                    "{}: shares sum to {share}",
                    capture.name
                );
            }
        }
    }
}

/// Wire bytes per direction are the TCP payload lengths, which tshark reads from the IP
/// headers (so they do not depend on the snaplen).
#[test]
fn wire_bytes_match_tshark() {
    for capture in truth_captures() {
        let summary = mptcp_summary(&capture.file, 0);
        let server = capture.truth["server_addr"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let server_port = server.rsplit(':').next().unwrap_or_default().to_owned();
        let rows = tshark_fields(&capture.file, "tcp", &["tcp.srcport", "tcp.len"]);
        let (mut to_server, mut to_client) = (0u64, 0u64);
        for row in rows {
            let length: u64 = row.get(1).and_then(|l| l.parse().ok()).unwrap_or(0);
            if row.first().map(String::as_str) == Some(server_port.as_str()) {
                to_client += length;
            } else {
                to_server += length;
            }
        }
        assert_eq!(
            as_u64(
                &direction(&summary, "client_to_server")["wire_bytes"],
                "wire_bytes"
            ),
            to_server,
            "{}: client_to_server wire_bytes vs tshark's tcp.len",
            capture.name
        );
        assert_eq!(
            as_u64(
                &direction(&summary, "server_to_client")["wire_bytes"],
                "wire_bytes"
            ),
            to_client,
            "{}: server_to_client wire_bytes vs tshark's tcp.len",
            capture.name
        );
    }
}

/// The lossy scenario: the server's nftables dropped data on path 2 and the client's kernel
/// counted MPTCP-level retransmissions; tshark sees reinjections too.
#[test]
fn lossy_capture_has_reinjections() {
    let capture = truth_captures()
        .into_iter()
        .find(|capture| capture.truth["lossy"] == true)
        .expect("a lossy capture in tests/data");
    let counters = &capture.truth["kernel_mptcp_counters"];
    assert!(
        counters["client"]["MPTcpExtMPTCPRetrans"]
            .as_u64()
            .unwrap_or(0)
            > 0
            || counters["server"]["MPTcpExtDuplicateData"]
                .as_u64()
                .unwrap_or(0)
                > 0,
        "the truth file records no MPTCP-level retransmission: {counters}"
    );
    let tshark_reinjections = tshark_fields_with(
        &capture.file,
        "mptcp.reinjection_of",
        &["frame.number"],
        &[
            "mptcp.analyze_mappings:TRUE",
            "mptcp.intersubflows_retransmission:TRUE",
        ],
    )
    .len();
    assert!(
        tshark_reinjections > 0,
        "tshark finds no reinjection in {}",
        capture.name
    );
    let summary = mptcp_summary(&capture.file, 0);
    let sent = direction(&summary, "client_to_server");
    assert!(
        as_u64(&sent["reinjections"], "reinjections") > 0,
        "{}: {sent}",
        capture.name
    );
    assert!(
        as_u64(&sent["reinjected_bytes"], "reinjected_bytes") > 0,
        "{}: {sent}",
        capture.name
    );
    // Reinjected data is carried twice: the wire holds more than the unique bytes.
    assert!(
        as_u64(&sent["wire_bytes"], "wire_bytes") > as_u64(&sent["unique_bytes"], "unique_bytes"),
        "{}: {sent}",
        capture.name
    );
}

/// The same transfer recorded by two tcpdumps at once, snaplen 128 and full: lengths come from
/// the headers, so every byte count is the same.
#[test]
fn snaplen_128_and_full_capture_agree() {
    let captures = truth_captures();
    let twins: Vec<_> = captures
        .iter()
        .filter_map(|full| {
            let name = full.truth["twin_of"].as_str()?;
            let short = captures.iter().find(|c| c.name == name)?;
            Some((short, full))
        })
        .collect();
    assert!(
        !twins.is_empty(),
        "no full-snaplen twin capture in tests/data"
    );
    for (short, full) in twins {
        assert_eq!(
            short.truth["tcpdump"]["packets"],
            full.truth["tcpdump"]["packets"]
        );
        let (short_summary, full_summary) =
            (mptcp_summary(&short.file, 0), mptcp_summary(&full.file, 0));
        for name in ["client_to_server", "server_to_client"] {
            for field in [
                "wire_bytes",
                "unique_bytes",
                "acked_bytes",
                "reinjected_bytes",
                "retransmitted_bytes",
            ] {
                assert_eq!(
                    direction(&short_summary, name)[field],
                    direction(&full_summary, name)[field],
                    "{} vs {}: {name} {field}",
                    short.name,
                    full.name
                );
            }
        }
        assert_eq!(
            list_mptcp(&short.file),
            list_mptcp(&full.file),
            "{} vs {}",
            short.name,
            full.name
        );
    }
}

/// `list-tcp`: one entry per tshark `tcp.stream`, and its packet counts add up to the TCP
/// packets in the file.
#[test]
fn list_tcp_matches_tshark_streams_and_packets() {
    for capture in truth_captures() {
        let list = list_tcp(&capture.file);
        let streams = list["tcp_connections"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let rows = tshark_fields(&capture.file, "tcp", &["tcp.stream"]);
        let tshark_streams: std::collections::BTreeSet<&str> = rows
            .iter()
            .filter_map(|row| row.first().map(String::as_str))
            .collect();
        assert_eq!(
            streams.len(),
            tshark_streams.len(),
            "{}: TCP streams",
            capture.name
        );
        let packets: u64 = streams
            .iter()
            .map(|s| as_u64(&s["packets"], "packets"))
            .sum();
        assert_eq!(packets, rows.len() as u64, "{}: TCP packets", capture.name);
        assert!(
            streams
                .iter()
                .all(|s| s["mptcp"] == true && s["handshake_seen"] == true),
            "{}: every stream is an MPTCP subflow whose SYN was captured: {list}",
            capture.name
        );
    }
}

/// Every payload byte on the wire is accounted for exactly once: new data, reinjection,
/// retransmission or unmapped (README, "Reinjections"). Checked on every connection of our
/// captures (here) and of the shared ones (the next test). Together with `wire_bytes` =
/// tshark's `tcp.len` sum (above) and `unique_bytes` = the application's count, this pins the
/// other two.
#[test]
fn wire_bytes_split_into_unique_reinjected_retransmitted_unmapped() {
    let files: Vec<_> = truth_captures().into_iter().map(|c| c.file).collect();
    assert_wire_bytes_split(&files);
}

#[test]
fn wire_bytes_split_on_the_shared_captures() {
    if let Some(dir) = integration_tests::shared_pcaps("wire_bytes_split_on_the_shared_captures") {
        assert_wire_bytes_split(&[dir.join("client_2.pcap"), dir.join("server_2.pcap")]);
    }
}

fn assert_wire_bytes_split(files: &[std::path::PathBuf]) {
    for file in files {
        for connection in connections(&list_mptcp(file)) {
            let id = as_u64(&connection["id"], "id");
            let summary = mptcp_summary(file, id);
            for d in summary["directions"].as_array().into_iter().flatten() {
                let part = |field: &str| as_u64(&d[field], field);
                assert_eq!(
                    part("wire_bytes"),
                    part("unique_bytes")
                        + part("reinjected_bytes")
                        + part("retransmitted_bytes")
                        + part("unmapped_bytes"),
                    "{}: connection {id} {}",
                    file.display(),
                    d["direction"]
                );
            }
        }
    }
}
