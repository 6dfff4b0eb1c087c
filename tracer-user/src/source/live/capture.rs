//! The `-w` path: every event also goes to a pcapng file through `CaptureWriter`.
//!
//! STAND-IN (branch h-live only). The pcapng writer (`output::pcapng::PcapngEventWriter`) is
//! written on another branch; in this worktree `output/pcapng.rs` is still a stub. Until the
//! merge, `standin::PcapngEventWriter` below has the agreed API and refuses to create files, so
//! `-w` fails with a clear error. At merge: delete `mod standin` and its `use`, and import
//! `crate::output::pcapng::PcapngEventWriter` instead; nothing else changes.

use std::path::Path;

use self::standin::PcapngEventWriter;

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

/// STAND-IN for `crate::output::pcapng::PcapngEventWriter` (see the module comment).
mod standin {
    use std::path::Path;

    #[derive(Debug, thiserror::Error)]
    #[error("writing pcapng is not available in this build (pcapng writer not merged yet)")]
    pub(crate) struct Unavailable;

    pub(crate) struct PcapngEventWriter;

    impl PcapngEventWriter {
        pub(crate) fn create(_path: &Path, _force: bool) -> Result<Self, Unavailable> {
            Err(Unavailable)
        }

        pub(crate) fn add_interface(
            &mut self,
            _name: &str,
            _ifindex: u32,
            _netns: Option<&str>,
        ) -> Result<u32, Unavailable> {
            Err(Unavailable)
        }

        pub(crate) fn write_packet(
            &mut self,
            _iface_id: u32,
            _ts_ns: u64,
            _inbound: bool,
            _data: &[u8],
            _orig_len: u32,
        ) -> Result<(), Unavailable> {
            Err(Unavailable)
        }

        pub(crate) fn flush(&mut self) -> Result<(), Unavailable> {
            Err(Unavailable)
        }
    }
}
