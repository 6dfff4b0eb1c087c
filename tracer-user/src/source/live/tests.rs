//! Tests that need root: they load the programs, and the end-to-end ones build a lab (the
//! mptcp-lab crate: two network namespaces joined by a veth pair), run transfers between them
//! and compare the events with what tcpdump captured on the same interface (dissected by
//! tshark). Without root, a tool or the eBPF object they report themselves skipped
//! (`mptcp_lab::skip`).
//!
//! The analysis is developed elsewhere, so these tests collect the `RawPacket`s themselves
//! (`Recorder`) instead of feeding an `Analyzer`.

use std::{
    cell::{Cell, RefCell},
    collections::BTreeMap,
    io::{BufRead as _, BufReader},
    net::IpAddr,
    ops::ControlFlow,
    path::PathBuf,
    process::{Command, Stdio},
    rc::Rc,
    sync::{
        Mutex,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    thread,
    time::Duration,
};

use mptcp_lab::{
    CaptureSpec, IpVersion, Lab, LabConfig, Side, TransferSpec, Transport,
    skip::{self, skip},
};
use tracer_common::{CAPTURE_LEN, FilterConfig};

use super::{
    AttachMode, LiveError, LiveStats, TraceOptions, capture::CaptureWriter, monotonic_offset_ns,
    privileges, run, verifier_stats,
};
use crate::source::{Direction, LinkType, RawPacket};

/// The budget the brief sets for each program.
const MAX_VERIFIED_INSNS: u32 = 50_000;

/// Skips the test unless the programs can be loaded here; true if it skipped.
fn skipped_unless_root(test: &str) -> bool {
    if super::object_bytes().is_err() {
        skip(test, "built without its eBPF object (the `ebpf` feature)");
        return true;
    }
    if skip::is_root() && privileges::can_trace() {
        return false;
    }
    skip(test, "needs root (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN)");
    true
}

#[cfg(not(feature = "ebpf"))]
#[test]
fn built_without_ebpf_says_so() {
    let options = TraceOptions {
        interfaces: vec!["lo".into()],
        interval: Duration::from_secs(1),
        ..TraceOptions::default()
    };
    let error = crate::live::trace(&options, &mut |_, _| ControlFlow::Continue(()))
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        error.as_deref(),
        Some(
            "this mptcp-tracer was built without its eBPF object (the `ebpf` feature); run `cargo xtask \
             setup` and rebuild to trace live"
        )
    );
    assert!(matches!(verifier_stats(), Err(LiveError::BuiltWithoutEbpf)));
}

#[test]
fn verifier_budget() {
    if skipped_unless_root("verifier_budget") {
        return;
    }
    let counts = verifier_stats().expect("programs load");
    assert_eq!(
        counts.len(),
        2 * super::verified_settings().len(),
        "{counts:?}"
    );
    for (name, insns) in &counts {
        println!("{name}: {insns} verified instructions");
        assert!(
            *insns < MAX_VERIFIED_INSNS,
            "{name}: {insns} verified instructions"
        );
        // A program the verifier walked in a handful of instructions cannot hold the parser.
        assert!(*insns > 100, "{name}: only {insns} verified instructions");
    }
}

/// One segment as the tests compare them: what the event (or tshark's dissection) says.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Seen {
    outbound: bool,
    ipv6: bool,
    seq: u32,
    ack: u32,
    /// Length from the IP header on: the event's `orig_len`, tshark's frame length minus L2.
    ip_len: u32,
}

#[derive(Default)]
struct Recorder {
    seen: Vec<Seen>,
    /// Each event's wire packets (`segments`) and bytes, in the order of `seen`.
    details: Vec<(u32, Vec<u8>)>,
    problems: Vec<String>,
}

impl super::EventSink for Recorder {
    fn packet(&mut self, raw: &RawPacket<'_>) {
        if raw.link_type != LinkType::Raw || raw.direction == Direction::Unknown {
            self.problems.push(format!(
                "packet {}: {:?} {:?}",
                raw.number, raw.link_type, raw.direction
            ));
        }
        // Just enough IP/TCP parsing to identify the segment (the decoder is tested elsewhere;
        // the test traffic has no IPv6 extension headers).
        let data = raw.data;
        let tcp_off = match data.first().map(|b| b >> 4) {
            Some(4) => Some(usize::from(data[0] & 0x0f) * 4),
            Some(6) => {
                // Hop-by-hop, destination options and fragment headers, as crafted_frames sends.
                let (mut next, mut off) = (data.get(6).copied(), 40);
                while let Some(kind @ (0 | 60 | 44)) = next {
                    next = data.get(off).copied();
                    off += match (kind, data.get(off + 1)) {
                        (44, _) => 8,
                        (_, Some(&len)) => (usize::from(len) + 1) * 8,
                        (_, None) => break,
                    };
                }
                (next == Some(6)).then_some(off)
            }
            _ => None,
        };
        let Some(tcp_off) = tcp_off else {
            self.problems
                .push(format!("packet {}: not IP/TCP: {:02x?}", raw.number, data));
            return;
        };
        let Some(tcp) = data.get(tcp_off..tcp_off + 20) else {
            self.problems.push(format!(
                "packet {}: {} bytes captured",
                raw.number,
                data.len()
            ));
            return;
        };
        let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        self.seen.push(Seen {
            outbound: raw.direction == Direction::Outbound,
            ipv6: data[0] >> 4 == 6,
            seq: be32(&tcp[4..8]),
            ack: be32(&tcp[8..12]),
            ip_len: raw.orig_len,
        });
        self.details.push((raw.segments, data.to_vec()));
    }
}

/// (name, ifindex, netns) as `add_interface` got them.
type Declared = (String, u32, Option<String>);
/// (interface id, inbound, captured bytes, original length) as `write_packet` got them.
type Written = (u32, bool, usize, u32);

/// A `CaptureWriter` that remembers what it was asked to write.
#[derive(Default, Clone)]
struct MemoryWriter {
    interfaces: Rc<RefCell<Vec<Declared>>>,
    packets: Rc<RefCell<Vec<Written>>>,
    flushes: Rc<Cell<u32>>,
}

impl CaptureWriter for MemoryWriter {
    fn add_interface(
        &mut self,
        name: &str,
        ifindex: u32,
        netns: Option<&str>,
    ) -> Result<u32, String> {
        let mut interfaces = self.interfaces.borrow_mut();
        interfaces.push((name.to_owned(), ifindex, netns.map(str::to_owned)));
        Ok(interfaces.len() as u32 - 1)
    }

    fn write_packet(
        &mut self,
        iface_id: u32,
        _ts_ns: u64,
        inbound: bool,
        data: &[u8],
        orig_len: u32,
        _gso_segs: u16,
    ) -> Result<(), String> {
        self.packets
            .borrow_mut()
            .push((iface_id, inbound, data.len(), orig_len));
        Ok(())
    }

    fn flush(&mut self) -> Result<(), String> {
        self.flushes.set(self.flushes.get() + 1);
        Ok(())
    }
}

/// Runs a command on the host (tshark, bpftool, sysctl) and returns its stdout.
fn sh(args: &[&str]) -> String {
    let output = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs a command in the client's namespace and returns its stdout.
fn in_client(lab: &Lab, args: &[&str]) -> String {
    lab.exec(Side::Client, args[0], &args[1..])
        .unwrap_or_else(|error| panic!("{args:?}: {error}"))
}

/// One veth path between a client and a server namespace. Offloads stay on and the path is not
/// rate-limited: TC and tcpdump then see the same (GSO) packets, which the comparison needs.
fn one_path_lab() -> Lab {
    Lab::new(&LabConfig {
        paths: 1,
        disable_offloads: false,
        rate_mbit: None,
        ..LabConfig::default()
    })
    .expect("building the lab")
}

fn client_if(lab: &Lab) -> String {
    lab.interface(Side::Client, 1).expect("path 1")
}

fn address(lab: &Lab, side: Side, version: IpVersion) -> String {
    lab.address(side, 1, version).expect("path 1").to_string()
}

fn tc_state(lab: &Lab, dev: &str) -> String {
    [
        in_client(lab, &["tc", "qdisc", "show", "dev", dev]),
        in_client(lab, &["tc", "filter", "show", "dev", dev, "ingress"]),
        in_client(lab, &["tc", "filter", "show", "dev", dev, "egress"]),
        in_client(lab, &["bpftool", "net", "show", "dev", dev]),
    ]
    .join("\n")
}

/// A transfer of `bytes` from client to server on path 1.
fn transfer(transport: Transport, ip_version: IpVersion, port: u16, bytes: u64) -> TransferSpec {
    TransferSpec {
        transport,
        ip_version,
        port,
        client_sends: bytes,
        ..TransferSpec::default()
    }
}

/// Runs a transfer to the end and checks the server received every byte.
fn run_transfer(lab: &Lab, spec: &TransferSpec) {
    let counts = lab.transfer(spec).expect("the transfer");
    assert_eq!(
        counts.server_received, spec.client_sends,
        "server received every byte"
    );
}

/// What one traced run produced, next to tshark's view of tcpdump's capture.
struct Traced {
    recorder: Recorder,
    stats: LiveStats,
    warnings: Vec<String>,
    intervals: u32,
    /// Segments of tcpdump's capture that pass `truth_filter`.
    truth: Vec<Seen>,
    /// "N packets dropped by kernel" from tcpdump's report: on a busy machine tcpdump's socket
    /// buffer can overflow, then its capture is not the whole truth.
    tcpdump_dropped: usize,
    written: MemoryWriter,
}

/// Traces `options` while `transfers` run (one after another, once the programs are attached),
/// then `during`, and tcpdump captures `capture_if` in the client's namespace.
fn trace_transfers(
    lab: &Lab,
    options: &TraceOptions,
    capture_if: &str,
    local_addrs: &[&str],
    truth_filter: &str,
    transfers: Vec<TransferSpec>,
    during: impl FnOnce() + Send,
) -> Traced {
    let dir = tempdir();
    let pcap = dir.join("capture.pcap");
    let pcap_str = pcap.to_str().expect("utf-8 path").to_owned();
    let tcpdump = lab
        .start_capture(&CaptureSpec {
            side: Side::Client,
            interface: capture_if,
            snaplen: 0,
            file: &pcap,
            link_type: None,
            // No capture filter: "tcp" would miss VLAN-tagged frames; tshark's filter selects.
            filter: None,
            buffer_kib: Some(32_768),
        })
        .expect("starting tcpdump");

    let mut recorder = Recorder::default();
    let written = MemoryWriter::default();
    let mut intervals = 0;
    let looping = AtomicBool::new(false);
    let (result, traffic) = thread::scope(|scope| {
        let looping = &looping;
        let traffic = scope.spawn(move || {
            wait_until_looping(looping);
            for spec in &transfers {
                run_transfer(lab, spec);
            }
            during();
        });
        let result = run(
            options,
            &mut recorder,
            || Ok(Some(Box::new(written.clone()) as Box<dyn CaptureWriter>)),
            &mut |_, _| {
                intervals += 1;
                looping.store(true, Ordering::Relaxed);
                ControlFlow::Continue(())
            },
        );
        (result, traffic.join())
    });
    // tcpdump may drop packets on a busy machine: the comparison allows for what it reports.
    let tcpdump_dropped = tcpdump
        .stop_counting()
        .expect("tcpdump's report")
        .dropped_by_kernel;
    let (stats, warnings) = result.expect("tracing works");
    if let Err(panic) = traffic {
        std::panic::resume_unwind(panic);
    }
    let fields = sh(&[
        "tshark",
        "-r",
        &pcap_str,
        "-Y",
        truth_filter,
        "-T",
        "fields",
        "-e",
        "ip.src",
        "-e",
        "ipv6.src",
        "-e",
        "tcp.seq_raw",
        "-e",
        "tcp.ack_raw",
        "-e",
        "frame.len",
        "-e",
        "eth.type",
        "-e",
        "vlan.id",
        "-e",
        "ieee8021ad.id",
    ]);
    let truth = fields
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            let num = |i: usize| {
                f[i].parse::<u32>()
                    .unwrap_or_else(|e| panic!("{line:?}: {e}"))
            };
            let source = if f[0].is_empty() { f[1] } else { f[0] };
            // 802.1Q tags are `vlan.id`, 802.1ad (QinQ outer) tags `ieee8021ad.id`.
            let vlan_tags = [f[6], f[7]]
                .iter()
                .flat_map(|ids| ids.split(','))
                .filter(|id| !id.is_empty())
                .count() as u32;
            let l2 = if f[5].is_empty() {
                0
            } else {
                14 + 4 * vlan_tags
            };
            Seen {
                outbound: local_addrs.contains(&source),
                ipv6: f[0].is_empty(),
                seq: num(2),
                ack: num(3),
                ip_len: num(4) - l2,
            }
        })
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    Traced {
        recorder,
        stats,
        warnings,
        intervals,
        truth,
        tcpdump_dropped: usize::try_from(tcpdump_dropped).unwrap_or(usize::MAX),
        written,
    }
}

/// A scratch directory of this test process.
fn tempdir() -> PathBuf {
    static SEQUENCE: AtomicU32 = AtomicU32::new(0);
    let n = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("mptcp-tracer-live-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Skips the test unless it can load the programs and build a lab with its tools; true if it
/// skipped.
fn skipped_without_tools(test: &str) -> bool {
    skipped_unless_root(test)
        || skip::skipped_without_tools(test, &["tcpdump", "tshark", "python3", "tc", "bpftool"])
}

fn per_direction(seen: &[Seen]) -> BTreeMap<&'static str, usize> {
    let mut counts = BTreeMap::new();
    for s in seen {
        *counts
            .entry(if s.outbound { "egress" } else { "ingress" })
            .or_insert(0) += 1;
    }
    counts
}

/// Waits until the tracer's loop has run its first interval (`looping`), so its programs are
/// attached: for 20 s at most. A fixed 0.7 s was the wait before, too short on a loaded CI
/// machine, where the crafted frames went out before the programs were there.
fn wait_until_looping(looping: &AtomicBool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !looping.load(Ordering::Relaxed) {
        assert!(
            std::time::Instant::now() < deadline,
            "the tracer did not start within 20 s"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// The events are exactly tcpdump's segments (as multisets: the ring buffer interleaves CPUs).
fn assert_same_segments(test: &str, traced: &Traced, load_errors: u64) {
    println!(
        "{test}: events per direction {:?}; tcpdump+tshark {:?}; {:?}; {} on_interval calls",
        per_direction(&traced.recorder.seen),
        per_direction(&traced.truth),
        traced.stats,
        traced.intervals,
    );
    assert!(
        traced.recorder.problems.is_empty(),
        "{:?}",
        traced.recorder.problems
    );
    assert!(!traced.truth.is_empty(), "the capture has matching packets");
    let mut ours = traced.recorder.seen.clone();
    let mut theirs = traced.truth.clone();
    ours.sort();
    theirs.sort();
    if ours != theirs {
        let only = |a: &[Seen], b: &[Seen]| -> Vec<Seen> {
            let mut rest = b.to_vec();
            a.iter()
                .filter(|s| match rest.iter().position(|r| r == *s) {
                    Some(i) => {
                        rest.swap_remove(i);
                        false
                    }
                    None => true,
                })
                .cloned()
                .collect()
        };
        let (ours_only, theirs_only) = (only(&ours, &theirs), only(&theirs, &ours));
        // What tcpdump dropped we may have and it not; never the other way round.
        if !theirs_only.is_empty() || ours_only.len() > traced.tcpdump_dropped {
            panic!(
                "events differ from tcpdump's segments (tcpdump dropped {}); only in events: \
                 {ours_only:?}; only in tcpdump: {theirs_only:?}",
                traced.tcpdump_dropped
            );
        }
        println!(
            "{test}: tcpdump dropped {} packets; {} of them had MPTCP options and are events",
            traced.tcpdump_dropped,
            ours_only.len()
        );
    }
    let stats = &traced.stats;
    assert_eq!(stats.events_received, ours.len() as u64);
    assert_eq!(stats.events_emitted, stats.events_received);
    assert_eq!(
        (stats.ringbuf_full, stats.userspace_lost, stats.load_errors),
        (0, 0, load_errors)
    );
    assert!(
        stats.packets_seen >= stats.tcp_packets && stats.tcp_packets >= stats.mptcp_packets,
        "{stats:?}"
    );
}

fn options(netns: &str, interfaces: &[&str], attach: AttachMode) -> TraceOptions {
    TraceOptions {
        interfaces: interfaces.iter().map(ToString::to_string).collect(),
        netns: Some(netns.to_owned()),
        duration: Some(Duration::from_secs(4)),
        interval: Duration::from_millis(500),
        attach,
        write: Some(PathBuf::from("/nonexistent/unused.pcapng")),
        ..TraceOptions::default()
    }
}

fn check_mptcp_transfer(attach: AttachMode, test: &str) {
    if skipped_without_tools(test) {
        return;
    }
    let lab = one_path_lab();
    let (namespace, client_if) = (lab.namespace(Side::Client).to_owned(), client_if(&lab));
    let before = tc_state(&lab, &client_if);
    let traced = trace_transfers(
        &lab,
        &options(&namespace, &[&client_if], attach),
        &client_if,
        &[&address(&lab, Side::Client, IpVersion::V4)],
        "tcp.option_kind == 30",
        vec![transfer(Transport::Mptcp, IpVersion::V4, 5201, 3_000_000)],
        || {},
    );
    let after = tc_state(&lab, &client_if);
    assert_same_segments(test, &traced, 0);
    assert!(traced.warnings.is_empty(), "{:?}", traced.warnings);
    let stats = &traced.stats;
    assert_eq!(
        stats.mptcp_packets, stats.events_emitted,
        "no filter: every MPTCP packet is an event"
    );
    // 4 s at 0.5 s intervals.
    assert!(
        (6..=9).contains(&traced.intervals),
        "{} on_interval calls",
        traced.intervals
    );

    // The -w path got every event, with the interface, direction and lengths.
    let ifindex: u32 = in_client(
        &lab,
        &["cat", &format!("/sys/class/net/{client_if}/ifindex")],
    )
    .trim()
    .parse()
    .expect("ifindex");
    assert_eq!(
        *traced.written.interfaces.borrow(),
        [(client_if, ifindex, Some(namespace))]
    );
    let packets = traced.written.packets.borrow();
    let mut written: Vec<(bool, u32)> = packets.iter().map(|p| (!p.1, p.3)).collect();
    let mut seen: Vec<(bool, u32)> = traced
        .recorder
        .seen
        .iter()
        .map(|s| (s.outbound, s.ip_len))
        .collect();
    written.sort();
    seen.sort();
    assert_eq!(written, seen);
    assert!(packets.iter().all(|p| p.0 == 0 && p.2 <= CAPTURE_LEN));
    assert!(
        traced.written.flushes.get() >= 4,
        "flushed {} times in 4 s",
        traced.written.flushes.get()
    );

    assert_eq!(before, after, "TC state restored after detach");
}

#[test]
fn tcx_events_match_tcpdump() {
    check_mptcp_transfer(AttachMode::Tcx, "tcx_events_match_tcpdump");
}

#[test]
fn clsact_events_match_tcpdump() {
    check_mptcp_transfer(AttachMode::Netlink, "clsact_events_match_tcpdump");
}

/// `--all-tcp` with `--port`, then `--addr` with an IPv6 address, over a plain TCP IPv4
/// transfer and an MPTCP IPv6 transfer.
#[test]
fn filters_all_tcp_and_ipv6() {
    let test = "filters_all_tcp_and_ipv6";
    if skipped_without_tools(test) {
        return;
    }
    let lab = one_path_lab();
    let (namespace, client_if) = (lab.namespace(Side::Client).to_owned(), client_if(&lab));
    let plain_tcp = transfer(Transport::Tcp, IpVersion::V4, 5202, 500_000);
    let mptcp6 = transfer(Transport::Mptcp, IpVersion::V6, 5201, 500_000);
    let (client4, client6) = (
        address(&lab, Side::Client, IpVersion::V4),
        address(&lab, Side::Client, IpVersion::V6),
    );
    let locals = [client4.as_str(), client6.as_str()];

    let port_only = TraceOptions {
        all_tcp: true,
        port: Some(5202),
        ..options(&namespace, &[&client_if], AttachMode::Auto)
    };
    let traced = trace_transfers(
        &lab,
        &port_only,
        &client_if,
        &locals,
        "tcp.port == 5202",
        vec![plain_tcp.clone(), mptcp6.clone()],
        || {},
    );
    assert_same_segments(&format!("{test} (--all-tcp --port 5202)"), &traced, 0);
    assert!(traced.recorder.seen.iter().all(|s| !s.ipv6));
    assert!(
        traced.stats.filtered > 0,
        "the MPTCP IPv6 transfer was filtered out"
    );
    assert!(
        traced.stats.tcp_packets > traced.stats.mptcp_packets,
        "{:?}",
        traced.stats
    );

    let server6 = address(&lab, Side::Server, IpVersion::V6);
    let v6_only = TraceOptions {
        addr: Some(server6.parse::<IpAddr>().expect("IPv6 address")),
        ..options(&namespace, &[&client_if], AttachMode::Auto)
    };
    let traced = trace_transfers(
        &lab,
        &v6_only,
        &client_if,
        &locals,
        "ipv6 && tcp.option_kind == 30",
        vec![
            TransferSpec {
                port: 5203,
                ..plain_tcp
            },
            TransferSpec {
                port: 5204,
                ..mptcp6
            },
        ],
        || {},
    );
    assert_same_segments(&format!("{test} (--addr {server6})"), &traced, 0);
    assert!(traced.recorder.seen.iter().all(|s| s.ipv6));
}

/// Builds packets by hand and sends them: `frames IFNAME` sends Ethernet frames out of IFNAME
/// with an AF_PACKET socket (tags in the frame, IPv4 options, IPv6 extension headers, packets
/// that must not match); `acks IFNAME` and `same-slot IFNAME` send pure DATA_ACKs of two flows
/// out of IFNAME (see `crafted_acks_fold` and the test after it); `tun NAME ADDR PEER` creates a
/// TUN device (no link-layer header), then on a line on stdin writes packets into it (ingress)
/// and sends packets out of it (egress).
const CRAFT: &str = r#"
import fcntl, os, socket, struct, sys, time

def tcp(options, seq, flags=0x10, ack=7, sport=40000):
    options += b"\x00" * (-len(options) % 4)
    return struct.pack("!HHIIBBHHH", sport, 5201, seq, ack, (5 + len(options) // 4) << 4, flags,
                       65535, 0, 0) + options

def data_ack(i, seq, dss_len=8, dss_flags=0x01, flags=0x10, sport=40000):
    # The i-th pure DATA_ACK of flow (sport, seq): acknowledging 100 bytes more each time.
    dss = bytes([30, dss_len, 0x20, dss_flags]) + (5000 + 100 * i).to_bytes(dss_len - 4, "big")
    ts = bytes([1, 1, 8, 10]) + struct.pack("!II", 70 + i, 90 + i)
    return ipv4("10.99.0.1", "10.99.0.2", tcp(ts + dss, seq, flags, 1000 + 100 * i, sport))

def fold_slot(sport, egress=True):
    # The classifiers' `fold_slot`: the ports' four bytes read as a little-endian word, mixed.
    ports = int.from_bytes(struct.pack("!HH", sport, 5201), "little")
    mixed = ports ^ (ports >> 16)
    return ((mixed ^ (mixed >> 8)) ^ (8 if egress else 0)) & 15

DSS = bytes([30, 8, 0x20, 0x01, 0, 0, 0, 1])
TS = bytes([1, 1, 8, 10]) + bytes(8)

def ipv4(src, dst, payload, options=b"", proto=6, frag=0, ihl=None):
    ihl = ihl if ihl is not None else 5 + len(options) // 4
    return struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, 20 + len(options) + len(payload), 1, frag,
                       64, proto, 0, socket.inet_aton(src), socket.inet_aton(dst)) + options + payload

def ipv6(src, dst, payload, ext=()):
    chain, body = [], b""
    for kind, data in ext:
        chain.append((kind, data))
    nexts = [k for k, _ in chain] + [6]
    for i, (kind, data) in enumerate(chain):
        body += bytes([nexts[i + 1]]) + data
    body += payload
    return struct.pack("!IHBB16s16s", 0x60000000, len(body), nexts[0], 64,
                       socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, dst)) + body

HOPOPTS = (0, bytes([0, 1, 4, 0, 0, 0, 0]))        # len 0 (8 bytes), PadN
DSTOPTS = (60, bytes([1, 1, 12]) + bytes(12))      # len 1 (16 bytes), PadN
FRAG0 = (44, bytes([0, 0, 0, 0, 0, 0, 42]))        # offset 0, M=0

def eth(payload, ethertype, tags=()):
    head = bytes.fromhex("020000000099") + bytes.fromhex("020000000001")
    for tpid, vid in tags:
        head += struct.pack("!HH", tpid, vid)
    return head + struct.pack("!H", ethertype) + payload

def frames():
    v4 = lambda payload, **kw: ipv4("10.99.0.1", "10.99.0.2", payload, **kw)
    v6 = lambda payload, ext=(): ipv6("fd99::1", "fd99::2", payload, ext)
    qinq = ((0x88a8, 100), (0x8100, 10))
    return [
        eth(v4(tcp(TS + DSS, 1)), 0x0800),                                   # kept
        eth(v4(tcp(DSS, 2), options=bytes([1] * 8)), 0x0800),                # kept: IHL 7
        eth(v4(tcp(TS + DSS, 3)), 0x0800, ((0x8100, 10),)),                  # kept: 802.1Q
        eth(v4(tcp(TS + DSS, 4)), 0x0800, qinq),                             # kept: QinQ
        eth(v6(tcp(TS + DSS, 5), (HOPOPTS, DSTOPTS, FRAG0)), 0x86dd, qinq),  # kept: IPv6 ext
        eth(v6(tcp(DSS, 6)), 0x86dd),                                        # kept
        eth(v4(tcp(bytes([1] * 30) + DSS, 7)), 0x0800),                      # kept: 40 option bytes
        eth(v4(tcp(TS, 8)), 0x0800),                                         # TCP, no MPTCP
        eth(v4(tcp(TS + DSS, 9), frag=100), 0x0800),                         # non-first fragment
        eth(v4(tcp(TS + DSS, 10), proto=17), 0x0800),                        # UDP
        eth(v4(tcp(TS + DSS, 11), ihl=4), 0x0800),                           # bad IHL: malformed
        eth(bytes(46), 0x0806),                                              # not IP
        eth(v4(tcp(bytes([5, 250]) + bytes(6) + DSS, 12)), 0x0800),          # bogus option length
    ]

if sys.argv[1] == "files":
    for i, frame in enumerate(frames()):
        with open(f"{sys.argv[2]}/frame{i}", "wb") as f:
            f.write(frame)
elif sys.argv[1] == "acks":
    # Two flows of 20 pure DATA_ACKs (their own seq), acknowledging 100 bytes more each time:
    # a 4-byte DATA_ACK (DSS length 8, flag A), then an 8-byte one (length 12, flags A and a).
    # The 11th has PSH, which no fold takes. Prints each flow's last IP packet in hex.
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
    s.bind((sys.argv[2], 0x0800))
    for seq, dss_len, dss_flags in ((500, 8, 0x01), (600, 12, 0x03)):
        for i in range(20):
            packet = data_ack(i, seq, dss_len, dss_flags, 0x18 if i == 10 else 0x10)
            s.send(eth(packet, 0x0800))
        print(packet.hex(), flush=True)
elif sys.argv[1] == "same-slot":
    # Two flows whose ports give the same fold slot, 20 pure DATA_ACKs each, taking turns.
    # Prints the second flow's source port.
    other = next(p for p in range(40001, 65536) if fold_slot(p) == fold_slot(40000))
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
    s.bind((sys.argv[2], 0x0800))
    for i in range(20):
        for seq, sport in ((700, 40000), (800, other)):
            s.send(eth(data_ack(i, seq, sport=sport), 0x0800))
    print(other, flush=True)
elif sys.argv[1] == "frames":
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    s.bind((sys.argv[2], 0))
    for _ in range(3):
        for frame in frames():
            s.send(frame)
else:
    name, addr, peer = sys.argv[2:5]
    tun = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(tun, 0x400454ca, struct.pack("16sH", name.encode(), 0x0001 | 0x1000))  # TUN, NO_PI
    os.system(f"ip addr add {addr}/24 dev {name} && ip link set {name} up")
    print("ready", flush=True)
    sys.stdin.readline()
    for i in range(3):
        os.write(tun, ipv4(peer, addr, tcp(TS + DSS, 100 + i)))               # ingress, kept
        os.write(tun, ipv4(peer, addr, tcp(TS, 200 + i)))                     # ingress, no MPTCP
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    for i in range(3):
        raw.sendto(ipv4(addr, peer, tcp(TS + DSS, 300 + i)), (peer, 0))      # egress, kept
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262)               # egress MP_CAPABLE SYN
    c.setblocking(False)
    try:
        c.connect((peer, 5201))
    except BlockingIOError:
        pass
    time.sleep(0.5)
    print("done", flush=True)
"#;

/// Hand-made frames on a veth: VLAN tags in the frame (802.1Q and 802.1ad + 802.1Q), IPv4
/// options, IPv6 extension headers, a full 40-byte option list, and packets that must not give
/// events (no MPTCP option, non-first fragment, UDP, bad IHL, ARP).
#[test]
fn crafted_frames() {
    let test = "crafted_frames";
    if skipped_without_tools(test) {
        return;
    }
    let lab = one_path_lab();
    let (namespace, client_if) = (lab.namespace(Side::Client).to_owned(), client_if(&lab));
    let traced = trace_transfers(
        &lab,
        &options(&namespace, &[&client_if], AttachMode::Auto),
        &client_if,
        &["10.99.0.1", "fd99::1"],
        "tcp.option_kind == 30",
        Vec::new(),
        || {
            in_client(&lab, &["python3", "-c", CRAFT, "frames", &client_if]);
        },
    );
    assert_same_segments(test, &traced, 3);
    // Per round: 7 frames with MPTCP; the TCP ones without it (one whose option walk stops at a
    // length running past the header), the fragment, the UDP packet and the bad IHL give none.
    // The bad IHL is the one malformed packet.
    let sequences: Vec<u32> = traced.recorder.seen.iter().map(|s| s.seq).collect();
    for seq in 1..=7 {
        assert_eq!(
            sequences.iter().filter(|&&s| s == seq).count(),
            3,
            "seq {seq}: {sequences:?}"
        );
    }
    assert_eq!(traced.recorder.seen.len(), 21);
    assert_eq!(traced.recorder.seen.iter().filter(|s| s.ipv6).count(), 6);
    assert!(traced.stats.tcp_packets >= 9 * 3, "{:?}", traced.stats);
}

/// Traces what `CRAFT MODE IFNAME` sends out of a one-path lab's client interface, folding on,
/// beside tcpdump; returns the trace and what the script printed.
fn trace_crafted_acks(mode: &str) -> (Traced, String) {
    let lab = one_path_lab();
    let (namespace, client_if) = (lab.namespace(Side::Client).to_owned(), client_if(&lab));
    let folding = TraceOptions {
        write: None,
        fold_acks: true,
        ..options(&namespace, &[&client_if], AttachMode::Auto)
    };
    let printed = Mutex::new(String::new());
    let traced = trace_transfers(
        &lab,
        &folding,
        &client_if,
        &["10.99.0.1"],
        "tcp.option_kind == 30",
        Vec::new(),
        || {
            let out = in_client(&lab, &["python3", "-c", CRAFT, mode, &client_if]);
            *printed.lock().expect("lock") = out;
        },
    );
    (traced, printed.into_inner().expect("lock"))
}

/// The events of segment `seq` with their details (wire packets, headers).
fn events_of(traced: &Traced, seq: u32) -> Vec<(&Seen, &(u32, Vec<u8>))> {
    traced
        .recorder
        .seen
        .iter()
        .zip(&traced.recorder.details)
        .filter(|(s, _)| s.seq == seq)
        .collect()
}

/// Pure DATA_ACKs made by hand in both forms the classifiers fold (a 4-byte and an 8-byte
/// DATA_ACK), traced with folding on, beside tcpdump: each flow's ACKs come as fewer events
/// whose wire packets and lengths add up to tcpdump's, each event carrying the acknowledgement
/// of an ACK tcpdump saw, the flow's last one byte for byte as sent; the ACK with PSH among
/// them is an event of its own.
#[test]
fn crafted_acks_fold() {
    let test = "crafted_acks_fold";
    if skipped_without_tools(test) {
        return;
    }
    let (traced, printed) = trace_crafted_acks("acks");
    assert!(
        traced.recorder.problems.is_empty(),
        "{:?}",
        traced.recorder.problems
    );
    let last_packets: Vec<&str> = printed.lines().collect();
    assert_eq!(last_packets.len(), 2, "{printed}");
    for (seq, ip_len, last_packet) in [(500, 60, last_packets[0]), (600, 64, last_packets[1])] {
        let context = format!("{test}, the ACKs of seq {seq}");
        let wire: Vec<&Seen> = traced.truth.iter().filter(|s| s.seq == seq).collect();
        assert_eq!(wire.len(), 20, "{context}: tcpdump saw {wire:?}");
        assert!(
            wire.iter().all(|s| s.ip_len == ip_len),
            "{context}: {wire:?}"
        );
        let events = events_of(&traced, seq);
        let packets: u32 = events.iter().map(|(_, (segments, _))| segments).sum();
        let bytes: u32 = events.iter().map(|(s, _)| s.ip_len).sum();
        assert_eq!(packets as usize, wire.len(), "{context}: {events:?}");
        assert_eq!(bytes, 20 * ip_len, "{context}: {events:?}");
        // The PSH ACK alone, the others folded: the ACKs before and after it in two events or
        // more (a fold also ends at a jiffy and at the reader's poll, and the sender may move
        // to another CPU), some of them folds.
        assert!(
            events.len() >= 3 && events.iter().any(|(_, (segments, _))| *segments > 1),
            "{context}: {} events: {events:?}",
            events.len()
        );
        let psh = events
            .iter()
            .find(|(s, _)| s.ack == 2000)
            .expect("the PSH ACK");
        assert_eq!(psh.1.0, 1, "{context}: the PSH ACK was folded");
        for (event, _) in &events {
            assert!(
                wire.iter().any(|s| s.ack == event.ack),
                "{context}: ack {} is no ACK's",
                event.ack
            );
        }
        let (_, (_, last)) = events.iter().max_by_key(|(s, _)| s.ack).expect("events");
        let last_hex: String = last.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(last_hex, last_packet, "{context}: the last event's headers");
    }
    assert!(traced.stats.folded_events >= 2, "{:?}", traced.stats);
}

/// Two flows whose ports give the same fold slot, their pure DATA_ACKs taking turns: each
/// flow's ACKs still fold (a fold slot's pair holds both), and their wire packets add up to
/// tcpdump's. With one slot per hash, every ACK ended the other flow's fold: 20 events a flow.
#[test]
fn crafted_acks_of_two_flows_in_one_fold_slot_fold() {
    let test = "crafted_acks_of_two_flows_in_one_fold_slot_fold";
    if skipped_without_tools(test) {
        return;
    }
    let (traced, other_port) = trace_crafted_acks("same-slot");
    let test = format!("{test} (source ports 40000 and {})", other_port.trim());
    for seq in [700, 800] {
        let wire = traced.truth.iter().filter(|s| s.seq == seq).count();
        assert_eq!(wire, 20, "{test}, seq {seq}: tcpdump saw {wire} ACKs");
        let events = events_of(&traced, seq);
        let packets: u32 = events.iter().map(|(_, (segments, _))| segments).sum();
        assert_eq!(packets, 20, "{test}, seq {seq}: {events:?}");
        // A fold also ends at a jiffy and at the reader's poll: a few events, not one.
        assert!(
            events.len() <= 5,
            "{test}, seq {seq}: {} events for 20 ACKs: {events:?}",
            events.len()
        );
    }
}

/// A TUN device has no link-layer header: the data starts at IP.
#[test]
fn raw_ip_tun_device() {
    let test = "raw_ip_tun_device";
    if skipped_without_tools(test) {
        return;
    }
    let lab = one_path_lab();
    let namespace = lab.namespace(Side::Client).to_owned();
    let (tun, addr, peer) = ("mtt0", "10.81.0.1", "10.81.0.2");
    let mut craft = lab
        .command(Side::Client, "python3")
        .args(["-c", CRAFT, "tun", tun, addr, peer])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3");
    let mut stdout = BufReader::new(craft.stdout.take().expect("piped stdout")).lines();
    assert_eq!(stdout.next().and_then(Result::ok).as_deref(), Some("ready"));
    let mut stdin = craft.stdin.take().expect("piped stdin");
    let traced = trace_transfers(
        &lab,
        &options(&namespace, &[tun], AttachMode::Auto),
        tun,
        &[addr],
        "tcp.option_kind == 30",
        Vec::new(),
        move || {
            use std::io::Write as _;
            writeln!(stdin, "go").expect("craft stdin");
            assert_eq!(stdout.next().and_then(Result::ok).as_deref(), Some("done"));
        },
    );
    let _ = craft.kill();
    let _ = craft.wait();
    assert_same_segments(test, &traced, 0);
    let inbound = traced.recorder.seen.iter().filter(|s| !s.outbound).count();
    assert_eq!(inbound, 3, "{:?}", traced.recorder.seen);
    assert!(
        traced.recorder.seen.len() > 3 + 3,
        "{:?}",
        traced.recorder.seen
    );
}

/// One of two traced interfaces is deleted mid-run: a warning, and the other keeps going.
#[test]
fn vanished_interface_is_a_warning() {
    let test = "vanished_interface_is_a_warning";
    if skipped_without_tools(test) {
        return;
    }
    let lab = one_path_lab();
    let (namespace, client_if) = (lab.namespace(Side::Client).to_owned(), client_if(&lab));
    let (doomed, peer) = ("mtx0", "mty0");
    in_client(
        &lab,
        &[
            "ip", "link", "add", doomed, "type", "veth", "peer", "name", peer,
        ],
    );
    in_client(&lab, &["ip", "link", "set", doomed, "up"]);
    let traced = trace_transfers(
        &lab,
        &options(&namespace, &[&client_if, doomed], AttachMode::Netlink),
        &client_if,
        &[&address(&lab, Side::Client, IpVersion::V4)],
        "tcp.option_kind == 30",
        vec![transfer(Transport::Mptcp, IpVersion::V4, 5201, 500_000)],
        || {
            in_client(&lab, &["ip", "link", "del", doomed]);
        },
    );
    assert_same_segments(test, &traced, 0);
    assert_eq!(
        traced.warnings,
        [format!(
            "interface {doomed} disappeared while tracing; its events stop there"
        )]
    );
    let state = tc_state(&lab, &client_if);
    assert!(
        !state.contains("clsact") && !state.contains("mptcp_trc"),
        "{state}"
    );
}

#[test]
fn unknown_interface_and_namespace_are_clear_errors() {
    if skipped_unless_root("unknown_interface_and_namespace_are_clear_errors") {
        return;
    }
    let mut recorder = Recorder::default();
    let options = TraceOptions {
        interfaces: vec!["mt-no-such-if".into()],
        interval: Duration::from_secs(1),
        ..TraceOptions::default()
    };
    let mut writer_made = false;
    let make_writer = || {
        writer_made = true;
        Ok(None)
    };
    let error = run(&options, &mut recorder, make_writer, &mut |_, _| {
        ControlFlow::Continue(())
    })
    .expect_err("fails");
    assert!(
        !writer_made,
        "no capture file before the interfaces are known good"
    );
    assert!(
        matches!(error, LiveError::Interface { ref name, .. } if name == "mt-no-such-if"),
        "{error}"
    );

    let options = TraceOptions {
        netns: Some("mt-no-such-ns".into()),
        ..options
    };
    let error = run(&options, &mut recorder, || Ok(None), &mut |_, _| {
        ControlFlow::Continue(())
    })
    .expect_err("fails");
    assert!(
        error
            .to_string()
            .contains("/run/netns/mt-no-such-ns does not exist"),
        "{error}"
    );
}

/// Cost of tracing: set MPTCP_TRACER_BENCH=1 to run (it takes ~40 s and wants a quiet
/// machine). Prints the transfer rate of a 200 MB MPTCP and plain TCP transfer over the veth with and without
/// the tracer, and the programs' average run time per packet from the kernel's BPF statistics.
#[test]
fn bench_tracing_cost() {
    let test = "bench_tracing_cost";
    if std::env::var_os("MPTCP_TRACER_BENCH").is_none() {
        skip(test, "a benchmark: set MPTCP_TRACER_BENCH=1 to run it");
        return;
    }
    if skipped_without_tools(test) {
        return;
    }
    const BYTES: u64 = 200_000_000;
    let lab = one_path_lab();
    let (namespace, client_if) = (lab.namespace(Side::Client).to_owned(), client_if(&lab));
    let timed = |spec: &TransferSpec| {
        let start = std::time::Instant::now();
        run_transfer(&lab, spec);
        BYTES as f64 * 8.0 / start.elapsed().as_secs_f64() / 1e9
    };
    let mut untraced = Vec::new();
    let mut traced = Vec::new();
    // Even rounds MPTCP (every packet an event), odd rounds plain TCP (parsed, no event).
    for round in 0..4 {
        let (transport, kind) = if round % 2 == 0 {
            (Transport::Mptcp, "MPTCP")
        } else {
            (Transport::Tcp, "TCP")
        };
        let spec = TransferSpec {
            timeout: Duration::from_secs(60),
            ..transfer(transport, IpVersion::V4, 5300 + round * 2, BYTES)
        };
        untraced.push(timed(&spec));

        let spec = TransferSpec {
            port: 5301 + round * 2,
            ..spec
        };
        let rate = Mutex::new(0.0);
        let cost = Mutex::new(String::new());
        let mut recorder = Recorder::default();
        let options = TraceOptions {
            // Long enough for a slow transfer: the statistics are read while still attached.
            duration: Some(Duration::from_secs(15)),
            ..options(&namespace, &[&client_if], AttachMode::Auto)
        };
        sh(&["sysctl", "-qw", "kernel.bpf_stats_enabled=1"]);
        let stats = thread::scope(|scope| {
            let traffic = scope.spawn(|| {
                thread::sleep(Duration::from_millis(500));
                *rate.lock().expect("lock") = timed(&spec);
                *cost.lock().expect("lock") = sh(&["bpftool", "prog", "show", "-j"]);
            });
            let (stats, _) = run(&options, &mut recorder, || Ok(None), &mut |_, _| {
                ControlFlow::Continue(())
            })
            .expect("tracing");
            traffic.join().expect("traffic");
            stats
        });
        sh(&["sysctl", "-qw", "kernel.bpf_stats_enabled=0"]);
        traced.push(*rate.lock().expect("lock"));
        let programs: serde_json::Value =
            serde_json::from_str(&cost.lock().expect("lock")).expect("bpftool json");
        for program in programs.as_array().into_iter().flatten() {
            let name = program["name"].as_str().unwrap_or_default();
            if let (
                super::attach::INGRESS_PROGRAM | super::attach::EGRESS_PROGRAM,
                Some(ns),
                Some(count),
            ) = (
                name,
                program["run_time_ns"].as_u64(),
                program["run_cnt"].as_u64(),
            ) {
                println!(
                    "round {round} ({kind}): {name}: {count} runs, {:.0} ns/run",
                    ns as f64 / count.max(1) as f64
                );
            }
        }
        println!("round {round} ({kind}): {stats:?}");
    }
    println!("untraced Gbit/s: {untraced:.2?}; traced Gbit/s: {traced:.2?}");
    let best = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    println!("ratio of best runs: {:.3}", best(&traced) / best(&untraced));
}

/// Per-packet cost of the classifier itself, from BPF_PROG_TEST_RUN (`bpftool prog run`) on the
/// crafted frames: set MPTCP_TRACER_BENCH=1 to run.
#[test]
fn bench_program_cost() {
    let test = "bench_program_cost";
    if std::env::var_os("MPTCP_TRACER_BENCH").is_none() {
        skip(test, "a benchmark: set MPTCP_TRACER_BENCH=1 to run it");
        return;
    }
    if skipped_without_tools(test) {
        return;
    }
    let dir = tempdir();
    sh(&[
        "python3",
        "-c",
        CRAFT,
        "files",
        dir.to_str().expect("utf-8 path"),
    ]);
    let mut ebpf = super::load_object(&FilterConfig::default()).expect("load");
    let labels = [
        "IPv4 MPTCP (event)",
        "IPv4 options + MPTCP (event)",
        "802.1Q IPv4 MPTCP (event)",
        "QinQ IPv4 MPTCP (event)",
        "QinQ IPv6 ext headers MPTCP (event)",
        "IPv6 MPTCP (event)",
        "IPv4 30 NOPs + MPTCP (event)",
        "IPv4 TCP without MPTCP",
        "IPv4 non-first fragment",
        "UDP",
        "bad IHL",
        "ARP",
        "IPv4 bogus option length before MPTCP",
    ];
    for program in [super::attach::EGRESS_PROGRAM] {
        let id = super::attach::classifier(&mut ebpf, program)
            .expect("program")
            .info()
            .expect("info")
            .id()
            .to_string();
        for (i, label) in labels.iter().enumerate() {
            let file = dir.join(format!("frame{i}"));
            // Events fill the 16 MiB ring after ~75 000 runs (7 × 10 000 stay below); once
            // full, the output fails early and the figures would look too good.
            let repeat = if label.ends_with("(event)") {
                "10000"
            } else {
                "1000000"
            };
            let output = sh(&[
                "bpftool",
                "prog",
                "run",
                "id",
                &id,
                "data_in",
                file.to_str().expect("utf-8 path"),
                "repeat",
                repeat,
            ]);
            let duration = output
                .lines()
                .find(|l| l.contains("duration"))
                .map(str::trim)
                .unwrap_or(output.as_str());
            println!("{program}: {label}: {duration}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// SIGTERM ends an open-ended trace cleanly. It signals the whole test process, which would stop
/// every other trace running in parallel, so it runs only with MPTCP_TRACER_SIGNAL_TEST=1
/// (`cargo test ... signal_ends_tracing -- --test-threads=1`).
#[test]
fn signal_ends_tracing() {
    let test = "signal_ends_tracing";
    if std::env::var_os("MPTCP_TRACER_SIGNAL_TEST").is_none() {
        skip(
            test,
            "signals the whole test process: set MPTCP_TRACER_SIGNAL_TEST=1 and --test-threads=1",
        );
        return;
    }
    if skipped_without_tools(test) {
        return;
    }
    let lab = one_path_lab();
    let (namespace, client_if) = (lab.namespace(Side::Client).to_owned(), client_if(&lab));
    let before = tc_state(&lab, &client_if);
    let options = TraceOptions {
        duration: None,
        write: None,
        ..options(&namespace, &[&client_if], AttachMode::Netlink)
    };
    let spec = transfer(Transport::Mptcp, IpVersion::V4, 5201, 200_000);
    let start = std::time::Instant::now();
    let mut recorder = Recorder::default();
    let (stats, warnings) = thread::scope(|scope| {
        let traffic = scope.spawn(|| {
            thread::sleep(Duration::from_millis(700));
            run_transfer(&lab, &spec);
            thread::sleep(Duration::from_millis(500));
            // The tracer's handler is installed by now.
            nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::SIGTERM)
                .expect("signalling this process");
        });
        let result = run(&options, &mut recorder, || Ok(None), &mut |_, _| {
            ControlFlow::Continue(())
        })
        .expect("tracing");
        traffic.join().expect("traffic");
        result
    });
    println!("{test}: stopped after {:?}; {stats:?}", start.elapsed());
    assert!(start.elapsed() < Duration::from_secs(10));
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(stats.events_received > 0 && stats.events_received == stats.events_emitted);
    assert_eq!(
        before,
        tc_state(&lab, &client_if),
        "TC state restored after detach"
    );
}

/// `tc_filters` against tc's own view: the filters it lists on both clsact hooks (a classic BPF
/// filter on each), and `delete` removing exactly one.
#[test]
fn tc_filter_dump_matches_tc() {
    let test = "tc_filter_dump_matches_tc";
    if skipped_without_tools(test) {
        return;
    }
    let lab = one_path_lab();
    let (namespace, dev) = (lab.namespace(Side::Client).to_owned(), client_if(&lab));
    let tc = |args: &[&str]| in_client(&lab, &[&["tc"][..], args].concat());
    tc(&["qdisc", "add", "dev", &dev, "clsact"]);
    tc(&[
        "filter",
        "add",
        "dev",
        &dev,
        "ingress",
        "pref",
        "10",
        "bpf",
        "bytecode",
        "1,6 0 0 0,",
    ]);
    tc(&[
        "filter",
        "add",
        "dev",
        &dev,
        "egress",
        "pref",
        "20",
        "bpf",
        "bytecode",
        "1,6 0 0 65535,",
    ]);
    let ifindex = {
        let _inside = super::netns::NetnsGuard::enter(&namespace).expect("entering the lab");
        super::attach::ifindex_of(&dev).expect("the lab's interface")
    };
    let list = || {
        let _inside = super::netns::NetnsGuard::enter(&namespace).expect("entering the lab");
        super::tc_filters::list(ifindex).expect("listing the filters")
    };
    let filters = list();
    let shown = [
        tc(&["filter", "show", "dev", &dev, "ingress"]),
        tc(&["filter", "show", "dev", &dev, "egress"]),
    ]
    .join("");
    println!("{test}: tc says\n{shown}\nwe list {filters:#?}");
    let summary: Vec<(&str, u16, &str)> = filters
        .iter()
        .map(|f| (f.hook.as_str(), f.priority, f.kind.as_str()))
        .collect();
    assert_eq!(summary, [("ingress", 10, "bpf"), ("egress", 20, "bpf")]);
    let classic = &filters[0];
    assert!(shown.contains(&format!("pref 10 bpf chain 0 handle {:#x}", classic.handle)));
    assert_eq!(
        (classic.program_name.as_deref(), classic.program_id),
        (None, None)
    );
    // `protocol all`: ETH_P_ALL (3) in network byte order.
    assert_eq!(classic.protocol, 3u16.to_be());

    {
        let _inside = super::netns::NetnsGuard::enter(&namespace).expect("entering the lab");
        super::tc_filters::delete(ifindex, &filters[1]).expect("deleting the egress filter");
    }
    assert_eq!(list(), filters[..1]);
    assert!(tc(&["filter", "show", "dev", &dev, "egress"]).is_empty());
    assert!(tc(&["filter", "show", "dev", &dev, "ingress"]).contains("bytecode '1,6 0 0 0'"));
}

/// The kernel's format (`proc_timens_show_offsets`: the clock's name, seconds, nanoseconds),
/// the numbered form `timens_offsets` also takes, and a negative offset.
#[test]
fn time_namespace_offsets_are_read_from_the_monotonic_line() {
    let kernel = "monotonic       86400         0\nboottime            0         0\n";
    assert_eq!(monotonic_offset_ns(kernel), 86_400_000_000_000);
    assert_eq!(monotonic_offset_ns("7 5 0\n1 -2 500\n"), -1_999_999_500);
    assert_eq!(monotonic_offset_ns("boottime 3 0\n"), 0);
    assert_eq!(monotonic_offset_ns(""), 0);
}
