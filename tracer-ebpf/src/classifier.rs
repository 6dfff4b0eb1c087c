//! `mptcp_trc_in` (ingress) and `mptcp_trc_eg` (egress), names nobody else uses (a stale filter
//! of ours is recognised by them): find TCP segments that carry an MPTCP option (kind 30) and copy
//! their headers (IP, IPv6 extension headers, TCP with options; at most `CAPTURE_LEN` bytes from
//! the network header) into the ring buffer.
//!
//! Budget: the programs run on every packet of the traced interfaces. A packet costs two lookups
//! (per-CPU counters and scratch) and, for the layout nearly every packet has (untagged
//! Ethernet, IPv4 without options or IPv6 without extension headers, TCP headers in the skb's
//! linear area), a parse in place: a handful of loads, no helper call, nothing copied. Only a
//! packet that becomes an event has its headers copied, with one `bpf_skb_load_bytes`, then
//! `bpf_ktime_get_ns` (~18 ns in this VM), one `bpf_ringbuf_query` and one `bpf_ringbuf_output`
//! of a record that ends with the TCP header. Every other packet (VLAN tags, raw IP, IP
//! options, IPv6 extension headers, headers outside the linear area, malformed headers) takes
//! the general path: one `bpf_skb_load_bytes` of the frame's first bytes into the per-CPU
//! scratch (a second one behind a VLAN tag or without L2 header, or for long option lists),
//! and a parse of that copy, so that the verifier sees small bounded loops without helper calls
//! in them.

use core::ptr;

use aya_ebpf::{
    bindings::{
        __sk_buff, BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP, TC_ACT_UNSPEC,
    },
    helpers::{bpf_ktime_get_ns, bpf_skb_load_bytes},
    macros::{classifier, map},
    maps::{Array, PerCpuArray, RingBuf},
    programs::TcContext,
};
use tracer_common::{
    ADDR_IPV4, ADDR_IPV6, CAPTURE_LEN, Counters, DIRECTION_EGRESS, DIRECTION_INGRESS, Event,
    EventHeader, FLAG_IPV6, FLAG_MPTCP, FLAG_RAW_IP, FilterConfig, counter,
};

/// The classifiers' return value. `TC_ACT_UNSPEC` is also `TCX_NEXT` (-1): with TCX the next
/// program in the chain runs (`TC_ACT_PIPE` would end the chain there), with a clsact filter in
/// direct-action mode the next filter runs. Either way the packet's fate is not ours to decide.
const CONTINUE: i32 = TC_ACT_UNSPEC;

/// Ring buffer size: ~75 000 events of the largest size (`size_of::<Event>()` + the 8-byte
/// record header), ~150 000 of a usual IPv4 MPTCP packet's (80 bytes of headers).
const RING_BYTES: u32 = 16 << 20;
/// Wake the reader when the queue crosses this much; below it the reader's timer poll (tens of
/// ms) collects the events. Waking per event (the default) costs an irq_work self-IPI per packet:
/// microseconds in a VM. Waking on every event *above* the threshold is just as bad while the
/// reader is behind, so only the event that crosses it asks.
const WAKEUP_BYTES: u64 = 256 << 10;

const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
/// Ethernet header (14) + two VLAN tags (2 × 4): what the first load reads.
const L2_PEEK: usize = 22;

const IPPROTO_TCP: u8 = 6;
const IPV6_HOPOPTS: u8 = 0;
const IPV6_ROUTING: u8 = 43;
const IPV6_FRAGMENT: u8 = 44;
const IPV6_AH: u8 = 51;
const IPV6_DSTOPTS: u8 = 60;
const IPV6_MOBILITY: u8 = 135;
/// IPv6 extension headers walked before giving up (a TCP segment normally has none).
const MAX_IPV6_EXT: usize = 6;

/// Shortest IP packet that can hold a TCP header (IPv4 20 + TCP 20).
const MIN_IP_TCP: u32 = 40;
const TCP_HDR_MIN: usize = 20;
const TCP_HDR_MAX: usize = 60;
/// Bytes from the network header the first load takes (see `inspect`).
const FIRST_LOAD: usize = 60;
/// What the first load takes when the skb's linear area holds that much: enough for an IPv4
/// header and a full TCP header, or an IPv6 header and 60 bytes of TCP header.
const FIRST_LOAD_MAX: usize = 100;
const ETH_HLEN: usize = 14;
const TCPOPT_EOL: u8 = 0;
const TCPOPT_NOP: u8 = 1;
const TCPOPT_MPTCP: u8 = 30;
const TCPOPT_TIMESTAMP: u8 = 8;
const TCPOLEN_TIMESTAMP: u8 = 10;
/// At most 40 option bytes, so at most 40 options (all NOPs).
const MAX_TCP_OPTIONS: usize = 40;

#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(RING_BYTES, 0);

#[map]
static COUNTERS: PerCpuArray<Counters> = PerCpuArray::with_max_entries(1, 0);

#[map]
static CONFIG: Array<FilterConfig> = Array::with_max_entries(1, 0);

/// Per-CPU working memory: the event is assembled here before `bpf_ringbuf_output` copies it,
/// and a map value (unlike the stack) can be indexed with a bounded variable offset.
#[repr(C)]
struct Scratch {
    event: Event,
    /// Room after `event.data`: `byte` reads any index `& 0xff` without a bounds branch the
    /// verifier would have to follow, and `load_range` may write up to `from + len` ≤
    /// CAPTURE_LEN + 256 bytes, as far as the verifier can tell.
    _slack: [u8; 256],
    /// Offsets go through here (`forget`) where parse paths join.
    cursor: u32,
}

/// Returns `value` after a round trip through map memory, so the verifier no longer knows which
/// path computed it. Where several paths join (NOP vs. other option, the IPv6 extension header
/// kinds, IPv4 vs. IPv6), the joined states then compare equal and are verified once instead of
/// once per path — without it the option walk alone explodes past the 1M-instruction limit. The
/// caller bounds the result again before using it.
#[inline(always)]
fn forget(scratch: &mut Scratch, value: usize) -> usize {
    // Every offset `forget` sees is < 256. The mask survives optimisation (the compiler cannot
    // see through the volatile read) and bounds every later `data + offset + small constant`
    // inside `Scratch` for the verifier, however the compiler rearranges the comparisons after
    // it.
    launder(scratch, value) & 0xff
}

/// `forget` without the mask, for a value that is bounded again before any use.
#[inline(always)]
fn launder(scratch: &mut Scratch, value: usize) -> usize {
    // SAFETY: a field of the scratch value; volatile so the compiler keeps the round trip.
    unsafe {
        ptr::write_volatile(&raw mut scratch.cursor, value as u32);
        ptr::read_volatile(&raw const scratch.cursor) as usize
    }
}

#[map]
static SCRATCH: PerCpuArray<Scratch> = PerCpuArray::with_max_entries(1, 0);

#[classifier]
pub fn mptcp_trc_in(ctx: TcContext) -> i32 {
    observe(&ctx, DIRECTION_INGRESS);
    CONTINUE
}

#[classifier]
pub fn mptcp_trc_eg(ctx: TcContext) -> i32 {
    observe(&ctx, DIRECTION_EGRESS);
    CONTINUE
}

/// Why a packet produced no event.
enum Skip {
    /// Not IPv4/IPv6 TCP (or a non-first fragment): nothing to count.
    NotTcp,
    /// A load failed or a header does not fit the packet/capture.
    Malformed,
}

#[inline(always)]
fn observe(ctx: &TcContext, direction: u8) {
    // One lookup per packet for all counters (per-CPU, so plain adds).
    let Some(counters) = COUNTERS.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: the per-CPU counters; TC programs run with bottom halves disabled, so nothing else
    // on this CPU touches them meanwhile.
    let counters = unsafe { &mut *counters };
    bump(counters, counter::PACKETS);
    if let Err(Skip::Malformed) = inspect(ctx.skb.skb, direction, counters) {
        bump(counters, counter::LOAD_ERRORS);
    }
}

#[inline(always)]
fn bump(counters: &mut Counters, index: u32) {
    if let Some(value) = counters.get_mut(index as usize) {
        *value += 1;
    }
}

#[inline(always)]
fn be16(hi: u8, lo: u8) -> u16 {
    u16::from_be_bytes([hi, lo])
}

#[inline(always)]
fn is_vlan(ethertype: u16) -> bool {
    ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD
}

#[inline(always)]
fn is_ip(ethertype: u16) -> bool {
    ethertype == ETH_P_IP || ethertype == ETH_P_IPV6
}

/// How many bytes from the network header the first load takes: as many of `FIRST_LOAD_MAX` as
/// the skb's linear area holds (in steps of 4, the unit of IP and TCP header lengths), at least
/// `FIRST_LOAD`. Past the linear area `bpf_skb_load_bytes` walks page fragments, which costs
/// more than a second load when one is needed; a TCP skb built by the stack holds exactly its
/// headers there, so this one load usually takes all of them.
#[inline(always)]
fn first_load_len(skb: *mut __sk_buff) -> usize {
    // SAFETY: the context pointer the kernel passed to the program.
    let (start, end) = unsafe { ((*skb).data as usize, (*skb).data_end as usize) };
    let mut len = FIRST_LOAD_MAX;
    while len > FIRST_LOAD {
        if start + ETH_HLEN + len <= end {
            return len;
        }
        len -= 4;
    }
    FIRST_LOAD
}

/// Reads byte `i` of the captured bytes. Callers keep `i < cap_len` for meaning; the mask keeps
/// the access inside the scratch value for the verifier without a branch.
#[inline(always)]
fn byte(data: *const u8, i: usize) -> u8 {
    // SAFETY: `data` is `Scratch::event.data`; 256 bytes from it stay inside `Scratch`.
    unsafe { *data.add(i & 0xff) }
}

/// Length of the link-layer header and the ethertype of what follows it.
///
/// TC runs with `skb->data` at the MAC header; devices without one (tun, wireguard: ARPHRD_NONE)
/// start at the IP header. A frame is Ethernet when its ethertype field is a VLAN tag or equals
/// `skb->protocol`; otherwise it is raw IP when the version nibble agrees with `skb->protocol`.
/// (Known blind spot: a raw IPv4 packet from 8.0.0.0/16 looks like an Ethernet frame.)
#[inline(always)]
fn link_layer(l2: &[u8; L2_PEEK], protocol: u16) -> Option<(u32, u16, bool)> {
    let ethertype = be16(l2[12], l2[13]);
    if is_vlan(ethertype) {
        let inner = be16(l2[16], l2[17]);
        if is_vlan(inner) {
            return Some((22, be16(l2[20], l2[21]), false));
        }
        return Some((18, inner, false));
    }
    if ethertype == protocol && is_ip(ethertype) {
        return Some((14, ethertype, false));
    }
    let version = l2[0] >> 4;
    if (version == 4 && protocol == ETH_P_IP) || (version == 6 && protocol == ETH_P_IPV6) {
        return Some((0, protocol, true));
    }
    if is_ip(ethertype) {
        return Some((14, ethertype, false));
    }
    None
}

/// Where a TCP segment's headers lie, counted from the network header.
struct Headers {
    /// Length of the packet from the network header.
    net_len: u32,
    tcp_off: usize,
    /// End of the TCP options: the headers end here, and so does the event.
    options_end: usize,
    ipv6: bool,
    raw_ip: bool,
    mptcp: bool,
    /// Whether `[0, options_end)` is in the scratch data already.
    loaded: bool,
}

#[inline(always)]
fn inspect(skb: *mut __sk_buff, direction: u8, counters: &mut Counters) -> Result<(), Skip> {
    // SAFETY: the context pointer the kernel passed to the program.
    let (skb_len, protocol) = unsafe { ((*skb).len, u16::from_be((*skb).protocol as u16)) };
    if skb_len < MIN_IP_TCP {
        return Err(Skip::NotTcp);
    }
    let scratch = SCRATCH.get_ptr_mut(0).ok_or(Skip::Malformed)?;
    // SAFETY: the per-CPU scratch slot, not shared with anything running on this CPU meanwhile.
    let scratch = unsafe { &mut *scratch };
    let headers = match linear_headers(skb, scratch, protocol) {
        Some(headers) => {
            bump(counters, counter::TCP);
            headers
        }
        // Counts the TCP segments it finds itself: also those whose headers it cannot load.
        None => loaded_headers(skb, scratch, skb_len, protocol, counters)?,
    };
    if headers.mptcp {
        bump(counters, counter::MPTCP);
    }
    let config = CONFIG.get(0).ok_or(Skip::Malformed)?;
    if !headers.mptcp && config.all_tcp == 0 {
        return Ok(());
    }
    // Merges the two paths' offsets for the verifier (both < 256).
    let tcp_off = forget(scratch, headers.tcp_off);
    let options_end = forget(scratch, headers.options_end);
    let data = scratch.event.data.as_mut_ptr();
    if !headers.loaded {
        load_range(skb, ETH_HLEN as u32, data, 0, options_end)?;
    }
    if !filter_matches(config, data, headers.ipv6, tcp_off) {
        bump(counters, counter::FILTERED);
        return Ok(());
    }
    emit(skb, scratch, direction, &headers, options_end, counters);
    Ok(())
}

/// The fast path, for the layout nearly every packet has: an untagged Ethernet header, IPv4
/// without options or IPv6 without extension headers, and a TCP header with its options, all in
/// the skb's linear area (where the stack builds its headers, and where GRO or a veth leaves
/// them). Read in place, without copying anything: a packet that becomes no event costs a few
/// loads. `None` for anything else, including malformed headers: `loaded_headers` then takes
/// the packet from the start with all its checks and error counts.
#[inline(always)]
fn linear_headers(skb: *mut __sk_buff, scratch: &mut Scratch, protocol: u16) -> Option<Headers> {
    // SAFETY: the context pointer the kernel passed to the program.
    let (start, end, skb_len) =
        unsafe { ((*skb).data as usize, (*skb).data_end as usize, (*skb).len) };
    // Ethernet + IPv4 + TCP without options; the IPv6 branch checks its own 20 more.
    if start + ETH_HLEN + 40 > end {
        return None;
    }
    let frame = start as *const u8;
    // SAFETY (all reads from `frame` below): offsets below the length checked against `end`.
    let ethertype = unsafe { be16(*frame.add(12), *frame.add(13)) };
    if ethertype != protocol {
        return None;
    }
    let ipv6 = match ethertype {
        ETH_P_IP => {
            let (version_ihl, fragment, next) = unsafe {
                (
                    *frame.add(14),
                    be16(*frame.add(20), *frame.add(21)),
                    *frame.add(23),
                )
            };
            // A non-first fragment, IP options, or not TCP: the general path decides.
            if version_ihl != 0x45 || next != IPPROTO_TCP || fragment & 0x1fff != 0 {
                return None;
            }
            false
        }
        ETH_P_IPV6 => {
            if start + ETH_HLEN + 60 > end {
                return None;
            }
            if unsafe { *frame.add(14) } >> 4 != 6 || unsafe { *frame.add(20) } != IPPROTO_TCP {
                return None;
            }
            true
        }
        _ => return None,
    };
    let tcp_off = if ipv6 { 40 } else { 20 };
    let tcp = start + ETH_HLEN + tcp_off;
    // Read again through a volatile: the compiler would otherwise drop a check it can derive
    // from the earlier ones, and the verifier needs it for the reads behind `tcp`.
    // SAFETY: a local.
    let end = unsafe { ptr::read_volatile(&raw const end) };
    if tcp + TCP_HDR_MIN > end {
        return None;
    }
    // SAFETY: checked against `end` just above.
    let header_len = usize::from(unsafe { *((tcp + 12) as *const u8) } >> 4) * 4;
    if header_len < TCP_HDR_MIN || tcp + header_len > end {
        return None;
    }
    Some(Headers {
        net_len: skb_len - ETH_HLEN as u32,
        tcp_off,
        options_end: tcp_off + header_len,
        ipv6,
        raw_ip: false,
        mptcp: linear_has_mptcp_option(scratch, tcp, header_len, end),
        loaded: false,
    })
}

/// `has_mptcp_option` on the TCP header in place at `tcp` (`header_len` bytes, checked to end
/// before `end`): the same walk, each read checked against the packet's end for the verifier,
/// stepping with the same `option_step`. Two loops on purpose: one walk generic over how it
/// reads a byte (a closure per path) verified at 53–58 k instructions per program, past the
/// 50 k budget; the two loops take 33 k.
#[inline(always)]
fn linear_has_mptcp_option(
    scratch: &mut Scratch,
    tcp: usize,
    header_len: usize,
    end: usize,
) -> bool {
    let mut off = TCP_HDR_MIN;
    // SAFETY: a local; see `linear_headers`.
    let end = unsafe { ptr::read_volatile(&raw const end) };
    if header_len >= TCP_HDR_MIN + 12 && tcp + TCP_HDR_MIN + 4 <= end {
        // SAFETY: checked against `end` just above.
        let first = unsafe { ptr::read_unaligned((tcp + TCP_HDR_MIN) as *const [u8; 4]) };
        if first == [TCPOPT_NOP, TCPOPT_NOP, TCPOPT_TIMESTAMP, TCPOLEN_TIMESTAMP] {
            off += 2 + usize::from(TCPOLEN_TIMESTAMP);
        }
    }
    for _ in 0..MAX_TCP_OPTIONS {
        if off >= header_len {
            return false;
        }
        // `off` < 60 here; the mask tells the verifier so.
        let at = tcp + (off & 0x3f);
        if at + 1 > end {
            return false;
        }
        // SAFETY: checked against `end` just above.
        let kind = unsafe { *(at as *const u8) };
        if kind == TCPOPT_MPTCP {
            return true;
        }
        let Some(step) = option_step(kind, || {
            // SAFETY: checked against `end` first.
            (at + 2 <= end).then(|| unsafe { *((at + 1) as *const u8) })
        }) else {
            return false;
        };
        // Through map memory, as in `has_mptcp_option`, so that the verifier's states at the
        // top of the loop compare equal.
        off = launder(scratch, off + step);
    }
    false
}

/// The general path: link layers other than untagged Ethernet (VLAN tags, raw IP), IP options,
/// IPv6 extension headers, headers outside the linear area. Loads the headers into the scratch
/// data and parses them there.
#[inline(always)]
fn loaded_headers(
    skb: *mut __sk_buff,
    scratch: &mut Scratch,
    skb_len: u32,
    protocol: u16,
    counters: &mut Counters,
) -> Result<Headers, Skip> {
    let data = scratch.event.data.as_mut_ptr();
    // One load takes the frame from its start so that, behind an untagged Ethernet header (the
    // usual case), the network header lands right at `event.data`: the L2 bytes go over the end
    // of the event header, which is written last. Other link layers load the IP header again.
    // SAFETY: `data - ETH_HLEN` is inside `Scratch::event.header`.
    let frame = unsafe { data.sub(ETH_HLEN) };
    let wanted = ETH_HLEN as u32 + first_load_len(skb) as u32;
    let peek = if skb_len < wanted { skb_len } else { wanted };
    // The same length with bounds the verifier sees (skb_len ≥ 40 was checked above).
    let peek = ((peek - 1) & 0xff) + 1;
    // SAFETY: `peek` ≤ 256 bytes from `frame`, inside `Scratch`.
    if unsafe { bpf_skb_load_bytes(skb.cast(), 0, frame.cast(), peek) } != 0 {
        return Err(Skip::Malformed);
    }
    // SAFETY: L2_PEEK ≤ 40 ≤ `peek` bytes from `frame` were loaded.
    let link = unsafe { &*frame.cast::<[u8; L2_PEEK]>() };
    let (l2_len, l3, raw_ip) = link_layer(link, protocol).ok_or(Skip::NotTcp)?;
    if !is_ip(l3) {
        return Err(Skip::NotTcp);
    }
    let net_len = skb_len - l2_len;
    if net_len < MIN_IP_TCP {
        return Err(Skip::NotTcp);
    }
    let cap = if net_len > CAPTURE_LEN as u32 {
        CAPTURE_LEN as u32
    } else {
        net_len
    };

    // Load the headers only: for a TSO/GRO packet the payload after them sits in page
    // fragments, and copying it for every packet costs more than the parse. The first load
    // covers an IPv4 header with a fixed TCP header and 20 option bytes, or an IPv6 header with
    // a fixed TCP header (more where the linear area holds more); the rest of the headers come
    // as needed; the payload never.
    let cap = cap as usize;
    let first = if l2_len == ETH_HLEN as u32 {
        let peeked = (peek - ETH_HLEN as u32) as usize;
        if cap < peeked { cap } else { peeked }
    } else {
        let first = if cap < FIRST_LOAD { cap } else { FIRST_LOAD };
        load_range(skb, l2_len, data, 0, first)?;
        first
    };
    // Merges the paths above (which link layer, how much the first load took) for the verifier.
    let mut loaded = forget(scratch, first);
    let data = data.cast_const();

    let ipv6 = l3 == ETH_P_IPV6;
    if ipv6 && byte(data, 6) != IPPROTO_TCP {
        // Extension headers (rare): take everything the capture holds.
        load_range(skb, l2_len, data.cast_mut(), loaded, cap)?;
        loaded = cap;
    }
    let loaded_now = forget(scratch, loaded);
    let tcp_off = if ipv6 {
        ipv6_tcp_offset(scratch, data, cap)?
    } else {
        ipv4_tcp_offset(data)?
    };
    let tcp_off = forget(scratch, tcp_off);
    if tcp_off + TCP_HDR_MIN > cap {
        return Err(Skip::Malformed);
    }
    let mut loaded = loaded_now;
    if tcp_off + TCP_HDR_MIN > loaded {
        // IPv4 options pushed the TCP header out of the first load.
        let end = if tcp_off + TCP_HDR_MAX < cap {
            tcp_off + TCP_HDR_MAX
        } else {
            cap
        };
        load_range(skb, l2_len, data.cast_mut(), loaded, end)?;
        loaded = end;
    }
    let loaded = forget(scratch, loaded);
    bump(counters, counter::TCP);

    let header_len = usize::from(byte(data, tcp_off + 12) >> 4) * 4;
    if header_len < TCP_HDR_MIN {
        return Err(Skip::Malformed);
    }
    let options_end = if tcp_off + header_len < cap {
        tcp_off + header_len
    } else {
        cap
    };
    if options_end > loaded {
        load_range(skb, l2_len, data.cast_mut(), loaded, options_end)?;
    }
    let options_end = forget(scratch, options_end);
    Ok(Headers {
        net_len,
        tcp_off,
        options_end,
        ipv6,
        raw_ip,
        mptcp: has_mptcp_option(scratch, data, tcp_off + TCP_HDR_MIN, options_end),
        loaded: true,
    })
}

/// Writes the event header in front of the headers in the scratch data and queues both.
#[inline(always)]
fn emit(
    skb: *mut __sk_buff,
    scratch: &mut Scratch,
    direction: u8,
    headers: &Headers,
    options_end: usize,
    counters: &mut Counters,
) {
    // SAFETY: the context pointer the kernel passed to the program.
    let (ifindex, gso_segs) = unsafe { ((*skb).ifindex, (*skb).gso_segs) };
    // The event carries the headers only (IP, extension headers, TCP with its options: all
    // loaded by now). The payload after them would mostly come from page fragments (another
    // load) and nothing downstream reads it: the decoder takes lengths from the headers, never
    // from `cap_len`.
    let mut flags = 0;
    if headers.raw_ip {
        flags |= FLAG_RAW_IP;
    }
    if headers.mptcp {
        flags |= FLAG_MPTCP;
    }
    if headers.ipv6 {
        flags |= FLAG_IPV6;
    }
    scratch.event.header = EventHeader {
        // SAFETY: helper without arguments.
        ktime_ns: unsafe { bpf_ktime_get_ns() },
        ifindex,
        skb_len: headers.net_len,
        cap_len: options_end as u16,
        direction,
        flags,
        gso_segs: if gso_segs > u32::from(u16::MAX) {
            u16::MAX
        } else {
            gso_segs as u16
        },
        _pad: 0,
    };
    // The record ends with the last valid byte: less to copy, less ring space per event (the
    // reader takes `cap_len` bytes after the header). The wakeup test below uses what this
    // record takes in the ring: its 8-byte header plus the event, 8-aligned.
    let event_len = size_of::<EventHeader>() + options_end;
    let record_bytes = ((8 + event_len + 7) & !7) as u64;
    let queued = EVENTS.query(BPF_RB_AVAIL_DATA.into());
    let wakeup = if queued < WAKEUP_BYTES && queued + record_bytes >= WAKEUP_BYTES {
        BPF_RB_FORCE_WAKEUP
    } else {
        BPF_RB_NO_WAKEUP
    };
    // SAFETY: `event_len` ≤ 24 + 255 bytes from the start of `Scratch`, inside it.
    let record =
        unsafe { core::slice::from_raw_parts((&raw const scratch.event).cast::<u8>(), event_len) };
    match EVENTS.output::<[u8]>(record, wakeup.into()) {
        Ok(()) => bump(counters, counter::EVENTS),
        Err(_) => bump(counters, counter::RINGBUF_FULL),
    }
}

/// Copies bytes `[from, to)` of the packet, counted from the network header, to the same place
/// in the scratch data. The explicit bounds are for the verifier; callers keep `to ≤ cap`.
#[inline(always)]
fn load_range(
    skb: *mut __sk_buff,
    l2_len: u32,
    data: *mut u8,
    from: usize,
    to: usize,
) -> Result<(), Skip> {
    if to <= from {
        return Ok(());
    }
    let len = to - from;
    if from > CAPTURE_LEN || len > CAPTURE_LEN {
        return Err(Skip::Malformed);
    }
    // The same length, in a form whose lower bound (≥ 1: the helper rejects a possibly-zero
    // size) the verifier sees whatever the compiler made of the checks above.
    let len = ((len - 1) & 0xff) + 1;
    // SAFETY: `from + len` ≤ CAPTURE_LEN + 256 bytes from `event.data`, inside `Scratch`.
    let ret = unsafe {
        bpf_skb_load_bytes(
            skb.cast(),
            l2_len + from as u32,
            data.add(from).cast(),
            len as u32,
        )
    };
    if ret == 0 {
        Ok(())
    } else {
        Err(Skip::Malformed)
    }
}

/// Offset of the TCP header in an IPv4 packet, or `NotTcp`.
#[inline(always)]
fn ipv4_tcp_offset(data: *const u8) -> Result<usize, Skip> {
    let first = byte(data, 0);
    if first >> 4 != 4 {
        return Err(Skip::Malformed);
    }
    if byte(data, 9) != IPPROTO_TCP {
        return Err(Skip::NotTcp);
    }
    // A non-first fragment carries no TCP header.
    if be16(byte(data, 6), byte(data, 7)) & 0x1fff != 0 {
        return Err(Skip::NotTcp);
    }
    let header_len = usize::from(first & 0x0f) * 4;
    if header_len < 20 {
        return Err(Skip::Malformed);
    }
    Ok(header_len)
}

/// Offset of the TCP header in an IPv6 packet after a bounded walk of the extension headers.
#[inline(always)]
fn ipv6_tcp_offset(scratch: &mut Scratch, data: *const u8, cap: usize) -> Result<usize, Skip> {
    if byte(data, 0) >> 4 != 6 {
        return Err(Skip::Malformed);
    }
    let mut next = byte(data, 6);
    let mut off = 40;
    for _ in 0..MAX_IPV6_EXT {
        if next == IPPROTO_TCP {
            return Ok(off);
        }
        if off + 8 > cap {
            return Err(Skip::Malformed);
        }
        let len = match next {
            IPV6_HOPOPTS | IPV6_ROUTING | IPV6_DSTOPTS | IPV6_MOBILITY => {
                (usize::from(byte(data, off + 1)) + 1) * 8
            }
            IPV6_FRAGMENT => {
                if be16(byte(data, off + 2), byte(data, off + 3)) & 0xfff8 != 0 {
                    return Err(Skip::NotTcp);
                }
                8
            }
            IPV6_AH => (usize::from(byte(data, off + 1)) + 2) * 4,
            _ => return Err(Skip::NotTcp),
        };
        next = byte(data, off);
        // Checked before `forget`, whose 8-bit mask would otherwise wrap a long chain around.
        if off + len > cap {
            return Err(Skip::Malformed);
        }
        off = forget(scratch, off + len);
    }
    if next == IPPROTO_TCP {
        return Ok(off);
    }
    Err(Skip::NotTcp)
}

/// Walks the TCP options in `[start, end)` of the captured bytes looking for kind 30.
#[inline(always)]
fn has_mptcp_option(scratch: &mut Scratch, data: *const u8, start: usize, end: usize) -> bool {
    // Most segments of an established connection start with NOP, NOP, timestamps (RFC 7323
    // appendix A's layout): step over the three in one go. The walk would end up at the same
    // offset, having seen no kind 30 on the way.
    let timestamps_first = byte(data, start) == TCPOPT_NOP
        && byte(data, start + 1) == TCPOPT_NOP
        && byte(data, start + 2) == TCPOPT_TIMESTAMP
        && byte(data, start + 3) == TCPOLEN_TIMESTAMP;
    let mut off = launder(
        scratch,
        if timestamps_first {
            start + 2 + usize::from(TCPOLEN_TIMESTAMP)
        } else {
            start
        },
    );
    for _ in 0..MAX_TCP_OPTIONS {
        if off >= end {
            return false;
        }
        let kind = byte(data, off);
        if kind == TCPOPT_MPTCP {
            return true;
        }
        let Some(step) = option_step(kind, || Some(byte(data, off + 1))) else {
            return false;
        };
        // Unmasked: a bogus length must end the walk at the top, not wrap back into the header.
        off = launder(scratch, off + step);
    }
    false
}

/// How far the option walk steps past an option of `kind` (not MPTCP's) whose length byte
/// `len` reads (`None` where the packet ends first): `None` where the walk ends, at the end of
/// the option list or at a length that cannot be. Both walks step through it.
#[inline(always)]
fn option_step(kind: u8, len: impl FnOnce() -> Option<u8>) -> Option<usize> {
    match kind {
        TCPOPT_EOL => None,
        TCPOPT_NOP => Some(1),
        _ => len().filter(|&len| len >= 2).map(usize::from),
    }
}

/// The user's `--port` / `--addr` filter.
#[inline(always)]
fn filter_matches(config: &FilterConfig, data: *const u8, ipv6: bool, tcp_off: usize) -> bool {
    if config.port != 0 {
        let source = be16(byte(data, tcp_off), byte(data, tcp_off + 1));
        let destination = be16(byte(data, tcp_off + 2), byte(data, tcp_off + 3));
        if source != config.port && destination != config.port {
            return false;
        }
    }
    match config.addr_family {
        ADDR_IPV4 => {
            if ipv6 {
                return false;
            }
            let wanted = u32::from_ne_bytes(config.ipv4_addr);
            // SAFETY: offsets 12..20 of the captured bytes, which hold ≥ 40 bytes.
            let (source, destination) = unsafe {
                (
                    ptr::read_unaligned(data.add(12).cast::<u32>()),
                    ptr::read_unaligned(data.add(16).cast::<u32>()),
                )
            };
            source == wanted || destination == wanted
        }
        ADDR_IPV6 => {
            if !ipv6 {
                return false;
            }
            same_ipv6(config, data, 8) || same_ipv6(config, data, 24)
        }
        _ => true,
    }
}

#[inline(always)]
fn same_ipv6(config: &FilterConfig, data: *const u8, at: usize) -> bool {
    // SAFETY: `at` is 8 or 24, so `at + 16` ≤ 40 ≤ the captured length.
    let (hi, lo) = unsafe {
        (
            ptr::read_unaligned(data.add(at).cast::<u64>()),
            ptr::read_unaligned(data.add(at + 8).cast::<u64>()),
        )
    };
    let wanted_hi = u64::from_ne_bytes([
        config.ipv6_addr[0],
        config.ipv6_addr[1],
        config.ipv6_addr[2],
        config.ipv6_addr[3],
        config.ipv6_addr[4],
        config.ipv6_addr[5],
        config.ipv6_addr[6],
        config.ipv6_addr[7],
    ]);
    let wanted_lo = u64::from_ne_bytes([
        config.ipv6_addr[8],
        config.ipv6_addr[9],
        config.ipv6_addr[10],
        config.ipv6_addr[11],
        config.ipv6_addr[12],
        config.ipv6_addr[13],
        config.ipv6_addr[14],
        config.ipv6_addr[15],
    ]);
    hi == wanted_hi && lo == wanted_lo
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    // Unreachable in a verified program; the verifier rejects any path that could get here.
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
