//! Shared test helpers: locating the binary and data, running mptcp-tracer and tshark, the
//! truth files. Every integration test module (and the benchmarks) goes through these.
//!
//! The binary: an integration test of another package cannot use `CARGO_BIN_EXE_…`, and a
//! dependency on `mptcp-tracer` builds only its library. [`tracer_binary`] therefore builds it
//! once per test process with `mptcp_lab::build_binary` (a no-op when it is fresh), which takes
//! the executable's path from cargo's own report, so the target directory (`CARGO_TARGET_DIR`,
//! config, default) and the profile are cargo's answer, not a guess. `MPTCP_TRACER_BIN`
//! overrides it. The tests run the real binary because what they check — JSON on stdout,
//! messages on stderr, exit codes, the shell reading stdin — is the user's interface.
//!
//! A test that cannot run here (no root, no shared captures) reports itself skipped through
//! `mptcp_lab::skip`, which `cargo xtask test` counts.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    process::{Command, ExitStatus},
    sync::OnceLock,
};

use mptcp_lab::build_binary;
pub use mptcp_lab::shared_pcaps;
use serde_json::Value;

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// `tests/data`: the project's own captures and their truth files.
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data")
}

/// The `mptcp-tracer` executable, built once per test process (see the module docs).
pub fn tracer_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        if let Some(binary) = std::env::var_os("MPTCP_TRACER_BIN") {
            return PathBuf::from(binary);
        }
        // The same profile as this test binary (…/target/release/deps/integration-…).
        let release = std::env::current_exe()
            .ok()
            .and_then(|exe| {
                exe.parent()?
                    .parent()?
                    .file_name()
                    .map(|name| name == "release")
            })
            .unwrap_or(false);
        build_binary(&workspace_root(), "mptcp-tracer", "mptcp-tracer", release)
            .unwrap_or_else(|error| panic!("building mptcp-tracer: {error}"))
    })
}

/// What a run of mptcp-tracer left.
#[derive(Debug)]
pub struct Run {
    pub command: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The exit code; a run killed by a signal fails the test.
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or_else(|| {
            panic!(
                "{} was killed: {}\n{}",
                self.command, self.status, self.stderr
            )
        })
    }

    /// Fails the test if the program panicked (exit 101 or a panic message).
    pub fn assert_no_panic(&self) -> &Self {
        assert!(
            self.code() != 101 && !self.stderr.contains("panicked"),
            "{} panicked (exit {:?}):\n{}",
            self.command,
            self.status.code(),
            self.stderr
        );
        self
    }

    /// Fails the test unless the run succeeded.
    pub fn assert_success(&self) -> &Self {
        self.assert_no_panic();
        assert!(
            self.status.success(),
            "{} failed ({}):\nstdout: {}\nstderr: {}",
            self.command,
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    /// stdout as one JSON document.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|error| {
            panic!(
                "{}: stdout is not JSON ({error}):\n{}\nstderr: {}",
                self.command, self.stdout, self.stderr
            )
        })
    }

    /// Every JSON document found in stdout, in order, skipping text between them (the shell
    /// prints prompts and tables around its JSON).
    pub fn json_documents(&self) -> Vec<Value> {
        let mut documents = Vec::new();
        let mut rest = self.stdout.as_str();
        while let Some(start) = rest.find(['{', '[']) {
            let mut stream =
                serde_json::Deserializer::from_str(&rest[start..]).into_iter::<Value>();
            match stream.next() {
                Some(Ok(value)) => {
                    documents.push(value);
                    rest = &rest[start + stream.byte_offset()..];
                }
                _ => rest = &rest[start + 1..],
            }
        }
        documents
    }
}

/// Runs mptcp-tracer with `args`, stdin closed.
pub fn tracer(args: &[&str]) -> Run {
    tracer_with_stdin(args, None)
}

/// Runs mptcp-tracer with `args` and `stdin` written to its standard input.
pub fn tracer_with_stdin(args: &[&str], stdin: Option<&str>) -> Run {
    let binary = tracer_binary();
    let command = format!("mptcp-tracer {}", args.join(" "));
    let output = mptcp_lab::output_with_input(Command::new(binary).args(args), stdin)
        .unwrap_or_else(|error| panic!("running {command} ({}): {error}", binary.display()));
    Run {
        command,
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `mptcp-tracer list-mptcp FILE --json`, which must succeed.
pub fn list_mptcp(file: &Path) -> Value {
    let file = file.to_string_lossy();
    tracer(&["list-mptcp", &file, "--json"])
        .assert_success()
        .json()
}

/// `mptcp-tracer list-tcp FILE --json`, which must succeed.
pub fn list_tcp(file: &Path) -> Value {
    let file = file.to_string_lossy();
    tracer(&["list-tcp", &file, "--json"])
        .assert_success()
        .json()
}

/// `mptcp-tracer mptcp-summary FILE ID --json`, which must succeed.
pub fn mptcp_summary(file: &Path, id: u64) -> Value {
    let file = file.to_string_lossy();
    let id = id.to_string();
    tracer(&["mptcp-summary", &file, &id, "--json"])
        .assert_success()
        .json()
}

/// One direction of an `mptcp-summary`.
pub fn direction<'a>(summary: &'a Value, name: &str) -> &'a Value {
    summary["directions"]
        .as_array()
        .and_then(|directions| directions.iter().find(|d| d["direction"] == name))
        .unwrap_or_else(|| panic!("no direction {name} in {summary}"))
}

/// A JSON number as u64, failing the test with the context otherwise.
pub fn as_u64(value: &Value, what: &str) -> u64 {
    value
        .as_u64()
        .unwrap_or_else(|| panic!("{what} is not an unsigned integer: {value}"))
}

/// A capture of tests/data and its truth file.
#[derive(Debug)]
pub struct TruthCapture {
    pub name: String,
    pub file: PathBuf,
    pub truth: Value,
}

impl TruthCapture {
    pub fn client_to_server_bytes(&self) -> u64 {
        as_u64(
            &self.truth["application"]["client_to_server_bytes"],
            "truth client_to_server_bytes",
        )
    }

    pub fn server_to_client_bytes(&self) -> u64 {
        as_u64(
            &self.truth["application"]["server_to_client_bytes"],
            "truth server_to_client_bytes",
        )
    }

    pub fn monitor_connections(&self) -> u64 {
        as_u64(
            &self.truth["ip_mptcp_monitor"]["mptcp_connections"],
            "truth connections",
        )
    }

    pub fn monitor_subflows(&self) -> u64 {
        as_u64(
            &self.truth["ip_mptcp_monitor"]["subflows"],
            "truth subflows",
        )
    }
}

/// Every capture of tests/data with its truth file (`NAME.truth.json` beside `NAME.pcap*`).
pub fn truth_captures() -> Vec<TruthCapture> {
    let dir = data_dir();
    let mut captures: Vec<TruthCapture> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("reading {}: {error}", dir.display()))
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter_map(|path| {
            let name = path
                .file_name()?
                .to_str()?
                .strip_suffix(".truth.json")?
                .to_owned();
            Some((name, path))
        })
        .map(|(name, truth_path)| {
            let text = std::fs::read_to_string(&truth_path)
                .unwrap_or_else(|error| panic!("reading {}: {error}", truth_path.display()));
            let truth: Value = serde_json::from_str(&text)
                .unwrap_or_else(|error| panic!("{} is not JSON: {error}", truth_path.display()));
            let file = dir.join(
                truth["file"]
                    .as_str()
                    .unwrap_or_else(|| panic!("no file in {}", truth_path.display())),
            );
            assert!(
                file.is_file(),
                "{} names a missing {}",
                truth_path.display(),
                file.display()
            );
            TruthCapture { name, file, truth }
        })
        .collect();
    captures.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(
        captures.len() >= 6,
        "expected the captures of `cargo xtask make-captures` in {}",
        dir.display()
    );
    captures
}

/// Runs tshark on `file` with a display filter and returns one row of the fields per packet
/// (each field's text; several values of one field are joined by `,`).
pub fn tshark_fields(file: &Path, filter: &str, fields: &[&str]) -> Vec<Vec<String>> {
    tshark_fields_with(file, filter, fields, &[])
}

/// [`tshark_fields`] with extra `-o` preferences.
pub fn tshark_fields_with(
    file: &Path,
    filter: &str,
    fields: &[&str],
    preferences: &[&str],
) -> Vec<Vec<String>> {
    let mut command = Command::new("tshark");
    command.arg("-n").arg("-r").arg(file);
    for preference in preferences {
        command.args(["-o", preference]);
    }
    if !filter.is_empty() {
        command.args(["-Y", filter]);
    }
    command.args([
        "-T",
        "fields",
        "-E",
        "separator=/t",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
    ]);
    for field in fields {
        command.args(["-e", field]);
    }
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("running {command:?} (is tshark installed?): {error}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| line.split('\t').map(str::to_owned).collect())
        .collect()
}

/// What tshark makes of a capture's MPTCP connections.
#[derive(Debug, Default)]
pub struct TsharkMptcp {
    /// Distinct `tcp.stream` values.
    pub tcp_streams: BTreeSet<u64>,
    /// `mptcp.stream` → its `tcp.stream`s.
    pub connections: BTreeMap<u64, BTreeSet<u64>>,
    /// `mptcp.stream` → (client key, server key) from the MP_CAPABLE third ACK, which carries
    /// both (sender's key first) in v0 and v1.
    pub keys: BTreeMap<u64, (u64, u64)>,
    /// Key → `mptcp.expected_token`, tshark's token of that key.
    pub tokens: BTreeMap<u64, u32>,
    /// `tcp.stream` → whether its first packet in the capture is a SYN.
    pub starts_with_syn: BTreeMap<u64, bool>,
}

fn parse_u64(text: &str) -> Option<u64> {
    let text = text.trim();
    text.strip_prefix("0x")
        .map(|hex| u64::from_str_radix(hex, 16).ok())
        .unwrap_or_else(|| text.parse().ok())
}

/// Runs tshark once over `file` and gathers [`TsharkMptcp`].
pub fn tshark_mptcp(file: &Path) -> TsharkMptcp {
    let rows = tshark_fields(
        file,
        "tcp",
        &[
            "tcp.stream",
            "mptcp.stream",
            "tcp.flags.syn",
            "tcp.flags.ack",
            "tcp.options.mptcp.subtype",
            "tcp.options.mptcp.sendkey",
            "tcp.options.mptcp.recvkey",
            "mptcp.expected_token",
        ],
    );
    let mut result = TsharkMptcp::default();
    for row in rows {
        let field = |index: usize| row.get(index).map(String::as_str).unwrap_or("");
        let Some(tcp_stream) = parse_u64(field(0)) else {
            continue;
        };
        result.tcp_streams.insert(tcp_stream);
        let syn = matches!(field(2), "1" | "True");
        result.starts_with_syn.entry(tcp_stream).or_insert(syn);
        if let Some(mptcp_stream) = parse_u64(field(1)) {
            result
                .connections
                .entry(mptcp_stream)
                .or_default()
                .insert(tcp_stream);
            let send_key = parse_u64(field(5));
            let receive_key = parse_u64(field(6));
            if let (Some(send), Some(receive), false) = (send_key, receive_key, syn) {
                result.keys.entry(mptcp_stream).or_insert((send, receive));
            }
            if let (Some(key), Some(Ok(token))) = (send_key, parse_u64(field(7)).map(u32::try_from))
            {
                result.tokens.insert(key, token);
            }
        }
    }
    result
}

/// Whether this process may create network namespaces (root); if not, the test `test` is
/// recorded as skipped and returns.
pub fn can_use_namespaces(test: &str) -> bool {
    !mptcp_lab::skip::skipped_unless_root(test, "create network namespaces")
}
