//! A live trace, driven: the events `source::live` collects go to an `Analyzer` and, with `-w`,
//! to a pcapng file; the caller sees the analysis every interval and gets it at the end. The
//! counterpart of `offline.rs` for the ring buffer: `source::live` knows neither the analysis
//! nor the output formats, and this module is where the three meet.
//!
//! `trace` feeds one `Analyzer`; `trace_evicting` feeds `evict::Generations`, which with
//! `--long-run` summarises ended connections once and forgets them (see `evict`).

pub mod evict;
pub mod rotate;

use std::{ops::ControlFlow, path::Path};

pub use self::evict::{Ended, Eviction, Generations, Snapshot};
use crate::{
    analysis::{Analyzer, summary::MptcpList},
    decode::{self, Packet},
    output::pcapng::PcapngEventWriter,
    source::{
        RawPacket,
        live::{self, CaptureWriter, EventSink, LiveError, LiveStats, TraceOptions, error_chain},
    },
};

/// What a finished trace saw.
pub struct TraceOutcome {
    pub analyzer: Analyzer,
    pub stats: LiveStats,
    /// Problems of the run that did not stop it (an interface gone, the `-w` file failing).
    pub warnings: Vec<String>,
}

/// Traces until `duration`, SIGINT, SIGTERM or `options.stop`; calls `on_interval` every
/// `interval` with the analysis so far, and ends as on SIGINT when it returns `Break` (its
/// reader went away). Detaches everything it attached before returning.
pub fn trace(
    options: &TraceOptions,
    on_interval: &mut dyn FnMut(&Analyzer, &LiveStats) -> ControlFlow<()>,
) -> Result<TraceOutcome, LiveError> {
    let mut analyzer = Analyzer::new();
    let (stats, warnings) =
        live::run(options, &mut analyzer, make_writer(options), &mut |a, s| {
            on_interval(a, s)
        })?;
    Ok(TraceOutcome {
        analyzer,
        stats,
        warnings,
    })
}

/// What a finished `trace_evicting` saw.
pub struct EvictingOutcome {
    pub state: Generations,
    /// What ended between the last interval and the end of the trace.
    pub ended: Vec<Ended>,
    pub stats: LiveStats,
    pub warnings: Vec<String>,
}

/// `trace_evicting`'s interval callback: the state left, the counters, what just ended.
pub type EvictingInterval<'a> =
    dyn FnMut(&Generations, &LiveStats, Vec<Ended>) -> ControlFlow<()> + 'a;

/// `trace` into `Generations`: with `eviction`, every interval first summarises and forgets
/// what ended (`Generations::evict`) and hands that to `on_interval` with the state left.
pub fn trace_evicting(
    options: &TraceOptions,
    eviction: Option<Eviction>,
    on_interval: &mut EvictingInterval<'_>,
) -> Result<EvictingOutcome, LiveError> {
    let mut state = Generations::new(eviction);
    let (stats, warnings) = live::run(
        options,
        &mut state,
        make_writer(options),
        &mut |state, stats| {
            let ended = state.evict(stats.now());
            on_interval(state, stats, ended)
        },
    )?;
    let ended = state.evict(stats.now());
    Ok(EvictingOutcome {
        state,
        ended,
        stats,
        warnings,
    })
}

/// Creates the `-w` writer when `live::run` is ready for it.
fn make_writer(
    options: &TraceOptions,
) -> impl FnOnce() -> Result<Option<Box<dyn CaptureWriter>>, LiveError> + '_ {
    move || match &options.write {
        Some(path) if options.rotation.rotates() => {
            let writer = rotate::RotatingWriter::create(path, options.rotation, options.force)
                .map_err(|e| LiveError::Write(error_chain(&e)))?;
            Ok(Some(Box::new(writer) as Box<dyn CaptureWriter>))
        }
        Some(path) => create_writer(path, options.force).map(Some),
        None => Ok(None),
    }
}

/// The ids of `list`'s connections still open at the last packet (`Analyzer::mptcp_open`).
pub fn open_connections(analyzer: &Analyzer, list: &MptcpList) -> Vec<u64> {
    list.mptcp_connections
        .iter()
        .map(|connection| connection.id)
        .filter(|&id| analyzer.mptcp_open(id) == Some(true))
        .collect()
}

impl EventSink for Analyzer {
    fn packet(&mut self, raw: &RawPacket<'_>) {
        // A `Packet` is plain data (no heap): one on the stack per event costs a few hundred
        // bytes of writes, nothing next to the event's trip from the kernel.
        let mut packet = Packet::empty();
        let decoded = decode::decode_into(raw, &mut packet);
        self.feed_decoded(
            raw.number,
            decoded.as_ref().map(|&tcp| tcp.then_some(&packet)),
        );
    }
}

/// Opens the pcapng writer for `-w PATH`. Its errors name the path already.
fn create_writer(path: &Path, force: bool) -> Result<Box<dyn CaptureWriter>, LiveError> {
    let writer =
        PcapngEventWriter::create(path, force).map_err(|e| LiveError::Write(error_chain(&e)))?;
    Ok(Box::new(writer))
}

impl CaptureWriter for PcapngEventWriter {
    fn add_interface(
        &mut self,
        name: &str,
        ifindex: u32,
        netns: Option<&str>,
    ) -> Result<u32, String> {
        PcapngEventWriter::add_interface(self, name, ifindex, netns).map_err(|e| error_chain(&e))
    }

    fn write_packet(
        &mut self,
        iface_id: u32,
        ts_ns: u64,
        inbound: bool,
        data: &[u8],
        orig_len: u32,
        gso_segs: u16,
    ) -> Result<(), String> {
        PcapngEventWriter::write_packet(self, iface_id, ts_ns, inbound, data, orig_len, gso_segs)
            .map_err(|e| error_chain(&e))
    }

    fn flush(&mut self) -> Result<(), String> {
        PcapngEventWriter::flush(self).map_err(|e| error_chain(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file of the user's is never overwritten without `--force`, and the refusal names it
    /// once (it was printed twice when the writer's error and the caller both added the path).
    #[test]
    fn existing_output_file_is_refused_naming_it_once() {
        let path =
            std::env::temp_dir().join(format!("mptcp-tracer-live-{}.pcapng", std::process::id()));
        std::fs::write(&path, b"the user's").expect("writes");
        let error = create_writer(&path, false).err().map(|e| e.to_string());
        let kept = std::fs::read(&path).expect("reads");
        std::fs::remove_file(&path).expect("removes");
        let error = error.expect("refused");
        assert_eq!(
            error.matches(&path.display().to_string()).count(),
            1,
            "{error}"
        );
        assert!(error.contains("already exists"), "{error}");
        assert_eq!(kept, b"the user's");
    }

    #[test]
    fn write_errors_carry_their_cause_once() {
        let path = Path::new("/nonexistent-directory/out.pcapng");
        let error = create_writer(path, true).err().map(|e| e.to_string());
        let error = error.expect("fails");
        assert_eq!(
            error,
            "/nonexistent-directory/out.pcapng: cannot write: No such file or directory (os error 2)"
        );
    }
}
