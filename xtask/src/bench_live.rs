//! `cargo xtask bench-live`: what live tracing costs an MPTCP transfer.
//!
//! Two lab namespaces joined by two veth paths without rate limit; one MPTCP transfer of a fixed
//! byte count per measurement, client → server, both subflows up before data flows. Each round
//! measures the same transfer several ways, interleaved (and rotated: each round starts with the
//! next way) so that drift in the machine's load hits all of them alike:
//! - untraced;
//! - traced: the release `mptcp-tracer trace --json` attached to both client interfaces
//!   (`--netns`), with `kernel.bpf_stats_enabled=1` for the in-kernel cost per program run (so
//!   the traced rate includes the statistics' own small cost);
//! - baseline (`--baseline REV`): the same with the tracer of another revision, built once per
//!   commit under `target/bench-baseline/` (its own target directory, seeded with this one's
//!   compiled dependencies);
//! - metrics: traced with `--metrics 127.0.0.1:PORT`, a thread here scraping `/metrics` every
//!   second;
//! - tcpdump: one tcpdump per client interface writing a file (the lab's tcpdump: `-U
//!   --immediate-mode`, filter `tcp`, snaplen = the tracer's capture length).
//!
//! With `--transport tcp` the transfers are plain TCP: the tracer parses every packet and lets it
//! pass without an event, which is what the traced host's other traffic costs.
//!
//! By default it runs once with the lab's default offloads (TSO/GSO/GRO off on the veths) and
//! once with them on. Either way TCP hands GSO super-packets to the TC egress hook (the stack
//! segments them after it), so a "packet" of the in-kernel cost is one skb at one hook.

use std::{
    collections::BTreeSet,
    fs,
    io::{BufRead, BufReader, Read},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use clap::{Args, ValueEnum};
use mptcp_lab::{
    CaptureSpec, EndpointMode, IpVersion, Lab, LabConfig, Side, TransferSpec, Transport,
};
use serde_json::Value;

/// Names of the tracer's two classifiers (`source/live/attach.rs`); bpftool shows them as is
/// (shorter than BPF_OBJ_NAME_LEN).
const PROGRAM_NAMES: [&str; 2] = ["mptcp_trc_in", "mptcp_trc_eg"];
/// The program that writes a CPU's unfinished event batch to the ring buffer when the tracer
/// asks (`source/live/batch.rs`; revisions before it have none). Its run time is part of the
/// in-kernel cost, its runs are not program runs of the per-run figure (they are no skbs).
const FLUSH_PROGRAM_NAME: &str = "mptcp_trc_flush";
/// Bytes of each packet the tracer copies (tracer_common::CAPTURE_LEN); tcpdump keeps as much.
const TRACER_CAPTURE_LEN: u32 = 192;
/// Clock ticks per second of /proc/PID/stat times (USER_HZ, 100 on every Linux architecture
/// that matters here).
const USER_HZ: f64 = 100.0;
const SYSCTL_BPF_STATS: &str = "/proc/sys/kernel/bpf_stats_enabled";
const PORT: u16 = 5201;
/// Bytes of the warm-up transfer that sizes the measured ones.
const WARM_UP_BYTES: u64 = 512 << 20;

/// Targets printed next to the results.
const TARGET_RATIO: f64 = 0.98;
const TARGET_NS_PER_PACKET: f64 = 100.0;
/// In-kernel ns per run of this revision over the baseline's (issue 9: halve it).
const TARGET_BASELINE_RATIO: f64 = 0.5;
/// How often the metrics way scrapes `/metrics`.
const SCRAPE_PERIOD: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Rounds of the ways (untraced, traced, metrics, tcpdump, and baseline with --baseline).
    #[arg(long, default_value_t = 9)]
    rounds: usize,
    /// Each transfer moves about this many seconds' worth of the untraced rate (sized by a
    /// warm-up transfer), at least --min-mib.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// The smallest transfer when sized by --seconds, in MiB (lower it for a quick run).
    #[arg(long, default_value_t = 4096)]
    min_mib: u64,
    /// A fixed byte count per transfer instead of sizing by --seconds.
    #[arg(long)]
    bytes: Option<u64>,
    /// Also trace with the tracer of this git revision (a commit, branch or tag), interleaved
    /// with the others: its in-kernel cost and rate next to this revision's.
    #[arg(long, value_name = "REV")]
    baseline: Option<String>,
    /// Veth offloads (TSO/GSO/GRO) during the runs.
    #[arg(long, value_enum, default_value_t = Offloads::Both)]
    offloads: Offloads,
    /// What the transfers are: MPTCP (every packet an event), or plain TCP, which the tracer
    /// parses and lets pass without an event (the cost of the other traffic of a traced host).
    #[arg(long, value_enum, default_value_t = TransferKind::Mptcp)]
    transport: TransferKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TransferKind {
    /// MPTCP sockets, both subflows up before data flows.
    Mptcp,
    /// Plain TCP sockets on the first path.
    Tcp,
}

impl TransferKind {
    fn transport(self) -> Transport {
        match self {
            Self::Mptcp => Transport::Mptcp,
            Self::Tcp => Transport::Tcp,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Mptcp => "MPTCP, 2 paths",
            Self::Tcp => "plain TCP (no events), 1 path",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Offloads {
    /// TSO/GSO/GRO off on the veths (the lab's default).
    Off,
    /// TSO/GSO/GRO on on the veths: GRO merges received segments before the ingress hook.
    On,
    /// Off, then on.
    Both,
}

pub fn bench_live(args: &BenchArgs) -> anyhow::Result<()> {
    ensure!(args.rounds > 0, "--rounds must be at least 1");
    ensure!(
        args.seconds > 0.0 && args.seconds.is_finite(),
        "--seconds must be more than 0"
    );
    ensure!(
        nix::unistd::geteuid().is_root(),
        "bench-live needs root (network namespaces, eBPF, bpf_stats): run it with sudo"
    );
    let tracer = build_tracer()?;
    let baseline = match &args.baseline {
        Some(revision) => Some(build_baseline(revision)?),
        None => None,
    };
    let tracers = Tracers {
        current: tracer,
        baseline,
    };
    let started = Instant::now();
    let load_before = load_average();
    let scratch = ScratchDir::create()?;
    let settings: &[bool] = match args.offloads {
        Offloads::Off => &[true],
        Offloads::On => &[false],
        Offloads::Both => &[true, false],
    };
    let mut reports = Vec::new();
    for &disable_offloads in settings {
        reports.push(bench_one(args, &tracers, &scratch.0, disable_offloads)?);
    }
    println!();
    for report in &reports {
        println!("{}", report.render());
    }
    println!(
        "bench-live took {:.0} s (after the build) on {} CPUs; 1-minute load average {} before, \
         {} after (other processes share the CPUs with the transfer)",
        started.elapsed().as_secs_f64(),
        thread::available_parallelism().map_or(0, usize::from),
        load_before,
        load_average()
    );
    Ok(())
}

/// The tracer binaries: this revision's and, with `--baseline`, the other one's.
struct Tracers {
    current: PathBuf,
    baseline: Option<Baseline>,
}

/// The baseline's tracer and the revision it was built from.
struct Baseline {
    binary: PathBuf,
    /// What the user gave, and the commit it named.
    revision: String,
    commit: String,
}

/// The ways of running a transfer, in their order in round 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Way {
    Untraced,
    Traced,
    Baseline,
    Metrics,
    Tcpdump,
}

impl Way {
    fn label(self) -> &'static str {
        match self {
            Way::Untraced => "untraced",
            Way::Traced => "traced",
            Way::Baseline => "baseline",
            Way::Metrics => "metrics",
            Way::Tcpdump => "tcpdump",
        }
    }

    /// Ways that run a tracer (and so have in-kernel statistics).
    fn traced(self) -> bool {
        matches!(self, Way::Traced | Way::Baseline | Way::Metrics)
    }
}

/// The ways a run measures: the baseline only with `--baseline`.
fn ways(with_baseline: bool) -> Vec<Way> {
    let mut ways = vec![Way::Untraced, Way::Traced];
    if with_baseline {
        ways.push(Way::Baseline);
    }
    ways.extend([Way::Metrics, Way::Tcpdump]);
    ways
}

/// What one traced way measured, summed over the rounds.
#[derive(Debug, Clone, Copy, Default)]
struct TracedTotals {
    kernel: ProgramStats,
    /// `kernel` of each program, in `PROGRAM_NAMES`' order (ingress, egress).
    per_program: [ProgramStats; 2],
    /// The flush program's runs (its time is in `kernel` too).
    flush: ProgramStats,
    drops: TracerDrops,
    user: TracerCpu,
    scrapes: Scrapes,
}

/// The measurements of one offload setting.
struct Report {
    disable_offloads: bool,
    transport: TransferKind,
    bytes: u64,
    ways: Vec<Way>,
    /// Per round, the rate of each way of `ways`, in the same order.
    rounds: Vec<Vec<f64>>,
    /// Per traced way of `ways`.
    traced: Vec<(Way, TracedTotals)>,
    baseline: Option<String>,
    tcpdump_problems: Vec<String>,
}

impl Report {
    fn rates(&self, way: Way) -> Vec<f64> {
        let column = self.ways.iter().position(|&w| w == way);
        column.map_or_else(Vec::new, |c| self.rounds.iter().map(|r| r[c]).collect())
    }

    fn totals(&self, way: Way) -> Option<&TracedTotals> {
        self.traced.iter().find(|(w, _)| *w == way).map(|(_, t)| t)
    }

    fn render(&self) -> String {
        let mark = |ok: bool| if ok { "✓" } else { "✗" };
        let untraced_rates = self.rates(Way::Untraced);
        let untraced = median(untraced_rates.clone());
        let names: Vec<&str> = self.ways.iter().map(|w| w.label()).collect();
        let gigabytes = self.bytes as f64 / 1e9;
        let mut out = format!(
            "Offloads {} — {} rounds × [{}] (order rotated each round), {} MiB ({gigabytes:.2} \
             GB) client → server per transfer, {}, no rate limit\n",
            if self.disable_offloads {
                "off (lab default: TSO/GSO/GRO off on the veths)"
            } else {
                "on (TSO/GSO/GRO on the veths)"
            },
            self.rounds.len(),
            names.join(", "),
            self.bytes >> 20,
            self.transport.describe(),
        );
        if let Some(baseline) = &self.baseline {
            out.push_str(&format!("  baseline: {baseline}\n"));
        }
        for (index, round) in self.rounds.iter().enumerate() {
            let rates: Vec<String> = self
                .ways
                .iter()
                .zip(round)
                .map(|(way, gbps)| format!("{} {gbps:.2}", way.label()))
                .collect();
            out.push_str(&format!(
                "  round {}: {} Gbit/s\n",
                index + 1,
                rates.join(", ")
            ));
        }
        out.push_str(&format!("  median untraced   {untraced:7.2} Gbit/s\n"));
        for &way in self.ways.iter().filter(|&&w| w != Way::Untraced) {
            let rates = self.rates(way);
            let ratio = median(rates.clone()) / untraced;
            // Per-round ratios pair each run with the untraced one next to it in time.
            let paired = median(
                rates
                    .iter()
                    .zip(&untraced_rates)
                    .map(|(rate, untraced)| rate / untraced)
                    .collect(),
            );
            let target = if way.traced() {
                format!("(target ≥ {TARGET_RATIO}) {}", mark(paired >= TARGET_RATIO))
            } else {
                String::new()
            };
            out.push_str(&format!(
                "  median {:<10} {:7.2} Gbit/s  {}/untraced {ratio:.3}, median of per-round \
                 ratios {paired:.3} {target}\n",
                way.label(),
                median(rates),
                way.label(),
            ));
        }
        for (way, totals) in &self.traced {
            out.push_str(&render_traced(*way, totals));
        }
        if let (Some(current), Some(baseline)) = (
            self.totals(Way::Traced).and_then(|t| t.kernel.ns_per_run()),
            self.totals(Way::Baseline)
                .and_then(|t| t.kernel.ns_per_run()),
        ) {
            let ratio = current / baseline;
            out.push_str(&format!(
                "  in-kernel ns/run  traced {current:.1} / baseline {baseline:.1} = {ratio:.3} \
                 (target ≤ {TARGET_BASELINE_RATIO}) {}\n",
                mark(ratio <= TARGET_BASELINE_RATIO)
            ));
        }
        if self.tcpdump_problems.is_empty() {
            out.push_str("  tcpdump lost no packets\n");
        } else {
            for problem in &self.tcpdump_problems {
                out.push_str(&format!("  tcpdump: {problem}\n"));
            }
        }
        out
    }
}

/// The lines of one traced way: in-kernel cost, CPU, drops (and scrapes for the metrics way).
fn render_traced(way: Way, totals: &TracedTotals) -> String {
    let mark = |ok: bool| if ok { "✓" } else { "✗" };
    let name = way.label();
    let mut out = String::new();
    match totals.kernel.ns_per_run() {
        Some(ns) => out.push_str(&format!(
            "  {name:<8} in-kernel {ns:7.1} ns per program run (one run per skb at each hook; \
             {} runs of {} programs in {} ns, bpf_stats on) (target ≤ {TARGET_NS_PER_PACKET}) \
             {}\n",
            totals.kernel.run_cnt,
            totals.kernel.programs,
            totals.kernel.run_time_ns,
            mark(ns <= TARGET_NS_PER_PACKET)
        )),
        None => out.push_str(&format!(
            "  {name:<8} in-kernel cost not measured (no runs counted)\n"
        )),
    }
    let [ingress, egress] = totals
        .per_program
        .map(|p| p.ns_per_run().unwrap_or(f64::NAN));
    out.push_str(&format!(
        "  {name:<8} per program: ingress {ingress:.1} ns × {} runs, egress {egress:.1} ns × {} \
         runs\n",
        totals.per_program[0].run_cnt, totals.per_program[1].run_cnt
    ));
    if totals.flush.programs > 0 {
        out.push_str(&format!(
            "  {name:<8} flush program (in the in-kernel time above, not in its runs): {} runs, \
             {} ns\n",
            totals.flush.run_cnt, totals.flush.run_time_ns
        ));
    }
    let user = &totals.user;
    if user.bytes > 0 && user.transfer_s > 0.0 {
        let gigabytes = user.bytes as f64 / 1e9;
        out.push_str(&format!(
            "  {name:<8} CPU: in-kernel {:.1} ms per GB traced ({:.1} % of one CPU), tracer \
             process {:.1} ms per GB ({:.1} % of one CPU; user + system)\n",
            totals.kernel.run_time_ns as f64 / 1e6 / gigabytes,
            totals.kernel.run_time_ns as f64 / 1e9 / user.transfer_s * 100.0,
            user.cpu_s * 1e3 / gigabytes,
            user.cpu_s / user.transfer_s * 100.0
        ));
    }
    let drops = totals.drops;
    out.push_str(&format!(
        "  {name:<8} drops {} (ring full {}, userspace lost {}, events emitted {} / received \
         {}) (target 0) {}\n",
        drops.total(),
        drops.ringbuf_full,
        drops.userspace_lost,
        drops.events_emitted,
        drops.events_received,
        mark(drops.total() == 0)
    ));
    if way == Way::Metrics {
        let scrapes = totals.scrapes;
        out.push_str(&format!(
            "  {name:<8} /metrics scraped every {} s: {} answers (mean {} bytes), {} failed\n",
            SCRAPE_PERIOD.as_secs(),
            scrapes.ok,
            scrapes.bytes.checked_div(scrapes.ok).unwrap_or(0),
            scrapes.failed
        ));
    }
    out
}

fn bench_one(
    args: &BenchArgs,
    tracers: &Tracers,
    scratch: &Path,
    disable_offloads: bool,
) -> anyhow::Result<Report> {
    let transport = args.transport.transport();
    log::info!(
        "building the lab (2 paths, no rate limit, offloads {})",
        if disable_offloads { "off" } else { "on" }
    );
    let lab = Lab::new(&LabConfig {
        paths: 2,
        endpoints: EndpointMode::ClientSubflow,
        disable_offloads,
        rate_mbit: None,
    })?;
    let interfaces = (1..=lab.paths())
        .map(|path| lab.interface(Side::Client, path))
        .collect::<Result<Vec<_>, _>>()?;
    let bytes = match args.bytes {
        Some(bytes) => bytes,
        None => {
            // The first transfer of a lab is slower (caches, slow start on new routes); size by
            // the faster of two.
            let warm_up = timed_transfer(&lab, transport, WARM_UP_BYTES)?.max(timed_transfer(
                &lab,
                transport,
                WARM_UP_BYTES,
            )?);
            let bytes = transfer_size(warm_up, args.seconds, args.min_mib);
            log::info!(
                "warm-up: {warm_up:.2} Gbit/s untraced; {} MiB per transfer",
                bytes >> 20
            );
            bytes
        }
    };

    let ways = ways(tracers.baseline.is_some());
    let mut rounds = Vec::new();
    let mut traced: Vec<(Way, TracedTotals)> = ways
        .iter()
        .filter(|w| w.traced())
        .map(|&w| (w, TracedTotals::default()))
        .collect();
    let mut tcpdump_problems = Vec::new();
    for round in 1..=args.rounds {
        let mut rates = vec![0.0; ways.len()];
        // Each round starts with the next way, so that none always runs first or last.
        for (column, way) in rotation(&ways, round) {
            rates[column] = match way {
                Way::Untraced => timed_transfer(&lab, transport, bytes)?,
                Way::Traced | Way::Baseline | Way::Metrics => {
                    let binary = match (way, &tracers.baseline) {
                        (Way::Baseline, Some(baseline)) => &baseline.binary,
                        _ => &tracers.current,
                    };
                    let run = traced_transfer(
                        &lab,
                        transport,
                        binary,
                        &interfaces,
                        bytes,
                        way == Way::Metrics,
                    )?;
                    if let Some((_, totals)) = traced.iter_mut().find(|(w, _)| *w == way) {
                        totals.kernel.add(&run.kernel);
                        totals.flush.add(&run.flush);
                        for (total, program) in totals.per_program.iter_mut().zip(&run.per_program)
                        {
                            total.add(program);
                        }
                        totals.drops.add(&run.drops);
                        totals.user.add(&run.user);
                        totals.scrapes.add(&run.scrapes);
                    }
                    run.gbps
                }
                Way::Tcpdump => {
                    let (gbps, problem) =
                        tcpdump_transfer(&lab, transport, &interfaces, scratch, bytes)?;
                    tcpdump_problems.extend(problem.map(|p| format!("round {round}: {p}")));
                    gbps
                }
            };
        }
        let line: Vec<String> = ways
            .iter()
            .zip(&rates)
            .map(|(way, gbps)| format!("{} {gbps:.2}", way.label()))
            .collect();
        log::info!("round {round}/{}: {} Gbit/s", args.rounds, line.join(", "));
        rounds.push(rates);
    }
    Ok(Report {
        disable_offloads,
        transport: args.transport,
        bytes,
        ways,
        rounds,
        traced,
        baseline: tracers.baseline.as_ref().map(|b| {
            format!(
                "{} ({}), {}",
                b.revision,
                &b.commit[..b.commit.len().min(12)],
                b.binary.display()
            )
        }),
        tcpdump_problems,
    })
}

/// The ways of round `round` (1-based) with their column in `ways`: rotated by one each round.
fn rotation(ways: &[Way], round: usize) -> Vec<(usize, Way)> {
    let mut order: Vec<(usize, Way)> = ways.iter().copied().enumerate().collect();
    if !order.is_empty() {
        let shift = (round - 1) % order.len();
        order.rotate_left(shift);
    }
    order
}

/// Bytes for a transfer of about `seconds` at `gbps`, in whole MiB, `min_mib` (at most 8 GiB)
/// to 8 GiB.
fn transfer_size(gbps: f64, seconds: f64, min_mib: u64) -> u64 {
    let bytes = gbps * 1e9 / 8.0 * seconds;
    let mib = (bytes / f64::from(1u32 << 20)).round();
    let floor = min_mib.clamp(1, 8192) as f64;
    (mib.clamp(floor, 8192.0) as u64) << 20
}

/// One client → server transfer of `bytes`; its rate in Gbit/s, timed from the moment the
/// subflows are up (MPTCP) or the connection is (TCP) to both applications' end.
fn timed_transfer(lab: &Lab, transport: Transport, bytes: u64) -> anyhow::Result<f64> {
    let session = lab.start_transfer(&TransferSpec {
        transport,
        ip_version: IpVersion::V4,
        path: 1,
        port: PORT,
        client_sends: bytes,
        server_sends: 0,
        wait_for_subflows: u8::from(transport == Transport::Mptcp),
        subflow_timeout: Duration::from_secs(5),
        timeout: Duration::from_secs(60),
    })?;
    let start = Instant::now();
    let counts = session.finish()?;
    let elapsed = start.elapsed().as_secs_f64();
    ensure!(
        counts.server_received == bytes,
        "the server read {} of {bytes} bytes",
        counts.server_received
    );
    Ok(gbit_per_s(counts.client_sent, elapsed))
}

fn gbit_per_s(bytes: u64, seconds: f64) -> f64 {
    bytes as f64 * 8.0 / seconds / 1e9
}

struct Traced {
    gbps: f64,
    kernel: ProgramStats,
    per_program: [ProgramStats; 2],
    flush: ProgramStats,
    drops: TracerDrops,
    user: TracerCpu,
    scrapes: Scrapes,
}

/// What the metrics way's scraper got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Scrapes {
    /// Answers with status 200.
    ok: u64,
    failed: u64,
    /// Bytes of the successful answers.
    bytes: u64,
}

impl Scrapes {
    fn add(&mut self, other: &Scrapes) {
        self.ok += other.ok;
        self.failed += other.failed;
        self.bytes += other.bytes;
    }
}

/// A thread that GETs `http://ADDRESS/metrics` every `SCRAPE_PERIOD` until stopped, as a
/// Prometheus server would (one request per connection).
struct Scraper {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Scrapes>,
}

impl Scraper {
    fn start(address: String) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let mut scrapes = Scrapes::default();
            let mut next = Instant::now();
            while !stopped.load(Ordering::Relaxed) {
                if Instant::now() >= next {
                    match scrape(&address) {
                        Ok(bytes) => {
                            scrapes.ok += 1;
                            scrapes.bytes += bytes;
                        }
                        Err(error) => {
                            log::warn!("scraping http://{address}/metrics: {error:#}");
                            scrapes.failed += 1;
                        }
                    }
                    next += SCRAPE_PERIOD;
                }
                thread::sleep(Duration::from_millis(20));
            }
            scrapes
        });
        Self { stop, thread }
    }

    fn stop(self) -> Scrapes {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

/// One `GET /metrics`; the body's length.
fn scrape(address: &str) -> anyhow::Result<u64> {
    let response = mptcp_lab::http_get(address, "/metrics", None, Duration::from_secs(5))?;
    ensure!(response.is_ok(), "answered {:?}", response.status);
    Ok(response.body.len() as u64)
}

/// The tracer process's own CPU time (user + system) during traced transfers.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct TracerCpu {
    cpu_s: f64,
    transfer_s: f64,
    bytes: u64,
}

impl TracerCpu {
    fn add(&mut self, other: &TracerCpu) {
        self.cpu_s += other.cpu_s;
        self.transfer_s += other.transfer_s;
        self.bytes += other.bytes;
    }
}

fn traced_transfer(
    lab: &Lab,
    transport: Transport,
    tracer: &Path,
    interfaces: &[String],
    bytes: u64,
    metrics: bool,
) -> anyhow::Result<Traced> {
    let _stats = BpfStats::enable()?;
    // The endpoint is bound before the tracer enters the namespace: loopback of this one.
    let metrics = metrics
        .then(|| {
            mptcp_lab::free_loopback_port()
                .map(|port| format!("127.0.0.1:{port}"))
                .context("finding a free loopback port")
        })
        .transpose()?;
    let process = TracerProcess::start(
        tracer,
        lab.namespace(Side::Client),
        interfaces,
        metrics.as_deref(),
    )?;
    let scraper = metrics.map(Scraper::start);
    let ids = process.program_ids()?;
    let programs_before = bpftool_programs()?;
    let ticks_before = process.cpu_ticks()?;
    let gbps = timed_transfer(lab, transport, bytes)?;
    let ticks_after = process.cpu_ticks()?;
    let programs_after = bpftool_programs()?;
    let before = program_stats(&programs_before, &PROGRAM_NAMES, &ids);
    let after = program_stats(&programs_after, &PROGRAM_NAMES, &ids);
    let per_program = PROGRAM_NAMES.map(|name| {
        program_stats(&programs_after, &[name], &ids).since(&program_stats(
            &programs_before,
            &[name],
            &ids,
        ))
    });
    let flush = program_stats(&programs_after, &[FLUSH_PROGRAM_NAME], &ids).since(&program_stats(
        &programs_before,
        &[FLUSH_PROGRAM_NAME],
        &ids,
    ));
    ensure!(
        after.programs + flush.programs == ids.len(),
        "bpftool shows {} of the tracer's {} programs ({ids:?})",
        after.programs + flush.programs,
        ids.len()
    );
    let mut kernel = after.since(&before);
    kernel.run_time_ns += flush.run_time_ns;
    let scrapes = scraper.map(Scraper::stop).unwrap_or_default();
    let report = process.stop()?;
    Ok(Traced {
        gbps,
        scrapes,
        // Only the transfer: the handshake and the time before it are left out.
        kernel,
        per_program,
        flush,
        drops: TracerDrops::from_report(&report)?,
        user: TracerCpu {
            cpu_s: ticks_after.saturating_sub(ticks_before) as f64 / USER_HZ,
            transfer_s: bytes as f64 * 8.0 / (gbps * 1e9),
            bytes,
        },
    })
}

/// tcpdump on every client interface during one transfer: the rate, and what went wrong with
/// the capture (lost packets) if anything did.
fn tcpdump_transfer(
    lab: &Lab,
    transport: Transport,
    interfaces: &[String],
    scratch: &Path,
    bytes: u64,
) -> anyhow::Result<(f64, Option<String>)> {
    let files: Vec<PathBuf> = interfaces
        .iter()
        .map(|interface| scratch.join(format!("{interface}.pcap")))
        .collect();
    let mut captures = Vec::new();
    for (interface, file) in interfaces.iter().zip(&files) {
        captures.push(lab.start_capture(&CaptureSpec {
            side: Side::Client,
            interface,
            snaplen: TRACER_CAPTURE_LEN,
            file,
            link_type: None,
            filter: Some("tcp"),
            buffer_kib: None,
        })?);
    }
    let gbps = timed_transfer(lab, transport, bytes)?;
    let mut problems = Vec::new();
    for capture in captures {
        if let Err(error) = capture.stop() {
            problems.push(error.to_string());
        }
    }
    for file in &files {
        let _ = fs::remove_file(file);
    }
    Ok((gbps, (!problems.is_empty()).then(|| problems.join("; "))))
}

/// `cargo build --release -p mptcp-tracer`; the binary's path from cargo's own report.
pub fn build_tracer() -> anyhow::Result<PathBuf> {
    log::info!("cargo build --release -p mptcp-tracer");
    Ok(mptcp_lab::build_binary(
        &crate::setup::workspace_root(),
        "mptcp-tracer",
        "mptcp-tracer",
        true,
    )?)
}

/// The release tracer of `revision`, built once per commit: its tree (`git archive`) in
/// `target/bench-baseline/COMMIT/src`, its own target directory next to it, seeded from this
/// workspace's release dependencies the first time so that only the workspace's crates compile.
fn build_baseline(revision: &str) -> anyhow::Result<Baseline> {
    let root = crate::setup::workspace_root();
    let output = Command::new("git")
        .current_dir(&root)
        .args(["rev-parse", "--verify", &format!("{revision}^{{commit}}")])
        .output()
        .context("running git rev-parse")?;
    ensure!(
        output.status.success(),
        "git rev-parse {revision}: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    let commit = String::from_utf8(output.stdout)?.trim().to_owned();
    let home = root.join("target/bench-baseline").join(&commit);
    let source = home.join("src");
    let target = home.join("target");
    if !source.join("Cargo.toml").is_file() {
        log::info!("exporting {revision} ({commit}) to {}", source.display());
        // Unpacked beside, renamed when complete: an interrupted export is not mistaken for one.
        let partial = home.join("src.partial");
        let _ = fs::remove_dir_all(&partial);
        fs::create_dir_all(&partial).with_context(|| format!("creating {}", partial.display()))?;
        let status = Command::new("sh")
            .current_dir(&root)
            .args([
                "-c",
                "git archive --format=tar \"$1\" | tar -x -C \"$2\"",
                "sh",
                &commit,
            ])
            .arg(&partial)
            .status()
            .context("running git archive | tar")?;
        ensure!(status.success(), "git archive {commit} | tar failed");
        fs::rename(&partial, &source)?;
    }
    let release = target.join("release");
    // Seeded before the seeding left our own package out, a target directory may hold another
    // revision's build-script output (see `seed_dependencies`): start that one afresh.
    let marker = release.join(SEEDED_MARKER);
    if release.join("deps").is_dir() && !marker.is_file() {
        log::info!("{} predates {SEEDED_MARKER}: removing it", target.display());
        fs::remove_dir_all(&target).with_context(|| format!("removing {}", target.display()))?;
    }
    if !release.join("deps").is_dir() {
        log::info!(
            "seeding {} with this workspace's dependencies",
            target.display()
        );
        let seeded = workspace_packages(&root).and_then(|packages| {
            seed_dependencies(&root.join("target/release"), &release, &packages)
        });
        if let Err(error) = seeded {
            log::warn!(
                "could not seed the baseline's target directory ({error:#}); it builds from scratch"
            );
        }
        fs::create_dir_all(&release)?;
        fs::write(&marker, "seeded without the workspace's own package\n")
            .with_context(|| format!("writing {}", marker.display()))?;
    }
    log::info!("cargo build --release -p mptcp-tracer for {revision} ({commit})");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&source)
        .args([
            "build",
            "--release",
            "-p",
            "mptcp-tracer",
            "--bin",
            "mptcp-tracer",
        ])
        .arg("--target-dir")
        .arg(&target)
        .status()
        .context("running cargo build for the baseline")?;
    ensure!(status.success(), "building the baseline {revision} failed");
    let binary = release.join("mptcp-tracer");
    ensure!(binary.is_file(), "no {} after the build", binary.display());
    Ok(Baseline {
        binary,
        revision: revision.to_owned(),
        commit,
    })
}

/// Written into a baseline's `target/release` once it is seeded the way `seed_dependencies`
/// seeds it. Renamed when the seeding changes, so that a directory seeded the old way is
/// started afresh.
const SEEDED_MARKER: &str = ".seeded-without-workspace-packages";

/// The names of this workspace's packages (`cargo metadata --no-deps`).
fn workspace_packages(root: &Path) -> anyhow::Result<Vec<String>> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let metadata = crate::setup::output(Command::new(cargo).current_dir(root).args([
        "metadata",
        "--no-deps",
        "--format-version",
        "1",
    ]))?;
    let metadata: Value = serde_json::from_str(&metadata).context("cargo metadata")?;
    let names = metadata["packages"]
        .as_array()
        .context("cargo metadata: no packages")?
        .iter()
        .filter_map(|package| package["name"].as_str().map(str::to_owned))
        .collect();
    Ok(names)
}

/// Copies the compiled dependencies of `from` (a `target/release`) into `to`. Registry crates'
/// fingerprints do not depend on the workspace's path, so they are fresh for the baseline's build
/// too. The workspace's own `packages` are left out: cargo hashes path packages by their path
/// relative to the workspace and checks their sources by mtime, older in the baseline's
/// `git archive` than in the copied fingerprints. So a copied `tracer-common` looked fresh, and
/// the baseline's programs were loaded with *this* revision's map value sizes ("invalid value
/// size 88, expected 56"); a copied build-script output of `mptcp-tracer` would embed this
/// revision's eBPF object.
fn seed_dependencies(from: &Path, to: &Path, packages: &[String]) -> anyhow::Result<()> {
    fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    // tar matches the patterns against member names as given (`deps/...`, no `./`), with
    // wildcards that also match `/`.
    let mut tar = Command::new("tar");
    tar.current_dir(from);
    for package in packages {
        let crate_name = package.replace('-', "_");
        tar.arg(format!("--exclude=deps/*{crate_name}-*"))
            .arg(format!("--exclude=build/{package}-*"))
            .arg(format!("--exclude=.fingerprint/{package}-*"));
    }
    let mut archive = tar
        .args(["-cf", "-", "deps", "build", ".fingerprint"])
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("copying {}", from.display()))?;
    let unpacked = Command::new("tar")
        .arg("-xf")
        .arg("-")
        .arg("-C")
        .arg(to)
        .stdin(archive.stdout.take().context("tar's stdout")?)
        .status()
        .with_context(|| format!("copying {}", from.display()))?;
    let archived = archive
        .wait()
        .with_context(|| format!("copying {}", from.display()))?;
    ensure!(
        archived.success() && unpacked.success(),
        "copying {} failed",
        from.display()
    );
    Ok(())
}

/// `mptcp-tracer -v trace --json` on the client's interfaces.
struct TracerProcess {
    child: Option<Child>,
    stdout: Option<JoinHandle<String>>,
    stderr: Option<JoinHandle<Vec<String>>>,
}

impl TracerProcess {
    /// Starts the tracer and returns once it has attached to every interface.
    fn start(
        binary: &Path,
        namespace: &str,
        interfaces: &[String],
        metrics: Option<&str>,
    ) -> anyhow::Result<Self> {
        let mut command = Command::new(binary);
        // -v: the "tracing IFACE (ifindex N) via TCX" lines say when it is attached. Live tables
        // go to stderr with --json; the default interval, as a user would run it.
        command.args(["-v", "trace", "--netns", namespace, "--json"]);
        if let Some(address) = metrics {
            command.args(["--metrics", address]);
        }
        for interface in interfaces {
            command.args(["-i", interface]);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {command:?}"))?;
        let mut stdout_pipe = child.stdout.take().context("no stdout pipe")?;
        let stdout = thread::spawn(move || {
            let mut text = String::new();
            let _ = stdout_pipe.read_to_string(&mut text);
            text
        });
        let stderr_pipe = child.stderr.take().context("no stderr pipe")?;
        let (attached_tx, attached_rx) = mpsc::channel();
        let wanted = interfaces.len();
        let stderr = thread::spawn(move || {
            let mut lines = Vec::new();
            let mut attached = 0;
            for line in BufReader::new(stderr_pipe).lines().map_while(Result::ok) {
                if line.contains("tracing ") && line.contains(" via ") {
                    attached += 1;
                }
                // The first live table (`[1.0 s] packets seen …`) comes after the attach too,
                // should the log lines change.
                if attached == wanted || line.contains("packets seen") {
                    let _ = attached_tx.send(());
                }
                lines.push(line);
            }
            lines
        });
        let mut process = Self {
            child: Some(child),
            stdout: Some(stdout),
            stderr: Some(stderr),
        };
        let timeout = Duration::from_secs(30);
        if attached_rx.recv_timeout(timeout).is_err() {
            let (status, stderr) = process.kill();
            bail!(
                "{command:?} did not attach within {timeout:?} ({status}):\n{}",
                stderr.join("\n")
            );
        }
        Ok(process)
    }

    /// The ids of the BPF programs the tracer holds open (its classifiers), from the
    /// `prog_id:` lines of /proc/PID/fdinfo: exact even when other tracers run.
    fn program_ids(&self) -> anyhow::Result<BTreeSet<u32>> {
        let pid = self.child.as_ref().context("tracer already stopped")?.id();
        let directory = format!("/proc/{pid}/fdinfo");
        let mut ids = BTreeSet::new();
        for entry in fs::read_dir(&directory).with_context(|| format!("reading {directory}"))? {
            let Ok(text) = fs::read_to_string(entry?.path()) else {
                continue; // an fd closed meanwhile
            };
            ids.extend(fdinfo_prog_id(&text));
        }
        ensure!(
            !ids.is_empty(),
            "the tracer (pid {pid}) holds no BPF program"
        );
        Ok(ids)
    }

    /// CPU time the tracer has used so far (user + system), in clock ticks.
    fn cpu_ticks(&self) -> anyhow::Result<u64> {
        let pid = self.child.as_ref().context("tracer already stopped")?.id();
        let path = format!("/proc/{pid}/stat");
        let stat = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        stat_cpu_ticks(&stat).with_context(|| format!("no utime/stime in {path}: {stat}"))
    }

    /// SIGINT, as Ctrl-C: the tracer detaches and prints its JSON report.
    fn stop(mut self) -> anyhow::Result<Value> {
        let mut child = self.child.take().context("tracer already stopped")?;
        let status = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .context("running kill")?;
        ensure!(status.success(), "kill -INT {} failed", child.id());
        let status = child.wait().context("waiting for the tracer")?;
        let stdout = self.stdout.take().map(|t| t.join().unwrap_or_default());
        let stderr = self.stderr.take().map(|t| t.join().unwrap_or_default());
        // Exit code 2 means "events lost", which the report's counters show.
        ensure!(
            matches!(status.code(), Some(0 | 2)),
            "the tracer failed ({status}):\n{}",
            stderr.unwrap_or_default().join("\n")
        );
        serde_json::from_str(&stdout.unwrap_or_default())
            .context("the tracer's --json output is not JSON")
    }

    fn kill(&mut self) -> (String, Vec<String>) {
        let status = match self.child.take() {
            Some(mut child) => {
                let _ = child.kill();
                child
                    .wait()
                    .map(|status| status.to_string())
                    .unwrap_or_default()
            }
            None => String::new(),
        };
        let stderr = self
            .stderr
            .take()
            .map(|t| t.join().unwrap_or_default())
            .unwrap_or_default();
        (status, stderr)
    }
}

impl Drop for TracerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// utime + stime of /proc/PID/stat, in clock ticks: fields 14 and 15, counted after the
/// command name's closing parenthesis (the name may hold spaces and parentheses).
fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    // after_name starts with field 3 (state): utime is field 14.
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The program id of a BPF program fd's fdinfo (`prog_id:\t123`); `None` for other fds.
fn fdinfo_prog_id(fdinfo: &str) -> Option<u32> {
    fdinfo
        .lines()
        .find_map(|line| line.strip_prefix("prog_id:"))
        .and_then(|id| id.trim().parse().ok())
}

/// Run time and run count summed over some BPF programs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct ProgramStats {
    programs: usize,
    run_time_ns: u64,
    run_cnt: u64,
}

impl ProgramStats {
    fn add(&mut self, other: &ProgramStats) {
        self.programs = self.programs.max(other.programs);
        self.run_time_ns += other.run_time_ns;
        self.run_cnt += other.run_cnt;
    }

    fn since(&self, earlier: &ProgramStats) -> ProgramStats {
        ProgramStats {
            programs: self.programs,
            run_time_ns: self.run_time_ns.saturating_sub(earlier.run_time_ns),
            run_cnt: self.run_cnt.saturating_sub(earlier.run_cnt),
        }
    }

    /// Mean nanoseconds per run (one run per packet and hook).
    fn ns_per_run(&self) -> Option<f64> {
        (self.run_cnt > 0).then(|| self.run_time_ns as f64 / self.run_cnt as f64)
    }
}

fn bpftool_programs() -> anyhow::Result<Value> {
    let output = Command::new("bpftool")
        .args(["prog", "show", "--json"])
        .output()
        .context("running bpftool prog show --json")?;
    ensure!(
        output.status.success(),
        "bpftool prog show --json failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
    serde_json::from_slice(&output.stdout).context("bpftool prog show --json: not JSON")
}

/// Sums `run_time_ns` and `run_cnt` of the programs in `bpftool prog show --json` output whose
/// id is in `ids` and whose name is one of `names`. bpftool leaves both fields out while a
/// program has not run with statistics on: they count as 0.
fn program_stats(programs: &Value, names: &[&str], ids: &BTreeSet<u32>) -> ProgramStats {
    let mut stats = ProgramStats::default();
    for program in programs.as_array().into_iter().flatten() {
        let id = program["id"].as_u64().and_then(|id| u32::try_from(id).ok());
        let name = program["name"].as_str();
        if id.is_some_and(|id| ids.contains(&id)) && name.is_some_and(|n| names.contains(&n)) {
            stats.programs += 1;
            stats.run_time_ns += program["run_time_ns"].as_u64().unwrap_or(0);
            stats.run_cnt += program["run_cnt"].as_u64().unwrap_or(0);
        }
    }
    stats
}

/// The tracer's own loss counters (`stats` of `trace --json`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct TracerDrops {
    ringbuf_full: u64,
    userspace_lost: u64,
    events_emitted: u64,
    events_received: u64,
}

impl TracerDrops {
    fn from_report(report: &Value) -> anyhow::Result<Self> {
        let stats = &report["stats"];
        let field = |name: &str| {
            stats[name]
                .as_u64()
                .with_context(|| format!("the tracer's JSON report has no stats.{name}"))
        };
        Ok(Self {
            ringbuf_full: field("ringbuf_full")?,
            userspace_lost: field("userspace_lost")?,
            events_emitted: field("events_emitted")?,
            events_received: field("events_received")?,
        })
    }

    fn add(&mut self, other: &TracerDrops) {
        self.ringbuf_full += other.ringbuf_full;
        self.userspace_lost += other.userspace_lost;
        self.events_emitted += other.events_emitted;
        self.events_received += other.events_received;
    }

    /// Events that did not reach the analysis: never queued (ring buffer full; those are not in
    /// `events_emitted`) plus queued but not received, which covers `userspace_lost` and any
    /// loss no counter names.
    fn total(&self) -> u64 {
        let unreceived = self.events_emitted.saturating_sub(self.events_received);
        self.ringbuf_full + unreceived.max(self.userspace_lost)
    }
}

/// The median; the mean of the two middle values for an even count. NaN for none.
fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    }
}

/// `kernel.bpf_stats_enabled=1` while alive; the previous value comes back on drop (errors
/// and panics included).
struct BpfStats {
    previous: String,
}

impl BpfStats {
    fn enable() -> anyhow::Result<Self> {
        let previous = fs::read_to_string(SYSCTL_BPF_STATS)
            .with_context(|| format!("reading {SYSCTL_BPF_STATS}"))?
            .trim()
            .to_owned();
        fs::write(SYSCTL_BPF_STATS, "1")
            .with_context(|| format!("writing 1 to {SYSCTL_BPF_STATS}"))?;
        Ok(Self { previous })
    }
}

impl Drop for BpfStats {
    fn drop(&mut self) {
        if let Err(error) = fs::write(SYSCTL_BPF_STATS, &self.previous) {
            log::error!(
                "could not restore {SYSCTL_BPF_STATS} to {}: {error}",
                self.previous
            );
        }
    }
}

/// A directory for the tcpdump files, removed on drop.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn create() -> anyhow::Result<Self> {
        let path = std::env::temp_dir().join(format!("mptcp-tracer-bench-{}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self(path))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The 1-minute load average, as /proc/loadavg gives it ("?" if unreadable).
fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The files a seeded baseline target directory gets from `from`, relative to it.
    fn seeded_files(from: &Path) -> BTreeSet<String> {
        let to = from.with_extension("seeded");
        let packages = ["mptcp-tracer".to_owned(), "tracer-common".to_owned()];
        seed_dependencies(from, &to, &packages).unwrap();
        let listing = Command::new("find")
            .current_dir(&to)
            .args([".", "-type", "f"])
            .output()
            .unwrap();
        String::from_utf8(listing.stdout)
            .unwrap()
            .lines()
            .map(|line| line.trim_start_matches("./").to_owned())
            .collect()
    }

    #[test]
    fn seeding_leaves_out_the_workspace_packages_and_their_build_script_output() {
        let from = std::env::temp_dir().join(format!("bench-seed-{}", std::process::id()));
        let _ = fs::remove_dir_all(&from);
        let files = [
            "deps/libserde-0123.rlib",
            "deps/libmptcp_tracer-4567.rlib",
            "deps/mptcp_tracer-4567.d",
            "deps/libtracer_common-a13d.rlib",
            "deps/tracer_common-a13d.d",
            ".fingerprint/tracer-common-a13d/lib-tracer_common",
            "build/aya-89ab/output",
            "build/mptcp-tracer-cdef/out/aya-build/target/tracer-ebpf",
            ".fingerprint/serde-0123/lib-serde",
            ".fingerprint/mptcp-tracer-cdef/run-build-script-build-script-build",
            "incremental/mptcp_tracer-1/s",
        ];
        for file in files {
            let path = from.join(file);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, "x").unwrap();
        }
        let seeded = seeded_files(&from);
        let _ = fs::remove_dir_all(&from);
        let _ = fs::remove_dir_all(from.with_extension("seeded"));
        let expected: BTreeSet<String> = [
            "deps/libserde-0123.rlib",
            "build/aya-89ab/output",
            ".fingerprint/serde-0123/lib-serde",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect();
        assert_eq!(seeded, expected);
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![9.4, 1.0, 5.0, 7.0, 8.0]), 7.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(vec![5.5]), 5.5);
        assert!(median(Vec::new()).is_nan());
    }

    #[test]
    fn every_way_takes_every_position() {
        use Way::*;
        let order = |round| -> Vec<Way> {
            rotation(&ways(false), round)
                .into_iter()
                .map(|(_, w)| w)
                .collect()
        };
        assert_eq!(order(1), [Untraced, Traced, Metrics, Tcpdump]);
        assert_eq!(order(2), [Traced, Metrics, Tcpdump, Untraced]);
        assert_eq!(order(4), [Tcpdump, Untraced, Traced, Metrics]);
        assert_eq!(order(5), order(1));
        // The column stays each way's own whatever the order.
        let all = ways(true);
        for round in 1..=6 {
            for (column, way) in rotation(&all, round) {
                assert_eq!(all[column], way);
            }
        }
        assert_eq!(all, [Untraced, Traced, Baseline, Metrics, Tcpdump]);
    }

    #[test]
    fn transfer_size_is_whole_mib_within_bounds() {
        // 8 Gbit/s for 2 s = 2e9 bytes = 1907.3 MiB.
        assert_eq!(transfer_size(8.0, 2.0, 64), 1907 << 20);
        assert_eq!(transfer_size(0.01, 2.0, 64), 64 << 20);
        assert_eq!(transfer_size(1000.0, 10.0, 64), 8192 << 20);
        // The default floor: at least 4 GiB whatever the rate.
        assert_eq!(transfer_size(8.0, 2.0, 4096), 4096 << 20);
        assert_eq!(transfer_size(1000.0, 10.0, 9000), 8192 << 20);
    }

    /// `/proc/PID/fdinfo` of a running `mptcp-tracer trace -i lo`: a program fd and a TCX link
    /// fd both name the program (kernel 6.18).
    const FDINFO_PROGRAM: &str = "pos:\t0\nflags:\t02000002\nmnt_id:\t17\nino:\t1039\n\
        prog_type:\t3\nprog_jited:\t1\nprog_tag:\t563563c735c83605\nmemlock:\t12288\n\
        prog_id:\t580\nrun_time_ns:\t0\nrun_cnt:\t0\nrecursion_misses:\t0\n\
        verified_insns:\t13912\n";
    const FDINFO_LINK: &str = "pos:\t0\nflags:\t02000000\nmnt_id:\t17\nino:\t1039\n\
        link_type:\ttcx\nlink_id:\t293\nprog_tag:\t56bd95d28be7bc58\nprog_id:\t579\n\
        ifindex:\t1\nattach_type:\t46 (ingress)\n";
    const FDINFO_PIPE: &str = "pos:\t0\nflags:\t02000000\nmnt_id:\t15\nino:\t70241\n";

    #[test]
    fn cpu_ticks_from_proc_stat() {
        // A real /proc/PID/stat line (`cat`): utime 0, stime 0.
        let cat = "27882 (cat) R 27880 27880 32674 0 -1 4194304 100 0 0 0 0 0 0 0 20 0 1 0 \
                   378289 3133440 359 18446744073709551615";
        assert_eq!(stat_cpu_ticks(cat), Some(0));
        // A name with spaces and a parenthesis; utime 250, stime 31.
        let odd = "42 (mptcp (x) tracer) S 1 42 42 0 -1 4194304 900 0 0 0 250 31 0 0 20 0 3 0 \
                   1000 100000 200";
        assert_eq!(stat_cpu_ticks(odd), Some(281));
        assert_eq!(stat_cpu_ticks("42 (short) S 1 2"), None);
    }

    #[test]
    fn program_ids_from_fdinfo() {
        assert_eq!(fdinfo_prog_id(FDINFO_PROGRAM), Some(580));
        assert_eq!(fdinfo_prog_id(FDINFO_LINK), Some(579));
        assert_eq!(fdinfo_prog_id(FDINFO_PIPE), None);
    }

    /// `bpftool prog show --json` (v7.1.0) with bpf_stats on while two tracers ran: ours
    /// (591/592) and someone else's with the same program names (585/586).
    const BPFTOOL_SAMPLE: &str = r#"[{"id":585,"type":"sched_cls","name":"mptcp_trc_in","tag":"f7ac1a8d7372cf95","gpl_compatible":true,"run_time_ns":386361,"run_cnt":1495,"loaded_at":1795700271,"uid":0,"bytes_xlated":7376,"jited":true,"bytes_jited":4466,"bytes_memlock":8192,"map_ids":[774,773,771,772],"btf_id":563},{"id":586,"type":"sched_cls","name":"mptcp_trc_eg","tag":"acfd0c8529029b83","gpl_compatible":true,"run_time_ns":799456,"run_cnt":1544,"loaded_at":1795700271,"uid":0,"bytes_xlated":7384,"jited":true,"bytes_jited":4471,"bytes_memlock":8192,"map_ids":[774,773,771,772],"btf_id":563},{"id":591,"type":"sched_cls","name":"mptcp_trc_in","tag":"56bd95d28be7bc58","gpl_compatible":true,"run_time_ns":2921,"run_cnt":6,"loaded_at":1795700271,"uid":0,"bytes_xlated":8320,"jited":true,"bytes_jited":4980,"bytes_memlock":12288,"map_ids":[779,778,780,781],"btf_id":572},{"id":592,"type":"sched_cls","name":"mptcp_trc_eg","tag":"563563c735c83605","gpl_compatible":true,"run_time_ns":5066,"run_cnt":6,"loaded_at":1795700271,"uid":0,"bytes_xlated":8328,"jited":true,"bytes_jited":4985,"bytes_memlock":12288,"map_ids":[779,778,780,781],"btf_id":572}]"#;
    /// The same program before it ran: bpftool leaves run_time_ns and run_cnt out.
    const BPFTOOL_NOT_RUN: &str = r#"[{"id":579,"type":"sched_cls","name":"mptcp_trc_in","tag":"56bd95d28be7bc58","gpl_compatible":true,"loaded_at":1795700264,"uid":0,"bytes_xlated":8320,"jited":true,"bytes_jited":4980,"bytes_memlock":12288,"map_ids":[766,764,765,767],"btf_id":554}]"#;

    #[test]
    fn program_stats_count_only_our_programs() {
        let programs: Value = serde_json::from_str(BPFTOOL_SAMPLE).expect("JSON");
        let ours = BTreeSet::from([591, 592]);
        // The run counts the kernel's fdinfo gave for 591 and 592 at the same moment.
        assert_eq!(
            program_stats(&programs, &PROGRAM_NAMES, &ours),
            ProgramStats {
                programs: 2,
                run_time_ns: 2921 + 5066,
                run_cnt: 12,
            }
        );
        // Names alone would take the other tracer's programs too.
        let everything = BTreeSet::from([585, 586, 591, 592]);
        assert_eq!(
            program_stats(&programs, &PROGRAM_NAMES, &everything).run_cnt,
            1495 + 1544 + 12
        );
        // An id of ours under another name is not one of the classifiers.
        assert_eq!(
            program_stats(&programs, &["mptcp_trc_in"], &ours),
            ProgramStats {
                programs: 1,
                run_time_ns: 2921,
                run_cnt: 6,
            }
        );
        let not_run: Value = serde_json::from_str(BPFTOOL_NOT_RUN).expect("JSON");
        let stats = program_stats(&not_run, &PROGRAM_NAMES, &BTreeSet::from([579]));
        assert_eq!((stats.programs, stats.run_cnt), (1, 0));
        assert_eq!(stats.ns_per_run(), None);
    }

    #[test]
    fn program_stats_of_the_transfer_alone() {
        let before = ProgramStats {
            programs: 2,
            run_time_ns: 7_987,
            run_cnt: 12,
        };
        let after = ProgramStats {
            programs: 2,
            run_time_ns: 1_007_987,
            run_cnt: 10_012,
        };
        let transfer = after.since(&before);
        assert_eq!(
            (transfer.run_time_ns, transfer.run_cnt),
            (1_000_000, 10_000)
        );
        assert_eq!(transfer.ns_per_run(), Some(100.0));
    }

    #[test]
    fn tracer_drops_from_its_json_report() {
        // The head of a real `trace --json` report (-i lo, three refused connections).
        let report: Value = serde_json::from_str(
            r#"{"stats":{"packets_seen":12,"tcp_packets":12,"mptcp_packets":0,
                "events_emitted":0,"ringbuf_full":0,"load_errors":0,"filtered":0,
                "events_received":0,"userspace_lost":0},
                "mptcp":{"mptcp_connections":[],"orphan_subflows":[]},
                "summaries":[],"warnings":[]}"#,
        )
        .expect("JSON");
        let drops = TracerDrops::from_report(&report).expect("stats");
        assert_eq!(drops, TracerDrops::default());
        assert_eq!(drops.total(), 0);
        assert!(TracerDrops::from_report(&serde_json::json!({"stats": {}})).is_err());

        let lossy = TracerDrops {
            ringbuf_full: 5,
            userspace_lost: 1,
            events_emitted: 100,
            events_received: 95,
        };
        assert_eq!(lossy.total(), 5 + 5);
        let unexplained = TracerDrops {
            events_emitted: 100,
            events_received: 90,
            ..TracerDrops::default()
        };
        assert_eq!(unexplained.total(), 10);
    }
}
