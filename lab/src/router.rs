//! A router namespace between the two hosts, for two-ended captures: what the client's capture
//! shows leaving and the server's capture shows arriving differs by what the router dropped,
//! which its nftables counters tell exactly; with NAT the two captures also differ in addresses
//! and ports.
//!
//! Layout for path p:
//! ```text
//!  client netns  cli<p> 10.0.p.1/24   fd00:0:p::1/64  ──veth── rtc<p> 10.0.p.254/24 fd00:0:p::fe/64  router netns
//!  router netns  rts<p> 10.1.p.254/24 fd00:1:p::fe/64 ──veth── srv<p> 10.1.p.2/24   fd00:1:p::2/64   server netns
//! ```
//! The client routes by source address (rule `from 10.0.p.1` → table 100+p, default via
//! 10.0.p.254), the router by input interface (rule `iif rtc<p>` → table 100+p, default via
//! 10.1.p.2) and the server by destination (10.0.p.0/24 via 10.1.p.254 dev `srv<p>`), so each
//! subflow stays on its own path both ways; the same for IPv6, with permanent neighbour
//! entries on every veth (as in a lab without router). Offloads go off and `tbf` goes on every
//! veth end as in a lab without router; the router's own `tbf` queues are the only queues
//! between the two hosts' capture points (a host's capture sees a packet after its own qdisc),
//! so a packet's one-way delay between the captures is at most [`Lab::router_queueing_bound`]
//! (if the router's queues drop nothing: [`Lab::router_qdisc_drops`] tells).
//!
//! With `nat`, the router masquerades the client (SNAT to 10.1.p.254 / fd00:1:p::fe, ports
//! 40000-49999 at random, so ports differ too) and DNATs its own 10.0.p.254 / fd00:0:p::fe to
//! the server's 10.1.p.2 / fd00:1:p::2: the client connects to an address the server never
//! sees ([`Lab::connect_address`]).

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    sync::atomic::Ordering,
    time::Duration,
};

use crate::{
    DropRule, IpVersion, Lab, LabConfig, LabError, PacketFilter, Side, command::run,
    filter::nft_apply,
};

/// `tbf` burst on every veth end (as in a lab without router).
const BURST_BYTES: u64 = 16 * 1024;

/// The router of a lab made by [`Lab::with_router`].
#[derive(Debug, Clone)]
pub struct RouterConfig {
    /// SNAT the client (addresses and ports change) and DNAT the router's client-side address
    /// to the server.
    pub nat: bool,
    /// The router's `tbf` latency on each of its interfaces (its queue holds
    /// `rate × latency + burst` bytes), in milliseconds. Ignored without `rate_mbit`.
    pub queue_ms: u32,
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            nat: false,
            queue_ms: 100,
        }
    }
}

/// Which of the router's two interfaces on a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouterSide {
    /// `rtc<p>`, towards the client.
    Client,
    /// `rts<p>`, towards the server.
    Server,
}

/// Which of the packets matching a [`DropRule`] a forward rule drops, counting from 0 in the
/// order the router sees them (nftables `numgen inc`, which counts only packets that reached
/// it, i.e. those matching the rule's earlier expressions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DropPick {
    /// All of them.
    All,
    /// Those with these indices.
    Indices(Vec<u32>),
    /// `count` of them: index `first`, then every `every`-th after it.
    EveryNth { first: u32, every: u32, count: u32 },
}

/// What an nftables `counter` counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DropCounter {
    pub packets: u64,
    pub bytes: u64,
}

#[derive(Debug)]
pub(crate) struct Router {
    namespace: String,
    nat: bool,
    rate_mbit: Option<u32>,
    queue_ms: u32,
}

impl Router {
    pub(crate) fn new(stem: &str, config: &LabConfig, router: &RouterConfig) -> Self {
        Self {
            namespace: format!("{stem}-rtr"),
            nat: router.nat,
            rate_mbit: config.rate_mbit,
            queue_ms: router.queue_ms,
        }
    }
}

fn path_octet(path: usize) -> Result<u8, LabError> {
    u8::try_from(path).map_err(|_| LabError::PathCount {
        paths: path,
        max: crate::MAX_PATHS,
    })
}

/// An address in a lab with a router: `net` 0 is the client's side of the router, 1 the
/// server's; `host` the last octet (IPv4) or group (IPv6): 10.<net>.<p>.<host> and
/// fd00:<net>:<p>::<host:x>.
fn routed(version: IpVersion, net: u8, path: u8, host: u8) -> IpAddr {
    match version {
        IpVersion::V4 => IpAddr::V4(Ipv4Addr::new(10, net, path, host)),
        IpVersion::V6 => IpAddr::V6(Ipv6Addr::new(
            0xfd00,
            u16::from(net),
            u16::from(path),
            0,
            0,
            0,
            0,
            u16::from(host),
        )),
    }
}

/// The prefix length of every subnet of a lab with a router.
fn prefix_length(version: IpVersion) -> u8 {
    match version {
        IpVersion::V4 => 24,
        IpVersion::V6 => 64,
    }
}

/// A host's address in a lab with a router: 10.0.p.1 / fd00:0:p::1 (client), 10.1.p.2 /
/// fd00:1:p::2 (server).
pub(crate) fn routed_address(
    side: Side,
    path: usize,
    version: IpVersion,
) -> Result<IpAddr, LabError> {
    let p = path_octet(path)?;
    Ok(match side {
        Side::Client => routed(version, 0, p, 1),
        Side::Server => routed(version, 1, p, 2),
    })
}

/// The router's address on a path: 10.0.p.254 / fd00:0:p::fe towards the client,
/// 10.1.p.254 / fd00:1:p::fe towards the server.
fn router_ip(side: RouterSide, path: u8, version: IpVersion) -> IpAddr {
    let host = match version {
        IpVersion::V4 => 254,
        IpVersion::V6 => 0xfe,
    };
    match side {
        RouterSide::Client => routed(version, 0, path, host),
        RouterSide::Server => routed(version, 1, path, host),
    }
}

/// The `tbf` qdisc arguments for `rate_mbit` with `latency_ms`.
fn tbf_args(rate_mbit: u32, latency_ms: u32) -> Vec<String> {
    [
        "qdisc".to_owned(),
        "add".to_owned(),
        "dev".to_owned(),
        String::new(), // the interface, filled in by the caller
        "root".to_owned(),
        "tbf".to_owned(),
        "rate".to_owned(),
        format!("{rate_mbit}mbit"),
        "burst".to_owned(),
        "16kb".to_owned(),
        "latency".to_owned(),
        format!("{latency_ms}ms"),
    ]
    .into()
}

/// The longest a packet can wait in a `tbf` queue of `rate_mbit` and `latency_ms`: its limit
/// (`rate × latency + burst` bytes) drained at the rate.
pub(crate) fn tbf_bound(rate_mbit: u32, latency_ms: u32) -> Duration {
    let bytes_per_second = f64::from(rate_mbit) * 1e6 / 8.0;
    Duration::from_millis(u64::from(latency_ms))
        + Duration::from_secs_f64(BURST_BYTES as f64 / bytes_per_second)
}

/// The nftables script of a forward drop rule.
fn forward_drop_script(
    table: &str,
    interface: &str,
    rule: DropRule,
    pick: &DropPick,
) -> Result<String, LabError> {
    let matcher = match rule {
        DropRule::All => String::new(),
        DropRule::Random { percent } => format!(" numgen random mod 100 < {percent}"),
        DropRule::DataSegments => " meta l4proto tcp meta length > 200".to_owned(),
    };
    let indices: Option<Vec<u32>> = match pick {
        DropPick::All => None,
        DropPick::Indices(indices) => Some(indices.clone()),
        DropPick::EveryNth {
            first,
            every,
            count,
        } => Some(
            (0..*count)
                .map(|n| first.saturating_add(n.saturating_mul(*every)))
                .collect(),
        ),
    };
    let pick = match indices {
        None => String::new(),
        Some(indices) if indices.is_empty() => {
            return Err(LabError::TransferMismatch(
                "a drop rule must drop some packet".into(),
            ));
        }
        Some(indices) => {
            let list: Vec<String> = indices.iter().map(u32::to_string).collect();
            // `mod` wraps the count only after 2^31 packets.
            format!(" numgen inc mod 2147483648 {{ {} }}", list.join(", "))
        }
    };
    Ok(format!(
        "table inet {table} {{\n  chain forward {{\n    type filter hook forward priority 0; policy accept;\n    iifname \"{interface}\"{matcher}{pick} counter drop\n  }}\n}}\n"
    ))
}

/// The first `counter packets N bytes M` of an `nft list` output.
fn parse_counter(listing: &str) -> Option<DropCounter> {
    let rest = &listing[listing.find("counter packets ")? + "counter packets ".len()..];
    let mut words = rest.split_whitespace();
    let packets = words.next()?.parse().ok()?;
    (words.next()? == "bytes").then_some(())?;
    let bytes = words.next()?.parse().ok()?;
    Some(DropCounter { packets, bytes })
}

/// The sum of `dropped N` over a `tc -s qdisc show` output.
fn parse_qdisc_drops(listing: &str) -> u64 {
    listing
        .split("dropped ")
        .skip(1)
        .filter_map(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

impl Lab {
    fn router(&self) -> Result<&Router, LabError> {
        self.router
            .as_ref()
            .ok_or_else(|| LabError::TransferMismatch("this lab has no router".into()))
    }

    /// Whether the lab has a router between its hosts.
    pub fn has_router(&self) -> bool {
        self.router.is_some()
    }

    /// Whether the router NATs (see [`RouterConfig::nat`]).
    pub fn router_nats(&self) -> bool {
        self.router.as_ref().is_some_and(|router| router.nat)
    }

    /// The router's namespace, if the lab has one.
    pub fn router_namespace(&self) -> Option<&str> {
        self.router.as_ref().map(|router| router.namespace.as_str())
    }

    /// The router's interface on a path: `rtc<p>` (towards the client) or `rts<p>`.
    pub fn router_interface(&self, side: RouterSide, path: usize) -> Result<String, LabError> {
        self.router()?;
        self.check_path(path)?;
        Ok(match side {
            RouterSide::Client => format!("rtc{path}"),
            RouterSide::Server => format!("rts{path}"),
        })
    }

    /// The router's address on a path: 10.0.p.254 / fd00:0:p::fe towards the client,
    /// 10.1.p.254 / fd00:1:p::fe towards the server (the client's address on the server's
    /// side with NAT).
    pub fn router_address(
        &self,
        side: RouterSide,
        path: usize,
        version: IpVersion,
    ) -> Result<IpAddr, LabError> {
        self.router()?;
        self.check_path(path)?;
        Ok(router_ip(side, path_octet(path)?, version))
    }

    /// The address a client connects to for the server on `path`: the server's own address,
    /// but the router's (DNATed to the server) when the router NATs.
    pub fn connect_address(&self, path: usize, version: IpVersion) -> Result<IpAddr, LabError> {
        if self.router_nats() {
            self.router_address(RouterSide::Client, path, version)
        } else {
            self.address(Side::Server, path, version)
        }
    }

    /// Runs `program args…` in the router's namespace.
    pub fn router_exec(&self, program: &str, args: &[&str]) -> Result<String, LabError> {
        let namespace = self.router()?.namespace.clone();
        self.exec_in(&namespace, program, args)
    }

    /// The longest a packet can queue between the hosts' capture points on one path in one
    /// direction: the router's `tbf` on its way out (`None` without a rate limit).
    pub fn router_queueing_bound(&self) -> Option<Duration> {
        let router = self.router.as_ref()?;
        router
            .rate_mbit
            .map(|rate| tbf_bound(rate, router.queue_ms))
    }

    /// Packets the router's qdiscs dropped (all interfaces): not seen by the drop rules'
    /// counters, so a test that takes those as the truth checks that this stays 0.
    pub fn router_qdisc_drops(&self) -> Result<u64, LabError> {
        Ok(parse_qdisc_drops(
            &self.router_exec("tc", &["-s", "qdisc", "show"])?,
        ))
    }

    /// Installs an nftables rule in the router's forward chain dropping the packets matching
    /// `rule` that come in from `from`'s side on `path` (the [`DropPick`] of them), with a
    /// counter: [`Lab::dropped`] reads how many it dropped, the exact number of packets lost
    /// between the client's and the server's captures.
    pub fn drop_forwarded(
        &self,
        path: usize,
        from: Side,
        rule: DropRule,
        pick: &DropPick,
    ) -> Result<PacketFilter, LabError> {
        let namespace = self.router()?.namespace.clone();
        let interface = self.router_interface(
            match from {
                Side::Client => RouterSide::Client,
                Side::Server => RouterSide::Server,
            },
            path,
        )?;
        let table = format!(
            "mptlab_fwd{}",
            self.nft_sequence.fetch_add(1, Ordering::Relaxed)
        );
        nft_apply(
            &namespace,
            &forward_drop_script(&table, &interface, rule, pick)?,
        )?;
        self.nft_tables
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((namespace.clone(), table.clone()));
        Ok(PacketFilter::new(namespace, table))
    }

    /// What a rule's counter counted (a rule made by [`Lab::drop_forwarded`]).
    pub fn dropped(&self, filter: &PacketFilter) -> Result<DropCounter, LabError> {
        let (namespace, table) = filter.location();
        let listing = self.exec_in(namespace, "nft", &["list", "table", "inet", table])?;
        parse_counter(&listing).ok_or_else(|| LabError::Command {
            command: format!("nft list table inet {table}"),
            status: "exit status: 0".into(),
            stderr: format!("no counter in {listing:?}"),
        })
    }

    /// Builds the three namespaces, their paths, routes and (with NAT) the router's NAT.
    pub(crate) fn build_routed(&mut self, config: &LabConfig) -> Result<(), LabError> {
        let (router_namespace, nat, queue_ms) = {
            let router = self.router()?;
            (router.namespace.clone(), router.nat, router.queue_ms)
        };
        let client = self.namespace(Side::Client).to_owned();
        let server = self.namespace(Side::Server).to_owned();
        self.add_host_namespace(&client)?;
        self.add_host_namespace(&server)?;
        self.add_namespace(&router_namespace)?;
        for key in ["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"] {
            self.exec_in(&router_namespace, "sysctl", &["-q", "-w", key])?;
        }
        for namespace in [&client, &server, &router_namespace] {
            for key in ["all", "default"] {
                self.exec_in(
                    namespace,
                    "sysctl",
                    &["-q", "-w", &format!("net.ipv4.conf.{key}.rp_filter=0")],
                )?;
            }
        }
        for path in 1..=self.paths() {
            let p = path_octet(path)?;
            let cli = self.interface(Side::Client, path)?;
            let srv = self.interface(Side::Server, path)?;
            let rtc = self.router_interface(RouterSide::Client, path)?;
            let rts = self.router_interface(RouterSide::Server, path)?;
            let links = [
                (
                    client.as_str(),
                    cli.as_str(),
                    router_namespace.as_str(),
                    rtc.as_str(),
                ),
                (
                    router_namespace.as_str(),
                    rts.as_str(),
                    server.as_str(),
                    srv.as_str(),
                ),
            ];
            for (namespace, name, peer_namespace, peer) in links {
                run(
                    "ip",
                    &[
                        "link",
                        "add",
                        name,
                        "netns",
                        namespace,
                        "type",
                        "veth",
                        "peer",
                        "name",
                        peer,
                        "netns",
                        peer_namespace,
                    ],
                )?;
            }
            // (namespace, interface, its addresses' owner, tbf latency)
            let interfaces = [
                (client.as_str(), cli.as_str(), 1000),
                (router_namespace.as_str(), rtc.as_str(), queue_ms),
                (router_namespace.as_str(), rts.as_str(), queue_ms),
                (server.as_str(), srv.as_str(), 1000),
            ];
            for (index, (namespace, interface, latency_ms)) in interfaces.into_iter().enumerate() {
                for version in [IpVersion::V4, IpVersion::V6] {
                    let address = match index {
                        0 => routed_address(Side::Client, path, version)?,
                        1 => router_ip(RouterSide::Client, p, version),
                        2 => router_ip(RouterSide::Server, p, version),
                        _ => routed_address(Side::Server, path, version)?,
                    };
                    let address = format!("{address}/{}", prefix_length(version));
                    let mut args = vec!["-n", namespace, "addr", "add", &address, "dev", interface];
                    if version == IpVersion::V6 {
                        // Usable at once, without duplicate address detection.
                        args.push("nodad");
                    }
                    run("ip", &args)?;
                }
                if config.disable_offloads {
                    self.exec_in(
                        namespace,
                        "ethtool",
                        &["-K", interface, "tso", "off", "gso", "off", "gro", "off"],
                    )?;
                }
                if let Some(rate) = config.rate_mbit {
                    let mut args = tbf_args(rate, latency_ms);
                    interface.clone_into(&mut args[3]);
                    let args: Vec<&str> = args.iter().map(String::as_str).collect();
                    self.exec_in(namespace, "tc", &args)?;
                }
                run("ip", &["-n", namespace, "link", "set", interface, "up"])?;
            }
            // Permanent IPv6 neighbours on both links, as in a lab without router: neighbour
            // discovery would delay (or lose) first packets and show up in the captures.
            for (namespace, name, peer_namespace, peer) in links {
                self.add_neighbours(namespace, name, peer_namespace, peer)?;
            }
            self.add_routes(path, &router_namespace, &cli, &rtc, &rts, &srv)?;
        }
        // Unbound sockets (the initial subflow) leave through path 1.
        for version in [IpVersion::V4, IpVersion::V6] {
            let (family, servers) = match version {
                IpVersion::V4 => ("-4", "10.1.0.0/16"),
                IpVersion::V6 => ("-6", "fd00:1::/32"),
            };
            let gateway = router_ip(RouterSide::Client, 1, version).to_string();
            run(
                "ip",
                &[
                    "-n", &client, family, "route", "add", servers, "via", &gateway, "dev", "cli1",
                ],
            )?;
        }
        if nat {
            self.install_nat(&router_namespace)?;
        }
        self.add_endpoints(config.endpoints)
    }

    /// Permanent IPv6 neighbour entries for both ends of a veth.
    fn add_neighbours(
        &self,
        namespace: &str,
        interface: &str,
        peer_namespace: &str,
        peer: &str,
    ) -> Result<(), LabError> {
        let addresses = |namespace: &str, interface: &str| -> Result<Vec<String>, LabError> {
            let output = run(
                "ip",
                &[
                    "-n", namespace, "-6", "-br", "addr", "show", "dev", interface, "scope",
                    "global",
                ],
            )?;
            Ok(output
                .split_whitespace()
                .skip(2)
                .filter_map(|field| field.split('/').next().map(str::to_owned))
                .collect())
        };
        for (here, device, there, there_device) in [
            (namespace, interface, peer_namespace, peer),
            (peer_namespace, peer, namespace, interface),
        ] {
            let mac = mac_address(there, there_device)?;
            for address in addresses(there, there_device)? {
                run(
                    "ip",
                    &[
                        "-n",
                        here,
                        "-6",
                        "neigh",
                        "replace",
                        &address,
                        "lladdr",
                        &mac,
                        "dev",
                        device,
                        "nud",
                        "permanent",
                    ],
                )?;
            }
        }
        Ok(())
    }

    /// Policy routes that keep path p's subflow on path p, for both families.
    fn add_routes(
        &self,
        path: usize,
        router_namespace: &str,
        cli: &str,
        rtc: &str,
        rts: &str,
        srv: &str,
    ) -> Result<(), LabError> {
        let p = path_octet(path)?;
        let table = (100 + u32::from(p)).to_string();
        let client = self.namespace(Side::Client);
        let server = self.namespace(Side::Server);
        for version in [IpVersion::V4, IpVersion::V6] {
            let family = match version {
                IpVersion::V4 => "-4",
                IpVersion::V6 => "-6",
            };
            let client_address = routed_address(Side::Client, path, version)?.to_string();
            let server_address = routed_address(Side::Server, path, version)?.to_string();
            let rtc_address = router_ip(RouterSide::Client, p, version).to_string();
            let rts_address = router_ip(RouterSide::Server, p, version).to_string();
            let client_net = match version {
                IpVersion::V4 => format!("10.0.{p}.0/24"),
                IpVersion::V6 => format!("fd00:0:{p}::/64"),
            };
            // Client: a subflow from its path p address leaves through path p.
            run(
                "ip",
                &[
                    "-n",
                    client,
                    family,
                    "rule",
                    "add",
                    "from",
                    &client_address,
                    "table",
                    &table,
                    "priority",
                    &table,
                ],
            )?;
            run(
                "ip",
                &[
                    "-n",
                    client,
                    family,
                    "route",
                    "add",
                    "default",
                    "via",
                    &rtc_address,
                    "dev",
                    cli,
                    "table",
                    &table,
                ],
            )?;
            // Router: what comes in on path p goes out on path p.
            run(
                "ip",
                &[
                    "-n",
                    router_namespace,
                    family,
                    "rule",
                    "add",
                    "iif",
                    rtc,
                    "table",
                    &table,
                    "priority",
                    &table,
                ],
            )?;
            run(
                "ip",
                &[
                    "-n",
                    router_namespace,
                    family,
                    "route",
                    "add",
                    "default",
                    "via",
                    &server_address,
                    "dev",
                    rts,
                    "table",
                    &table,
                ],
            )?;
            // Server: answers to the client's path p go back on path p.
            run(
                "ip",
                &[
                    "-n",
                    server,
                    family,
                    "route",
                    "add",
                    &client_net,
                    "via",
                    &rts_address,
                    "dev",
                    srv,
                ],
            )?;
        }
        Ok(())
    }

    fn install_nat(&self, router_namespace: &str) -> Result<(), LabError> {
        let mut prerouting = String::new();
        let mut postrouting = String::new();
        for path in 1..=self.paths() {
            let p = path_octet(path)?;
            let rts = self.router_interface(RouterSide::Server, path)?;
            for (version, family, port_range) in [
                (
                    IpVersion::V4,
                    "ip",
                    format!(
                        "{}:40000-49999",
                        router_ip(RouterSide::Server, p, IpVersion::V4)
                    ),
                ),
                (
                    IpVersion::V6,
                    "ip6",
                    format!(
                        "[{}]:40000-49999",
                        router_ip(RouterSide::Server, p, IpVersion::V6)
                    ),
                ),
            ] {
                // From any client path: a join leaves path p towards the address the client
                // connected to, path 1's.
                prerouting.push_str(&format!(
                    "    iifname \"rtc*\" meta l4proto tcp {family} daddr {} dnat {family} to {}\n",
                    router_ip(RouterSide::Client, p, version),
                    routed_address(Side::Server, path, version)?,
                ));
                postrouting.push_str(&format!(
                    "    oifname \"{rts}\" meta nfproto {} meta l4proto tcp snat {family} to {port_range} random\n",
                    match version {
                        IpVersion::V4 => "ipv4",
                        IpVersion::V6 => "ipv6",
                    },
                ));
            }
        }
        let script = format!(
            "table inet mptlab_nat {{\n  chain prerouting {{\n    type nat hook prerouting priority dstnat; policy accept;\n{prerouting}  }}\n  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n{postrouting}  }}\n}}\n"
        );
        nft_apply(router_namespace, &script)?;
        self.nft_tables
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((router_namespace.to_owned(), "mptlab_nat".to_owned()));
        // Conntrack (loaded by the NAT table) must not call a segment INVALID for being out
        // of its window after a drop: NAT skips INVALID packets, which would then reach the
        // server with the client's own addresses.
        self.exec_in(
            router_namespace,
            "sysctl",
            &["-q", "-w", "net.netfilter.nf_conntrack_tcp_be_liberal=1"],
        )
        .map(drop)
    }
}

/// The MAC address of an interface in a namespace.
fn mac_address(namespace: &str, interface: &str) -> Result<String, LabError> {
    let output = run(
        "ip",
        &["-n", namespace, "-br", "link", "show", "dev", interface],
    )?;
    output
        .split_whitespace()
        .find(|field| field.len() == 17 && field.matches(':').count() == 5)
        .map(str::to_owned)
        .ok_or_else(|| LabError::Command {
            command: format!("ip -n {namespace} -br link show dev {interface}"),
            status: "exit status: 0".into(),
            stderr: format!("no MAC address in {output:?}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_drop_script_picks_indices() {
        let script = forward_drop_script(
            "t",
            "rtc2",
            DropRule::DataSegments,
            &DropPick::EveryNth {
                first: 20,
                every: 50,
                count: 3,
            },
        )
        .expect("a script");
        assert!(
            script.contains("type filter hook forward priority 0;"),
            "{script}"
        );
        assert!(
            script.contains(
                "iifname \"rtc2\" meta l4proto tcp meta length > 200 numgen inc mod 2147483648 { 20, 70, 120 } counter drop"
            ),
            "{script}"
        );
        let all = forward_drop_script("t", "rts1", DropRule::All, &DropPick::All).expect("all");
        assert!(all.contains("iifname \"rts1\" counter drop"), "{all}");
        assert!(
            forward_drop_script("t", "rtc1", DropRule::All, &DropPick::Indices(vec![])).is_err()
        );
    }

    #[test]
    fn counters_and_qdisc_drops_are_parsed() {
        let listing = "table inet t {\n\tchain forward {\n\t\tiifname \"rtc2\" meta length > 200 counter packets 7 bytes 10486 drop\n\t}\n}\n";
        assert_eq!(
            parse_counter(listing),
            Some(DropCounter {
                packets: 7,
                bytes: 10486
            })
        );
        assert_eq!(parse_counter("table inet t {}"), None);
        let tc = "qdisc tbf 8001: dev rtc1 root refcnt 2 rate 20Mbit burst 16Kb lat 100ms\n Sent 1234 bytes 10 pkt (dropped 0, overlimits 3 requeues 0)\nqdisc tbf 8002: dev rts1 root\n Sent 1 bytes 1 pkt (dropped 2, overlimits 0 requeues 0)\n";
        assert_eq!(parse_qdisc_drops(tc), 2);
    }

    #[test]
    fn queueing_bound_is_latency_plus_burst_at_the_rate() {
        // 16 KiB at 20 Mbit/s = 16384 × 8 / 20e6 s = 6.5536 ms.
        let bound = tbf_bound(20, 100);
        assert!(
            (bound.as_secs_f64() - 0.106_553_6).abs() < 1e-9,
            "{bound:?}"
        );
    }

    #[test]
    fn routed_addresses() {
        assert_eq!(
            routed_address(Side::Server, 2, IpVersion::V4)
                .expect("v4")
                .to_string(),
            "10.1.2.2"
        );
        assert_eq!(
            routed_address(Side::Client, 1, IpVersion::V4)
                .expect("v4")
                .to_string(),
            "10.0.1.1"
        );
        assert_eq!(
            routed_address(Side::Server, 2, IpVersion::V6)
                .expect("v6")
                .to_string(),
            "fd00:1:2::2"
        );
        assert_eq!(
            router_ip(RouterSide::Server, 3, IpVersion::V4).to_string(),
            "10.1.3.254"
        );
        assert_eq!(
            router_ip(RouterSide::Client, 1, IpVersion::V6).to_string(),
            "fd00:0:1::fe"
        );
    }
}
