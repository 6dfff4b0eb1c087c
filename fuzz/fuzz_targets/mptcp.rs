//! MPTCP connections generated from fixed keys (`scenario`) → Ethernet frames → analysis →
//! every summary, serialised.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mptcp_tracer::{
    analysis::Analyzer,
    decode::{self, Packet},
    source::{Direction, LinkType, RawPacket},
};
use mptcp_tracer_fuzz::{scenario::Scenario, summaries};

/// Enough for several subflows' handshakes and data; more only slows each run.
const MAX_FRAMES: usize = 256;

fuzz_target!(|scenario: Scenario| {
    let mut analyzer = Analyzer::new();
    let mut packet = Packet::empty();
    for (i, (bytes, wire_len)) in scenario.build(MAX_FRAMES).frames.iter().enumerate() {
        let number = i as u64 + 1;
        let raw = RawPacket {
            number,
            ts_ns: 1_700_000_000_000_000_000 + number * 1_000_000,
            iface: 0,
            direction: Direction::Unknown,
            link_type: LinkType::Ethernet,
            data: bytes,
            orig_len: *wire_len,
            segments: 1,
        };
        let decoded = decode::decode_into(&raw, &mut packet);
        analyzer.feed_decoded(number, decoded.as_ref().map(|&tcp| tcp.then_some(&packet)));
    }
    let _ = summaries(&analyzer);
});
