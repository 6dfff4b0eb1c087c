//! The interactive prompt: load a capture once, then ask the same questions as the one-shot
//! commands. Each line is parsed with clap, by `ShellLine`, whose query commands are
//! `query::Query` flattened in, and answered by `query::run_query`: the shell and the one-shot
//! CLI share their flags and their output code.
//!
//! When stdin is not a terminal the shell reads commands line by line without a prompt (batch
//! mode, for scripts and tests): blank lines and `#` comments are skipped, a failing command
//! prints its error and the next one runs, and the exit code is 1 if any failed (2 if none
//! failed but a loaded capture was damaged).

use std::{
    ffi::OsString,
    io::{self, BufRead, IsTerminal as _, Write},
    path::{Path, PathBuf},
};

use clap::{CommandFactory as _, Parser, Subcommand, error::ErrorKind};
use rustyline::{
    CompletionType, Config, Context, Editor, Helper,
    completion::{Completer, FilenameCompleter, Pair},
    error::ReadlineError,
    highlight::Highlighter,
    hint::Hinter,
    history::FileHistory,
    validate::Validator,
};

use crate::{
    analysis::Analyzer,
    query::{
        self, EXIT_ERROR, EXIT_OK, EXIT_PARTIAL, LoadOptions, Query,
        pair::{Capture, PairQuery, run_pair_query},
    },
};

/// One line typed at the prompt.
#[derive(Debug, Parser)]
#[command(
    name = "mptcp-tracer shell",
    about = "Commands of the mptcp-tracer shell",
    no_binary_name = true,
    disable_version_flag = true,
    override_usage = "<COMMAND> [ARGS]",
    after_help = "Quote or backslash-escape spaces in file names. Ctrl-D also quits."
)]
struct ShellLine {
    #[command(subcommand)]
    command: ShellCommand,
}

#[derive(Debug, Subcommand)]
enum ShellCommand {
    /// Analyse a capture file (pcap or pcapng); the other commands then query it. With
    /// --peer, the capture of the same traffic taken at the other end (the server side), which
    /// the two-capture commands (map-tcp, map-mptcp, ...) compare with the loaded one.
    LoadPcap {
        /// Capture file.
        file: PathBuf,
        /// Load FILE as the peer (server-side) capture, keeping the loaded one.
        #[arg(long)]
        peer: bool,
    },
    #[command(flatten)]
    Query(Query),
    #[command(flatten)]
    PairQuery(PairQuery),
    /// Leave the shell.
    #[command(visible_alias = "exit")]
    Quit,
}

/// What running one line asks the caller to do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Go on; the command's exit code (`query::EXIT_*`).
    Continue(i32),
    Quit,
}

struct Loaded {
    path: PathBuf,
    analyzer: Analyzer,
}

impl Loaded {
    fn capture(&self) -> Capture<'_> {
        Capture {
            path: &self.path,
            analyzer: &self.analyzer,
        }
    }
}

/// The shell's state: the loaded capture and its peer, if any.
pub struct Session {
    options: LoadOptions,
    loaded: Option<Loaded>,
    peer: Option<Loaded>,
}

impl Session {
    pub fn new(options: LoadOptions) -> Self {
        Self {
            options,
            loaded: None,
            peer: None,
        }
    }

    /// `client_2.pcap> ` once a capture is loaded, `mptcp-tracer> ` before.
    pub fn prompt(&self) -> String {
        match &self.loaded {
            Some(loaded) => {
                let name = loaded.path.file_name().map_or_else(
                    || loaded.path.to_string_lossy(),
                    |name| name.to_string_lossy(),
                );
                format!("{name}> ")
            }
            None => "mptcp-tracer> ".to_owned(),
        }
    }

    /// Runs one line: results on `out`, errors and warnings on `err`.
    pub fn execute(&mut self, line: &str, out: &mut dyn Write, err: &mut dyn Write) -> Step {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return Step::Continue(EXIT_OK);
        }
        let words = match split_words(line) {
            Ok(words) => words,
            Err(e) => {
                let _ = writeln!(err, "error: {e}");
                return Step::Continue(EXIT_ERROR);
            }
        };
        let parsed = match ShellLine::try_parse_from(&words) {
            Ok(parsed) => parsed,
            Err(e) => return Step::Continue(clap_message(&e, out, err)),
        };
        match parsed.command {
            ShellCommand::Quit => Step::Quit,
            ShellCommand::LoadPcap { file, peer } => Step::Continue(self.load(file, peer, err)),
            ShellCommand::PairQuery(query) => Step::Continue(self.pair_query(&query, out, err)),
            ShellCommand::Query(query) => {
                let Some(loaded) = &self.loaded else {
                    let _ = writeln!(err, "error: no capture loaded; run `load-pcap FILE` first");
                    return Step::Continue(EXIT_ERROR);
                };
                match query::run_query(&loaded.analyzer, &loaded.path, &query, out) {
                    Ok(()) => Step::Continue(EXIT_OK),
                    Err(e) => {
                        let _ = writeln!(err, "error: {e:#}");
                        Step::Continue(EXIT_ERROR)
                    }
                }
            }
        }
    }

    /// Analyses `file` and makes it the loaded capture. A file that cannot be read leaves the
    /// previous one loaded.
    fn load(&mut self, file: PathBuf, peer: bool, err: &mut dyn Write) -> i32 {
        let report = match query::load(&file, self.options) {
            Ok(report) => report,
            Err(e) => {
                let _ = writeln!(err, "error: {e:#}");
                return EXIT_ERROR;
            }
        };
        let code = query::warn_damage(&report, err);
        let diagnostics = report.analyzer.diagnostics();
        let _ = writeln!(
            err,
            "loaded {}{}: {} packets, {} TCP segments",
            if peer { "peer " } else { "" },
            file.display(),
            diagnostics.packets,
            diagnostics.tcp_packets
        );
        let loaded = Some(Loaded {
            path: file,
            analyzer: report.analyzer,
        });
        if peer {
            self.peer = loaded;
        } else {
            self.loaded = loaded;
        }
        code
    }

    /// Answers a two-capture question about the loaded capture and its peer.
    fn pair_query(&self, query: &PairQuery, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
        let (Some(loaded), Some(peer)) = (&self.loaded, &self.peer) else {
            let _ = writeln!(
                err,
                "error: two captures needed; run `load-pcap CLIENT_FILE` and `load-pcap --peer SERVER_FILE` first"
            );
            return EXIT_ERROR;
        };
        match run_pair_query(loaded.capture(), peer.capture(), query, out) {
            Ok(()) => EXIT_OK,
            Err(e) => {
                let _ = writeln!(err, "error: {e:#}");
                EXIT_ERROR
            }
        }
    }
}

/// Prints clap's message for a line it refused: help on `out` (not a failure), errors on `err`.
fn clap_message(error: &clap::Error, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let text = error.render().to_string();
    match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = out.write_all(text.as_bytes());
            EXIT_OK
        }
        _ => {
            let _ = err.write_all(text.as_bytes());
            EXIT_ERROR
        }
    }
}

/// Runs the shell: a prompt when stdin is a terminal, batch mode otherwise. Returns the exit
/// code.
pub fn run(options: LoadOptions) -> i32 {
    let mut session = Session::new(options);
    if io::stdin().is_terminal() {
        interactive(&mut session)
    } else {
        batch(
            &mut session,
            io::stdin().lock(),
            &mut io::stdout(),
            &mut io::stderr(),
        )
    }
}

/// The longest command line batch mode takes. Longer lines are refused without being echoed
/// or even kept: no command needs more, and a stray binary file on stdin must not be printed
/// back in an error message.
const MAX_LINE_BYTES: usize = 64 * 1024;

/// Reads commands from `input` until its end or `quit`. Errors name the input line. Returns
/// `EXIT_ERROR` if any command failed, else `EXIT_PARTIAL` if a loaded capture was damaged, else
/// `EXIT_OK`: a failure is what a script must notice first.
pub fn batch(
    session: &mut Session,
    mut input: impl BufRead,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let mut outcome = BatchOutcome::default();
    let mut bytes = Vec::new();
    for number in 1.. {
        let mut line_err = LinePrefixed {
            inner: &mut *err,
            number,
            prefixed: false,
        };
        let line = match read_bounded_line(&mut input, &mut bytes, MAX_LINE_BYTES) {
            Ok(LineRead::End) => break,
            Ok(LineRead::Line) => std::str::from_utf8(&bytes).map_err(|_| "not UTF-8".to_owned()),
            Ok(LineRead::TooLong(length)) => Err(format!(
                "line of {length} bytes is longer than the {MAX_LINE_BYTES} a command may have"
            )),
            Err(e) => {
                let _ = writeln!(line_err, "error: reading commands from stdin: {e}");
                return EXIT_ERROR;
            }
        };
        let step = match line {
            Ok(line) => session.execute(line, out, &mut line_err),
            Err(why) => {
                let _ = writeln!(line_err, "error: {why}; skipped");
                Step::Continue(EXIT_ERROR)
            }
        };
        match step {
            Step::Quit => break,
            Step::Continue(code) => outcome.add(code),
        }
    }
    let _ = out.flush();
    outcome.exit_code()
}

/// The exit codes of a batch's commands, summed up.
#[derive(Default)]
struct BatchOutcome {
    failed: bool,
    partial: bool,
}

impl BatchOutcome {
    fn add(&mut self, code: i32) {
        match code {
            EXIT_OK => {}
            EXIT_PARTIAL => self.partial = true,
            _ => self.failed = true,
        }
    }

    fn exit_code(&self) -> i32 {
        if self.failed {
            EXIT_ERROR
        } else if self.partial {
            EXIT_PARTIAL
        } else {
            EXIT_OK
        }
    }
}

/// What `read_bounded_line` found.
#[derive(Debug, PartialEq, Eq)]
enum LineRead {
    /// The input has ended.
    End,
    /// A line is in the buffer (with its newline, if it had one).
    Line,
    /// A line of this many bytes (newline excluded) was read past and not kept.
    TooLong(usize),
}

/// Reads one line into `line`, keeping at most `max` bytes of it: the rest of a longer line
/// is read and dropped, so memory stays bounded whatever the input.
fn read_bounded_line(
    input: &mut impl BufRead,
    line: &mut Vec<u8>,
    max: usize,
) -> io::Result<LineRead> {
    line.clear();
    let mut length = 0;
    let mut any = false;
    loop {
        let available = input.fill_buf()?;
        if available.is_empty() {
            break;
        }
        any = true;
        let newline = available.iter().position(|&b| b == b'\n');
        let taken = newline.map_or(available.len(), |at| at + 1);
        let content = newline.unwrap_or(available.len());
        if length + content <= max {
            line.extend_from_slice(&available[..taken]);
        }
        length += content;
        input.consume(taken);
        if newline.is_some() {
            break;
        }
    }
    Ok(match (any, length > max) {
        (false, _) => LineRead::End,
        (true, false) => LineRead::Line,
        (true, true) => {
            line.clear();
            LineRead::TooLong(length)
        }
    })
}

/// Prefixes what one batch command writes to stderr with the input line it came from, once:
/// a multi-line message (clap's usage) stays readable.
struct LinePrefixed<'a> {
    inner: &'a mut dyn Write,
    number: usize,
    prefixed: bool,
}

impl Write for LinePrefixed<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.prefixed && !buf.is_empty() {
            write!(self.inner, "line {}: ", self.number)?;
            self.prefixed = true;
        }
        self.inner.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn interactive(session: &mut Session) -> i32 {
    let config = Config::builder()
        .completion_type(CompletionType::List)
        .auto_add_history(false)
        .build();
    let mut editor: Editor<ShellHelper, FileHistory> = match Editor::with_config(config) {
        Ok(editor) => editor,
        Err(e) => {
            eprintln!("error: cannot start the prompt: {e}");
            return EXIT_ERROR;
        }
    };
    editor.set_helper(Some(ShellHelper::new()));
    let history = history_path();
    if let Some(path) = &history {
        // No history yet is the normal first run.
        if let Err(e) = editor.load_history(path)
            && !matches!(&e, ReadlineError::Io(io) if io.kind() == io::ErrorKind::NotFound)
        {
            log::warn!("cannot read the history {}: {e}", path.display());
        }
    }
    let mut stdout = io::stdout();
    let _ = writeln!(
        stdout,
        "mptcp-tracer shell: `help` lists the commands, `quit` or Ctrl-D leaves."
    );
    let mut stderr = io::stderr();
    loop {
        match editor.readline(&session.prompt()) {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.trim());
                }
                if session.execute(&line, &mut stdout, &mut stderr) == Step::Quit {
                    break;
                }
                let _ = stdout.flush();
            }
            // Ctrl-C abandons the line, as in a shell.
            Err(ReadlineError::Interrupted) => {}
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("error: reading the command line: {e}");
                return EXIT_ERROR;
            }
        }
    }
    if let Some(path) = &history {
        let saved = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .map_err(ReadlineError::Io)
            .and_then(|()| editor.save_history(path));
        if let Err(e) = saved {
            log::warn!("cannot save the history to {}: {e}", path.display());
        }
    }
    EXIT_OK
}

/// `$XDG_STATE_HOME/mptcp-tracer/history`, else `~/.local/state/mptcp-tracer/history`.
fn history_path() -> Option<PathBuf> {
    history_path_from(std::env::var_os("XDG_STATE_HOME"), std::env::var_os("HOME"))
}

fn history_path_from(xdg_state_home: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    // The XDG spec says an empty variable counts as unset.
    let state = xdg_state_home
        .filter(|value| !value.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            home.filter(|value| !value.is_empty())
                .map(|home| Path::new(&home).join(".local/state"))
        })?;
    Some(state.join("mptcp-tracer").join("history"))
}

/// The names the first word can take, from the clap definition.
fn command_names() -> Vec<String> {
    let command = ShellLine::command();
    let mut names: Vec<String> = command
        .get_subcommands()
        .flat_map(|sub| {
            std::iter::once(sub.get_name().to_owned())
                .chain(sub.get_visible_aliases().map(str::to_owned))
        })
        .collect();
    if !names.iter().any(|name| name == "help") {
        names.push("help".to_owned());
    }
    names.sort();
    names
}

/// Completes command names in the first word and file paths after it.
struct ShellHelper {
    commands: Vec<String>,
    files: FilenameCompleter,
}

impl ShellHelper {
    fn new() -> Self {
        Self {
            commands: command_names(),
            files: FilenameCompleter::new(),
        }
    }
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = line.get(..pos).unwrap_or(line);
        let typed = before.trim_start();
        if typed.contains(char::is_whitespace) {
            return self.files.complete(line, pos, ctx);
        }
        let start = before.len() - typed.len();
        let candidates = self
            .commands
            .iter()
            .filter(|name| name.starts_with(typed))
            .map(|name| Pair {
                display: name.clone(),
                replacement: format!("{name} "),
            })
            .collect();
        Ok((start, candidates))
    }
}

impl Hinter for ShellHelper {
    type Hint = String;
}

impl Highlighter for ShellHelper {}

impl Validator for ShellHelper {}

impl Helper for ShellHelper {}

/// Why a line could not be split into words.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum WordsError {
    #[error("unterminated {0} quote")]
    UnterminatedQuote(&'static str),
    #[error("backslash at the end of the line")]
    TrailingBackslash,
}

/// Splits a line into words as a POSIX shell would, without expansions: whitespace separates,
/// `'…'` is literal, `"…"` allows `\"` and `\\`, a backslash outside quotes escapes the next
/// character (how the file-name completion escapes spaces).
pub fn split_words(line: &str) -> Result<Vec<String>, WordsError> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if let Some(done) = word.take() {
                    words.push(done);
                }
            }
            '\'' => {
                let current = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => current.push(c),
                        None => return Err(WordsError::UnterminatedQuote("single")),
                    }
                }
            }
            '"' => {
                let current = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => current.push(c),
                            Some(c) => {
                                current.push('\\');
                                current.push(c);
                            }
                            None => return Err(WordsError::UnterminatedQuote("double")),
                        },
                        Some(c) => current.push(c),
                        None => return Err(WordsError::UnterminatedQuote("double")),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(c) => word.get_or_insert_with(String::new).push(c),
                None => return Err(WordsError::TrailingBackslash),
            },
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_batch(input: &str) -> (i32, String, String) {
        let mut session = Session::new(LoadOptions::default());
        let mut out = Vec::new();
        let mut err = Vec::new();
        let code = batch(&mut session, input.as_bytes(), &mut out, &mut err);
        (
            code,
            String::from_utf8(out).expect("UTF-8"),
            String::from_utf8(err).expect("UTF-8"),
        )
    }

    #[test]
    fn words_split_like_a_shell() {
        assert_eq!(
            split_words("  load-pcap  a.pcap ").expect("splits"),
            ["load-pcap", "a.pcap"]
        );
        assert_eq!(
            split_words(r"load-pcap my\ file.pcap").expect("splits"),
            ["load-pcap", "my file.pcap"]
        );
        assert_eq!(
            split_words(r#"load-pcap "a \"b\" c" 'd e'"#).expect("splits"),
            ["load-pcap", r#"a "b" c"#, "d e"]
        );
        assert_eq!(split_words(r#"x "" ''"#).expect("splits"), ["x", "", ""]);
        assert_eq!(split_words(r#"x "a\nb""#).expect("splits"), ["x", r"a\nb"]);
        assert_eq!(
            split_words("x 'a"),
            Err(WordsError::UnterminatedQuote("single"))
        );
        assert_eq!(
            split_words("x \"a"),
            Err(WordsError::UnterminatedQuote("double"))
        );
        assert_eq!(split_words("x \\"), Err(WordsError::TrailingBackslash));
        assert!(split_words("").expect("splits").is_empty());
    }

    fn parse(line: &str) -> Result<ShellCommand, clap::Error> {
        ShellLine::try_parse_from(split_words(line).expect("splits")).map(|parsed| parsed.command)
    }

    #[test]
    fn clap_definition_is_consistent() {
        ShellLine::command().debug_assert();
    }

    #[test]
    fn lines_parse_into_the_shared_queries() {
        assert!(matches!(
            parse("load-pcap 'client 2.pcap'"),
            Ok(ShellCommand::LoadPcap { file, peer: false }) if file == Path::new("client 2.pcap")
        ));
        assert!(matches!(parse("list-tcp"), Ok(ShellCommand::Query(Query::ListTcp(a))) if !a.json));
        assert!(
            matches!(parse("list-mptcp --json"), Ok(ShellCommand::Query(Query::ListMptcp(a))) if a.json)
        );
        assert!(matches!(
            parse("tcp-summary 4 --json"),
            Ok(ShellCommand::Query(Query::TcpSummary(a))) if a.stream == 4 && a.json
        ));
        assert!(matches!(
            parse("mptcp-summary --full 2"),
            Ok(ShellCommand::Query(Query::MptcpSummary(a))) if a.id == 2 && a.full && !a.json
        ));
        assert!(matches!(
            parse("reorder-buffer 1 --side client --json"),
            Ok(ShellCommand::Query(Query::ReorderBuffer(a)))
                if a.id == 1 && a.side == crate::reorder::Side::Client && a.json
        ));
        assert!(matches!(
            parse("export --summaries -o out --format parquet"),
            Ok(ShellCommand::Query(Query::Export(o)))
                if o.summaries && o.output == Path::new("out") && !o.force
        ));
        assert!(
            parse("export a.pcap -o x.csv").is_err(),
            "the capture is the loaded one"
        );
        assert!(matches!(parse("quit"), Ok(ShellCommand::Quit)));
        assert!(matches!(parse("exit"), Ok(ShellCommand::Quit)));
        assert_eq!(
            parse("help").map(|_| ()).map_err(|e| e.kind()),
            Err(ErrorKind::DisplayHelp)
        );
        assert!(parse("tcp-summary").is_err());
        assert!(
            parse("list-tcp a.pcap").is_err(),
            "the file comes from load-pcap"
        );
        assert!(parse("shell").is_err());
        assert!(parse("trace -i eth0").is_err());
        assert!(matches!(
            parse("load-pcap --peer server.pcap"),
            Ok(ShellCommand::LoadPcap { file, peer: true }) if file == Path::new("server.pcap")
        ));
        assert!(matches!(
            parse("map-mptcp 3 --json"),
            Ok(ShellCommand::PairQuery(PairQuery::MapMptcp(a))) if a.id == Some(3) && a.json
        ));
        assert!(
            parse("map-tcp a.pcap b.pcap").is_err(),
            "the files come from load-pcap and load-pcap --peer"
        );
    }

    #[test]
    fn completion_knows_every_command() {
        assert_eq!(
            command_names(),
            [
                "exit",
                "export",
                "help",
                "list-mptcp",
                "list-reinjections",
                "list-tcp",
                "load-pcap",
                "map-mptcp",
                "map-tcp",
                "mptcp-summary",
                "owd",
                "plot",
                "qualify-reinjections",
                "quit",
                "reorder-buffer",
                "tcp-summary"
            ]
        );
    }

    #[test]
    fn prompt_names_the_loaded_file() {
        let mut session = Session::new(LoadOptions::default());
        assert_eq!(session.prompt(), "mptcp-tracer> ");
        session.loaded = Some(Loaded {
            path: PathBuf::from("/tmp/x/client_2.pcap"),
            analyzer: Analyzer::new(),
        });
        assert_eq!(session.prompt(), "client_2.pcap> ");
    }

    #[test]
    fn batch_skips_comments_and_blank_lines() {
        let (code, out, err) = run_batch("# a comment\n\n   \n  # indented comment\n");
        assert_eq!((code, out.as_str(), err.as_str()), (EXIT_OK, "", ""));
    }

    #[test]
    fn batch_continues_after_errors_and_fails_at_the_end() {
        let (code, out, err) = run_batch("list-mptcp\nbogus\nhelp\n");
        assert_eq!(code, EXIT_ERROR);
        assert!(
            err.starts_with("line 1: error: no capture loaded; run `load-pcap FILE` first\nline 2: error: unrecognized subcommand 'bogus'"),
            "{err}"
        );
        // `help` after the errors still ran, on stdout.
        assert!(
            out.contains("load-pcap") && out.contains("mptcp-summary"),
            "{out}"
        );
        assert!(
            out.contains("quit") && out.contains("[alias: exit]"),
            "{out}"
        );
    }

    #[test]
    fn batch_stops_at_quit() {
        let (code, out, err) = run_batch("help\nquit\nbogus\n");
        assert_eq!(code, EXIT_OK);
        assert!(!out.is_empty());
        assert_eq!(err, "");
    }

    #[test]
    fn batch_reports_bad_quoting_with_its_line() {
        let (code, _, err) = run_batch("\nload-pcap 'x\n");
        assert_eq!(code, EXIT_ERROR);
        assert_eq!(err, "line 2: error: unterminated single quote\n");
    }

    #[test]
    fn batch_refuses_lines_that_are_not_utf8_or_too_long_without_echoing_them() {
        let long = "x".repeat(MAX_LINE_BYTES + 1);
        let input = [
            b"help\n".as_slice(),
            b"list-tcp \xff\n",
            long.as_bytes(),
            b"\nquit\n",
        ]
        .concat();
        let mut session = Session::new(LoadOptions::default());
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = batch(&mut session, input.as_slice(), &mut out, &mut err);
        assert_eq!(code, EXIT_ERROR);
        assert_eq!(
            String::from_utf8(err).expect("UTF-8"),
            format!(
                "line 2: error: not UTF-8; skipped\nline 3: error: line of {} bytes is longer \
                 than the {MAX_LINE_BYTES} a command may have; skipped\n",
                MAX_LINE_BYTES + 1
            )
        );
    }

    #[test]
    fn bounded_lines_keep_what_fits_and_measure_what_does_not() {
        let mut input = "ab\ncdefg\nhi".as_bytes();
        let mut line = Vec::new();
        let mut next = || read_bounded_line(&mut input, &mut line, 4).map(|r| (r, line.clone()));
        assert_eq!(next().expect("reads"), (LineRead::Line, b"ab\n".to_vec()));
        assert_eq!(next().expect("reads"), (LineRead::TooLong(5), Vec::new()));
        assert_eq!(next().expect("reads"), (LineRead::Line, b"hi".to_vec()));
        assert_eq!(next().expect("reads"), (LineRead::End, Vec::new()));
        // A line split over several buffer fills is measured whole.
        let long = "y".repeat(20_000);
        let mut reader = io::BufReader::with_capacity(16, long.as_bytes());
        assert_eq!(
            read_bounded_line(&mut reader, &mut line, 100).expect("reads"),
            LineRead::TooLong(20_000)
        );
    }

    #[test]
    fn batch_exit_code_is_one_if_any_command_failed_else_two_if_partial() {
        let codes = |codes: &[i32]| {
            let mut outcome = BatchOutcome::default();
            codes.iter().for_each(|&code| outcome.add(code));
            outcome.exit_code()
        };
        assert_eq!(codes(&[]), EXIT_OK);
        assert_eq!(codes(&[EXIT_OK, EXIT_PARTIAL]), EXIT_PARTIAL);
        assert_eq!(codes(&[EXIT_PARTIAL, EXIT_ERROR, EXIT_OK]), EXIT_ERROR);
        assert_eq!(codes(&[EXIT_ERROR, EXIT_PARTIAL]), EXIT_ERROR);
    }

    #[test]
    fn history_lives_in_the_state_directory() {
        let os = |s: &str| Some(OsString::from(s));
        assert_eq!(
            history_path_from(os("/state"), os("/home/u")),
            Some(PathBuf::from("/state/mptcp-tracer/history"))
        );
        assert_eq!(
            history_path_from(os(""), os("/home/u")),
            Some(PathBuf::from("/home/u/.local/state/mptcp-tracer/history"))
        );
        assert_eq!(history_path_from(None, None), None);
    }
}
