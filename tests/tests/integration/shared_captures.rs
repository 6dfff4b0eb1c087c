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

/// Both ends of the same experiment: 4 MPTCP v0 connections of 4 subflows each (the 2 × 2
/// address pairs), iperf3's port 5201 on the server side.
#[test]
fn two_subflow_experiment_has_4_connections_of_4_subflows() {
    let Some(dir) = shared_pcaps("two_subflow_experiment_has_4_connections_of_4_subflows") else {
        return;
    };
    for name in ["client_2.pcap", "server_2.pcap"] {
        let list = list_mptcp(&dir.join(name));
        let connections = connections(&list);
        assert_eq!(connections.len(), 4, "{name}: {list}");
        for connection in &connections {
            assert_eq!(connection["version"], 0, "{name}: MPTCP v0");
            let subflows = connection["subflows"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            assert_eq!(subflows.len(), 4, "{name}: subflows of {connection}");
            assert_eq!(
                subflows.iter().filter(|s| s["join"] == false).count(),
                1,
                "{name}"
            );
            assert!(
                subflows
                    .iter()
                    .all(|s| s["server"].as_str().is_some_and(|a| a.ends_with(":5201"))),
                "{name}: every subflow goes to iperf3's port: {connection}"
            );
            // Two client and two server addresses: every pair is a subflow.
            let pairs: BTreeSet<(String, String)> = subflows
                .iter()
                .map(|s| {
                    let host = |field: &str| {
                        s[field]
                            .as_str()
                            .and_then(|a| a.rsplit_once(':'))
                            .map(|(h, _)| h.to_owned())
                    };
                    (
                        host("client").unwrap_or_default(),
                        host("server").unwrap_or_default(),
                    )
                })
                .collect();
            assert_eq!(pairs.len(), 4, "{name}: address pairs {pairs:?}");
        }
        assert_eq!(list["orphan_subflows"], serde_json::json!([]), "{name}");
    }
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
