//! The `-w` path: every event also goes to a capture file through `CaptureWriter`. The writer
//! itself (pcapng) belongs to the output side, which `crate::live` plugs in; the trait keeps
//! this module free of it and lets the live loop's tests record what would be written without
//! touching the file system.

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
