//! Cross-checks with tshark's dissection on every capture, ours and the shared ones: number of
//! TCP streams, MPTCP connections, their subflows, keys and tokens. tshark 4.0 is a reference,
//! not a truth; where it is known wrong the test says why and checks the evidence.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use integration_tests::{
    TsharkMptcp, as_u64, list_mptcp, list_tcp, shared_pcaps, truth_captures, tshark_mptcp,
};
use serde_json::Value;

fn key(value: &Value, what: &str) -> u64 {
    value
        .as_str()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| panic!("{what} is not a decimal string key: {value}"))
}

fn subflow_streams(connection: &Value) -> BTreeSet<u64> {
    connection["subflows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|subflow| as_u64(&subflow["tcp_stream"], "tcp_stream"))
        .collect()
}

/// Compares one file. `tshark_split` lists tshark `mptcp.stream`s known to be a piece split
/// off another connection (see `server_2_split_is_a_subflow_seen_before_its_syn`).
fn cross_check(file: &Path, tshark_split: &[u64]) {
    let name = file.display();
    let tshark: TsharkMptcp = tshark_mptcp(file);
    let tcp = list_tcp(file);
    let streams: BTreeSet<u64> = tcp["tcp_connections"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|stream| as_u64(&stream["stream"], "stream"))
        .collect();
    assert_eq!(
        streams, tshark.tcp_streams,
        "{name}: tcp streams (numbered as tcp.stream)"
    );

    let list = list_mptcp(file);
    let connections = list["mptcp_connections"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let tshark_whole = tshark
        .connections
        .keys()
        .filter(|stream| !tshark_split.contains(stream))
        .count();
    assert_eq!(connections.len(), tshark_whole, "{name}: MPTCP connections");

    for connection in &connections {
        let client_key = key(&connection["client_key"], "client_key");
        let server_key = key(&connection["server_key"], "server_key");
        let (&mptcp_stream, _) = tshark
            .keys
            .iter()
            .find(|(_, keys)| **keys == (client_key, server_key))
            .unwrap_or_else(|| {
                panic!(
                    "{name}: keys {client_key}/{server_key} are not among tshark's {:?}",
                    tshark.keys
                )
            });
        for (token_field, key) in [("client_token", client_key), ("server_token", server_key)] {
            let tshark_token = tshark.tokens.get(&key).copied();
            assert_eq!(
                connection[token_field].as_u64(),
                tshark_token.map(u64::from),
                "{name}: {token_field} of key {key} vs tshark's mptcp.expected_token"
            );
        }
        let mut tshark_subflows = tshark.connections[&mptcp_stream].clone();
        // A split-off piece belongs to the connection whose token its MP_JOIN asked for;
        // tshark gives it its own mptcp.stream, we give it to its connection.
        for split in tshark_split {
            let pieces = &tshark.connections[split];
            let ours = subflow_streams(connection);
            if pieces.is_subset(&ours) {
                tshark_subflows.extend(pieces);
            }
        }
        assert_eq!(
            subflow_streams(connection),
            tshark_subflows,
            "{name}: subflows (tcp.stream) of the connection with client key {client_key}"
        );
    }
}

#[test]
fn own_captures_agree_with_tshark() {
    for capture in truth_captures() {
        cross_check(&capture.file, &[]);
    }
}

fn shared(name: &str, test: &str) -> Option<PathBuf> {
    shared_pcaps(test).map(|dir| dir.join(name))
}

#[test]
fn client_2_agrees_with_tshark() {
    if let Some(file) = shared("client_2.pcap", "client_2_agrees_with_tshark") {
        cross_check(&file, &[]);
    }
}

#[test]
fn tcp_only_captures_agree_with_tshark() {
    let Some(dir) = shared_pcaps("tcp_only_captures_agree_with_tshark") else {
        return;
    };
    for name in ["client_1_tcp_only.pcap", "server_1_tcp_only.pcap"] {
        cross_check(&dir.join(name), &[]);
    }
}

/// tshark's `mptcp.stream`s of server_2.pcap that are a piece split off another connection.
///
/// tshark counts 5 MPTCP connections where there are 4. The evidence: the extra `mptcp.stream`
/// holds a single TCP stream whose first captured packet is not a SYN (it was captured before
/// its MP_JOIN SYN, see shared/pcaps/README.md), so tshark cannot tie it to a connection by
/// token when it first sees it. The other 4 tshark connections hold the remaining 15 subflows.
fn server_2_tshark_split(file: &Path) -> Vec<u64> {
    let tshark = tshark_mptcp(file);
    assert_eq!(
        tshark.connections.len(),
        5,
        "tshark's known split of server_2.pcap"
    );
    let split: Vec<u64> = tshark
        .connections
        .iter()
        .filter(|(_, subflows)| subflows.len() == 1)
        .map(|(stream, _)| *stream)
        .collect();
    assert_eq!(
        split.len(),
        1,
        "one split-off piece: {:?}",
        tshark.connections
    );
    let piece = tshark.connections[&split[0]]
        .iter()
        .next()
        .copied()
        .unwrap_or_default();
    assert_eq!(
        tshark.starts_with_syn.get(&piece),
        Some(&false),
        "the split-off tcp.stream {piece} starts without a SYN"
    );
    assert!(
        !tshark.keys.contains_key(&split[0]),
        "the piece has no MP_CAPABLE keys"
    );
    let sizes: Vec<usize> = tshark.connections.values().map(BTreeSet::len).collect();
    assert_eq!(
        sizes.iter().sum::<usize>(),
        16,
        "16 subflows in all: {sizes:?}"
    );
    split
}

/// The evidence for tshark's split of server_2.pcap (checks tshark only).
#[test]
fn server_2_tshark_splits_a_subflow_seen_before_its_syn() {
    if let Some(file) = shared(
        "server_2.pcap",
        "server_2_tshark_splits_a_subflow_seen_before_its_syn",
    ) {
        server_2_tshark_split(&file);
    }
}

#[test]
fn server_2_agrees_with_tshark_except_its_split() {
    if let Some(file) = shared(
        "server_2.pcap",
        "server_2_agrees_with_tshark_except_its_split",
    ) {
        let split = server_2_tshark_split(&file);
        cross_check(&file, &split);
    }
}

/// The reference itself: on our captures tshark's connections and tokens equal what
/// `ip mptcp monitor` printed, so the cross-checks above compare with something right.
#[test]
fn tshark_reference_matches_ip_mptcp_monitor() {
    for capture in truth_captures() {
        let tshark = tshark_mptcp(&capture.file);
        assert_eq!(
            tshark.connections.len() as u64,
            capture.monitor_connections(),
            "{}",
            capture.name
        );
        let subflows: usize = tshark.connections.values().map(BTreeSet::len).sum();
        assert_eq!(
            subflows as u64,
            capture.monitor_subflows(),
            "{}",
            capture.name
        );
        let (client_key, server_key) = tshark.keys.values().next().copied().expect("keys");
        let monitor = &capture.truth["ip_mptcp_monitor"];
        assert_eq!(
            tshark.tokens.get(&client_key).map(|t| u64::from(*t)),
            monitor["client_tokens"][0].as_u64()
        );
        assert_eq!(
            tshark.tokens.get(&server_key).map(|t| u64::from(*t)),
            monitor["server_tokens"][0].as_u64()
        );
    }
}

/// The reference on the shared captures: 4 connections of 4 subflows in client_2.pcap, each
/// with both keys and a token per key; no MPTCP in the TCP-only captures.
#[test]
fn tshark_reference_on_shared_captures() {
    let Some(dir) = shared_pcaps("tshark_reference_on_shared_captures") else {
        return;
    };
    let client_2 = tshark_mptcp(&dir.join("client_2.pcap"));
    assert_eq!(client_2.tcp_streams.len(), 16);
    assert!(
        client_2
            .connections
            .values()
            .all(|subflows| subflows.len() == 4),
        "{:?}",
        client_2.connections
    );
    assert_eq!(client_2.keys.len(), 4);
    for (client_key, server_key) in client_2.keys.values() {
        assert!(
            client_2.tokens.contains_key(client_key) && client_2.tokens.contains_key(server_key)
        );
    }
    let tcp_only = tshark_mptcp(&dir.join("client_1_tcp_only.pcap"));
    assert_eq!(
        (tcp_only.tcp_streams.len(), tcp_only.connections.len()),
        (4, 0)
    );
}

// No capture here falls back to TCP at the v1 handshake (tshark 4.0 builds no MPTCP stream
// for that, MPTCP-NOTES.md); `own_captures` checks `fallback == false` against the monitor.

/// Unique data-level bytes against the DSS mappings as tshark dissects them, option by option
/// (`tcp.options.mptcp.rawdataseqno` and `.datalvllen`, not tshark's own DSN analysis, which
/// MPTCP-NOTES.md shows wrong): per MPTCP connection and direction, the size of the union of
/// the mapped ranges, DATA_FIN's sequence number excluded. client_2.pcap uses 4-byte DSNs, so
/// ranges are placed relative to the first DSN of their direction in 32-bit arithmetic.
///
/// This is also why connection 1 carries 2,352,721 bytes client to server and not the 2,354,149
/// that tshark's first-to-last DSN span gives: one 1,428-byte range inside the span is covered
/// by no mapping in the capture.
#[test]
fn client_2_unique_bytes_are_the_union_of_dss_mappings() {
    use std::collections::BTreeMap;

    let Some(file) = shared(
        "client_2.pcap",
        "client_2_unique_bytes_are_the_union_of_dss_mappings",
    ) else {
        return;
    };
    /// The first DSN of a direction, and the mapped `[start, end)` offsets from it.
    type Mapped = (u32, Vec<(i64, i64)>);
    // (mptcp.stream, from the server) -> its mappings.
    let mut mapped: BTreeMap<(u64, bool), Mapped> = BTreeMap::new();
    for row in integration_tests::tshark_fields(
        &file,
        "tcp.options.mptcp.datalvllen",
        &[
            "mptcp.stream",
            "tcp.srcport",
            "tcp.options.mptcp.rawdataseqno",
            "tcp.options.mptcp.datalvllen",
            "tcp.options.mptcp.datafin.flag",
        ],
    ) {
        let number = |i: usize| -> u64 {
            row[i]
                .parse()
                .unwrap_or_else(|_| panic!("field {i} of {row:?} is not a number"))
        };
        let dsn = number(2) as u32;
        let data_fin = row[4] == "1" || row[4] == "True";
        let len = number(3) as i64 - i64::from(data_fin);
        let entry = mapped
            .entry((number(0), row[1] == "5201"))
            .or_insert((dsn, Vec::new()));
        // The distance from the first DSN, as a signed 32-bit difference (wrap-safe).
        let start = i64::from(dsn.wrapping_sub(entry.0) as i32);
        if len > 0 {
            entry.1.push((start, start + len));
        }
    }
    let union = |ranges: &mut Vec<(i64, i64)>| -> u64 {
        ranges.sort_unstable();
        let (mut total, mut end) = (0i64, i64::MIN);
        for &(s, e) in ranges.iter() {
            let s = s.max(end);
            if e > s {
                total += e - s;
                end = e;
            }
        }
        total as u64
    };
    let list = list_mptcp(&file);
    let connections = list["mptcp_connections"].as_array().expect("connections");
    assert_eq!(connections.len(), 4);
    for connection in connections {
        let id = as_u64(&connection["id"], "id");
        let summary = integration_tests::mptcp_summary(&file, id);
        for (name, from_server) in [("client_to_server", false), ("server_to_client", true)] {
            let expected = mapped
                .get_mut(&(id, from_server))
                .map_or(0, |(_, ranges)| union(ranges));
            let ours = as_u64(
                &integration_tests::direction(&summary, name)["unique_bytes"],
                "unique_bytes",
            );
            assert_eq!(ours, expected, "connection {id} {name}");
        }
    }
    let connection_1 = integration_tests::mptcp_summary(&file, 1);
    assert_eq!(
        as_u64(
            &integration_tests::direction(&connection_1, "client_to_server")["unique_bytes"],
            "unique_bytes"
        ),
        2_352_721
    );
}
