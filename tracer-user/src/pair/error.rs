//! Why a two-capture analysis could not be made.

use std::path::PathBuf;

use crate::source::pcap::CaptureError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PairError {
    /// A capture could not be read at all.
    #[error(transparent)]
    Capture(#[from] CaptureError),
    /// The connection asked for has no data or handshake in a capture.
    #[error("{path}: no packet of MPTCP connection {id}")]
    NoConnection { path: PathBuf, id: u64 },
    /// A thread reading a capture could not be started or failed.
    #[error("reading {path} on its own thread failed")]
    Thread { path: PathBuf },
    /// Writing the result (or its spill file) failed.
    #[error("writing the result: {0}")]
    Io(#[from] std::io::Error),
}
