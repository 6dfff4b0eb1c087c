//! Capture files: pcap (all four magics) and pcapng, chosen by magic number, read from a memory
//! map without copying records.
//!
//! The file headers, pcapng section headers and interface descriptions (a handful per file) are
//! parsed by the `pcap-file` crate. The per-packet loop is our own: `pcap-file` 2's pcapng
//! parser collects each packet's options into a fresh `Vec` (one allocation per packet), takes
//! EPB timestamps as nanoseconds whatever the interface's `if_tsresol` says, and reports errors
//! as static strings without offsets. The loop below reads packet records in place from the
//! map and hands out slices of it.

use std::{fs::File, io, ops::Range, path::Path};

use memmap2::Mmap;
use pcap_file::{
    Endianness, PcapError, TsResolution,
    pcap::PcapHeader,
    pcapng::{
        Block, PcapNgParser,
        blocks::interface_description::{InterfaceDescriptionBlock, InterfaceDescriptionOption},
    },
};

use crate::source::{Direction, LinkType, RawPacket};

/// Larger captured lengths are damage, not packets (Wireshark's limit for ordinary link types).
pub const MAX_CAPLEN: u32 = 256 * 1024;

/// A pcapng block longer than this is a corrupt length field rather than a truncated file.
const MAX_BLOCK_LEN: u32 = 128 * 1024 * 1024;

const PCAP_RECORD_HEADER_LEN: usize = 16;
const PCAP_FILE_HEADER_LEN: usize = 24;

const PCAPNG_SECTION_HEADER: u32 = 0x0A0D_0D0A;
const PCAPNG_BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;
const PCAPNG_INTERFACE_DESCRIPTION: u32 = 1;
const PCAPNG_OBSOLETE_PACKET: u32 = 2;
const PCAPNG_SIMPLE_PACKET: u32 = 3;
const PCAPNG_ENHANCED_PACKET: u32 = 6;
/// Option code of `epb_flags` (and of the obsolete packet block's `pack_flags`).
const PCAPNG_OPTION_FLAGS: u16 = 2;

/// A capture file that could not be read, naming the file and, where known, the record.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The file could not be opened, inspected or mapped.
    #[error("{path}: cannot read: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    /// The first bytes are neither a pcap nor a pcapng magic number.
    #[error("{path}: not a pcap or pcapng file (first bytes: {first_bytes})")]
    NotCapture { path: String, first_bytes: String },
    /// The file ends inside the pcap file header or the first pcapng section header.
    #[error("{path}: truncated {format} file header: {present} of {expected} bytes present")]
    TruncatedHeader {
        path: String,
        format: &'static str,
        expected: u64,
        present: u64,
    },
    /// The file ends inside a record (the last one: everything before it was read).
    #[error(
        "{path}: packet {packet}: truncated record at byte offset {offset}: expected {expected} \
         bytes, only {present} present"
    )]
    TruncatedRecord {
        path: String,
        packet: u64,
        offset: u64,
        expected: u64,
        present: u64,
    },
    /// A record claims a captured length no capture of this file can have.
    #[error(
        "{path}: packet {packet}: record at byte offset {offset} claims {caplen} captured bytes, \
         more than {limit} ({why})"
    )]
    BadRecordLength {
        path: String,
        packet: u64,
        offset: u64,
        caplen: u32,
        limit: u32,
        why: &'static str,
    },
    /// A link type we do not decode: the whole file (pcap) or one pcapng interface.
    #[error("{path}: unknown link type {linktype}{context}")]
    UnknownLinkType {
        path: String,
        linktype: u32,
        context: String,
    },
    /// A pcapng block whose framing or content is damaged.
    #[error(
        "{path}: corrupt pcapng block at byte offset {offset} (before packet {packet}): {what}"
    )]
    CorruptBlock {
        path: String,
        offset: u64,
        packet: u64,
        what: String,
    },
}

impl CaptureError {
    /// The packet number the error is about (the first packet not delivered), where there is one.
    pub fn packet(&self) -> Option<u64> {
        match self {
            CaptureError::TruncatedRecord { packet, .. }
            | CaptureError::BadRecordLength { packet, .. }
            | CaptureError::CorruptBlock { packet, .. } => Some(*packet),
            _ => None,
        }
    }
}

/// A packet without its bytes, and where in the map they are: lets the record loops take
/// `&mut self` and still hand out a slice of the map.
type Located = (RawPacket<'static>, Range<usize>);

/// Which kind of file a `CaptureReader` found behind the magic number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureFormat {
    Pcap { nanosecond: bool, big_endian: bool },
    PcapNg,
}

/// Reads the packets of one pcap or pcapng file in order, from a memory map.
pub struct CaptureReader {
    path: String,
    map: Mmap,
    /// Byte offset of the next record or block.
    offset: usize,
    /// Number of the next packet (1-based, counting packets only, as tshark's frame.number).
    next_number: u64,
    format: Format,
}

enum Format {
    Pcap(PcapFile),
    PcapNg(Section),
}

struct PcapFile {
    big_endian: bool,
    /// Nanoseconds per unit of the record's sub-second field.
    ns_per_fraction: u64,
    snaplen: u32,
    link_type: LinkType,
}

/// The current pcapng section: its byte order and interfaces.
struct Section {
    big_endian: bool,
    /// Parses this section's interface descriptions (`pcap-file` keeps the byte order).
    parser: PcapNgParser,
    interfaces: Vec<Interface>,
}

struct Interface {
    /// `Err(number)` for a link type we do not decode: an error when a packet uses it.
    link_type: Result<LinkType, u32>,
    snaplen: u32,
    resolution: TsScale,
    /// `if_tsoffset`, in seconds, added to every timestamp.
    offset_secs: i64,
}

/// How one interface's timestamp units become nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TsScale {
    Multiply(u64),
    Divide(u64),
    /// Units of 2^-n seconds.
    PowerOfTwo(u32),
}

impl TsScale {
    /// From the `if_tsresol` byte: 10^-n seconds, or 2^-n with the high bit set.
    fn from_tsresol(tsresol: u8) -> TsScale {
        let exponent = u32::from(tsresol & 0x7f);
        if tsresol & 0x80 != 0 {
            TsScale::PowerOfTwo(exponent)
        } else if exponent <= 9 {
            TsScale::Multiply(10u64.pow(9 - exponent))
        } else {
            // Beyond 10^-28 every timestamp rounds to 0 ns.
            TsScale::Divide(10u64.checked_pow(exponent - 9).unwrap_or(u64::MAX))
        }
    }

    fn to_ns(self, units: u64) -> u64 {
        match self {
            TsScale::Multiply(factor) => units.saturating_mul(factor),
            TsScale::Divide(divisor) => units / divisor,
            TsScale::PowerOfTwo(exponent) => {
                let ns = (u128::from(units) * 1_000_000_000) >> exponent;
                u64::try_from(ns).unwrap_or(u64::MAX)
            }
        }
    }
}

fn read_u16(bytes: &[u8], at: usize, big_endian: bool) -> u16 {
    let mut raw = [0; 2];
    raw.copy_from_slice(&bytes[at..at + 2]);
    if big_endian {
        u16::from_be_bytes(raw)
    } else {
        u16::from_le_bytes(raw)
    }
}

fn read_u32(bytes: &[u8], at: usize, big_endian: bool) -> u32 {
    let mut raw = [0; 4];
    raw.copy_from_slice(&bytes[at..at + 4]);
    if big_endian {
        u32::from_be_bytes(raw)
    } else {
        u32::from_le_bytes(raw)
    }
}

/// Padding that brings `len` to a multiple of 4, as pcapng requires.
fn padded(len: usize) -> usize {
    len.next_multiple_of(4)
}

fn link_type_context(interface: Option<u32>, packet: Option<u64>) -> String {
    match (interface, packet) {
        (Some(interface), Some(packet)) => format!(" (interface {interface}, packet {packet})"),
        _ => String::from(" (file header)"),
    }
}

impl CaptureReader {
    /// Opens and maps `path` and reads its file header (pcap) or first section header (pcapng).
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        let name = path.display().to_string();
        let io_error = |source| CaptureError::Io {
            path: name.clone(),
            source,
        };
        let file = File::open(path).map_err(io_error)?;
        let metadata = file.metadata().map_err(io_error)?;
        if metadata.is_dir() {
            return Err(io_error(io::Error::new(
                io::ErrorKind::IsADirectory,
                "is a directory",
            )));
        }
        if metadata.len() == 0 {
            return Err(CaptureError::NotCapture {
                path: name,
                first_bytes: String::from("none, the file is empty"),
            });
        }
        // SAFETY: the map is read-only and private to this reader. If another process truncates
        // the file while we read it, accessing the lost pages raises SIGBUS: the same trade-off
        // every mmap-based reader (ripgrep, tshark's wiretap with mmap) makes for speed.
        let map = unsafe { Mmap::map(&file) }.map_err(io_error)?;
        #[cfg(unix)]
        {
            // Only a hint for read-ahead; reading is correct without it.
            let _ = map.advise(memmap2::Advice::Sequential);
        }

        let mut reader = CaptureReader {
            path: name,
            map,
            offset: 0,
            next_number: 1,
            // Replaced below once the header is parsed.
            format: Format::Pcap(PcapFile {
                big_endian: false,
                ns_per_fraction: 0,
                snaplen: 0,
                link_type: LinkType::Raw,
            }),
        };
        reader.read_file_header()?;
        Ok(reader)
    }

    /// What the magic number said.
    pub fn format(&self) -> CaptureFormat {
        match &self.format {
            Format::Pcap(pcap) => CaptureFormat::Pcap {
                nanosecond: pcap.ns_per_fraction == 1,
                big_endian: pcap.big_endian,
            },
            Format::PcapNg(_) => CaptureFormat::PcapNg,
        }
    }

    /// The file name as the error messages show it.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Bytes of the file read so far (for progress).
    pub fn bytes_read(&self) -> u64 {
        self.offset as u64
    }

    /// Size of the file.
    pub fn total_bytes(&self) -> u64 {
        self.map.len() as u64
    }

    /// Packets delivered so far.
    pub fn packets_read(&self) -> u64 {
        self.next_number - 1
    }

    /// Calls `f` with every packet in file order. On damage, every good packet before it has
    /// been delivered when the error is returned.
    pub fn for_each(&mut self, mut f: impl FnMut(&RawPacket<'_>)) -> Result<(), CaptureError> {
        while let Some(packet) = self.next_packet()? {
            f(&packet);
        }
        Ok(())
    }

    /// The next packet, `Ok(None)` at the end of the file. After an error the reader stays at
    /// the end: the rest of the file is not trusted.
    pub fn next_packet(&mut self) -> Result<Option<RawPacket<'_>>, CaptureError> {
        let result = match self.format {
            Format::Pcap(_) => self.next_pcap_record(),
            Format::PcapNg(_) => self.next_pcapng_packet(),
        };
        match result {
            Ok(Some((packet, bytes))) => Ok(Some(RawPacket {
                data: &self.map[bytes],
                ..packet
            })),
            Ok(None) => Ok(None),
            Err(error) => {
                self.offset = self.map.len();
                Err(error)
            }
        }
    }

    fn read_file_header(&mut self) -> Result<(), CaptureError> {
        let data: &[u8] = &self.map;
        let mut magic = [0u8; 4];
        let present = data.len().min(4);
        magic[..present].copy_from_slice(&data[..present]);
        let magic_be = u32::from_be_bytes(magic);
        match magic_be {
            0xA1B2_C3D4 | 0xD4C3_B2A1 | 0xA1B2_3C4D | 0x4D3C_B2A1 => self.read_pcap_header(),
            PCAPNG_SECTION_HEADER => {
                self.format = Format::PcapNg(self.read_section_header(true)?);
                Ok(())
            }
            _ => Err(CaptureError::NotCapture {
                path: self.path.clone(),
                first_bytes: data[..present]
                    .iter()
                    .map(|byte| format!("{byte:02x}"))
                    .collect::<Vec<_>>()
                    .join(" "),
            }),
        }
    }

    fn read_pcap_header(&mut self) -> Result<(), CaptureError> {
        let data: &[u8] = &self.map;
        if data.len() < PCAP_FILE_HEADER_LEN {
            return Err(CaptureError::TruncatedHeader {
                path: self.path.clone(),
                format: "pcap",
                expected: PCAP_FILE_HEADER_LEN as u64,
                present: data.len() as u64,
            });
        }
        let (_, header) =
            PcapHeader::from_slice(data).map_err(|error| CaptureError::NotCapture {
                path: self.path.clone(),
                first_bytes: format!("{:02x?} ({error})", &data[..4]),
            })?;
        let linktype = u32::from(header.datalink);
        let link_type =
            LinkType::from_linktype(linktype).ok_or_else(|| CaptureError::UnknownLinkType {
                path: self.path.clone(),
                linktype,
                context: link_type_context(None, None),
            })?;
        self.format = Format::Pcap(PcapFile {
            big_endian: header.endianness == Endianness::Big,
            ns_per_fraction: match header.ts_resolution {
                TsResolution::MicroSecond => 1_000,
                TsResolution::NanoSecond => 1,
            },
            snaplen: header.snaplen,
            link_type,
        });
        self.offset = PCAP_FILE_HEADER_LEN;
        Ok(())
    }

    fn next_pcap_record(&mut self) -> Result<Option<Located>, CaptureError> {
        let Format::Pcap(pcap) = &self.format else {
            return Ok(None);
        };
        let data: &[u8] = &self.map;
        let offset = self.offset;
        let present = data.len() - offset;
        if present == 0 {
            return Ok(None);
        }
        let number = self.next_number;
        if present < PCAP_RECORD_HEADER_LEN {
            return Err(self.truncated(offset, PCAP_RECORD_HEADER_LEN, present));
        }
        let big_endian = pcap.big_endian;
        let seconds = read_u32(data, offset, big_endian);
        let fraction = read_u32(data, offset + 4, big_endian);
        let caplen = read_u32(data, offset + 8, big_endian);
        let orig_len = read_u32(data, offset + 12, big_endian);
        let limit = if pcap.snaplen != 0 && pcap.snaplen < MAX_CAPLEN {
            (pcap.snaplen, "the file's snapshot length")
        } else {
            (MAX_CAPLEN, "the largest plausible packet")
        };
        if caplen > limit.0 {
            return Err(CaptureError::BadRecordLength {
                path: self.path.clone(),
                packet: number,
                offset: offset as u64,
                caplen,
                limit: limit.0,
                why: limit.1,
            });
        }
        let start = offset + PCAP_RECORD_HEADER_LEN;
        let end = start + caplen as usize;
        if end > data.len() {
            return Err(self.truncated(offset, end - offset, present));
        }
        let ts_ns = u64::from(seconds) * 1_000_000_000 + u64::from(fraction) * pcap.ns_per_fraction;
        let link_type = pcap.link_type;
        self.offset = end;
        self.next_number += 1;
        let packet = RawPacket {
            number,
            ts_ns,
            iface: 0,
            direction: Direction::Unknown,
            link_type,
            data: &[],
            orig_len,
        };
        Ok(Some((packet, start..end)))
    }

    fn truncated(&self, offset: usize, expected: usize, present: usize) -> CaptureError {
        CaptureError::TruncatedRecord {
            path: self.path.clone(),
            packet: self.next_number,
            offset: offset as u64,
            expected: expected as u64,
            present: present as u64,
        }
    }

    fn corrupt(&self, offset: usize, what: String) -> CaptureError {
        CaptureError::CorruptBlock {
            path: self.path.clone(),
            offset: offset as u64,
            packet: self.next_number,
            what,
        }
    }

    /// Checks the framing of the block at `offset` (length, alignment, trailer) and returns its
    /// total length.
    fn block_len(&self, offset: usize, big_endian: bool) -> Result<usize, CaptureError> {
        let data: &[u8] = &self.map;
        let present = data.len() - offset;
        let block_len = read_u32(data, offset + 4, big_endian);
        if block_len < 12 || block_len % 4 != 0 {
            return Err(self.corrupt(
                offset,
                format!("block length {block_len} is not a multiple of 4 of at least 12"),
            ));
        }
        if block_len > MAX_BLOCK_LEN {
            return Err(self.corrupt(
                offset,
                format!("block length {block_len} is implausible (more than {MAX_BLOCK_LEN})"),
            ));
        }
        let block_len = block_len as usize;
        if block_len > present {
            return Err(self.truncated(offset, block_len, present));
        }
        let trailer = read_u32(data, offset + block_len - 4, big_endian);
        if trailer as usize != block_len {
            return Err(self.corrupt(
                offset,
                format!("block length {block_len} does not match its trailing copy {trailer}"),
            ));
        }
        Ok(block_len)
    }

    /// Reads the section header block at `self.offset` and moves past it.
    fn read_section_header(&mut self, first: bool) -> Result<Section, CaptureError> {
        let data: &[u8] = &self.map;
        let offset = self.offset;
        let present = data.len() - offset;
        if present < 12 {
            return Err(if first {
                CaptureError::TruncatedHeader {
                    path: self.path.clone(),
                    format: "pcapng",
                    expected: 12,
                    present: present as u64,
                }
            } else {
                self.truncated(offset, 12, present)
            });
        }
        let big_endian = match read_u32(data, offset + 8, true) {
            PCAPNG_BYTE_ORDER_MAGIC => true,
            magic if magic == PCAPNG_BYTE_ORDER_MAGIC.swap_bytes() => false,
            magic => {
                return Err(self.corrupt(
                    offset,
                    format!("section header with an invalid byte-order magic {magic:#010x}"),
                ));
            }
        };
        let block_len = match self.block_len(offset, big_endian) {
            Err(CaptureError::TruncatedRecord {
                expected, present, ..
            }) if first => {
                return Err(CaptureError::TruncatedHeader {
                    path: self.path.clone(),
                    format: "pcapng",
                    expected,
                    present,
                });
            }
            other => other?,
        };
        let (_, parser) = PcapNgParser::new(&data[offset..offset + block_len])
            .map_err(|error| self.corrupt(offset, format!("section header: {error}")))?;
        self.offset = offset + block_len;
        Ok(Section {
            big_endian,
            parser,
            interfaces: Vec::new(),
        })
    }

    fn next_pcapng_packet(&mut self) -> Result<Option<Located>, CaptureError> {
        loop {
            let Format::PcapNg(section) = &self.format else {
                return Ok(None);
            };
            let big_endian = section.big_endian;
            let data: &[u8] = &self.map;
            let offset = self.offset;
            let present = data.len() - offset;
            if present == 0 {
                return Ok(None);
            }
            if present < 12 {
                return Err(self.truncated(offset, 12, present));
            }
            // The section header's type reads the same in both byte orders.
            let block_type = read_u32(data, offset, big_endian);
            if block_type == PCAPNG_SECTION_HEADER {
                let section = self.read_section_header(false)?;
                self.format = Format::PcapNg(section);
                continue;
            }
            let block_len = self.block_len(offset, big_endian)?;
            let body = &data[offset + 8..offset + block_len - 4];
            match block_type {
                PCAPNG_ENHANCED_PACKET | PCAPNG_OBSOLETE_PACKET | PCAPNG_SIMPLE_PACKET => {
                    let packet = self.pcapng_packet(offset, block_type, body, big_endian)?;
                    let packet = (
                        packet.0,
                        offset + 8 + packet.1.start..offset + 8 + packet.1.end,
                    );
                    self.offset = offset + block_len;
                    self.next_number += 1;
                    return Ok(Some(packet));
                }
                PCAPNG_INTERFACE_DESCRIPTION => {
                    let interface = self.interface(offset, block_len)?;
                    if let Format::PcapNg(section) = &mut self.format {
                        section.interfaces.push(interface);
                    }
                }
                // Name resolution, statistics, secrets, custom blocks: nothing we use.
                _ => {}
            }
            self.offset = offset + block_len;
        }
    }

    fn interface(&mut self, offset: usize, block_len: usize) -> Result<Interface, CaptureError> {
        let data: &[u8] = &self.map;
        let Format::PcapNg(section) = &mut self.format else {
            return Err(self.corrupt(offset, String::from("interface outside a section")));
        };
        let description = match section.parser.next_block(&data[offset..offset + block_len]) {
            Ok((_, Block::InterfaceDescription(description))) => description,
            Ok((_, other)) => {
                let what = format!("expected an interface description, parsed {other:?}");
                return Err(self.corrupt(offset, what));
            }
            Err(error) => {
                let what = format!("interface description: {}", describe_pcap_error(&error));
                return Err(self.corrupt(offset, what));
            }
        };
        Ok(interface_from_description(&description))
    }

    /// The packet in the block at `offset`, its bytes as a range of `body`.
    fn pcapng_packet(
        &self,
        offset: usize,
        block_type: u32,
        body: &[u8],
        big_endian: bool,
    ) -> Result<Located, CaptureError> {
        let Format::PcapNg(section) = &self.format else {
            return Err(self.corrupt(offset, String::from("packet outside a section")));
        };
        let number = self.next_number;
        let (interface_id, units, caplen, orig_len, options) = match block_type {
            PCAPNG_SIMPLE_PACKET => {
                if body.len() < 4 {
                    return Err(self.corrupt(offset, String::from("simple packet block too short")));
                }
                let orig_len = read_u32(body, 0, big_endian);
                let snaplen = section
                    .interfaces
                    .first()
                    .map_or(0, |interface| interface.snaplen);
                let mut caplen = orig_len.min(u32::try_from(body.len() - 4).unwrap_or(u32::MAX));
                if snaplen != 0 {
                    caplen = caplen.min(snaplen);
                }
                (0, None, caplen, orig_len, &body[body.len()..])
            }
            _ => {
                if body.len() < 20 {
                    return Err(self.corrupt(offset, String::from("packet block too short")));
                }
                let interface_id = if block_type == PCAPNG_ENHANCED_PACKET {
                    read_u32(body, 0, big_endian)
                } else {
                    u32::from(read_u16(body, 0, big_endian))
                };
                let high = u64::from(read_u32(body, 4, big_endian));
                let low = u64::from(read_u32(body, 8, big_endian));
                let caplen = read_u32(body, 12, big_endian);
                let orig_len = read_u32(body, 16, big_endian);
                if caplen > MAX_CAPLEN {
                    return Err(CaptureError::BadRecordLength {
                        path: self.path.clone(),
                        packet: number,
                        offset: offset as u64,
                        caplen,
                        limit: MAX_CAPLEN,
                        why: "the largest plausible packet",
                    });
                }
                let data_end = 20 + padded(caplen as usize);
                if data_end > body.len() {
                    return Err(self.corrupt(
                        offset,
                        format!(
                            "captured length {caplen} does not fit in a block of {} bytes",
                            body.len() + 12
                        ),
                    ));
                }
                (
                    interface_id,
                    Some(high << 32 | low),
                    caplen,
                    orig_len,
                    &body[data_end..],
                )
            }
        };
        let Some(interface) = section.interfaces.get(interface_id as usize) else {
            return Err(self.corrupt(
                offset,
                format!(
                    "packet on interface {interface_id}, but the section describes {} interfaces",
                    section.interfaces.len()
                ),
            ));
        };
        let link_type = interface
            .link_type
            .map_err(|linktype| CaptureError::UnknownLinkType {
                path: self.path.clone(),
                linktype,
                context: link_type_context(Some(interface_id), Some(number)),
            })?;
        let ts_ns = units.map_or(0, |units| {
            interface
                .resolution
                .to_ns(units)
                .saturating_add_signed(interface.offset_secs.saturating_mul(1_000_000_000))
        });
        let start = if block_type == PCAPNG_SIMPLE_PACKET {
            4
        } else {
            20
        };
        let packet = RawPacket {
            number,
            ts_ns,
            iface: interface_id,
            direction: direction_from_options(options, big_endian),
            link_type,
            data: &[],
            orig_len,
        };
        Ok((packet, start..start + caplen as usize))
    }
}

/// `pcap-file`'s messages for the ways an interface description can be damaged.
fn describe_pcap_error(error: &PcapError) -> String {
    match error {
        PcapError::IncompleteBuffer => String::from("block shorter than its fields"),
        other => other.to_string(),
    }
}

fn interface_from_description(description: &InterfaceDescriptionBlock<'_>) -> Interface {
    let linktype = u32::from(description.linktype);
    let mut interface = Interface {
        link_type: LinkType::from_linktype(linktype).ok_or(linktype),
        snaplen: description.snaplen,
        // The pcapng default: microseconds.
        resolution: TsScale::from_tsresol(6),
        offset_secs: 0,
    };
    for option in &description.options {
        match option {
            InterfaceDescriptionOption::IfTsResol(tsresol) => {
                interface.resolution = TsScale::from_tsresol(*tsresol);
            }
            InterfaceDescriptionOption::IfTsOffset(offset) => {
                // A signed number of seconds, which pcap-file reads as unsigned.
                interface.offset_secs = i64::from_ne_bytes(offset.to_ne_bytes());
            }
            _ => {}
        }
    }
    interface
}

/// Direction bits of `epb_flags` (bits 0–1: 1 inbound, 2 outbound). Damaged options are
/// ignored: they only cost the direction.
fn direction_from_options(mut options: &[u8], big_endian: bool) -> Direction {
    while options.len() >= 4 {
        let code = read_u16(options, 0, big_endian);
        let len = usize::from(read_u16(options, 2, big_endian));
        if code == 0 {
            break;
        }
        if code == PCAPNG_OPTION_FLAGS && len == 4 && options.len() >= 8 {
            return match read_u32(options, 4, big_endian) & 0b11 {
                1 => Direction::Inbound,
                2 => Direction::Outbound,
                _ => Direction::Unknown,
            };
        }
        let next = 4 + padded(len);
        if next > options.len() {
            break;
        }
        options = &options[next..];
    }
    Direction::Unknown
}
