//! Raw packets of every link type → `decode` and `decode_into` (on a packet reused from the
//! previous one, as the offline path reuses it) must agree → analysis → every summary.
//!
//! Input: records of [link type selector, original length extra, length (2 bytes LE), bytes].
#![no_main]

use libfuzzer_sys::fuzz_target;
use mptcp_tracer::{
    analysis::Analyzer,
    decode::{self, Decoded, Packet},
    source::{Direction, LinkType, RawPacket},
};
use mptcp_tracer_fuzz::summaries;

const LINK_TYPES: [LinkType; 9] = [
    LinkType::Ethernet,
    LinkType::Raw,
    LinkType::Ipv4,
    LinkType::Ipv6,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::Null,
    LinkType::Loop,
    LinkType::Ppp,
];

fuzz_target!(|data: &[u8]| {
    let mut analyzer = Analyzer::new();
    let mut reused = Packet::empty();
    let mut rest = data;
    let mut number = 0;
    while let [selector, extra, low, high, tail @ ..] = rest {
        let len = usize::from(u16::from_le_bytes([*low, *high])).min(tail.len());
        let (bytes, next) = tail.split_at(len);
        rest = next;
        number += 1;
        let raw = RawPacket {
            number,
            ts_ns: number * 1_000,
            iface: 0,
            direction: Direction::Unknown,
            link_type: LINK_TYPES[usize::from(*selector) % LINK_TYPES.len()],
            data: bytes,
            // Mostly the captured length; sometimes a snap length cut the packet.
            orig_len: (len + usize::from(*extra >> 4) * 64) as u32,
            segments: 1 + u32::from(*selector >> 7),
        };
        let fresh = decode::decode(&raw);
        let in_place = decode::decode_into(&raw, &mut reused);
        match (&fresh, &in_place) {
            (Ok(Decoded::Tcp(packet)), Ok(true)) => assert_eq!(packet, &reused),
            (Ok(Decoded::NotTcp), Ok(false)) => {}
            (Err(fresh), Err(in_place)) => assert_eq!(fresh, in_place),
            (fresh, in_place) => panic!("decode: {fresh:?}, decode_into: {in_place:?}"),
        }
        analyzer.feed_decoded(
            raw.number,
            in_place.as_ref().map(|&tcp| tcp.then_some(&reused)),
        );
    }
    let _ = summaries(&analyzer);
});
