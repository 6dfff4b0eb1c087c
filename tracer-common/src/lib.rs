//! Types both sides of the tracer compile: the ring-buffer event layout, the per-CPU counter
//! indices and the filter configuration. Nothing else lives here, so the eBPF object and the
//! collector can never disagree about a byte offset.
#![no_std]

/// Most bytes of the packet copied into an event, counted from the network (IP) header. The
/// programs copy the headers only (IP, IPv6 extension headers, TCP with its options), which is
/// at most this; `EventHeader::cap_len` says how many.
///
/// Enough for the largest IPv4 header (60) plus the largest TCP header (60), and for an IPv6
/// header (40) with common extension headers (up to 92 bytes) plus the largest TCP header.
pub const CAPTURE_LEN: usize = 192;

/// Direction of a traced packet as seen from the traced interface.
pub const DIRECTION_INGRESS: u8 = 0;
pub const DIRECTION_EGRESS: u8 = 1;

/// `EventHeader::flags`: the interface has no L2 header (tun, wireguard); the event's bytes start
/// at the IP header anyway, this only records what the program saw.
pub const FLAG_RAW_IP: u8 = 1 << 0;
/// The packet carries at least one MPTCP option (kind 30). Clear only in `--all-tcp` mode.
pub const FLAG_MPTCP: u8 = 1 << 1;
/// The packet is IPv6.
pub const FLAG_IPV6: u8 = 1 << 2;
/// The event stands for `gso_segs` consecutive pure ACKs of one flow whose only news were their
/// acknowledgements (their DSS option a DATA_ACK only): `ktime_ns` is the first one's time, the
/// headers are the last one's, `skb_len` is their lengths together.
pub const FLAG_FOLDED: u8 = 1 << 3;
/// Not a packet: the flush program's mark (see `mptcp_trc_flush` in the eBPF crate).
/// `ifindex` is the CPU, `skb_len` the flush round, `cap_len` 0.
pub const FLAG_MARK: u8 = 1 << 4;

/// Fixed header of every ring-buffer event. `#[repr(C)]` and padded by hand so the layout is the
/// same in the BPF object and on the host.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventHeader {
    /// `bpf_ktime_get_ns()` (CLOCK_MONOTONIC) when the program ran.
    pub ktime_ns: u64,
    /// `skb->ifindex` of the interface whose hook ran.
    pub ifindex: u32,
    /// `skb->len`: the packet's length from the network header on (the L2 header excluded).
    pub skb_len: u32,
    /// How many bytes of `Event::data` are valid (≤ `CAPTURE_LEN`).
    pub cap_len: u16,
    /// `DIRECTION_INGRESS` or `DIRECTION_EGRESS`.
    pub direction: u8,
    /// `FLAG_*` bits.
    pub flags: u8,
    /// `skb->gso_segs`, saturated to u16: how many wire packets this skb becomes. TC egress
    /// runs before GSO splits TCP's batches, so one egress event can stand for many segments
    /// of at most `skb->gso_size` payload bytes; 0 or 1 for an ordinary packet.
    pub gso_segs: u16,
    pub _pad: u16,
}

/// One ring-buffer event: header plus the packet's first bytes from the network header. A ring
/// record holds the header and the `cap_len` valid bytes only, so it can be shorter than this.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Event {
    pub header: EventHeader,
    pub data: [u8; CAPTURE_LEN],
}

pub const EVENT_SIZE: usize = size_of::<Event>();

/// Each CPU's counters: counts indexed by `counter::*`, at the start of that CPU's `State` (the
/// per-CPU `STATE` map's value), where userspace reads them.
pub type Counters = [u64; counter::COUNT as usize];

/// Indices into `Counters`. The ones every packet or event changes come last: the programs'
/// working memory follows them in `State`, and its most used words start right after them, so
/// that a packet finds them all in a line or two.
pub mod counter {
    /// `bpf_skb_load_bytes` failures or headers that do not fit the packet (malformed).
    pub const LOAD_ERRORS: u32 = 0;
    /// Packets that matched the TCP/MPTCP test but were dropped by the user's filter.
    pub const FILTERED: u32 = 1;
    /// Events written to the ring buffer by the flush program (a batch the reader collected).
    /// The flush program counts in slots of its own: it may interrupt a classifier on its CPU
    /// halfway through an increment.
    pub const FLUSHED_EVENTS: u32 = 2;
    /// Events the flush program lost because the ring buffer was full.
    pub const FLUSHED_RINGBUF_FULL: u32 = 3;
    /// Flushes that found a classifier on their CPU changing the batch, and left it to the
    /// next flush.
    pub const FLUSH_BUSY: u32 = 4;
    /// Events lost because the ring buffer was full when the classifiers wrote them.
    pub const RINGBUF_FULL: u32 = 5;
    /// Events written to the ring buffer by the classifiers (in batches or one by one).
    pub const EVENTS: u32 = 6;
    /// Pure ACKs folded into an earlier ACK's event instead of an event of their own.
    pub const FOLDED_ACKS: u32 = 7;
    /// TCP packets with at least one MPTCP option.
    pub const MPTCP: u32 = 8;
    /// IPv4/IPv6 TCP packets.
    pub const TCP: u32 = 9;
    /// Every packet the classifier ran on.
    pub const PACKETS: u32 = 10;
    pub const COUNT: u32 = 11;
}

/// Bytes of each CPU's `State` (the per-CPU `STATE` map's value). Its layout after the counters
/// is the eBPF crate's (which checks this size at build time); userspace reads the counters.
pub const STATE_BYTES: usize = 9640;

/// Each CPU's `State` as userspace sees it: the counters, then bytes it does not read.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct StateView {
    pub counters: Counters,
    pub private: [u8; STATE_BYTES - size_of::<Counters>()],
}

/// The programs' settings: the eBPF object's read-only global `FILTER`, which userspace sets as
/// it loads the object (before the verifier sees the programs). Zero means "no filter" for each
/// field.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FilterConfig {
    /// Emit every TCP packet, not only those with an MPTCP option.
    pub all_tcp: u8,
    /// `ADDR_ANY`, `ADDR_IPV4` (match `ipv4_addr`) or `ADDR_IPV6` (match `ipv6_addr`). With an
    /// address filter, packets of the other IP version never match.
    pub addr_family: u8,
    /// Fold consecutive pure DATA_ACKs of a flow into one event (`FLAG_FOLDED`).
    pub fold_acks: u8,
    pub _pad: u8,
    /// Keep packets whose source or destination port equals this (host order); 0 = any.
    pub port: u16,
    pub _pad2: u16,
    /// Keep IPv4 packets whose source or destination address is this (the four bytes in wire
    /// order). Used when `addr_family == ADDR_IPV4`.
    pub ipv4_addr: [u8; 4],
    /// Keep IPv6 packets whose source or destination address is this. Used when
    /// `addr_family == ADDR_IPV6`.
    pub ipv6_addr: [u8; 16],
}

/// `FilterConfig::addr_family`: no address filter.
pub const ADDR_ANY: u8 = 0;
/// `FilterConfig::addr_family`: keep IPv4 packets to or from `ipv4_addr`.
pub const ADDR_IPV4: u8 = 4;
/// `FilterConfig::addr_family`: keep IPv6 packets to or from `ipv6_addr`.
pub const ADDR_IPV6: u8 = 6;

#[cfg(feature = "user")]
mod user {
    // SAFETY: plain-old-data, #[repr(C)], no padding the kernel could leave uninitialised that
    // userspace reads as anything but bytes.
    unsafe impl aya::Pod for super::FilterConfig {}
    // SAFETY: as for FilterConfig: plain-old-data, #[repr(C)], read as bytes.
    unsafe impl aya::Pod for super::EventHeader {}
    // SAFETY: as for FilterConfig: u64s then bytes, #[repr(C)] without padding.
    unsafe impl aya::Pod for super::StateView {}
}
