//! Live events: load the embedded eBPF object, attach the TC classifiers, read the ring buffer
//! with tokio and hand every event, as a `RawPacket`, to an `EventSink` (and, with `-w`, to a
//! `CaptureWriter`). What the events mean is not this module's business: `crate::live` drives
//! a trace into the analysis and the pcapng writer.
//!
//! Before attaching, filters a killed tracer left on the interfaces are removed, with a warning
//! saying so (`stale`); `cleanup` removes them without tracing. The run ends on SIGINT/SIGTERM,
//! `duration`, the caller's `stop` flag, every interface gone, or `on_interval` returning
//! `Break` (the caller's reader went away).
//!
//! The whole run — namespace switch, attach, polling, detach — happens on the calling thread:
//! interface names, TCX links and netlink requests resolve in the network namespace of the thread
//! that makes them, and `on_interval` borrows the caller's state. A caller's `SideTask` (the
//! `--metrics` endpoint) runs on the same event loop, between the loop's own turns.

mod attach;
mod batch;
mod capture;
mod netns;
mod privileges;
mod program_runs;
mod reorder;
mod stale;
mod tc_filters;
#[cfg(test)]
mod tests;

use std::{
    collections::HashMap,
    fmt, io,
    net::IpAddr,
    ops::ControlFlow,
    path::PathBuf,
    pin::Pin,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, SystemTime},
};

use aya::{
    Ebpf, EbpfLoader,
    maps::{MapData, MapError, PerCpuArray, RingBuf},
};
use nix::time::{ClockId, clock_gettime};
use tokio::{
    io::unix::AsyncFd,
    signal::unix::{SignalKind, signal},
    time::{Instant, MissedTickBehavior},
};
use tracer_common::{
    ADDR_ANY, ADDR_IPV4, ADDR_IPV6, Counters, DIRECTION_INGRESS, EventHeader, FLAG_FOLDED,
    FLAG_MARK, FilterConfig, StateView, counter,
};

pub(crate) use self::{attach::error_chain, capture::CaptureWriter};
use self::{
    attach::{Attached, EGRESS_PROGRAM, INGRESS_PROGRAM, Mechanism},
    netns::NetnsGuard,
};
pub use self::{capture::Rotation, program_runs::ProgramRuns};
use crate::source::{Direction, LinkType, RawPacket};

/// How the classifiers are attached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AttachMode {
    /// TCX on kernels that have it (≥ 6.6), netlink clsact otherwise.
    #[default]
    Auto,
    Tcx,
    Netlink,
}

#[derive(Clone, Debug, Default)]
pub struct TraceOptions {
    pub interfaces: Vec<String>,
    /// Network namespace (a name under /run/netns) the interfaces live in.
    pub netns: Option<String>,
    /// pcapng file of the events.
    pub write: Option<PathBuf>,
    /// Overwrite `write` if it exists.
    pub force: bool,
    /// When `write` moves on to a new file (`-C`, `-G`, `-W`).
    pub rotation: Rotation,
    /// Stop after this long (otherwise on SIGINT/SIGTERM).
    pub duration: Option<Duration>,
    /// How often `on_interval` is called.
    pub interval: Duration,
    pub all_tcp: bool,
    /// Fold consecutive pure DATA_ACKs of a flow (no payload, options NOP, NOP, timestamps and a
    /// DSS with only a DATA_ACK, each acknowledging at least what the last did) into one event
    /// that counts them, as a GSO batch counts its segments: the summaries stay the same, the
    /// kernel queues a fraction of the events. Off: one event per packet; also off whatever
    /// this says while `write` is set (the file holds every packet).
    pub fold_acks: bool,
    pub port: Option<u16>,
    pub addr: Option<IpAddr>,
    pub attach: AttachMode,
    /// Set by the caller to end the trace as SIGINT would: for programs that run `trace` on a
    /// thread (the demo) and must stop it without signalling the whole process.
    pub stop: Option<Arc<AtomicBool>>,
    /// Run on the trace's event loop while it traces (the `--metrics` endpoint).
    pub side_task: Option<SideTask>,
}

/// A task the caller wants run on the trace's event loop, beside the ring buffer: started once
/// the loop runs, dropped with the loop when the trace ends. Sharing the loop (one thread)
/// means the task never runs while `on_interval` does, so what it reads of the caller's state
/// is never half updated. What the task does is not this module's business.
#[derive(Clone)]
pub struct SideTask(Arc<dyn Fn() -> SideFuture + Send + Sync>);

/// The future a `SideTask` makes for one run.
pub type SideFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

impl SideTask {
    /// `make` is called once per run, inside the event loop's runtime (so it may register
    /// sockets with it).
    pub fn new(make: impl Fn() -> SideFuture + Send + Sync + 'static) -> Self {
        SideTask(Arc::new(make))
    }
}

impl fmt::Debug for SideTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SideTask")
    }
}

/// Counters of one run: what the kernel saw and what reached the analysis.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct LiveStats {
    pub packets_seen: u64,
    pub tcp_packets: u64,
    pub mptcp_packets: u64,
    pub events_emitted: u64,
    /// Events the kernel could not queue because the ring buffer was full.
    pub ringbuf_full: u64,
    pub load_errors: u64,
    pub filtered: u64,
    /// Events received by userspace.
    pub events_received: u64,
    /// Events received but lost in userspace (e.g. short reads).
    pub userspace_lost: u64,
    /// Events that were GSO batches (`gso_segs` > 1): TC egress runs before GSO splits TCP's
    /// batches, so one such event stands for several packets on the wire.
    pub gso_batches: u64,
    /// Events that stood for several pure ACKs of one flow, folded in the kernel
    /// (`TraceOptions::fold_acks`).
    pub folded_events: u64,
    /// Wire packets the received events stand for: each event's `gso_segs`, at least 1.
    pub wire_packets: u64,
    /// Interfaces traced now: those attached, less those that disappeared since. Not in the
    /// JSON document (its `stats` are counters of the run).
    #[serde(skip)]
    pub interfaces_attached: u64,
    /// The classifiers' in-kernel run time and count, while the kernel keeps them (empty
    /// otherwise). Not in the JSON document: bench-live and `--metrics` read them.
    #[serde(skip)]
    pub program_runs: Vec<ProgramRuns>,
    /// When the counters were last read, on the events' clock (nanoseconds since the Unix
    /// epoch): the kernel's monotonic clock shifted by the wall clock's offset at the start,
    /// as every event's timestamp is. What a long run measures idle and quiet times against:
    /// the wall clock itself may jump while a trace runs (an NTP step, a VM or laptop resumed),
    /// and compared with the events' timestamps a jump forward would end every connection as
    /// idle at once (one back would keep ended ones for as long as it went back). A reader
    /// that is behind is as far as it read: the events still queued are not idle.
    #[serde(skip)]
    pub now_ns: u64,
}

impl LiveStats {
    /// `now_ns` as a time.
    pub fn now(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_nanos(self.now_ns)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// Not root and missing capabilities; the message names them.
    #[error("{0}")]
    Privileges(String),
    #[error(
        "this mptcp-tracer was built without its eBPF object (the `ebpf` feature); run `cargo xtask setup` \
         and rebuild to trace live"
    )]
    BuiltWithoutEbpf,
    #[error("network namespace {name}: {reason}")]
    Netns { name: String, reason: String },
    #[error("interface {name}: {reason}")]
    Interface { name: String, reason: String },
    #[error("loading the eBPF programs failed: {0}")]
    Load(String),
    #[error("attaching to {interface} ({direction}) failed: {reason}")]
    Attach {
        interface: String,
        direction: &'static str,
        reason: String,
    },
    /// The `-w` file could not be created or prepared; the message names it.
    #[error("{0}")]
    Write(String),
    #[error("reading events failed: {0}")]
    Read(#[source] io::Error),
    #[error("{0}")]
    Other(String),
}

/// The ring buffer is read at least this often: the classifiers ask for a wakeup only once a
/// quarter MiB is queued, so at low rates this timer is what delivers the events.
const POLL_PERIOD: Duration = Duration::from_millis(50);
/// The pcapng file is flushed and the interfaces are checked this often.
const HOUSEKEEPING_PERIOD: Duration = Duration::from_secs(1);

/// Each program's verified instruction count ("processed N insns" in the verifier log; the
/// kernel reports the same number as `bpf_prog_info.verified_insns`) under each of
/// `verified_settings`, named "program (settings)". Loads, does not attach.
pub fn verifier_stats() -> Result<Vec<(String, u32)>, LiveError> {
    privileges::check(false)?;
    privileges::raise_memlock_limit();
    let mut counts = Vec::new();
    for (label, config) in verified_settings() {
        let mut ebpf = load_object(&config)?;
        for name in [INGRESS_PROGRAM, EGRESS_PROGRAM] {
            let program = attach::classifier(&mut ebpf, name)?;
            let info = program
                .info()
                .map_err(|e| LiveError::Load(format!("{name}: {}", error_chain(&e))))?;
            let count = info.verified_instruction_count().ok_or_else(|| {
                LiveError::Load(format!(
                    "the kernel does not report verified instructions for {name} (needs ≥ 5.16)"
                ))
            })?;
            counts.push((format!("{name} ({label})"), count));
        }
    }
    Ok(counts)
}

/// Settings the verifier sees different programs for (it removes what a setting rules out):
/// the default, a file's (every packet, nothing folded), and each filter with either address
/// family.
fn verified_settings() -> [(&'static str, FilterConfig); 4] {
    let filtered = FilterConfig {
        all_tcp: 1,
        fold_acks: 1,
        port: 443,
        ..FilterConfig::default()
    };
    [
        (
            "default",
            FilterConfig {
                fold_acks: 1,
                ..FilterConfig::default()
            },
        ),
        ("every packet", FilterConfig::default()),
        (
            "--all-tcp --port --addr IPv4",
            FilterConfig {
                addr_family: ADDR_IPV4,
                ipv4_addr: [10, 0, 0, 1],
                ..filtered
            },
        ),
        (
            "--all-tcp --port --addr IPv6",
            FilterConfig {
                addr_family: ADDR_IPV6,
                ipv6_addr: [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                ..filtered
            },
        ),
    ]
}

/// Where events go: the analyzer in `crate::live::trace`, a recorder in the tests.
pub(crate) trait EventSink {
    fn packet(&mut self, raw: &RawPacket<'_>);
}

#[cfg(feature = "ebpf")]
fn object_bytes() -> Result<&'static [u8], LiveError> {
    Ok(aya::include_bytes_aligned!(concat!(
        env!("OUT_DIR"),
        "/tracer"
    )))
}

#[cfg(not(feature = "ebpf"))]
fn object_bytes() -> Result<&'static [u8], LiveError> {
    Err(LiveError::BuiltWithoutEbpf)
}

/// Loads the maps and both programs into the kernel (verifier included), attaching nothing.
/// `config` is part of the programs (see `FILTER` in the eBPF crate): the verifier removes the
/// code it rules out.
fn load_object(config: &FilterConfig) -> Result<Ebpf, LiveError> {
    let bytes = object_bytes()?;
    let mut ebpf = EbpfLoader::new()
        .override_global("FILTER", config, true)
        .load(bytes)
        .map_err(|e| LiveError::Load(error_chain(&e)))?;
    for name in [INGRESS_PROGRAM, EGRESS_PROGRAM] {
        attach::classifier(&mut ebpf, name)?
            .load()
            .map_err(|e| LiveError::Load(format!("{name}: {}", error_chain(&e))))?;
    }
    batch::load(&mut ebpf)?;
    Ok(ebpf)
}

fn filter_config(options: &TraceOptions) -> FilterConfig {
    let mut config = FilterConfig {
        all_tcp: u8::from(options.all_tcp),
        // A file holds every packet (also the one `--plot` draws from).
        fold_acks: u8::from(options.fold_acks && options.write.is_none()),
        port: options.port.unwrap_or(0),
        addr_family: ADDR_ANY,
        ..FilterConfig::default()
    };
    match options.addr {
        Some(IpAddr::V4(addr)) => {
            config.addr_family = ADDR_IPV4;
            config.ipv4_addr = addr.octets();
        }
        Some(IpAddr::V6(addr)) => {
            config.addr_family = ADDR_IPV6;
            config.ipv6_addr = addr.octets();
        }
        None => {}
    }
    config
}

/// A live run, generic over where the events go. `make_writer` is called once the privileges
/// and the interfaces are known good, so that a run refused early leaves no file behind.
pub(crate) fn run<S: EventSink>(
    options: &TraceOptions,
    sink: &mut S,
    make_writer: impl FnOnce() -> Result<Option<Box<dyn CaptureWriter>>, LiveError>,
    on_interval: &mut dyn FnMut(&mut S, &LiveStats) -> ControlFlow<()>,
) -> Result<(LiveStats, Vec<String>), LiveError> {
    object_bytes()?;
    privileges::check(options.netns.is_some())?;
    if options.interval.is_zero() {
        return Err(LiveError::Other(
            "the report interval must be longer than zero".into(),
        ));
    }
    let _netns = options
        .netns
        .as_deref()
        .map(NetnsGuard::enter)
        .transpose()?;
    let interfaces = attach::resolve(&options.interfaces, options.netns.as_deref())?;
    let stale_warnings = stale::remove_at_start(&interfaces, options.netns.as_deref());

    // Only now, with the privileges and the interfaces known good, create the file.
    let mut writer = make_writer()?;
    let mut iface_ids = HashMap::new();
    if let Some(writer) = writer.as_mut() {
        for interface in &interfaces {
            let id = writer
                .add_interface(&interface.name, interface.ifindex, options.netns.as_deref())
                .map_err(LiveError::Write)?;
            iface_ids.insert(interface.ifindex, id);
        }
    }

    privileges::raise_memlock_limit();
    let mut ebpf = load_object(&filter_config(options))?;
    let ring: RingBuf<MapData> = RingBuf::try_from(
        ebpf.take_map("EVENTS")
            .ok_or_else(|| LiveError::Load("no EVENTS map".into()))?,
    )
    .map_err(|e| LiveError::Load(error_chain(&e)))?;
    let counters: StateMap = PerCpuArray::try_from(
        ebpf.take_map("STATE")
            .ok_or_else(|| LiveError::Load("no STATE map".into()))?,
    )
    .map_err(|e| LiveError::Load(error_chain(&e)))?;

    // Watch for SIGINT/SIGTERM before attaching: a Ctrl-C during attach then still detaches
    // instead of killing the process with clsact filters left behind.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| LiveError::Other(format!("cannot start the event loop: {e}")))?;
    let mut signals = {
        let _guard = runtime.enter();
        let watch = |kind| {
            signal(kind)
                .map_err(|e| LiveError::Other(format!("cannot watch for SIGINT/SIGTERM: {e}")))
        };
        Signals {
            interrupt: watch(SignalKind::interrupt())?,
            terminate: watch(SignalKind::terminate())?,
        }
    };

    let mut attached = Attached::new(ebpf);
    for interface in &interfaces {
        if signals.pending() {
            return Err(LiveError::Other("interrupted while attaching".into()));
        }
        let mechanism = attached.attach(interface, options.attach)?;
        log::info!(
            "tracing {} (ifindex {}) via {}",
            interface.name,
            interface.ifindex,
            match mechanism {
                Mechanism::Tcx => "TCX",
                Mechanism::Netlink { .. } => "clsact",
            }
        );
    }

    let mut collector = Collector {
        sink,
        writer,
        iface_ids,
        stats: LiveStats::default(),
        clock_offset_ns: monotonic_to_realtime_offset(),
        warnings: stale_warnings,
        write_failed: false,
        behind: false,
        last_event_ns: 0,
        flush_failed: false,
        round: 0,
        reorder: reorder::Reorder::default(),
        handed_on: 0,
        reorder_overfull: false,
    };
    let mut ring = {
        let _guard = runtime.enter();
        // SAFETY: the ring buffer owns its map fd, which stays open and the same for as long as
        // the AsyncFd owns the ring buffer.
        unsafe { AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE) }
            .map_err(|e| LiveError::Read(e.into_parts().1))?
    };
    collector.stats.interfaces_attached = interfaces.len() as u64;
    let looped = runtime.block_on(async {
        // Spawned inside the loop's runtime: it runs while the loop does, and goes with the
        // runtime when the trace ends.
        if let Some(task) = &options.side_task {
            tokio::spawn((task.0)());
        }
        poll_loop(
            options,
            signals,
            &mut ring,
            &counters,
            &mut attached,
            &mut collector,
            on_interval,
        )
        .await
    });

    // Detach first, then collect what the programs queued before they went.
    collector.warnings.extend(attached.detach());
    collector.collect_last_batches(&attached.ebpf, &counters);
    collector.drain(ring.get_mut());
    collector.refresh(&counters);
    collector.flush();
    looped?;
    Ok((collector.stats, collector.warnings))
}

/// `trace --cleanup`: removes the filters of an earlier mptcp-tracer that no live process holds
/// (see `stale`) from the interfaces, nothing else; returns what it removed, one line each (and
/// a line per interface whose clsact qdisc is left empty).
pub fn cleanup(interfaces: &[String], netns: Option<&str>) -> Result<Vec<String>, LiveError> {
    privileges::check(netns.is_some())?;
    let _netns = netns.map(NetnsGuard::enter).transpose()?;
    let interfaces = attach::resolve(interfaces, netns)?;
    let mut removed = Vec::new();
    for interface in &interfaces {
        let fail = |e: io::Error| LiveError::Interface {
            name: interface.name.clone(),
            reason: format!("cleaning up stale filters: {e}"),
        };
        let stale = stale::remove(interface).map_err(fail)?;
        for filter in &stale {
            removed.push(format!("{}: removed {}", interface.name, filter.describe()));
        }
        // Whether the killed tracer created the qdisc is not known: say it may go, not more.
        if !stale.is_empty()
            && tc_filters::list(interface.ifindex)
                .map_err(fail)?
                .is_empty()
        {
            removed.push(format!(
                "{}: its clsact qdisc now holds no filter; `tc qdisc del dev {} clsact` removes \
                 it if nothing else needs it",
                interface.name, interface.name
            ));
        }
    }
    Ok(removed)
}

/// SIGINT and SIGTERM, registered with the event loop.
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    /// Whether one arrived already (checked between attachments, before the loop runs).
    fn pending(&mut self) -> bool {
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        self.interrupt.poll_recv(&mut context).is_ready()
            || self.terminate.poll_recv(&mut context).is_ready()
    }
}

async fn poll_loop<S: EventSink>(
    options: &TraceOptions,
    mut signals: Signals,
    ring: &mut AsyncFd<RingBuf<MapData>>,
    counters: &StateMap,
    attached: &mut Attached,
    collector: &mut Collector<'_, S>,
    on_interval: &mut dyn FnMut(&mut S, &LiveStats) -> ControlFlow<()>,
) -> Result<(), LiveError> {
    let start = Instant::now();
    let deadline = options.duration.map(|d| start + d);
    let mut poll = tokio::time::interval(POLL_PERIOD);
    poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut report = tokio::time::interval_at(start + options.interval, options.interval);
    report.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut housekeeping =
        tokio::time::interval_at(start + HOUSEKEEPING_PERIOD, HOUSEKEEPING_PERIOD);

    loop {
        tokio::select! {
            ready = ring.readable_mut() => {
                let mut guard = ready.map_err(LiveError::Read)?;
                collector.drain_some(guard.get_inner_mut());
                // Records left are the next branch's: ready again at once, this one would read
                // batch after batch without yielding to the metrics endpoint in between.
                guard.clear_ready();
            }
            // Records left by a batch: one more batch each time round, after the other branches
            // and tasks (the metrics endpoint) had their turn. The kernel wakes the reader only
            // when the queue crosses its threshold, so nothing else would come back for them
            // before the next poll.
            () = tokio::task::yield_now(), if collector.behind => {
                collector.drain_some(ring.get_mut());
            }
            _ = poll.tick() => {
                collector.collect_batches(&attached.ebpf);
                collector.drain_some(ring.get_mut());
                if options.stop.as_ref().is_some_and(|stop| stop.load(Ordering::Relaxed)) {
                    return Ok(());
                }
            }
            _ = report.tick() => {
                collector.collect_batches(&attached.ebpf);
                collector.drain_some(ring.get_mut());
                collector.refresh(counters);
                collector.stats.program_runs = program_runs::read(&attached.ebpf);
                // The caller's reader went away (a closed pipe): end as on SIGINT.
                if on_interval(&mut *collector.sink, &collector.stats).is_break() {
                    return Ok(());
                }
            }
            _ = housekeeping.tick() => {
                collector.flush();
                for name in attached.check_vanished() {
                    collector.stats.interfaces_attached =
                        collector.stats.interfaces_attached.saturating_sub(1);
                    collector.warnings.push(format!(
                        "interface {name} disappeared while tracing; its events stop there"
                    ));
                }
                if attached.all_gone() {
                    collector.warnings.push("every traced interface disappeared; stopping".into());
                    return Ok(());
                }
            }
            _ = signals.interrupt.recv() => return Ok(()),
            _ = signals.terminate.recv() => return Ok(()),
            _ = sleep_until(deadline) => return Ok(()),
        }
    }
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Turns ring-buffer records into `RawPacket`s and keeps the run's counters.
struct Collector<'a, S> {
    sink: &'a mut S,
    writer: Option<Box<dyn CaptureWriter>>,
    /// Kernel ifindex → pcapng interface id.
    iface_ids: HashMap<u32, u32>,
    stats: LiveStats,
    /// CLOCK_REALTIME − CLOCK_MONOTONIC at start, in ns.
    clock_offset_ns: i128,
    warnings: Vec<String>,
    /// After the first write error the file is left alone (one warning, not one per packet).
    write_failed: bool,
    /// The last batch left records in the ring: the reader is behind the kernel.
    behind: bool,
    /// The timestamp of the last event read (the reader's position on the events' clock).
    last_event_ns: u64,
    /// Running the flush program failed once already (warned about then).
    flush_failed: bool,
    /// The flush round last started (the marks name it).
    round: u64,
    /// Events read but not handed on yet, and the rounds that will release them.
    reorder: reorder::Reorder,
    /// Events handed on so far: the next one's number.
    handed_on: u64,
    /// The reorder buffer overflowed once already (warned about then).
    reorder_overfull: bool,
}

/// How often the last flush is tried on a CPU whose batch is busy.
const LAST_FLUSH_TRIES: usize = 100;

/// Events read per readiness wakeup before the other tasks of the loop get their turn.
const DRAIN_BATCH: u64 = 4096;

/// Time a turn of `drain_some` takes at most (give or take a record or a `HAND_ON_CHUNK`)
/// before the other tasks of the loop get theirs. `DRAIN_BATCH` alone bounds the events, not
/// the time: a slow build or a starved reader (a busy CPU, a throttled process) then spent
/// hundreds of ms of wall time per turn, and a metrics scrape, which needs two or three turns
/// of the loop (accept, read, answer), waited seconds.
const DRAIN_TIME: Duration = Duration::from_millis(1);

/// Events read and handed on between two looks at the clock.
const HAND_ON_CHUNK: usize = 256;

impl<S: EventSink> Collector<'_, S> {
    /// Reads until the ring is empty: only once the programs are detached, when nothing
    /// refills it.
    fn drain<T: std::borrow::Borrow<MapData>>(&mut self, ring: &mut RingBuf<T>) {
        while let Some(record) = ring.next() {
            self.record(&record);
        }
        self.behind = false;
        // Nothing more comes: whatever is held goes on.
        self.reorder.finish();
        self.hand_on(usize::MAX);
    }

    /// Reads the records of at most `DRAIN_BATCH` events and hands on as many, as far as the
    /// flush rounds allow, for about `DRAIN_TIME`; `behind` says whether records are left or
    /// more could go. A reader that cannot keep up with the kernel never finds the ring empty:
    /// reading until it is would never return, and neither the interval callback (where a long
    /// run evicts what ended), nor the metrics endpoint, nor SIGTERM would get a turn while the
    /// traffic lasts.
    fn drain_some<T: std::borrow::Borrow<MapData>>(&mut self, ring: &mut RingBuf<T>) {
        let deadline = std::time::Instant::now() + DRAIN_TIME;
        let start = self.stats.events_received;
        loop {
            let (ring_left, read) = self.read_some(ring, HAND_ON_CHUNK);
            // At least as many as were read: otherwise the reorder buffer, not the ring, would
            // take up what the reader is behind by, and overflow.
            let more = self.hand_on(read.max(HAND_ON_CHUNK));
            self.behind = ring_left || more;
            if !self.behind
                || self.stats.events_received - start >= DRAIN_BATCH
                || std::time::Instant::now() >= deadline
            {
                return;
            }
        }
    }

    /// Reads records until they held `events` events or the ring is empty; returns whether
    /// records may be left, and how many events were read.
    fn read_some<T: std::borrow::Borrow<MapData>>(
        &mut self,
        ring: &mut RingBuf<T>,
        events: usize,
    ) -> (bool, usize) {
        let start = self.stats.events_received;
        let read = |this: &Self| (this.stats.events_received - start) as usize;
        while read(self) < events {
            let Some(record) = ring.next() else {
                return (false, read(self));
            };
            self.record(&record);
        }
        (true, read(self))
    }

    /// Has every CPU's unfinished batch written to the ring buffer. A failure is a warning
    /// (once): the batches still arrive as they fill.
    fn collect_batches(&mut self, ebpf: &Ebpf) {
        self.round += 1;
        match batch::flush(ebpf, self.round) {
            Ok(cpus) => self.reorder.round_started(cpus),
            Err(e) => {
                if !self.flush_failed {
                    self.flush_failed = true;
                    self.warnings.push(format!(
                        "{e}; events of a CPU whose traffic stopped wait for its next events"
                    ));
                }
            }
        }
    }

    /// The last flush, with the programs detached: a CPU whose batch was busy (a classifier run
    /// that started before the detach) is flushed again until its batch is written.
    fn collect_last_batches(&mut self, ebpf: &Ebpf, counters: &StateMap) {
        let busy = || counter_sums(counters).map_or(0, |sums| sums[counter::FLUSH_BUSY as usize]);
        for _ in 0..LAST_FLUSH_TRIES {
            let before = busy();
            self.collect_batches(ebpf);
            if busy() == before {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        self.warnings
            .push("a CPU's last events could not be collected (its batch stayed busy)".into());
    }

    /// Takes the events of one ring-buffer record (a batch of one or more, or a flush mark).
    fn record(&mut self, record: &[u8]) {
        for event in batch::events(record) {
            match event {
                Some((header, _)) if header.flags & FLAG_MARK != 0 => {
                    self.reorder
                        .mark(u64::from(header.skb_len), header.ktime_ns);
                }
                Some((header, data)) => {
                    self.stats.events_received += 1;
                    self.reorder.push(header, data);
                }
                None => self.stats.userspace_lost += 1,
            }
        }
    }

    /// Hands on at most `limit` held events that may go (see `reorder`), oldest first.
    /// Returns whether more may go already.
    fn hand_on(&mut self, limit: usize) -> bool {
        let mut reorder = std::mem::take(&mut self.reorder);
        let (more, overflowed) = reorder.hand_on(limit, |header, data| self.event(header, data));
        self.reorder = reorder;
        if overflowed && !self.reorder_overfull {
            self.reorder_overfull = true;
            self.warnings.push(format!(
                "more than {} events waited for a flush round to complete; the oldest were \
                 handed on without it, possibly out of order across CPUs",
                reorder::MAX_PENDING
            ));
        }
        more
    }

    /// Hands an event on to the sink and the file, in time order (see `reorder`).
    fn event(&mut self, header: &EventHeader, data: &[u8]) {
        self.handed_on += 1;
        let ts_ns = events_clock_ns(i128::from(header.ktime_ns), self.clock_offset_ns);
        self.last_event_ns = self.last_event_ns.max(ts_ns);
        let direction = if header.direction == DIRECTION_INGRESS {
            Direction::Inbound
        } else {
            Direction::Outbound
        };
        let raw = RawPacket {
            number: self.handed_on,
            ts_ns,
            iface: header.ifindex,
            direction,
            link_type: LinkType::Raw,
            data,
            orig_len: header.skb_len,
            segments: u32::from(header.gso_segs.max(1)),
        };
        let segments = u64::from(raw.segments);
        self.stats.wire_packets += segments;
        if header.flags & FLAG_FOLDED != 0 {
            self.stats.folded_events += 1;
        } else if segments > 1 {
            self.stats.gso_batches += 1;
        }
        self.sink.packet(&raw);
        self.write(&raw, header.gso_segs);
    }

    fn write(&mut self, raw: &RawPacket<'_>, gso_segs: u16) {
        if self.write_failed {
            return;
        }
        let Some(writer) = self.writer.as_mut() else {
            return;
        };
        let Some(&iface_id) = self.iface_ids.get(&raw.iface) else {
            // Cannot happen with the programs attached only to `iface_ids`' interfaces.
            self.stats.userspace_lost += 1;
            return;
        };
        let inbound = raw.direction == Direction::Inbound;
        if let Err(e) = writer.write_packet(
            iface_id,
            raw.ts_ns,
            inbound,
            raw.data,
            raw.orig_len,
            gso_segs,
        ) {
            self.write_failed(e);
        }
    }

    fn flush(&mut self) {
        if self.write_failed {
            return;
        }
        if let Some(Err(e)) = self.writer.as_mut().map(|w| w.flush()) {
            self.write_failed(e);
        }
    }

    /// `reason` names the file (the writer's errors do).
    fn write_failed(&mut self, reason: String) {
        self.write_failed = true;
        self.warnings
            .push(format!("{reason}; no more packets written"));
    }

    /// Sums the per-CPU counters into `stats`.
    fn refresh(&mut self, counters: &StateMap) {
        let sums = counter_sums(counters).unwrap_or_else(|e| {
            log::warn!("reading the counters: {e}");
            [0; counter::COUNT as usize]
        });
        let read = |index: u32| sums[index as usize];
        let stats = &mut self.stats;
        stats.packets_seen = read(counter::PACKETS);
        stats.tcp_packets = read(counter::TCP);
        stats.mptcp_packets = read(counter::MPTCP);
        stats.events_emitted = read(counter::EVENTS) + read(counter::FLUSHED_EVENTS);
        stats.ringbuf_full = read(counter::RINGBUF_FULL) + read(counter::FLUSHED_RINGBUF_FULL);
        stats.load_errors = read(counter::LOAD_ERRORS);
        stats.filtered = read(counter::FILTERED);
        let now_ns = events_clock_ns(monotonic_ns(), self.clock_offset_ns);
        // Behind, "now" is as far as the reader got: what waits in the ring is not idle, and
        // a generation whose last packets wait there must not look quiet.
        stats.now_ns = if self.behind {
            now_ns.min(self.last_event_ns)
        } else {
            now_ns
        };
    }
}

/// Each CPU's state, of which userspace reads the counters.
type StateMap = PerCpuArray<MapData, StateView>;

/// The classifiers' counters, summed over the CPUs.
fn counter_sums(counters: &StateMap) -> Result<Counters, MapError> {
    let mut sums: Counters = [0; counter::COUNT as usize];
    for cpu in counters.get(&0, 0)?.iter() {
        for (sum, value) in sums.iter_mut().zip(&cpu.counters) {
            *sum += value;
        }
    }
    Ok(sums)
}

/// CLOCK_REALTIME − the kernel's monotonic clock, now: `bpf_ktime_get_ns()` + this = wall-clock
/// ns. Taken once, so a wall-clock step during the run does not reorder events.
fn monotonic_to_realtime_offset() -> i128 {
    // Read the monotonic clock between two realtime reads to halve the skew.
    let before = clock_ns(ClockId::CLOCK_REALTIME);
    let monotonic = monotonic_ns();
    let after = clock_ns(ClockId::CLOCK_REALTIME);
    (before + after) / 2 - monotonic
}

/// The kernel's monotonic clock (`bpf_ktime_get_ns`'s), in ns. In a time namespace (a
/// container's, a restored checkpoint's) this process's CLOCK_MONOTONIC is the kernel's moved
/// by the namespace's offset, of which `bpf_ktime_get_ns` knows nothing: it is taken off.
fn monotonic_ns() -> i128 {
    clock_ns(ClockId::CLOCK_MONOTONIC) - time_namespace_offset_ns()
}

/// The monotonic offset of this process's time namespace, read once: 0 outside one (or
/// without time namespaces in the kernel, where the file does not exist).
fn time_namespace_offset_ns() -> i128 {
    static OFFSET: OnceLock<i128> = OnceLock::new();
    *OFFSET.get_or_init(|| {
        std::fs::read_to_string("/proc/self/timens_offsets")
            .map_or(0, |text| monotonic_offset_ns(&text))
    })
}

/// The monotonic line of `/proc/PID/timens_offsets` ("monotonic SECONDS NANOSECONDS", the
/// clock named or numbered), in ns; 0 if there is none.
fn monotonic_offset_ns(text: &str) -> i128 {
    text.lines()
        .find_map(|line| {
            let mut fields = line.split_whitespace();
            let clock = fields.next()?;
            if clock != "monotonic" && clock != "1" {
                return None;
            }
            let seconds: i128 = fields.next()?.parse().ok()?;
            let nanoseconds: i128 = fields.next()?.parse().ok()?;
            Some(seconds * 1_000_000_000 + nanoseconds)
        })
        .unwrap_or(0)
}

fn clock_ns(clock: ClockId) -> i128 {
    // Both clocks exist on every Linux; a failure would leave the offset 0 (monotonic times).
    clock_gettime(clock).map_or(0, |ts| {
        i128::from(ts.tv_sec()) * 1_000_000_000 + i128::from(ts.tv_nsec())
    })
}

/// A monotonic time on the events' clock (ns since the Unix epoch, see `LiveStats::now_ns`).
fn events_clock_ns(monotonic_ns: i128, offset_ns: i128) -> u64 {
    (monotonic_ns + offset_ns).clamp(0, i128::from(u64::MAX)) as u64
}
