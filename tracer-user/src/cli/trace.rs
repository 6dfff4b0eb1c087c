//! `mptcp-tracer trace`: its command line, and the front end of a live trace: the live
//! tables, `--long-run`'s ended connections, the final report and its warnings, `--plot`,
//! `--metrics` and `--cleanup`. The tracing itself is `crate::live`'s.

use std::{
    io::{self, Write},
    net::IpAddr,
    ops::ControlFlow,
    os::fd::AsFd as _,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use nix::{
    errno::Errno,
    poll::{PollFd, PollFlags, PollTimeout, poll},
};

use crate::{
    analysis::Diagnostics,
    live, metrics,
    output::{json, table},
    plot,
    query::{EXIT_OK, EXIT_PARTIAL, warn_diagnostics},
    source::live::{self as live_source, AttachMode, LiveStats, Rotation, TraceOptions},
};

#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("outputs").args(["write", "plot"]).multiple(true)))]
#[command(group(clap::ArgGroup::new("rotation").args(["file_size", "rotate_seconds"]).multiple(true)))]
pub struct TraceArgs {
    /// Interface to attach to (repeat for several).
    #[arg(short = 'i', long = "interface", value_name = "IFACE", required = true)]
    pub interfaces: Vec<String>,
    /// Network namespace the interfaces live in (a name under /run/netns).
    #[arg(long, value_name = "NAME")]
    pub netns: Option<String>,
    /// Also write the captured packets to this pcapng file.
    #[arg(short = 'w', long = "write", value_name = "FILE.pcapng")]
    pub write: Option<PathBuf>,
    /// Rotate the --write file as tcpdump -C does: a new file once the current one is past
    /// this many megabytes (1,000,000 bytes). Files are named FILE-000001.pcapng, ...
    #[arg(short = 'C', long = "file-size", value_name = "MB", requires = "write", value_parser = clap::value_parser!(u64).range(1..))]
    pub file_size: Option<u64>,
    /// Rotate the --write file as tcpdump -G does: a new file when a packet comes this long
    /// after the current file's first packet.
    #[arg(short = 'G', long = "rotate-seconds", value_name = "S", requires = "write", value_parser = parse_seconds)]
    pub rotate_seconds: Option<Duration>,
    /// With -C or -G: keep only the newest N files, removing older ones as new ones start.
    #[arg(short = 'W', long = "file-count", value_name = "N", requires = "rotation", value_parser = clap::value_parser!(u64).range(1..))]
    pub file_count: Option<u64>,
    /// Overwrite the --write file and the --plot images if they exist.
    #[arg(long, requires = "outputs")]
    pub force: bool,
    /// At the end, draw the dsn and throughput plots of each MPTCP connection seen into this
    /// directory (created if missing): mptcp-<ID>-dsn.svg, mptcp-<ID>-throughput.svg.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["long_run", "rotation"])]
    pub plot: Option<PathBuf>,
    /// Stop after this many seconds (default: at Ctrl-C / SIGTERM).
    #[arg(long, value_name = "S", value_parser = parse_seconds)]
    pub duration: Option<Duration>,
    /// Seconds between live tables.
    #[arg(long, value_name = "S", value_parser = parse_seconds, default_value = "1")]
    pub interval: Duration,
    /// Print one JSON document at the end (live tables go to stderr).
    #[arg(long)]
    pub json: bool,
    /// Capture every TCP packet, not only those carrying MPTCP options.
    #[arg(long)]
    pub all_tcp: bool,
    /// One event per packet: do not fold a flow's consecutive pure DATA_ACKs into one event
    /// (the summaries are the same either way; -w implies it, the file holds every packet).
    #[arg(long)]
    pub every_packet: bool,
    /// Only packets from or to this TCP port.
    #[arg(long, value_name = "P")]
    pub port: Option<u16>,
    /// Only packets from or to this IP address.
    #[arg(long, value_name = "IP")]
    pub addr: Option<IpAddr>,
    /// How to attach the classifiers.
    #[arg(long, value_enum, default_value_t = AttachArg::Auto)]
    pub attach: AttachArg,
    /// For always-on tracing: report each connection once, as it ends (a JSON line with
    /// --json), and forget it, so that memory follows the open connections only; the final
    /// report covers those still open.
    #[arg(long)]
    pub long_run: bool,
    /// With --long-run: a connection or stream without a packet for this long has ended
    /// [default: 600].
    #[arg(long, value_name = "S", value_parser = parse_seconds, requires = "long_run")]
    pub idle_timeout: Option<Duration>,
    /// Serve Prometheus metrics (OpenMetrics text) at http://ADDR:PORT/metrics while tracing,
    /// updated every --interval.
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics: Option<String>,
    /// With --metrics: series of their own for at most N open connections, those with the
    /// most wire bytes; the others count in the totals only [default: 100].
    #[arg(long, value_name = "N", requires = "metrics")]
    pub metrics_max_connections: Option<usize>,
    /// Do not trace: remove the filters a killed mptcp-tracer left on the interfaces (only
    /// those no running tracer holds; nobody else's), then exit.
    #[arg(long, conflicts_with_all = ["write", "plot", "duration", "json", "all_tcp", "port", "addr", "long_run", "metrics"])]
    pub cleanup: bool,
}

/// `--attach`: the command-line spelling of `live::AttachMode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AttachArg {
    /// TCX where the kernel has it (6.6+), netlink clsact otherwise.
    Auto,
    /// TCX links (kernel 6.6+); fails on older kernels.
    Tcx,
    /// A clsact qdisc with tc filters, through netlink.
    Netlink,
}

impl From<AttachArg> for AttachMode {
    fn from(value: AttachArg) -> Self {
        match value {
            AttachArg::Auto => AttachMode::Auto,
            AttachArg::Tcx => AttachMode::Tcx,
            AttachArg::Netlink => AttachMode::Netlink,
        }
    }
}

impl TraceArgs {
    pub fn to_options(&self) -> TraceOptions {
        TraceOptions {
            interfaces: self.interfaces.clone(),
            netns: self.netns.clone(),
            write: self.write.clone(),
            force: self.force,
            rotation: Rotation {
                max_bytes: self.file_size.map(|mb| mb.saturating_mul(1_000_000)),
                interval: self.rotate_seconds,
                keep: self
                    .file_count
                    .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            },
            duration: self.duration,
            interval: self.interval,
            all_tcp: self.all_tcp,
            fold_acks: !self.every_packet,
            port: self.port,
            addr: self.addr,
            attach: self.attach.into(),
            // Signals and `--duration` stop the command-line trace.
            stop: None,
            // `--metrics` is bound by `trace`, which sets it.
            side_task: None,
        }
    }

    /// `--long-run`'s eviction, or None.
    pub fn eviction(&self) -> Option<live::Eviction> {
        self.long_run.then(|| live::Eviction {
            idle_timeout: self.idle_timeout.unwrap_or(DEFAULT_IDLE_TIMEOUT),
            plain_tcp: self.all_tcp,
        })
    }
}

/// `--idle-timeout`'s default.
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(600);

/// The shortest `--duration` / `--interval`: anything shorter is a typo, not a trace.
const SHORTEST_PERIOD: Duration = Duration::from_millis(1);

/// A number of seconds, fractions allowed, at least `SHORTEST_PERIOD`.
fn parse_seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    let duration = Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|duration| *duration >= SHORTEST_PERIOD)
        .ok_or_else(|| {
            format!(
                "`{text}`: must be a number of seconds from {} on",
                SHORTEST_PERIOD.as_secs_f64()
            )
        })?;
    Ok(duration)
}

pub(super) fn trace(args: &TraceArgs) -> anyhow::Result<i32> {
    if args.cleanup {
        return cleanup(args);
    }
    let mut options = args.to_options();
    let plots = args
        .plot
        .as_deref()
        .map(|dir| TracePlots::prepare(dir, &mut options, args.force))
        .transpose()?;
    // A reader that goes away ends the trace (as SIGINT would), also between two tables.
    let stop = Arc::new(AtomicBool::new(false));
    watch_for_gone_readers(Arc::clone(&stop));
    options.stop = Some(stop);
    let mut metrics = serve_metrics(args, &mut options)?;
    let started = Instant::now();
    let mut on_interval =
        |state: &live::Generations, stats: &LiveStats, ended: Vec<live::Ended>| {
            if print_ended(args, &ended).is_err_and(|e| e.kind() == io::ErrorKind::BrokenPipe) {
                return ControlFlow::Break(());
            }
            let snapshot = state.snapshot();
            if let Some(metrics) = metrics.as_mut() {
                metrics.update(stats, &snapshot, &ended);
            }
            let text = table::live(
                stats,
                started.elapsed().as_secs_f64(),
                &snapshot.list,
                &snapshot.summaries,
                &snapshot.open,
            );
            let written = if args.json {
                writeln!(io::stderr().lock(), "{text}")
            } else {
                writeln!(io::stdout().lock(), "{text}")
            };
            // Other write errors (a full disk) are not worth stopping the trace for.
            match written {
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            }
        };
    let outcome = live::trace_evicting(&options, args.eviction(), &mut on_interval)
        .with_context(|| format!("tracing on {}", args.interfaces.join(", ")))?;
    let elapsed = started.elapsed().as_secs_f64();
    print_ended(args, &outcome.ended)?;
    let warnings = TraceWarnings::of(&outcome);
    print_trace_report(args, &outcome, elapsed, &warnings.all)?;

    let mut stderr = io::stderr().lock();
    let _ = stderr.write_all(warnings.stderr.as_bytes());
    if let Some(plots) = plots {
        plots.draw(args.force, &mut stderr)?;
    }
    Ok(if warnings.lost { EXIT_PARTIAL } else { EXIT_OK })
}

/// `trace --metrics ADDR:PORT`: binds the endpoint (before anything is attached, so that a
/// port in use stops the trace at once) and has the trace's event loop serve it.
fn serve_metrics(
    args: &TraceArgs,
    options: &mut TraceOptions,
) -> anyhow::Result<Option<metrics::Metrics>> {
    let Some(address) = args.metrics.as_deref() else {
        return Ok(None);
    };
    let max_connections = args
        .metrics_max_connections
        .unwrap_or(metrics::DEFAULT_MAX_CONNECTIONS);
    let (metrics, exposition) = metrics::Metrics::new(max_connections);
    let server = metrics::MetricsServer::bind(address, exposition)?;
    if let Ok(local) = server.local_addr() {
        log::info!("serving metrics at http://{local}/metrics");
    }
    options.side_task = Some(server.into_side_task());
    Ok(Some(metrics))
}

/// `trace --plot DIR`: the plots are drawn from the packets the trace wrote to pcapng (its
/// `-w` file, else a temporary one in DIR, removed afterwards), through the offline path.
struct TracePlots {
    dir: PathBuf,
    capture: PathBuf,
    temporary: bool,
}

impl TracePlots {
    /// Creates DIR, refuses images of an earlier run there without --force, and makes the
    /// trace write its packets where the plots will read them.
    fn prepare(dir: &Path, options: &mut TraceOptions, force: bool) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create the plot directory", dir.display()))?;
        if let Some(existing) = plot::batch::existing_images(dir).first()
            && !force
        {
            bail!(
                "{}: exists (add --force to overwrite the plots in {})",
                existing.display(),
                dir.display()
            );
        }
        let (capture, temporary) = match &options.write {
            Some(path) => (path.clone(), false),
            None => {
                let path = dir.join(format!(".mptcp-tracer-{}.pcapng", std::process::id()));
                options.write = Some(path.clone());
                options.force = true;
                (path, true)
            }
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            capture,
            temporary,
        })
    }

    fn draw(&self, force: bool, err: &mut dyn Write) -> anyhow::Result<()> {
        let written = plot::batch::plot_every_connection(&self.capture, &self.dir, force)
            .with_context(|| format!("plotting into {}", self.dir.display()))?;
        let _ = writeln!(
            err,
            "{} plots of {} MPTCP connections written to {}",
            written.len(),
            written.len() / plot::batch::KINDS.len(),
            self.dir.display()
        );
        Ok(())
    }
}

/// The temporary capture goes, whether the trace and the plots worked or not.
impl Drop for TracePlots {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_file(&self.capture);
        }
    }
}

/// `--long-run`: what ended, on stdout as it ends: a JSON line each with `--json`, else its
/// summary table under a line saying how it ended.
fn print_ended(args: &TraceArgs, ended: &[live::Ended]) -> io::Result<()> {
    if ended.is_empty() {
        return Ok(());
    }
    let mut text = String::new();
    for ended in ended {
        let line = match ended {
            live::Ended::Mptcp {
                reason,
                connection,
                summary,
            } => json::EndedLine {
                ended: reason.as_str(),
                mptcp: Some(connection),
                summary: Some(json::LiveSummary {
                    summary,
                    open: false,
                }),
                tcp: None,
                tcp_summary: None,
            },
            live::Ended::Tcp {
                reason,
                stream,
                summary,
            } => json::EndedLine {
                ended: reason.as_str(),
                mptcp: None,
                summary: None,
                tcp: Some(stream),
                tcp_summary: Some(summary),
            },
        };
        if args.json {
            text.push_str(&json::to_line(&line).map_err(io::Error::other)?);
        } else {
            text.push_str(&ended_table(&line));
        }
    }
    let mut stdout = io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()
}

/// The table of one ended connection or stream.
fn ended_table(line: &json::EndedLine<'_>) -> String {
    let mut text = String::new();
    if let (Some(connection), Some(summary)) = (line.mptcp, &line.summary) {
        text.push_str(&format!(
            "\nMPTCP connection {} ended ({}):\n",
            connection.id, line.ended
        ));
        text.push_str(&table::mptcp_summary(summary.summary, false));
    }
    if let Some(summary) = line.tcp_summary {
        text.push_str(&format!(
            "\nTCP stream {} ended ({}):\n",
            summary.stream, line.ended
        ));
        text.push_str(&table::tcp_summary(summary));
    }
    text
}

/// Starts a thread that sets `stop` once stdout or stderr has no reader any more (the pipe's
/// reader closed: `| head -1`; the terminal hung up). `poll` reports POLLERR/POLLHUP (and
/// POLLNVAL for a closed descriptor) without being asked; a file or /dev/null never raises
/// them, and the thread then just waits with the process.
fn watch_for_gone_readers(stop: Arc<AtomicBool>) {
    let spawned = std::thread::Builder::new()
        .name("trace-readers".into())
        .spawn(move || {
            let (stdout, stderr) = (io::stdout(), io::stderr());
            let mut fds = [
                PollFd::new(stdout.as_fd(), PollFlags::empty()),
                PollFd::new(stderr.as_fd(), PollFlags::empty()),
            ];
            loop {
                match poll(&mut fds, PollTimeout::NONE) {
                    Ok(n) if n > 0 => break,
                    Err(Errno::EINTR) | Ok(_) => continue,
                    Err(e) => {
                        log::debug!("cannot watch stdout and stderr: {e}");
                        return;
                    }
                }
            }
            log::debug!("stdout or stderr lost its reader; ending the trace");
            stop.store(true, Ordering::Relaxed);
        });
    if let Err(e) = spawned {
        log::debug!("cannot watch stdout and stderr: {e}");
    }
}

/// Everything a trace warns about, once: for the JSON report and, as lines, for stderr.
struct TraceWarnings {
    /// Each warning as one string, as the JSON report lists them.
    all: Vec<String>,
    /// The same as stderr shows them.
    stderr: String,
    /// Events were lost: the results are partial.
    lost: bool,
}

impl TraceWarnings {
    fn of(outcome: &live::EvictingOutcome) -> Self {
        Self::from_parts(
            &outcome.warnings,
            &outcome.state.diagnostics(),
            &outcome.stats,
        )
    }

    /// `run_warnings` are the live run's own (interfaces gone, stale filters, `-w` failing).
    fn from_parts(run_warnings: &[String], diagnostics: &Diagnostics, stats: &LiveStats) -> Self {
        let mut all = run_warnings.to_vec();
        // The analysis's damage warnings, exactly as the offline commands print them.
        let mut diagnostics_text = Vec::new();
        warn_diagnostics(diagnostics, &mut diagnostics_text);
        let diagnostics = diagnostics_text;
        let diagnostics = String::from_utf8_lossy(&diagnostics).into_owned();
        all.extend(diagnostics.lines().map(|line| {
            line.strip_prefix("warning: ")
                .unwrap_or(line.trim())
                .to_owned()
        }));
        let lost = stats.ringbuf_full + stats.userspace_lost;
        let loss = (lost > 0).then(|| {
            format!(
                "{lost} events lost ({} ring buffer full, {} in userspace); results miss those \
                 packets",
                stats.ringbuf_full, stats.userspace_lost
            )
        });
        all.extend(loss.clone());
        let mut stderr = String::new();
        for warning in run_warnings {
            stderr.push_str(&format!("warning: {warning}\n"));
        }
        stderr.push_str(&diagnostics);
        if let Some(loss) = loss {
            stderr.push_str(&format!("warning: {loss}\n"));
        }
        TraceWarnings {
            all,
            stderr,
            lost: lost > 0,
        }
    }
}

/// The final report on stdout: one JSON document, or the counters, the MPTCP connections and
/// their summaries (and, with `--all-tcp`, the plain TCP connections) as tables.
fn print_trace_report(
    args: &TraceArgs,
    outcome: &live::EvictingOutcome,
    elapsed: f64,
    warnings: &[String],
) -> anyhow::Result<()> {
    let snapshot = outcome.state.snapshot();
    let (list, summaries, open) = (&snapshot.list, &snapshot.summaries, &snapshot.open);
    let tcp = args.all_tcp.then_some(&snapshot.tcp);
    let tcp_summaries = args.all_tcp.then_some(&snapshot.tcp_summaries);

    let mut stdout = io::stdout().lock();
    if args.json {
        let summaries: Vec<json::LiveSummary<'_>> = summaries
            .iter()
            .map(|summary| json::LiveSummary {
                summary,
                open: open.contains(&summary.id),
            })
            .collect();
        let report = json::TraceReport {
            stats: &outcome.stats,
            mptcp: list,
            summaries: &summaries,
            tcp,
            tcp_summaries: tcp_summaries.map(Vec::as_slice),
            warnings,
        };
        stdout.write_all(json::to_pretty(&report)?.as_bytes())?;
    } else {
        let mut text = table::live_stats(&outcome.stats, elapsed);
        text.push('\n');
        text.push_str(&table::mptcp_list(list));
        for summary in summaries {
            text.push('\n');
            text.push_str(&table::mptcp_summary(summary, false));
        }
        text.push_str(&table::still_open(open));
        if let (Some(tcp), Some(tcp_summaries)) = (tcp, tcp_summaries) {
            text.push_str("\nTCP streams (--all-tcp):\n");
            text.push_str(&table::tcp_list(tcp));
            for summary in tcp_summaries {
                text.push('\n');
                text.push_str(&table::tcp_summary(summary));
            }
        }
        stdout.write_all(text.as_bytes())?;
    }
    stdout.flush()?;
    Ok(())
}

/// `trace --cleanup`: removes the stale filters of a killed mptcp-tracer, and only those.
fn cleanup(args: &TraceArgs) -> anyhow::Result<i32> {
    let removed = live_source::cleanup(&args.interfaces, args.netns.as_deref())
        .with_context(|| format!("cleaning up {}", args.interfaces.join(", ")))?;
    let mut stdout = io::stdout().lock();
    if removed.is_empty() {
        writeln!(
            stdout,
            "no stale filters of mptcp-tracer on {}",
            args.interfaces.join(", ")
        )?;
    }
    for line in &removed {
        writeln!(stdout, "{line}")?;
    }
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        <Cli as clap::Parser>::try_parse_from(
            std::iter::once("mptcp-tracer").chain(args.iter().copied()),
        )
    }

    #[test]
    fn trace_options() {
        let cli = parse(&[
            "trace",
            "-i",
            "veth0",
            "-i",
            "veth1",
            "--netns",
            "ns1",
            "-w",
            "out.pcapng",
            "--force",
            "--duration",
            "2.5",
            "--interval",
            "0.5",
            "--json",
            "--all-tcp",
            "--port",
            "5201",
            "--addr",
            "fd00::1",
            "--attach",
            "netlink",
        ])
        .expect("parses");
        let Some(Command::Trace(args)) = cli.command else {
            panic!("not trace")
        };
        let options = args.to_options();
        assert_eq!(options.interfaces, ["veth0", "veth1"]);
        assert_eq!(options.netns.as_deref(), Some("ns1"));
        assert_eq!(options.write.as_deref(), Some(Path::new("out.pcapng")));
        assert!(options.force && options.all_tcp && args.json);
        assert_eq!(options.duration, Some(Duration::from_millis(2500)));
        assert_eq!(options.interval, Duration::from_millis(500));
        assert_eq!(options.port, Some(5201));
        assert_eq!(options.addr, Some("fd00::1".parse().expect("an address")));
        assert_eq!(options.attach, AttachMode::Netlink);
        assert!(!options.rotation.rotates());
    }

    /// -C, -G and -W as tcpdump spells them; each needs what it rotates.
    #[test]
    fn rotation_options() {
        let cli = parse(&[
            "trace", "-i", "eth0", "-w", "t.pcapng", "-C", "5", "-G", "60", "-W", "3",
        ])
        .expect("parses");
        let Some(Command::Trace(args)) = cli.command else {
            panic!("not trace")
        };
        let rotation = args.to_options().rotation;
        assert_eq!(rotation.max_bytes, Some(5_000_000));
        assert_eq!(rotation.interval, Some(Duration::from_secs(60)));
        assert_eq!(rotation.keep, Some(3));
        for refused in [
            &["trace", "-i", "eth0", "-C", "5"][..],
            &["trace", "-i", "eth0", "-w", "t.pcapng", "-W", "3"],
            &["trace", "-i", "eth0", "-w", "t.pcapng", "-C", "0"],
            &[
                "trace", "-i", "eth0", "-w", "t.pcapng", "-G", "60", "--plot", "d",
            ],
        ] {
            assert!(parse(refused).is_err(), "{refused:?}");
        }
    }

    /// Every warning stderr gives is also one of the JSON's, with the same text.
    #[test]
    fn trace_warnings_reach_the_json_as_stderr_says_them() {
        let diagnostics = Diagnostics {
            packets: 10,
            decode_errors: 2,
            problems: vec!["packet 3: truncated TCP header".into()],
            problems_found: 1,
            ..Default::default()
        };
        let stats = LiveStats {
            ringbuf_full: 5,
            userspace_lost: 1,
            ..Default::default()
        };
        let run = ["interface c9 disappeared while tracing; its events stop there".to_owned()];
        let warnings = TraceWarnings::from_parts(&run, &diagnostics, &stats);
        assert_eq!(
            warnings.all,
            [
                "interface c9 disappeared while tracing; its events stop there",
                "2 packets could not be decoded",
                "packet 3: truncated TCP header",
                "6 events lost (5 ring buffer full, 1 in userspace); results miss those packets",
            ]
        );
        assert_eq!(
            warnings.stderr,
            "warning: interface c9 disappeared while tracing; its events stop there\n\
             warning: 2 packets could not be decoded\n  packet 3: truncated TCP header\n\
             warning: 6 events lost (5 ring buffer full, 1 in userspace); results miss those \
             packets\n"
        );
        assert!(warnings.lost);

        let clean = TraceWarnings::from_parts(&[], &Diagnostics::default(), &LiveStats::default());
        assert!(clean.all.is_empty() && clean.stderr.is_empty() && !clean.lost);
    }

    #[test]
    fn trace_cleanup_takes_only_the_interfaces() {
        let Some(Command::Trace(args)) = parse(&["trace", "--cleanup", "-i", "c1", "--netns", "n"])
            .expect("parses")
            .command
        else {
            panic!("not trace")
        };
        assert!(args.cleanup);
        assert!(parse(&["trace", "--cleanup", "-i", "c1", "--json"]).is_err());
        assert!(parse(&["trace", "--cleanup", "-i", "c1", "-w", "x.pcapng"]).is_err());
    }

    #[test]
    fn trace_defaults_and_errors() {
        let Some(Command::Trace(args)) = parse(&["trace", "-i", "eth0"]).expect("parses").command
        else {
            panic!("not trace")
        };
        let options = args.to_options();
        assert_eq!(options.interval, Duration::from_secs(1));
        assert_eq!(options.duration, None);
        assert_eq!(options.attach, AttachMode::Auto);
        assert!(!options.force && !options.all_tcp);

        assert!(parse(&["trace"]).is_err(), "an interface is required");
        assert!(parse(&["trace", "-i", "eth0", "--duration", "0"]).is_err());
        assert!(parse(&["trace", "-i", "eth0", "--duration", "NaN"]).is_err());
        assert!(parse(&["trace", "-i", "eth0", "--duration", "-1"]).is_err());
        assert!(parse(&["trace", "-i", "eth0", "--duration", "inf"]).is_err());
        // Rounds to zero nanoseconds: refused, not a trace that ends at once.
        assert!(parse(&["trace", "-i", "eth0", "--duration", "1e-10"]).is_err());
        assert!(parse(&["trace", "-i", "eth0", "--interval", "0.0009"]).is_err());
        assert!(parse(&["trace", "-i", "eth0", "--duration", "0.001"]).is_ok());
        assert!(parse(&["trace", "-i", "eth0", "--port", "70000"]).is_err());
        assert!(parse(&["trace", "-i", "eth0", "--attach", "xdp"]).is_err());
        assert!(
            parse(&["trace", "-i", "eth0", "--force"]).is_err(),
            "--force needs -w"
        );
    }

    /// `--metrics` takes the address as given (bound later, by `trace`); its connection limit
    /// needs it; the systemd unit's command line parses.
    #[test]
    fn metrics_options() {
        let trace = |args: &[&str]| match parse(args).expect("parses").command {
            Some(Command::Trace(args)) => args,
            _ => panic!("not trace"),
        };
        let args = trace(&["trace", "-i", "eth0", "--metrics", "127.0.0.1:9464"]);
        assert_eq!(args.metrics.as_deref(), Some("127.0.0.1:9464"));
        assert_eq!(args.metrics_max_connections, None);
        let args = trace(&[
            "trace",
            "-i",
            "eth0",
            "--metrics",
            "[::1]:0",
            "--metrics-max-connections",
            "5",
        ]);
        assert_eq!(args.metrics_max_connections, Some(5));
        assert!(parse(&["trace", "-i", "eth0", "--metrics-max-connections", "5"]).is_err());
        assert!(parse(&["trace", "--cleanup", "-i", "eth0", "--metrics", ":9464"]).is_err());

        let unit = include_str!("../../../contrib/mptcp-tracer.service");
        let exec = unit
            .lines()
            .find_map(|line| line.strip_prefix("ExecStart=/usr/local/bin/"))
            .expect("an ExecStart line");
        let args = trace(&exec.split_whitespace().collect::<Vec<_>>()[1..]);
        assert_eq!(args.metrics.as_deref(), Some("127.0.0.1:9464"));
        assert!(args.long_run);
    }

    /// `--long-run` turns eviction on, with the default idle timeout unless one is given;
    /// `--idle-timeout` alone is a mistake, not a silently ignored flag.
    #[test]
    fn long_run_options() {
        let eviction = |args: &[&str]| match parse(args).expect("parses").command {
            Some(Command::Trace(args)) => args.eviction(),
            _ => panic!("not trace"),
        };
        assert!(eviction(&["trace", "-i", "eth0"]).is_none());
        let default = eviction(&["trace", "-i", "eth0", "--long-run"]).expect("eviction");
        assert_eq!(default.idle_timeout, DEFAULT_IDLE_TIMEOUT);
        assert!(!default.plain_tcp);
        let set = eviction(&[
            "trace",
            "-i",
            "eth0",
            "--long-run",
            "--idle-timeout",
            "30",
            "--all-tcp",
        ])
        .expect("eviction");
        assert_eq!(set.idle_timeout, Duration::from_secs(30));
        assert!(set.plain_tcp);
        assert!(parse(&["trace", "-i", "eth0", "--idle-timeout", "30"]).is_err());
        assert!(parse(&["trace", "-i", "eth0", "--cleanup", "--long-run"]).is_err());
    }
}
