//! Offline analysis of a capture file: read every record, feed the analyzer, report damage.

use std::path::Path;

use crate::{analysis::Analyzer, source::pcap::CaptureError};

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
    todo!("pcap helper: {} {options:?}", path.display())
}
