//! Live end-to-end: `mptcp-tracer trace` attached in a lab namespace while a transfer with known
//! byte counts runs, checked against independent witnesses: tcpdump on the same interfaces
//! (which packets carry an MPTCP option, per interface and direction), the application's byte
//! counts, `ip mptcp monitor`, tshark reading the events file, and the kernel's TC/TCX state
//! before and after. Also the refusals that must happen before anything is attached.
//!
//! The tracer runs as a child process without `--duration` and is stopped with SIGTERM, so the
//! signal path (detach, drain, JSON) is what is tested; `--duration` is covered by the `--force`
//! test.

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, Read},
    net::IpAddr,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::mpsc,
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use integration_tests::{
    as_u64, can_use_namespaces, direction, list_mptcp, mptcp_summary, tracer, tracer_binary,
    tshark_fields,
};
use mptcp_lab::{Capture, CaptureSpec, IpVersion, Lab, LabConfig, Side, TransferSpec};
use mptcp_tracer::output::pcapng::GSO_COMMENT_PREFIX;
use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};
use serde_json::Value;

/// Bytes the client writes and the server writes back: several hundred data segments each way
/// over two rate-limited paths.
const CLIENT_SENDS: u64 = 2_000_000;
const SERVER_SENDS: u64 = 300_000;

/// Generous: the machine is small and shared.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const QUIET_TIMEOUT: Duration = Duration::from_secs(60);
const EXIT_TIMEOUT: Duration = Duration::from_secs(60);

/// Each hook's eBPF program (tracer-user/src/source/live/attach.rs), as `tc filter show` names
/// it.
const PROGRAMS: [(&str, &str); 2] = [("ingress", "mptcp_trc_in"), ("egress", "mptcp_trc_eg")];

/// A scratch directory under the target dir, removed on drop.
pub(crate) struct Scratch(PathBuf);

impl Scratch {
    pub(crate) fn new(test: &str) -> Self {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("live-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|error| panic!("creating {}: {error}", dir.display()));
        Self(dir)
    }

    pub(crate) fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Keep the files of a failed test for a look.
        if thread::panicking() {
            eprintln!("files kept in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Runs a command in a namespace and returns everything it said, exit status included: a
/// snapshot to compare, whatever the command thinks of the state (`tc filter show` on an
/// interface without clsact is an error).
pub(crate) fn snapshot_command(namespace: &str, program: &str, args: &[&str]) -> String {
    let output = Command::new("ip")
        .args(["netns", "exec", namespace, program])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| panic!("running {program} in {namespace}: {error}"));
    format!(
        "$ {program} {}\n{}{}[{}]\n",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        output.status
    )
}

/// What is hooked on the interfaces: `bpftool net show` and the TC state of each one.
pub(crate) fn hooks(namespace: &str, interfaces: &[String]) -> String {
    let mut text = snapshot_command(namespace, "bpftool", &["net", "show"]);
    for interface in interfaces {
        for args in [
            ["qdisc", "show", "dev", interface, ""],
            ["filter", "show", "dev", interface, "ingress"],
            ["filter", "show", "dev", interface, "egress"],
        ] {
            let args: Vec<&str> = args.into_iter().filter(|arg| !arg.is_empty()).collect();
            text.push_str(&snapshot_command(namespace, "tc", &args));
        }
    }
    text
}

/// How the tracer is told to attach (`--attach`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attach {
    /// The default: TCX links on this kernel.
    Auto,
    /// A clsact qdisc with tc filters.
    Netlink,
}

/// One BPF link the tracer holds, from `/proc/PID/fdinfo` (the kernel's own record: Debian's
/// bpftool 7.1 neither lists TCX links under `net show` nor says where a link is attached).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct TcxLink {
    ifindex: u32,
    /// "ingress" or "egress".
    hook: String,
    link_id: u32,
    prog_id: u32,
}

/// The TCX links among a process's file descriptors.
fn tcx_links_of(pid: u32) -> Vec<TcxLink> {
    let dir = format!("/proc/{pid}/fdinfo");
    let mut links = Vec::new();
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        let field = |name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(name))
                .map(|value| value.trim().to_owned())
        };
        if field("link_type:").as_deref() != Some("tcx") {
            continue;
        }
        let number = |name: &str| field(name).and_then(|value| value.parse().ok());
        let (Some(ifindex), Some(link_id), Some(prog_id), Some(attach_type)) = (
            number("ifindex:"),
            number("link_id:"),
            number("prog_id:"),
            field("attach_type:"),
        ) else {
            panic!(
                "{}: unexpected TCX link fdinfo:\n{text}",
                entry.path().display()
            );
        };
        // "46 (ingress)"
        let hook = attach_type
            .split(['(', ')'])
            .nth(1)
            .unwrap_or(&attach_type)
            .to_owned();
        links.push(TcxLink {
            ifindex,
            hook,
            link_id,
            prog_id,
        });
    }
    links.sort();
    links
}

/// An interface's index inside a namespace.
fn ifindex(namespace: &str, interface: &str) -> u32 {
    let output = Command::new("ip")
        .args(["netns", "exec", namespace, "cat"])
        .arg(format!("/sys/class/net/{interface}/ifindex"))
        .output()
        .unwrap_or_else(|error| panic!("reading {interface}'s ifindex in {namespace}: {error}"));
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|error| panic!("{interface}'s ifindex in {namespace}: {error}"))
}

/// Whether a BPF object (`link` or `prog`) with this id still exists anywhere.
fn bpf_object_exists(kind: &str, id: u32) -> bool {
    Command::new("bpftool")
        .args([kind, "show", "id", &id.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap_or_else(|error| panic!("running bpftool {kind} show: {error}"))
        .success()
}

/// Checks that the tracer (process `pid`) has both programs on every interface and returns the
/// TCX links it holds (none with `--attach netlink`, whose filters `tc` shows).
fn check_attached(
    pid: u32,
    attach: Attach,
    namespace: &str,
    interfaces: &[String],
) -> Vec<TcxLink> {
    let links = tcx_links_of(pid);
    match attach {
        Attach::Auto => {
            for interface in interfaces {
                let index = ifindex(namespace, interface);
                for hook in ["ingress", "egress"] {
                    let held = links
                        .iter()
                        .filter(|link| link.ifindex == index && link.hook == hook)
                        .count();
                    assert_eq!(
                        held, 1,
                        "TCX {hook} links on {interface} (ifindex {index}): {links:?}"
                    );
                }
            }
            assert_eq!(links.len(), 2 * interfaces.len(), "{links:?}");
        }
        Attach::Netlink => {
            assert!(
                links.is_empty(),
                "--attach netlink made TCX links: {links:?}"
            );
            for interface in interfaces {
                for (hook, program) in PROGRAMS {
                    let shown = snapshot_command(
                        namespace,
                        "tc",
                        &["filter", "show", "dev", interface, hook],
                    );
                    assert!(
                        shown.contains(program),
                        "no {program} filter on {interface} {hook}:\n{shown}"
                    );
                }
            }
        }
    }
    links
}

/// TCP sockets of a namespace that may still send: anything but TIME-WAIT (which only answers).
fn active_tcp_sockets(namespace: &str) -> Vec<String> {
    let output = Command::new("ip")
        .args(["netns", "exec", namespace, "ss", "-H", "-t", "-a", "-n"])
        .output()
        .unwrap_or_else(|error| panic!("running ss in {namespace}: {error}"));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with("TIME-WAIT"))
        .map(str::to_owned)
        .collect()
}

/// Waits until neither host has a TCP socket that could still put a packet on the wire, so
/// that the tracer and tcpdump have both seen the last one when they stop.
pub(crate) fn wait_for_quiet(lab: &Lab) {
    let deadline = Instant::now() + QUIET_TIMEOUT;
    loop {
        let active: Vec<String> = [Side::Client, Side::Server]
            .into_iter()
            .flat_map(|side| active_tcp_sockets(lab.namespace(side)))
            .collect();
        if active.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "TCP sockets still open {QUIET_TIMEOUT:?} after the transfer: {active:#?}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// How `LiveTracer::start_with` runs the tracer.
#[derive(Default)]
pub(crate) struct Launch<'a> {
    /// Variables added to its environment.
    pub(crate) env: &'a [(&'a str, &'a str)],
    /// A command that execs the tracer (its arguments after these), keeping the process id.
    pub(crate) wrapper: &'a [&'a str],
}

/// `mptcp-tracer trace` running as a child process.
pub(crate) struct LiveTracer {
    child: Option<Child>,
    stdout: Option<JoinHandle<String>>,
    stderr: Option<JoinHandle<Vec<String>>>,
    pub(crate) command: String,
    /// The TCX links it held once attached.
    links: Vec<TcxLink>,
}

/// What the tracer left when it ended.
pub(crate) struct TracerExit {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl LiveTracer {
    /// Starts the tracer with `-v` and returns once it logged every interface as traced (the
    /// attach loop logs "tracing IFACE (ifindex N) via …" after each attachment) and the kernel
    /// shows both programs on each of them.
    pub(crate) fn start(
        namespace: &str,
        interfaces: &[String],
        attach: Attach,
        args: &[&str],
    ) -> Self {
        Self::start_with(namespace, interfaces, attach, args, &Launch::default())
    }

    /// `start` with the environment and wrapper of `launch`.
    pub(crate) fn start_with(
        namespace: &str,
        interfaces: &[String],
        attach: Attach,
        args: &[&str],
        launch: &Launch<'_>,
    ) -> Self {
        let mut full: Vec<String> = vec!["-v".into(), "trace".into()];
        if attach == Attach::Netlink {
            full.extend(["--attach".into(), "netlink".into()]);
        }
        for interface in interfaces {
            full.extend(["-i".into(), interface.clone()]);
        }
        full.extend(["--netns".into(), namespace.to_owned()]);
        full.extend(args.iter().map(|arg| (*arg).to_owned()));
        let wrapper: String = launch.wrapper.iter().map(|arg| format!("{arg} ")).collect();
        let command = format!("{wrapper}mptcp-tracer {}", full.join(" "));
        let mut process = match launch.wrapper.split_first() {
            Some((program, wrapper_args)) => {
                let mut process = Command::new(program);
                process.args(wrapper_args).arg(tracer_binary());
                process
            }
            None => Command::new(tracer_binary()),
        };
        let mut child = process
            .args(&full)
            .envs(launch.env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("starting {command}: {error}"));
        let mut stdout_pipe = child.stdout.take().expect("piped stdout");
        let stdout = thread::spawn(move || {
            let mut text = String::new();
            let _ = stdout_pipe.read_to_string(&mut text);
            text
        });
        let stderr_pipe = child.stderr.take().expect("piped stderr");
        let (line_tx, line_rx) = mpsc::channel::<String>();
        let stderr = thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stderr_pipe).lines().map_while(Result::ok) {
                let _ = line_tx.send(line.clone());
                lines.push(line);
            }
            lines
        });
        let mut tracer = Self {
            child: Some(child),
            stdout: Some(stdout),
            stderr: Some(stderr),
            command,
            links: Vec::new(),
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut pending: Vec<String> = interfaces
            .iter()
            .map(|interface| format!("tracing {interface} "))
            .collect();
        while !pending.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            match line_rx.recv_timeout(left) {
                Ok(line) => pending.retain(|wanted| !line.contains(wanted.as_str())),
                // Disconnected: the tracer ended (an error); timeout: it never got there.
                Err(error) => {
                    let exit = tracer.stop();
                    panic!(
                        "{} did not report {pending:?} ({error:?}); it ended with {}:\n{}",
                        tracer.command, exit.status, exit.stderr
                    );
                }
            }
        }
        let pid = tracer.child.as_ref().map_or(0, Child::id);
        tracer.links = check_attached(pid, attach, namespace, interfaces);
        tracer
    }

    /// `stop`, asserting that the tracer exited with code 0 (its command and stderr say why
    /// not).
    pub(crate) fn stop_ok(&mut self) -> TracerExit {
        let exit = self.stop();
        assert_eq!(
            exit.status.code(),
            Some(0),
            "{}: {}",
            self.command,
            exit.stderr
        );
        exit
    }

    /// SIGTERM, then waits (bounded) for the tracer to detach, drain and print its report.
    pub(crate) fn stop(&mut self) -> TracerExit {
        let mut child = self.child.take().expect("the tracer is running");
        terminate(&child);
        let deadline = Instant::now() + EXIT_TIMEOUT;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "{} did not exit within {EXIT_TIMEOUT:?} of SIGTERM",
                        self.command
                    );
                }
                Err(error) => panic!("waiting for {}: {error}", self.command),
            }
        };
        let stdout = self
            .stdout
            .take()
            .and_then(|reader| reader.join().ok())
            .unwrap_or_default();
        let stderr = self
            .stderr
            .take()
            .and_then(|reader| reader.join().ok())
            .unwrap_or_default()
            .join("\n");
        TracerExit {
            status,
            stdout,
            stderr,
        }
    }
}

impl LiveTracer {
    /// The tracer's process id (while it runs).
    pub(crate) fn pid(&self) -> Pid {
        Pid::from_raw(self.child.as_ref().map_or(0, |child| child.id() as i32))
    }
}

impl Drop for LiveTracer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGTERM rather than SIGKILL: a killed tracer would leave its links behind until
            // the namespace goes.
            terminate(&child);
            let _ = child.wait();
        }
    }
}

/// Sends SIGTERM to our own, not yet reaped child (so the pid is still its own).
fn terminate(child: &Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        // An error means it has exited already; the caller's wait says how.
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
}

/// Packets with an MPTCP option seen on one interface in one direction.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Tally {
    packets: u64,
    /// Wire packets these stand for: 1 each in tcpdump's captures; for the tracer's events, the
    /// `gso_segs` its pcapng comment gives a GSO batch (1 otherwise).
    segments: u64,
    /// Sum of the TCP payload lengths (from the IP headers, whatever the snap length).
    payload: u64,
    /// Each packet's TCP payload length.
    lengths: Vec<u64>,
}

impl Tally {
    fn add(&mut self, length: u64, segments: u64) {
        self.packets += 1;
        self.segments += segments;
        self.payload += length;
        self.lengths.push(length);
    }

    fn largest(&self) -> u64 {
        self.lengths.iter().copied().max().unwrap_or(0)
    }
}

/// (interface, "in"/"out") → what was seen there.
type Tallies = BTreeMap<(String, &'static str), Tally>;

fn summary_of(tallies: &Tallies) -> String {
    tallies
        .iter()
        .map(|((interface, direction), tally)| {
            format!(
                "{interface} {direction}: {} packets, {} payload bytes, largest {}",
                tally.packets,
                tally.payload,
                tally.largest()
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn payload_length(row: &[String], index: usize, file: &Path) -> u64 {
    row.get(index)
        .and_then(|length| length.parse().ok())
        .unwrap_or_else(|| panic!("{}: no tcp.len in {row:?}", file.display()))
}

/// Packets carrying an MPTCP option in tcpdump's capture of one client interface, by direction:
/// a source address of the client's is outbound.
fn tcpdump_tallies(
    file: &Path,
    interface: &str,
    client_addresses: &[IpAddr],
    tallies: &mut Tallies,
) {
    for row in tshark_fields(
        file,
        "tcp.option_kind == 30",
        &["ip.src", "ipv6.src", "tcp.len"],
    ) {
        let source = row[..2]
            .iter()
            .find_map(|field| field.parse::<IpAddr>().ok())
            .unwrap_or_else(|| panic!("{}: no source address in {row:?}", file.display()));
        let direction = if client_addresses.contains(&source) {
            "out"
        } else {
            "in"
        };
        tallies
            .entry((interface.to_owned(), direction))
            .or_default()
            .add(payload_length(&row, 2, file), 1);
    }
}

/// Events per interface and direction in the tracer's pcapng, from tshark: the interface name
/// block and the EPB direction flags (1 inbound, 2 outbound).
fn event_tallies(file: &Path) -> Tallies {
    let mut tallies = Tallies::new();
    for row in tshark_fields(
        file,
        "",
        &[
            "frame.interface_name",
            "frame.packet_flags_direction",
            "tcp.len",
            "frame.comment",
        ],
    ) {
        let direction = match row.get(1).map(|flags| flags.trim_start_matches("0x")) {
            Some(flags) if flags.trim_start_matches('0') == "1" => "in",
            Some(flags) if flags.trim_start_matches('0') == "2" => "out",
            _ => panic!("{}: no direction flag in {row:?}", file.display()),
        };
        let segments = row
            .get(3)
            .and_then(|comment| comment.strip_prefix(GSO_COMMENT_PREFIX))
            .and_then(|rest| rest.strip_suffix(" segments"))
            .map_or(1, |n| {
                n.parse()
                    .unwrap_or_else(|_| panic!("{}: bad GSO comment in {row:?}", file.display()))
            });
        tallies
            .entry((row[0].clone(), direction))
            .or_default()
            .add(payload_length(&row, 2, file), segments);
    }
    tallies
}

pub(crate) fn stat(report: &Value, name: &str) -> u64 {
    as_u64(&report["stats"][name], &format!("stats.{name}"))
}

/// The whole end-to-end run for one address family and attach mode; returns the events' and
/// tcpdump's tallies and the directory of the files (`None` when skipped).
fn trace_a_transfer(
    test: &str,
    ip_version: IpVersion,
    attach: Attach,
) -> Option<(Tallies, Tallies, Scratch)> {
    if !can_use_namespaces(test) {
        return None;
    }
    let scratch = Scratch::new(test);
    let lab = Lab::new(&LabConfig::default()).expect("building the lab");
    let namespace = lab.namespace(Side::Client).to_owned();
    let interfaces = lab.interfaces(Side::Client);
    let client_addresses: Vec<IpAddr> = (1..=lab.paths())
        .map(|path| lab.address(Side::Client, path, ip_version).expect("a path"))
        .collect();
    let hooks_before = hooks(&namespace, &interfaces);

    let monitor = lab.start_monitor(Side::Client).expect("ip mptcp monitor");
    let (capture_files, captures) = capture_client_tcp(&lab, &interfaces, &scratch);
    let events_file = scratch.file("events.pcapng");
    let events_arg = events_file.to_string_lossy().into_owned();
    let mut live = LiveTracer::start(
        &namespace,
        &interfaces,
        attach,
        &["-w", &events_arg, "--json"],
    );

    let counts = lab
        .transfer(&bulk_transfer(ip_version))
        .expect("the transfer");
    assert_eq!(
        (counts.client_sent, counts.server_sent),
        (CLIENT_SENDS, SERVER_SENDS)
    );
    wait_for_quiet(&lab);
    for capture in captures {
        // stop() fails unless tcpdump wrote every packet its filter received.
        capture.stop().expect("stopping tcpdump");
    }
    let exit = live.stop();
    let report = monitor.stop().expect("stopping ip mptcp monitor");
    let hooks_after = hooks(&namespace, &interfaces);

    assert_eq!(
        exit.status.code(),
        Some(0),
        "{} after SIGTERM: {}\nstderr:\n{}",
        live.command,
        exit.status,
        exit.stderr
    );
    assert!(!exit.stderr.contains("panicked"), "{}", exit.stderr);
    let trace: Value = serde_json::from_str(&exit.stdout).unwrap_or_else(|error| {
        panic!(
            "{}: stdout is not JSON ({error}):\n{}\nstderr:\n{}",
            live.command, exit.stdout, exit.stderr
        )
    });
    let tc_state = interfaces
        .iter()
        .map(|interface| {
            snapshot_command(&namespace, "tc", &["-s", "qdisc", "show", "dev", interface])
        })
        .collect::<String>();
    let context = format!(
        "stats {}\nwarnings {}\ntracer stderr:\n{}\nqdiscs:\n{tc_state}",
        trace["stats"], trace["warnings"], exit.stderr
    );

    // (f) Nothing lost anywhere between the classifier and the analysis.
    assert_eq!(stat(&trace, "ringbuf_full"), 0, "{context}");
    assert_eq!(stat(&trace, "userspace_lost"), 0, "{context}");
    assert_eq!(
        stat(&trace, "events_emitted"),
        stat(&trace, "events_received"),
        "{context}"
    );
    assert_eq!(trace["warnings"], serde_json::json!([]), "{context}");

    // (a) Per interface and direction, the events against tcpdump's packets with an MPTCP
    // option: the same payload, and as many wire packets. Inbound that is one event per
    // packet. Outbound, TC sees TCP's GSO batches before they are cut into wire segments (TCP
    // keeps GSO on in software when the device has it off, as in the lab); each such event
    // carries `gso_segs`, which the events file gives as a comment.
    let mut on_the_wire = Tallies::new();
    for (interface, file) in interfaces.iter().zip(&capture_files) {
        tcpdump_tallies(file, interface, &client_addresses, &mut on_the_wire);
    }
    let events = event_tallies(&events_file);
    eprintln!(
        "{test}: events: {}\n{test}: tcpdump: {}",
        summary_of(&events),
        summary_of(&on_the_wire)
    );
    let keys: Vec<_> = on_the_wire.keys().chain(events.keys()).cloned().collect();
    for key in keys {
        let (interface, direction) = (&key.0, key.1);
        let seen = events.get(&key).cloned().unwrap_or_default();
        let wire = on_the_wire.get(&key).cloned().unwrap_or_default();
        assert_eq!(
            seen.payload, wire.payload,
            "{interface} {direction}: TCP payload of the events vs tcpdump's\n{context}"
        );
        assert_eq!(
            seen.segments, wire.packets,
            "{interface} {direction}: wire packets of the events vs tcpdump's packets with \
             option kind 30\n{context}"
        );
        if direction == "in" {
            assert_eq!(
                seen.packets, wire.packets,
                "{interface} in: no GSO\n{context}"
            );
        }
    }
    let wire_total: u64 = events.values().map(|tally| tally.segments).sum();
    assert_eq!(wire_total, stat(&trace, "wire_packets"), "{context}");
    for interface in &interfaces {
        for direction in ["in", "out"] {
            assert!(
                events.contains_key(&(interface.clone(), direction)),
                "no {direction} event on {interface}: both paths carry a subflow\n{context}"
            );
        }
    }
    // Without --all-tcp every event carries an MPTCP option (tshark's opinion).
    assert!(
        tshark_fields(&events_file, "!(tcp.option_kind == 30)", &["frame.number"]).is_empty(),
        "events without an MPTCP option in {}",
        events_file.display()
    );

    // (d) tshark reads the whole file.
    let event_total: u64 = events.values().map(|tally| tally.packets).sum();
    assert_eq!(event_total, stat(&trace, "events_received"), "{context}");

    // (c) Connections and subflows as the kernel's path manager reported them.
    let connections = trace["mptcp"]["mptcp_connections"]
        .as_array()
        .unwrap_or_else(|| panic!("no mptcp.mptcp_connections in {trace}"));
    assert_eq!(connections.len(), report.connections, "{:?}", report.lines);
    assert_eq!(report.connections, 1, "{:?}", report.lines);
    let subflows: usize = connections
        .iter()
        .map(|connection| connection["subflows"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(subflows, report.subflows(), "{:?}", report.lines);
    assert_eq!(report.subflows(), 2, "{:?}", report.lines);

    // (b) Data-level bytes as the application counted them.
    let summaries = trace["summaries"]
        .as_array()
        .unwrap_or_else(|| panic!("no summaries in {trace}"));
    assert_eq!(summaries.len(), 1, "{trace}");
    let live_summary = &summaries[0];
    for (name, expected) in [
        ("client_to_server", counts.server_received),
        ("server_to_client", counts.client_received),
    ] {
        let unique = as_u64(
            &direction(live_summary, name)["unique_bytes"],
            "unique_bytes",
        );
        eprintln!("{test}: {name} unique_bytes {unique}, application {expected}");
        assert_eq!(
            unique, expected,
            "{name}: live unique_bytes vs the application"
        );
    }

    // Packet counts of the live summary are wire packets too (GSO batches count their
    // segments): per direction, the subflows' packets add up to tcpdump's MPTCP packets on the
    // client interfaces.
    assert_subflow_packets_are_tcpdumps(live_summary, &on_the_wire, &context);

    // (e) The events file tells the same story offline.
    assert_eq!(
        list_mptcp(&events_file),
        trace["mptcp"],
        "list-mptcp of {} vs the live list",
        events_file.display()
    );
    let id = as_u64(&connections[0]["id"], "id");
    let offline_summary = mptcp_summary(&events_file, id);
    for name in ["client_to_server", "server_to_client"] {
        assert_eq!(
            direction(&offline_summary, name)["unique_bytes"],
            direction(live_summary, name)["unique_bytes"],
            "{name}: offline vs live unique_bytes"
        );
    }
    // The transfer ended (DATA_FIN acknowledged both ways) before the trace did.
    assert_eq!(live_summary["open"], false, "{live_summary}");
    let mut live_summary_fields = live_summary.clone();
    live_summary_fields
        .as_object_mut()
        .map(|fields| fields.remove("open"));
    assert_eq!(
        offline_summary, live_summary_fields,
        "offline vs live summary (less the live-only `open`)"
    );

    // And tcpdump's view of the same connection (both interfaces merged by time) gives the same
    // data-level byte counts.
    let merged = merge_captures(&scratch, &capture_files);
    let tcpdump_list = list_mptcp(&merged);
    assert_eq!(
        tcpdump_list["mptcp_connections"].as_array().map(Vec::len),
        Some(1),
        "{tcpdump_list}"
    );
    let tcpdump_id = as_u64(&tcpdump_list["mptcp_connections"][0]["id"], "id");
    let tcpdump_summary = mptcp_summary(&merged, tcpdump_id);
    for name in ["client_to_server", "server_to_client"] {
        for field in ["wire_bytes", "unique_bytes", "acked_bytes"] {
            assert_eq!(
                direction(&tcpdump_summary, name)[field],
                direction(live_summary, name)[field],
                "{name} {field}: tcpdump's capture vs the live trace"
            );
        }
    }

    // (g) The tracer left the interfaces as it found them.
    assert_eq!(
        hooks_after, hooks_before,
        "TC state before vs after the tracer"
    );
    for link in &live.links {
        assert!(
            !bpf_object_exists("link", link.link_id),
            "TCX link {link:?} outlived the tracer"
        );
        assert!(
            !bpf_object_exists("prog", link.prog_id),
            "the program of {link:?} outlived the tracer"
        );
    }
    Some((events, on_the_wire, scratch))
}

#[test]
fn ipv4_trace_matches_tcpdump_the_application_and_the_monitor() {
    let _ = trace_a_transfer(
        "ipv4_trace_matches_tcpdump_the_application_and_the_monitor",
        IpVersion::V4,
        Attach::Auto,
    );
}

#[test]
fn ipv6_trace_matches_tcpdump_the_application_and_the_monitor() {
    let _ = trace_a_transfer(
        "ipv6_trace_matches_tcpdump_the_application_and_the_monitor",
        IpVersion::V6,
        Attach::Auto,
    );
}

/// Per direction, the subflows' packets of a live summary add up to tcpdump's MPTCP packets on
/// the client interfaces (GSO batches and folded ACKs count as the packets they stand for).
fn assert_subflow_packets_are_tcpdumps(summary: &Value, on_the_wire: &Tallies, context: &str) {
    for (name, tcpdump_direction) in [("client_to_server", "out"), ("server_to_client", "in")] {
        let live_packets: u64 = direction(summary, name)["subflows"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|subflow| as_u64(&subflow["packets"], "packets"))
            .sum();
        let wire: u64 = on_the_wire
            .iter()
            .filter(|((_, d), _)| *d == tcpdump_direction)
            .map(|(_, tally)| tally.packets)
            .sum();
        assert_eq!(
            live_packets, wire,
            "{name}: live subflow packets vs tcpdump\n{context}"
        );
    }
}

/// The captures merged by time into one pcapng (mergecap) in the scratch directory.
fn merge_captures(scratch: &Scratch, files: &[PathBuf]) -> PathBuf {
    let merged = scratch.file("tcpdump-merged.pcapng");
    let status = Command::new("mergecap")
        .arg("-w")
        .arg(&merged)
        .args(files)
        .status()
        .expect("running mergecap");
    assert!(status.success(), "mergecap: {status}");
    merged
}

/// tcpdump of every TCP packet on each of the client's `interfaces`, into the scratch
/// directory: the files and the running captures.
fn capture_client_tcp<'lab>(
    lab: &'lab Lab,
    interfaces: &[String],
    scratch: &Scratch,
) -> (Vec<PathBuf>, Vec<Capture<'lab>>) {
    let files: Vec<PathBuf> = interfaces
        .iter()
        .map(|interface| scratch.file(&format!("tcpdump-{interface}.pcap")))
        .collect();
    let captures = interfaces
        .iter()
        .zip(&files)
        .map(|(interface, file)| {
            lab.start_capture(&CaptureSpec {
                side: Side::Client,
                interface,
                snaplen: 256,
                file,
                link_type: None,
                filter: Some("tcp"),
                buffer_kib: None,
            })
            .expect("starting tcpdump")
        })
        .collect();
    (files, captures)
}

/// `CLIENT_SENDS` one way and `SERVER_SENDS` the other, with the second subflow up first.
fn bulk_transfer(ip_version: IpVersion) -> TransferSpec {
    TransferSpec {
        ip_version,
        client_sends: CLIENT_SENDS,
        server_sends: SERVER_SENDS,
        wait_for_subflows: 1,
        subflow_timeout: Duration::from_secs(20),
        timeout: Duration::from_secs(60),
        ..TransferSpec::default()
    }
}

/// Summary fields that follow the packets' timestamps (two tracers on the same packets see them
/// a program run apart), and the event numbers (`packet`: the folding tracer has fewer events).
const TIMED_FIELDS: [&str; 5] = [
    "duration_s",
    "goodput_bps",
    "throughput_bps",
    "time_s",
    "packet",
];

/// `value` without the `TIMED_FIELDS`, at any depth.
fn untimed(value: &Value) -> Value {
    match value {
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .filter(|(name, _)| !TIMED_FIELDS.contains(&name.as_str()))
                .map(|(name, field)| (name.clone(), untimed(field)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(untimed).collect()),
        other => other.clone(),
    }
}

/// The default trace folds a flow's consecutive pure DATA_ACKs into one event in the kernel:
/// beside a tracer that takes every packet (`--every-packet`) on the same transfer, and tcpdump,
/// it queues fewer events and gives the same summaries, the same wire packets, and
/// tcpdump's packet and byte counts.
#[test]
fn folded_acks_give_the_summaries_of_every_packet() {
    let test = "folded_acks_give_the_summaries_of_every_packet";
    if !can_use_namespaces(test) {
        return;
    }
    let scratch = Scratch::new(test);
    let lab = Lab::new(&LabConfig::default()).expect("building the lab");
    let namespace = lab.namespace(Side::Client).to_owned();
    let interfaces = lab.interfaces(Side::Client);
    let client_addresses: Vec<IpAddr> = (1..=lab.paths())
        .map(|path| {
            lab.address(Side::Client, path, IpVersion::V4)
                .expect("a path")
        })
        .collect();
    let (capture_files, captures) = capture_client_tcp(&lab, &interfaces, &scratch);
    let mut folding = LiveTracer::start(&namespace, &interfaces, Attach::Auto, &["--json"]);
    let mut every_packet = LiveTracer::start(
        &namespace,
        &interfaces,
        Attach::Auto,
        &["--json", "--every-packet"],
    );
    let counts = lab
        .transfer(&bulk_transfer(IpVersion::V4))
        .expect("the transfer");
    wait_for_quiet(&lab);
    for capture in captures {
        capture.stop().expect("stopping tcpdump");
    }
    let report = |exit: TracerExit| -> Value {
        serde_json::from_str(&exit.stdout)
            .unwrap_or_else(|error| panic!("not JSON ({error}):\n{}", exit.stdout))
    };
    let folded = report(folding.stop_ok());
    let every = report(every_packet.stop_ok());
    let context = format!(
        "folding {}\nevery packet {}",
        folded["stats"], every["stats"]
    );

    for trace in [&folded, &every] {
        assert_eq!(stat(trace, "ringbuf_full"), 0, "{context}");
        assert_eq!(stat(trace, "userspace_lost"), 0, "{context}");
        assert_eq!(
            stat(trace, "events_emitted"),
            stat(trace, "events_received"),
            "{context}"
        );
    }
    // Folded: ACKs came as fewer events. How many fewer varies with the machine's load (on
    // this 2 MB transfer a third in one CI run, more locally): a fold ends at each jiffy and
    // each 50 ms flush, and the two subflows share a fold slot one run in sixteen. The counts
    // below are what must not vary.
    assert!(stat(&folded, "folded_events") > 0, "{context}");
    assert_eq!(stat(&every, "folded_events"), 0, "{context}");
    assert!(
        stat(&folded, "events_received") < stat(&every, "events_received"),
        "no event saved\n{context}"
    );
    // The same packets, connections and summaries.
    assert_eq!(
        stat(&folded, "wire_packets"),
        stat(&every, "wire_packets"),
        "{context}"
    );
    assert_eq!(folded["mptcp"], every["mptcp"]);
    assert_eq!(untimed(&folded["summaries"]), untimed(&every["summaries"]));

    // Against tcpdump: per direction, the subflows' packets add up to tcpdump's packets with
    // an MPTCP option; the data-level bytes are those of tcpdump's capture and the
    // application's.
    let mut on_the_wire = Tallies::new();
    for (interface, file) in interfaces.iter().zip(&capture_files) {
        tcpdump_tallies(file, interface, &client_addresses, &mut on_the_wire);
    }
    let summary = &folded["summaries"][0];
    assert_subflow_packets_are_tcpdumps(summary, &on_the_wire, &context);
    let merged = merge_captures(&scratch, &capture_files);
    let tcpdump_id = as_u64(
        &list_mptcp(&merged)["mptcp_connections"][0]["id"],
        "tcpdump's connection id",
    );
    let tcpdump_summary = mptcp_summary(&merged, tcpdump_id);
    for (name, application) in [
        ("client_to_server", counts.server_received),
        ("server_to_client", counts.client_received),
    ] {
        for field in ["wire_bytes", "unique_bytes", "acked_bytes"] {
            assert_eq!(
                direction(&tcpdump_summary, name)[field],
                direction(summary, name)[field],
                "{name} {field}: tcpdump's capture vs the folding trace"
            );
        }
        assert_eq!(
            as_u64(&direction(summary, name)["unique_bytes"], "unique_bytes"),
            application,
            "{name}: unique bytes vs the application"
        );
    }
}

/// The same through a clsact qdisc and tc filters, which the tracer adds and must remove.
#[test]
fn ipv4_trace_through_tc_filters_matches_and_cleans_up() {
    let _ = trace_a_transfer(
        "ipv4_trace_through_tc_filters_matches_and_cleans_up",
        IpVersion::V4,
        Attach::Netlink,
    );
}

/// `-w` on an existing file: refused without `--force`, before anything is attached, the file
/// untouched; with `--force` (and `--duration`, the other way to stop) it is replaced by a
/// pcapng.
#[test]
fn write_refuses_to_overwrite_without_force() {
    let test = "write_refuses_to_overwrite_without_force";
    if !can_use_namespaces(test) {
        return;
    }
    let scratch = Scratch::new(test);
    let lab = Lab::new(&LabConfig {
        paths: 1,
        ..LabConfig::default()
    })
    .expect("building the lab");
    let namespace = lab.namespace(Side::Client).to_owned();
    let interface = lab.interface(Side::Client, 1).expect("path 1");
    let hooks_before = hooks(&namespace, std::slice::from_ref(&interface));
    let file = scratch.file("precious.pcapng");
    let precious = b"not a capture, and not to be lost\n";
    std::fs::write(&file, precious).expect("writing the precious file");
    let path = file.to_string_lossy().into_owned();

    let run = tracer(&[
        "trace",
        "-i",
        &interface,
        "--netns",
        &namespace,
        "-w",
        &path,
        "--duration",
        "1",
    ]);
    run.assert_no_panic();
    assert_eq!(run.code(), 1, "{}: {}", run.command, run.stderr);
    assert!(
        run.stderr.contains(&path) && run.stderr.contains("--force"),
        "the message names the file and --force: {}",
        run.stderr
    );
    assert_eq!(
        std::fs::read(&file).expect("reading the file back"),
        precious,
        "the existing file was changed"
    );
    assert_eq!(
        hooks(&namespace, std::slice::from_ref(&interface)),
        hooks_before
    );

    let run = tracer(&[
        "trace",
        "-i",
        &interface,
        "--netns",
        &namespace,
        "-w",
        &path,
        "--force",
        "--duration",
        "1",
        "--json",
    ]);
    run.assert_success();
    let trace = run.json();
    assert_eq!(stat(&trace, "events_received"), 0, "no traffic: {trace}");
    let written = std::fs::read(&file).expect("reading the new file");
    assert_eq!(
        written.get(..4),
        Some(&[0x0a, 0x0d, 0x0d, 0x0a][..]),
        "--force wrote a pcapng section header"
    );
    assert!(tshark_fields(&file, "", &["frame.number"]).is_empty());
    assert_eq!(
        hooks(&namespace, std::slice::from_ref(&interface)),
        hooks_before
    );
}

/// Without privileges the tracer says what it needs instead of failing somewhere in the load.
#[test]
fn unprivileged_trace_names_what_it_needs() {
    let binary = tracer_binary().to_string_lossy().into_owned();
    let root = nix::unistd::geteuid().is_root();
    let mut command = if root {
        // As nobody, with no capabilities left.
        let mut command = Command::new("setpriv");
        command.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--",
            &binary,
        ]);
        command
    } else {
        Command::new(&binary)
    };
    let output = command
        .args(["trace", "-i", "lo", "--duration", "1"])
        .stdin(Stdio::null())
        .output()
        .expect("running mptcp-tracer unprivileged");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("needs root")
            && stderr.contains("CAP_BPF")
            && stderr.contains("CAP_NET_ADMIN"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// A misspelt interface or namespace: exit 1, a message naming it, no file created and nothing
/// attached.
#[test]
fn unknown_interface_or_namespace_is_named_before_attaching() {
    let test = "unknown_interface_or_namespace_is_named_before_attaching";
    if !can_use_namespaces(test) {
        return;
    }
    let scratch = Scratch::new(test);
    let lab = Lab::new(&LabConfig {
        paths: 1,
        ..LabConfig::default()
    })
    .expect("building the lab");
    let namespace = lab.namespace(Side::Client).to_owned();
    let interface = lab.interface(Side::Client, 1).expect("path 1");
    let hooks_before = hooks(&namespace, std::slice::from_ref(&interface));
    let file = scratch.file("never.pcapng");
    let path = file.to_string_lossy().into_owned();

    // The good interface first: it must not be attached while the bad one is looked up.
    let run = tracer(&[
        "-v",
        "trace",
        "-i",
        &interface,
        "-i",
        "nosuch0",
        "--netns",
        &namespace,
        "-w",
        &path,
        "--duration",
        "1",
    ]);
    run.assert_no_panic();
    assert_eq!(run.code(), 1, "{}: {}", run.command, run.stderr);
    assert!(
        run.stderr.contains("interface nosuch0") && run.stderr.contains(&namespace),
        "the message names the interface and the namespace: {}",
        run.stderr
    );
    assert!(
        !run.stderr.contains(&format!("tracing {interface} ")),
        "{interface} was attached before nosuch0 was looked up: {}",
        run.stderr
    );
    assert!(!file.exists(), "{} was created", file.display());
    assert_eq!(
        hooks(&namespace, std::slice::from_ref(&interface)),
        hooks_before
    );

    let missing = format!("{namespace}-nosuch");
    let run = tracer(&[
        "trace",
        "-i",
        &interface,
        "--netns",
        &missing,
        "-w",
        &path,
        "--duration",
        "1",
    ]);
    run.assert_no_panic();
    assert_eq!(run.code(), 1, "{}: {}", run.command, run.stderr);
    assert!(
        run.stderr.contains(&format!("network namespace {missing}")),
        "the message names the namespace: {}",
        run.stderr
    );
    assert!(!file.exists(), "{} was created", file.display());
    assert_eq!(
        hooks(&namespace, std::slice::from_ref(&interface)),
        hooks_before
    );
}
