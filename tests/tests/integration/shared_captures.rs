//! The third-party MPTCP v0 captures in shared/pcaps (iperf3 between two hosts with two
//! addresses each, captured at both ends; see shared/pcaps/README.md). Skipped, with a message,
//! where shared/ is absent.

use std::collections::BTreeSet;

use integration_tests::{as_u64, list_mptcp, list_tcp, shared_pcaps};
use serde_json::Value;

fn connections(list: &Value) -> Vec<Value> {
    list["mptcp_connections"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The (client, server) endpoints of a connection's subflows, as distinct 4-tuples.
fn four_tuples(connection: &Value) -> BTreeSet<(String, String)> {
    connection["subflows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            (
                s["client"].as_str().unwrap_or_default().to_owned(),
                s["server"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// The client's capture of the experiment: 4 MPTCP v0 connections of 4 subflows each (the 2 × 2
/// address pairs), iperf3's port 5201 on the server side. (The server's capture lacks one of
/// them: see `client_and_server_captures_agree`.)
///
/// Subflows are counted as distinct 4-tuples: in server_2.pcap one join subflow
/// (11.0.0.1:60453 → 11.0.0.2:5201) shows two ACKs with DSS before its SYN, each answered by a
/// RST (tshark frames 22–37: `tcp.stream` 2, then the SYN in frame 77 starts `tcp.stream` 5).
/// Those two TCP streams carry the same subflow's 4-tuple; both belong to connection 0 (the
/// early stream by its DATA_ACK in connection 0's data sequence space).
#[test]
fn two_subflow_experiment_has_4_connections_of_4_subflows() {
    let Some(dir) = shared_pcaps("two_subflow_experiment_has_4_connections_of_4_subflows") else {
        return;
    };
    for name in ["client_2.pcap"] {
        let list = list_mptcp(&dir.join(name));
        let connections = connections(&list);
        assert_eq!(connections.len(), 4, "{name}: {list}");
        for connection in &connections {
            assert_eq!(connection["version"], 0, "{name}: MPTCP v0");
            let subflows = connection["subflows"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let tuples = four_tuples(connection);
            assert_eq!(tuples.len(), 4, "{name}: subflows of {connection}");
            assert_eq!(
                subflows.iter().filter(|s| s["join"] == true).count(),
                3,
                "{name}: three MP_JOIN subflows in {connection}"
            );
            assert!(
                subflows
                    .iter()
                    .all(|s| s["server"].as_str().is_some_and(|a| a.ends_with(":5201"))),
                "{name}: every subflow goes to iperf3's port: {connection}"
            );
            // Two client and two server addresses: every pair is a subflow.
            let pairs: BTreeSet<(String, String)> = tuples
                .iter()
                .map(|(client, server)| {
                    let host = |a: &str| a.rsplit_once(':').map(|(h, _)| h.to_owned());
                    (
                        host(client).unwrap_or_default(),
                        host(server).unwrap_or_default(),
                    )
                })
                .collect();
            assert_eq!(pairs.len(), 4, "{name}: address pairs {pairs:?}");
        }
        assert_eq!(list["orphan_subflows"], serde_json::json!([]), "{name}");
    }
}

/// The two captures of one experiment must agree: the same four connections by their keys, and
/// the same subflow 4-tuples, but for one: the MP_JOIN SYN 11.0.0.1:40191 → 10.0.0.2:5201 of
/// connection 1 (client_2.pcap frame 277, `tcp.stream` 7, a lone SYN) never reached the server,
/// so `tshark -r server_2.pcap -Y tcp.port==40191` finds nothing. Stream 2 of server_2.pcap (DSS
/// before its SYN, see above) counts under its 4-tuple, which the client saw as a join.
#[test]
fn client_and_server_captures_agree() {
    let Some(dir) = shared_pcaps("client_and_server_captures_agree") else {
        return;
    };
    let by_keys = |name: &str| {
        let list = list_mptcp(&dir.join(name));
        assert_eq!(list["orphan_subflows"], serde_json::json!([]), "{name}");
        connections(&list)
            .iter()
            .map(|c| {
                let keys = (c["client_key"].to_string(), c["server_key"].to_string());
                (keys, four_tuples(c))
            })
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let client = by_keys("client_2.pcap");
    let mut server = by_keys("server_2.pcap");
    assert_eq!(client.len(), 4);
    let lost = ("11.0.0.1:40191".to_owned(), "10.0.0.2:5201".to_owned());
    let lost_in = client
        .iter()
        .find(|(_, tuples)| tuples.contains(&lost))
        .map(|(keys, _)| keys.clone())
        .expect("client_2.pcap has the join of 11.0.0.1:40191");
    assert!(!server[&lost_in].contains(&lost));
    server.get_mut(&lost_in).map(|t| t.insert(lost));
    assert_eq!(client, server);
}

#[test]
fn tcp_only_captures_have_4_streams_and_no_mptcp() {
    let Some(dir) = shared_pcaps("tcp_only_captures_have_4_streams_and_no_mptcp") else {
        return;
    };
    for name in ["client_1_tcp_only.pcap", "server_1_tcp_only.pcap"] {
        let file = dir.join(name);
        let tcp = list_tcp(&file);
        let streams = tcp["tcp_connections"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(streams.len(), 4, "{name}: {tcp}");
        assert!(streams.iter().all(|s| s["mptcp"] == false), "{name}: {tcp}");
        let packets: u64 = streams
            .iter()
            .map(|s| as_u64(&s["packets"], "packets"))
            .sum();
        assert!(packets > 2000, "{name}: {packets} TCP packets");
        let list = list_mptcp(&file);
        assert!(connections(&list).is_empty(), "{name}: {list}");
        assert_eq!(list["orphan_subflows"], serde_json::json!([]), "{name}");
    }
}
