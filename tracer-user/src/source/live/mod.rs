//! Live tracing: load the embedded eBPF object, attach the TC classifiers, read the ring buffer
//! with tokio, feed every event to the same `Analyzer` the offline path uses.

use std::{net::IpAddr, path::PathBuf, time::Duration};

use crate::analysis::Analyzer;

/// How the classifiers are attached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AttachMode {
    /// TCX on kernels that have it (≥ 6.6), netlink clsact otherwise.
    #[default]
    Auto,
    Tcx,
    Netlink,
}

#[derive(Clone, Debug, Default)]
pub struct TraceOptions {
    pub interfaces: Vec<String>,
    /// Network namespace (a name under /run/netns) the interfaces live in.
    pub netns: Option<String>,
    /// pcapng file of the events.
    pub write: Option<PathBuf>,
    /// Overwrite `write` if it exists.
    pub force: bool,
    /// Stop after this long (otherwise on SIGINT/SIGTERM).
    pub duration: Option<Duration>,
    /// How often `on_interval` is called.
    pub interval: Duration,
    pub all_tcp: bool,
    pub port: Option<u16>,
    pub addr: Option<IpAddr>,
    pub attach: AttachMode,
}

/// Counters of one run: what the kernel saw and what reached the analysis.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct LiveStats {
    pub packets_seen: u64,
    pub tcp_packets: u64,
    pub mptcp_packets: u64,
    pub events_emitted: u64,
    /// Events the kernel could not queue because the ring buffer was full.
    pub ringbuf_full: u64,
    pub load_errors: u64,
    pub filtered: u64,
    /// Events received by userspace.
    pub events_received: u64,
    /// Events received but lost in userspace (e.g. short reads).
    pub userspace_lost: u64,
}

pub struct TraceOutcome {
    pub analyzer: Analyzer,
    pub stats: LiveStats,
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("{0}")]
    Other(String),
}

/// Traces until `duration`, SIGINT or SIGTERM; calls `on_interval` every `interval` with the
/// analysis so far. Detaches everything it attached before returning.
pub fn trace(
    options: &TraceOptions,
    on_interval: &mut dyn FnMut(&Analyzer, &LiveStats),
) -> Result<TraceOutcome, LiveError> {
    let _ = on_interval;
    todo!("live helper: {options:?}")
}
