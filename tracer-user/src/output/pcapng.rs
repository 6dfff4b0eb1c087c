//! The live tracer's events as a pcapng file: one interface description per traced interface,
//! link type RAW (the events start at the IP header), nanosecond timestamps, and the direction
//! in each packet's `epb_flags`. Wireshark and tshark read it as any capture.

use std::{
    borrow::Cow,
    fs::{File, OpenOptions},
    io::{self, BufWriter, Write},
    path::Path,
    time::Duration,
};

use pcap_file::{
    DataLink, Endianness, PcapError,
    pcapng::{
        PcapNgWriter,
        blocks::{
            enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption},
            interface_description::{InterfaceDescriptionBlock, InterfaceDescriptionOption},
            section_header::{SectionHeaderBlock, SectionHeaderOption},
        },
    },
};

/// `if_tsresol` = 9: timestamps in nanoseconds.
const TSRESOL_NANOSECONDS: u8 = 9;
/// `epb_flags` direction bits.
const EPB_FLAG_INBOUND: u32 = 0b01;
const EPB_FLAG_OUTBOUND: u32 = 0b10;

#[derive(Debug, thiserror::Error)]
pub enum PcapngWriteError {
    #[error("{path}: already exists; refusing to overwrite it without --force")]
    Exists { path: String },
    #[error("{path}: cannot write: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{path}: cannot write: {source}")]
    Encode {
        path: String,
        #[source]
        source: PcapError,
    },
    #[error("{path}: packet for interface id {id}, but only {count} interfaces were added")]
    UnknownInterface { path: String, id: u32, count: u32 },
}

/// Writes events as pcapng, buffered. Call `flush` before dropping to see write errors.
pub struct PcapngEventWriter {
    path: String,
    writer: PcapNgWriter<BufWriter<File>>,
    interfaces: u32,
}

impl PcapngEventWriter {
    /// Creates `path` and writes the section header. An existing file is only replaced when
    /// `force` is set: without it the file is created with `create_new`, so a user's file is
    /// never truncated, not even by a race.
    pub fn create(path: &Path, force: bool) -> Result<Self, PcapngWriteError> {
        let name = path.display().to_string();
        let file = if force {
            File::create(path)
        } else {
            OpenOptions::new().write(true).create_new(true).open(path)
        }
        .map_err(|source| match source.kind() {
            io::ErrorKind::AlreadyExists => PcapngWriteError::Exists { path: name.clone() },
            _ => PcapngWriteError::Io {
                path: name.clone(),
                source,
            },
        })?;
        let section = SectionHeaderBlock {
            endianness: Endianness::native(),
            options: vec![SectionHeaderOption::UserApplication(Cow::Owned(format!(
                "mptcp-tracer {}",
                env!("CARGO_PKG_VERSION")
            )))],
            ..SectionHeaderBlock::default()
        };
        let writer = PcapNgWriter::with_section_header(BufWriter::new(file), section)
            .map_err(|source| encode_error(&name, source))?;
        Ok(PcapngEventWriter {
            path: name,
            writer,
            interfaces: 0,
        })
    }

    /// Describes one traced interface; returns the id `write_packet` takes.
    pub fn add_interface(
        &mut self,
        name: &str,
        ifindex: u32,
        netns: Option<&str>,
    ) -> Result<u32, PcapngWriteError> {
        let description = match netns {
            Some(netns) => format!("ifindex {ifindex}, netns {netns}"),
            None => format!("ifindex {ifindex}"),
        };
        let block = InterfaceDescriptionBlock {
            linktype: DataLink::RAW,
            // 0: no limit announced; the events carry their own captured length.
            snaplen: 0,
            options: vec![
                InterfaceDescriptionOption::IfName(Cow::Owned(name.to_owned())),
                InterfaceDescriptionOption::IfDescription(Cow::Owned(description)),
                InterfaceDescriptionOption::IfTsResol(TSRESOL_NANOSECONDS),
            ],
        };
        self.writer
            .write_pcapng_block(block)
            .map_err(|source| encode_error(&self.path, source))?;
        let id = self.interfaces;
        self.interfaces += 1;
        Ok(id)
    }

    /// Writes one event as an Enhanced Packet Block. `data` starts at the IP header;
    /// `orig_len` is the packet's length on the wire.
    pub fn write_packet(
        &mut self,
        iface_id: u32,
        ts_ns_since_epoch: u64,
        inbound: bool,
        data: &[u8],
        orig_len: u32,
    ) -> Result<(), PcapngWriteError> {
        if iface_id >= self.interfaces {
            return Err(PcapngWriteError::UnknownInterface {
                path: self.path.clone(),
                id: iface_id,
                count: self.interfaces,
            });
        }
        let flags = if inbound {
            EPB_FLAG_INBOUND
        } else {
            EPB_FLAG_OUTBOUND
        };
        let block = EnhancedPacketBlock {
            interface_id: iface_id,
            timestamp: Duration::from_nanos(ts_ns_since_epoch),
            original_len: orig_len,
            data: Cow::Borrowed(data),
            // One small allocation per event: events arrive at most at the ring buffer's rate,
            // far below what would make this show.
            options: vec![EnhancedPacketOption::Flags(flags)],
        };
        self.writer
            .write_pcapng_block(block)
            .map_err(|source| encode_error(&self.path, source))?;
        Ok(())
    }

    /// Writes out the buffer.
    pub fn flush(&mut self) -> Result<(), PcapngWriteError> {
        self.writer
            .get_mut()
            .flush()
            .map_err(|source| PcapngWriteError::Io {
                path: self.path.clone(),
                source,
            })
    }
}

fn encode_error(path: &str, source: PcapError) -> PcapngWriteError {
    match source {
        PcapError::IoError(source) => PcapngWriteError::Io {
            path: path.to_owned(),
            source,
        },
        source => PcapngWriteError::Encode {
            path: path.to_owned(),
            source,
        },
    }
}
