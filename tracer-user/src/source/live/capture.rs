//! The `-w` path: every event also goes to a capture file through `CaptureWriter`. The writer
//! itself (pcapng) belongs to the output side, which `crate::live` plugs in; the trait keeps
//! this module free of it and lets the live loop's tests record what would be written without
//! touching the file system.

use std::time::Duration;

/// When `-w` moves on to a new file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rotation {
    /// `-C`: past this many bytes, the next packet starts a new file.
    pub max_bytes: Option<u64>,
    /// `-G`: a packet this long after the file's first one starts a new file.
    pub interval: Option<Duration>,
    /// `-W`: keep only the newest this many files.
    pub keep: Option<usize>,
}

impl Rotation {
    /// Whether any rotation was asked for.
    pub fn rotates(&self) -> bool {
        self.max_bytes.is_some() || self.interval.is_some()
    }
}

/// What the live loop needs from a capture writer; errors are already rendered for the user
/// and name the file.
pub(crate) trait CaptureWriter {
    /// Declares an interface; returns the id `write_packet` takes.
    fn add_interface(
        &mut self,
        name: &str,
        ifindex: u32,
        netns: Option<&str>,
    ) -> Result<u32, String>;
    fn write_packet(
        &mut self,
        iface_id: u32,
        ts_ns: u64,
        inbound: bool,
        data: &[u8],
        orig_len: u32,
        gso_segs: u16,
    ) -> Result<(), String>;
    fn flush(&mut self) -> Result<(), String>;
}
