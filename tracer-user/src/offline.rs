//! Offline analysis of a capture file: read every record, feed the analyzer, report damage.

use std::{
    io::IsTerminal,
    path::Path,
    sync::mpsc,
    time::{Duration, Instant},
};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::{
    analysis::{
        Analyzer,
        record::{NoObserver, PacketObserver},
    },
    decode::{self, DecodeError, Packet},
    source::pcap::{CaptureError, CaptureReader},
};

/// Packets between two looks at the clock: reading the clock per packet would cost more than
/// reading the packet.
const PROGRESS_CHECK_EVERY: u64 = 16 * 1024;
/// At most this many redraws per second.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

#[derive(Clone, Debug, Default)]
pub struct OfflineOptions {
    /// Show a progress bar on stderr (only drawn when stderr is a terminal).
    pub progress: bool,
    /// Read and decode on the analysing thread instead of a second one: for callers that
    /// already keep every core busy with other threads (an export's writer), where a third
    /// thread would only take turns with the other two.
    pub one_thread: bool,
}

/// The analysis of everything that could be read, and the damage that stopped reading early.
pub struct OfflineReport {
    pub analyzer: Analyzer,
    /// Set when reading stopped before the end of the file (truncated or corrupt record): the
    /// analysis covers the records before it. Callers warn and exit non-zero.
    pub error: Option<CaptureError>,
}

/// Analyses a pcap or pcapng file (chosen by magic number; `-` is standard input, see
/// `CaptureReader::open`). `Err` only when nothing could be read at all (missing file, not a
/// capture file, damaged file header, unknown link type).
pub fn analyze_file(path: &Path, options: &OfflineOptions) -> Result<OfflineReport, CaptureError> {
    analyze_file_observed(path, options, &mut NoObserver)
}

/// `analyze_file`, handing each TCP segment's record (`analysis::record`), once analysed, to
/// `observer`, in file order.
pub fn analyze_file_observed<O: PacketObserver>(
    path: &Path,
    options: &OfflineOptions,
    observer: &mut O,
) -> Result<OfflineReport, CaptureError> {
    Ok(analyze_observed(
        CaptureReader::open(path)?,
        options,
        observer,
    ))
}

/// Analyses a capture handed over whole, on this thread, without a progress bar: the cheapest
/// way from bytes to an analysis (fuzzing, tests). `name` names it in errors.
pub fn analyze_bytes(name: &str, bytes: &[u8]) -> Result<OfflineReport, CaptureError> {
    let reader = CaptureReader::from_bytes(name, bytes.to_vec())?;
    Ok(analyze_on_this_thread(reader, &OfflineOptions::default()))
}

/// Analyses what `reader` reads.
///
/// Reading and decoding run on a second thread, the analysis on this one: the two halves of
/// the per-packet work are of similar size, and a machine with two cores does both at once.
/// Decoded packets travel in batches through a bounded channel and the batches come back to
/// be reused, so memory stays a few `BATCH_PACKETS * (BATCHES_IN_FLIGHT + 2)` packets. The
/// analysis sees every packet, decode error and non-TCP packet in file order, exactly as the
/// one-thread loop (used if the thread cannot be started, or if `options.one_thread` asks for
/// it) feeds them.
pub fn analyze(reader: CaptureReader, options: &OfflineOptions) -> OfflineReport {
    analyze_observed(reader, options, &mut NoObserver)
}

/// `analyze`, handing each TCP segment's record to `observer`, in file order.
pub fn analyze_observed<O: PacketObserver>(
    reader: CaptureReader,
    options: &OfflineOptions,
    observer: &mut O,
) -> OfflineReport {
    let progress = Progress::wanted(&reader, options);
    if options.one_thread {
        return analyze_reading(reader, progress, observer);
    }
    let mut analyzer = Analyzer::new();

    let (full_tx, full_rx) = mpsc::sync_channel::<Batch>(BATCHES_IN_FLIGHT);
    let (empty_tx, empty_rx) = mpsc::channel::<Batch>();
    // The reader goes to the decoding thread once it runs: if it cannot be started, the reader
    // is still here for the one-thread loop.
    let (start_tx, start_rx) = mpsc::sync_channel::<(CaptureReader, Option<Progress>)>(1);
    let mut unstarted = None;
    let decoded = std::thread::scope(|scope| {
        let spawned = std::thread::Builder::new()
            .name(String::from("decode"))
            .spawn_scoped(scope, move || {
                let (reader, progress) = start_rx.recv().ok()?;
                Some(read_and_decode(reader, progress, |batch| {
                    full_tx.send(batch).ok()?;
                    Some(empty_rx.try_recv().unwrap_or_else(|_| Batch::new()))
                }))
            });
        let Ok(decoder) = spawned else {
            unstarted = Some((reader, progress));
            return None;
        };
        // The thread waits for it; it cannot have gone.
        let _ = start_tx.send((reader, progress));
        // Consumed here, so that a panic in the analysis drops it and the decoding thread,
        // finding nobody to send to, stops instead of waiting forever.
        for batch in full_rx {
            feed_batch(&mut analyzer, &batch, observer);
            // The decoder may have finished and dropped its end: then nobody needs it back.
            let _ = empty_tx.send(batch);
        }
        Some(decoder.join())
    });
    let error = match decoded {
        Some(Ok(Some((error, progress)))) => {
            if let Some(progress) = progress {
                progress.bar.finish_and_clear();
            }
            error
        }
        Some(Ok(None)) => None,
        // The decoding thread panicked: the same panic, here.
        Some(Err(panic)) => std::panic::resume_unwind(panic),
        // No thread could be started: read on this thread alone.
        None => match unstarted {
            Some((reader, progress)) => return analyze_reading(reader, progress, observer),
            None => None,
        },
    };
    OfflineReport { analyzer, error }
}

/// Feeds one batch to the analysis, in file order.
fn feed_batch<O: PacketObserver>(analyzer: &mut Analyzer, batch: &Batch, observer: &mut O) {
    let mut errors = batch.errors.iter().peekable();
    for (i, (&tcp, packet)) in batch.tcp.iter().zip(&batch.packets).enumerate() {
        match errors.next_if(|(at, _, _)| *at == i) {
            Some((_, number, error)) => analyzer.feed_observed(*number, Err(error), observer),
            // The number is only used for errors; a packet not TCP leaves it stale.
            None => analyzer.feed_observed(packet.number, Ok(tcp.then_some(packet)), observer),
        }
    }
}

/// Packets per batch handed from the decoding thread to the analysis: enough that the channel
/// costs nothing per packet, few enough that the batches in flight stay in the caches.
const BATCH_PACKETS: usize = 2048;
/// Full batches the decoding thread may be ahead of the analysis.
const BATCHES_IN_FLIGHT: usize = 2;

/// Decoded packets in file order. Packet `i` of the batch is TCP when `tcp[i]`, and then
/// `packets[i]` holds it, unless `errors` has an entry for `i`: its number and why it could not
/// be decoded. What crosses from one thread to the other per packet is kept small: one flag
/// beside the packet.
struct Batch {
    tcp: Vec<bool>,
    /// `(i, packet number, error)` in increasing `i`.
    errors: Vec<(usize, u64, DecodeError)>,
    /// Decoded into in place and reused from batch to batch; grows to `BATCH_PACKETS` as
    /// needed, so a small capture does not pay for a megabyte of empty packets.
    packets: Vec<Packet>,
}

impl Batch {
    fn new() -> Batch {
        Batch {
            tcp: Vec::new(),
            errors: Vec::new(),
            packets: Vec::new(),
        }
    }

    fn clear(&mut self) {
        self.tcp.clear();
        self.errors.clear();
    }
}

/// What the decoding thread runs: reads every packet, decodes it into a batch, and gives each
/// full batch (and the last one) to `hand_over`, which returns an empty batch to go on with, or
/// `None` when the analysis side is gone (it panicked). Returns the damage that stopped
/// reading, if any, and the progress bar to finish.
fn read_and_decode(
    mut reader: CaptureReader,
    mut progress: Option<Progress>,
    mut hand_over: impl FnMut(Batch) -> Option<Batch>,
) -> (Option<CaptureError>, Option<Progress>) {
    let mut batch = Batch::new();
    let mut count: u64 = 0;
    let error = loop {
        match reader.next_packet() {
            Ok(Some(raw)) => {
                let i = batch.tcp.len();
                if i == batch.packets.len() {
                    batch.packets.push(Packet::empty());
                }
                match decode::decode_into(&raw, &mut batch.packets[i]) {
                    Ok(tcp) => batch.tcp.push(tcp),
                    Err(error) => {
                        batch.tcp.push(false);
                        batch.errors.push((i, raw.number, error));
                    }
                }
                count += 1;
                if batch.tcp.len() == BATCH_PACKETS {
                    let Some(mut next) = hand_over(batch) else {
                        return (None, progress);
                    };
                    next.clear();
                    batch = next;
                }
                if count.is_multiple_of(PROGRESS_CHECK_EVERY)
                    && let Some(progress) = &mut progress
                {
                    progress.maybe_update(reader.bytes_read(), count);
                }
            }
            Ok(None) => break None,
            Err(error) => break Some(error),
        }
    };
    if !batch.tcp.is_empty() {
        let _ = hand_over(batch);
    }
    (error, progress)
}

/// `analyze` with the decoding on this thread: the same batches, decoded and fed in the same
/// order, without a thread per capture. Tests and fuzzing compare it with the one-thread loop
/// (`analyze_on_this_thread`) on thousands of small captures a second.
pub fn analyze_in_batches(reader: CaptureReader) -> OfflineReport {
    let mut analyzer = Analyzer::new();
    let (error, _) = read_and_decode(reader, None, |batch| {
        feed_batch(&mut analyzer, &batch, &mut NoObserver);
        Some(batch)
    });
    OfflineReport { analyzer, error }
}

/// The one-thread loop: read, decode and analyse each packet in turn.
pub fn analyze_on_this_thread(reader: CaptureReader, options: &OfflineOptions) -> OfflineReport {
    let progress = Progress::wanted(&reader, options);
    analyze_reading(reader, progress, &mut NoObserver)
}

fn analyze_reading<O: PacketObserver>(
    mut reader: CaptureReader,
    mut progress: Option<Progress>,
    observer: &mut O,
) -> OfflineReport {
    let mut analyzer = Analyzer::new();
    let mut packet = Packet::empty();
    let mut count: u64 = 0;
    let error = loop {
        match reader.next_packet() {
            Ok(Some(raw)) => {
                let decoded = decode::decode_into(&raw, &mut packet);
                analyzer.feed_observed(
                    raw.number,
                    decoded.as_ref().map(|&tcp| tcp.then_some(&packet)),
                    observer,
                );
                count += 1;
                if count.is_multiple_of(PROGRESS_CHECK_EVERY)
                    && let Some(progress) = &mut progress
                {
                    progress.maybe_update(reader.bytes_read(), count);
                }
            }
            Ok(None) => break None,
            Err(error) => break Some(error),
        }
    };
    if let Some(progress) = progress {
        progress.bar.finish_and_clear();
    }
    OfflineReport { analyzer, error }
}

struct Progress {
    bar: ProgressBar,
    started: Instant,
    last_draw: Instant,
}

impl Progress {
    /// A progress bar if the options ask for one and stderr is a terminal.
    fn wanted(reader: &CaptureReader, options: &OfflineOptions) -> Option<Progress> {
        (options.progress && std::io::stderr().is_terminal())
            .then(|| Progress::new(reader.total_bytes()))
    }

    /// `total_bytes` is `None` for a stream: then the bar shows how much was read, not a bar.
    fn new(total_bytes: Option<u64>) -> Progress {
        let template = match total_bytes {
            Some(_) => {
                "{bar:30} {binary_bytes}/{binary_total_bytes} ({binary_bytes_per_sec}) {msg}"
            }
            None => "{binary_bytes} ({binary_bytes_per_sec}) {msg}",
        };
        let style =
            ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar());
        // Drawn only when we call set_position; the draw target's own rate limit is a backstop.
        let bar = ProgressBar::with_draw_target(total_bytes, ProgressDrawTarget::stderr())
            .with_style(style);
        let now = Instant::now();
        Progress {
            bar,
            started: now,
            last_draw: now,
        }
    }

    fn maybe_update(&mut self, bytes: u64, packets: u64) {
        let now = Instant::now();
        if now.duration_since(self.last_draw) < PROGRESS_INTERVAL {
            return;
        }
        self.last_draw = now;
        let seconds = now.duration_since(self.started).as_secs_f64();
        let rate = if seconds > 0.0 {
            packets as f64 / seconds
        } else {
            0.0
        };
        self.bar
            .set_message(format!("{packets} packets, {:.1} M packets/s", rate / 1e6));
        self.bar.set_position(bytes);
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::{analysis::record::PacketRecord, source::pcap::tests::TempDir};

    /// Everything the analysis tells about a file, as JSON text, and the damage report.
    fn everything(report: &OfflineReport) -> (String, Option<String>) {
        let a = &report.analyzer;
        let mut text = serde_json::to_string(a.diagnostics()).expect("serialisable");
        text += &serde_json::to_string(&a.tcp_list()).expect("serialisable");
        text += &serde_json::to_string(&a.mptcp_list()).expect("serialisable");
        for id in 0.. {
            let Some(summary) = a.mptcp_summary(id) else {
                break;
            };
            text += &serde_json::to_string(&summary).expect("serialisable");
        }
        for stream in 0.. {
            let Some(summary) = a.tcp_summary(stream) else {
                break;
            };
            text += &serde_json::to_string(&summary).expect("serialisable");
        }
        (text, report.error.as_ref().map(ToString::to_string))
    }

    /// The two-thread pipeline feeds the analysis exactly what the one-thread loop feeds it:
    /// the project's captures whole, cut inside their last record (damage at the end), and,
    /// for pcap files, their records 25 times over (several batches).
    #[test]
    fn pipeline_and_one_thread_give_the_same_analysis() {
        let data = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data"));
        let dir = TempDir::new("pipeline");
        let (mut files, mut most_packets, mut decode_errors) = (0, 0, 0);
        for entry in std::fs::read_dir(&data).expect("tests/data") {
            let path = entry.expect("directory entry").path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if !(name.ends_with(".pcap") || name.ends_with(".pcapng")) {
                continue;
            }
            let bytes = std::fs::read(&path).expect("capture");
            let mut files_of = vec![
                path.clone(),
                dir.file(&format!("cut-{name}"), &bytes[..bytes.len() - 7]),
            ];
            if name.ends_with(".pcap") {
                // A pcap file is its 24-byte header and its records, one after the other.
                let mut repeated = bytes.clone();
                for _ in 1..25 {
                    repeated.extend_from_slice(&bytes[24..]);
                }
                files_of.push(dir.file(&format!("x25-{name}"), &repeated));
                // Little-endian Ethernet captures: every 997th packet gets IP version 7, a
                // decode error (kept in order among the packets of its batch).
                if bytes[20..24] == [1, 0, 0, 0] {
                    let mut offset = 24;
                    let mut number = 1;
                    while let Some(header) = repeated.get(offset..offset + 16) {
                        let caplen =
                            u32::from_le_bytes([header[8], header[9], header[10], header[11]])
                                as usize;
                        if number % 997 == 0 && caplen > 14 {
                            repeated[offset + 16 + 14] = 0x75;
                        }
                        offset += 16 + caplen;
                        number += 1;
                    }
                    files_of.push(dir.file(&format!("bad-x25-{name}"), &repeated));
                }
            }
            for file in files_of {
                let options = OfflineOptions::default();
                let piped = analyze_file(&file, &options).expect("readable");
                let reader = CaptureReader::open(&file).expect("readable");
                let alone = analyze_on_this_thread(reader, &options);
                let bytes = std::fs::read(&file).expect("capture");
                let name = file.display().to_string();
                let in_memory = analyze_bytes(&name, &bytes).expect("readable");
                most_packets = most_packets.max(piped.analyzer.diagnostics().packets);
                decode_errors += piped.analyzer.diagnostics().decode_errors;
                let batched = analyze_in_batches(CaptureReader::open(&file).expect("readable"));
                assert_eq!(everything(&piped), everything(&alone), "{name}");
                assert_eq!(everything(&piped), everything(&batched), "{name}");
                assert_eq!(everything(&piped), everything(&in_memory), "{name}");
                // An observer (an export) sees the same records in the same order either way.
                let records = |one_thread| {
                    let mut records = Vec::new();
                    let options = OfflineOptions {
                        one_thread,
                        ..OfflineOptions::default()
                    };
                    let mut observer = |record: &PacketRecord| records.push(*record);
                    let report =
                        analyze_file_observed(&file, &options, &mut observer).expect("readable");
                    assert_eq!(everything(&piped), everything(&report), "{name}");
                    records
                };
                let (two_threads, one_thread) = (records(false), records(true));
                assert!(!two_threads.is_empty(), "{name}: no record");
                assert!(two_threads == one_thread, "{name}: the records differ");
            }
            files += 1;
        }
        assert!(
            files >= 5,
            "the project's captures are in {}",
            data.display()
        );
        assert!(
            most_packets > 2 * BATCH_PACKETS as u64,
            "{most_packets} packets at most"
        );
        assert!(decode_errors > 10, "{decode_errors} decode errors");
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write as _;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).expect("in memory");
        encoder.finish().expect("in memory")
    }

    /// A gzip-compressed capture, as a file and as bytes, analyses as the capture itself; cut
    /// short, it analyses as far as it goes and says where it stopped.
    #[test]
    fn gzip_captures_read_as_their_contents() {
        let dir = TempDir::new("gzip");
        let mut files = 0;
        for name in ["v4-2sf.pcap", "v6-2sf.pcapng"] {
            let path =
                PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data")).join(name);
            let bytes = std::fs::read(&path).expect("capture");
            let plain = analyze_bytes(name, &bytes).expect("readable");
            let compressed = gzip(&bytes);
            let gz = dir.file(&format!("{name}.gz"), &compressed);
            let from_file = analyze_file(&gz, &OfflineOptions::default()).expect("readable");
            let from_bytes = analyze_bytes(name, &compressed).expect("readable");
            assert!(plain.analyzer.diagnostics().packets > 10);
            assert_eq!(everything(&from_bytes), everything(&plain), "{name}");
            // Same analysis; only the name in a damage report could differ, and there is none.
            assert_eq!(everything(&from_file), everything(&plain), "{name}");

            let cut = analyze_bytes(name, &compressed[..compressed.len() / 2]).expect("header");
            let packets = cut.analyzer.diagnostics().packets;
            assert!(packets > 0 && packets < plain.analyzer.diagnostics().packets);
            let error = cut.error.expect("cut short").to_string();
            assert!(
                error.starts_with(name) && error.contains("offset"),
                "{error}"
            );
            files += 1;
        }
        assert_eq!(files, 2);
    }
}
