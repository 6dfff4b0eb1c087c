//! `mptcp_trc_in` (ingress) and `mptcp_trc_eg` (egress), names nobody else uses (a stale filter
//! of ours is recognised by them): find TCP segments that carry an MPTCP option (kind 30) and copy
//! their headers (IP, IPv6 extension headers, TCP with options; at most `CAPTURE_LEN` bytes from
//! the network header) into the ring buffer. `mptcp_trc_flush`, run by the reader, writes what
//! a CPU still holds.
//!
//! Budget: the programs run on every packet of the traced interfaces. A packet costs one lookup
//! (this CPU's `State`: counters, batch and scratch) and, for the layout nearly every packet has
//! (untagged Ethernet, IPv4 without options or IPv6 without extension headers, TCP headers in
//! the skb's linear area), a parse in place: a handful of loads, no helper call, nothing
//! copied. Only a packet that becomes an event has its headers copied, a word at a time from
//! the packet: straight to its place in this CPU's batch (`Batch`) when it has payload
//! (`emit_staged`: a sender's data), into the scratch first otherwise (an ACK may fold). Then
//! `bpf_ktime_get_ns` (40–60 ns per event on real traffic in this VM: an indirect call to the
//! clocksource and a serialising TSC read, a quarter of the egress program's time), and the
//! append to the batch, which goes to the ring buffer as one record of some 45 events. Every
//! other packet (VLAN tags, raw IP, IP options, IPv6 extension headers, headers outside the
//! linear area, malformed headers) takes the general path: one `bpf_skb_load_bytes` of the
//! frame's first bytes into the per-CPU scratch (a second one behind a VLAN tag or without L2
//! header, or for long option lists), and a parse of that copy, so that the verifier sees small
//! bounded loops without helper calls in them.
//!
//! Unless the reader asks for every packet, a flow's consecutive pure DATA_ACKs fold into one
//! event (`Fold`): most of a bulk transfer's packets then cost a parse and a copy of their
//! headers into the fold, without a clock read or an event (`fold_in_place`).

use core::ptr;

use aya_ebpf::{
    bindings::{
        __sk_buff, BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP, TC_ACT_UNSPEC,
    },
    helpers::{bpf_get_smp_processor_id, bpf_jiffies64, bpf_ktime_get_ns, bpf_skb_load_bytes},
    macros::{classifier, map, raw_tracepoint},
    maps::{PerCpuArray, RingBuf},
    programs::{RawTracePointContext, TcContext},
};
use tracer_common::{
    ADDR_ANY, ADDR_IPV4, ADDR_IPV6, CAPTURE_LEN, Counters, DIRECTION_EGRESS, DIRECTION_INGRESS,
    Event, EventHeader, FLAG_FOLDED, FLAG_IPV6, FLAG_MARK, FLAG_MPTCP, FLAG_RAW_IP, FilterConfig,
    STATE_BYTES, counter,
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

/// The user's settings (`--all-tcp`, `--port`, `--addr`, ACK folding), written by the loader
/// before the programs are verified (`EbpfLoader::override_global`). A read-only global, which
/// the loader freezes: the verifier knows its values, and removes the code a setting rules out
/// (without `--port` or `--addr`, no filter code is left to run), and reading it costs no map
/// lookup. The default here is the tracer's default: fold ACKs, keep MPTCP packets only.
#[unsafe(no_mangle)]
static FILTER: FilterConfig = FilterConfig {
    all_tcp: 0,
    addr_family: ADDR_ANY,
    fold_acks: 1,
    _pad: 0,
    port: 0,
    _pad2: 0,
    ipv4_addr: [0; 4],
    ipv6_addr: [0; 16],
};

/// `FILTER`, as the loader set it.
#[inline(always)]
fn filter() -> &'static FilterConfig {
    // SAFETY: the address of a static. It goes through a volatile read so that the compiler,
    // which sees the defaults above, reads the fields the loader wrote instead of folding them.
    unsafe { &*ptr::read_volatile(&(&raw const FILTER)) }
}

/// Working memory (in this CPU's `State`): an event is assembled here when it does not go
/// straight into the batch, and a map value (unlike the stack) can be indexed with a bounded
/// variable offset.
#[repr(C)]
struct Scratch {
    event: Event,
    /// Room after `event.data`: `byte` reads any index `& 0xff` without a bounds branch the
    /// verifier would have to follow, and `load_range` may write up to `from + len` ≤
    /// CAPTURE_LEN + 256 bytes, as far as the verifier can tell.
    _slack: [u8; 256],
}

/// Where offsets go through map memory (`forget`): the `cursor` of this CPU's `State`.
#[derive(Clone, Copy)]
struct Cursor(*mut u32);

/// Returns `value` after a round trip through map memory, so the verifier no longer knows which
/// path computed it. Where several paths join (NOP vs. other option, the IPv6 extension header
/// kinds, IPv4 vs. IPv6), the joined states then compare equal and are verified once instead of
/// once per path — without it the option walk alone explodes past the 1M-instruction limit. The
/// caller bounds the result again before using it.
#[inline(always)]
fn forget(cursor: Cursor, value: usize) -> usize {
    // Every offset `forget` sees is < 256. The mask survives optimisation (the compiler cannot
    // see through the volatile read) and bounds every later `data + offset + small constant`
    // inside `Scratch` for the verifier, however the compiler rearranges the comparisons after
    // it.
    launder(cursor, value) & 0xff
}

/// `forget` without the mask, for a value that is bounded again before any use.
#[inline(always)]
fn launder(cursor: Cursor, value: usize) -> usize {
    // SAFETY: a field of this CPU's state, which only the classifiers use (they do not nest on
    // a CPU); volatile so the compiler keeps the round trip.
    unsafe {
        ptr::write_volatile(cursor.0, value as u32);
        ptr::read_volatile(cursor.0) as usize
    }
}

/// A batch is written to the ring buffer once it holds this many bytes of events (about 45
/// IPv4 MPTCP events). One ring-buffer record per batch instead of one per event: the reserve,
/// its lock and the commit, shared with the other CPUs and the reader, cost more than the rest
/// of an event together (perf on a bulk transfer). A power of two: the offset is masked by it.
const BATCH_BYTES: usize = 4096;
/// A batch this old is written by its CPU's next event, full or not. Only a backstop: the
/// reader's flush collects every batch at each 50 ms poll, and the time order across CPUs is
/// the reader's (it waits for every CPU's flush mark). At 100 µs a batch of a bulk transfer's
/// sender held one or two data events (the ACKs fold), so nearly every event paid a ring-buffer
/// write of its own (perf: output, reserve and query a third of the egress program's time).
const BATCH_MAX_AGE_NS: u64 = 20_000_000;
const EVENT_WORDS: usize = size_of::<Event>() / 8;
/// See `Batch::records`; as `Scratch::_slack`.
const RECORDS_SLACK: usize = 256;

/// This CPU's events not yet in the ring buffer: whole events (header and `cap_len` bytes),
/// each padded to 8 bytes, the layout of a ring-buffer record.
#[repr(C)]
struct Batch {
    /// Bytes in `records`.
    len: u32,
    /// Events in `records`.
    events: u32,
    /// Set while a program changes the batch (`enter`/`leave`). The flush program runs in an
    /// IPI and can interrupt a classifier on its CPU, and a classifier in a softirq can
    /// interrupt the flush program (when it runs on the reader's own CPU); whoever comes second
    /// finds this set and leaves the batch alone.
    busy: u32,
    /// Bit `i` set: fold slot `i` holds a fold (its `count` is not 0). Here, in the line the
    /// batch is taken through, so that an event that folds nothing learns that its flow has
    /// no fold pending without a load from the fold's lines.
    folding: u32,
    /// `ktime_ns` of the first event in the batch.
    first_ns: u64,
    /// ACKs being folded, one flow per slot (see `Fold`).
    folds: [Fold; FOLD_SLOTS],
    /// Room for one more event past BATCH_BYTES (the event that crosses it), and after it the
    /// room `byte` needs to read an event staged here (`emit_staged`) as it reads the scratch.
    records: [u8; BATCH_BYTES + size_of::<Event>() + RECORDS_SLACK],
}

/// Flows whose ACKs this CPU folds at the same time: a pair of slots per hash of the ports and
/// the direction (`fold_slot`), a flow's fold in either slot of its pair. Two flows that share
/// a slot end each other's folds at every ACK; with one slot per hash, the two subflows of a
/// transfer did so for a sixteenth of the bench's transfers (every ACK of theirs then an event:
/// that transfer's ingress cost a third more). In a pair it takes a third flow.
const FOLD_SLOTS: usize = 16;
/// ACKs in one folded event at most: as many as its `gso_segs` counts. The jiffy bounds a fold
/// long before (a bulk transfer's flow brings some 50 ACKs per 4 ms tick and CPU here). At 64,
/// the bound cut as many folds as the jiffy did, and each new fold's first ACK takes the general
/// path, a clock read included.
const FOLD_MAX: u32 = u16::MAX as u32;

/// Consecutive pure DATA_ACKs of one flow, folded into one event: their count, the first one's
/// time, the last one's headers. An ACK whose only news is its acknowledgements changes nothing
/// the summaries take from it but the acknowledged positions (the last ACK's are the highest:
/// an ACK that goes back starts a fold of its own) and the packet count (the event's
/// `gso_segs`). A fold ends when an ACK of the flow does not fit it, when another event of the
/// flow comes, after `FOLD_MAX` ACKs, when the jiffy changes (a fold spans at most one tick,
/// 1–10 ms), or when the reader's flush runs.
#[repr(C)]
struct Fold {
    /// ACKs folded (0: the slot is free).
    count: u32,
    /// The last ACK's acknowledgement number and the low 32 bits of its DATA_ACK.
    ack: u32,
    data_ack: u32,
    /// The low 32 bits of `jiffies` when the fold started.
    tick: u32,
    key: FlowKey,
    /// The first ACK's header (time, interface, direction) with the last ACK's headers.
    event: Event,
}

/// Interface, direction, IP version and ports in the first word, the addresses in the others
/// (IPv4: the second word only).
type FlowKey = [u64; 6];

impl Fold {
    /// Whether an ACK of this fold's flow (the caller found the fold with `Batch::slot_of`)
    /// with these acknowledgements and `options_end` bytes of headers continues it:
    /// acknowledging forward, room left, the same jiffy, the same header length.
    #[inline(always)]
    fn continued_by(&self, ack: u32, data_ack: u32, options_end: usize) -> bool {
        // SAFETY: helper without arguments.
        let tick = unsafe { bpf_jiffies64() } as u32;
        forward(ack, self.ack)
            && forward(data_ack, self.data_ack)
            && self.count < FOLD_MAX
            && self.tick == tick
            && usize::from(self.event.header.cap_len) == options_end
    }

    /// Adds an ACK whose headers were just copied into `event`: its acknowledgements and its
    /// bytes (as a GSO event carries those of all its segments). Volatile stores, so that none
    /// moves after the batch is left (see `take_batch`).
    #[inline(always)]
    fn extend(&mut self, ack: u32, data_ack: u32, net_len: u32) {
        // SAFETY: fields of this CPU's batch, taken by the caller.
        unsafe {
            let skb_len = ptr::read_volatile(&raw const self.event.header.skb_len);
            let count = ptr::read_volatile(&raw const self.count);
            ptr::write_volatile(
                &raw mut self.event.header.skb_len,
                skb_len.wrapping_add(net_len),
            );
            ptr::write_volatile(&raw mut self.ack, ack);
            ptr::write_volatile(&raw mut self.data_ack, data_ack);
            ptr::write_volatile(&raw mut self.count, count + 1);
        }
    }
}

/// This CPU's batch, taken (`Batch::enter`), or None if another program on this CPU has it.
///
/// The reference comes back through a volatile read made after taking the batch: a load of
/// the batch depends on it and cannot move before the batch is ours (volatile accesses keep
/// their order among themselves only, and the BPF target has no compiler fence). The stores
/// that end a change are volatile for the same reason (`Batch::set`, the folds' `count`).
#[inline(always)]
fn take_batch(batch: *mut Batch) -> Option<&'static mut Batch> {
    // SAFETY: this CPU's batch. Only code on this CPU touches it, and `busy` keeps a program
    // that interrupts another one from touching it too.
    unsafe {
        if !(*batch).enter() {
            return None;
        }
        Some(&mut *ptr::read_volatile(&raw const batch))
    }
}

impl Batch {
    /// Takes the batch for this program; false if another program on this CPU has it.
    #[inline(always)]
    fn enter(&mut self) -> bool {
        // SAFETY (all volatile accesses here): fields of this CPU's batch. Volatile so that the
        // compiler keeps them, and keeps them in this order around the batch's changes.
        unsafe {
            if ptr::read_volatile(&raw const self.busy) != 0 {
                return false;
            }
            ptr::write_volatile(&raw mut self.busy, 1);
        }
        true
    }

    #[inline(always)]
    fn leave(&mut self) {
        // SAFETY: as in `enter`.
        unsafe { ptr::write_volatile(&raw mut self.busy, 0) };
    }

    /// Bytes and events in the batch. Read only between `enter` and `leave`, volatile so that
    /// the compiler does not read them before `enter` took the batch.
    #[inline(always)]
    fn queued(&self) -> (usize, u32) {
        // SAFETY: as in `enter`.
        unsafe {
            (
                ptr::read_volatile(&raw const self.len) as usize,
                ptr::read_volatile(&raw const self.events),
            )
        }
    }

    #[inline(always)]
    fn set(&mut self, len: usize, events: u32) {
        // SAFETY: as in `enter`: stored before `leave` clears `busy`.
        unsafe {
            ptr::write_volatile(&raw mut self.len, len as u32);
            ptr::write_volatile(&raw mut self.events, events);
        }
    }

    /// Appends the first `event_len` bytes of `event` and writes the batch to the ring buffer
    /// once it is full or old. `event` may be one of the batch's own folds.
    #[inline(always)]
    fn push(&mut self, event: *const Event, event_len: usize, counters: &mut Counters) {
        // SAFETY: `event` points to a whole `Event` (the scratch one or a fold's), and
        // `next_event` to `EVENT_WORDS` words of `records`.
        unsafe {
            copy_words(
                self.next_event().cast::<u64>(),
                event.cast::<u64>(),
                0,
                (event_len + 7) / 8,
            )
        };
        self.append(event_len, counters);
    }

    /// Where the next event goes in `records`: `len` (< BATCH_BYTES, 8-aligned), which has
    /// `size_of::<Event>()` bytes of room after it, and `RECORDS_SLACK` more.
    #[inline(always)]
    fn next_event(&mut self) -> *mut Event {
        let (len, _) = self.queued();
        // SAFETY: see above.
        unsafe {
            self.records
                .as_mut_ptr()
                .add(len & (BATCH_BYTES - 1))
                .cast::<Event>()
        }
    }

    /// Appends the event of `event_len` bytes written at `next_event`, and writes the batch to
    /// the ring buffer once it is full or old.
    #[inline(always)]
    fn append(&mut self, event_len: usize, counters: &mut Counters) {
        // SAFETY: the header of the event just written there.
        let now = unsafe { ptr::read_volatile(&raw const (*self.next_event()).header.ktime_ns) };
        let (len, events) = self.queued();
        let len = len & (BATCH_BYTES - 1);
        // SAFETY: a field of the batch, taken by `enter`; volatile for the same reason as there.
        let first_ns = unsafe {
            if len == 0 {
                ptr::write_volatile(&raw mut self.first_ns, now);
            }
            ptr::read_volatile(&raw const self.first_ns)
        };
        let len = len + (event_len + 7) / 8 * 8;
        let events = events + 1;
        if len >= BATCH_BYTES || now.wrapping_sub(first_ns) >= BATCH_MAX_AGE_NS {
            let (written, lost) = self.write(len, events);
            add(counters, counter::EVENTS, written);
            add(counters, counter::RINGBUF_FULL, lost);
        } else {
            self.set(len, events);
        }
    }

    /// Appends fold `slot`'s event (if it has one) and frees the slot.
    #[inline(always)]
    fn push_fold(&mut self, slot: usize, counters: &mut Counters) {
        let slot = slot & (FOLD_SLOTS - 1);
        if !self.holds_fold(slot) {
            return;
        }
        // SAFETY: a field of the batch, taken by `enter`; volatile as in `Fold::extend`.
        unsafe {
            let folding = ptr::read_volatile(&raw const self.folding);
            ptr::write_volatile(&raw mut self.folding, folding & !(1 << slot));
        }
        let fold = &mut self.folds[slot];
        // SAFETY: as above.
        let count = unsafe { ptr::read_volatile(&raw const fold.count) };
        // SAFETY: as above.
        unsafe { ptr::write_volatile(&raw mut fold.count, 0) };
        // `gso_segs` and `flags` in one store of their word, which `push` reads back whole (see
        // `write_event_header`).
        let word = (&raw mut fold.event.header).cast::<u64>().wrapping_add(2);
        let folded = if count > 1 { FLAG_FOLDED } else { 0 };
        // SAFETY: word 2 of the fold's event header, in the batch, taken by `enter`.
        unsafe {
            let fields = ptr::read_volatile(word) & !(0xffff_u64 << 32);
            let fields = fields | (u64::from(count as u16) << 32) | (u64::from(folded) << 24);
            ptr::write_volatile(word, fields);
        }
        let event_len = size_of::<EventHeader>() + usize::from(fold.event.header.cap_len & 0xff);
        let event = &raw const fold.event;
        self.push(event, event_len, counters);
    }

    /// Whether fold `slot` holds a fold (`folding`).
    #[inline(always)]
    fn holds_fold(&self, slot: usize) -> bool {
        // SAFETY: as in `enter`.
        unsafe {
            ptr::read_volatile(&raw const self.folding) & (1 << (slot & (FOLD_SLOTS - 1))) != 0
        }
    }

    /// Whether either slot of the pair `slot`, `slot ^ 1` holds a fold (`folding`).
    #[inline(always)]
    fn holds_pair(&self, slot: usize) -> bool {
        // SAFETY: as in `enter`.
        unsafe {
            ptr::read_volatile(&raw const self.folding) & (3 << (slot & (FOLD_SLOTS - 2))) != 0
        }
    }

    /// The slot of the pair `slot`, `slot ^ 1` (see `fold_slot`) that holds a fold of flow
    /// `key`, if one does. `folding` is checked first, which spares a free slot's lines.
    #[inline(always)]
    fn slot_of(&self, slot: usize, key: &FlowKey) -> Option<usize> {
        let slot = slot & (FOLD_SLOTS - 1);
        if self.holds_fold(slot) && same_key(&self.folds[slot].key, key) {
            return Some(slot);
        }
        let other = slot ^ 1;
        if self.holds_fold(other) && same_key(&self.folds[other].key, key) {
            return Some(other);
        }
        None
    }

    /// The slot holding a fold of the flow of `packet`, whose headers are at `data`, if one
    /// does. The pair's bits in `folding` come first: most packets with payload find both slots
    /// free, and are spared their key and the folds' lines.
    #[inline(always)]
    fn fold_of(&self, packet: &Packet<'_>, data: *const u8, tcp_off: usize) -> Option<usize> {
        let pair = fold_slot(ports_at(data, tcp_off), packet.direction);
        if !self.holds_pair(pair) {
            return None;
        }
        let key = flow_key(
            data,
            packet.ifindex,
            packet.direction,
            packet.headers.ipv6,
            tcp_off,
        );
        self.slot_of(pair, &key)
    }

    /// Where a new fold of a flow whose pair is `slot`, `slot ^ 1` goes when neither holds one
    /// of it: a free slot of the pair, or `slot` (whose fold is then appended).
    #[inline(always)]
    fn slot_for_new(&self, slot: usize) -> usize {
        let slot = slot & (FOLD_SLOTS - 1);
        if self.holds_fold(slot) && !self.holds_fold(slot ^ 1) {
            slot ^ 1
        } else {
            slot
        }
    }

    /// Folds an ACK (headers in `scratch`, `event_len` bytes with the event header) into fold
    /// `slot`, which holds a fold of its flow, if the ACK continues it; false otherwise.
    #[expect(
        clippy::too_many_arguments,
        reason = "the ACK's parts the fold needs, each read once by the caller"
    )]
    #[inline(always)]
    fn fold_into(
        &mut self,
        slot: usize,
        ack: u32,
        data_ack: u32,
        scratch: &Scratch,
        event_len: usize,
        counters: &mut Counters,
    ) -> bool {
        let fold = &mut self.folds[slot & (FOLD_SLOTS - 1)];
        if !fold.continued_by(ack, data_ack, event_len - size_of::<EventHeader>()) {
            return false;
        }
        // The last ACK's headers after the first one's event header.
        // SAFETY: whole `Event`s.
        unsafe {
            copy_words(
                (&raw mut fold.event).cast::<u64>(),
                (&raw const scratch.event).cast::<u64>(),
                size_of::<EventHeader>() / 8,
                (event_len + 7) / 8,
            );
        }
        // The bytes of all the ACKs, as a GSO event carries those of all its segments. A
        // foldable ACK is its headers alone (its IP length ends with its options).
        let net_len = (event_len - size_of::<EventHeader>()) as u32;
        fold.extend(ack, data_ack, net_len);
        bump(counters, counter::FOLDED_ACKS);
        true
    }

    /// Starts fold `slot` with an ACK whose event (header included) is `event`, after
    /// appending the fold the slot held.
    #[expect(
        clippy::too_many_arguments,
        reason = "the ACK's parts the fold needs, each read once by the caller"
    )]
    #[inline(always)]
    fn start_fold(
        &mut self,
        slot: usize,
        key: FlowKey,
        ack: u32,
        data_ack: u32,
        event: &Event,
        event_len: usize,
        counters: &mut Counters,
    ) {
        let slot = slot & (FOLD_SLOTS - 1);
        self.push_fold(slot, counters);
        let fold = &mut self.folds[slot];
        // SAFETY: whole `Event`s.
        unsafe {
            copy_words(
                (&raw mut fold.event).cast::<u64>(),
                (&raw const *event).cast::<u64>(),
                0,
                (event_len + 7) / 8,
            );
        }
        for (to, from) in fold.key.iter_mut().zip(key) {
            // SAFETY: an element of the slot's key. Volatile, or this becomes a `memcpy` call.
            unsafe { ptr::write_volatile(to, from) };
        }
        // SAFETY: helper without arguments.
        let tick = unsafe { bpf_jiffies64() } as u32;
        // SAFETY: fields of the batch, taken by `enter`; volatile as in `Fold::extend`.
        unsafe {
            ptr::write_volatile(&raw mut fold.ack, ack);
            ptr::write_volatile(&raw mut fold.data_ack, data_ack);
            ptr::write_volatile(&raw mut fold.tick, tick);
            ptr::write_volatile(&raw mut fold.count, 1);
            let folding = ptr::read_volatile(&raw const self.folding);
            ptr::write_volatile(&raw mut self.folding, folding | (1 << slot));
        }
    }

    /// Writes the first `len` bytes (`events` events) to the ring buffer and empties the
    /// batch. Returns the events written and lost.
    #[inline(always)]
    fn write(&mut self, len: usize, events: u32) -> (u64, u64) {
        self.set(0, 0);
        if len == 0 || len > self.records.len() {
            return (0, u64::from(events));
        }
        let records = &self.records[..len];
        if EVENTS.output::<[u8]>(records, wakeup_flag(len)).is_ok() {
            (u64::from(events), 0)
        } else {
            (0, u64::from(events))
        }
    }
}

/// Each CPU's state, in one map value so that a packet costs one lookup, and with the words
/// most packets change together: the counters (the busiest last, see `counter`), the cursor and
/// the batch's first words, in a line or two. Userspace reads the counters (`StateView`).
#[repr(C)]
struct State {
    counters: Counters,
    cursor: u32,
    _pad: u32,
    batch: Batch,
    scratch: Scratch,
}

const _: () = assert!(size_of::<State>() == STATE_BYTES);
const _: () = assert!(core::mem::offset_of!(State, counters) == 0);

#[map]
static STATE: PerCpuArray<State> = PerCpuArray::with_max_entries(1, 0);

/// This CPU's state, taken apart: what the parse and event paths work with.
struct Cpu<'a> {
    counters: &'a mut Counters,
    cursor: Cursor,
    /// Taken with `take_batch` before any use.
    batch: *mut Batch,
    scratch: &'a mut Scratch,
}

impl Cpu<'_> {
    /// This CPU's state, or None if the lookup fails (it cannot: one entry, index 0).
    #[inline(always)]
    fn get() -> Option<Self> {
        let state = STATE.get_ptr_mut(0)?;
        // SAFETY: this CPU's state; TC programs run with bottom halves disabled and do not nest,
        // and what the flush program (an IPI) may touch meanwhile, the batch, is taken first
        // (`take_batch`); the flush program counts in slots of its own.
        unsafe {
            Some(Cpu {
                counters: &mut (*state).counters,
                cursor: Cursor(&raw mut (*state).cursor),
                batch: &raw mut (*state).batch,
                scratch: &mut (*state).scratch,
            })
        }
    }
}

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
    // One lookup per packet for the counters and everything else (per-CPU, so plain adds).
    let Some(mut cpu) = Cpu::get() else {
        return;
    };
    bump(cpu.counters, counter::PACKETS);
    if fold_in_place(ctx.skb.skb, direction, &mut cpu) {
        bump(cpu.counters, counter::TCP);
        bump(cpu.counters, counter::MPTCP);
        return;
    }
    if let Err(Skip::Malformed) = inspect(ctx.skb.skb, direction, &mut cpu) {
        bump(cpu.counters, counter::LOAD_ERRORS);
    }
}

/// The fastest path, for most packets of a bulk transfer (its ACKs): an IPv4 pure DATA_ACK
/// that continues the fold of its flow on this CPU (see `Fold`), recognised with constant
/// offsets and folded with one copy of its headers, before any other parse. A few byte tests
/// in the packet rule out most other packets (data first); the headers of what passes are read
/// a word at a time and, if they continue the fold, copied into it. Anything else (another
/// layout, an ACK that starts a fold, a filter set) returns false and takes the general paths,
/// which fold the same ACKs the same way, only at a higher cost.
#[inline(always)]
fn fold_in_place(skb: *mut __sk_buff, direction: u8, cpu: &mut Cpu<'_>) -> bool {
    // Ethernet, IPv4 (20), TCP (20), NOP, NOP, timestamps (12), DSS with a 4-byte DATA_ACK (8).
    const SHORTEST: usize = ETH_HLEN + 60;
    const TCP: usize = ETH_HLEN + 20;
    let config = filter();
    if config.fold_acks == 0 || config.port != 0 || config.addr_family != ADDR_ANY {
        return false;
    }
    // SAFETY: the context pointer the kernel passed to the program.
    let (start, end, protocol, ifindex) = unsafe {
        (
            (*skb).data as usize,
            (*skb).data_end as usize,
            (*skb).protocol,
            (*skb).ifindex,
        )
    };
    if start + SHORTEST > end || u16::from_be(protocol as u16) != ETH_P_IP {
        return false;
    }
    let frame = start as *const u8;
    // SAFETY: offsets below SHORTEST, checked against the packet's end above.
    let at = |i: usize| unsafe { *frame.add(i) };
    // Untagged IPv4 without options, TCP, flags ACK only, 60 or 64 bytes: what rules out most
    // other packets, data first, tested first.
    let ip_len = usize::from(be16(at(16), at(17)));
    if !(at(14) == 0x45
        && at(TCP + 13) == 0x10
        && (ip_len == 60 || ip_len == 64)
        && at(12) == 0x08
        && at(13) == 0x00
        && at(23) == IPPROTO_TCP)
    {
        return false;
    }
    let Some(batch) = take_batch(cpu.batch) else {
        return false;
    };
    // One copy of `continue_fold` per length, each with constant offsets: with the length a
    // variable, the verifier followed paths that read word 15 of a 60-byte ACK.
    let headers = (start + ETH_HLEN) as *const u8;
    let continues = if ip_len == 60 {
        continue_fold::<60>(batch, headers, ifindex, direction)
    } else {
        // SAFETY: a local; read again so that the compiler keeps the check (see
        // `linear_headers`). The first 60 bytes were checked above.
        let end = unsafe { ptr::read_volatile(&raw const end) };
        start + ETH_HLEN + 64 <= end && continue_fold::<64>(batch, headers, ifindex, direction)
    };
    if continues {
        bump(cpu.counters, counter::FOLDED_ACKS);
    }
    batch.leave();
    continues
}

/// Folds the ACK whose `IP_LEN` (60 or 64) bytes of IPv4 and TCP headers are at `headers` into
/// its flow's fold if it is a foldable ACK that continues it: not a fragment, options exactly
/// NOP, NOP, timestamps and a DSS with the DATA_ACK flag alone (4 or 8 bytes of it), ending
/// where the IP packet ends. The caller has tested the IP version and header length, the
/// protocol, the TCP flags and the IP length.
#[inline(always)]
fn continue_fold<const IP_LEN: usize>(
    batch: &mut Batch,
    headers: *const u8,
    ifindex: u32,
    direction: u8,
) -> bool {
    // Word `i` (bytes 4i..4i+4 of the IP header) as in memory, and as a big-endian number.
    // The IP header is 2-aligned at best; the build lets the BPF target load words from any
    // address (`allows-misaligned-mem-access`: one load, not four byte loads and shifts).
    // SAFETY: the caller checked `IP_LEN` bytes against the packet's end; 4 * i < IP_LEN.
    let raw = |i: usize| unsafe { ptr::read_unaligned(headers.add(4 * i).cast::<u32>()) };
    let be = |i: usize| u32::from_be(raw(i));
    // [kind 30, length, subtype << 4 | reserved, flags]: subtype 2 (DSS), flags `A` alone, or
    // `A` and `a` (an 8-byte DATA_ACK) with a length of 12.
    let dss = be(13) & 0xffff_f01f;
    let short = IP_LEN == 60;
    let dss_ok = if short {
        dss == 0x1e08_2001
    } else {
        dss == 0x1e0c_2003
    };
    // Not a fragment (flag MF and offset zero); the TCP data offset ends with the IP packet;
    // NOP, NOP, timestamps.
    if !(be(1) & 0x3fff == 0
        && 20 + (be(8) >> 28) as usize * 4 == IP_LEN
        && be(10) == 0x0101_080a
        && dss_ok)
    {
        return false;
    }
    // The ports and addresses in memory order, as `flow_key` reads them.
    let addresses = u64::from(raw(3)) | (u64::from(raw(4)) << 32);
    let key = flow_key_of(ifindex, direction, false, raw(5), [addresses, 0, 0, 0]);
    let ack = be(7);
    // The DATA_ACK's last four bytes: word 14 (4 bytes) or 15 (8 bytes).
    let data_ack = if short { be(14) } else { be(15) };
    let Some(slot) = batch.slot_of(fold_slot(raw(5), direction), &key) else {
        return false;
    };
    let fold = &mut batch.folds[slot & (FOLD_SLOTS - 1)];
    if !fold.continued_by(ack, data_ack, IP_LEN) {
        return false;
    }
    // The last ACK's headers after the first one's event header.
    let to = fold.event.data.as_mut_ptr().cast::<u32>();
    for i in 0..IP_LEN / 4 {
        // SAFETY: a fold's data holds more than 64 bytes. Volatile, or the loop becomes a
        // `memcpy` call.
        unsafe { ptr::write_volatile(to.add(i), raw(i)) };
    }
    fold.extend(ack, data_ack, IP_LEN as u32);
    true
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
fn inspect(skb: *mut __sk_buff, direction: u8, cpu: &mut Cpu<'_>) -> Result<(), Skip> {
    // SAFETY: the context pointer the kernel passed to the program.
    let (skb_len, protocol) = unsafe { ((*skb).len, u16::from_be((*skb).protocol as u16)) };
    if skb_len < MIN_IP_TCP {
        return Err(Skip::NotTcp);
    }
    let cursor = cpu.cursor;
    let headers = match linear_headers(skb, cursor, protocol) {
        Some(headers) => {
            bump(cpu.counters, counter::TCP);
            headers
        }
        // Counts the TCP segments it finds itself: also those whose headers it cannot load.
        None => loaded_headers(skb, cpu, skb_len, protocol)?,
    };
    if headers.mptcp {
        bump(cpu.counters, counter::MPTCP);
    }
    let config = filter();
    if !headers.mptcp && config.all_tcp == 0 {
        return Ok(());
    }
    // Merges the two paths' offsets for the verifier (both < 256).
    let tcp_off = forget(cursor, headers.tcp_off);
    let options_end = forget(cursor, headers.options_end);
    let data = cpu.scratch.event.data.as_mut_ptr();
    if !headers.loaded {
        // A packet with payload (data: every event of a sender) is staged in the batch; a
        // packet without may be a foldable ACK, for the folds, which work on the scratch.
        let batch = if headers.net_len as usize > options_end {
            take_batch(cpu.batch)
        } else {
            None
        };
        let staged = match batch {
            Some(batch) => {
                let place = Place {
                    tcp_off,
                    options_end,
                    direction,
                };
                emit_staged(skb, cpu, batch, &headers, &place, config)?
            }
            None => Staged::NotQueued,
        };
        match staged {
            Staged::Queued => return Ok(()),
            Staged::InScratch => {}
            Staged::NotQueued => copy_linear(skb, data, options_end)?,
        }
    }
    if !filter_matches(config, data, headers.ipv6, tcp_off) {
        bump(cpu.counters, counter::FILTERED);
        return Ok(());
    }
    emit(
        skb,
        cpu,
        direction,
        &headers,
        options_end,
        config.fold_acks != 0,
    );
    Ok(())
}

/// The fast path, for the layout nearly every packet has: an untagged Ethernet header, IPv4
/// without options or IPv6 without extension headers, and a TCP header with its options, all in
/// the skb's linear area (where the stack builds its headers, and where GRO or a veth leaves
/// them). Read in place, without copying anything: a packet that becomes no event costs a few
/// loads. `None` for anything else, including malformed headers: `loaded_headers` then takes
/// the packet from the start with all its checks and error counts.
#[inline(always)]
fn linear_headers(skb: *mut __sk_buff, cursor: Cursor, protocol: u16) -> Option<Headers> {
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
        mptcp: linear_has_mptcp_option(cursor, tcp, header_len, end),
        loaded: false,
    })
}

/// `has_mptcp_option` on the TCP header in place at `tcp` (`header_len` bytes, checked to end
/// before `end`): the same walk, each read checked against the packet's end for the verifier,
/// stepping with the same `option_step`. Two loops on purpose: one walk generic over how it
/// reads a byte (a closure per path) verified at 53–58 k instructions per program, past the
/// 50 k budget; the two loops take 33 k.
#[inline(always)]
fn linear_has_mptcp_option(cursor: Cursor, tcp: usize, header_len: usize, end: usize) -> bool {
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
        off = launder(cursor, off + step);
    }
    false
}

/// The general path: link layers other than untagged Ethernet (VLAN tags, raw IP), IP options,
/// IPv6 extension headers, headers outside the linear area. Loads the headers into the scratch
/// data and parses them there.
#[inline(always)]
fn loaded_headers(
    skb: *mut __sk_buff,
    cpu: &mut Cpu<'_>,
    skb_len: u32,
    protocol: u16,
) -> Result<Headers, Skip> {
    let cursor = cpu.cursor;
    let data = cpu.scratch.event.data.as_mut_ptr();
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
    let mut loaded = forget(cursor, first);
    let data = data.cast_const();

    let ipv6 = l3 == ETH_P_IPV6;
    if ipv6 && byte(data, 6) != IPPROTO_TCP {
        // Extension headers (rare): take everything the capture holds.
        load_range(skb, l2_len, data.cast_mut(), loaded, cap)?;
        loaded = cap;
    }
    let loaded_now = forget(cursor, loaded);
    let tcp_off = if ipv6 {
        ipv6_tcp_offset(cursor, data, cap)?
    } else {
        ipv4_tcp_offset(data)?
    };
    let tcp_off = forget(cursor, tcp_off);
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
    let loaded = forget(cursor, loaded);
    bump(cpu.counters, counter::TCP);

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
    let options_end = forget(cursor, options_end);
    Ok(Headers {
        net_len,
        tcp_off,
        options_end,
        ipv6,
        raw_ip,
        mptcp: has_mptcp_option(cursor, data, tcp_off + TCP_HDR_MIN, options_end),
        loaded: true,
    })
}

/// What `emit_staged` did with a packet.
enum Staged {
    /// Its event is in the batch, or the filter dropped it: done.
    Queued,
    /// Its headers are in the scratch data, for `emit` (the folds).
    InScratch,
    /// Nothing: not staged (no payload), or the batch was busy.
    NotQueued,
}

/// Where an event's parts are, and which way it went: what `emit_staged` needs besides the
/// headers.
struct Place {
    tcp_off: usize,
    options_end: usize,
    direction: u8,
}

/// Queues the event of a packet whose headers are in the skb's linear area (not loaded yet)
/// straight into this CPU's batch, taken by the caller: copies them to where the next event
/// goes, and unless the filter drops it or it is for the folds (a foldable ACK, or a packet
/// of a flow with a fold pending), writes the event header in front and appends it. Nothing
/// is copied twice (first into the scratch, then into the batch), and the scratch's lines are
/// not touched (perf: that copy was a tenth of the egress program's samples on a sender, where
/// every egress packet is an event; the bench: egress 4–5 % less). The folds work on the
/// scratch (appending a fold writes where this event is staged): those packets' headers go
/// there, for `emit` (a pure ACK only comes here with Ethernet padding after it).
#[inline(always)]
fn emit_staged(
    skb: *mut __sk_buff,
    cpu: &mut Cpu<'_>,
    batch: &mut Batch,
    headers: &Headers,
    place: &Place,
    config: &FilterConfig,
) -> Result<Staged, Skip> {
    let (tcp_off, options_end, direction) = (place.tcp_off, place.options_end, place.direction);
    let event = batch.next_event();
    // SAFETY: `next_event` points to a whole `Event` in the batch.
    let data = unsafe { (*event).data.as_mut_ptr() };
    if let Err(skip) = copy_linear(skb, data, options_end) {
        batch.leave();
        return Err(skip);
    }
    let data = data.cast_const();
    if !filter_matches(config, data, headers.ipv6, tcp_off) {
        batch.leave();
        bump(cpu.counters, counter::FILTERED);
        return Ok(Staged::Queued);
    }
    let packet = Packet::of(skb, direction, headers, options_end);
    let event_len = size_of::<EventHeader>() + options_end;
    if config.fold_acks != 0 {
        let pending = batch.fold_of(&packet, data, tcp_off).is_some();
        if pending || foldable(data, headers.ipv6, tcp_off, options_end) {
            // SAFETY: whole `Event`s; the headers after the event header.
            unsafe {
                copy_words(
                    (&raw mut cpu.scratch.event).cast::<u64>(),
                    event.cast::<u64>(),
                    size_of::<EventHeader>() / 8,
                    (event_len + 7) / 8,
                );
            }
            batch.leave();
            return Ok(Staged::InScratch);
        }
    }
    // SAFETY: as above.
    let header = unsafe { &mut (*event).header };
    write_event_header(header, &packet);
    batch.append(event_len, cpu.counters);
    batch.leave();
    Ok(Staged::Queued)
}

/// Queues the packet's event: writes the event header in front of the headers in the scratch
/// data and appends both to this CPU's batch, or folds the packet into a pending event
/// (`Fold`) when `fold_acks` allows it. A packet that finds the batch busy (this program
/// interrupted the flush program, or the other way round) goes to the ring buffer on its own.
#[inline(always)]
fn emit(
    skb: *mut __sk_buff,
    cpu: &mut Cpu<'_>,
    direction: u8,
    headers: &Headers,
    options_end: usize,
    fold_acks: bool,
) {
    let (scratch, counters) = (&mut *cpu.scratch, &mut *cpu.counters);
    let packet = Packet::of(skb, direction, headers, options_end);
    // The event carries the headers only (IP, extension headers, TCP with its options: all
    // loaded by now). The payload after them would mostly come from page fragments (another
    // load) and nothing downstream reads it: the decoder takes lengths from the headers, never
    // from `cap_len`. The record ends with the last valid byte: less to copy, less ring space.
    let event_len = size_of::<EventHeader>() + options_end;
    let Some(batch) = take_batch(cpu.batch) else {
        write_event_header(&mut scratch.event.header, &packet);
        output_one(&scratch.event, event_len, counters);
        return;
    };
    let tcp_off = forget(cpu.cursor, headers.tcp_off);
    let data = scratch.event.data.as_ptr();
    if fold_acks && foldable(data, headers.ipv6, tcp_off, options_end) {
        let key = flow_key(data, packet.ifindex, direction, headers.ipv6, tcp_off);
        let pair = fold_slot(ports_at(data, tcp_off), direction);
        let ack = be32_at(data, tcp_off + 8);
        // The DATA_ACK's low 32 bits (4 or 8 bytes, it ends the option).
        let data_ack = be32_at(data, options_end - 4);
        let held = batch.slot_of(pair, &key);
        let folded = held
            .is_some_and(|slot| batch.fold_into(slot, ack, data_ack, scratch, event_len, counters));
        if !folded {
            let slot = held.unwrap_or_else(|| batch.slot_for_new(pair));
            write_event_header(&mut scratch.event.header, &packet);
            batch.start_fold(
                slot,
                key,
                ack,
                data_ack,
                &scratch.event,
                event_len,
                counters,
            );
        }
        batch.leave();
        return;
    }
    // Stamped once the batch is taken, so that no flush mark comes between the stamp and the
    // event's place in the batch (see `mptcp_trc_flush`). Where exactly made no difference
    // (perf: the TSC read's share stayed at a quarter even with the stamp before the batch).
    write_event_header(&mut scratch.event.header, &packet);
    if fold_acks {
        // The flow's folded ACKs come before this packet.
        if let Some(slot) = batch.fold_of(&packet, data, tcp_off) {
            batch.push_fold(slot, counters);
        }
    }
    batch.push(&raw const scratch.event, event_len, counters);
    batch.leave();
}

/// What an event header says of its packet, besides the time.
#[derive(Clone, Copy)]
struct Packet<'a> {
    ifindex: u32,
    direction: u8,
    headers: &'a Headers,
    options_end: usize,
    gso_segs: u32,
}

impl<'a> Packet<'a> {
    #[inline(always)]
    fn of(skb: *mut __sk_buff, direction: u8, headers: &'a Headers, options_end: usize) -> Self {
        // SAFETY: the context pointer the kernel passed to the program.
        let (ifindex, gso_segs) = unsafe { ((*skb).ifindex, (*skb).gso_segs) };
        Packet {
            ifindex,
            direction,
            headers,
            options_end,
            gso_segs,
        }
    }
}

/// Writes the event header of `packet`, stamped now, as three whole words: the copy into the
/// batch reads it back a word at a time, and a word read over narrower stores still in the
/// store buffer (a field each) waits for them to reach the cache (perf: the copy was the egress
/// program's hottest spot).
#[inline(always)]
fn write_event_header(to: &mut EventHeader, packet: &Packet<'_>) {
    let Packet {
        ifindex,
        direction,
        headers,
        options_end,
        gso_segs,
    } = *packet;
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
    let gso_segs = if gso_segs > u32::from(u16::MAX) {
        u16::MAX
    } else {
        gso_segs as u16
    };
    // The fields at their offsets in a little-endian word (checked below); `_pad` is 0.
    let words = [
        // SAFETY: helper without arguments.
        unsafe { bpf_ktime_get_ns() },
        u64::from(ifindex) | (u64::from(headers.net_len) << 32),
        (options_end as u64 & 0xffff)
            | (u64::from(direction) << 16)
            | (u64::from(flags) << 24)
            | (u64::from(gso_segs) << 32),
    ];
    let to = (&raw mut *to).cast::<u64>();
    for (i, word) in words.into_iter().enumerate() {
        // SAFETY: word `i` of the 24-byte, 8-aligned header. Volatile: one store per word.
        unsafe { ptr::write_volatile(to.add(i), word) };
    }
}

const _: () = {
    assert!(cfg!(target_endian = "little"));
    assert!(size_of::<EventHeader>() == 24);
    assert!(core::mem::offset_of!(EventHeader, ifindex) == 8);
    assert!(core::mem::offset_of!(EventHeader, skb_len) == 12);
    assert!(core::mem::offset_of!(EventHeader, cap_len) == 16);
    assert!(core::mem::offset_of!(EventHeader, direction) == 18);
    assert!(core::mem::offset_of!(EventHeader, flags) == 19);
    assert!(core::mem::offset_of!(EventHeader, gso_segs) == 20);
};

/// Whether two flow keys are equal, word by word without an early exit: `==` on the arrays
/// becomes a call to a byte-wise `memcmp`.
#[inline(always)]
fn same_key(a: &FlowKey, b: &FlowKey) -> bool {
    a.iter().zip(b).fold(0, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether `new` is at or after `old` in a 32-bit sequence space.
#[inline(always)]
fn forward(new: u32, old: u32) -> bool {
    (new.wrapping_sub(old) as i32) >= 0
}

/// Writes one event to the ring buffer as a record of its own (a batch of one).
#[inline(always)]
fn output_one(event: &Event, event_len: usize, counters: &mut Counters) {
    let event_len = if event_len > size_of::<Event>() {
        size_of::<Event>()
    } else {
        event_len
    };
    // SAFETY: `event_len` ≤ size_of::<Event>().
    let record =
        unsafe { core::slice::from_raw_parts((&raw const *event).cast::<u8>(), event_len) };
    if EVENTS
        .output::<[u8]>(record, wakeup_flag(event_len))
        .is_ok()
    {
        bump(counters, counter::EVENTS);
    } else {
        bump(counters, counter::RINGBUF_FULL);
    }
}

/// `BPF_RB_FORCE_WAKEUP` for the record that takes the queue across `WAKEUP_BYTES`,
/// `BPF_RB_NO_WAKEUP` for every other: below it the reader's timer poll collects the records.
#[inline(always)]
fn wakeup_flag(record_len: usize) -> u64 {
    // What the record takes in the ring: its 8-byte header plus the record, 8-aligned.
    let record_bytes = ((8 + record_len + 7) & !7) as u64;
    let queued = EVENTS.query(BPF_RB_AVAIL_DATA.into());
    if queued < WAKEUP_BYTES && queued + record_bytes >= WAKEUP_BYTES {
        BPF_RB_FORCE_WAKEUP.into()
    } else {
        BPF_RB_NO_WAKEUP.into()
    }
}

#[inline(always)]
fn add(counters: &mut Counters, index: u32, n: u64) {
    if let Some(value) = counters.get_mut(index as usize) {
        *value += n;
    }
}

#[inline(always)]
fn read_u64(data: *const u8, at: usize) -> u64 {
    // SAFETY: callers keep `at + 8` inside the scratch data (at most 40 here).
    unsafe { ptr::read_unaligned(data.add(at & 0xff).cast::<u64>()) }
}

/// The ports of the TCP header at `tcp_off` in the scratch data, as `flow_key` holds them.
#[inline(always)]
fn ports_at(data: *const u8, tcp_off: usize) -> u32 {
    // The four bytes in memory order, as `u32::from_ne_bytes` (and `fold_in_place`) reads them.
    be32_at(data, tcp_off).to_be()
}

/// The flow key of the headers in the scratch data, read at `tcp_off`.
#[inline(always)]
fn flow_key(data: *const u8, ifindex: u32, direction: u8, ipv6: bool, tcp_off: usize) -> FlowKey {
    let addresses = if ipv6 {
        [
            read_u64(data, 8),
            read_u64(data, 16),
            read_u64(data, 24),
            read_u64(data, 32),
        ]
    } else {
        [read_u64(data, 12), 0, 0, 0]
    };
    flow_key_of(ifindex, direction, ipv6, ports_at(data, tcp_off), addresses)
}

/// The flow key of a segment from its parts: the ports and the addresses (IPv4: the first
/// word) in memory order. `flow_key` and `fold_in_place` both make their keys here, so that a
/// fold one of them started is continued by the other.
#[inline(always)]
fn flow_key_of(
    ifindex: u32,
    direction: u8,
    ipv6: bool,
    ports: u32,
    addresses: [u64; 4],
) -> FlowKey {
    let first = u64::from(ifindex)
        ^ (u64::from(ports) << 32)
        ^ (u64::from(direction) << 8)
        ^ (u64::from(ipv6) << 16);
    let [a, b, c, d] = addresses;
    [first, a, b, c, d, u64::from(ifindex)]
}

/// The fold slot of a flow, the first of its pair (`slot ^ 1` is the other): its ports (as
/// `flow_key` holds them) mixed, and its direction, so that a subflow's data (whose ACKs the
/// other direction folds) finds its own direction's pair, not one held by its ACKs: the mix of
/// the ports is the same both ways.
#[inline(always)]
fn fold_slot(ports: u32, direction: u8) -> usize {
    let mixed = ports ^ (ports >> 16);
    let mixed = (mixed ^ (mixed >> 8)) as usize ^ (usize::from(direction) * (FOLD_SLOTS / 2));
    mixed & (FOLD_SLOTS - 1)
}

/// Whether the segment is a pure ACK whose only news is its acknowledgements: flags ACK, no
/// payload, options exactly NOP, NOP, timestamps and a DSS with a DATA_ACK and nothing else.
#[inline(always)]
fn foldable(data: *const u8, ipv6: bool, tcp_off: usize, options_end: usize) -> bool {
    // No payload: the IP length ends with the TCP options.
    let ip_len = if ipv6 {
        usize::from(be16(byte(data, 4), byte(data, 5))) + 40
    } else {
        usize::from(be16(byte(data, 2), byte(data, 3)))
    };
    if byte(data, tcp_off + 13) != 0x10 || ip_len != options_end {
        return false;
    }
    if !(byte(data, tcp_off + 20) == TCPOPT_NOP
        && byte(data, tcp_off + 21) == TCPOPT_NOP
        && byte(data, tcp_off + 22) == TCPOPT_TIMESTAMP
        && byte(data, tcp_off + 23) == TCPOLEN_TIMESTAMP
        && byte(data, tcp_off + 32) == TCPOPT_MPTCP)
    {
        return false;
    }
    let len = usize::from(byte(data, tcp_off + 33));
    let dss = byte(data, tcp_off + 35);
    // DSS (subtype 2) with the DATA_ACK flag only, 4 or 8 bytes of it (flag `a`).
    byte(data, tcp_off + 34) >> 4 == 2
        && tcp_off + 32 + len == options_end
        && dss & 0x1d == 0x01
        && ((len == 8 && dss & 0x02 == 0) || (len == 12 && dss & 0x02 != 0))
}

#[inline(always)]
fn be32_at(data: *const u8, at: usize) -> u32 {
    u32::from_be_bytes([
        byte(data, at),
        byte(data, at + 1),
        byte(data, at + 2),
        byte(data, at + 3),
    ])
}

/// Copies words `first..words` (at most `EVENT_WORDS`) of the event at `from` to `to`, eight
/// bytes at a time: the BPF target turns a struct copy into a call to a byte-wise `memcpy`.
///
/// # Safety
/// `from` points to a whole `Event`, `to` to `EVENT_WORDS` writable words; both 8-aligned.
#[inline(always)]
unsafe fn copy_words(to: *mut u64, from: *const u64, first: usize, words: usize) {
    for i in first..EVENT_WORDS {
        if i >= words {
            break;
        }
        // SAFETY: the caller's. Volatile, or the compiler makes the loop a `memcpy` call again.
        unsafe { ptr::write_volatile(to.add(i), ptr::read(from.add(i))) };
    }
}

/// `mptcp_trc_flush`: writes this CPU's folds and batch to the ring buffer, then a mark
/// (`FLAG_MARK`): an event header without data whose `ktime_ns` is now, `ifindex` this CPU and
/// `skb_len` the flush round the reader passed as argument 0. Every event this CPU stamped
/// before the mark is in the ring before it, every later one after it: once the reader has
/// read a round's marks from every CPU, it has every event older than the oldest of them, and
/// can hand them on in time order (the batches of different CPUs reach the ring in any order).
/// Never attached: the reader runs it on every CPU (`BPF_PROG_TEST_RUN` with
/// `BPF_F_TEST_RUN_ON_CPU`, an IPI) at each poll and before the last read. It counts in slots
/// the classifiers never touch (see `counter::FLUSHED_EVENTS`). A CPU whose batch is busy
/// writes no mark; the reader waits for the next round.
#[raw_tracepoint]
pub fn mptcp_trc_flush(ctx: RawTracePointContext) -> i32 {
    let Some(state) = STATE.get_ptr_mut(0) else {
        return 0;
    };
    // SAFETY: this CPU's counters; see `FLUSHED_EVENTS` for the slots this program counts in.
    let counters = unsafe { &mut (*state).counters };
    // SAFETY: a field of this CPU's state.
    let Some(batch) = take_batch(unsafe { &raw mut (*state).batch }) else {
        bump(counters, counter::FLUSH_BUSY);
        return 0;
    };
    // The folds first, into the batch; what that writes counts in the flush program's slots too.
    let mut fold_counters: Counters = [0; counter::COUNT as usize];
    for slot in 0..FOLD_SLOTS {
        batch.push_fold(slot, &mut fold_counters);
    }
    add(
        counters,
        counter::FLUSHED_EVENTS,
        fold_counters[counter::EVENTS as usize],
    );
    add(
        counters,
        counter::FLUSHED_RINGBUF_FULL,
        fold_counters[counter::RINGBUF_FULL as usize],
    );
    let (len, events) = batch.queued();
    if len != 0 {
        let (written, lost) = batch.write(len, events);
        add(counters, counter::FLUSHED_EVENTS, written);
        add(counters, counter::FLUSHED_RINGBUF_FULL, lost);
    }
    let round: u64 = ctx.arg(0);
    let mark = EventHeader {
        // SAFETY: helpers without arguments.
        ktime_ns: unsafe { bpf_ktime_get_ns() },
        ifindex: unsafe { bpf_get_smp_processor_id() },
        skb_len: round as u32,
        cap_len: 0,
        direction: 0,
        flags: FLAG_MARK,
        gso_segs: 0,
        _pad: 0,
    };
    // A lost mark (ring full) only delays the reader to the next round.
    let _ = EVENTS.output::<EventHeader>(&mark, BPF_RB_NO_WAKEUP.into());
    batch.leave();
    0
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

/// Copies the first `len` bytes from the network header of an untagged Ethernet frame (a
/// multiple of 4, all in the skb's linear area: see `linear_headers`) to the scratch data, a
/// word at a time straight from the packet. `bpf_skb_load_bytes` did this before: a helper
/// call, and a `memcpy` whose stores the copy into the batch then read back at other sizes and
/// offsets, stalling on each (perf: the copy into the batch was the egress program's hottest
/// spot after its entry).
#[inline(always)]
fn copy_linear(skb: *mut __sk_buff, data: *mut u8, len: usize) -> Result<(), Skip> {
    // SAFETY: the context pointer the kernel passed to the program.
    let (start, end) = unsafe { ((*skb).data as usize, (*skb).data_end as usize) };
    let from = start + ETH_HLEN;
    let words = len / 8;
    for i in 0..CAPTURE_LEN / 8 {
        if i >= words {
            break;
        }
        if from + 8 * i + 8 > end {
            return Err(Skip::Malformed);
        }
        // SAFETY: checked against the packet's end just above; `8 * i` < CAPTURE_LEN, inside
        // the scratch data. The build allows the misaligned load (see `continue_fold`).
        unsafe {
            let word = ptr::read_unaligned((from + 8 * i) as *const u64);
            ptr::write_volatile(data.add(8 * i).cast::<u64>(), word);
        }
    }
    if len % 8 != 0 {
        // The last four bytes: the packet may end with them.
        let at = (len - 4) & 0xff;
        // SAFETY: a local; read again so that the compiler keeps the check (see
        // `linear_headers`).
        let end = unsafe { ptr::read_volatile(&raw const end) };
        if from + at + 4 > end {
            return Err(Skip::Malformed);
        }
        // SAFETY: checked against the packet's end just above; `at` < 256, inside `Scratch`.
        unsafe {
            let word = ptr::read_unaligned((from + at) as *const u32);
            ptr::write_volatile(data.add(at).cast::<u32>(), word);
        }
    }
    Ok(())
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
fn ipv6_tcp_offset(cursor: Cursor, data: *const u8, cap: usize) -> Result<usize, Skip> {
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
        off = forget(cursor, off + len);
    }
    if next == IPPROTO_TCP {
        return Ok(off);
    }
    Err(Skip::NotTcp)
}

/// Walks the TCP options in `[start, end)` of the captured bytes looking for kind 30.
#[inline(always)]
fn has_mptcp_option(cursor: Cursor, data: *const u8, start: usize, end: usize) -> bool {
    // Most segments of an established connection start with NOP, NOP, timestamps (RFC 7323
    // appendix A's layout): step over the three in one go. The walk would end up at the same
    // offset, having seen no kind 30 on the way.
    let timestamps_first = byte(data, start) == TCPOPT_NOP
        && byte(data, start + 1) == TCPOPT_NOP
        && byte(data, start + 2) == TCPOPT_TIMESTAMP
        && byte(data, start + 3) == TCPOLEN_TIMESTAMP;
    let mut off = launder(
        cursor,
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
        off = launder(cursor, off + step);
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
