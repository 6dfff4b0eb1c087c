//! The `-w` path: every event also goes to a pcapng file through `CaptureWriter`, implemented
//! by `output::pcapng::PcapngEventWriter`. The trait lets the live loop's tests record what
//! would be written without touching the file system.

use std::path::Path;

use crate::output::pcapng::PcapngEventWriter;

/// What the live loop needs from a capture writer; errors are already rendered for the user.
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
    ) -> Result<(), String>;
    fn flush(&mut self) -> Result<(), String>;
}

/// Opens the pcapng writer for `-w PATH`.
pub(super) fn create(path: &Path, force: bool) -> Result<Box<dyn CaptureWriter>, String> {
    let writer = PcapngEventWriter::create(path, force).map_err(|e| e.to_string())?;
    Ok(Box::new(writer))
}

impl CaptureWriter for PcapngEventWriter {
    fn add_interface(
        &mut self,
        name: &str,
        ifindex: u32,
        netns: Option<&str>,
    ) -> Result<u32, String> {
        PcapngEventWriter::add_interface(self, name, ifindex, netns).map_err(|e| e.to_string())
    }

    fn write_packet(
        &mut self,
        iface_id: u32,
        ts_ns: u64,
        inbound: bool,
        data: &[u8],
        orig_len: u32,
    ) -> Result<(), String> {
        PcapngEventWriter::write_packet(self, iface_id, ts_ns, inbound, data, orig_len)
            .map_err(|e| e.to_string())
    }

    fn flush(&mut self) -> Result<(), String> {
        PcapngEventWriter::flush(self).map_err(|e| e.to_string())
    }
}
