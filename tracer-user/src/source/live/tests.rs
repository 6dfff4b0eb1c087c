//! Tests that need root: they load the programs, and the end-to-end ones build two network
//! namespaces joined by a veth pair, run an MPTCP transfer between them and compare the events
//! with what tcpdump captured on the same interface (dissected by tshark). Without root they
//! print why and pass.
//!
//! The analysis is developed elsewhere, so these tests collect the `RawPacket`s themselves
//! (`Recorder`) instead of feeding an `Analyzer`.

use std::{
    cell::{Cell, RefCell},
    collections::BTreeMap,
    io::{BufRead as _, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    rc::Rc,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, Ordering},
    },
    thread,
    time::Duration,
};

use tracer_common::CAPTURE_LEN;

use super::{
    AttachMode, LiveError, LiveStats, TraceOptions, capture::CaptureWriter, privileges, run,
    verifier_stats,
};
use crate::source::{Direction, LinkType, RawPacket};

/// The budget the brief sets for each program.
const MAX_VERIFIED_INSNS: u32 = 50_000;

fn skip_unless_root(test: &str) -> bool {
    if super::object_bytes().is_err() {
        eprintln!("skipping {test}: built without its eBPF object (the `ebpf` feature)");
        return true;
    }
    if privileges::can_trace() {
        return false;
    }
    eprintln!("skipping {test}: needs root (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN)");
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
    let error = crate::live::trace(&options, &mut |_, _| {})
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
    if skip_unless_root("verifier_budget") {
        return;
    }
    let counts = verifier_stats().expect("programs load");
    assert_eq!(counts.len(), 2, "{counts:?}");
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
        let tcp_off = match tcp_off {
            Some(off) => off,
            None => {
                self.problems
                    .push(format!("packet {}: not IP/TCP: {:02x?}", raw.number, data));
                return;
            }
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

fn in_ns(ns: &str, args: &[&str]) -> String {
    let mut full = vec!["ip", "netns", "exec", ns];
    full.extend_from_slice(args);
    sh(&full)
}

static LAB_COUNTER: AtomicU32 = AtomicU32::new(0);

/// Two namespaces joined by a veth pair, removed on drop. The client has 10.77.N.1 and
/// fd77:N::1, the server 10.77.N.2 and fd77:N::2.
struct Lab {
    n: u32,
    client: String,
    server: String,
    client_if: String,
    server_if: String,
    client_addr: String,
    server_addr: String,
    client_addr6: String,
    server_addr6: String,
}

impl Lab {
    fn new() -> Lab {
        let n = LAB_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{}-{n}", std::process::id() % 100_000);
        let lab = Lab {
            n,
            client: format!("mt-a-{tag}"),
            server: format!("mt-b-{tag}"),
            client_if: format!("mta{n}"),
            server_if: format!("mtb{n}"),
            client_addr: format!("10.77.{n}.1"),
            server_addr: format!("10.77.{n}.2"),
            client_addr6: format!("fd77:{n}::1"),
            server_addr6: format!("fd77:{n}::2"),
        };
        sh(&["ip", "netns", "add", &lab.client]);
        sh(&["ip", "netns", "add", &lab.server]);
        sh(&[
            "ip",
            "link",
            "add",
            &lab.client_if,
            "netns",
            &lab.client,
            "type",
            "veth",
            "peer",
            "name",
            &lab.server_if,
            "netns",
            &lab.server,
        ]);
        for (ns, dev, addr, addr6) in [
            (
                &lab.client,
                &lab.client_if,
                &lab.client_addr,
                &lab.client_addr6,
            ),
            (
                &lab.server,
                &lab.server_if,
                &lab.server_addr,
                &lab.server_addr6,
            ),
        ] {
            in_ns(
                ns,
                &["ip", "addr", "add", &format!("{addr}/24"), "dev", dev],
            );
            in_ns(
                ns,
                &[
                    "ip",
                    "addr",
                    "add",
                    &format!("{addr6}/64"),
                    "dev",
                    dev,
                    "nodad",
                ],
            );
            in_ns(ns, &["ip", "link", "set", dev, "up"]);
            in_ns(ns, &["ip", "link", "set", "lo", "up"]);
            in_ns(ns, &["sysctl", "-qw", "net.mptcp.enabled=1"]);
        }
        lab
    }

    fn tc_state(&self, dev: &str) -> String {
        [
            in_ns(&self.client, &["tc", "qdisc", "show", "dev", dev]),
            in_ns(
                &self.client,
                &["tc", "filter", "show", "dev", dev, "ingress"],
            ),
            in_ns(
                &self.client,
                &["tc", "filter", "show", "dev", dev, "egress"],
            ),
            in_ns(&self.client, &["bpftool", "net", "show", "dev", dev]),
        ]
        .join("\n")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in [&self.client, &self.server] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// A transfer of N bytes from client to server, the server echoing the byte count back.
/// Protocol 262 is IPPROTO_MPTCP.
const TRANSFER: &str = r#"
import socket, sys, time
role, family, proto, addr, port, n = sys.argv[1:7]
family = socket.AF_INET6 if family == "6" else socket.AF_INET
proto = 262 if proto == "mptcp" else 0
port, n = int(port), int(n)
if role == "server":
    s = socket.socket(family, socket.SOCK_STREAM, proto)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port)); s.listen(1)
    print("ready", flush=True)
    c, _ = s.accept()
    got = 0
    while got < n:
        b = c.recv(65536)
        if not b: break
        got += len(b)
    c.sendall(str(got).encode())
    c.close()
else:
    c = socket.socket(family, socket.SOCK_STREAM, proto)
    c.connect((addr, port))
    c.sendall(b"x" * n)
    print(c.recv(100).decode(), flush=True)
    c.close()
    time.sleep(0.3)
"#;

/// One transfer to run while tracing.
#[derive(Clone)]
struct Transfer {
    client_ns: String,
    server_ns: String,
    ipv6: bool,
    mptcp: bool,
    server_addr: String,
    port: u16,
    bytes: usize,
}

impl Transfer {
    fn mptcp(lab: &Lab, ipv6: bool, port: u16, bytes: usize) -> Transfer {
        Transfer {
            client_ns: lab.client.clone(),
            server_ns: lab.server.clone(),
            ipv6,
            mptcp: true,
            server_addr: if ipv6 {
                lab.server_addr6.clone()
            } else {
                lab.server_addr.clone()
            },
            port,
            bytes,
        }
    }

    fn args(&self, role: &str) -> Vec<String> {
        [
            "python3",
            "-c",
            TRANSFER,
            role,
            if self.ipv6 { "6" } else { "4" },
            if self.mptcp { "mptcp" } else { "tcp" },
            &self.server_addr,
            &self.port.to_string(),
            &self.bytes.to_string(),
        ]
        .map(str::to_owned)
        .to_vec()
    }

    /// Starts the server and returns once it listens.
    fn start_server(&self) -> Child {
        let args = self.args("server");
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut server = spawn_in_ns(&self.server_ns, &args);
        let _ = wait_for_line(&mut server, "ready", false);
        server
    }

    /// Runs the client to the end and checks the server received every byte.
    fn run_client(&self, mut server: Child) {
        let args = self.args("client");
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let echoed = in_ns(&self.client_ns, &args);
        assert_eq!(
            echoed.trim(),
            self.bytes.to_string(),
            "server received every byte"
        );
        let _ = server.wait();
    }
}

fn spawn_in_ns(ns: &str, args: &[&str]) -> Child {
    Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// Waits for a line containing `marker` on the child's stdout or stderr.
/// Returns a thread that collects the lines after it (draining, so the child never blocks on a
/// full pipe).
fn wait_for_line(
    child: &mut Child,
    marker: &str,
    from_stderr: bool,
) -> thread::JoinHandle<Vec<String>> {
    let stream: Box<dyn std::io::Read + Send> = if from_stderr {
        Box::new(child.stderr.take().expect("piped stderr"))
    } else {
        Box::new(child.stdout.take().expect("piped stdout"))
    };
    let mut lines = BufReader::new(stream).lines();
    loop {
        match lines.next() {
            Some(Ok(line)) if line.contains(marker) => break,
            Some(Ok(_)) => {}
            other => panic!("waiting for {marker:?}: {other:?}"),
        }
    }
    thread::spawn(move || lines.map_while(Result::ok).collect())
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

/// Traces `options` while `transfers` run (one after another, starting 0.7 s in so the programs
/// are attached) and tcpdump captures `capture_if` in `capture_ns`.
fn trace_transfers(
    options: &TraceOptions,
    capture_ns: &str,
    capture_if: &str,
    local_addrs: &[&str],
    truth_filter: &str,
    transfers: Vec<Transfer>,
    during: impl FnOnce() + Send + 'static,
) -> Traced {
    let dir = tempdir();
    let pcap = dir.join("capture.pcap");
    let pcap_str = pcap.to_str().expect("utf-8 path").to_owned();
    let mut tcpdump = spawn_in_ns(
        capture_ns,
        &[
            // No capture filter: "tcp" would miss VLAN-tagged frames; tshark's filter selects.
            "tcpdump", "-i", capture_if, "-n", "-U", "-B", "32768", "-w", &pcap_str,
        ],
    );
    let tcpdump_report = wait_for_line(&mut tcpdump, "listening on", true);

    let servers: Vec<Child> = transfers.iter().map(Transfer::start_server).collect();
    let traffic = thread::spawn(move || {
        thread::sleep(Duration::from_millis(700));
        for (transfer, server) in transfers.iter().zip(servers) {
            transfer.run_client(server);
        }
        during();
    });

    let mut recorder = Recorder::default();
    let written = MemoryWriter::default();
    let mut intervals = 0;
    let result = run(
        options,
        &mut recorder,
        || Ok(Some(Box::new(written.clone()) as Box<dyn CaptureWriter>)),
        &mut |_, _| intervals += 1,
    );
    let traffic = traffic.join();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(tcpdump.id() as i32, libc::SIGINT) };
    let _ = tcpdump.wait();
    let tcpdump_dropped = tcpdump_report
        .join()
        .expect("tcpdump's report")
        .iter()
        .find_map(|line| line.strip_suffix(" packets dropped by kernel"))
        .and_then(|n| n.trim().parse().ok())
        .expect("tcpdump reports its drops");
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
        tcpdump_dropped,
        written,
    }
}

fn tempdir() -> PathBuf {
    let n = LAB_COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("mptcp-tracer-live-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn skip_without_tools(test: &str) -> bool {
    if skip_unless_root(test) {
        return true;
    }
    for tool in ["tcpdump", "tshark", "python3", "tc", "bpftool"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            eprintln!("skipping {test}: {tool} not installed");
            return true;
        }
    }
    false
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
        interfaces: interfaces.iter().map(|s| s.to_string()).collect(),
        netns: Some(netns.to_owned()),
        duration: Some(Duration::from_secs(4)),
        interval: Duration::from_millis(500),
        attach,
        write: Some(PathBuf::from("/nonexistent/unused.pcapng")),
        ..TraceOptions::default()
    }
}

fn check_mptcp_transfer(attach: AttachMode, test: &str) {
    if skip_without_tools(test) {
        return;
    }
    let lab = Lab::new();
    let before = lab.tc_state(&lab.client_if);
    let traced = trace_transfers(
        &options(&lab.client, &[&lab.client_if], attach),
        &lab.client,
        &lab.client_if,
        &[&lab.client_addr],
        "tcp.option_kind == 30",
        vec![Transfer::mptcp(&lab, false, 5201, 3_000_000)],
        || {},
    );
    let after = lab.tc_state(&lab.client_if);
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
    let ifindex: u32 = in_ns(
        &lab.client,
        &["cat", &format!("/sys/class/net/{}/ifindex", lab.client_if)],
    )
    .trim()
    .parse()
    .expect("ifindex");
    assert_eq!(
        *traced.written.interfaces.borrow(),
        [(lab.client_if.clone(), ifindex, Some(lab.client.clone()))]
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
    if skip_without_tools(test) {
        return;
    }
    let lab = Lab::new();
    let plain_tcp = Transfer {
        mptcp: false,
        ..Transfer::mptcp(&lab, false, 5202, 500_000)
    };
    let mptcp6 = Transfer::mptcp(&lab, true, 5201, 500_000);
    let locals = [lab.client_addr.as_str(), lab.client_addr6.as_str()];

    let port_only = TraceOptions {
        all_tcp: true,
        port: Some(5202),
        ..options(&lab.client, &[&lab.client_if], AttachMode::Auto)
    };
    let traced = trace_transfers(
        &port_only,
        &lab.client,
        &lab.client_if,
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

    let v6_only = TraceOptions {
        addr: Some(lab.server_addr6.parse().expect("IPv6 address")),
        ..options(&lab.client, &[&lab.client_if], AttachMode::Auto)
    };
    let traced = trace_transfers(
        &v6_only,
        &lab.client,
        &lab.client_if,
        &locals,
        "ipv6 && tcp.option_kind == 30",
        vec![
            Transfer {
                port: 5203,
                ..plain_tcp
            },
            Transfer {
                port: 5204,
                ..mptcp6
            },
        ],
        || {},
    );
    assert_same_segments(&format!("{test} (--addr {})", lab.server_addr6), &traced, 0);
    assert!(traced.recorder.seen.iter().all(|s| s.ipv6));
}

/// Builds packets by hand and sends them: `frames IFNAME` sends Ethernet frames out of IFNAME
/// with an AF_PACKET socket (tags in the frame, IPv4 options, IPv6 extension headers, packets
/// that must not match); `tun NAME ADDR PEER` creates a TUN device (no link-layer header), then
/// on a line on stdin writes packets into it (ingress) and sends packets out of it (egress).
const CRAFT: &str = r#"
import fcntl, os, socket, struct, sys, time

def tcp(options, seq, flags=0x10):
    options += b"\x00" * (-len(options) % 4)
    return struct.pack("!HHIIBBHHH", 40000, 5201, seq, 7, (5 + len(options) // 4) << 4, flags,
                       65535, 0, 0) + options

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
    if skip_without_tools(test) {
        return;
    }
    let lab = Lab::new();
    let client_ns = lab.client.clone();
    let client_if = lab.client_if.clone();
    let traced = trace_transfers(
        &options(&lab.client, &[&lab.client_if], AttachMode::Auto),
        &lab.client,
        &lab.client_if,
        &["10.99.0.1", "fd99::1"],
        "tcp.option_kind == 30",
        Vec::new(),
        move || {
            in_ns(&client_ns, &["python3", "-c", CRAFT, "frames", &client_if]);
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

/// A TUN device has no link-layer header: the data starts at IP.
#[test]
fn raw_ip_tun_device() {
    let test = "raw_ip_tun_device";
    if skip_without_tools(test) {
        return;
    }
    let lab = Lab::new();
    let tun = format!("mtt{}", lab.n);
    let (addr, peer) = (format!("10.81.{}.1", lab.n), format!("10.81.{}.2", lab.n));
    let mut craft = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.client,
            "python3",
            "-c",
            CRAFT,
            "tun",
            &tun,
            &addr,
            &peer,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3");
    let mut stdout = BufReader::new(craft.stdout.take().expect("piped stdout")).lines();
    assert_eq!(stdout.next().and_then(Result::ok).as_deref(), Some("ready"));
    let mut stdin = craft.stdin.take().expect("piped stdin");
    let traced = trace_transfers(
        &options(&lab.client, &[&tun], AttachMode::Auto),
        &lab.client,
        &tun,
        &[&addr],
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
    if skip_without_tools(test) {
        return;
    }
    let lab = Lab::new();
    let (doomed, peer) = (format!("mtx{}", lab.n), format!("mty{}", lab.n));
    in_ns(
        &lab.client,
        &[
            "ip", "link", "add", &doomed, "type", "veth", "peer", "name", &peer,
        ],
    );
    in_ns(&lab.client, &["ip", "link", "set", &doomed, "up"]);
    let client_ns = lab.client.clone();
    let doomed_name = doomed.clone();
    let traced = trace_transfers(
        &options(&lab.client, &[&lab.client_if, &doomed], AttachMode::Netlink),
        &lab.client,
        &lab.client_if,
        &[&lab.client_addr],
        "tcp.option_kind == 30",
        vec![Transfer::mptcp(&lab, false, 5201, 500_000)],
        move || {
            in_ns(&client_ns, &["ip", "link", "del", &doomed_name]);
        },
    );
    assert_same_segments(test, &traced, 0);
    assert_eq!(
        traced.warnings,
        [format!(
            "interface {doomed} disappeared while tracing; its events stop there"
        )]
    );
    let state = lab.tc_state(&lab.client_if);
    assert!(
        !state.contains("clsact") && !state.contains("tc_"),
        "{state}"
    );
}

#[test]
fn unknown_interface_and_namespace_are_clear_errors() {
    if skip_unless_root("unknown_interface_and_namespace_are_clear_errors") {
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
    let error = run(&options, &mut recorder, make_writer, &mut |_, _| {}).expect_err("fails");
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
    let error = run(&options, &mut recorder, || Ok(None), &mut |_, _| {}).expect_err("fails");
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
        eprintln!("skipping {test}: set MPTCP_TRACER_BENCH=1 to run it");
        return;
    }
    if skip_without_tools(test) {
        return;
    }
    const BYTES: usize = 200_000_000;
    let lab = Lab::new();
    let timed = |transfer: &Transfer| {
        let server = transfer.start_server();
        let start = std::time::Instant::now();
        transfer.run_client(server);
        BYTES as f64 * 8.0 / start.elapsed().as_secs_f64() / 1e9
    };
    let mut untraced = Vec::new();
    let mut traced = Vec::new();
    // Even rounds MPTCP (every packet an event), odd rounds plain TCP (parsed, no event).
    for round in 0..4 {
        let mptcp = round % 2 == 0;
        let kind = if mptcp { "MPTCP" } else { "TCP" };
        let transfer = Transfer {
            mptcp,
            ..Transfer::mptcp(&lab, false, 5300 + round * 2, BYTES)
        };
        untraced.push(timed(&transfer));

        let transfer = Transfer {
            port: 5301 + round * 2,
            ..transfer
        };
        let rate = Arc::new(Mutex::new(0.0));
        let rate_out = rate.clone();
        let cost = Arc::new(Mutex::new(String::new()));
        let cost_out = cost.clone();
        let mut recorder = Recorder::default();
        let options = TraceOptions {
            // Long enough for a slow transfer: the statistics are read while still attached.
            duration: Some(Duration::from_secs(15)),
            ..options(&lab.client, &[&lab.client_if], AttachMode::Auto)
        };
        sh(&["sysctl", "-qw", "kernel.bpf_stats_enabled=1"]);
        let traffic = thread::spawn(move || {
            thread::sleep(Duration::from_millis(500));
            *rate_out.lock().expect("lock") = timed(&transfer);
            *cost_out.lock().expect("lock") = sh(&["bpftool", "prog", "show", "-j"]);
        });
        let (stats, _) =
            run(&options, &mut recorder, || Ok(None), &mut |_, _| {}).expect("tracing");
        traffic.join().expect("traffic");
        sh(&["sysctl", "-qw", "kernel.bpf_stats_enabled=0"]);
        traced.push(*rate.lock().expect("lock"));
        let programs: serde_json::Value =
            serde_json::from_str(&cost.lock().expect("lock")).expect("bpftool json");
        for program in programs.as_array().into_iter().flatten() {
            let name = program["name"].as_str().unwrap_or_default();
            if let ("tc_ingress" | "tc_egress", Some(ns), Some(count)) = (
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
        eprintln!("skipping {test}: set MPTCP_TRACER_BENCH=1 to run it");
        return;
    }
    if skip_without_tools(test) {
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
    let mut ebpf = super::load_object().expect("load");
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
        eprintln!("skipping {test}: set MPTCP_TRACER_SIGNAL_TEST=1 to run it");
        return;
    }
    if skip_without_tools(test) {
        return;
    }
    let lab = Lab::new();
    let before = lab.tc_state(&lab.client_if);
    let options = TraceOptions {
        duration: None,
        write: None,
        ..options(&lab.client, &[&lab.client_if], AttachMode::Netlink)
    };
    let transfer = Transfer::mptcp(&lab, false, 5201, 200_000);
    let server = transfer.start_server();
    let traffic = thread::spawn(move || {
        thread::sleep(Duration::from_millis(700));
        transfer.run_client(server);
        thread::sleep(Duration::from_millis(500));
        // SAFETY: signalling this process; the tracer's handler is installed by now.
        unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
    });
    let start = std::time::Instant::now();
    let mut recorder = Recorder::default();
    let (stats, warnings) =
        run(&options, &mut recorder, || Ok(None), &mut |_, _| {}).expect("tracing");
    traffic.join().expect("traffic");
    println!("{test}: stopped after {:?}; {stats:?}", start.elapsed());
    assert!(start.elapsed() < Duration::from_secs(10));
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(stats.events_received > 0 && stats.events_received == stats.events_emitted);
    assert_eq!(
        before,
        lab.tc_state(&lab.client_if),
        "TC state restored after detach"
    );
}
