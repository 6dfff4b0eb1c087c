//! MPTCP connections generated from a fuzzer's choices. Random bytes rarely make an MP_JOIN
//! whose token matches a key, or a DSS mapping whose DSN lies near the key's IDSN: here the keys
//! are fixed and their tokens and IDSNs come from the product's own derivation
//! (`analysis::keys`), and every step keeps subflow sequence numbers, data sequence numbers
//! and acknowledgements in line, so the analysis goes deep — handshakes of both versions,
//! joins, mappings with 4- and 8-byte DSNs near the IDSNs and near 2^64, data ACKs, DATA_FIN,
//! address signalling, MP_PRIO, MP_FAIL, MP_FASTCLOSE, MP_TCPRST, resets, retransmissions —
//! while the fuzzer still chooses every number that could go wrong.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use arbitrary::Arbitrary;
use mptcp_tracer::analysis::keys::{KeyMaterial, key_material};

use crate::frame::{self, Segment};

/// Key pairs (client, server) the connections use: a few, so that tokens of earlier
/// connections and later joins meet.
const KEYS: [(u64, u64); 4] = [
    (0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210),
    (1, u64::MAX),
    (0x8000_0000_0000_0000, 0x7fff_ffff_ffff_ffff),
    (0xdead_beef_0000_0001, 0xdead_beef_0000_0001),
];
/// Subflows per scenario (each has its own address pair).
const FLOWS: usize = 4;
const SERVER_PORT: u16 = 443;

mod flag {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
}

mod subtype {
    pub const CAPABLE: u8 = 0;
    pub const JOIN: u8 = 1;
    pub const DSS: u8 = 2;
    pub const ADD_ADDR: u8 = 3;
    pub const REMOVE_ADDR: u8 = 4;
    pub const PRIO: u8 = 5;
    pub const FAIL: u8 = 6;
    pub const FASTCLOSE: u8 = 7;
    pub const TCPRST: u8 = 8;
}

/// What the fuzzer decides.
#[derive(Arbitrary, Debug)]
pub struct Scenario {
    keys: u8,
    /// MPTCP version 1 (RFC 8684) or 0 (RFC 6824).
    v1: bool,
    ipv6: bool,
    /// DSS mappings carry a checksum.
    checksums: bool,
    steps: Vec<Step>,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Side {
    Client,
    Server,
}

impl Side {
    fn index(self) -> usize {
        match self {
            Side::Client => 0,
            Side::Server => 1,
        }
    }

    fn other(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
}

/// A data sequence number, relative to what the connection expects.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Dsn {
    /// The next byte of the side's data.
    Next,
    Behind(u16),
    Ahead(u16),
    /// `idsn + n`: near the start, whatever was sent.
    FromIdsn(u16),
    /// `2^64 - n`: ranges that cross the end of the sequence space.
    BeforeWrap(u16),
    Any(u64),
}

#[derive(Arbitrary, Debug)]
enum Step {
    /// MP_CAPABLE SYN, SYN/ACK and ACK (v1: with data on the ACK when `data` is set).
    Capable {
        flow: u8,
        syn_only: bool,
        data: Option<u16>,
    },
    /// MP_JOIN SYN (with the server's token, or another), SYN/ACK and ACK.
    Join {
        flow: u8,
        backup: bool,
        wrong_token: bool,
        syn_only: bool,
    },
    /// Payload with a DSS mapping (and a data ACK).
    Data {
        flow: u8,
        side: Side,
        len: u16,
        dsn: Dsn,
        dsn64: bool,
        /// Mapping's subflow sequence number off by this much.
        ssn_skew: i8,
        /// Mapping's data-level length differs from the payload's.
        map_len: Option<u16>,
        ack: Option<(Dsn, bool)>,
        data_fin: bool,
    },
    /// A pure ACK with a data ACK.
    DataAck {
        flow: u8,
        side: Side,
        ack: Dsn,
        ack64: bool,
    },
    /// DATA_FIN on a mapping of its own (length 1, no payload), with a data ACK.
    DataFin {
        flow: u8,
        side: Side,
        dsn: Dsn,
    },
    AddAddr {
        flow: u8,
        side: Side,
        id: u8,
        v6: bool,
        port: Option<u16>,
        echo: bool,
    },
    RemoveAddr {
        flow: u8,
        side: Side,
        ids: Vec<u8>,
    },
    Prio {
        flow: u8,
        side: Side,
        backup: bool,
        id: Option<u8>,
    },
    Fail {
        flow: u8,
        side: Side,
        dsn: Dsn,
    },
    FastClose {
        flow: u8,
        side: Side,
        wrong_key: bool,
    },
    TcpRst {
        flow: u8,
        side: Side,
        flags: u8,
        reason: u8,
    },
    Fin {
        flow: u8,
        side: Side,
    },
    Rst {
        flow: u8,
        side: Side,
    },
    /// Sends an earlier frame again.
    Retransmit {
        back: u8,
    },
    /// Any MPTCP option bytes after a data ACK.
    RawOption {
        flow: u8,
        side: Side,
        bytes: Vec<u8>,
    },
}

/// One subflow's sequence state: ISNs, and the next relative sequence number, per side.
#[derive(Clone, Copy)]
struct Flow {
    isn: [u32; 2],
    next: [u32; 2],
}

/// A built scenario: the frames (captured bytes, wire length), in capture order.
pub struct Frames {
    pub frames: Vec<(Vec<u8>, u32)>,
}

struct Builder {
    version: u8,
    ipv6: bool,
    checksums: bool,
    key: [u64; 2],
    material: [KeyMaterial; 2],
    /// Next DSN of each side's data.
    data_next: [u64; 2],
    flows: [Flow; FLOWS],
    frames: Vec<(Vec<u8>, u32)>,
}

impl Scenario {
    /// The frames of the scenario, at most `max_frames` of them.
    pub fn build(&self, max_frames: usize) -> Frames {
        let (client, server) = KEYS[usize::from(self.keys) % KEYS.len()];
        let version = u8::from(self.v1);
        let material = [key_material(version, client), key_material(version, server)];
        let mut flows = [Flow {
            isn: [0, 0],
            next: [1, 1],
        }; FLOWS];
        for (i, flow) in flows.iter_mut().enumerate() {
            // Some ISNs near 2^32, so subflow sequence numbers wrap too.
            let i = i as u32;
            flow.isn = [0xffff_f000_u32.wrapping_add(i * 0x1111), 1000 + i * 7];
        }
        let mut builder = Builder {
            version,
            ipv6: self.ipv6,
            checksums: self.checksums,
            key: [client, server],
            material,
            data_next: [
                material[0].idsn.wrapping_add(1),
                material[1].idsn.wrapping_add(1),
            ],
            flows,
            frames: Vec::new(),
        };
        for step in &self.steps {
            if builder.frames.len() >= max_frames {
                break;
            }
            builder.step(step);
        }
        builder.frames.truncate(max_frames);
        Frames {
            frames: builder.frames,
        }
    }
}

impl Builder {
    fn step(&mut self, step: &Step) {
        match *step {
            Step::Capable {
                flow,
                syn_only,
                data,
            } => self.capable(flow, syn_only, data),
            Step::Join {
                flow,
                backup,
                wrong_token,
                syn_only,
            } => self.join(flow, backup, wrong_token, syn_only),
            Step::Data {
                flow,
                side,
                len,
                dsn,
                dsn64,
                ssn_skew,
                map_len,
                ack,
                data_fin,
            } => {
                let len = len % 1461;
                let dsn_value = self.dsn(side, dsn);
                let relative = self.flow(flow).next[side.index()];
                let mut options = Vec::new();
                let ack = ack.map(|(ack, wide)| (self.dsn(side.other(), ack), wide));
                let mapping = Mapping {
                    dsn: dsn_value,
                    wide: dsn64,
                    ssn: relative.wrapping_add_signed(i32::from(ssn_skew)),
                    len: map_len.unwrap_or(len),
                };
                self.dss(&mut options, ack, Some(mapping), data_fin);
                self.send(flow, side, flag::ACK | flag::PSH, options, len);
                self.data_next[side.index()] = dsn_value.wrapping_add(u64::from(len));
            }
            Step::DataAck {
                flow,
                side,
                ack,
                ack64,
            } => {
                let mut options = Vec::new();
                let ack = self.dsn(side.other(), ack);
                self.dss(&mut options, Some((ack, ack64)), None, false);
                self.send(flow, side, flag::ACK, options, 0);
            }
            Step::DataFin { flow, side, dsn } => {
                let mut options = Vec::new();
                let dsn = self.dsn(side, dsn);
                let ack = self.data_next[side.other().index()];
                let relative = self.flow(flow).next[side.index()];
                let mapping = Mapping {
                    dsn,
                    wide: true,
                    ssn: relative,
                    len: 1,
                };
                self.dss(&mut options, Some((ack, true)), Some(mapping), true);
                self.send(flow, side, flag::ACK, options, 0);
            }
            _ => self.signal(step),
        }
    }

    /// Address signalling, failures, closes and raw options: each on a pure ACK.
    fn signal(&mut self, step: &Step) {
        let mut options = Vec::new();
        let (flow, side, flags) = match *step {
            Step::AddAddr {
                flow,
                side,
                id,
                v6,
                port,
                echo,
            } => {
                // v0 (RFC 6824) has the IP version where v1 has the echo flag.
                let low = match (self.version, v6) {
                    (0, false) => 4,
                    (0, true) => 6,
                    _ => u8::from(echo),
                };
                options.extend([subtype::ADD_ADDR << 4 | low, id]);
                if v6 {
                    options.extend(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 9, u16::from(id)).octets());
                } else {
                    options.extend([10, 9, 0, id]);
                }
                if let Some(port) = port {
                    options.extend(port.to_be_bytes());
                }
                if !echo && self.version == 1 {
                    options.extend(0x1122_3344_5566_7788_u64.to_be_bytes());
                }
                (flow, side, flag::ACK)
            }
            Step::RemoveAddr {
                flow,
                side,
                ref ids,
            } => {
                options.push(subtype::REMOVE_ADDR << 4);
                options.extend(ids.iter().take(36));
                (flow, side, flag::ACK)
            }
            Step::Prio {
                flow,
                side,
                backup,
                id,
            } => {
                options.push(subtype::PRIO << 4 | u8::from(backup));
                options.extend(id);
                (flow, side, flag::ACK)
            }
            Step::Fail { flow, side, dsn } => {
                options.extend([subtype::FAIL << 4, 0]);
                options.extend(self.dsn(side, dsn).to_be_bytes());
                (flow, side, flag::ACK)
            }
            Step::FastClose {
                flow,
                side,
                wrong_key,
            } => {
                options.extend([subtype::FASTCLOSE << 4, 0]);
                let key = self.key[side.other().index()] ^ u64::from(wrong_key);
                options.extend(key.to_be_bytes());
                (flow, side, flag::ACK | flag::RST)
            }
            Step::TcpRst {
                flow,
                side,
                flags,
                reason,
            } => {
                options.extend([subtype::TCPRST << 4 | (flags & 0x0f), reason]);
                (flow, side, flag::RST)
            }
            Step::Fin { flow, side } => (flow, side, flag::FIN | flag::ACK),
            Step::Rst { flow, side } => (flow, side, flag::RST),
            Step::Retransmit { back } => {
                let back = usize::from(back);
                if back < self.frames.len() {
                    let frame = self.frames[self.frames.len() - 1 - back].clone();
                    self.frames.push(frame);
                }
                return;
            }
            Step::RawOption {
                flow,
                side,
                ref bytes,
            } => {
                let ack = self.data_next[side.other().index()];
                let mut all = Vec::new();
                self.dss(&mut all, Some((ack, false)), None, false);
                all.extend(bytes.iter().take(frame::MAX_OPTIONS_LEN - all.len()));
                self.send(flow, side, flag::ACK, all, 0);
                return;
            }
            _ => return,
        };
        let mut all = Vec::new();
        if !options.is_empty() {
            option(&mut all, &options);
        }
        self.send(flow, side, flags, all, 0);
    }

    fn flow(&self, flow: u8) -> &Flow {
        &self.flows[usize::from(flow) % FLOWS]
    }

    fn dsn(&self, side: Side, dsn: Dsn) -> u64 {
        let next = self.data_next[side.index()];
        match dsn {
            Dsn::Next => next,
            Dsn::Behind(n) => next.wrapping_sub(u64::from(n)),
            Dsn::Ahead(n) => next.wrapping_add(u64::from(n)),
            Dsn::FromIdsn(n) => self.material[side.index()].idsn.wrapping_add(u64::from(n)),
            Dsn::BeforeWrap(n) => 0u64.wrapping_sub(u64::from(n)),
            Dsn::Any(n) => n,
        }
    }

    fn capable(&mut self, flow: u8, syn_only: bool, data: Option<u16>) {
        let [client, server] = self.key;
        // A (checksums) and H (HMAC-SHA256 for v1, SHA-1 for v0) flags.
        let flags = if self.checksums { 0x80 } else { 0 } | 0x01;
        let head = [subtype::CAPABLE << 4 | self.version, flags];
        let mut syn = head.to_vec();
        if self.version == 0 {
            syn.extend(client.to_be_bytes());
        }
        self.handshake_packet(flow, Side::Client, flag::SYN, &syn, 0);
        if syn_only {
            return;
        }
        let mut syn_ack = head.to_vec();
        syn_ack.extend(server.to_be_bytes());
        self.handshake_packet(flow, Side::Server, flag::SYN | flag::ACK, &syn_ack, 0);
        let mut ack = head.to_vec();
        ack.extend(client.to_be_bytes());
        ack.extend(server.to_be_bytes());
        let len = match data {
            Some(len) if self.version == 1 => {
                let len = len % 1461;
                ack.extend(len.to_be_bytes());
                if self.checksums {
                    ack.extend([0, 0]);
                }
                len
            }
            _ => 0,
        };
        self.handshake_packet(flow, Side::Client, flag::ACK, &ack, len);
        let client_data = &mut self.data_next[0];
        *client_data = client_data.wrapping_add(u64::from(len));
    }

    fn join(&mut self, flow: u8, backup: bool, wrong_token: bool, syn_only: bool) {
        let token = self.material[1].token ^ u32::from(wrong_token);
        let head = subtype::JOIN << 4 | u8::from(backup);
        let id = flow % FLOWS as u8;
        let mut syn = vec![head, id];
        syn.extend(token.to_be_bytes());
        syn.extend(0x0102_0304_u32.to_be_bytes());
        self.handshake_packet(flow, Side::Client, flag::SYN, &syn, 0);
        if syn_only {
            return;
        }
        let mut syn_ack = vec![head, id];
        syn_ack.extend(0xa1a2_a3a4_a5a6_a7a8_u64.to_be_bytes());
        syn_ack.extend(0x0506_0708_u32.to_be_bytes());
        self.handshake_packet(flow, Side::Server, flag::SYN | flag::ACK, &syn_ack, 0);
        let mut ack = vec![subtype::JOIN << 4, 0];
        ack.extend([0x5a; 20]);
        self.handshake_packet(flow, Side::Client, flag::ACK, &ack, 0);
    }

    /// A handshake packet: a SYN restarts the side's sequence numbers at its ISN.
    fn handshake_packet(&mut self, flow: u8, side: Side, flags: u8, body: &[u8], len: u16) {
        if flags & flag::SYN != 0 {
            self.flows[usize::from(flow) % FLOWS].next[side.index()] = 0;
        }
        let mut options = Vec::new();
        option(&mut options, body);
        self.send(flow, side, flags, options, len);
    }

    fn dss(
        &self,
        options: &mut Vec<u8>,
        ack: Option<(u64, bool)>,
        mapping: Option<Mapping>,
        data_fin: bool,
    ) {
        let mut flags = u8::from(data_fin) << 4;
        let mut body = Vec::new();
        if let Some((ack, wide)) = ack {
            flags |= 0x01;
            if wide {
                flags |= 0x02;
                body.extend(ack.to_be_bytes());
            } else {
                body.extend((ack as u32).to_be_bytes());
            }
        }
        if let Some(mapping) = mapping {
            flags |= 0x04;
            if mapping.wide {
                flags |= 0x08;
                body.extend(mapping.dsn.to_be_bytes());
            } else {
                body.extend((mapping.dsn as u32).to_be_bytes());
            }
            body.extend(mapping.ssn.to_be_bytes());
            body.extend(mapping.len.to_be_bytes());
            if self.checksums {
                body.extend([0xc5, 0xc5]);
            }
        }
        let mut value = vec![subtype::DSS << 4, flags];
        value.extend(body);
        option(options, &value);
    }

    /// Sends a segment on `flow` from `side`, with the sequence numbers the flow is at.
    fn send(&mut self, flow: u8, side: Side, flags: u8, options: Vec<u8>, len: u16) {
        let index = usize::from(flow) % FLOWS;
        let state = self.flows[index];
        let (me, peer) = (side.index(), side.other().index());
        let (client, server) = self.addresses(index);
        let (src, dst, src_port, dst_port) = match side {
            Side::Client => (client, server, 40_000 + index as u16, SERVER_PORT),
            Side::Server => (server, client, SERVER_PORT, 40_000 + index as u16),
        };
        let segment = Segment {
            src,
            dst,
            src_port,
            dst_port,
            seq: state.isn[me].wrapping_add(state.next[me]),
            ack: if flags & flag::ACK != 0 {
                state.isn[peer].wrapping_add(state.next[peer])
            } else {
                0
            },
            flags,
            options,
            payload_len: len,
        };
        self.frames.push(frame::ethernet(&segment));
        // SYN and FIN take a sequence number.
        let consumed = u32::from(len) + u32::from(flags & (flag::SYN | flag::FIN) != 0);
        let next = &mut self.flows[index].next[me];
        *next = next.wrapping_add(consumed);
    }

    fn addresses(&self, flow: usize) -> (IpAddr, IpAddr) {
        let flow = flow as u8;
        if self.ipv6 {
            let client = Ipv6Addr::new(0xfd00, 0, 0, u16::from(flow), 0, 0, 0, 1);
            (
                client.into(),
                Ipv6Addr::new(0xfd00, 0, 0, 0xff, 0, 0, 0, 2).into(),
            )
        } else {
            let client = Ipv4Addr::new(10, 0, flow, 1);
            (client.into(), Ipv4Addr::new(10, 0, 255, 2).into())
        }
    }
}

#[derive(Clone, Copy)]
struct Mapping {
    dsn: u64,
    wide: bool,
    ssn: u32,
    len: u16,
}

/// Appends one MPTCP option (kind 30, length, `value`), if it fits in a TCP header.
fn option(options: &mut Vec<u8>, value: &[u8]) {
    let len = value.len() + 2;
    if options.len() + len <= frame::MAX_OPTIONS_LEN {
        options.extend([30, len as u8]);
        options.extend_from_slice(value);
    }
}
