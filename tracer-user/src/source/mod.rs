//! Where packets come from: capture files (`pcap`) and the live eBPF tracer (`live`). Both
//! produce `RawPacket`s; everything after that is shared.

pub mod live;
pub mod pcap;

/// Link-layer framing of a packet's bytes, as the pcap LINKTYPE_* registry names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// LINKTYPE_NULL (0): 4-byte host-order address family, then IP.
    Null,
    /// LINKTYPE_LOOP (108): 4-byte network-order address family, then IP.
    Loop,
    /// LINKTYPE_ETHERNET (1), with optional 802.1Q / 802.1ad tags.
    Ethernet,
    /// LINKTYPE_PPP (9): PPP protocol field (with optional HDLC address/control bytes).
    Ppp,
    /// LINKTYPE_RAW (101) and the DLT_RAW values 12 and 14: IPv4 or IPv6 by version nibble.
    Raw,
    /// LINKTYPE_IPV4 (228).
    Ipv4,
    /// LINKTYPE_IPV6 (229).
    Ipv6,
    /// LINKTYPE_LINUX_SLL (113).
    LinuxSll,
    /// LINKTYPE_LINUX_SLL2 (276).
    LinuxSll2,
}

impl LinkType {
    /// Maps a pcap/pcapng link-type number; `None` for types we do not decode.
    pub fn from_linktype(n: u32) -> Option<LinkType> {
        Some(match n {
            0 => LinkType::Null,
            1 => LinkType::Ethernet,
            9 => LinkType::Ppp,
            12 | 14 | 101 => LinkType::Raw,
            108 => LinkType::Loop,
            113 => LinkType::LinuxSll,
            228 => LinkType::Ipv4,
            229 => LinkType::Ipv6,
            276 => LinkType::LinuxSll2,
            _ => return None,
        })
    }

    /// The LINKTYPE_* number written into capture files.
    pub fn linktype_number(self) -> u32 {
        match self {
            LinkType::Null => 0,
            LinkType::Ethernet => 1,
            LinkType::Ppp => 9,
            LinkType::Raw => 101,
            LinkType::Loop => 108,
            LinkType::LinuxSll => 113,
            LinkType::Ipv4 => 228,
            LinkType::Ipv6 => 229,
            LinkType::LinuxSll2 => 276,
        }
    }
}

/// Direction of a packet relative to the capturing interface, where the source knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    #[default]
    Unknown,
    Inbound,
    Outbound,
}

/// One packet as a source hands it over, before any decoding.
#[derive(Clone, Copy, Debug)]
pub struct RawPacket<'a> {
    /// 1-based number of the packet in its source (the frame number tshark shows).
    pub number: u64,
    /// Wall-clock time, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// Interface index within the source (pcapng interface id, or the kernel ifindex live).
    pub iface: u32,
    pub direction: Direction,
    pub link_type: LinkType,
    /// The captured bytes, starting at the link-layer header `link_type` describes.
    pub data: &'a [u8],
    /// The packet's length on the wire (≥ `data.len()` when the capture was truncated).
    pub orig_len: u32,
    /// How many wire packets this record stands for: 1 in capture files; a live egress event
    /// of a GSO batch stands for its `gso_segs` segments. Packet counts add this up.
    pub segments: u32,
}
