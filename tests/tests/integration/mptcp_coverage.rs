//! Every TCP stream that carries MPTCP options appears in `list-mptcp` exactly once, as a
//! subflow of one connection (with its real role) or as an orphan (with why), on every capture
//! at hand; and more MPTCP options in a packet than are decoded is warned about.
//!
//! `tests/data/synthetic-orphans.pcap` is built by [`orphans_capture`] below (the test checks
//! the committed file is exactly that), one stream per way a stream can be an orphan:
//!
//! | packets | stream | what | expected |
//! |---|---|---|---|
//! | 1, 2 | 0 | RST/ACK both ways with MP_TCPRST only (as tcpdump's mptcp-tcprst.pcap) | orphan, `no_handshake_or_dss` |
//! | 3 | 1 | ACK with 7 MP_PRIO options | orphan, `no_handshake_or_dss`; 1 option beyond the 6 decoded |
//! | 4 | 2 | ACK with 100 bytes and a DSS mapping whose DSN no connection has | orphan, `unknown_dsn` |
//! | 5 | 3 | MP_JOIN SYN with token 0xdeadbeef, which no connection has | orphan, `unknown_token` |
//! | 6 | 4 | plain TCP SYN | not listed |

use std::{collections::BTreeSet, path::PathBuf};

use integration_tests::{
    as_u64, data_dir, list_mptcp, list_tcp, shared_pcaps, tracer, tshark_fields,
};
use serde_json::Value;

const ORPHANS: &str = "synthetic-orphans.pcap";

/// Every capture of tests/data, and the shared ones when present.
fn every_capture() -> Vec<PathBuf> {
    let mut dirs = vec![data_dir()];
    dirs.extend(shared_pcaps(
        "every_mptcp_stream_is_listed_exactly_once (shared part)",
    ));
    let mut captures: Vec<PathBuf> = dirs
        .iter()
        .flat_map(|dir| std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == "pcap" || ext == "pcapng")
        })
        .collect();
    captures.sort();
    captures
}

/// Streams with `mptcp: true` in list-tcp.
fn mptcp_streams(list_tcp: &Value) -> Vec<u64> {
    list_tcp["tcp_connections"]
        .as_array()
        .expect("tcp_connections")
        .iter()
        .filter(|s| s["mptcp"] == true)
        .map(|s| as_u64(&s["stream"], "stream"))
        .collect()
}

/// Every stream list-mptcp names (subflows of every connection, then orphans), sorted, with
/// repetitions kept.
fn listed_streams(list_mptcp: &Value) -> Vec<u64> {
    let subflows = list_mptcp["mptcp_connections"]
        .as_array()
        .expect("mptcp_connections")
        .iter()
        .flat_map(|c| c["subflows"].as_array().expect("subflows").iter());
    let orphans = list_mptcp["orphan_subflows"]
        .as_array()
        .expect("orphan_subflows")
        .iter();
    let mut streams: Vec<u64> = subflows
        .chain(orphans)
        .map(|s| as_u64(&s["tcp_stream"], "tcp_stream"))
        .collect();
    streams.sort_unstable();
    streams
}

#[test]
fn every_mptcp_stream_is_listed_exactly_once() {
    let captures = every_capture();
    assert!(captures.len() >= 8, "captures found: {captures:?}");
    for capture in captures {
        let expected = mptcp_streams(&list_tcp(&capture));
        let list = list_mptcp(&capture);
        assert_eq!(
            listed_streams(&list),
            expected,
            "{}: streams in list-mptcp vs streams with MPTCP options",
            capture.display()
        );
        // One initial subflow per connection at most; the role and the join flag agree.
        for connection in list["mptcp_connections"].as_array().expect("connections") {
            let subflows = connection["subflows"].as_array().expect("subflows");
            let initial = subflows.iter().filter(|s| s["role"] == "initial").count();
            assert!(initial <= 1, "{}: {connection}", capture.display());
            for s in subflows {
                assert_eq!(s["join"] == true, s["role"] == "join", "{s}");
            }
        }
    }
}

/// server_2.pcap stream 2: DSS options, no SYN in the capture (tshark), attached to connection
/// 0 by data sequence number: a subflow of role `unknown`, not a second initial one.
#[test]
fn server_2_stream_without_handshake_has_role_unknown() {
    let Some(dir) = shared_pcaps("server_2_stream_without_handshake_has_role_unknown") else {
        return;
    };
    let file = dir.join("server_2.pcap");
    assert!(
        tshark_fields(
            &file,
            "tcp.stream == 2 && tcp.flags.syn == 1",
            &["frame.number"]
        )
        .is_empty()
    );
    let dss = tshark_fields(
        &file,
        "tcp.stream == 2 && tcp.options.mptcp.subtype == 2",
        &["frame.number"],
    );
    assert!(!dss.is_empty(), "tshark sees DSS on stream 2");
    let list = list_mptcp(&file);
    let connection = &list["mptcp_connections"][0];
    let roles: Vec<(u64, &str)> = connection["subflows"]
        .as_array()
        .expect("subflows")
        .iter()
        .map(|s| {
            (
                as_u64(&s["tcp_stream"], "tcp_stream"),
                s["role"].as_str().expect("role"),
            )
        })
        .collect();
    assert_eq!(
        roles.iter().filter(|(_, role)| *role == "initial").count(),
        1,
        "{roles:?}"
    );
    assert!(roles.contains(&(2, "unknown")), "{roles:?}");
    let table = tracer(&["list-mptcp", &file.to_string_lossy()]);
    table.assert_success();
    assert!(
        table.stdout.lines().any(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            cells.starts_with(&["2", "no", "handshake"])
        }),
        "{}",
        table.stdout
    );
}

#[test]
fn orphans_of_every_kind_are_listed_with_why() {
    let file = data_dir().join(ORPHANS);
    let committed = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    assert!(
        committed == orphans_capture(),
        "{ORPHANS} is not what orphans_capture() builds"
    );
    // tshark's view: the streams with MPTCP options, and the 7 options of packet 3.
    let tshark_streams: BTreeSet<u64> = tshark_fields(&file, "mptcp", &["tcp.stream"])
        .iter()
        .map(|row| row[0].parse().expect("a stream number"))
        .collect();
    assert_eq!(tshark_streams, BTreeSet::from([0, 1, 2, 3]));
    let subtypes = tshark_fields(&file, "frame.number == 3", &["tcp.options.mptcp.subtype"]);
    assert_eq!(subtypes[0][0].split(',').count(), 7, "{subtypes:?}");

    let list = list_mptcp(&file);
    assert_eq!(list["mptcp_connections"], Value::Array(vec![]));
    let orphans: Vec<(u64, &str, &Value)> = list["orphan_subflows"]
        .as_array()
        .expect("orphans")
        .iter()
        .map(|o| {
            (
                as_u64(&o["tcp_stream"], "tcp_stream"),
                o["reason"].as_str().expect("reason"),
                &o["token"],
            )
        })
        .collect();
    let null = Value::Null;
    let token = Value::from(0xdead_beef_u32);
    assert_eq!(
        orphans,
        [
            (0, "no_handshake_or_dss", &null),
            (1, "no_handshake_or_dss", &null),
            (2, "unknown_dsn", &null),
            (3, "unknown_token", &token),
        ]
    );
    assert_eq!(listed_streams(&list), mptcp_streams(&list_tcp(&file)));
    // The 7th MP_PRIO of packet 3 is warned about, as the other damage is, and named.
    let run = tracer(&["list-mptcp", &file.to_string_lossy()]);
    run.assert_success();
    assert!(
        run.stderr
            .contains("warning: 1 packet has more MPTCP options than are decoded")
            && run
                .stderr
                .contains("packet 3: 1 MPTCP options beyond the first 6 ignored"),
        "{}",
        run.stderr
    );
}

/// The bytes of `synthetic-orphans.pcap` (see the module documentation): classic pcap,
/// Ethernet, IPv4 10.1.0.1 → 10.1.0.2, checksums computed.
fn orphans_capture() -> Vec<u8> {
    const ACK: u8 = 0x10;
    const RST: u8 = 0x04;
    const SYN: u8 = 0x02;
    let tcprst = [30, 4, 0x80, 2]; // MP_TCPRST, reason 2 (lack of resources)
    let prio: Vec<u8> = [30, 3, 0x51].repeat(7); // 7 × MP_PRIO, backup
    let mut dss = vec![30, 18, 0x20, 0x0c]; // DSS: mapping present, 8-byte DSN
    dss.extend(0x1122_3344_5566_7788_u64.to_be_bytes());
    dss.extend(1_u32.to_be_bytes()); // subflow sequence number
    dss.extend(100_u16.to_be_bytes()); // data-level length
    let mut join = vec![30, 12, 0x10, 1]; // MP_JOIN SYN, address id 1
    join.extend(0xdead_beef_u32.to_be_bytes());
    join.extend(0x0102_0304_u32.to_be_bytes()); // nonce
    let packets = [
        segment(40000, 443, 1000, ACK | RST, &tcprst, 0, false),
        segment(40000, 443, 5000, ACK | RST, &tcprst, 0, true),
        segment(40001, 443, 2000, ACK, &prio, 0, false),
        segment(40002, 443, 3000, ACK, &dss, 100, false),
        segment(40003, 443, 4000, SYN, &join, 0, false),
        segment(40004, 80, 6000, SYN, &[], 0, false),
    ];
    let mut file = Vec::new();
    // Header: magic, version 2.4, zone 0, sigfigs 0, snaplen 65535, link type 1 (Ethernet).
    file.extend(0xa1b2_c3d4_u32.to_le_bytes());
    file.extend(2_u16.to_le_bytes());
    file.extend(4_u16.to_le_bytes());
    file.extend([0; 8]);
    file.extend(65535_u32.to_le_bytes());
    file.extend(1_u32.to_le_bytes());
    for (i, frame) in packets.iter().enumerate() {
        let len = u32::try_from(frame.len()).expect("small frame");
        file.extend(1_700_000_000_u32.to_le_bytes());
        file.extend((u32::try_from(i).expect("few packets") * 1000).to_le_bytes());
        file.extend(len.to_le_bytes());
        file.extend(len.to_le_bytes());
        file.extend(frame);
    }
    file
}

/// One Ethernet frame: 10.1.0.1:`sport` → 10.1.0.2:`dport` (swapped when `reverse`), TCP
/// `flags` and `options` (padded with NOPs), `payload` zero bytes.
fn segment(
    sport: u16,
    dport: u16,
    seq: u32,
    flags: u8,
    options: &[u8],
    payload: usize,
    reverse: bool,
) -> Vec<u8> {
    let (mut src, mut dst) = ([10, 1, 0, 1], [10, 1, 0, 2]);
    let (mut sport, mut dport) = (sport, dport);
    if reverse {
        (src, dst) = (dst, src);
        (sport, dport) = (dport, sport);
    }
    let mut tcp = Vec::new();
    tcp.extend(sport.to_be_bytes());
    tcp.extend(dport.to_be_bytes());
    tcp.extend(seq.to_be_bytes());
    tcp.extend(if flags & 0x10 != 0 { 77_u32 } else { 0 }.to_be_bytes()); // ack
    let options_len = options.len().div_ceil(4) * 4;
    tcp.push(u8::try_from((20 + options_len) / 4 * 16).expect("short options"));
    tcp.push(flags);
    tcp.extend(64000_u16.to_be_bytes()); // window
    tcp.extend([0, 0, 0, 0]); // checksum (below), urgent pointer
    tcp.extend(options);
    tcp.resize(20 + options_len, 1); // NOP padding
    tcp.resize(tcp.len() + payload, 0);
    let tcp_len = u16::try_from(tcp.len()).expect("small segment");
    let mut pseudo = Vec::new();
    pseudo.extend(src);
    pseudo.extend(dst);
    pseudo.extend([0, 6]);
    pseudo.extend(tcp_len.to_be_bytes());
    pseudo.extend(&tcp);
    let checksum = internet_checksum(&pseudo);
    tcp[16..18].copy_from_slice(&checksum.to_be_bytes());

    let mut ip = vec![0x45, 0];
    ip.extend((20 + tcp_len).to_be_bytes());
    ip.extend([0, 1, 0x40, 0, 64, 6, 0, 0]); // id 1, DF, TTL 64, TCP, checksum (below)
    ip.extend(src);
    ip.extend(dst);
    let checksum = internet_checksum(&ip);
    ip[10..12].copy_from_slice(&checksum.to_be_bytes());

    let mut frame = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00];
    frame.extend(ip);
    frame.extend(tcp);
    frame
}

/// RFC 1071: the one's complement of the one's complement sum of 16-bit words.
fn internet_checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(u16::try_from(sum).unwrap_or(u16::MAX))
}

/// Writes `synthetic-orphans.pcap` (run with `--ignored` after changing `orphans_capture`).
#[test]
#[ignore = "writes tests/data; run by hand after changing orphans_capture"]
fn write_orphans_capture() {
    std::fs::write(data_dir().join(ORPHANS), orphans_capture()).expect("writing the capture");
}
