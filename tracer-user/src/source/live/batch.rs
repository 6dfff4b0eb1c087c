//! The classifiers queue events per CPU and write them to the ring buffer in batches (see
//! `Batch` in the eBPF crate): one ring-buffer record holds one or more events. This module
//! splits such a record into its events, and runs the flush program that writes a CPU's
//! unfinished batch, so that events of a CPU whose traffic stopped still arrive.

use aya::{
    Ebpf,
    programs::{RawTracePoint, RawTracePointRunOptions, TestRun},
    util::online_cpus,
};
use tracer_common::{CAPTURE_LEN, EventHeader};

use super::{LiveError, error_chain};

/// The program that writes its CPU's batch to the ring buffer.
pub(super) const FLUSH_PROGRAM: &str = "mptcp_trc_flush";

/// Loads the flush program (it is never attached: `flush` runs it).
pub(super) fn load(ebpf: &mut Ebpf) -> Result<(), LiveError> {
    program_mut(ebpf)?
        .load()
        .map_err(|e| LiveError::Load(format!("{FLUSH_PROGRAM}: {}", error_chain(&e))))
}

fn program_mut(ebpf: &mut Ebpf) -> Result<&mut RawTracePoint, LiveError> {
    ebpf.program_mut(FLUSH_PROGRAM)
        .ok_or_else(|| LiveError::Load(format!("no {FLUSH_PROGRAM} program in the object")))?
        .try_into()
        .map_err(|e| LiveError::Load(format!("{FLUSH_PROGRAM}: {}", error_chain(&e))))
}

/// Runs the flush program on every online CPU (`BPF_PROG_TEST_RUN` pinned to the CPU: an IPI,
/// or a direct call on the reader's own CPU). A CPU whose classifier was changing its batch at
/// that moment keeps the batch for the next flush (the `FLUSH_BUSY` counter counts those).
/// `round` goes to the program as its argument 0 and comes back in the marks; returns the
/// number of CPUs the round ran on.
pub(super) fn flush(ebpf: &Ebpf, round: u64) -> Result<usize, String> {
    let program: &RawTracePoint = ebpf
        .program(FLUSH_PROGRAM)
        .ok_or_else(|| format!("no {FLUSH_PROGRAM} program"))?
        .try_into()
        .map_err(|e| format!("{FLUSH_PROGRAM}: {}", error_chain(&e)))?;
    let cpus = online_cpus().map_err(|(path, e)| format!("reading {path}: {e}"))?;
    let count = cpus.len();
    for cpu in cpus {
        let mut options = RawTracePointRunOptions {
            cpu: Some(cpu),
            ..RawTracePointRunOptions::new()
        };
        options.args[0] = round;
        program
            .test_run(options)
            .map_err(|e| format!("flushing CPU {cpu}'s events: {}", error_chain(&e)))?;
    }
    Ok(count)
}

const HEADER_LEN: usize = size_of::<EventHeader>();

/// One event of a record: its header and its `cap_len` bytes, or `None` for bytes that do not
/// make an event (a damaged record; the rest of the record is skipped).
pub(super) type RecordEvent<'a> = Option<(EventHeader, &'a [u8])>;

/// The events in a ring-buffer record, in the order the classifier queued them. Each is its
/// header followed by `cap_len` bytes, padded to 8 bytes; a record of one event may end right
/// after its data.
pub(super) fn events(record: &[u8]) -> impl Iterator<Item = RecordEvent<'_>> {
    let mut rest = record;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let Some((header, data)) = first_event(rest) else {
            rest = &[];
            return Some(None);
        };
        let len = HEADER_LEN + data.len();
        rest = rest.get(len.next_multiple_of(8)..).unwrap_or_default();
        Some(Some((header, data)))
    })
}

/// The event at the start of `bytes`, if they hold a whole one.
fn first_event(bytes: &[u8]) -> Option<(EventHeader, &[u8])> {
    let header = parse_header(bytes)?;
    let cap_len = usize::from(header.cap_len);
    if cap_len > CAPTURE_LEN {
        return None;
    }
    Some((header, bytes.get(HEADER_LEN..HEADER_LEN + cap_len)?))
}

/// The fixed header at the start of an event.
fn parse_header(bytes: &[u8]) -> Option<EventHeader> {
    let bytes = bytes.get(..HEADER_LEN)?;
    // SAFETY: `EventHeader` is #[repr(C)] plain old data and `bytes` holds exactly its size;
    // read_unaligned copes with any alignment.
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<EventHeader>()) })
}

#[cfg(test)]
mod tests {
    use tracer_common::DIRECTION_EGRESS;

    use super::*;

    fn header(ktime_ns: u64, cap_len: u16) -> EventHeader {
        EventHeader {
            ktime_ns,
            ifindex: 7,
            skb_len: 1500,
            cap_len,
            direction: DIRECTION_EGRESS,
            flags: 0,
            gso_segs: 1,
            _pad: 0,
        }
    }

    /// A record as the classifier writes it: each event's header and `cap_len` bytes (all
    /// `fill`), padded to 8 bytes unless `pad_last` is false for the last one.
    fn record(events: &[(u64, u16, u8)], pad_last: bool) -> Vec<u8> {
        let mut bytes = Vec::new();
        for (i, &(ktime_ns, cap_len, fill)) in events.iter().enumerate() {
            let header = header(ktime_ns, cap_len);
            // SAFETY: EventHeader is #[repr(C)] plain old data without padding bytes.
            let raw =
                unsafe { std::slice::from_raw_parts((&raw const header).cast::<u8>(), HEADER_LEN) };
            bytes.extend_from_slice(raw);
            bytes.extend(std::iter::repeat_n(fill, usize::from(cap_len)));
            if pad_last || i + 1 < events.len() {
                bytes.resize(bytes.len().next_multiple_of(8), 0xee);
            }
        }
        bytes
    }

    fn summary(record: &[u8]) -> Vec<Option<(u64, usize, u8)>> {
        events(record)
            .map(|event| event.map(|(h, data)| (h.ktime_ns, data.len(), data[0])))
            .collect()
    }

    #[test]
    fn one_event_ends_with_its_data() {
        // 24 + 60 = 84 bytes: as `output_one` writes it, no padding.
        let bytes = record(&[(5, 60, 0xab)], false);
        assert_eq!(bytes.len(), 84);
        assert_eq!(summary(&bytes), [Some((5, 60, 0xab))]);
    }

    #[test]
    fn a_batch_holds_its_events_in_order_each_padded_to_eight() {
        // 84 → 88, 104, 76 → 80 bytes: the padding must be skipped, not read as a header.
        let bytes = record(&[(1, 60, 0x11), (2, 80, 0x22), (3, 52, 0x33)], true);
        assert_eq!(bytes.len(), 88 + 104 + 80);
        assert_eq!(
            summary(&bytes),
            [
                Some((1, 60, 0x11)),
                Some((2, 80, 0x22)),
                Some((3, 52, 0x33))
            ]
        );
    }

    #[test]
    fn damaged_records_end_with_one_loss() {
        // The second event's data runs past the record's end.
        let mut bytes = record(&[(1, 60, 0x11), (2, 80, 0x22)], true);
        bytes.truncate(88 + 50);
        assert_eq!(summary(&bytes), [Some((1, 60, 0x11)), None]);
        // A cap_len beyond CAPTURE_LEN, and bytes too few for a header.
        let bytes = record(&[(1, 200, 0x11)], false);
        assert_eq!(summary(&bytes), [None]);
        assert_eq!(summary(&[0; 10]), [None]);
        assert_eq!(summary(&[]), []);
    }
}
