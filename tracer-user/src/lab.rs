//! A small MPTCP lab in network namespaces: two hosts joined by several veth paths, the in-kernel
//! path manager configured, and transfers whose byte counts the application knows. Used by
//! `mptcp-tracer demo`, the integration tests, the capture-making script and the benchmarks.
//!
//! Layout for a lab with N paths (1 ≤ N ≤ 4), path p in 1..=N:
//! ```text
//!  client netns  cli<p>  10.0.<p>.1/24  fd00:0:<p>::1/64  ──veth──  srv<p>  10.0.<p>.2/24  fd00:0:<p>::2/64  server netns
//! ```
//! Every address lives only inside the two namespaces this lab creates; nothing is routed
//! anywhere else. Dropping the [`Lab`] deletes both namespaces, which takes the veths and the
//! nftables tables in them along.

use std::{
    fs::File,
    io::{self, BufRead, BufReader, Read, Write},
    marker::PhantomData,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream},
    os::fd::AsRawFd,
    path::Path,
    process::{Child, Command, Stdio},
    sync::{
        Mutex,
        atomic::{AtomicU32, Ordering},
        mpsc,
    },
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use socket2::{Domain, Protocol, Socket, Type};

/// At most this many veth paths between the two hosts.
pub const MAX_PATHS: usize = 4;

/// Prefix of every namespace a lab creates; `<prefix>-<pid>-<n>-cli` / `-srv`.
pub const NAMESPACE_PREFIX: &str = "mptlab";

/// Kernel ABI constants for `getsockopt(SOL_MPTCP, MPTCP_INFO)` (include/uapi/linux/mptcp.h),
/// spelled out here because not every libc version exports them.
const SOL_MPTCP: libc::c_int = 284;
const MPTCP_INFO: libc::c_int = 1;

/// Bytes the client sends before it waits for joins (see `run_client`).
const FIRST_FLIGHT: u64 = 1000;

/// Distinguishes labs made by one process (tests run in parallel threads).
static LAB_SEQUENCE: AtomicU32 = AtomicU32::new(0);

/// Everything that can go wrong while building or using the lab.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("could not start `{command}`: {source}")]
    Spawn {
        command: String,
        #[source]
        source: io::Error,
    },
    #[error("a lab has 1 to {MAX_PATHS} paths, not {0}")]
    PathCount(usize),
    #[error("this lab has no path {path} (it has {paths})")]
    NoSuchPath { path: usize, paths: usize },
    #[error("entering network namespace {namespace}: {source}")]
    EnterNamespace {
        namespace: String,
        #[source]
        source: io::Error,
    },
    #[error("MPTCP transfer, {step}: {source}")]
    Transfer {
        step: String,
        #[source]
        source: io::Error,
    },
    #[error("MPTCP transfer: {0}")]
    TransferMismatch(String),
    #[error("{what} did not happen within {timeout:?}")]
    Timeout { what: String, timeout: Duration },
    #[error("tcpdump on {interface} in netns {namespace}: {detail}")]
    Capture {
        interface: String,
        namespace: String,
        detail: String,
    },
    #[error("a lab thread ({0}) panicked")]
    ThreadPanicked(&'static str),
}

/// One of the two hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Client,
    Server,
}

/// Address family of a transfer (both families are always configured on every path).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpVersion {
    V4,
    V6,
}

/// How the extra paths become subflows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointMode {
    /// The client has a `subflow` endpoint bound to each extra path's interface and opens a
    /// join from it to the server address of the first subflow.
    ClientSubflow,
    /// The server has a `signal` endpoint per extra path and announces it with ADD_ADDR; the
    /// client joins each announced address.
    ServerSignal,
}

/// What the lab looks like.
#[derive(Debug, Clone)]
pub struct LabConfig {
    /// Number of veth paths, 1..=[`MAX_PATHS`].
    pub paths: usize,
    pub endpoints: EndpointMode,
    /// Turn TSO/GSO/GRO off on every veth so that each packet on the wire (and in a tcpdump
    /// capture) is at most one MSS, as on a real link; with offloads on, tcpdump and TC hooks
    /// see 64 KB super-packets. TC egress still sees TCP's GSO batches either way (TCP keeps
    /// GSO on in software): the tracer's events carry their `gso_segs`.
    pub disable_offloads: bool,
    /// Limit every veth to this rate (a `tbf` qdisc on both ends), in Mbit/s. A limited path
    /// fills its subflow's window, so the scheduler spreads data over the subflows instead of
    /// sending nearly everything on the first one as it does on an unlimited veth.
    pub rate_mbit: Option<u32>,
}

impl Default for LabConfig {
    fn default() -> Self {
        Self {
            paths: 2,
            endpoints: EndpointMode::ClientSubflow,
            disable_offloads: true,
            rate_mbit: Some(20),
        }
    }
}

/// Two network namespaces joined by veth paths; deleted on drop.
#[derive(Debug)]
pub struct Lab {
    client_namespace: String,
    server_namespace: String,
    paths: usize,
    /// Namespaces created so far, so that a half-built lab is cleaned up too.
    created_namespaces: Vec<String>,
    /// nftables tables still installed: (namespace, table name).
    nft_tables: Mutex<Vec<(String, String)>>,
    nft_sequence: AtomicU32,
}

impl Lab {
    /// Creates the namespaces, the veth paths with their addresses, MPTCP limits and endpoints.
    pub fn new(config: &LabConfig) -> Result<Self, LabError> {
        if config.paths == 0 || config.paths > MAX_PATHS {
            return Err(LabError::PathCount(config.paths));
        }
        remove_stale_namespaces();
        let sequence = LAB_SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let stem = format!("{NAMESPACE_PREFIX}-{}-{sequence}", std::process::id());
        let mut lab = Self {
            client_namespace: format!("{stem}-cli"),
            server_namespace: format!("{stem}-srv"),
            paths: config.paths,
            created_namespaces: Vec::new(),
            nft_tables: Mutex::new(Vec::new()),
            nft_sequence: AtomicU32::new(0),
        };
        // On error `lab` is dropped here and its Drop removes what was made so far.
        lab.build(config)?;
        Ok(lab)
    }

    fn build(&mut self, config: &LabConfig) -> Result<(), LabError> {
        for namespace in [self.client_namespace.clone(), self.server_namespace.clone()] {
            run("ip", &["netns", "add", &namespace])?;
            self.created_namespaces.push(namespace.clone());
            run("ip", &["-n", &namespace, "link", "set", "lo", "up"])?;
            self.exec_in(&namespace, "sysctl", &["-q", "-w", "net.mptcp.enabled=1"])?;
            run(
                "ip",
                &[
                    "-n",
                    &namespace,
                    "mptcp",
                    "limits",
                    "set",
                    "subflows",
                    "8",
                    "add_addr_accepted",
                    "8",
                ],
            )?;
        }
        for path in 1..=self.paths {
            let client_if = self.interface(Side::Client, path)?;
            let server_if = self.interface(Side::Server, path)?;
            run(
                "ip",
                &[
                    "link",
                    "add",
                    &client_if,
                    "netns",
                    &self.client_namespace,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    &server_if,
                    "netns",
                    &self.server_namespace,
                ],
            )?;
            for side in [Side::Client, Side::Server] {
                let namespace = self.namespace(side);
                let interface = self.interface(side, path)?;
                let v4 = format!("{}/24", self.address(side, path, IpVersion::V4)?);
                let v6 = format!("{}/64", self.address(side, path, IpVersion::V6)?);
                run(
                    "ip",
                    &["-n", namespace, "addr", "add", &v4, "dev", &interface],
                )?;
                // nodad: the address is usable at once instead of after duplicate detection.
                run(
                    "ip",
                    &[
                        "-n", namespace, "addr", "add", &v6, "dev", &interface, "nodad",
                    ],
                )?;
                if config.disable_offloads {
                    self.exec_in(
                        namespace,
                        "ethtool",
                        &["-K", &interface, "tso", "off", "gso", "off", "gro", "off"],
                    )?;
                }
                if let Some(rate) = config.rate_mbit {
                    let rate = format!("{rate}mbit");
                    self.exec_in(
                        namespace,
                        "tc",
                        &[
                            "qdisc", "add", "dev", &interface, "root", "tbf", "rate", &rate,
                            "burst", "16kb", "latency", "1s",
                        ],
                    )?;
                }
                run("ip", &["-n", namespace, "link", "set", &interface, "up"])?;
            }
        }
        self.add_ipv6_neighbours()?;
        if config.endpoints == EndpointMode::ClientSubflow {
            self.route_ipv6_joins()?;
        }
        for path in 2..=self.paths {
            for version in [IpVersion::V4, IpVersion::V6] {
                let (side, flag) = match config.endpoints {
                    EndpointMode::ClientSubflow => (Side::Client, "subflow"),
                    EndpointMode::ServerSignal => (Side::Server, "signal"),
                };
                let address = self.address(side, path, version)?.to_string();
                let interface = self.interface(side, path)?;
                run(
                    "ip",
                    &[
                        "-n",
                        self.namespace(side),
                        "mptcp",
                        "endpoint",
                        "add",
                        &address,
                        "dev",
                        &interface,
                        flag,
                    ],
                )?;
            }
        }
        Ok(())
    }

    /// Permanent IPv6 neighbour entries for both ends of every path. Without them the first
    /// join SYN over IPv6 was sometimes lost while neighbour discovery ran, the join timed out
    /// and the connection was reset; they also keep neighbour discovery out of the captures.
    fn add_ipv6_neighbours(&self) -> Result<(), LabError> {
        for path in 1..=self.paths {
            for (side, peer) in [(Side::Client, Side::Server), (Side::Server, Side::Client)] {
                let interface = self.interface(side, path)?;
                let peer_mac = self.link_address(peer, &self.interface(peer, path)?)?;
                let peer_address = self.address(peer, path, IpVersion::V6)?.to_string();
                run(
                    "ip",
                    &[
                        "-n",
                        self.namespace(side),
                        "-6",
                        "neigh",
                        "replace",
                        &peer_address,
                        "lladdr",
                        &peer_mac,
                        "dev",
                        &interface,
                        "nud",
                        "permanent",
                    ],
                )?;
            }
        }
        Ok(())
    }

    /// Lets a client join bound to path p ≥ 2 reach the server's IPv6 address on path 1.
    ///
    /// An IPv4 socket bound to a device reaches an off-subnet address as if it were on link
    /// (and the server answers ARP for any of its addresses); IPv6 does neither: it needs a
    /// route through that device and a neighbour entry, since the server answers neighbour
    /// solicitations only for addresses of the interface they arrive on.
    fn route_ipv6_joins(&self) -> Result<(), LabError> {
        let target = self.address(Side::Server, 1, IpVersion::V6)?.to_string();
        let prefix = format!("{target}/64");
        for path in 2..=self.paths {
            let client_if = self.interface(Side::Client, path)?;
            let server_if = self.interface(Side::Server, path)?;
            let server_mac = self.link_address(Side::Server, &server_if)?;
            let metric = (1000 + path).to_string();
            let namespace = self.client_namespace.as_str();
            run(
                "ip",
                &[
                    "-n", namespace, "-6", "route", "add", &prefix, "dev", &client_if, "metric",
                    &metric,
                ],
            )?;
            run(
                "ip",
                &[
                    "-n",
                    namespace,
                    "-6",
                    "neigh",
                    "add",
                    &target,
                    "lladdr",
                    &server_mac,
                    "dev",
                    &client_if,
                    "nud",
                    "permanent",
                ],
            )?;
        }
        Ok(())
    }

    /// The MAC address of a host's interface.
    fn link_address(&self, side: Side, interface: &str) -> Result<String, LabError> {
        let output = run(
            "ip",
            &[
                "-n",
                self.namespace(side),
                "-br",
                "link",
                "show",
                "dev",
                interface,
            ],
        )?;
        // "srv2@if3   UP   aa:bb:cc:dd:ee:ff <BROADCAST,...>"
        output
            .split_whitespace()
            .find(|field| field.len() == 17 && field.matches(':').count() == 5)
            .map(str::to_owned)
            .ok_or_else(|| LabError::Command {
                command: format!(
                    "ip -n {} -br link show dev {interface}",
                    self.namespace(side)
                ),
                status: "exit status: 0".into(),
                stderr: format!("no MAC address in {output:?}"),
            })
    }

    /// Number of veth paths.
    pub fn paths(&self) -> usize {
        self.paths
    }

    /// The name of a host's network namespace (for `ip netns exec`, `ip -n`, setns).
    pub fn namespace(&self, side: Side) -> &str {
        match side {
            Side::Client => &self.client_namespace,
            Side::Server => &self.server_namespace,
        }
    }

    /// The name of a host's interface on path `path` (1-based): `cli<p>` or `srv<p>`.
    pub fn interface(&self, side: Side, path: usize) -> Result<String, LabError> {
        self.check_path(path)?;
        Ok(match side {
            Side::Client => format!("cli{path}"),
            Side::Server => format!("srv{path}"),
        })
    }

    /// A host's address on path `path` (1-based): 10.0.p.1 / fd00:0:p::1 for the client,
    /// .2 / ::2 for the server.
    pub fn address(&self, side: Side, path: usize, version: IpVersion) -> Result<IpAddr, LabError> {
        self.check_path(path)?;
        let host: u8 = match side {
            Side::Client => 1,
            Side::Server => 2,
        };
        let path_octet = u8::try_from(path).map_err(|_| LabError::PathCount(path))?;
        Ok(match version {
            IpVersion::V4 => IpAddr::V4(Ipv4Addr::new(10, 0, path_octet, host)),
            IpVersion::V6 => IpAddr::V6(Ipv6Addr::new(
                0xfd00,
                0,
                u16::from(path_octet),
                0,
                0,
                0,
                0,
                u16::from(host),
            )),
        })
    }

    fn check_path(&self, path: usize) -> Result<(), LabError> {
        if path == 0 || path > self.paths {
            return Err(LabError::NoSuchPath {
                path,
                paths: self.paths,
            });
        }
        Ok(())
    }

    /// Runs `program args…` inside a host's namespace and returns its stdout.
    pub fn exec(&self, side: Side, program: &str, args: &[&str]) -> Result<String, LabError> {
        self.exec_in(self.namespace(side), program, args)
    }

    fn exec_in(&self, namespace: &str, program: &str, args: &[&str]) -> Result<String, LabError> {
        let mut full = vec!["netns", "exec", namespace, program];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    /// The kernel's MPTCP counters (`nstat -az`, names starting with `MPTcpExt`) in a host's
    /// namespace. The namespaces are new, so these are the lab's own totals.
    pub fn mptcp_counters(&self, side: Side) -> Result<Vec<(String, u64)>, LabError> {
        // -a: absolute values, -z: zeros too, -s: no history file shared between runs.
        let output = self.exec(side, "nstat", &["-a", "-z", "-s"])?;
        Ok(output
            .lines()
            .filter_map(|line| {
                let mut fields = line.split_whitespace();
                let name = fields.next()?;
                let value = fields.next()?.parse().ok()?;
                name.starts_with("MPTcpExt")
                    .then(|| (name.to_owned(), value))
            })
            .collect())
    }

    /// Starts `ip mptcp monitor` in a host's namespace; stop it with [`MptcpMonitor::stop`].
    pub fn start_monitor(&self, side: Side) -> Result<MptcpMonitor<'_>, LabError> {
        MptcpMonitor::start(self.namespace(side))
    }

    /// Starts tcpdump in a host's namespace and returns once it listens.
    pub fn start_capture(&self, spec: &CaptureSpec<'_>) -> Result<Capture<'_>, LabError> {
        Capture::start(self.namespace(spec.side), spec)
    }

    /// Installs an nftables rule in a host's namespace dropping packets that arrive on path
    /// `path`. Remove it with [`Lab::remove_filter`] (or leave it to the lab's drop).
    pub fn drop_packets(
        &self,
        side: Side,
        path: usize,
        rule: DropRule,
    ) -> Result<PacketFilter, LabError> {
        let interface = self.interface(side, path)?;
        let namespace = self.namespace(side).to_owned();
        let table = format!(
            "mptlab_drop{}",
            self.nft_sequence.fetch_add(1, Ordering::Relaxed)
        );
        let matcher = match rule {
            DropRule::All => String::new(),
            DropRule::Random { percent } => format!("numgen random mod 100 < {percent}"),
            // Data segments are the only large packets; handshakes (and so joins) still pass.
            DropRule::DataSegments => "meta l4proto tcp meta length > 200".to_owned(),
        };
        let script = format!(
            "table inet {table} {{\n  chain input {{\n    type filter hook input priority 0; policy accept;\n    iifname \"{interface}\" {matcher} drop\n  }}\n}}\n"
        );
        nft_apply(&namespace, &script)?;
        self.nft_tables
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push((namespace.clone(), table.clone()));
        Ok(PacketFilter { namespace, table })
    }

    /// Deletes a rule made by [`Lab::drop_packets`].
    pub fn remove_filter(&self, filter: &PacketFilter) -> Result<(), LabError> {
        self.exec_in(
            &filter.namespace,
            "nft",
            &["delete", "table", "inet", &filter.table],
        )?;
        self.nft_tables
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .retain(|(namespace, table)| {
                !(namespace == &filter.namespace && table == &filter.table)
            });
        Ok(())
    }

    /// Runs a whole transfer: [`Lab::start_transfer`] then [`TransferSession::finish`].
    pub fn transfer(&self, spec: &TransferSpec) -> Result<TransferCounts, LabError> {
        self.start_transfer(spec)?.finish()
    }

    /// Starts the server, connects the client and waits for the extra subflows; no data moves
    /// from the client until [`TransferSession::finish`] (the server starts sending at once).
    pub fn start_transfer(&self, spec: &TransferSpec) -> Result<TransferSession<'_>, LabError> {
        let server_addr = SocketAddr::new(
            self.address(Side::Server, spec.path, spec.ip_version)?,
            spec.port,
        );
        let wildcard = match spec.ip_version {
            IpVersion::V4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpVersion::V6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        let (ready_tx, ready_rx) = mpsc::channel();
        let server_namespace = self.server_namespace.clone();
        let server_spec = spec.clone();
        let server = thread::Builder::new()
            .name("lab-server".into())
            .spawn(move || {
                run_server(
                    &server_namespace,
                    SocketAddr::new(wildcard, server_spec.port),
                    &server_spec,
                    ready_tx,
                )
            })
            .map_err(|source| transfer_error("spawning the server thread", source))?;
        match ready_rx.recv_timeout(spec.timeout) {
            Ok(()) => {}
            Err(_) => {
                // The server failed before listening: its error says why.
                return Err(match server.join() {
                    Ok(Err(error)) => error,
                    Ok(Ok(_)) => LabError::TransferMismatch("server ended before listening".into()),
                    Err(_) => LabError::ThreadPanicked("server"),
                });
            }
        }
        let (established_tx, established_rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel();
        let client_namespace = self.client_namespace.clone();
        let client_spec = spec.clone();
        let client = thread::Builder::new()
            .name("lab-client".into())
            .spawn(move || {
                run_client(
                    &client_namespace,
                    server_addr,
                    &client_spec,
                    established_tx,
                    go_rx,
                )
            })
            .map_err(|source| transfer_error("spawning the client thread", source))?;
        match established_rx.recv_timeout(spec.timeout + spec.subflow_timeout) {
            Ok(established) => Ok(TransferSession {
                go: go_tx,
                client,
                server,
                established,
                _lab: PhantomData,
            }),
            Err(_) => {
                drop(go_tx);
                let client_result = client.join();
                let _ = server.join();
                Err(match client_result {
                    Ok(Err(error)) => error,
                    Ok(Ok(_)) => {
                        LabError::TransferMismatch("client ended before connecting".into())
                    }
                    Err(_) => LabError::ThreadPanicked("client"),
                })
            }
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let tables = std::mem::take(
            &mut *self
                .nft_tables
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        for (namespace, table) in tables {
            if let Err(error) =
                self.exec_in(&namespace, "nft", &["delete", "table", "inet", &table])
            {
                log::warn!("lab cleanup: {error}");
            }
        }
        // Deleting a namespace takes its veths (and so their peers) along.
        for namespace in self.created_namespaces.drain(..).rev() {
            if let Err(error) = run("ip", &["netns", "del", &namespace]) {
                log::warn!("lab cleanup: {error}");
            }
        }
    }
}

/// Deletes lab namespaces whose creating process no longer exists: a lab killed by a signal
/// (SIGKILL, a CI timeout) never ran its Drop.
fn remove_stale_namespaces() {
    let Ok(listing) = run("ip", &["netns", "list"]) else {
        return;
    };
    for namespace in listing
        .lines()
        .filter_map(|line| line.split_whitespace().next())
    {
        let Some(pid) = namespace
            .strip_prefix(NAMESPACE_PREFIX)
            .and_then(|rest| rest.strip_prefix('-'))
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        if !pid.is_empty() && !Path::new("/proc").join(pid).exists() {
            log::info!("removing stale lab namespace {namespace}");
            if let Err(error) = run("ip", &["netns", "del", namespace]) {
                log::warn!("{error}");
            }
        }
    }
}

/// What an nftables drop rule matches on its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropRule {
    /// Every packet.
    All,
    /// A random `percent` of the packets.
    Random { percent: u8 },
    /// Every TCP packet longer than 200 bytes: data segments, not handshakes or pure ACKs.
    DataSegments,
}

/// An installed nftables drop rule (its own table).
#[derive(Debug)]
pub struct PacketFilter {
    namespace: String,
    table: String,
}

fn nft_apply(namespace: &str, script: &str) -> Result<(), LabError> {
    let command = format!("ip netns exec {namespace} nft -f - <<< {script:?}");
    let mut child = Command::new("ip")
        .args(["netns", "exec", namespace, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| LabError::Spawn {
            command: command.clone(),
            source,
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|source| LabError::Spawn {
                command: command.clone(),
                source,
            })?;
    }
    let output = child.wait_with_output().map_err(|source| LabError::Spawn {
        command: command.clone(),
        source,
    })?;
    if !output.status.success() {
        return Err(LabError::Command {
            command,
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(())
}

/// Runs a command to completion; its stdout on success, its stderr in the error otherwise.
fn run(program: &str, args: &[&str]) -> Result<String, LabError> {
    let command = format!("{program} {}", args.join(" "));
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| LabError::Spawn {
            command: command.clone(),
            source,
        })?;
    if !output.status.success() {
        return Err(LabError::Command {
            command,
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn send_signal(child: &Child, signal: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) on our own child's pid, which we have not reaped yet.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

/// `ip mptcp monitor` running in one namespace.
#[derive(Debug)]
pub struct MptcpMonitor<'lab> {
    namespace: String,
    child: Option<Child>,
    reader: Option<JoinHandle<Vec<String>>>,
    _lab: PhantomData<&'lab Lab>,
}

/// What `ip mptcp monitor` reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MonitorReport {
    /// `CREATED` events: MPTCP connections.
    pub connections: usize,
    /// `ESTABLISHED` events: connections whose MP_CAPABLE handshake completed.
    pub established: usize,
    /// `SF_ESTABLISHED` events: joined (extra) subflows.
    pub joins: usize,
    /// `CLOSED` events.
    pub closed: usize,
    /// The raw lines, for a truth file or a failure message.
    pub lines: Vec<String>,
}

impl MonitorReport {
    /// All subflows: each connection's initial subflow plus the joins.
    pub fn subflows(&self) -> usize {
        self.connections + self.joins
    }

    /// Counts the events in `ip mptcp monitor` output lines such as
    /// `[       CREATED] token=… remid=0 locid=0 saddr4=10.0.1.1 …`.
    pub fn parse(lines: Vec<String>) -> Self {
        let mut report = Self::default();
        for line in &lines {
            let Some(event) = line
                .trim_start()
                .strip_prefix('[')
                .and_then(|rest| rest.split(']').next())
                .map(str::trim)
            else {
                continue;
            };
            match event {
                "CREATED" => report.connections += 1,
                "ESTABLISHED" => report.established += 1,
                "SF_ESTABLISHED" => report.joins += 1,
                "CLOSED" => report.closed += 1,
                _ => {}
            }
        }
        report.lines = lines;
        report
    }
}

impl MptcpMonitor<'_> {
    fn start(namespace: &str) -> Result<Self, LabError> {
        // stdbuf: ip's stdout is a pipe here, and a block-buffered monitor loses its last
        // events when it is stopped by a signal.
        let args = ["-oL", "ip", "-n", namespace, "mptcp", "monitor"];
        let command = format!("stdbuf {}", args.join(" "));
        let mut child = Command::new("stdbuf")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| LabError::Spawn { command, source })?;
        let stdout = child.stdout.take();
        let reader = thread::spawn(move || {
            stdout
                .map(|out| BufReader::new(out).lines().map_while(Result::ok).collect())
                .unwrap_or_default()
        });
        // The monitor prints nothing when it has subscribed to the MPTCP netlink events;
        // give it time to do so before anything happens.
        thread::sleep(Duration::from_millis(300));
        Ok(Self {
            namespace: namespace.to_owned(),
            child: Some(child),
            reader: Some(reader),
            _lab: PhantomData,
        })
    }

    /// Stops the monitor and counts what it saw.
    pub fn stop(mut self) -> Result<MonitorReport, LabError> {
        // Let the last events (CLOSED after a FIN exchange) arrive.
        thread::sleep(Duration::from_millis(200));
        if let Some(mut child) = self.child.take() {
            send_signal(&child, libc::SIGTERM);
            let _ = child.wait();
        }
        let lines = self
            .reader
            .take()
            .map(|reader| reader.join())
            .transpose()
            .map_err(|_| LabError::ThreadPanicked("ip mptcp monitor reader"))?
            .unwrap_or_default();
        log::debug!(
            "ip mptcp monitor in {}: {} lines",
            self.namespace,
            lines.len()
        );
        Ok(MonitorReport::parse(lines))
    }
}

impl Drop for MptcpMonitor<'_> {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What tcpdump should capture.
#[derive(Debug, Clone)]
pub struct CaptureSpec<'a> {
    pub side: Side,
    /// An interface of that host, or `any`.
    pub interface: &'a str,
    /// Bytes kept of each packet (`-s`); 0 means tcpdump's default (the whole packet).
    pub snaplen: u32,
    pub file: &'a Path,
    /// `-y` link type, e.g. `LINUX_SLL2` for `any`.
    pub link_type: Option<&'a str>,
    /// A pcap filter expression, if any.
    pub filter: Option<&'a str>,
}

/// A running tcpdump.
#[derive(Debug)]
pub struct Capture<'lab> {
    namespace: String,
    interface: String,
    child: Option<Child>,
    stderr_reader: Option<JoinHandle<Vec<String>>>,
    /// The "listening on …, link-type …" line.
    listening: String,
    _lab: PhantomData<&'lab Lab>,
}

/// tcpdump's own counts, printed when it stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureCounts {
    pub captured: u64,
    pub received_by_filter: u64,
    pub dropped_by_kernel: u64,
    /// The link type tcpdump announced, e.g. `EN10MB (Ethernet)`.
    pub link_type: String,
}

impl Capture<'_> {
    fn start(namespace: &str, spec: &CaptureSpec<'_>) -> Result<Self, LabError> {
        let snaplen = spec.snaplen.to_string();
        let file = spec.file.to_string_lossy().into_owned();
        // -Z root: Debian's tcpdump drops to user tcpdump, which may not write `file`.
        // -U: write each packet at once so that the file is complete when tcpdump stops.
        // --immediate-mode: hand over each packet at once; otherwise packets waiting in a
        // TPACKET_V3 block when SIGINT comes count as "received by filter" but are not written.
        let mut args = vec![
            "netns",
            "exec",
            namespace,
            "tcpdump",
            "-Z",
            "root",
            "-U",
            "--immediate-mode",
            "-n",
            "-i",
            spec.interface,
        ];
        if spec.snaplen != 0 {
            args.extend(["-s", &snaplen]);
        }
        if let Some(link_type) = spec.link_type {
            args.extend(["-y", link_type]);
        }
        args.extend(["-w", &file]);
        if let Some(filter) = spec.filter {
            args.push(filter);
        }
        let command = format!("ip {}", args.join(" "));
        let error = |detail: String| LabError::Capture {
            interface: spec.interface.to_owned(),
            namespace: namespace.to_owned(),
            detail,
        };
        let mut child = Command::new("ip")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| LabError::Spawn {
                command: command.clone(),
                source,
            })?;
        let stderr = child.stderr.take();
        let (listening_tx, listening_rx) = mpsc::channel();
        let stderr_reader = thread::spawn(move || {
            let mut lines = Vec::new();
            if let Some(stderr) = stderr {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if line.contains("listening on") {
                        let _ = listening_tx.send(line.clone());
                    }
                    lines.push(line);
                }
            }
            lines
        });
        let timeout = Duration::from_secs(10);
        let listening = match listening_rx.recv_timeout(timeout) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let status = child
                    .wait()
                    .map(|status| status.to_string())
                    .unwrap_or_default();
                let stderr = stderr_reader.join().unwrap_or_default().join("\n");
                return Err(error(format!(
                    "`{command}` did not start listening within {timeout:?} ({status}): {stderr}"
                )));
            }
        };
        Ok(Self {
            namespace: namespace.to_owned(),
            interface: spec.interface.to_owned(),
            child: Some(child),
            stderr_reader: Some(stderr_reader),
            listening,
            _lab: PhantomData,
        })
    }

    /// Stops tcpdump with SIGINT, waits for it and checks that it captured every packet the
    /// filter received.
    pub fn stop(mut self) -> Result<CaptureCounts, LabError> {
        let error = |detail: String| LabError::Capture {
            interface: self.interface.clone(),
            namespace: self.namespace.clone(),
            detail,
        };
        let Some(mut child) = self.child.take() else {
            return Err(error("already stopped".into()));
        };
        // `ip netns exec` execs tcpdump, so the child's pid is tcpdump's.
        send_signal(&child, libc::SIGINT);
        let status = child
            .wait()
            .map_err(|source| error(format!("waiting for tcpdump: {source}")))?;
        let lines = self
            .stderr_reader
            .take()
            .map(|reader| reader.join())
            .transpose()
            .map_err(|_| LabError::ThreadPanicked("tcpdump stderr reader"))?
            .unwrap_or_default();
        let count = |suffix: &str| {
            lines.iter().find_map(|line| {
                line.strip_suffix(suffix)
                    .and_then(|number| number.trim().parse::<u64>().ok())
            })
        };
        let (Some(captured), Some(received_by_filter), Some(dropped_by_kernel)) = (
            count(" packets captured"),
            count(" packets received by filter"),
            count(" packets dropped by kernel"),
        ) else {
            return Err(error(format!(
                "no packet counts in its output ({status}): {}",
                lines.join("\n")
            )));
        };
        if captured != received_by_filter || dropped_by_kernel != 0 {
            return Err(error(format!(
                "lost packets: {captured} captured, {received_by_filter} received by filter, \
                 {dropped_by_kernel} dropped by kernel"
            )));
        }
        let link_type = self
            .listening
            .split("link-type ")
            .nth(1)
            .and_then(|rest| rest.split(", snapshot").next())
            .unwrap_or_default()
            .to_owned();
        Ok(CaptureCounts {
            captured,
            received_by_filter,
            dropped_by_kernel,
            link_type,
        })
    }
}

impl Drop for Capture<'_> {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One MPTCP transfer between the lab's hosts.
#[derive(Debug, Clone)]
pub struct TransferSpec {
    pub ip_version: IpVersion,
    /// The path whose server address the client connects to (the initial subflow's path).
    pub path: usize,
    pub port: u16,
    /// Bytes the client writes (then it shuts its sending side down).
    pub client_sends: u64,
    /// Bytes the server writes, at the same time as it reads.
    pub server_sends: u64,
    /// Extra subflows the client waits for (`MPTCP_INFO` `mptcpi_subflows`) before it sends
    /// more than a first flight of 1000 bytes (joins start only after data is acknowledged).
    pub wait_for_subflows: u8,
    /// How long the client waits for those subflows.
    pub subflow_timeout: Duration,
    /// Socket read/write/accept timeout: no step may block longer.
    pub timeout: Duration,
}

impl Default for TransferSpec {
    fn default() -> Self {
        Self {
            ip_version: IpVersion::V4,
            path: 1,
            port: 5201,
            client_sends: 100_000,
            server_sends: 0,
            wait_for_subflows: 0,
            subflow_timeout: Duration::from_secs(3),
            timeout: Duration::from_secs(20),
        }
    }
}

/// What the application on each side counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferCounts {
    pub client_sent: u64,
    pub client_received: u64,
    pub server_sent: u64,
    pub server_received: u64,
    /// Extra subflows the client's MPTCP_INFO reported before it started sending.
    pub subflows_before_data: u8,
    pub client_addr: SocketAddr,
    pub server_addr: SocketAddr,
}

/// A connected transfer waiting for [`TransferSession::finish`].
#[derive(Debug)]
pub struct TransferSession<'lab> {
    go: mpsc::Sender<()>,
    client: JoinHandle<Result<ClientResult, LabError>>,
    server: JoinHandle<Result<ServerResult, LabError>>,
    established: Established,
    _lab: PhantomData<&'lab Lab>,
}

#[derive(Debug, Clone, Copy)]
struct Established {
    extra_subflows: u8,
    client_addr: SocketAddr,
    server_addr: SocketAddr,
}

#[derive(Debug)]
struct ClientResult {
    sent: u64,
    received: u64,
}

#[derive(Debug)]
struct ServerResult {
    sent: u64,
    received: u64,
}

impl TransferSession<'_> {
    /// Extra subflows the client saw before sending.
    pub fn extra_subflows(&self) -> u8 {
        self.established.extra_subflows
    }

    /// Lets the client send, waits for both sides to finish and checks that each side read
    /// what the other wrote.
    pub fn finish(self) -> Result<TransferCounts, LabError> {
        let _ = self.go.send(());
        let client = self
            .client
            .join()
            .map_err(|_| LabError::ThreadPanicked("client"))?;
        let server = self
            .server
            .join()
            .map_err(|_| LabError::ThreadPanicked("server"))?;
        let (client, server) = (client?, server?);
        if client.sent != server.received || server.sent != client.received {
            return Err(LabError::TransferMismatch(format!(
                "client sent {} and the server read {}; server sent {} and the client read {}",
                client.sent, server.received, server.sent, client.received
            )));
        }
        Ok(TransferCounts {
            client_sent: client.sent,
            client_received: client.received,
            server_sent: server.sent,
            server_received: server.received,
            subflows_before_data: self.established.extra_subflows,
            client_addr: self.established.client_addr,
            server_addr: self.established.server_addr,
        })
    }
}

fn transfer_error(step: impl Into<String>, source: io::Error) -> LabError {
    LabError::Transfer {
        step: step.into(),
        source,
    }
}

/// Moves the calling thread (only it) into a named network namespace.
fn enter_namespace(namespace: &str) -> Result<(), LabError> {
    let error = |source| LabError::EnterNamespace {
        namespace: namespace.to_owned(),
        source,
    };
    let file = File::open(format!("/run/netns/{namespace}")).map_err(error)?;
    // SAFETY: setns(2) with a valid namespace fd; it changes this thread's network namespace.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(error(io::Error::last_os_error()));
    }
    Ok(())
}

fn mptcp_socket(address: &SocketAddr) -> io::Result<Socket> {
    Socket::new(
        Domain::for_address(*address),
        Type::STREAM,
        Some(Protocol::MPTCP),
    )
}

/// Extra subflows of an MPTCP socket (`mptcpi_subflows`, the first byte of `struct mptcp_info`).
fn mptcp_extra_subflows(stream: &TcpStream) -> io::Result<u8> {
    let mut info = [0u8; 256];
    let mut length = libc::socklen_t::try_from(info.len()).unwrap_or(libc::socklen_t::MAX);
    // SAFETY: getsockopt writes at most `length` bytes into `info`.
    let result = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            SOL_MPTCP,
            MPTCP_INFO,
            info.as_mut_ptr().cast(),
            &mut length,
        )
    };
    if result != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(info[0])
}

/// A repeating, recognisable payload.
fn pattern() -> Vec<u8> {
    (0..65_536u32).map(|i| (i % 251) as u8).collect()
}

fn write_counted(stream: &mut TcpStream, total: u64) -> io::Result<u64> {
    let chunk = pattern();
    let mut sent = 0u64;
    while sent < total {
        let want = usize::try_from((total - sent).min(chunk.len() as u64)).unwrap_or(chunk.len());
        let written = stream.write(&chunk[..want])?;
        if written == 0 {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "peer stopped reading",
            ));
        }
        sent += written as u64;
    }
    Ok(sent)
}

fn read_counted(stream: &mut TcpStream) -> io::Result<u64> {
    let mut buffer = vec![0u8; 65_536];
    let mut received = 0u64;
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return Ok(received),
            Ok(read) => received += read as u64,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
}

/// When a side shuts its sending side down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ShutdownWhen {
    /// As soon as it has written everything (the client).
    Written,
    /// Once it has written everything and read the peer's end (the server): a server that
    /// sent its DATA_FIN at once would leave the connection half-closed before any join.
    WrittenAndPeerDone,
}

/// Writes on a clone of `stream` in another thread while this one reads; both counted.
fn exchange(
    stream: TcpStream,
    to_send: u64,
    shutdown: ShutdownWhen,
    who: &'static str,
) -> Result<(u64, u64), LabError> {
    let mut writer_stream = stream
        .try_clone()
        .map_err(|source| transfer_error(format!("{who}: cloning the socket"), source))?;
    let writer = thread::Builder::new()
        .name(format!("lab-{who}-writer"))
        .spawn(move || {
            let sent = write_counted(&mut writer_stream, to_send)?;
            if shutdown == ShutdownWhen::Written {
                writer_stream.shutdown(Shutdown::Write)?;
            }
            Ok(sent)
        })
        .map_err(|source| transfer_error(format!("{who}: spawning the writer"), source))?;
    let mut reader_stream = stream;
    let received = read_counted(&mut reader_stream)
        .map_err(|source| transfer_error(format!("{who}: reading"), source))?;
    let sent = writer
        .join()
        .map_err(|_| LabError::ThreadPanicked("writer"))?
        .map_err(|source: io::Error| transfer_error(format!("{who}: writing"), source))?;
    if shutdown == ShutdownWhen::WrittenAndPeerDone {
        reader_stream
            .shutdown(Shutdown::Write)
            .map_err(|source| transfer_error(format!("{who}: shutting down"), source))?;
    }
    Ok((sent, received))
}

/// Polls MPTCP_INFO until the connection has `spec.wait_for_subflows` extra subflows.
fn wait_for_subflows(stream: &TcpStream, spec: &TransferSpec, who: &str) -> Result<u8, LabError> {
    let info_error = |source| transfer_error(format!("{who}: MPTCP_INFO"), source);
    let deadline = Instant::now() + spec.subflow_timeout;
    let mut extra_subflows = mptcp_extra_subflows(stream).map_err(info_error)?;
    while extra_subflows < spec.wait_for_subflows {
        if Instant::now() >= deadline {
            return Err(LabError::Timeout {
                what: format!(
                    "{} extra subflows ({who} has {extra_subflows})",
                    spec.wait_for_subflows
                ),
                timeout: spec.subflow_timeout,
            });
        }
        thread::sleep(Duration::from_millis(10));
        extra_subflows = mptcp_extra_subflows(stream).map_err(info_error)?;
    }
    if spec.wait_for_subflows > 0 {
        // mptcpi_subflows counts a join when it starts; give its handshake time to end.
        thread::sleep(Duration::from_millis(100));
    }
    Ok(extra_subflows)
}

fn run_server(
    namespace: &str,
    bind: SocketAddr,
    spec: &TransferSpec,
    ready: mpsc::Sender<()>,
) -> Result<ServerResult, LabError> {
    enter_namespace(namespace)?;
    let step =
        |what: &'static str| move |source| transfer_error(format!("server: {what} {bind}"), source);
    let socket = mptcp_socket(&bind).map_err(step("MPTCP socket for"))?;
    socket
        .set_reuse_address(true)
        .map_err(step("SO_REUSEADDR on"))?;
    if bind.is_ipv6() {
        socket.set_only_v6(true).map_err(step("IPV6_V6ONLY on"))?;
    }
    // accept(2) honours SO_RCVTIMEO: the server gives up if no client comes.
    socket
        .set_read_timeout(Some(spec.timeout))
        .map_err(step("SO_RCVTIMEO on"))?;
    // The wildcard address: a listener bound to one address refuses joins to the others.
    socket.bind(&bind.into()).map_err(step("binding"))?;
    socket.listen(8).map_err(step("listening on"))?;
    let listener: TcpListener = socket.into();
    let _ = ready.send(());
    let (stream, _peer) = listener.accept().map_err(step("accepting on"))?;
    stream
        .set_read_timeout(Some(spec.timeout))
        .and_then(|()| stream.set_write_timeout(Some(spec.timeout)))
        .map_err(step("socket timeouts on"))?;
    // Like the client, send only once the joins are up, so that both directions spread.
    wait_for_subflows(&stream, spec, &format!("server on {bind}"))?;
    let (sent, received) = exchange(
        stream,
        spec.server_sends,
        ShutdownWhen::WrittenAndPeerDone,
        "server",
    )?;
    Ok(ServerResult { sent, received })
}

fn run_client(
    namespace: &str,
    server: SocketAddr,
    spec: &TransferSpec,
    established: mpsc::Sender<Established>,
    go: mpsc::Receiver<()>,
) -> Result<ClientResult, LabError> {
    enter_namespace(namespace)?;
    let step = |what: &'static str| {
        move |source| transfer_error(format!("client: {what} {server}"), source)
    };
    let socket = mptcp_socket(&server).map_err(step("MPTCP socket for"))?;
    socket
        .connect_timeout(&server.into(), spec.timeout)
        .map_err(step("connecting to"))?;
    let stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(spec.timeout))
        .and_then(|()| stream.set_write_timeout(Some(spec.timeout)))
        .map_err(step("socket timeouts for"))?;
    // Linux opens joins only once the connection is fully established, that is when the
    // server has acknowledged data at the MPTCP level: send a first flight before waiting.
    let first_flight = if spec.wait_for_subflows > 0 {
        spec.client_sends.min(FIRST_FLIGHT)
    } else {
        0
    };
    let mut writer = &stream;
    writer
        .write_all(&pattern()[..usize::try_from(first_flight).unwrap_or(0)])
        .map_err(step("sending the first flight to"))?;
    let extra_subflows = wait_for_subflows(&stream, spec, &format!("client to {server}"))?;
    let client_addr = stream.local_addr().map_err(step("local address towards"))?;
    let _ = established.send(Established {
        extra_subflows,
        client_addr,
        server_addr: server,
    });
    // A dropped session (no finish) closes the connection without sending.
    if go.recv().is_err() {
        return Ok(ClientResult {
            sent: 0,
            received: 0,
        });
    }
    let (sent, received) = exchange(
        stream,
        spec.client_sends - first_flight,
        ShutdownWhen::Written,
        "client",
    )?;
    Ok(ClientResult {
        sent: first_flight + sent,
        received,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monitor_lines_are_counted_by_event() {
        let lines = [
            "[       CREATED] token=4a3b2c1d remid=0 locid=0 saddr4=10.0.1.1 daddr4=10.0.1.2 sport=40000 dport=5201",
            "[   ESTABLISHED] token=4a3b2c1d remid=0 locid=0 saddr4=10.0.1.1 daddr4=10.0.1.2 sport=40000 dport=5201",
            "[SF_ESTABLISHED] token=4a3b2c1d remid=0 locid=2 saddr4=10.0.2.1 daddr4=10.0.1.2 sport=40001 dport=5201 backup=0 ifindex=3",
            "[SF_ESTABLISHED] token=4a3b2c1d remid=0 locid=3 saddr4=10.0.3.1 daddr4=10.0.1.2 sport=40002 dport=5201 backup=0 ifindex=4",
            "[        CLOSED] token=4a3b2c1d",
            "unrelated noise",
        ];
        let report = MonitorReport::parse(lines.iter().map(|line| (*line).to_owned()).collect());
        assert_eq!(
            (
                report.connections,
                report.established,
                report.joins,
                report.closed
            ),
            (1, 1, 2, 1)
        );
        assert_eq!(report.subflows(), 3);
    }
}
