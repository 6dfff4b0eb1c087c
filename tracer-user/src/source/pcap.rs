//! Capture files: pcap (all four magics) and pcapng, chosen by magic number. A regular file is
//! read from a memory map without copying records; a pipe, standard input (`-`) or a gzip file
//! is read as a stream, one record at a time (`input`).
//!
//! The file headers, pcapng section headers and interface descriptions (a handful per file) are
//! parsed by the `pcap-file` crate. The per-packet loop is our own: `pcap-file` 2's pcapng
//! parser collects each packet's options into a fresh `Vec` (one allocation per packet), takes
//! EPB timestamps as nanoseconds whatever the interface's `if_tsresol` says, and reports errors
//! as static strings without offsets. The loop below reads packet records in place and hands
//! out slices of the input.

mod input;

use std::{fs::File, io, ops::Range, path::Path};

use input::Input;
use pcap_file::{
    Endianness, PcapError, TsResolution,
    pcap::PcapHeader,
    pcapng::{
        Block, PcapNgParser,
        blocks::interface_description::{InterfaceDescriptionBlock, InterfaceDescriptionOption},
    },
};

use crate::source::{Direction, LinkType, RawPacket};

/// How errors name standard input (`-`).
pub const STDIN_NAME: &str = "standard input";

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
/// Blocks that are not packets but that tshark numbers as frames: systemd journal entries and
/// custom blocks (copyable or not). Counting them keeps our numbers equal to frame.number.
const PCAPNG_SYSTEMD_JOURNAL: u32 = 9;
const PCAPNG_CUSTOM: u32 = 0x0000_0BAD;
const PCAPNG_CUSTOM_NO_COPY: u32 = 0x4000_0BAD;
/// Option code of `epb_flags` (and of the obsolete packet block's `pack_flags`).
const PCAPNG_OPTION_COMMENT: u16 = 1;
const PCAPNG_OPTION_FLAGS: u16 = 2;
/// Start of the comment `trace -w` puts on an egress GSO batch: `GSO batch of N segments`
/// (tshark's `frame.comment`). Written by `output::pcapng`, read back here.
pub const GSO_COMMENT_PREFIX: &str = "GSO batch of ";
/// The most segments a GSO batch comment is believed for: a batch is at most 64 KiB of
/// payload, so even one byte per segment stays below this. Larger numbers are damage.
pub const MAX_GSO_SEGMENTS: u32 = 65_535;

/// A capture file that could not be read, naming the file and, where known, the record.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The file could not be opened, inspected or mapped. The OS's reason is the source: the
    /// CLI prints the chain (`{:#}`), so the message does not repeat it.
    #[error("{path}: cannot read")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    /// The path names a directory.
    #[error("{path}: is a directory, not a capture file")]
    Directory { path: String },
    /// A stream (pipe, standard input, gzip data) failed after its first bytes. Reported as
    /// damage, where only this message is printed: it carries the OS's reason itself.
    #[error("{path}: packet {packet}: reading stopped at byte offset {offset}: {reason}")]
    ReadFailed {
        path: String,
        packet: u64,
        offset: u64,
        reason: String,
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
            | CaptureError::ReadFailed { packet, .. }
            | CaptureError::BadRecordLength { packet, .. }
            | CaptureError::CorruptBlock { packet, .. } => Some(*packet),
            _ => None,
        }
    }
}

/// A packet without its bytes, and where in the input they are: lets the record loops take
/// `&mut self` and still hand out a slice of the input.
type Located = (RawPacket<'static>, Range<usize>);

/// Which kind of file a `CaptureReader` found behind the magic number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureFormat {
    Pcap { nanosecond: bool, big_endian: bool },
    PcapNg,
}

/// Reads the packets of one pcap or pcapng file in order.
pub struct CaptureReader {
    path: String,
    input: Input,
    /// Offset in `input.bytes()` of the next record or block.
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

impl PcapFile {
    /// The largest captured length a record may have, and why.
    fn caplen_limit(&self) -> (u32, &'static str) {
        if self.snaplen != 0 && self.snaplen < MAX_CAPLEN {
            (self.snaplen, "the file's snapshot length")
        } else {
            (MAX_CAPLEN, "the largest plausible packet")
        }
    }
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
    /// Units below 10^-28 s: every timestamp is 0 ns.
    TooFine,
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
            10u64
                .checked_pow(exponent - 9)
                .map_or(TsScale::TooFine, TsScale::Divide)
        }
    }

    fn to_ns(self, units: u64) -> u64 {
        match self {
            TsScale::Multiply(factor) => units.saturating_mul(factor),
            TsScale::Divide(divisor) => units / divisor,
            TsScale::TooFine => 0,
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

/// Total length of the pcapng block at `offset`, from its header, if the header is there and
/// the length is plausible. `big_endian` is the section's byte order; a section header block
/// carries its own (`None` before the first one).
fn pcapng_block_len(data: &[u8], offset: usize, big_endian: Option<bool>) -> Option<usize> {
    let header = data.get(offset..offset + 12)?;
    // The section header's type reads the same in both byte orders.
    let big_endian = if read_u32(header, 0, true) == PCAPNG_SECTION_HEADER {
        match read_u32(header, 8, true) {
            PCAPNG_BYTE_ORDER_MAGIC => true,
            magic if magic == PCAPNG_BYTE_ORDER_MAGIC.swap_bytes() => false,
            _ => return None,
        }
    } else {
        big_endian?
    };
    let len = read_u32(header, 4, big_endian);
    (len <= MAX_BLOCK_LEN).then_some(len as usize)
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
    /// Opens `path` and reads its file header (pcap) or first section header (pcapng). A
    /// regular file is memory-mapped; `-` is standard input, and standard input, pipes (process
    /// substitution, `/dev/stdin`), character devices and gzip-compressed files are read as
    /// streams. Name a file called `-` as `./-`.
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        if path.as_os_str() == "-" {
            return Self::start(
                String::from(STDIN_NAME),
                Input::stream(Box::new(io::stdin())),
            );
        }
        let name = path.display().to_string();
        let io_error = |source| CaptureError::Io {
            path: name.clone(),
            source,
        };
        let file = File::open(path).map_err(io_error)?;
        let metadata = file.metadata().map_err(io_error)?;
        if metadata.is_dir() {
            return Err(CaptureError::Directory { path: name });
        }
        let input = if metadata.is_file() {
            Input::mapped(file).map_err(io_error)?
        } else {
            Input::stream(Box::new(file))
        };
        Self::start(name, input)
    }

    /// Reads a capture handed over whole (gzip-compressed or not); `name` names it in errors.
    /// Used where the bytes are at hand already: fuzzing, tests.
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Result<Self, CaptureError> {
        Self::start(String::from(name), Input::memory(bytes))
    }

    /// Reads a capture from any stream (gzip-compressed or not), one record at a time.
    pub fn from_stream(name: &str, stream: Box<dyn io::Read + Send>) -> Result<Self, CaptureError> {
        Self::start(String::from(name), Input::stream(stream))
    }

    fn start(path: String, input: Input) -> Result<Self, CaptureError> {
        let mut reader = CaptureReader {
            path,
            input,
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
        reader.input.fill_to(PCAP_FILE_HEADER_LEN);
        if let Some(len) = pcapng_block_len(reader.input.bytes(), 0, None) {
            reader.input.fill_to(len);
        }
        // A stream that failed after a whole header fails at its first packet instead.
        match (reader.read_file_header(), reader.input.take_failure()) {
            (Ok(()), failure) => {
                reader.input.keep_failure(failure);
                Ok(reader)
            }
            (Err(_), Some(source)) => Err(CaptureError::Io {
                path: reader.path,
                source,
            }),
            (Err(error), None) => Err(error),
        }
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
        self.input.dropped() + self.offset as u64
    }

    /// Size of the file, when known before reading it (not for a pipe or gzip data).
    pub fn total_bytes(&self) -> Option<u64> {
        self.input.total_len()
    }

    /// Frames numbered so far: the packets delivered, plus the few non-packet blocks tshark
    /// numbers as frames (pcapng custom and systemd journal blocks).
    pub fn frames_read(&self) -> u64 {
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
        self.offset -= self.input.consume(self.offset);
        if self.input.streaming() {
            self.fill_next_record();
        }
        // The common case of a pcap file, a whole record, read in place with one bounds check
        // for the header and one for the data; the end of the file and every kind of damage go
        // to `next_pcap_record`, which reports them.
        if let Some((packet, bytes)) = self.next_whole_pcap_record() {
            return Ok(Some(RawPacket {
                data: &self.input.bytes()[bytes],
                ..packet
            }));
        }
        let result = match self.format {
            Format::Pcap(_) => self.next_pcap_record(),
            Format::PcapNg(_) => self.next_pcapng_packet(),
        };
        // A stream that failed looks cut short: say why it ended instead.
        let result = match result {
            Ok(Some(located)) => Ok(Some(located)),
            other => match self.input.take_failure() {
                Some(failure) => Err(CaptureError::ReadFailed {
                    path: self.path.clone(),
                    packet: self.next_number,
                    offset: self.bytes_read(),
                    reason: failure.to_string(),
                }),
                None => other,
            },
        };
        match result {
            Ok(Some((packet, bytes))) => Ok(Some(RawPacket {
                data: &self.input.bytes()[bytes],
                ..packet
            })),
            Ok(None) => Ok(None),
            Err(error) => {
                self.offset = self.input.bytes().len();
                Err(error)
            }
        }
    }

    /// Reads from the stream until the next record is whole in the buffer (or the stream ends).
    fn fill_next_record(&mut self) {
        let offset = self.offset;
        // A pcap record header, or a pcapng block's type, length and byte-order magic.
        self.input.fill_to(offset + PCAP_RECORD_HEADER_LEN);
        let data = self.input.bytes();
        let len = match &self.format {
            Format::Pcap(pcap) => data
                .get(offset..offset + PCAP_RECORD_HEADER_LEN)
                .map(|header| read_u32(header, 8, pcap.big_endian))
                .filter(|&caplen| caplen <= pcap.caplen_limit().0)
                .map(|caplen| PCAP_RECORD_HEADER_LEN + caplen as usize),
            Format::PcapNg(section) => pcapng_block_len(data, offset, Some(section.big_endian)),
        };
        if let Some(len) = len {
            self.input.fill_to(offset + len);
        }
    }

    /// The next record of a pcap file if it is whole and sound, else `None` (end of file,
    /// damage, pcapng): the fast path of `next_packet`, one bounds check for the record header
    /// and one for its data.
    #[inline]
    fn next_whole_pcap_record(&mut self) -> Option<Located> {
        let Format::Pcap(pcap) = &self.format else {
            return None;
        };
        let data = self.input.bytes();
        let offset = self.offset;
        let header = data
            .get(offset..)?
            .first_chunk::<PCAP_RECORD_HEADER_LEN>()?;
        let field = |at: usize| {
            let raw = [header[at], header[at + 1], header[at + 2], header[at + 3]];
            if pcap.big_endian {
                u32::from_be_bytes(raw)
            } else {
                u32::from_le_bytes(raw)
            }
        };
        let caplen = field(8);
        let start = offset + PCAP_RECORD_HEADER_LEN;
        let end = start + caplen as usize;
        if caplen > pcap.caplen_limit().0 || end > data.len() {
            return None;
        }
        let packet = RawPacket {
            number: self.next_number,
            ts_ns: u64::from(field(0)) * 1_000_000_000 + u64::from(field(4)) * pcap.ns_per_fraction,
            iface: 0,
            direction: Direction::Unknown,
            link_type: pcap.link_type,
            data: &[],
            orig_len: field(12),
            segments: 1,
        };
        self.offset = end;
        self.next_number += 1;
        Some((packet, start..end))
    }

    fn read_file_header(&mut self) -> Result<(), CaptureError> {
        let data = self.input.bytes();
        if data.is_empty() {
            return Err(CaptureError::NotCapture {
                path: self.path.clone(),
                first_bytes: String::from("none, it is empty"),
            });
        }
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
        let data = self.input.bytes();
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
        let data = self.input.bytes();
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
        let limit = pcap.caplen_limit();
        if caplen > limit.0 {
            return Err(CaptureError::BadRecordLength {
                path: self.path.clone(),
                packet: number,
                offset: self.file_offset(offset),
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
            segments: 1,
        };
        Ok(Some((packet, start..end)))
    }

    /// Offset in the file or stream of `offset` in the input's bytes.
    fn file_offset(&self, offset: usize) -> u64 {
        self.input.dropped() + offset as u64
    }

    fn truncated(&self, offset: usize, expected: usize, present: usize) -> CaptureError {
        CaptureError::TruncatedRecord {
            path: self.path.clone(),
            packet: self.next_number,
            offset: self.file_offset(offset),
            expected: expected as u64,
            present: present as u64,
        }
    }

    fn corrupt(&self, offset: usize, what: String) -> CaptureError {
        CaptureError::CorruptBlock {
            path: self.path.clone(),
            offset: self.file_offset(offset),
            packet: self.next_number,
            what,
        }
    }

    /// Checks the framing of the block at `offset` (length, alignment, trailer) and returns its
    /// total length.
    fn block_len(&self, offset: usize, big_endian: bool) -> Result<usize, CaptureError> {
        let data = self.input.bytes();
        let present = data.len() - offset;
        let block_len = read_u32(data, offset + 4, big_endian);
        if block_len < 12 || !block_len.is_multiple_of(4) {
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
        let data = self.input.bytes();
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
            let data = self.input.bytes();
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
                PCAPNG_SYSTEMD_JOURNAL | PCAPNG_CUSTOM | PCAPNG_CUSTOM_NO_COPY => {
                    self.next_number += 1;
                }
                // Name resolution, statistics, secrets, unknown blocks: nothing we use.
                _ => {}
            }
            self.offset = offset + block_len;
        }
    }

    fn interface(&mut self, offset: usize, block_len: usize) -> Result<Interface, CaptureError> {
        let data = self.input.bytes();
        let Format::PcapNg(section) = &mut self.format else {
            return Err(self.corrupt(offset, String::from("interface outside a section")));
        };
        let description = match section.parser.next_block(&data[offset..offset + block_len]) {
            Ok((_, Block::InterfaceDescription(description))) => description,
            Ok(_) => {
                let what = String::from("interface description parsed as another block");
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
                        offset: self.file_offset(offset),
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
                match section.interfaces.len() {
                    1 => format!(
                        "packet on interface {interface_id}, but the section describes 1 interface"
                    ),
                    n => format!(
                        "packet on interface {interface_id}, but the section describes {n} interfaces"
                    ),
                },
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
        let (direction, segments) = epb_options(options, big_endian);
        let packet = RawPacket {
            number,
            ts_ns,
            iface: interface_id,
            direction,
            link_type,
            data: &[],
            orig_len,
            segments,
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

/// What an enhanced packet block's options say: the direction (`epb_flags` bits 0–1: 1
/// inbound, 2 outbound), and how many wire packets it stands for (1, or N, at most
/// `MAX_GSO_SEGMENTS`, from the `GSO batch of N segments` comment `trace -w` writes on an
/// egress GSO batch), so that the events file reads back as the live analysis saw it. Damaged
/// options are ignored: they only cost the direction or the count.
fn epb_options(mut options: &[u8], big_endian: bool) -> (Direction, u32) {
    let (mut direction, mut segments) = (Direction::Unknown, 1);
    while options.len() >= 4 {
        let code = read_u16(options, 0, big_endian);
        let len = usize::from(read_u16(options, 2, big_endian));
        if code == 0 {
            break;
        }
        if code == PCAPNG_OPTION_FLAGS && len == 4 && options.len() >= 8 {
            direction = match read_u32(options, 4, big_endian) & 0b11 {
                1 => Direction::Inbound,
                2 => Direction::Outbound,
                _ => Direction::Unknown,
            };
        }
        if code == PCAPNG_OPTION_COMMENT
            && let Some(n) = options
                .get(4..4 + len)
                .and_then(|text| std::str::from_utf8(text).ok())
                .and_then(|text| text.strip_prefix(GSO_COMMENT_PREFIX))
                .and_then(|rest| rest.strip_suffix(" segments"))
                .and_then(|n| n.parse::<u32>().ok())
        {
            segments = n.clamp(1, MAX_GSO_SEGMENTS);
        }
        let next = 4 + padded(len);
        if next > options.len() {
            break;
        }
        options = &options[next..];
    }
    (direction, segments)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::{
        error::Error as _,
        path::PathBuf,
        process::{Command, Stdio},
    };

    use super::*;

    /// A directory of test captures under the system temp dir, removed when dropped.
    pub(crate) struct TempDir(pub(crate) PathBuf);

    impl TempDir {
        pub(crate) fn new(test: &str) -> TempDir {
            let dir = std::env::temp_dir()
                .join(format!("mptcp-tracer-pcap-{test}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("create temp dir");
            TempDir(dir)
        }

        pub(crate) fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
            let path = self.0.join(name);
            std::fs::write(&path, bytes).expect("write test capture");
            path
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A packet as the reader delivered it, owned so tests can keep it.
    #[derive(Clone, Debug, PartialEq, Eq)]
    struct Got {
        number: u64,
        ts_ns: u64,
        iface: u32,
        direction: Direction,
        link_type: LinkType,
        data: Vec<u8>,
        orig_len: u32,
    }

    fn read_all(path: &Path) -> (Vec<Got>, Result<(), CaptureError>) {
        let mut reader = CaptureReader::open(path).expect("open capture");
        let mut got = Vec::new();
        let result = reader.for_each(|packet| {
            got.push(Got {
                number: packet.number,
                ts_ns: packet.ts_ns,
                iface: packet.iface,
                direction: packet.direction,
                link_type: packet.link_type,
                data: packet.data.to_vec(),
                orig_len: packet.orig_len,
            });
        });
        (got, result)
    }

    fn open_error(path: &Path) -> CaptureError {
        match CaptureReader::open(path) {
            Ok(_) => panic!("{} opened, expected an error", path.display()),
            Err(error) => error,
        }
    }

    // ---- hand-built capture files ------------------------------------------------------------

    fn put_u16(buf: &mut Vec<u8>, value: u16, big_endian: bool) {
        buf.extend_from_slice(&if big_endian {
            value.to_be_bytes()
        } else {
            value.to_le_bytes()
        });
    }

    fn put_u32(buf: &mut Vec<u8>, value: u32, big_endian: bool) {
        buf.extend_from_slice(&if big_endian {
            value.to_be_bytes()
        } else {
            value.to_le_bytes()
        });
    }

    fn pad(buf: &mut Vec<u8>) {
        buf.resize(buf.len().next_multiple_of(4), 0);
    }

    struct PcapRecord<'a> {
        seconds: u32,
        fraction: u32,
        data: &'a [u8],
        orig_len: u32,
    }

    fn pcap_file(
        nanosecond: bool,
        big_endian: bool,
        linktype: u32,
        snaplen: u32,
        records: &[PcapRecord<'_>],
    ) -> Vec<u8> {
        let mut buf = Vec::new();
        put_u32(
            &mut buf,
            if nanosecond { 0xA1B2_3C4D } else { 0xA1B2_C3D4 },
            big_endian,
        );
        put_u16(&mut buf, 2, big_endian);
        put_u16(&mut buf, 4, big_endian);
        put_u32(&mut buf, 0, big_endian);
        put_u32(&mut buf, 0, big_endian);
        put_u32(&mut buf, snaplen, big_endian);
        put_u32(&mut buf, linktype, big_endian);
        for record in records {
            put_u32(&mut buf, record.seconds, big_endian);
            put_u32(&mut buf, record.fraction, big_endian);
            put_u32(&mut buf, record.data.len() as u32, big_endian);
            put_u32(&mut buf, record.orig_len, big_endian);
            buf.extend_from_slice(record.data);
        }
        buf
    }

    fn block(big_endian: bool, block_type: u32, body: &[u8]) -> Vec<u8> {
        let len = 12 + body.len().next_multiple_of(4);
        let mut buf = Vec::new();
        put_u32(&mut buf, block_type, big_endian);
        put_u32(&mut buf, len as u32, big_endian);
        buf.extend_from_slice(body);
        pad(&mut buf);
        put_u32(&mut buf, len as u32, big_endian);
        buf
    }

    fn options(big_endian: bool, options: &[(u16, &[u8])]) -> Vec<u8> {
        let mut buf = Vec::new();
        if options.is_empty() {
            return buf;
        }
        for (code, value) in options {
            put_u16(&mut buf, *code, big_endian);
            put_u16(&mut buf, value.len() as u16, big_endian);
            buf.extend_from_slice(value);
            pad(&mut buf);
        }
        buf.extend_from_slice(&[0; 4]);
        buf
    }

    fn shb(big_endian: bool) -> Vec<u8> {
        let mut body = Vec::new();
        put_u32(&mut body, PCAPNG_BYTE_ORDER_MAGIC, big_endian);
        put_u16(&mut body, 1, big_endian);
        put_u16(&mut body, 0, big_endian);
        body.extend_from_slice(&[0xff; 8]);
        block(big_endian, PCAPNG_SECTION_HEADER, &body)
    }

    fn idb(big_endian: bool, linktype: u16, snaplen: u32, tsresol: Option<u8>) -> Vec<u8> {
        let resolution = tsresol.map(|tsresol| [tsresol]);
        let opts: Vec<(u16, &[u8])> = resolution.iter().map(|r| (9, &r[..])).collect();
        idb_with_options(big_endian, linktype, snaplen, &opts)
    }

    fn idb_with_options(
        big_endian: bool,
        linktype: u16,
        snaplen: u32,
        opts: &[(u16, &[u8])],
    ) -> Vec<u8> {
        let mut body = Vec::new();
        put_u16(&mut body, linktype, big_endian);
        put_u16(&mut body, 0, big_endian);
        put_u32(&mut body, snaplen, big_endian);
        body.extend_from_slice(&options(big_endian, opts));
        block(big_endian, PCAPNG_INTERFACE_DESCRIPTION, &body)
    }

    fn epb(
        big_endian: bool,
        interface: u32,
        units: u64,
        data: &[u8],
        orig_len: u32,
        flags: Option<u32>,
    ) -> Vec<u8> {
        let mut body = Vec::new();
        put_u32(&mut body, interface, big_endian);
        put_u32(&mut body, (units >> 32) as u32, big_endian);
        put_u32(&mut body, units as u32, big_endian);
        put_u32(&mut body, data.len() as u32, big_endian);
        put_u32(&mut body, orig_len, big_endian);
        body.extend_from_slice(data);
        pad(&mut body);
        let mut flag_bytes = Vec::new();
        if let Some(flags) = flags {
            put_u32(&mut flag_bytes, flags, big_endian);
            // A comment before the flags: the option walk must step over it.
            body.extend_from_slice(&options(
                big_endian,
                &[(1, b"hello"), (PCAPNG_OPTION_FLAGS, &flag_bytes)],
            ));
        }
        block(big_endian, PCAPNG_ENHANCED_PACKET, &body)
    }

    fn spb(big_endian: bool, data: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        put_u32(&mut body, data.len() as u32, big_endian);
        body.extend_from_slice(data);
        block(big_endian, PCAPNG_SIMPLE_PACKET, &body)
    }

    fn obsolete_pb(
        big_endian: bool,
        interface: u16,
        units: u64,
        data: &[u8],
        flags: u32,
    ) -> Vec<u8> {
        let mut body = Vec::new();
        put_u16(&mut body, interface, big_endian);
        put_u16(&mut body, 0, big_endian);
        put_u32(&mut body, (units >> 32) as u32, big_endian);
        put_u32(&mut body, units as u32, big_endian);
        put_u32(&mut body, data.len() as u32, big_endian);
        put_u32(&mut body, data.len() as u32, big_endian);
        body.extend_from_slice(data);
        pad(&mut body);
        let mut flag_bytes = Vec::new();
        put_u32(&mut flag_bytes, flags, big_endian);
        body.extend_from_slice(&options(big_endian, &[(PCAPNG_OPTION_FLAGS, &flag_bytes)]));
        block(big_endian, PCAPNG_OBSOLETE_PACKET, &body)
    }

    fn payload(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    // ---- tshark as the independent reader ----------------------------------------------------

    /// tshark's fields for every frame, or `None` (with the reason printed) without tshark.
    pub(crate) fn tshark_fields(path: &Path, fields: &[&str]) -> Option<Vec<Vec<String>>> {
        tshark_fields_of(path, fields, false)
    }

    /// As `tshark_fields`; with `damaged`, tshark may fail after printing the frames it read.
    fn tshark_fields_of(path: &Path, fields: &[&str], damaged: bool) -> Option<Vec<Vec<String>>> {
        let mut command = Command::new("tshark");
        command
            .arg("-r")
            .arg(path)
            .args(["-T", "fields", "-E", "separator=/t"]);
        for field in fields {
            command.args(["-e", field]);
        }
        let output = match command.stderr(Stdio::null()).output() {
            Ok(output) => output,
            Err(error) => {
                // The running test's own checks passed; without tshark's it does not count as
                // passed (the skip is recorded under the test thread's name).
                mptcp_lab::skip::skip("tshark cross-check", format!("cannot run tshark: {error}"));
                return None;
            }
        };
        assert!(
            damaged || output.status.success(),
            "tshark failed on {}",
            path.display()
        );
        let text = String::from_utf8(output.stdout).expect("tshark prints UTF-8");
        Some(
            text.lines()
                .map(|line| line.split('\t').map(str::to_owned).collect())
                .collect(),
        )
    }

    /// "1529037834.335235214" → nanoseconds; "" (no timestamp) → 0.
    pub(crate) fn epoch_ns(text: &str) -> u64 {
        if text.is_empty() {
            return 0;
        }
        let (seconds, fraction) = text.split_once('.').unwrap_or((text, ""));
        let fraction = format!("{fraction:0<9}");
        seconds.parse::<u64>().expect("seconds") * 1_000_000_000
            + fraction[..9].parse::<u64>().expect("fraction")
    }

    /// Compares our packets with tshark's view of the same file, field by field.
    /// `not_packets`: frame numbers tshark gives to blocks that are not packets.
    fn assert_matches_tshark(path: &Path, got: &[Got], not_packets: &[u64]) {
        let fields = [
            "frame.number",
            "frame.time_epoch",
            "frame.cap_len",
            "frame.len",
            "frame.interface_id",
            "frame.packet_flags_direction",
        ];
        let Some(rows) = tshark_fields(path, &fields) else {
            return;
        };
        let rows: Vec<_> = rows
            .into_iter()
            .filter(|row| {
                !not_packets
                    .iter()
                    .any(|number| row[0] == number.to_string())
            })
            .collect();
        assert_eq!(rows.len(), got.len(), "packet count of {}", path.display());
        for (row, packet) in rows.iter().zip(got) {
            let context = format!("{} packet {}", path.display(), packet.number);
            assert_eq!(row[0].parse::<u64>().ok(), Some(packet.number), "{context}");
            assert_eq!(epoch_ns(&row[1]), packet.ts_ns, "{context} time");
            assert_eq!(
                row[2].parse::<usize>().ok(),
                Some(packet.data.len()),
                "{context} caplen"
            );
            assert_eq!(
                row[3].parse::<u32>().ok(),
                Some(packet.orig_len),
                "{context} len"
            );
            // tshark leaves interface_id empty for pcap files (one implicit interface).
            let iface = if row[4].is_empty() {
                0
            } else {
                row[4].parse().expect("iface")
            };
            assert_eq!(iface, packet.iface, "{context} interface");
            let direction = match row[5].as_str() {
                "1" | "0x00000001" => Direction::Inbound,
                "2" | "0x00000002" => Direction::Outbound,
                _ => Direction::Unknown,
            };
            assert_eq!(
                direction, packet.direction,
                "{context} direction ({:?})",
                row[5]
            );
        }
    }

    // ---- formats ---------------------------------------------------------------------------

    #[test]
    fn pcap_all_four_magics() {
        let dir = TempDir::new("magics");
        let first = payload(60, 1);
        let second = payload(128, 2);
        for nanosecond in [false, true] {
            for big_endian in [false, true] {
                let records = [
                    PcapRecord {
                        seconds: 1_700_000_000,
                        fraction: 123_456,
                        data: &first,
                        orig_len: 60,
                    },
                    PcapRecord {
                        seconds: 1_700_000_001,
                        fraction: 999_999,
                        data: &second,
                        orig_len: 1500,
                    },
                ];
                let bytes = pcap_file(nanosecond, big_endian, 1, 128, &records);
                let name = format!("ns{nanosecond}-be{big_endian}.pcap");
                let path = dir.file(&name, &bytes);
                let reader = CaptureReader::open(&path).expect("open");
                assert_eq!(
                    reader.format(),
                    CaptureFormat::Pcap {
                        nanosecond,
                        big_endian
                    }
                );
                assert_eq!(reader.total_bytes(), Some(bytes.len() as u64));
                let (got, result) = read_all(&path);
                result.expect("whole file reads");
                let unit = if nanosecond { 1 } else { 1_000 };
                let expected = [
                    Got {
                        number: 1,
                        ts_ns: 1_700_000_000_000_000_000 + 123_456 * unit,
                        iface: 0,
                        direction: Direction::Unknown,
                        link_type: LinkType::Ethernet,
                        data: first.clone(),
                        orig_len: 60,
                    },
                    Got {
                        number: 2,
                        ts_ns: 1_700_000_001_000_000_000 + 999_999 * unit,
                        iface: 0,
                        direction: Direction::Unknown,
                        link_type: LinkType::Ethernet,
                        data: second.clone(),
                        orig_len: 1500,
                    },
                ];
                assert_eq!(got, expected, "{name}");
                assert_matches_tshark(&path, &got, &[]);
            }
        }
    }

    /// Two sections (little then big endian); the first with three interfaces of different link
    /// types and timestamp resolutions (µs default, ns, 2^-20 s), every packet block kind, and
    /// blocks we skip.
    fn multi_interface_pcapng() -> (Vec<u8>, Vec<Got>) {
        let eth = payload(60, 3);
        let raw = payload(40, 4);
        let sll = payload(70, 5);
        let simple = payload(33, 6);
        let sll2 = payload(52, 7);
        let mut file = shb(false);
        file.extend(idb(false, 1, 262_144, None));
        file.extend(idb(false, 101, 0, Some(9)));
        file.extend(idb(false, 113, 0, Some(0x80 | 20)));
        file.extend(epb(false, 0, 1_700_000_000_123_456, &eth, 60, Some(1)));
        // A name resolution block and a block type of local use: skipped.
        file.extend(block(false, 4, &[0; 4]));
        file.extend(block(false, 0x8000_0001, &[1, 2, 3, 4, 5, 6, 7, 8]));
        // A custom block: not a packet, but tshark numbers it as frame 2.
        file.extend(block(false, PCAPNG_CUSTOM, &[1, 2, 3, 4, 5, 6, 7, 8]));
        file.extend(epb(
            false,
            1,
            1_700_000_001_987_654_321,
            &raw,
            1400,
            Some(2),
        ));
        file.extend(epb(
            false,
            2,
            (1_700_000_002 << 20) | (1 << 19),
            &sll,
            70,
            None,
        ));
        file.extend(spb(false, &simple));
        file.extend(obsolete_pb(false, 1, 1_700_000_003_000_000_007, &raw, 1));
        // A second section restarts interface numbering, here in big endian.
        file.extend(shb(true));
        file.extend(idb(true, 276, 0, Some(6)));
        file.extend(epb(true, 0, 1_700_000_004_000_001, &sll2, 52, Some(2)));
        let got = |number, ts_ns, iface, direction, link_type, data: &[u8], orig_len| Got {
            number,
            ts_ns,
            iface,
            direction,
            link_type,
            data: data.to_vec(),
            orig_len,
        };
        let expected = vec![
            got(
                1,
                1_700_000_000_123_456_000,
                0,
                Direction::Inbound,
                LinkType::Ethernet,
                &eth,
                60,
            ),
            got(
                3,
                1_700_000_001_987_654_321,
                1,
                Direction::Outbound,
                LinkType::Raw,
                &raw,
                1400,
            ),
            got(
                4,
                1_700_000_002_500_000_000,
                2,
                Direction::Unknown,
                LinkType::LinuxSll,
                &sll,
                70,
            ),
            got(5, 0, 0, Direction::Unknown, LinkType::Ethernet, &simple, 33),
            got(
                6,
                1_700_000_003_000_000_007,
                1,
                Direction::Inbound,
                LinkType::Raw,
                &raw,
                40,
            ),
            got(
                7,
                1_700_000_004_000_001_000,
                0,
                Direction::Outbound,
                LinkType::LinuxSll2,
                &sll2,
                52,
            ),
        ];
        (file, expected)
    }

    #[test]
    fn pcapng_interfaces_sections_and_block_kinds() {
        let dir = TempDir::new("pcapng");
        let (bytes, expected) = multi_interface_pcapng();
        let path = dir.file("multi.pcapng", &bytes);
        let (got, result) = read_all(&path);
        result.expect("whole file reads");
        assert_eq!(got, expected);

        let mut reader = CaptureReader::open(&path).expect("open");
        assert_eq!(reader.format(), CaptureFormat::PcapNg);
        while reader.next_packet().expect("read").is_some() {}
        assert_eq!(Some(reader.bytes_read()), reader.total_bytes());
        assert_eq!(reader.frames_read(), 7);
        assert_matches_tshark(&path, &got, &[2]);
    }

    #[test]
    fn pcapng_tsoffset_and_name_options() {
        let dir = TempDir::new("tsoffset");
        let data = payload(40, 13);
        let mut file = shb(false);
        // if_name (skipped over), if_tsresol = 3 (ms), if_tsoffset = 1_000_000_000 s.
        let offset = 1_000_000_000i64.to_le_bytes();
        let opts: [(u16, &[u8]); 3] = [(2, b"eth0"), (9, &[3]), (14, &offset)];
        file.extend(idb_with_options(false, 101, 0, &opts));
        file.extend(epb(false, 0, 700_000_000_250, &data, 40, None));
        let path = dir.file("tsoffset.pcapng", &file);
        let (got, result) = read_all(&path);
        result.expect("reads");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].ts_ns, 1_700_000_000_250_000_000);
        assert_matches_tshark(&path, &got, &[]);
    }

    #[test]
    fn tsresol_scales() {
        assert_eq!(TsScale::from_tsresol(6).to_ns(1_500_000), 1_500_000_000);
        assert_eq!(TsScale::from_tsresol(9).to_ns(7), 7);
        assert_eq!(TsScale::from_tsresol(0).to_ns(3), 3_000_000_000);
        assert_eq!(TsScale::from_tsresol(12).to_ns(5_000_999), 5_000);
        assert_eq!(
            TsScale::from_tsresol(0x80 | 10).to_ns(3 << 10 | 512),
            3_500_000_000
        );
        assert_eq!(TsScale::from_tsresol(0x80).to_ns(2), 2_000_000_000);
        // Absurd resolutions do not overflow.
        assert_eq!(TsScale::from_tsresol(127).to_ns(u64::MAX), 0);
        assert_eq!(TsScale::from_tsresol(0).to_ns(u64::MAX), u64::MAX);
        assert_eq!(TsScale::from_tsresol(0xff).to_ns(u64::MAX), 0);
    }

    // ---- the real captures -------------------------------------------------------------------

    /// The shared captures, or `None` with the running test recorded as skipped.
    fn shared_pcaps() -> Option<PathBuf> {
        mptcp_lab::shared_pcaps("shared captures")
    }

    #[test]
    fn real_captures_match_tshark() {
        let Some(pcaps) = shared_pcaps() else {
            return;
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(&pcaps)
            .expect("list pcaps")
            .map(|entry| entry.expect("dir entry").path())
            .filter(|path| {
                path.extension()
                    .is_some_and(|ext| ext == "pcap" || ext == "pcapng")
            })
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no captures in {}", pcaps.display());
        for path in &files {
            let (got, result) = read_all(path);
            result.unwrap_or_else(|error| panic!("{error}"));
            assert!(
                got.iter()
                    .all(|packet| packet.link_type == LinkType::LinuxSll)
            );
            if path.file_name().is_some_and(|name| name == "client_2.pcap") {
                // capinfos / tshark -r client_2.pcap | wc -l (shared/pcaps/README.md).
                assert_eq!(got.len(), 2884);
            }
            assert_matches_tshark(path, &got, &[]);
        }
    }

    #[test]
    fn truncated_real_capture_delivers_all_but_the_cut_record() {
        let Some(pcaps) = shared_pcaps() else {
            return;
        };
        let bytes = std::fs::read(pcaps.join("client_2.pcap")).expect("read client_2.pcap");
        let dir = TempDir::new("cut-real");
        // Block lengths from the file's own trailers: it ends with a statistics block after
        // the block of the last packet (2884).
        let trailer =
            |end: usize| u32::from_le_bytes(bytes[end - 4..end].try_into().expect("4")) as usize;
        let statistics_len = trailer(bytes.len());
        let last_packet_end = bytes.len() - statistics_len;
        let last_packet_len = trailer(last_packet_end);
        let last_packet_start = last_packet_end - last_packet_len;

        // Cut inside the statistics block: every packet arrives, then the error.
        let path = dir.file("cut-statistics.pcap", &bytes[..bytes.len() - 10]);
        let (got, result) = read_all(&path);
        assert_eq!(got.len(), 2884);
        let error = result.expect_err("cut file");
        assert!(
            matches!(error, CaptureError::TruncatedRecord { packet: 2885, .. }),
            "{error:?}"
        );

        // Cut 10 bytes into the last packet's block.
        let path = dir.file("cut-packet.pcap", &bytes[..last_packet_end - 10]);
        let (got, result) = read_all(&path);
        assert_eq!(got.len(), 2883);
        if let Some(rows) = tshark_fields_of(&path, &["frame.number"], true) {
            assert_eq!(rows.len(), got.len(), "tshark's count of the cut file");
        }
        let error = result.expect_err("cut file");
        let CaptureError::TruncatedRecord {
            packet,
            offset,
            expected,
            present,
            ..
        } = &error
        else {
            panic!("expected TruncatedRecord, got {error:?}");
        };
        assert_eq!(*packet, 2884);
        assert_eq!(*offset, last_packet_start as u64);
        assert_eq!(*expected, last_packet_len as u64);
        assert_eq!(*present, last_packet_len as u64 - 10);
        let message = error.to_string();
        assert!(
            message.starts_with(&path.display().to_string()),
            "{message}"
        );
        assert!(message.contains("packet 2884"), "{message}");
        assert!(
            message.contains(&format!("byte offset {last_packet_start}")),
            "{message}"
        );
        assert!(
            message.contains(&format!("expected {expected} bytes, only {present}")),
            "{message}"
        );
    }

    // ---- damaged files -----------------------------------------------------------------------

    fn assert_names(error: &CaptureError, path: &Path, needles: &[&str]) {
        let message = error.to_string();
        assert!(
            message.starts_with(&path.display().to_string()),
            "{message}"
        );
        for needle in needles {
            assert!(message.contains(needle), "{message:?} lacks {needle:?}");
        }
    }

    #[test]
    fn missing_and_empty_and_random_files() {
        let dir = TempDir::new("not-capture");
        let missing = dir.0.join("missing.pcap");
        let error = open_error(&missing);
        assert!(
            matches!(&error, CaptureError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
        );
        assert_names(&error, &missing, &["cannot read"]);

        let error = open_error(&dir.0);
        assert!(matches!(error, CaptureError::Directory { .. }), "{error:?}");

        let empty = dir.file("empty.pcap", &[]);
        let error = open_error(&empty);
        assert!(
            matches!(error, CaptureError::NotCapture { .. }),
            "{error:?}"
        );
        assert_names(&error, &empty, &["empty"]);

        // Deterministic noise (an LCG), starting with bytes no magic has.
        let mut state: u32 = 0x1234_5678;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (state >> 24) as u8
            })
            .collect();
        let random = dir.file("random.pcap", &noise);
        let error = open_error(&random);
        let first = format!(
            "{:02x} {:02x} {:02x} {:02x}",
            noise[0], noise[1], noise[2], noise[3]
        );
        assert!(
            matches!(error, CaptureError::NotCapture { .. }),
            "{error:?}"
        );
        assert_names(&error, &random, &["not a pcap or pcapng file", &first]);

        let text = dir.file("short.txt", b"hi");
        let error = open_error(&text);
        assert_names(&error, &text, &["68 69"]);
    }

    #[test]
    fn truncated_file_headers() {
        let dir = TempDir::new("short-header");
        let pcap = pcap_file(false, false, 1, 65535, &[]);
        let path = dir.file("short.pcap", &pcap[..10]);
        let error = open_error(&path);
        assert!(
            matches!(
                error,
                CaptureError::TruncatedHeader {
                    format: "pcap",
                    expected: 24,
                    present: 10,
                    ..
                }
            ),
            "{error:?}"
        );
        assert_names(
            &error,
            &path,
            &["truncated pcap file header", "10 of 24 bytes"],
        );

        let section = shb(true);
        for cut in [4, 11, section.len() - 1] {
            let path = dir.file(&format!("short{cut}.pcapng"), &section[..cut]);
            let error = open_error(&path);
            assert!(
                matches!(
                    error,
                    CaptureError::TruncatedHeader {
                        format: "pcapng",
                        ..
                    }
                ),
                "cut at {cut}: {error:?}"
            );
            assert_names(&error, &path, &["truncated pcapng file header"]);
        }
        // A header alone is an empty, valid capture.
        let path = dir.file("header-only.pcap", &pcap);
        let (got, result) = read_all(&path);
        assert!(got.is_empty());
        result.expect("no records is not an error");
    }

    #[test]
    fn truncated_last_pcap_record() {
        let dir = TempDir::new("short-record");
        let data = payload(100, 8);
        let records = [
            PcapRecord {
                seconds: 1,
                fraction: 0,
                data: &data,
                orig_len: 100,
            },
            PcapRecord {
                seconds: 2,
                fraction: 0,
                data: &data,
                orig_len: 100,
            },
        ];
        let bytes = pcap_file(false, true, 101, 65535, &records);
        // Inside the second record's data: 30 of its 116 bytes missing.
        let path = dir.file("cut-data.pcap", &bytes[..bytes.len() - 30]);
        let (got, result) = read_all(&path);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].data, data);
        let error = result.expect_err("truncated");
        assert!(
            matches!(
                error,
                CaptureError::TruncatedRecord {
                    packet: 2,
                    offset: 140,
                    expected: 116,
                    present: 86,
                    ..
                }
            ),
            "{error:?}"
        );
        assert_names(
            &error,
            &path,
            &["packet 2", "byte offset 140", "expected 116 bytes, only 86"],
        );

        // Inside the second record's header.
        let path = dir.file("cut-header.pcap", &bytes[..24 + 116 + 5]);
        let (got, result) = read_all(&path);
        assert_eq!(got.len(), 1);
        let error = result.expect_err("truncated");
        assert!(
            matches!(
                error,
                CaptureError::TruncatedRecord {
                    packet: 2,
                    expected: 16,
                    present: 5,
                    ..
                }
            ),
            "{error:?}"
        );
    }

    #[test]
    fn pcap_record_lengths_beyond_reason() {
        let dir = TempDir::new("record-length");
        let data = payload(64, 9);
        let records = [
            PcapRecord {
                seconds: 1,
                fraction: 0,
                data: &data,
                orig_len: 64,
            },
            PcapRecord {
                seconds: 2,
                fraction: 0,
                data: &data,
                orig_len: 64,
            },
            PcapRecord {
                seconds: 3,
                fraction: 0,
                data: &data,
                orig_len: 64,
            },
        ];
        let mut bytes = pcap_file(false, false, 1, 0, &records);
        // Record 3's caplen: 2 GiB, far beyond the file and any packet.
        let third = 24 + 2 * (16 + 64);
        bytes[third + 8..third + 12].copy_from_slice(&0x8000_0000u32.to_le_bytes());
        let path = dir.file("huge.pcap", &bytes);
        let (got, result) = read_all(&path);
        assert_eq!(got.iter().map(|p| p.number).collect::<Vec<_>>(), [1, 2]);
        let error = result.expect_err("absurd length");
        assert!(
            matches!(
                error,
                CaptureError::BadRecordLength {
                    packet: 3,
                    caplen: 0x8000_0000,
                    limit: MAX_CAPLEN,
                    ..
                }
            ),
            "{error:?}"
        );
        assert_names(
            &error,
            &path,
            &["packet 3", &format!("byte offset {third}"), "2147483648"],
        );

        // Within 256 KiB but beyond the file's snapshot length of 64.
        let mut bytes = pcap_file(false, false, 1, 64, &records);
        bytes[third + 8..third + 12].copy_from_slice(&65u32.to_le_bytes());
        let path = dir.file("over-snaplen.pcap", &bytes);
        let (got, result) = read_all(&path);
        assert_eq!(got.len(), 2);
        let error = result.expect_err("over snaplen");
        assert!(
            matches!(
                error,
                CaptureError::BadRecordLength {
                    packet: 3,
                    caplen: 65,
                    limit: 64,
                    ..
                }
            ),
            "{error:?}"
        );
        assert_names(&error, &path, &["snapshot length"]);

        // A plausible length that runs past the end of the file: the record is cut.
        let mut bytes = pcap_file(false, false, 1, 0, &records);
        bytes[third + 8..third + 12].copy_from_slice(&1000u32.to_le_bytes());
        let path = dir.file("past-end.pcap", &bytes);
        let (got, result) = read_all(&path);
        assert_eq!(got.len(), 2);
        let error = result.expect_err("past the end");
        assert!(
            matches!(
                error,
                CaptureError::TruncatedRecord {
                    packet: 3,
                    expected: 1016,
                    present: 80,
                    ..
                }
            ),
            "{error:?}"
        );
    }

    #[test]
    fn corrupt_pcapng_block_lengths() {
        let dir = TempDir::new("block-length");
        let data = payload(50, 10);
        let mut file = shb(false);
        file.extend(idb(false, 101, 0, Some(9)));
        let first_packet = file.len();
        file.extend(epb(false, 0, 1, &data, 50, None));
        let second_packet = file.len();
        file.extend(epb(false, 0, 2, &data, 50, None));
        file.extend(epb(false, 0, 3, &data, 50, None));
        let block_len = second_packet - first_packet;

        let cases: [(&str, u32, &str); 3] = [
            ("unaligned", block_len as u32 + 1, "not a multiple of 4"),
            (
                "trailer",
                block_len as u32 + 4,
                "does not match its trailing copy",
            ),
            ("huge", 0xFFFF_FFF0, "implausible"),
        ];
        for (name, bad_len, why) in cases {
            let mut bytes = file.clone();
            bytes[second_packet + 4..second_packet + 8].copy_from_slice(&bad_len.to_le_bytes());
            let path = dir.file(&format!("{name}.pcapng"), &bytes);
            let (got, result) = read_all(&path);
            assert_eq!(got.len(), 1, "{name}");
            assert_eq!(got[0].data, data);
            let error = result.expect_err(name);
            let CaptureError::CorruptBlock { offset, packet, .. } = &error else {
                panic!("{name}: expected CorruptBlock, got {error:?}");
            };
            assert_eq!((*offset, *packet), (second_packet as u64, 2), "{name}");
            assert_names(
                &error,
                &path,
                &[
                    "before packet 2",
                    &format!("byte offset {second_packet}"),
                    why,
                ],
            );
        }

        // A captured length larger than its block.
        let mut bytes = file.clone();
        bytes[second_packet + 20..second_packet + 24].copy_from_slice(&60u32.to_le_bytes());
        let path = dir.file("caplen.pcapng", &bytes);
        let (got, result) = read_all(&path);
        assert_eq!(got.len(), 1);
        let error = result.expect_err("caplen beyond block");
        assert!(
            matches!(error, CaptureError::CorruptBlock { packet: 2, .. }),
            "{error:?}"
        );
        assert_names(&error, &path, &["captured length 60"]);

        // The last block cut short.
        let path = dir.file("cut.pcapng", &file[..file.len() - 8]);
        let (got, result) = read_all(&path);
        assert_eq!(got.len(), 2);
        let error = result.expect_err("cut");
        assert!(
            matches!(error, CaptureError::TruncatedRecord { packet: 3, .. }),
            "{error:?}"
        );
        assert_names(&error, &path, &["packet 3", "expected 84 bytes, only 76"]);

        // A packet on an interface the section never described.
        let mut bytes = file.clone();
        bytes[second_packet + 8..second_packet + 12].copy_from_slice(&5u32.to_le_bytes());
        let path = dir.file("no-interface.pcapng", &bytes);
        let (got, result) = read_all(&path);
        assert_eq!(got.len(), 1);
        let error = result.expect_err("missing interface");
        assert_names(&error, &path, &["interface 5", "describes 1 interface"]);
        assert!(
            error.to_string().ends_with("describes 1 interface"),
            "{error}"
        );
    }

    #[test]
    fn unknown_link_types() {
        let dir = TempDir::new("linktype");
        // LINKTYPE_USER0 = 147: a valid number we do not decode.
        let bytes = pcap_file(true, false, 147, 65535, &[]);
        let path = dir.file("user0.pcap", &bytes);
        let error = open_error(&path);
        assert!(
            matches!(error, CaptureError::UnknownLinkType { linktype: 147, .. }),
            "{error:?}"
        );
        assert_names(&error, &path, &["unknown link type 147"]);

        // pcapng: packets on the known interface come through up to the first on the unknown one.
        let data = payload(20, 11);
        let mut file = shb(false);
        file.extend(idb(false, 1, 0, None));
        file.extend(idb(false, 147, 0, None));
        file.extend(epb(false, 0, 1, &data, 20, None));
        file.extend(epb(false, 0, 2, &data, 20, None));
        file.extend(epb(false, 1, 3, &data, 20, None));
        let path = dir.file("user0.pcapng", &file);
        let (got, result) = read_all(&path);
        assert_eq!(got.len(), 2);
        let error = result.expect_err("unknown link type");
        assert!(
            matches!(error, CaptureError::UnknownLinkType { linktype: 147, .. }),
            "{error:?}"
        );
        assert_names(
            &error,
            &path,
            &["unknown link type 147", "interface 1", "packet 3"],
        );
    }

    /// Every truncation and many single-byte corruptions of valid files: errors, never panics,
    /// and never a packet outside the file.
    #[test]
    fn damaged_files_never_panic() {
        let dir = TempDir::new("fuzz");
        let (pcapng, _) = multi_interface_pcapng();
        let data = payload(30, 12);
        let records = [
            PcapRecord {
                seconds: 1,
                fraction: 2,
                data: &data,
                orig_len: 30,
            },
            PcapRecord {
                seconds: 3,
                fraction: 4,
                data: &data,
                orig_len: 30,
            },
        ];
        let pcap = pcap_file(false, false, 1, 0, &records);
        let path = dir.0.join("damaged");
        let mut runs = 0;
        for original in [&pcapng, &pcap] {
            let mut variants: Vec<Vec<u8>> = (0..original.len())
                .map(|cut| original[..cut].to_vec())
                .collect();
            for at in 0..original.len() {
                for value in [0x00, 0xff, 0x80, original[at] ^ 0x04] {
                    let mut bytes = original.clone();
                    bytes[at] = value;
                    variants.push(bytes);
                }
            }
            for bytes in variants {
                std::fs::write(&path, &bytes).expect("write");
                if let Ok(mut reader) = CaptureReader::open(&path) {
                    let total = reader.total_bytes().expect("a file's size is known");
                    let _ = reader.for_each(|packet| assert!(packet.data.len() as u64 <= total));
                    assert!(reader.bytes_read() <= total);
                }
                runs += 1;
            }
        }
        assert!(runs > 1000);
    }

    // ---- error messages, streams, GSO comments ------------------------------------------------

    /// The message as the CLI prints it: the whole chain (`error: {e:#}` in cli.rs).
    fn chain(error: CaptureError) -> String {
        format!("{:#}", anyhow::Error::from(error))
    }

    /// Each cause once: "x: cannot read: No such file or directory (os error 2)", not the OS's
    /// reason twice; "x: is a directory, ...", not "is a directory: is a directory".
    #[test]
    fn error_chains_name_each_cause_once() {
        let dir = TempDir::new("chain");
        let missing = dir.0.join("missing.pcap");
        let os = io::Error::from_raw_os_error(libc::ENOENT).to_string();
        let printed = chain(open_error(&missing));
        assert_eq!(printed, format!("{}: cannot read: {os}", missing.display()));
        assert_eq!(printed.matches(&os).count(), 1, "{printed}");

        let printed = chain(open_error(&dir.0));
        assert_eq!(
            printed,
            format!("{}: is a directory, not a capture file", dir.0.display())
        );

        // A stream that fails inside the header: the OS's reason once, as the source.
        let printed = chain(
            CaptureReader::from_stream("broken", Box::new(Failing(b"\xd4\xc3".to_vec())))
                .err()
                .expect("no header"),
        );
        assert_eq!(printed, "broken: cannot read: device on fire");
    }

    /// A stream that yields its bytes, then fails.
    struct Failing(Vec<u8>);

    impl io::Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::Error::other("device on fire"));
            }
            let n = buf.len().min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0.drain(..n);
            Ok(n)
        }
    }

    /// A stream that fails after some records: the records before are delivered, then an
    /// error that names the packet, the offset and the OS's reason (once: it is printed
    /// alone, as damage).
    #[test]
    fn stream_failing_midway_delivers_what_came_before() {
        let data = payload(30, 1);
        let record = |seconds| PcapRecord {
            seconds,
            fraction: 0,
            data: &data,
            orig_len: 30,
        };
        let file = pcap_file(false, false, 1, 0, &[record(1), record(2), record(3)]);
        // Cut inside the third record.
        let mut reader = CaptureReader::from_stream(
            "piped",
            Box::new(Failing(file[..24 + 2 * 46 + 20].to_vec())),
        )
        .expect("header");
        assert_eq!(reader.total_bytes(), None);
        let mut numbers = Vec::new();
        let error = reader
            .for_each(|packet| numbers.push(packet.number))
            .expect_err("fails");
        assert_eq!(numbers, [1, 2]);
        assert!(error.source().is_none());
        assert_eq!(
            chain(error),
            "piped: packet 3: reading stopped at byte offset 116: device on fire"
        );
    }

    /// A FIFO (what `<(cat file)` and `/dev/stdin` on a pipe are) reads exactly like the file:
    /// every packet, whole, in order; gzip data through the FIFO too.
    #[test]
    fn fifo_reads_like_the_file() {
        use nix::{sys::stat::Mode, unistd::mkfifo};

        let data = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data"));
        let dir = TempDir::new("fifo");
        let mut checked = 0;
        for name in ["v4-2sf.pcap", "v6-2sf.pcapng", "v4-2sf-signal-sll2.pcap"] {
            let file = data.join(name);
            let bytes = std::fs::read(&file).expect("capture");
            let (expected, result) = read_all(&file);
            result.expect("whole file");
            assert!(expected.len() > 10);
            let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            io::Write::write_all(&mut gzip, &bytes).expect("in memory");
            for (variant, contents) in [("", bytes), (".gz", gzip.finish().expect("in memory"))] {
                let fifo = dir.0.join(format!("{name}{variant}.fifo"));
                mkfifo(&fifo, Mode::S_IRUSR | Mode::S_IWUSR).expect("mkfifo");
                let writer = {
                    let fifo = fifo.clone();
                    std::thread::spawn(move || std::fs::write(&fifo, contents))
                };
                let (got, result) = read_all(&fifo);
                writer.join().expect("writer").expect("everything written");
                result.expect("whole stream");
                assert_eq!(got, expected, "{name}{variant}");
                checked += 1;
            }
        }
        assert_eq!(checked, 6);
    }

    /// Bytes handed over whole read as the file does, and a stream whose records straddle many
    /// reads (one byte at a time) too.
    #[test]
    fn bytes_and_trickling_streams_read_like_the_file() {
        let (file, expected) = multi_interface_pcapng();
        let mut reader = CaptureReader::from_bytes("whole", file.clone()).expect("header");
        assert_eq!(reader.total_bytes(), Some(file.len() as u64));
        let mut got = 0;
        reader.for_each(|_| got += 1).expect("whole");
        assert_eq!(got, expected.len());

        struct Trickle(io::Cursor<Vec<u8>>);
        impl io::Read for Trickle {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let end = buf.len().min(1);
                self.0.read(&mut buf[..end])
            }
        }
        let stream = Box::new(Trickle(io::Cursor::new(file.clone())));
        let mut reader = CaptureReader::from_stream("trickle", stream).expect("header");
        let mut data = Vec::new();
        reader
            .for_each(|packet| data.push(packet.data.to_vec()))
            .expect("whole");
        let want: Vec<Vec<u8>> = expected.iter().map(|got| got.data.clone()).collect();
        assert_eq!(data, want);
        assert_eq!(reader.bytes_read(), file.len() as u64);
    }

    /// The GSO comment is believed up to `MAX_GSO_SEGMENTS`; 0 counts as 1, and damage (too
    /// large for a u32, not a number) leaves the packet at 1.
    #[test]
    fn gso_comment_is_capped() {
        let packet = payload(40, 9);
        let mut file = shb(false);
        file.extend(idb(false, 101, 0, None));
        let cases: [(&str, u32); 7] = [
            ("GSO batch of 4294967295 segments", MAX_GSO_SEGMENTS),
            ("GSO batch of 65536 segments", MAX_GSO_SEGMENTS),
            ("GSO batch of 65535 segments", 65_535),
            ("GSO batch of 44 segments", 44),
            ("GSO batch of 0 segments", 1),
            ("GSO batch of 99999999999 segments", 1),
            ("GSO batch of many segments", 1),
        ];
        for (comment, _) in cases {
            let mut body = Vec::new();
            for field in [0, 0, 0, 40, 40] {
                put_u32(&mut body, field, false);
            }
            body.extend_from_slice(&packet);
            body.extend_from_slice(&options(false, &[(1, comment.as_bytes())]));
            file.extend(block(false, PCAPNG_ENHANCED_PACKET, &body));
        }
        let mut reader = CaptureReader::from_bytes("gso", file).expect("header");
        let mut segments = Vec::new();
        reader
            .for_each(|packet| segments.push(packet.segments))
            .expect("whole");
        let expected: Vec<u32> = cases.iter().map(|&(_, n)| n).collect();
        assert_eq!(segments, expected);
    }
}
