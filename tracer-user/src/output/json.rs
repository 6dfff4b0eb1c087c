//! JSON output: the summary structs of `analysis::summary` serialised as they are (their field
//! names are the documented schema), pretty-printed with a trailing newline, and the one
//! document `trace --json` prints.

use serde::Serialize;

use crate::{
    analysis::summary::{
        MptcpConnectionInfo, MptcpList, MptcpSummary, TcpConnectionInfo, TcpList, TcpSummary,
    },
    source::live::LiveStats,
};

/// Pretty JSON of `value` with a trailing newline, ready to write to stdout.
pub fn to_pretty<T: Serialize + ?Sized>(value: &T) -> Result<String, serde_json::Error> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    Ok(text)
}

/// `trace --json`: everything a live run produced, as one document.
#[derive(Debug, Serialize)]
pub struct TraceReport<'a> {
    /// Kernel and userspace counters of the run.
    pub stats: &'a LiveStats,
    /// As `list-mptcp --json`.
    pub mptcp: &'a MptcpList,
    /// As `mptcp-summary --json` plus `open`, one per connection of `mptcp`, in the same order.
    pub summaries: &'a [LiveSummary<'a>],
    /// With `--all-tcp`: as `list-tcp --json`, every TCP stream (MPTCP subflows included, so
    /// that the stream numbers are the ones `mptcp` uses).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp: Option<&'a TcpList>,
    /// With `--all-tcp`: as `tcp-summary --json`, one per plain TCP stream of `tcp` (those with
    /// `mptcp: false`), in stream order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_summaries: Option<&'a [TcpSummary]>,
    /// What went wrong without stopping the run, as stderr says it: lost events, damaged
    /// packets, interfaces that went away, stale filters of a killed tracer...
    pub warnings: &'a [String],
}

/// One connection's summary in a trace: `mptcp-summary --json`, and whether the connection was
/// still open when the trace ended (its byte counts are then those so far, not final).
#[derive(Debug, Serialize)]
pub struct LiveSummary<'a> {
    #[serde(flatten)]
    pub summary: &'a MptcpSummary,
    pub open: bool,
}

/// `trace --long-run --json`: one line per connection or plain TCP stream as it ends. An MPTCP
/// connection carries `mptcp` (as in `list-mptcp`) and `summary` (as in the final report's
/// `summaries`, `open` false); a plain stream `tcp` and `tcp_summary` (as with `--all-tcp`).
#[derive(Debug, Serialize)]
pub struct EndedLine<'a> {
    /// How it ended: data_fin, fastclose, reset, fallback or idle_timeout.
    pub ended: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mptcp: Option<&'a MptcpConnectionInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<LiveSummary<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp: Option<&'a TcpConnectionInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_summary: Option<&'a TcpSummary>,
}

/// `value` as one line of JSON, newline included.
pub fn to_line<T: Serialize + ?Sized>(value: &T) -> Result<String, serde_json::Error> {
    let mut text = serde_json::to_string(value)?;
    text.push('\n');
    Ok(text)
}

#[cfg(test)]
mod pinned;

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::analysis::summary::{
        Direction, EventKind, MptcpDirectionSummary, MptcpEvent, OrphanReason, OrphanSubflow,
        SubflowDirectionSummary, SubflowInfo, SubflowRole,
    };

    fn at(address: &str) -> std::net::SocketAddr {
        address.parse().expect("a test address")
    }

    fn keys(value: &Value) -> Vec<&str> {
        let mut keys: Vec<&str> = value
            .as_object()
            .expect("a JSON object")
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        keys
    }

    fn has_fields(value: &Value, fields: &[&str]) {
        let present = keys(value);
        for field in fields {
            assert!(
                present.contains(field),
                "field {field} missing from {value}"
            );
        }
    }

    fn mptcp_list() -> MptcpList {
        MptcpList {
            mptcp_connections: vec![MptcpConnectionInfo {
                id: 0,
                version: 0,
                client_key: Some(u64::MAX),
                server_key: Some(1),
                client_token: Some(0xdead_beef),
                server_token: Some(7),
                client_idsn: Some(2),
                server_idsn: None,
                fallback: false,
                subflows: vec![SubflowInfo {
                    tcp_stream: 0,
                    client: at("10.0.0.1:1"),
                    server: at("10.0.0.2:2"),
                    join: false,
                    role: SubflowRole::Initial,
                    backup: false,
                    client_addr_id: None,
                    server_addr_id: None,
                }],
            }],
            orphan_subflows: vec![OrphanSubflow {
                tcp_stream: 4,
                client: at("10.0.1.1:3"),
                server: at("10.0.0.2:2"),
                token: Some(9),
                reason: OrphanReason::UnknownToken,
            }],
        }
    }

    #[test]
    fn pretty_output_ends_with_newline_and_round_trips() {
        let text = to_pretty(&mptcp_list()).expect("serialisable");
        assert!(text.ends_with("}\n"));
        assert!(
            text.contains("\n  \"mptcp_connections\": ["),
            "not pretty: {text}"
        );
        let value: Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(value["mptcp_connections"][0]["id"], 0);
    }

    #[test]
    fn mptcp_list_schema() {
        let value: Value = serde_json::from_str(&to_pretty(&mptcp_list()).expect("serialisable"))
            .expect("valid JSON");
        assert_eq!(keys(&value), ["mptcp_connections", "orphan_subflows"]);
        let connection = &value["mptcp_connections"][0];
        has_fields(
            connection,
            &[
                "id",
                "version",
                "client_key",
                "server_key",
                "client_token",
                "server_token",
                "subflows",
            ],
        );
        // Keys are decimal strings (a u64 loses precision as a JSON number), tokens numbers.
        assert_eq!(
            connection["client_key"],
            Value::String("18446744073709551615".into())
        );
        assert_eq!(connection["client_token"], Value::from(3_735_928_559_u32));
        assert_eq!(connection["server_idsn"], Value::Null);
        has_fields(
            &connection["subflows"][0],
            &["tcp_stream", "client", "server", "join", "role", "backup"],
        );
        has_fields(
            &value["orphan_subflows"][0],
            &["tcp_stream", "client", "server", "token", "reason"],
        );
    }

    #[test]
    fn tcp_list_schema() {
        let list = TcpList {
            tcp_connections: vec![TcpConnectionInfo {
                stream: 3,
                client: at("[fd00::1]:5"),
                server: at("[fd00::2]:6"),
                packets: 12,
                mptcp: true,
                handshake_seen: false,
            }],
        };
        let value: Value =
            serde_json::from_str(&to_pretty(&list).expect("serialisable")).expect("valid JSON");
        assert_eq!(keys(&value), ["tcp_connections"]);
        let connection = &value["tcp_connections"][0];
        has_fields(
            connection,
            &["stream", "client", "server", "packets", "mptcp"],
        );
        assert_eq!(connection["stream"], 3);
        assert_eq!(connection["client"], "[fd00::1]:5");
        assert_eq!(connection["mptcp"], true);
    }

    fn mptcp_summary() -> MptcpSummary {
        MptcpSummary {
            id: 2,
            version: 1,
            fallback: false,
            events_dropped: 0,
            directions: vec![MptcpDirectionSummary {
                direction: Direction::ClientToServer,
                duration_s: 1.5,
                wire_bytes: 110,
                unique_bytes: 100,
                acked_bytes: 100,
                reinjected_bytes: 10,
                reinjections: 1,
                retransmissions: 0,
                retransmitted_bytes: 0,
                unmapped_segments: 0,
                unmapped_bytes: 0,
                goodput_bps: 533.3,
                throughput_bps: 586.7,
                subflows: vec![SubflowDirectionSummary {
                    tcp_stream: 0,
                    packets: 3,
                    wire_bytes: 110,
                    unique_bytes: 100,
                    share: 1.0,
                    reinjected_bytes: 10,
                    retransmitted_bytes: 0,
                }],
            }],
            events: vec![MptcpEvent {
                time_s: 0.25,
                packet: 9,
                tcp_stream: 0,
                direction: Direction::ClientToServer,
                kind: EventKind::DataFin,
                detail: String::new(),
            }],
        }
    }

    #[test]
    fn mptcp_summary_schema() {
        let value: Value =
            serde_json::from_str(&to_pretty(&mptcp_summary()).expect("serialisable"))
                .expect("valid JSON");
        has_fields(&value, &["id", "directions", "events"]);
        let direction = &value["directions"][0];
        has_fields(
            direction,
            &[
                "direction",
                "duration_s",
                "wire_bytes",
                "unique_bytes",
                "acked_bytes",
                "reinjected_bytes",
                "reinjections",
                "subflows",
            ],
        );
        assert_eq!(direction["direction"], "client_to_server");
        assert_eq!(direction["duration_s"], 1.5);
        has_fields(
            &direction["subflows"][0],
            &["tcp_stream", "wire_bytes", "unique_bytes", "share"],
        );
        has_fields(
            &value["events"][0],
            &[
                "time_s",
                "packet",
                "tcp_stream",
                "direction",
                "kind",
                "detail",
            ],
        );
    }

    #[test]
    fn trace_report_schema() {
        let stats = LiveStats {
            packets_seen: 5,
            ringbuf_full: 1,
            ..Default::default()
        };
        let list = mptcp_list();
        let summary = mptcp_summary();
        let summaries = [LiveSummary {
            summary: &summary,
            open: true,
        }];
        let warnings = ["1 event lost".to_owned()];
        let report = TraceReport {
            stats: &stats,
            mptcp: &list,
            summaries: &summaries,
            tcp: None,
            tcp_summaries: None,
            warnings: &warnings,
        };
        let value: Value =
            serde_json::from_str(&to_pretty(&report).expect("serialisable")).expect("valid JSON");
        assert_eq!(keys(&value), ["mptcp", "stats", "summaries", "warnings"]);
        // A summary is mptcp-summary's fields plus `open`.
        let mut fields = keys(&serde_json::to_value(&summary).expect("serialisable"))
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>();
        fields.push("open".into());
        fields.sort_unstable();
        assert_eq!(keys(&value["summaries"][0]), fields);
        assert_eq!(value["summaries"][0]["open"], true);
        assert_eq!(value["stats"]["packets_seen"], 5);
        assert_eq!(value["stats"]["ringbuf_full"], 1);
        assert_eq!(
            keys(&value["mptcp"]),
            ["mptcp_connections", "orphan_subflows"]
        );
        assert_eq!(value["summaries"][0]["id"], 2);
        assert_eq!(value["warnings"][0], "1 event lost");

        // With --all-tcp, the TCP streams and the plain ones' summaries.
        let tcp = TcpList {
            tcp_connections: Vec::new(),
        };
        let report = TraceReport {
            tcp: Some(&tcp),
            tcp_summaries: Some(&[]),
            ..report
        };
        let value: Value =
            serde_json::from_str(&to_pretty(&report).expect("serialisable")).expect("valid JSON");
        assert_eq!(
            keys(&value),
            [
                "mptcp",
                "stats",
                "summaries",
                "tcp",
                "tcp_summaries",
                "warnings"
            ]
        );
        assert_eq!(value["tcp"]["tcp_connections"], serde_json::json!([]));
    }
}
