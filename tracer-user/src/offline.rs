//! Offline analysis of a capture file: read every record, feed the analyzer, report damage.

use std::{
    io::IsTerminal,
    path::Path,
    time::{Duration, Instant},
};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::{
    analysis::Analyzer,
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
}

/// The analysis of everything that could be read, and the damage that stopped reading early.
pub struct OfflineReport {
    pub analyzer: Analyzer,
    /// Set when reading stopped before the end of the file (truncated or corrupt record): the
    /// analysis covers the records before it. Callers warn and exit non-zero.
    pub error: Option<CaptureError>,
}

/// Analyses a pcap or pcapng file (chosen by magic number). `Err` only when nothing could be
/// read at all (missing file, not a capture file, damaged file header, unknown link type).
pub fn analyze_file(path: &Path, options: &OfflineOptions) -> Result<OfflineReport, CaptureError> {
    let mut reader = CaptureReader::open(path)?;
    let mut analyzer = Analyzer::new();
    let mut progress = (options.progress && std::io::stderr().is_terminal())
        .then(|| Progress::new(reader.total_bytes()));

    let mut count: u64 = 0;
    let error = loop {
        match reader.next_packet() {
            Ok(Some(packet)) => {
                analyzer.feed_raw(&packet);
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

    Ok(OfflineReport { analyzer, error })
}

struct Progress {
    bar: ProgressBar,
    started: Instant,
    last_draw: Instant,
}

impl Progress {
    fn new(total_bytes: u64) -> Progress {
        let style = ProgressStyle::with_template(
            "{bar:30} {binary_bytes}/{binary_total_bytes} ({binary_bytes_per_sec}) {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        // Drawn only when we call set_position; the draw target's own rate limit is a backstop.
        let bar = ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr())
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
