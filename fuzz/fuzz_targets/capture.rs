//! Capture file bytes → reader (pcap/pcapng, gzip) → decoder → analysis → every summary. The
//! offline path decodes ahead in batches (on a second thread); the plain loop that decodes and
//! feeds one packet at a time must give the same answers, byte for byte, and the same damage
//! report. The batches are compared on this thread (`analyze_in_batches`): a thread per input
//! would cost more than the rest of the run; the threaded transport is unit-tested.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mptcp_tracer::{offline, source::pcap::CaptureReader};
use mptcp_tracer_fuzz::report;

fuzz_target!(|data: &[u8]| {
    let alone = offline::analyze_bytes("fuzz", data);
    let batched = CaptureReader::from_bytes("fuzz", data.to_vec()).map(offline::analyze_in_batches);
    match (alone, batched) {
        (Ok(alone), Ok(batched)) => assert_eq!(report(&alone), report(&batched)),
        (Err(alone), Err(batched)) => assert_eq!(alone.to_string(), batched.to_string()),
        (alone, batched) => panic!(
            "one at a time: {:?}, in batches: {:?}",
            alone.map(|r| report(&r)),
            batched.map(|r| report(&r))
        ),
    }
});
