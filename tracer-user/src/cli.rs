//! The one-shot command line: clap's definition of every command, and the binary's entry point.
//!
//! The query commands' arguments (everything but the capture file) are defined once, in
//! `query::Query`; the one-shot commands here add the file in front, the shell
//! (`shell::ShellCommand`) flattens `Query` as it is, and both answer through
//! `query::run_query`. This module is the edge where errors become messages and exit codes.

mod trace;

use std::{
    io::{self, Write},
    path::{Path, PathBuf},
};

use anyhow::{Context as _, anyhow};
use clap::{ArgAction, Args, Parser, Subcommand};

pub use self::trace::{AttachArg, TraceArgs};
use crate::{
    export::{self, ExportOptions},
    plot::{PlotKind, PlotOptions},
    query::{
        ABOUT_LIST_MPTCP, ABOUT_LIST_REINJECTIONS, ABOUT_LIST_TCP, ABOUT_MPTCP_SUMMARY, ABOUT_PLOT,
        ABOUT_REORDER_BUFFER, ABOUT_TCP_SUMMARY, ConnectionArgs, EXIT_ERROR, EXIT_OK, EXIT_PARTIAL,
        ListArgs, LoadOptions, MptcpSummaryArgs, PlotArgs, Query, TcpSummaryArgs, load,
        pair::{
            ABOUT_MAP_MPTCP, ABOUT_MAP_TCP, ABOUT_OWD, ABOUT_QUALIFY_REINJECTIONS, Capture,
            MapMptcpArgs, MapTcpArgs, OwdArgs, PairQuery, QualifyArgs, run_pair_query,
        },
        run_query, warn_damage,
    },
    reorder::ReorderArgs,
    shell,
};

#[derive(Debug, Parser)]
#[command(
    name = "mptcp-tracer",
    version,
    about = "Trace Multipath TCP live with eBPF and analyse MPTCP captures.",
    long_about = "Trace Multipath TCP live with eBPF and analyse MPTCP captures.\n\n\
                  Without a command, starts the interactive shell (or reads shell commands \
                  from stdin when it is not a terminal)."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Clone, Copy, Debug, Default, Args)]
pub struct GlobalArgs {
    /// Do not draw progress bars.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Log more on stderr: -v info, -vv debug, -vvv trace (RUST_LOG overrides).
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,
}

impl GlobalArgs {
    /// What the global flags say about loading a capture.
    pub fn load_options(self) -> LoadOptions {
        LoadOptions {
            progress: !self.quiet,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    #[command(about = ABOUT_LIST_TCP)]
    ListTcp {
        /// Capture file (pcap or pcapng).
        file: PathBuf,
        #[command(flatten)]
        args: ListArgs,
    },
    #[command(about = ABOUT_LIST_MPTCP)]
    ListMptcp {
        /// Capture file (pcap or pcapng).
        file: PathBuf,
        #[command(flatten)]
        args: ListArgs,
    },
    #[command(about = ABOUT_TCP_SUMMARY)]
    TcpSummary {
        /// Capture file (pcap or pcapng).
        file: PathBuf,
        #[command(flatten)]
        args: TcpSummaryArgs,
    },
    #[command(about = ABOUT_MPTCP_SUMMARY)]
    MptcpSummary {
        /// Capture file (pcap or pcapng).
        file: PathBuf,
        #[command(flatten)]
        args: MptcpSummaryArgs,
    },
    #[command(about = ABOUT_PLOT)]
    Plot {
        /// What to plot.
        #[arg(value_enum)]
        kind: PlotKind,
        /// Capture file (pcap or pcapng).
        file: PathBuf,
        #[command(flatten)]
        options: PlotOptions,
    },
    #[command(about = ABOUT_REORDER_BUFFER)]
    ReorderBuffer {
        /// Capture file (pcap or pcapng), made at the receiving side (`--side`).
        file: PathBuf,
        #[command(flatten)]
        args: ReorderArgs,
    },
    #[command(about = ABOUT_MAP_TCP)]
    MapTcp {
        #[command(flatten)]
        captures: CapturePair,
        #[command(flatten)]
        args: MapTcpArgs,
    },
    #[command(about = ABOUT_MAP_MPTCP)]
    MapMptcp {
        #[command(flatten)]
        captures: CapturePair,
        #[command(flatten)]
        args: MapMptcpArgs,
    },
    #[command(about = ABOUT_OWD)]
    Owd {
        #[command(flatten)]
        captures: CapturePair,
        #[command(flatten)]
        args: OwdArgs,
    },
    #[command(about = ABOUT_LIST_REINJECTIONS)]
    ListReinjections {
        /// Capture file (pcap or pcapng).
        file: PathBuf,
        #[command(flatten)]
        args: ConnectionArgs,
    },
    #[command(about = ABOUT_QUALIFY_REINJECTIONS)]
    QualifyReinjections {
        #[command(flatten)]
        captures: CapturePair,
        #[command(flatten)]
        args: QualifyArgs,
    },
    /// Interactive prompt: load a capture once, then query it (the default command).
    Shell,
    /// Write one row per TCP packet of one or more captures (CSV or Parquet), with what the
    /// analysis concluded about each: connection, subflow, data sequence range, mapping,
    /// retransmission, reinjection; or, with --summaries, their connection summaries
    /// (columns: README "Exports").
    Export(ExportArgs),
    /// Trace MPTCP live on network interfaces with eBPF (needs root).
    Trace(TraceArgs),
    /// Build a two-path MPTCP lab in network namespaces, trace a transfer live and check the
    /// tracer's byte counts against the application's (needs root; removes what it made).
    #[cfg(feature = "demo")]
    Demo,
}

/// The two captures of a two-capture command.
#[derive(Debug, Clone, Args)]
pub struct CapturePair {
    /// Capture taken at the client side (pcap or pcapng).
    pub client: PathBuf,
    /// Capture of the same traffic taken at the server side.
    pub server: PathBuf,
}

impl Command {
    /// The two capture files and the query of a one-shot two-capture command.
    pub fn as_pair_query(&self) -> Option<(&CapturePair, PairQuery)> {
        Some(match self {
            Command::MapTcp { captures, args } => (captures, PairQuery::MapTcp(args.clone())),
            Command::MapMptcp { captures, args } => (captures, PairQuery::MapMptcp(args.clone())),
            Command::Owd { captures, args } => (captures, PairQuery::Owd(args.clone())),
            Command::QualifyReinjections { captures, args } => {
                (captures, PairQuery::QualifyReinjections(args.clone()))
            }
            _ => return None,
        })
    }

    /// The capture file and the query of a one-shot offline command.
    pub fn as_query(&self) -> Option<(&Path, Query)> {
        Some(match self {
            Command::ListTcp { file, args } => (file.as_path(), Query::ListTcp(args.clone())),
            Command::ListMptcp { file, args } => (file.as_path(), Query::ListMptcp(args.clone())),
            Command::TcpSummary { file, args } => (file.as_path(), Query::TcpSummary(args.clone())),
            Command::ListReinjections { file, args } => {
                (file.as_path(), Query::ListReinjections(args.clone()))
            }
            Command::MptcpSummary { file, args } => {
                (file.as_path(), Query::MptcpSummary(args.clone()))
            }
            Command::Plot {
                kind,
                file,
                options,
            } => (
                file.as_path(),
                Query::Plot(PlotArgs {
                    kind: *kind,
                    options: options.clone(),
                }),
            ),
            Command::ReorderBuffer { file, args } => {
                (file.as_path(), Query::ReorderBuffer(args.clone()))
            }
            // Commands that do not query a capture.
            _ => return None,
        })
    }
}

/// The binary's entry point: parses the command line, runs the command, returns the exit code.
/// Every error ends here as a message on stderr.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are not errors.
            let _ = e.print();
            return if e.use_stderr() { EXIT_ERROR } else { EXIT_OK };
        }
    };
    init_logging(cli.global.verbose);
    match run(&cli) {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => EXIT_OK,
        Err(e) => {
            eprintln!("error: {e:#}");
            EXIT_ERROR
        }
    }
}

fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => log::LevelFilter::Warn,
        1 => log::LevelFilter::Info,
        2 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    };
    let _ = env_logger::Builder::new()
        .filter_level(level)
        .parse_default_env()
        .format_timestamp(None)
        .try_init();
}

/// A reader that went away (`| head`) is not an error worth a message.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// Capture files (pcap or pcapng), analysed in parallel where the machine has the cores.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub options: ExportOptions,
}

/// `export`: the rows are written, a capture that stopped early is warned about (exit 2).
fn export(args: &ExportArgs) -> anyhow::Result<i32> {
    let options = &args.options;
    let (warnings, message) = if options.summaries {
        let report = export::summaries::export_summaries(
            &args.files,
            &options.output,
            options.format,
            options.force,
        )?;
        (report.warnings(), report.message())
    } else {
        let report =
            export::export_packets(&args.files, &options.output, options.format, options.force)?;
        (report.warnings(), report.message(&options.output))
    };
    let mut err = io::stderr().lock();
    for warning in &warnings {
        let _ = writeln!(err, "warning: {warning}");
    }
    let _ = writeln!(err, "{message}");
    Ok(if warnings.is_empty() {
        EXIT_OK
    } else {
        EXIT_PARTIAL
    })
}

fn run(cli: &Cli) -> anyhow::Result<i32> {
    match &cli.command {
        None | Some(Command::Shell) => Ok(shell::run(cli.global.load_options())),
        Some(Command::Export(args)) => export(args),
        Some(Command::Trace(args)) => trace::trace(args),
        #[cfg(feature = "demo")]
        Some(Command::Demo) => Ok(crate::demo::run()?),
        Some(command) => {
            if let Some((captures, query)) = command.as_pair_query() {
                return one_shot_pair(captures, &query, cli.global);
            }
            let (file, query) = command.as_query().ok_or_else(|| anyhow!("not a query"))?;
            one_shot(file, &query, cli.global)
        }
    }
}

fn one_shot(file: &Path, query: &Query, global: GlobalArgs) -> anyhow::Result<i32> {
    let report = load(file, global.load_options())?;
    let mut stdout = io::stdout().lock();
    let result = run_query(&report.analyzer, file, query, &mut stdout)
        .and_then(|()| stdout.flush().context("writing to stdout"));
    let damage = warn_damage(&report, &mut io::stderr().lock());
    result.map(|()| damage)
}

/// Loads both captures at once (each on its own threads) and answers `query` about them.
fn one_shot_pair(
    captures: &CapturePair,
    query: &PairQuery,
    global: GlobalArgs,
) -> anyhow::Result<i32> {
    let options = global.load_options();
    let (client, server) = std::thread::scope(|scope| {
        let server = scope.spawn(|| load(&captures.server, options));
        let client = load(&captures.client, options);
        (client, server.join())
    });
    let client = client?;
    let server = server.map_err(|_| anyhow!("loading {} failed", captures.server.display()))??;
    let mut stdout = io::stdout().lock();
    let result = run_pair_query(
        Capture {
            path: &captures.client,
            analyzer: &client.analyzer,
        },
        Capture {
            path: &captures.server,
            analyzer: &server.analyzer,
        },
        query,
        &mut stdout,
    )
    .and_then(|()| stdout.flush().context("writing to stdout"));
    let mut stderr = io::stderr().lock();
    let damage = warn_damage(&client, &mut stderr).max(warn_damage(&server, &mut stderr));
    result.map(|()| damage)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("mptcp-tracer").chain(args.iter().copied()))
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_command_means_shell() {
        let cli = parse(&[]).expect("parses");
        assert!(cli.command.is_none());
        assert!(matches!(
            parse(&["shell"]).expect("parses").command,
            Some(Command::Shell)
        ));
    }

    #[test]
    fn offline_commands_take_the_file_first() {
        let cli = parse(&["tcp-summary", "a.pcap", "7", "--json"]).expect("parses");
        let command = cli.command.expect("a command");
        let (file, query) = command.as_query().expect("a query");
        assert_eq!(file, Path::new("a.pcap"));
        assert!(matches!(
            query,
            Query::TcpSummary(TcpSummaryArgs {
                stream: 7,
                json: true
            })
        ));

        let cli = parse(&["mptcp-summary", "b.pcapng", "3", "--full"]).expect("parses");
        let (file, query) = cli
            .command
            .as_ref()
            .and_then(Command::as_query)
            .expect("a query");
        assert_eq!(file, Path::new("b.pcapng"));
        assert!(matches!(
            query,
            Query::MptcpSummary(MptcpSummaryArgs {
                id: 3,
                full: true,
                json: false
            })
        ));

        // The capture is made at the server unless --side says otherwise.
        let cli = parse(&["reorder-buffer", "s.pcap", "2"]).expect("parses");
        assert!(matches!(
            cli.command.as_ref().and_then(Command::as_query),
            Some((_, Query::ReorderBuffer(a)))
                if a.id == 2 && a.side == crate::reorder::Side::Server && !a.json && !a.full
        ));
        assert!(parse(&["reorder-buffer", "s.pcap", "2", "--side", "middle"]).is_err());

        let cli = parse(&["list-mptcp", "c.pcap"]).expect("parses");
        assert!(matches!(
            cli.command.as_ref().and_then(Command::as_query),
            Some((_, Query::ListMptcp(ListArgs { json: false })))
        ));
    }

    #[test]
    fn offline_commands_reject_missing_or_bad_arguments() {
        assert!(parse(&["list-tcp"]).is_err());
        assert!(parse(&["tcp-summary", "a.pcap"]).is_err());
        assert!(parse(&["tcp-summary", "a.pcap", "-1"]).is_err());
        assert!(parse(&["mptcp-summary", "a.pcap", "x"]).is_err());
        assert!(parse(&["list-tcp", "a.pcap", "--bogus"]).is_err());
    }

    /// `export --summaries` takes a directory; the packet export's flags are unchanged.
    #[test]
    fn export_options() {
        let Some(Command::Export(args)) = parse(&[
            "export",
            "a.pcap",
            "b.pcap",
            "--summaries",
            "-o",
            "out",
            "--force",
        ])
        .expect("parses")
        .command
        else {
            panic!("not export")
        };
        assert_eq!(args.files, [Path::new("a.pcap"), Path::new("b.pcap")]);
        assert!(args.options.summaries && args.options.force);
        assert_eq!(args.options.output, Path::new("out"));
        assert_eq!(args.options.format, None);
        assert!(
            parse(&["export", "-o", "x.csv"]).is_err(),
            "a capture is required"
        );
    }

    #[test]
    fn global_flags_anywhere() {
        let cli = parse(&["list-tcp", "a.pcap", "--quiet", "-vv"]).expect("parses");
        assert!(cli.global.quiet);
        assert_eq!(cli.global.verbose, 2);
        let cli = parse(&["-q", "shell"]).expect("parses");
        assert!(cli.global.quiet);
    }
}
