//! The lab itself: two hosts in network namespaces joined by veth paths, with the in-kernel
//! path manager configured.
//!
//! Layout for a lab with N paths (1 ≤ N ≤ 4), path p in 1..=N:
//! ```text
//!  client netns  cli<p>  10.0.<p>.1/24  fd00:0:<p>::1/64  ──veth──  srv<p>  10.0.<p>.2/24  fd00:0:<p>::2/64  server netns
//! ```
//! Every address lives only inside the two namespaces this lab creates; nothing is routed
//! anywhere else. [`Lab::with_router`] puts a third namespace, a router, on every path instead
//! (see the `router` module): the server's addresses are then 10.1.p.2 / fd00:1:p::2.
//! Dropping the [`Lab`] deletes both namespaces, which takes the veths and the nftables tables
//! in them along.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::Path,
    process::Command,
    sync::{
        Mutex,
        atomic::{AtomicU32, Ordering},
    },
};

use crate::{LabError, command::run};

/// At most this many veth paths between the two hosts.
pub const MAX_PATHS: usize = 4;

/// Prefix of every namespace a lab creates; `<prefix>-<pid>-<n>-cli` / `-srv`.
pub const NAMESPACE_PREFIX: &str = "mptlab";

/// Distinguishes labs made by one process (tests run in parallel threads).
static LAB_SEQUENCE: AtomicU32 = AtomicU32::new(0);

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
    pub(crate) nft_tables: Mutex<Vec<(String, String)>>,
    pub(crate) nft_sequence: AtomicU32,
    /// The router between the hosts, for a lab made by [`Lab::with_router`].
    pub(crate) router: Option<crate::router::Router>,
}

impl Lab {
    /// Creates the namespaces, the veth paths with their addresses, MPTCP limits and endpoints.
    pub fn new(config: &LabConfig) -> Result<Self, LabError> {
        Self::create(config, None)
    }

    /// Creates the lab with a router namespace between the hosts (see [`RouterConfig`]):
    /// `client — veth — router — veth — server` on every path, IPv4 and IPv6.
    ///
    /// [`RouterConfig`]: crate::RouterConfig
    pub fn with_router(config: &LabConfig, router: &crate::RouterConfig) -> Result<Self, LabError> {
        Self::create(config, Some(router))
    }

    fn create(config: &LabConfig, router: Option<&crate::RouterConfig>) -> Result<Self, LabError> {
        if config.paths == 0 || config.paths > MAX_PATHS {
            return Err(LabError::PathCount {
                paths: config.paths,
                max: MAX_PATHS,
            });
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
            router: router.map(|router| crate::router::Router::new(&stem, config, router)),
        };
        // On error `lab` is dropped here and its Drop removes what was made so far.
        if lab.router.is_some() {
            lab.build_routed(config)?;
        } else {
            lab.build(config)?;
        }
        Ok(lab)
    }

    /// Creates a host's namespace with MPTCP on and the lab's limits.
    pub(crate) fn add_host_namespace(&mut self, namespace: &str) -> Result<(), LabError> {
        self.add_namespace(namespace)?;
        self.exec_in(namespace, "sysctl", &["-q", "-w", "net.mptcp.enabled=1"])?;
        run(
            "ip",
            &[
                "-n",
                namespace,
                "mptcp",
                "limits",
                "set",
                "subflows",
                "8",
                "add_addr_accepted",
                "8",
            ],
        )
        .map(drop)
    }

    /// Creates a namespace (deleted with the lab) with its loopback up.
    pub(crate) fn add_namespace(&mut self, namespace: &str) -> Result<(), LabError> {
        run("ip", &["netns", "add", namespace])?;
        self.created_namespaces.push(namespace.to_owned());
        run("ip", &["-n", namespace, "link", "set", "lo", "up"]).map(drop)
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
        self.add_endpoints(config.endpoints)
    }

    /// The in-kernel path manager's endpoints for the extra paths (both families): the
    /// client's `subflow` endpoints or the server's `signal` ones.
    pub(crate) fn add_endpoints(&self, endpoints: EndpointMode) -> Result<(), LabError> {
        let (side, flag) = match endpoints {
            EndpointMode::ClientSubflow => (Side::Client, "subflow"),
            EndpointMode::ServerSignal => (Side::Server, "signal"),
        };
        for path in 2..=self.paths {
            for version in [IpVersion::V4, IpVersion::V6] {
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

    /// A host's interfaces, path 1 first: what a tracer of that host attaches to.
    pub fn interfaces(&self, side: Side) -> Vec<String> {
        (1..=self.paths)
            .filter_map(|path| self.interface(side, path).ok())
            .collect()
    }

    /// A host's address on path `path` (1-based): 10.0.p.1 / fd00:0:p::1 for the client,
    /// .2 / ::2 for the server.
    ///
    /// In a lab with a router the server's addresses are 10.1.p.2 / fd00:1:p::2 instead.
    pub fn address(&self, side: Side, path: usize, version: IpVersion) -> Result<IpAddr, LabError> {
        self.check_path(path)?;
        if self.router.is_some() {
            return crate::router::routed_address(side, path, version);
        }
        let host: u8 = match side {
            Side::Client => 1,
            Side::Server => 2,
        };
        let path_octet = u8::try_from(path).map_err(|_| LabError::PathCount {
            paths: path,
            max: MAX_PATHS,
        })?;
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

    pub(crate) fn check_path(&self, path: usize) -> Result<(), LabError> {
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

    /// A command that runs `program` inside a host's namespace (`ip netns exec`), for a
    /// caller that wants to talk to it while it runs.
    pub fn command(&self, side: Side, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", self.namespace(side), program]);
        command
    }

    pub(crate) fn exec_in(
        &self,
        namespace: &str,
        program: &str,
        args: &[&str],
    ) -> Result<String, LabError> {
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
}

impl Drop for Lab {
    fn drop(&mut self) {
        let tables = std::mem::take(
            &mut *self
                .nft_tables
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
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
