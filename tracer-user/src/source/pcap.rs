//! Capture files: pcap (all four magics) and pcapng, chosen by magic number, read from a memory
//! map without copying records.

/// A capture file that could not be read, naming the file and, where known, the record.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{path}: {what}")]
    Other { path: String, what: String },
}
