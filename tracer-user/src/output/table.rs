//! Human-readable tables of the summary structs. Every number here was computed in
//! `analysis::summary`; this module only chooses units and aligns columns.
//!
//! Units: bytes as the exact integer followed by an SI unit (`2354149 B (2.35 MB)`), durations
//! in seconds, rates in Mbit/s (10^6 bit/s), shares in percent, keys in decimal and hex, tokens
//! in hex and decimal.

use std::fmt::Write as _;

use crate::{
    analysis::summary::{
        Direction, MptcpConnectionInfo, MptcpDirectionSummary, MptcpList, MptcpSummary,
        OrphanReason, SubflowRole, TcpDirectionSummary, TcpList, TcpSummary,
    },
    source::live::LiveStats,
};

/// A row label and how one direction's cell is formatted.
type Row<T> = (&'static str, fn(&T) -> String);

/// `list-tcp`.
pub fn tcp_list(list: &TcpList) -> String {
    if list.tcp_connections.is_empty() {
        return "no TCP connections\n".to_owned();
    }
    let mut table = Table::new(&[
        ("STREAM", Align::Right),
        ("CLIENT", Align::Left),
        ("SERVER", Align::Left),
        ("PACKETS", Align::Right),
        ("MPTCP", Align::Left),
        ("HANDSHAKE", Align::Left),
    ]);
    for connection in &list.tcp_connections {
        table.row(vec![
            connection.stream.to_string(),
            connection.client.to_string(),
            connection.server.to_string(),
            connection.packets.to_string(),
            yes_no(connection.mptcp).to_owned(),
            seen(connection.handshake_seen).to_owned(),
        ]);
    }
    table.render("")
}

/// `tcp-summary`.
pub fn tcp_summary(summary: &TcpSummary) -> String {
    let mut out = format!(
        "TCP stream {}: client {} -> server {}{}\n\n",
        summary.stream,
        summary.client,
        summary.server,
        if summary.handshake_seen {
            ""
        } else {
            " (handshake not captured)"
        }
    );
    let mut columns = vec![("", Align::Left)];
    columns.extend(
        summary
            .directions
            .iter()
            .map(|d| (direction_label(d.direction), Align::Right)),
    );
    let mut table = Table::new(&columns);
    let rows: [Row<TcpDirectionSummary>; 6] = [
        ("packets", |d| d.packets.to_string()),
        ("duration", |d| seconds(d.duration_s)),
        ("wire bytes", |d| bytes(d.wire_bytes)),
        ("unique bytes", |d| bytes(d.unique_bytes)),
        ("retransmitted segments", |d| d.retransmissions.to_string()),
        ("retransmitted bytes", |d| bytes(d.retransmitted_bytes)),
    ];
    for (label, value) in rows {
        let mut row = vec![label.to_owned()];
        row.extend(summary.directions.iter().map(value));
        table.row(row);
    }
    out.push_str(&table.render(""));
    out
}

/// `list-mptcp`: one block per connection, then the orphan subflows.
pub fn mptcp_list(list: &MptcpList) -> String {
    let mut out = String::new();
    if list.mptcp_connections.is_empty() {
        out.push_str("no MPTCP connections\n");
    }
    for (i, connection) in list.mptcp_connections.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&mptcp_connection(connection));
    }
    if !list.orphan_subflows.is_empty() {
        out.push_str(
            "\nOrphan subflows (MPTCP options, but no connection in the capture claims them):\n",
        );
        let mut table = Table::new(&[
            ("STREAM", Align::Right),
            ("CLIENT", Align::Left),
            ("SERVER", Align::Left),
            ("TOKEN", Align::Left),
            ("WHY", Align::Left),
        ]);
        for orphan in &list.orphan_subflows {
            table.row(vec![
                orphan.tcp_stream.to_string(),
                orphan.client.to_string(),
                orphan.server.to_string(),
                token(orphan.token),
                orphan_reason(orphan.reason).to_owned(),
            ]);
        }
        out.push_str(&table.render("  "));
    }
    out
}

fn mptcp_connection(connection: &MptcpConnectionInfo) -> String {
    let mut out = format!(
        "MPTCP connection {} (v{}), {} subflow{}{}\n",
        connection.id,
        connection.version,
        connection.subflows.len(),
        if connection.subflows.len() == 1 {
            ""
        } else {
            "s"
        },
        if connection.fallback {
            ", fell back to TCP"
        } else {
            ""
        }
    );
    out.push_str(&key_table(connection));
    let mut subflows = Table::new(&[
        ("STREAM", Align::Right),
        ("KIND", Align::Left),
        ("CLIENT", Align::Left),
        ("SERVER", Align::Left),
        ("ADDR IDS (C/S)", Align::Left),
        ("BACKUP", Align::Left),
    ]);
    for subflow in &connection.subflows {
        subflows.row(vec![
            subflow.tcp_stream.to_string(),
            subflow_kind(subflow.role).to_owned(),
            subflow.client.to_string(),
            subflow.server.to_string(),
            format!(
                "{}/{}",
                optional(subflow.client_addr_id),
                optional(subflow.server_addr_id)
            ),
            yes_no(subflow.backup).to_owned(),
        ]);
    }
    out.push('\n');
    out.push_str(&subflows.render("  "));
    out
}

/// Keys, tokens and IDSNs of both sides of a connection.
fn key_table(connection: &MptcpConnectionInfo) -> String {
    let mut table = Table::new(&[
        ("", Align::Left),
        ("KEY", Align::Left),
        ("TOKEN", Align::Left),
        ("IDSN", Align::Left),
    ]);
    table.row(vec![
        "client".to_owned(),
        key(connection.client_key),
        token(connection.client_token),
        optional(connection.client_idsn),
    ]);
    table.row(vec![
        "server".to_owned(),
        key(connection.server_key),
        token(connection.server_token),
        optional(connection.server_idsn),
    ]);
    table.render("  ")
}

/// `mptcp-summary`: per-direction totals and per-subflow shares; `full` adds every per-subflow
/// counter and the event timeline.
pub fn mptcp_summary(summary: &MptcpSummary, full: bool) -> String {
    let mut out = format!("MPTCP connection {} (v{})", summary.id, summary.version);
    if summary.fallback {
        out.push_str(", fell back to TCP");
    }
    out.push_str("\n\n");

    let mut columns = vec![("", Align::Left)];
    columns.extend(
        summary
            .directions
            .iter()
            .map(|d| (direction_label(d.direction), Align::Right)),
    );
    let mut totals = Table::new(&columns);
    let rows: [Row<MptcpDirectionSummary>; 12] = [
        ("duration", |d| seconds(d.duration_s)),
        ("wire bytes", |d| bytes(d.wire_bytes)),
        ("unique data bytes", |d| bytes(d.unique_bytes)),
        ("acknowledged data bytes", |d| bytes(d.acked_bytes)),
        ("reinjected bytes", |d| bytes(d.reinjected_bytes)),
        ("reinjections", |d| d.reinjections.to_string()),
        ("retransmitted bytes", |d| bytes(d.retransmitted_bytes)),
        ("retransmitted segments", |d| d.retransmissions.to_string()),
        ("unmapped bytes", |d| bytes(d.unmapped_bytes)),
        ("goodput", |d| rate(d.goodput_bps)),
        ("throughput", |d| rate(d.throughput_bps)),
        ("subflows", |d| d.subflows.len().to_string()),
    ];
    for (label, value) in rows {
        let mut row = vec![label.to_owned()];
        row.extend(summary.directions.iter().map(value));
        totals.row(row);
    }
    out.push_str(&totals.render(""));

    if full {
        for direction in &summary.directions {
            out.push_str(&subflow_rows(direction));
        }
        out.push_str(&events(summary));
        if summary.events_dropped > 0 {
            let _ = writeln!(
                out,
                "({} more events not kept: the timeline keeps the first ones)",
                summary.events_dropped
            );
        }
    } else {
        out.push_str(&shares(summary));
        if !summary.events.is_empty() {
            let _ = writeln!(
                out,
                "\n{} signalling event{} (--full shows them)",
                summary.events.len(),
                if summary.events.len() == 1 { "" } else { "s" }
            );
        }
    }
    out
}

/// Every per-subflow counter of one direction (`mptcp-summary --full`).
fn subflow_rows(direction: &MptcpDirectionSummary) -> String {
    let mut out = format!("\nSubflows, {}:\n", direction_label(direction.direction));
    if direction.subflows.is_empty() {
        out.push_str("  none\n");
        return out;
    }
    let mut table = Table::new(&[
        ("STREAM", Align::Right),
        ("PACKETS", Align::Right),
        ("WIRE BYTES", Align::Right),
        ("UNIQUE BYTES", Align::Right),
        ("SHARE", Align::Right),
        ("REINJECTED", Align::Right),
        ("RETRANSMITTED", Align::Right),
    ]);
    for subflow in &direction.subflows {
        table.row(vec![
            subflow.tcp_stream.to_string(),
            subflow.packets.to_string(),
            bytes(subflow.wire_bytes),
            bytes(subflow.unique_bytes),
            percent(subflow.share),
            bytes(subflow.reinjected_bytes),
            bytes(subflow.retransmitted_bytes),
        ]);
    }
    out.push_str(&table.render("  "));
    out
}

/// One row per subflow, one share column per direction.
fn shares(summary: &MptcpSummary) -> String {
    let mut streams: Vec<u64> = summary
        .directions
        .iter()
        .flat_map(|d| d.subflows.iter().map(|s| s.tcp_stream))
        .collect();
    streams.sort_unstable();
    streams.dedup();
    if streams.is_empty() {
        return String::new();
    }
    let mut columns = vec![("STREAM", Align::Right)];
    columns.extend(
        summary
            .directions
            .iter()
            .map(|d| (direction_label(d.direction), Align::Right)),
    );
    let mut table = Table::new(&columns);
    for stream in streams {
        let mut row = vec![stream.to_string()];
        row.extend(summary.directions.iter().map(|d| {
            d.subflows
                .iter()
                .find(|s| s.tcp_stream == stream)
                .map_or_else(|| "-".to_owned(), |s| percent(s.share))
        }));
        table.row(row);
    }
    format!(
        "\nShare of unique data bytes by subflow:\n{}",
        table.render("  ")
    )
}

fn events(summary: &MptcpSummary) -> String {
    if summary.events.is_empty() {
        return "\nEvents: none\n".to_owned();
    }
    let mut table = Table::new(&[
        ("TIME (s)", Align::Right),
        ("PACKET", Align::Right),
        ("STREAM", Align::Right),
        ("DIRECTION", Align::Left),
        ("EVENT", Align::Left),
        ("DETAIL", Align::Left),
    ]);
    for event in &summary.events {
        table.row(vec![
            format!("{:.6}", event.time_s),
            event.packet.to_string(),
            event.tcp_stream.to_string(),
            direction_label(event.direction).to_owned(),
            event.kind.as_str().to_owned(),
            event.detail.clone(),
        ]);
    }
    format!("\nEvents:\n{}", table.render("  "))
}

/// The per-interval table of `trace`: counters, then one row per MPTCP connection with the
/// data-level bytes and goodput of each direction so far, and whether it is still open (its ID
/// in `open`). `summaries` are those of `list`'s connections (missing ones show as `-`).
pub fn live(
    stats: &LiveStats,
    elapsed_s: f64,
    list: &MptcpList,
    summaries: &[MptcpSummary],
    open: &[u64],
) -> String {
    let mut out = live_stats(stats, elapsed_s);
    if list.mptcp_connections.is_empty() {
        out.push_str("no MPTCP connections yet\n");
        return out;
    }
    let mut table = Table::new(&[
        ("ID", Align::Right),
        ("CLIENT", Align::Left),
        ("SERVER", Align::Left),
        ("SUBFLOWS", Align::Right),
        ("C->S DATA", Align::Right),
        ("C->S GOODPUT", Align::Right),
        ("S->C DATA", Align::Right),
        ("S->C GOODPUT", Align::Right),
        ("STATE", Align::Left),
    ]);
    for connection in &list.mptcp_connections {
        let summary = summaries.iter().find(|s| s.id == connection.id);
        let direction = |wanted: Direction| {
            summary.and_then(|s| s.directions.iter().find(|d| d.direction == wanted))
        };
        let data = |wanted: Direction| {
            direction(wanted).map_or_else(|| "-".to_owned(), |d| bytes(d.unique_bytes))
        };
        let goodput = |wanted: Direction| {
            direction(wanted).map_or_else(|| "-".to_owned(), |d| rate(d.goodput_bps))
        };
        let first = connection
            .subflows
            .iter()
            .find(|s| s.role == SubflowRole::Initial)
            .or(connection.subflows.first());
        table.row(vec![
            connection.id.to_string(),
            first.map_or_else(|| "-".to_owned(), |s| s.client.to_string()),
            first.map_or_else(|| "-".to_owned(), |s| s.server.to_string()),
            connection.subflows.len().to_string(),
            data(Direction::ClientToServer),
            goodput(Direction::ClientToServer),
            data(Direction::ServerToClient),
            goodput(Direction::ServerToClient),
            if open.contains(&connection.id) {
                "open"
            } else {
                "closed"
            }
            .to_owned(),
        ]);
    }
    out.push_str(&table.render(""));
    out
}

/// The end of a trace's final table: which connections were still open, so that their byte
/// counts are not taken for final ones. Empty when none was.
pub fn still_open(open: &[u64]) -> String {
    if open.is_empty() {
        return String::new();
    }
    let ids: Vec<String> = open.iter().map(u64::to_string).collect();
    format!(
        "\nStill open when the trace ended (byte counts so far, not final): connection{} {}\n",
        if open.len() == 1 { "" } else { "s" },
        ids.join(", ")
    )
}

/// One line of a live run's counters, `elapsed_s` after its start.
pub fn live_stats(stats: &LiveStats, elapsed_s: f64) -> String {
    format!(
        "[{elapsed_s:.1} s] packets seen {}, TCP {}, MPTCP {}; events received {} ({} wire \
         packets), lost {} (ring buffer full {}, userspace {})\n",
        stats.packets_seen,
        stats.tcp_packets,
        stats.mptcp_packets,
        stats.events_received,
        stats.wire_packets,
        stats.ringbuf_full + stats.userspace_lost,
        stats.ringbuf_full,
        stats.userspace_lost,
    )
}

/// `2354149 B (2.35 MB)`: the exact count, then SI (powers of 1000) units from 1000 B on.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["kB", "MB", "GB", "TB", "PB", "EB"];
    if n < 1000 {
        return format!("{n} B");
    }
    // f64 loses precision above 2^53, far below what the 2-decimal human unit shows.
    let mut value = n as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    // 999.996 kB would print as "1000.00 kB"; say 1.00 MB instead.
    if format!("{value:.2}") == "1000.00" && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{n} B ({value:.2} {})", UNITS[unit])
}

/// Bits per second as Mbit/s (10^6 bit/s).
pub fn rate(bits_per_second: f64) -> String {
    format!("{:.3} Mbit/s", bits_per_second / 1e6)
}

/// A 0..=1 fraction as a percentage.
pub fn percent(fraction: f64) -> String {
    format!("{:.1} %", fraction * 100.0)
}

pub fn seconds(s: f64) -> String {
    format!("{s:.3} s")
}

/// A key, shown as decimal and hex.
fn key(key: Option<u64>) -> String {
    key.map_or_else(|| "-".to_owned(), |k| format!("{k} (0x{k:016x})"))
}

fn token(token: Option<u32>) -> String {
    token.map_or_else(|| "-".to_owned(), |t| format!("0x{t:08x} ({t})"))
}

fn optional<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// The KIND column of a subflow.
fn subflow_kind(role: SubflowRole) -> &'static str {
    match role {
        SubflowRole::Initial => "initial",
        SubflowRole::Join => "join",
        SubflowRole::Unknown => "no handshake",
    }
}

/// The WHY column of an orphan subflow.
fn orphan_reason(reason: OrphanReason) -> &'static str {
    match reason {
        OrphanReason::UnknownToken => "MP_JOIN token of no connection",
        OrphanReason::UnknownDsn => "DSN in no single connection",
        OrphanReason::NoHandshakeOrDss => "no handshake, no DSS",
    }
}

fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

fn seen(value: bool) -> &'static str {
    if value { "seen" } else { "missing" }
}

/// `client->server` or `server->client`.
fn direction_label(direction: Direction) -> &'static str {
    match direction {
        Direction::ClientToServer => "client->server",
        Direction::ServerToClient => "server->client",
    }
}

#[derive(Clone, Copy)]
enum Align {
    Left,
    Right,
}

/// Columns separated by two spaces, widths from the widest cell, no trailing blanks.
struct Table {
    headers: Vec<String>,
    aligns: Vec<Align>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(columns: &[(&str, Align)]) -> Self {
        Self {
            headers: columns.iter().map(|(h, _)| (*h).to_owned()).collect(),
            aligns: columns.iter().map(|(_, a)| *a).collect(),
            rows: Vec::new(),
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn render(&self, indent: &str) -> String {
        let width = |cell: &str| cell.chars().count();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (column, cell) in row.iter().enumerate() {
                if let Some(w) = widths.get_mut(column) {
                    *w = (*w).max(width(cell));
                }
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            let mut line = indent.to_owned();
            for (column, cell) in row.iter().enumerate() {
                let w = widths.get(column).copied().unwrap_or(0);
                if column > 0 {
                    line.push_str("  ");
                }
                match self.aligns.get(column).copied().unwrap_or(Align::Left) {
                    Align::Left => {
                        let _ = write!(line, "{cell:<w$}");
                    }
                    Align::Right => {
                        let _ = write!(line, "{cell:>w$}");
                    }
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::summary::{
        EventKind, MptcpEvent, OrphanSubflow, SubflowDirectionSummary, SubflowInfo,
        TcpConnectionInfo,
    };

    fn at(address: &str) -> std::net::SocketAddr {
        address.parse().expect("a test address")
    }

    #[test]
    fn bytes_show_exact_count_and_si_unit() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(1000), "1000 B (1.00 kB)");
        assert_eq!(bytes(2_354_149), "2354149 B (2.35 MB)");
        assert_eq!(bytes(999_999), "999999 B (1.00 MB)");
        assert_eq!(bytes(u64::MAX), "18446744073709551615 B (18.45 EB)");
    }

    #[test]
    fn rates_shares_durations() {
        assert_eq!(rate(12_345_678.0), "12.346 Mbit/s");
        assert_eq!(rate(0.0), "0.000 Mbit/s");
        assert_eq!(percent(0.25), "25.0 %");
        assert_eq!(seconds(1.23456), "1.235 s");
    }

    #[test]
    fn keys_and_tokens_in_both_bases() {
        assert_eq!(key(Some(255)), "255 (0x00000000000000ff)");
        assert_eq!(key(None), "-");
        assert_eq!(token(Some(0xdead_beef)), "0xdeadbeef (3735928559)");
    }

    #[test]
    fn tcp_list_is_aligned() {
        let list = TcpList {
            tcp_connections: vec![
                TcpConnectionInfo {
                    stream: 0,
                    client: at("10.0.0.1:33782"),
                    server: at("10.0.0.2:5201"),
                    packets: 1234,
                    mptcp: true,
                    handshake_seen: true,
                },
                TcpConnectionInfo {
                    stream: 11,
                    client: at("[fd00::1]:40000"),
                    server: at("[fd00::2]:80"),
                    packets: 7,
                    mptcp: false,
                    handshake_seen: false,
                },
            ],
        };
        assert_eq!(
            tcp_list(&list),
            "\
STREAM  CLIENT           SERVER         PACKETS  MPTCP  HANDSHAKE
     0  10.0.0.1:33782   10.0.0.2:5201     1234  yes    seen
    11  [fd00::1]:40000  [fd00::2]:80         7  no     missing
"
        );
        assert_eq!(
            tcp_list(&TcpList {
                tcp_connections: vec![]
            }),
            "no TCP connections\n"
        );
    }

    fn tcp_direction(direction: Direction, wire: u64) -> TcpDirectionSummary {
        TcpDirectionSummary {
            direction,
            packets: 10,
            duration_s: 1.5,
            wire_bytes: wire,
            unique_bytes: wire - 100,
            retransmissions: 1,
            retransmitted_bytes: 100,
        }
    }

    #[test]
    fn tcp_summary_has_one_column_per_direction() {
        let summary = TcpSummary {
            stream: 3,
            client: at("10.0.0.1:1"),
            server: at("10.0.0.2:2"),
            handshake_seen: true,
            directions: vec![
                tcp_direction(Direction::ClientToServer, 2_354_149),
                tcp_direction(Direction::ServerToClient, 1100),
            ],
        };
        assert_eq!(
            tcp_summary(&summary),
            "\
TCP stream 3: client 10.0.0.1:1 -> server 10.0.0.2:2

                             client->server    server->client
packets                                  10                10
duration                            1.500 s           1.500 s
wire bytes              2354149 B (2.35 MB)  1100 B (1.10 kB)
unique bytes            2354049 B (2.35 MB)  1000 B (1.00 kB)
retransmitted segments                    1                 1
retransmitted bytes                   100 B             100 B
"
        );
    }

    fn connection() -> MptcpConnectionInfo {
        MptcpConnectionInfo {
            id: 0,
            version: 0,
            client_key: Some(12345678901234567890),
            server_key: None,
            client_token: Some(0x1234_abcd),
            server_token: None,
            client_idsn: Some(42),
            server_idsn: None,
            fallback: false,
            subflows: vec![
                SubflowInfo {
                    tcp_stream: 0,
                    client: at("10.0.0.1:33782"),
                    server: at("10.0.0.2:5201"),
                    join: false,
                    role: SubflowRole::Initial,
                    backup: false,
                    client_addr_id: None,
                    server_addr_id: None,
                },
                SubflowInfo {
                    tcp_stream: 2,
                    client: at("10.0.1.1:40000"),
                    server: at("10.0.0.2:5201"),
                    join: true,
                    role: SubflowRole::Join,
                    backup: true,
                    client_addr_id: Some(1),
                    server_addr_id: Some(0),
                },
                SubflowInfo {
                    tcp_stream: 4,
                    client: at("10.0.1.1:40001"),
                    server: at("10.0.0.2:5201"),
                    join: false,
                    role: SubflowRole::Unknown,
                    backup: false,
                    client_addr_id: None,
                    server_addr_id: None,
                },
            ],
        }
    }

    #[test]
    fn mptcp_list_shows_keys_subflows_and_orphans() {
        let list = MptcpList {
            mptcp_connections: vec![connection()],
            orphan_subflows: vec![
                OrphanSubflow {
                    tcp_stream: 5,
                    client: at("10.0.2.1:1"),
                    server: at("10.0.0.2:5201"),
                    token: Some(0xdead_beef),
                    reason: OrphanReason::UnknownToken,
                },
                OrphanSubflow {
                    tcp_stream: 6,
                    client: at("10.0.2.1:2"),
                    server: at("10.0.0.2:5201"),
                    token: None,
                    reason: OrphanReason::NoHandshakeOrDss,
                },
            ],
        };
        assert_eq!(
            mptcp_list(&list),
            "\
MPTCP connection 0 (v0), 3 subflows
          KEY                                        TOKEN                   IDSN
  client  12345678901234567890 (0xab54a98ceb1f0ad2)  0x1234abcd (305441741)  42
  server  -                                          -                       -

  STREAM  KIND          CLIENT          SERVER         ADDR IDS (C/S)  BACKUP
       0  initial       10.0.0.1:33782  10.0.0.2:5201  -/-             no
       2  join          10.0.1.1:40000  10.0.0.2:5201  1/0             yes
       4  no handshake  10.0.1.1:40001  10.0.0.2:5201  -/-             no

Orphan subflows (MPTCP options, but no connection in the capture claims them):
  STREAM  CLIENT      SERVER         TOKEN                    WHY
       5  10.0.2.1:1  10.0.0.2:5201  0xdeadbeef (3735928559)  MP_JOIN token of no connection
       6  10.0.2.1:2  10.0.0.2:5201  -                        no handshake, no DSS
"
        );
    }

    fn mptcp_summary_fixture() -> MptcpSummary {
        let subflow = |tcp_stream, unique_bytes, share| SubflowDirectionSummary {
            tcp_stream,
            packets: 100,
            wire_bytes: unique_bytes + 10,
            unique_bytes,
            share,
            reinjected_bytes: 10,
            retransmitted_bytes: 0,
        };
        MptcpSummary {
            id: 1,
            version: 1,
            fallback: false,
            events_dropped: 0,
            directions: vec![
                MptcpDirectionSummary {
                    direction: Direction::ClientToServer,
                    duration_s: 2.0,
                    wire_bytes: 1_000_020,
                    unique_bytes: 1_000_000,
                    acked_bytes: 1_000_000,
                    reinjected_bytes: 20,
                    reinjections: 2,
                    retransmissions: 0,
                    retransmitted_bytes: 0,
                    unmapped_segments: 0,
                    unmapped_bytes: 0,
                    goodput_bps: 4_000_000.0,
                    throughput_bps: 4_000_080.0,
                    subflows: vec![subflow(0, 750_000, 0.75), subflow(2, 250_000, 0.25)],
                },
                MptcpDirectionSummary {
                    direction: Direction::ServerToClient,
                    duration_s: 2.0,
                    wire_bytes: 0,
                    unique_bytes: 0,
                    acked_bytes: 0,
                    reinjected_bytes: 0,
                    reinjections: 0,
                    retransmissions: 0,
                    retransmitted_bytes: 0,
                    unmapped_segments: 0,
                    unmapped_bytes: 0,
                    goodput_bps: 0.0,
                    throughput_bps: 0.0,
                    subflows: vec![subflow(0, 0, 0.0)],
                },
            ],
            events: vec![MptcpEvent {
                time_s: 0.5,
                packet: 17,
                tcp_stream: 0,
                direction: Direction::ServerToClient,
                kind: EventKind::AddAddr,
                detail: "id 1 10.0.1.2".into(),
            }],
        }
    }

    #[test]
    fn mptcp_summary_default_shows_totals_and_shares() {
        assert_eq!(
            mptcp_summary(&mptcp_summary_fixture(), false),
            "\
MPTCP connection 1 (v1)

                              client->server  server->client
duration                             2.000 s         2.000 s
wire bytes               1000020 B (1.00 MB)             0 B
unique data bytes        1000000 B (1.00 MB)             0 B
acknowledged data bytes  1000000 B (1.00 MB)             0 B
reinjected bytes                        20 B             0 B
reinjections                               2               0
retransmitted bytes                      0 B             0 B
retransmitted segments                     0               0
unmapped bytes                           0 B             0 B
goodput                         4.000 Mbit/s    0.000 Mbit/s
throughput                      4.000 Mbit/s    0.000 Mbit/s
subflows                                   2               1

Share of unique data bytes by subflow:
  STREAM  client->server  server->client
       0          75.0 %           0.0 %
       2          25.0 %               -

1 signalling event (--full shows them)
"
        );
    }

    #[test]
    fn mptcp_summary_full_shows_subflow_rows_and_events() {
        let text = mptcp_summary(&mptcp_summary_fixture(), true);
        let expected_tail = "\n\
Subflows, client->server:
  STREAM  PACKETS            WIRE BYTES          UNIQUE BYTES   SHARE  REINJECTED  RETRANSMITTED
       0      100  750010 B (750.01 kB)  750000 B (750.00 kB)  75.0 %        10 B            0 B
       2      100  250010 B (250.01 kB)  250000 B (250.00 kB)  25.0 %        10 B            0 B

Subflows, server->client:
  STREAM  PACKETS  WIRE BYTES  UNIQUE BYTES  SHARE  REINJECTED  RETRANSMITTED
       0      100        10 B           0 B  0.0 %        10 B            0 B

Events:
  TIME (s)  PACKET  STREAM  DIRECTION       EVENT     DETAIL
  0.500000      17       0  server->client  add_addr  id 1 10.0.1.2
";
        assert!(text.ends_with(expected_tail), "{text}");
        assert!(!text.contains("Share of unique"), "{text}");
    }

    #[test]
    fn live_table_has_one_row_per_connection() {
        let list = MptcpList {
            mptcp_connections: vec![connection()],
            orphan_subflows: vec![],
        };
        let mut summary = mptcp_summary_fixture();
        summary.id = 0;
        let stats = LiveStats {
            packets_seen: 10,
            mptcp_packets: 5,
            events_received: 5,
            wire_packets: 7,
            ..Default::default()
        };
        assert_eq!(
            live(&stats, 3.0, &list, &[summary], &[0]),
            "\
[3.0 s] packets seen 10, TCP 0, MPTCP 5; events received 5 (7 wire packets), lost 0 (ring buffer full 0, userspace 0)
ID  CLIENT          SERVER         SUBFLOWS            C->S DATA  C->S GOODPUT  S->C DATA  S->C GOODPUT  STATE
 0  10.0.0.1:33782  10.0.0.2:5201         3  1000000 B (1.00 MB)  4.000 Mbit/s        0 B  0.000 Mbit/s  open
"
        );
    }

    #[test]
    fn still_open_names_the_open_connections() {
        assert_eq!(still_open(&[]), "");
        assert_eq!(
            still_open(&[0]),
            "\nStill open when the trace ended (byte counts so far, not final): connection 0\n"
        );
        assert!(still_open(&[1, 3]).ends_with("connections 1, 3\n"));
    }
}
