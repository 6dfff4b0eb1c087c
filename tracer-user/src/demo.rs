//! `mptcp-tracer demo`: the whole tool in one command. It builds a two-path MPTCP lab in
//! network namespaces, traces the client's interfaces live, runs a transfer whose byte counts
//! the application knows, prints the live tables and the final analysis, and checks the
//! tracer's data-level byte counts against the application's.
//!
//! Everything it creates goes away when it ends, also on error or Ctrl-C: the lab's namespaces
//! (the lab's `Drop`) and the temporary directory, except the capture file of a successful run,
//! whose path it prints.

use std::{
    fs, io,
    io::Write as _,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc::{self, RecvTimeoutError},
    },
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use mptcp_lab::{
    EndpointMode, IpVersion, Lab, LabConfig, LabError, Side, TransferCounts, TransferSpec,
};

use crate::{
    analysis::{
        Analyzer,
        summary::{Direction, MptcpConnectionInfo, MptcpList, MptcpSummary},
    },
    live,
    offline::{self, OfflineOptions},
    output::table,
    source::live::{LiveError, LiveStats, TraceOptions},
};

/// Bytes the client application writes.
pub const CLIENT_SENDS: u64 = 4_000_000;
/// Bytes the server application writes back at the same time.
pub const SERVER_SENDS: u64 = 1_000_000;
/// Per-path rate limit: 4 MB over two 5 Mbit/s paths takes about 3.5 s, long enough for a few
/// live tables, and a full path makes the scheduler use both subflows.
const RATE_MBIT: u32 = 5;
const PORT: u16 = 5201;
/// Seconds between live tables.
const INTERVAL: Duration = Duration::from_secs(1);
/// The trace stops itself after this long if nothing else stops it first.
const TRACE_LIMIT: Duration = Duration::from_secs(120);
/// Loading and attaching the eBPF programs must not take longer than this.
const TRACER_START_TIMEOUT: Duration = Duration::from_secs(30);
/// Time for the last ACKs and DATA_FINs to pass the hooks before the trace stops.
const SETTLE: Duration = Duration::from_millis(300);
/// Exit code after Ctrl-C / SIGTERM (128 + SIGINT, as shells report it).
pub const EXIT_INTERRUPTED: i32 = 130;
/// Exit code when the tracer's counts disagree with the application's.
pub const EXIT_MISMATCH: i32 = 1;

/// Set by the signal handler on SIGINT / SIGTERM.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(
        "mptcp-tracer demo needs root: it creates network namespaces and loads eBPF programs \
         (try sudo)"
    )]
    NotRoot,
    #[error("demo lab")]
    Lab(#[from] LabError),
    #[error("live trace on the demo lab")]
    Trace(#[from] LiveError),
    #[error("the tracer did not attach within {0:?}")]
    TracerStart(Duration),
    #[error("the tracer stopped before it attached")]
    TracerEnded,
    #[error("the tracer thread panicked")]
    TracerPanicked,
    #[error("starting the tracer thread")]
    Spawn(#[source] io::Error),
    #[error("{}", path.display())]
    TempDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("installing the SIGINT/SIGTERM handler")]
    Signal(#[source] io::Error),
    #[error("writing the output")]
    Output(#[from] io::Error),
}

/// The application's count and the tracer's for one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountCheck {
    pub direction: &'static str,
    /// Who measured: "tracer" (live) or "capture" (the pcapng file read back).
    pub measured_by: &'static str,
    pub application: u64,
    /// The tracer's `unique_bytes`; `None` when it has no such connection or direction.
    pub measured: Option<u64>,
}

impl CountCheck {
    pub fn agrees(&self) -> bool {
        self.measured == Some(self.application)
    }

    /// `client → server: application wrote 4000000 B, tracer measured 4000000 B unique
    /// data-level bytes ✓`
    pub fn line(&self) -> String {
        let measured = self
            .measured
            .map_or_else(|| "nothing".to_owned(), table::bytes);
        format!(
            "{}: application wrote {}, {} measured {} unique data-level bytes {}",
            match self.direction {
                "client_to_server" => "client → server",
                _ => "server → client",
            },
            table::bytes(self.application),
            self.measured_by,
            measured,
            if self.agrees() { "✓" } else { "✗" }
        )
    }
}

/// The connection of the transfer: the one whose initial subflow joins the application's two
/// socket addresses.
pub fn find_connection<'a>(
    list: &'a MptcpList,
    counts: &TransferCounts,
) -> Option<&'a MptcpConnectionInfo> {
    let (client, server) = (counts.client_addr, counts.server_addr);
    list.mptcp_connections.iter().find(|connection| {
        connection
            .subflows
            .iter()
            .any(|s| !s.join && s.client == client && s.server == server)
    })
}

/// Compares both directions of the application's counts with a summary made by `measured_by`.
pub fn check_counts(
    measured_by: &'static str,
    summary: Option<&MptcpSummary>,
    counts: &TransferCounts,
) -> [CountCheck; 2] {
    let measured = |direction: Direction| {
        summary.and_then(|s| {
            s.directions
                .iter()
                .find(|d| d.direction == direction)
                .map(|d| d.unique_bytes)
        })
    };
    [
        CountCheck {
            direction: "client_to_server",
            measured_by,
            application: counts.client_sent,
            measured: measured(Direction::ClientToServer),
        },
        CountCheck {
            direction: "server_to_client",
            measured_by,
            application: counts.server_sent,
            measured: measured(Direction::ServerToClient),
        },
    ]
}

/// Runs the demo; returns the exit code (0: the counts agree).
pub fn run() -> Result<i32, DemoError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(DemoError::NotRoot);
    }
    install_signal_handler()?;
    match demo() {
        // A terminal's Ctrl-C also reaches the lab's `ip`/`tc` children, whose failure is then
        // only a consequence; everything was removed on the way out.
        Err(_) if INTERRUPTED.load(Ordering::SeqCst) => {
            eprintln!("interrupted: lab and temporary files removed");
            Ok(EXIT_INTERRUPTED)
        }
        result => result,
    }
}

fn demo() -> Result<i32, DemoError> {
    let directory = TempDir::create(
        Path::new("/tmp").join(format!("mptcp-tracer-demo-{}", std::process::id())),
    )?;
    let capture = directory.path.join("demo.pcapng");

    let mut out = io::stdout().lock();
    writeln!(
        out,
        "Building the lab: two network namespaces joined by two veth paths ({RATE_MBIT} Mbit/s \
         each), MPTCP endpoints on both..."
    )?;
    out.flush()?;
    // Declared before the tracer so that it is dropped after it: the tracer detaches first.
    let lab = Lab::new(&LabConfig {
        paths: 2,
        endpoints: EndpointMode::ClientSubflow,
        disable_offloads: true,
        rate_mbit: Some(RATE_MBIT),
    })?;
    let interfaces = lab.interfaces(Side::Client);
    for path in 1..=lab.paths() {
        writeln!(
            out,
            "  path {path}: {} {} ({}) <-> {} {} ({})",
            lab.interface(Side::Client, path)?,
            lab.address(Side::Client, path, IpVersion::V4)?,
            lab.namespace(Side::Client),
            lab.interface(Side::Server, path)?,
            lab.address(Side::Server, path, IpVersion::V4)?,
            lab.namespace(Side::Server),
        )?;
    }
    if INTERRUPTED.load(Ordering::SeqCst) {
        return Ok(interrupted(lab, directory));
    }

    writeln!(
        out,
        "Tracing {} in {} (eBPF TC classifiers), writing {}...",
        interfaces.join(", "),
        lab.namespace(Side::Client),
        capture.display()
    )?;
    out.flush()?;
    drop(out);
    let options = TraceOptions {
        interfaces,
        netns: Some(lab.namespace(Side::Client).to_owned()),
        write: Some(capture.clone()),
        duration: Some(TRACE_LIMIT),
        interval: INTERVAL,
        port: Some(PORT),
        ..TraceOptions::default()
    };
    let mut tracer = Tracer::start(options)?;
    if !tracer.wait_attached()? {
        drop(tracer);
        return Ok(interrupted(lab, directory));
    }

    println!(
        "Transfer: the client writes {} and the server {} over one MPTCP connection \
         (second subflow from {} to {})",
        table::bytes(CLIENT_SENDS),
        table::bytes(SERVER_SENDS),
        lab.address(Side::Client, 2, IpVersion::V4)?,
        lab.address(Side::Server, 1, IpVersion::V4)?,
    );
    let spec = TransferSpec {
        ip_version: IpVersion::V4,
        path: 1,
        port: PORT,
        client_sends: CLIENT_SENDS,
        server_sends: SERVER_SENDS,
        wait_for_subflows: 1,
        subflow_timeout: Duration::from_secs(5),
        timeout: Duration::from_secs(20),
        ..TransferSpec::default()
    };
    tracer.show_tables();
    // A Ctrl-C now stops the trace at once; the transfer ends within its timeouts.
    let transfer = lab.transfer(&spec);
    thread::sleep(SETTLE);
    let finished = tracer.stop()?;
    if INTERRUPTED.load(Ordering::SeqCst) {
        return Ok(interrupted(lab, directory));
    }
    let counts = transfer?;

    let mut out = io::stdout().lock();
    writeln!(out, "\nFinal analysis:")?;
    out.write_all(table::live_stats(&finished.stats, finished.elapsed_s).as_bytes())?;
    out.write_all(b"\n")?;
    out.write_all(table::mptcp_list(&finished.list).as_bytes())?;
    for summary in &finished.summaries {
        out.write_all(b"\n")?;
        out.write_all(table::mptcp_summary(summary, true).as_bytes())?;
    }
    writeln!(
        out,
        "\nNote: the classifiers sit at TC, before the lab's {RATE_MBIT} Mbit/s tbf qdisc on the \
         same interfaces: data that qdisc drops and TCP sends again counts as wire and \
         retransmitted bytes here, although its first copy never left the host (tcpdump, after \
         the qdisc, does not see it). Unique data bytes are not affected."
    )?;
    for warning in &finished.warnings {
        eprintln!("warning: {warning}");
    }
    let connection = find_connection(&finished.list, &counts);
    let summary = connection.and_then(|c| finished.summaries.iter().find(|s| s.id == c.id));
    writeln!(
        out,
        "\nCheck against the application ({} -> {}):",
        counts.client_addr, counts.server_addr
    )?;
    if connection.is_none() {
        writeln!(
            out,
            "  the tracer saw no MPTCP connection between these addresses ✗"
        )?;
    }
    let checks = check_counts("tracer", summary, &counts);
    for check in &checks {
        writeln!(out, "  {}", check.line())?;
    }
    let lost = finished.stats.ringbuf_full + finished.stats.userspace_lost;
    if lost > 0 {
        writeln!(
            out,
            "  {lost} events were lost: the counts miss those packets"
        )?;
    }
    let mut agree = checks.iter().all(CountCheck::agrees);
    writeln!(
        out,
        "\nCapture of the traced packets: {}\n  (mptcp-tracer list-mptcp {0}; remove with \
         rm -r {})",
        capture.display(),
        directory.path.display()
    )?;
    // The file must tell the same story as the live run: read it back as `list-mptcp` would.
    match offline::analyze_file(&capture, &OfflineOptions::default()) {
        Ok(report) if report.error.is_none() => {
            let list = report.analyzer.mptcp_list();
            let summary = find_connection(&list, &counts)
                .and_then(|connection| report.analyzer.mptcp_summary(connection.id));
            writeln!(out, "Read back from the capture file:")?;
            for check in check_counts("capture", summary.as_ref(), &counts) {
                writeln!(out, "  {}", check.line())?;
                agree &= check.agrees();
            }
        }
        Ok(report) => {
            let error = report.error.map(|e| e.to_string()).unwrap_or_default();
            writeln!(out, "  reading it back stopped early: {error} ✗")?;
            agree = false;
        }
        Err(error) => {
            writeln!(out, "  reading it back failed: {error} ✗")?;
            agree = false;
        }
    }
    out.flush()?;
    directory.keep();
    drop(lab);
    writeln!(out, "Lab removed.")?;
    Ok(if agree { 0 } else { EXIT_MISMATCH })
}

/// Cleans up after SIGINT / SIGTERM and says so.
fn interrupted(lab: Lab, directory: TempDir) -> i32 {
    drop(lab);
    drop(directory);
    eprintln!("interrupted: lab and temporary files removed");
    EXIT_INTERRUPTED
}

/// What the tracer thread hands back: formatted-ready results (the analyzer stays on its thread).
struct Finished {
    stats: LiveStats,
    elapsed_s: f64,
    list: MptcpList,
    summaries: Vec<MptcpSummary>,
    warnings: Vec<String>,
}

/// `live::trace` on its own thread. Dropping it stops and joins the thread.
struct Tracer {
    thread: Option<JoinHandle<Result<Finished, LiveError>>>,
    attached: mpsc::Receiver<()>,
    show_tables: Arc<AtomicBool>,
    /// `TraceOptions::stop` of the trace.
    stop: Arc<AtomicBool>,
}

impl Tracer {
    fn start(mut options: TraceOptions) -> Result<Self, DemoError> {
        let stop = Arc::new(AtomicBool::new(false));
        options.stop = Some(Arc::clone(&stop));
        let (attached_tx, attached) = mpsc::channel();
        let show_tables = Arc::new(AtomicBool::new(false));
        let show = Arc::clone(&show_tables);
        let thread = thread::Builder::new()
            .name("demo-tracer".into())
            .spawn(move || {
                let started = Instant::now();
                let mut attached_tx = Some(attached_tx);
                let mut on_interval = |analyzer: &Analyzer, stats: &LiveStats| {
                    // The first call comes once the programs are attached.
                    if let Some(tx) = attached_tx.take() {
                        let _ = tx.send(());
                    }
                    if show.load(Ordering::SeqCst) {
                        let list = analyzer.mptcp_list();
                        let summaries = summaries_of(analyzer, &list);
                        let text = table::live(
                            stats,
                            started.elapsed().as_secs_f64(),
                            &list,
                            &summaries,
                            &live::open_connections(analyzer, &list),
                        );
                        // A live table that cannot be written is not worth stopping for.
                        let _ = io::stdout()
                            .lock()
                            .write_all(format!("\n{text}").as_bytes());
                    }
                    std::ops::ControlFlow::Continue(())
                };
                let outcome = live::trace(&options, &mut on_interval)?;
                let list = outcome.analyzer.mptcp_list();
                let summaries = summaries_of(&outcome.analyzer, &list);
                Ok(Finished {
                    stats: outcome.stats,
                    elapsed_s: started.elapsed().as_secs_f64(),
                    list,
                    summaries,
                    warnings: outcome.warnings,
                })
            })
            .map_err(DemoError::Spawn)?;
        Ok(Self {
            thread: Some(thread),
            attached,
            show_tables,
            stop,
        })
    }

    /// Waits until the programs are attached: `Ok(false)` on Ctrl-C, the trace's error if it
    /// ended.
    fn wait_attached(&mut self) -> Result<bool, DemoError> {
        let deadline = Instant::now() + TRACER_START_TIMEOUT;
        loop {
            if INTERRUPTED.load(Ordering::SeqCst) {
                return Ok(false);
            }
            match self.attached.recv_timeout(Duration::from_millis(100)) {
                Ok(()) => return Ok(true),
                Err(RecvTimeoutError::Disconnected) => {
                    // The thread ended before its first interval: a signal stopped it, or its
                    // error says why.
                    return match self.join()? {
                        Err(error) => Err(error.into()),
                        Ok(_) if INTERRUPTED.load(Ordering::SeqCst) => Ok(false),
                        Ok(_) => Err(DemoError::TracerEnded),
                    };
                }
                Err(RecvTimeoutError::Timeout) if Instant::now() >= deadline => {
                    return Err(DemoError::TracerStart(TRACER_START_TIMEOUT));
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    fn show_tables(&self) {
        self.show_tables.store(true, Ordering::SeqCst);
    }

    /// Stops the trace and returns its results.
    fn stop(mut self) -> Result<Finished, DemoError> {
        self.stop.store(true, Ordering::SeqCst);
        Ok(self.join()??)
    }

    fn join(&mut self) -> Result<Result<Finished, LiveError>, DemoError> {
        match self.thread.take() {
            Some(thread) => thread.join().map_err(|_| DemoError::TracerPanicked),
            None => Err(DemoError::TracerPanicked),
        }
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.stop.store(true, Ordering::SeqCst);
            let _ = self.join();
        }
    }
}

fn summaries_of(analyzer: &Analyzer, list: &MptcpList) -> Vec<MptcpSummary> {
    list.mptcp_connections
        .iter()
        .filter_map(|c| analyzer.mptcp_summary(c.id))
        .collect()
}

/// A directory removed on drop unless `keep` is called.
struct TempDir {
    path: PathBuf,
    keep: bool,
}

impl TempDir {
    fn create(path: PathBuf) -> Result<Self, DemoError> {
        // A directory of the same name is left from an earlier process with our pid.
        let _ = fs::remove_dir_all(&path);
        fs::create_dir(&path).map_err(|source| DemoError::TempDir {
            path: path.clone(),
            source,
        })?;
        Ok(Self { path, keep: false })
    }

    fn keep(mut self) {
        self.keep = true;
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.keep
            && let Err(error) = fs::remove_dir_all(&self.path)
        {
            log::warn!("removing {}: {error}", self.path.display());
        }
    }
}

extern "C" fn on_signal(_signal: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// From here on SIGINT and SIGTERM only set `INTERRUPTED`, so that the process lives on to
/// remove the lab. The live trace's own handler (tokio, through signal-hook-registry) chains to
/// this one, so both see every signal. Stays installed for the rest of the process: the demo is
/// the whole process.
fn install_signal_handler() -> Result<(), DemoError> {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction is valid; the handler only stores to atomics.
        let result = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut())
        };
        if result != 0 {
            return Err(DemoError::Signal(io::Error::last_os_error()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::analysis::summary::{MptcpDirectionSummary, SubflowInfo, SubflowRole};

    fn subflow(stream: u64, client: &str, server: &str, join: bool) -> SubflowInfo {
        SubflowInfo {
            tcp_stream: stream,
            client: client.parse().expect("a test address"),
            server: server.parse().expect("a test address"),
            join,
            role: if join {
                SubflowRole::Join
            } else {
                SubflowRole::Initial
            },
            backup: false,
            client_addr_id: None,
            server_addr_id: None,
        }
    }

    fn connection(id: u64, subflows: Vec<SubflowInfo>) -> MptcpConnectionInfo {
        MptcpConnectionInfo {
            id,
            version: 1,
            client_key: None,
            server_key: None,
            client_token: None,
            server_token: None,
            client_idsn: None,
            server_idsn: None,
            fallback: false,
            subflows,
        }
    }

    fn direction(name: Direction, unique_bytes: u64) -> MptcpDirectionSummary {
        MptcpDirectionSummary {
            direction: name,
            duration_s: 1.0,
            wire_bytes: unique_bytes,
            unique_bytes,
            acked_bytes: unique_bytes,
            reinjected_bytes: 0,
            reinjections: 0,
            retransmissions: 0,
            retransmitted_bytes: 0,
            goodput_bps: 0.0,
            throughput_bps: 0.0,
            unmapped_segments: 0,
            unmapped_bytes: 0,
            subflows: Vec::new(),
        }
    }

    fn counts(client: &str, server: &str) -> TransferCounts {
        TransferCounts {
            client_sent: 4_000_000,
            client_received: 1_000_000,
            server_sent: 1_000_000,
            server_received: 4_000_000,
            subflows_before_data: 1,
            client_addr: client.parse::<SocketAddr>().expect("an address"),
            server_addr: server.parse::<SocketAddr>().expect("an address"),
        }
    }

    #[test]
    fn the_transfer_is_the_connection_whose_initial_subflow_matches() {
        let list = MptcpList {
            mptcp_connections: vec![
                // An earlier connection from the same client address, other port.
                connection(
                    0,
                    vec![subflow(0, "10.0.1.1:40000", "10.0.1.2:5201", false)],
                ),
                connection(
                    1,
                    vec![
                        // The join's client address matches no application address.
                        subflow(2, "10.0.2.1:40002", "10.0.1.2:5201", true),
                        subflow(1, "10.0.1.1:40001", "10.0.1.2:5201", false),
                    ],
                ),
            ],
            orphan_subflows: Vec::new(),
        };
        let found = find_connection(&list, &counts("10.0.1.1:40001", "10.0.1.2:5201"));
        assert_eq!(found.map(|c| c.id), Some(1));
        // A join alone does not make a match: only the initial subflow has the app's addresses.
        assert!(find_connection(&list, &counts("10.0.2.1:40002", "10.0.1.2:5201")).is_none());
        let v6 = MptcpList {
            mptcp_connections: vec![connection(
                0,
                vec![subflow(
                    0,
                    "[fd00:0:1::1]:40000",
                    "[fd00:0:1::2]:5201",
                    false,
                )],
            )],
            orphan_subflows: Vec::new(),
        };
        assert!(
            find_connection(&v6, &counts("[fd00:0:1::1]:40000", "[fd00:0:1::2]:5201")).is_some()
        );
    }

    #[test]
    fn counts_agree_only_when_equal_in_both_directions() {
        let app = counts("10.0.1.1:40001", "10.0.1.2:5201");
        let summary = |c2s, s2c| MptcpSummary {
            id: 0,
            version: 1,
            fallback: false,
            directions: vec![
                direction(Direction::ClientToServer, c2s),
                direction(Direction::ServerToClient, s2c),
            ],
            events: Vec::new(),
            events_dropped: 0,
        };
        let exact = check_counts("tracer", Some(&summary(4_000_000, 1_000_000)), &app);
        assert!(exact.iter().all(CountCheck::agrees));
        assert_eq!(
            exact[0].line(),
            "client → server: application wrote 4000000 B (4.00 MB), tracer measured 4000000 B \
             (4.00 MB) unique data-level bytes ✓"
        );

        let short = check_counts("capture", Some(&summary(4_000_000, 999_000)), &app);
        assert_eq!((short[0].agrees(), short[1].agrees()), (true, false));
        assert!(short[1].line().ends_with('✗'));
        assert_eq!(
            short[1].line(),
            "server → client: application wrote 1000000 B (1.00 MB), capture measured 999000 B \
             (999.00 kB) unique data-level bytes ✗"
        );

        let missing = check_counts("tracer", None, &app);
        assert_eq!(missing[0].measured, None);
        assert!(!missing[0].agrees());
        assert!(missing[0].line().contains("measured nothing"));
    }
}
