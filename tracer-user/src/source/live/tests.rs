//! Tests that need root: they load the programs, and the end-to-end ones build two network
//! namespaces joined by a veth pair, run an MPTCP transfer between them and compare the events
//! with what tcpdump captured on the same interface (dissected by tshark). Without root they
//! print why and pass.
//!
//! The analysis is developed elsewhere, so these tests collect the `RawPacket`s themselves
//! (`Recorder`) instead of feeding an `Analyzer`.

use std::{
    collections::BTreeMap,
    io::{BufRead as _, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    thread,
    time::Duration,
};

use super::{
    AttachMode, LiveError, LiveStats, TraceOptions, capture::CaptureWriter, privileges, run,
    verifier_stats,
};
use crate::source::{Direction, LinkType, RawPacket};

/// The budget the brief sets for each program.
const MAX_VERIFIED_INSNS: u32 = 50_000;

fn skip_unless_root(test: &str) -> bool {
    if privileges::can_trace() {
        return false;
    }
    eprintln!("skipping {test}: needs root (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN)");
    true
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

/// One event as the test keeps it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Seen {
    outbound: bool,
    seq: u32,
    ack: u32,
    ip_len: u32,
}

#[derive(Default)]
struct Recorder {
    seen: Vec<Seen>,
    problems: Vec<String>,
    intervals: u32,
}

impl super::EventSink for Recorder {
    fn packet(&mut self, raw: &RawPacket<'_>) {
        if raw.link_type != LinkType::Raw || raw.direction == Direction::Unknown {
            self.problems.push(format!(
                "packet {}: {:?} {:?}",
                raw.number, raw.link_type, raw.direction
            ));
        }
        // Just enough IPv4/TCP parsing to identify the segment (the decoder is tested elsewhere).
        let data = raw.data;
        if data.len() < 40 || data[0] >> 4 != 4 {
            self.problems.push(format!(
                "packet {}: not an IPv4 header: {:02x?}",
                raw.number,
                &data[..data.len().min(8)]
            ));
            return;
        }
        let ihl = usize::from(data[0] & 0x0f) * 4;
        let tcp = &data[ihl..];
        let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        self.seen.push(Seen {
            outbound: raw.direction == Direction::Outbound,
            seq: be32(&tcp[4..8]),
            ack: be32(&tcp[8..12]),
            ip_len: raw.orig_len,
        });
    }
}

/// A `CaptureWriter` that remembers what it was asked to write.
#[derive(Default)]
struct MemoryWriter {
    interfaces: Vec<(String, u32, Option<String>)>,
    packets: std::rc::Rc<std::cell::RefCell<Vec<(u32, bool, usize, u32)>>>,
    flushes: std::rc::Rc<std::cell::Cell<u32>>,
}

impl CaptureWriter for MemoryWriter {
    fn add_interface(
        &mut self,
        name: &str,
        ifindex: u32,
        netns: Option<&str>,
    ) -> Result<u32, String> {
        self.interfaces
            .push((name.to_owned(), ifindex, netns.map(str::to_owned)));
        Ok(self.interfaces.len() as u32 - 1)
    }

    fn write_packet(
        &mut self,
        iface_id: u32,
        _ts_ns: u64,
        inbound: bool,
        data: &[u8],
        orig_len: u32,
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

/// Two namespaces joined by a veth pair, removed on drop. Client 10.77.N.1 in `client`, server
/// 10.77.N.2 in `server`.
struct Lab {
    client: String,
    server: String,
    client_if: String,
    server_if: String,
    client_addr: String,
    server_addr: String,
}

impl Lab {
    fn new() -> Lab {
        let n = LAB_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{}-{n}", std::process::id() % 100_000);
        let lab = Lab {
            client: format!("mt-a-{tag}"),
            server: format!("mt-b-{tag}"),
            client_if: format!("mta{n}"),
            server_if: format!("mtb{n}"),
            client_addr: format!("10.77.{n}.1"),
            server_addr: format!("10.77.{n}.2"),
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
        for (ns, dev, addr) in [
            (&lab.client, &lab.client_if, &lab.client_addr),
            (&lab.server, &lab.server_if, &lab.server_addr),
        ] {
            in_ns(
                ns,
                &["ip", "addr", "add", &format!("{addr}/24"), "dev", dev],
            );
            in_ns(ns, &["ip", "link", "set", dev, "up"]);
            in_ns(ns, &["ip", "link", "set", "lo", "up"]);
            in_ns(ns, &["sysctl", "-qw", "net.mptcp.enabled=1"]);
        }
        lab
    }

    fn tc_state(&self) -> String {
        let dev = self.client_if.as_str();
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

/// An MPTCP transfer of `bytes` from client to server, the server echoing a byte count back;
/// python's socket module speaks MPTCP with protocol 262.
const TRANSFER: &str = r#"
import socket, sys, time
role, addr, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
IPPROTO_MPTCP = 262
if role == "server":
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, IPPROTO_MPTCP)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, 5201)); s.listen(1)
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
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM, IPPROTO_MPTCP)
    c.connect((addr, 5201))
    c.sendall(b"x" * n)
    print(c.recv(100).decode(), flush=True)
    c.close()
    time.sleep(0.3)
"#;

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
fn wait_for_line(child: &mut Child, marker: &str, from_stderr: bool) {
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
    // Keep draining so the child never blocks on a full pipe.
    thread::spawn(move || for _ in lines {});
}

/// Runs the transfer while `run` traces the client's veth; returns the recorder, the stats and
/// the segments tshark found with an MPTCP option in tcpdump's capture of the same interface.
fn traced_transfer(
    lab: &Lab,
    attach: AttachMode,
    bytes: usize,
) -> (Recorder, LiveStats, Vec<String>, Vec<Seen>, MemoryWriter) {
    let dir = tempdir();
    let pcap = dir.join("client.pcap");
    let mut tcpdump = spawn_in_ns(
        &lab.client,
        &[
            "tcpdump",
            "-i",
            &lab.client_if,
            "-n",
            "-U",
            "-w",
            pcap.to_str().expect("utf-8 path"),
            "tcp",
        ],
    );
    wait_for_line(&mut tcpdump, "listening on", true);

    let mut server = spawn_in_ns(
        &lab.server,
        &[
            "python3",
            "-c",
            TRANSFER,
            "server",
            &lab.server_addr,
            &bytes.to_string(),
        ],
    );
    wait_for_line(&mut server, "ready", false);

    let server_addr = lab.server_addr.clone();
    let client_ns = lab.client.clone();
    let client = thread::spawn(move || {
        // Give the tracer time to attach before the first SYN.
        thread::sleep(Duration::from_millis(700));
        in_ns(
            &client_ns,
            &[
                "python3",
                "-c",
                TRANSFER,
                "client",
                &server_addr,
                &bytes.to_string(),
            ],
        )
    });

    let options = TraceOptions {
        interfaces: vec![lab.client_if.clone()],
        netns: Some(lab.client.clone()),
        duration: Some(Duration::from_secs(4)),
        interval: Duration::from_millis(500),
        attach,
        write: Some(dir.join("unused.pcapng")),
        ..TraceOptions::default()
    };
    let mut recorder = Recorder::default();
    let writer = MemoryWriter::default();
    let (packets, flushes) = (writer.packets.clone(), writer.flushes.clone());
    let mut intervals = 0;
    let (stats, warnings) = run(
        &options,
        &mut recorder,
        Some(Box::new(writer)),
        &mut |_, _| intervals += 1,
    )
    .expect("tracing works");
    recorder.intervals = intervals;
    let echoed = client.join().expect("client thread");
    assert_eq!(
        echoed.trim(),
        bytes.to_string(),
        "the server received every byte"
    );
    let _ = server.wait();

    // SAFETY: signalling our own child.
    unsafe { libc::kill(tcpdump.id() as i32, libc::SIGINT) };
    let _ = tcpdump.wait();
    let fields = sh(&[
        "tshark",
        "-r",
        pcap.to_str().expect("utf-8 path"),
        "-Y",
        "tcp.option_kind == 30",
        "-T",
        "fields",
        "-e",
        "ip.src",
        "-e",
        "tcp.seq_raw",
        "-e",
        "tcp.ack_raw",
        "-e",
        "frame.len",
    ]);
    let truth = fields
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            let num = |i: usize| {
                f[i].parse::<u32>()
                    .unwrap_or_else(|e| panic!("{line:?}: {e}"))
            };
            Seen {
                outbound: f[0] == lab.client_addr,
                seq: num(1),
                ack: num(2),
                ip_len: num(3) - 14,
            }
        })
        .collect();
    let written = MemoryWriter {
        packets,
        flushes,
        interfaces: Vec::new(),
    };
    let _ = std::fs::remove_dir_all(&dir);
    (recorder, stats, warnings, truth, written)
}

fn tempdir() -> PathBuf {
    let n = LAB_COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("mptcp-tracer-live-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn tools_present(test: &str) -> bool {
    for tool in ["tcpdump", "tshark", "python3", "tc", "bpftool"] {
        if Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map_or(true, |o| !o.status.success())
        {
            eprintln!("skipping {test}: {tool} not installed");
            return false;
        }
    }
    true
}

fn check_against_tcpdump(attach: AttachMode, test: &str) {
    if skip_unless_root(test) || !tools_present(test) {
        return;
    }
    let lab = Lab::new();
    let before = lab.tc_state();
    let (recorder, stats, warnings, truth, written) = traced_transfer(&lab, attach, 3_000_000);
    let after = lab.tc_state();

    assert!(recorder.problems.is_empty(), "{:?}", recorder.problems);
    assert!(warnings.is_empty(), "{warnings:?}");
    let per_direction = |seen: &[Seen]| {
        let mut counts = BTreeMap::new();
        for s in seen {
            *counts
                .entry(if s.outbound { "egress" } else { "ingress" })
                .or_insert(0) += 1;
        }
        counts
    };
    println!(
        "{test}: events per direction {:?}, tcpdump+tshark (tcp.option_kind == 30) {:?}; stats {stats:?}; \
         {} on_interval calls",
        per_direction(&recorder.seen),
        per_direction(&truth),
        recorder.intervals
    );
    assert!(!truth.is_empty(), "the capture has MPTCP packets");
    let mut ours = recorder.seen.clone();
    let mut theirs = truth;
    ours.sort();
    theirs.sort();
    assert_eq!(
        ours, theirs,
        "the same segments (direction, seq, ack, IP length) as tcpdump"
    );

    // The kernel's counters agree with what arrived.
    assert_eq!(stats.events_received, ours.len() as u64);
    assert_eq!(stats.events_emitted, stats.events_received);
    assert_eq!(
        stats.mptcp_packets, stats.events_emitted,
        "no filter: every MPTCP packet is an event"
    );
    assert_eq!(
        (stats.ringbuf_full, stats.userspace_lost, stats.load_errors),
        (0, 0, 0)
    );
    assert!(
        stats.tcp_packets >= stats.mptcp_packets && stats.packets_seen >= stats.tcp_packets,
        "{stats:?}"
    );
    // 4 s at 0.5 s intervals.
    assert!(
        (6..=9).contains(&recorder.intervals),
        "{} on_interval calls",
        recorder.intervals
    );

    // The -w path saw every event, with the right direction and lengths.
    let packets = written.packets.borrow();
    assert_eq!(packets.len(), ours.len());
    let inbound = packets.iter().filter(|p| p.1).count();
    assert_eq!(
        inbound,
        recorder.seen.iter().filter(|s| !s.outbound).count()
    );
    assert!(
        written.flushes.get() >= 4,
        "flushed {} times in 4 s",
        written.flushes.get()
    );

    assert_eq!(before, after, "TC state restored after detach");
}

#[test]
fn tcx_events_match_tcpdump() {
    check_against_tcpdump(AttachMode::Tcx, "tcx_events_match_tcpdump");
}

#[test]
fn clsact_events_match_tcpdump() {
    check_against_tcpdump(AttachMode::Netlink, "clsact_events_match_tcpdump");
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
    let error = run(&options, &mut recorder, None, &mut |_, _| {})
        .err()
        .expect("fails");
    assert!(
        matches!(error, LiveError::Interface { ref name, .. } if name == "mt-no-such-if"),
        "{error}"
    );

    let options = TraceOptions {
        netns: Some("mt-no-such-ns".into()),
        ..options
    };
    let error = run(&options, &mut recorder, None, &mut |_, _| {})
        .err()
        .expect("fails");
    assert!(
        error
            .to_string()
            .contains("/run/netns/mt-no-such-ns does not exist"),
        "{error}"
    );
}
