//! The one-core ceiling of reading a capture: memory-map the file, step from record to record
//! reading each record header and the first 64 captured bytes, nothing else. bench-offline
//! prints our packets/s as a fraction of this walk's, measured in the same run, so the number
//! means the same on a fast and a slow machine.
//!
//! This is deliberately not the product's reader (`mptcp_tracer::source::pcap`): that one
//! validates, converts timestamps and hands out `RawPacket`s, which is part of what is being
//! measured. It reads only the record framing of pcap (either byte order, µs or ns) and pcapng
//! (every block stepped over by its length, packet blocks counted), trusting the file: it runs
//! on files bench-offline generated or the user named.

use std::{
    fs::File,
    hint::black_box,
    path::Path,
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{Context as _, Result, bail};
use memmap2::Mmap;

/// Bytes of each record's captured data the walk touches.
const TOUCHED_BYTES: usize = 64;

/// What one walk found and how long it took.
pub struct Walk {
    pub packets: u64,
    pub seconds: f64,
}

/// Walks `path` once in a child process (`xtask bare-walk`): the walk maps the whole file, and
/// a child spawned later would inherit this process's peak RSS in its own (`ru_maxrss` carries
/// the peak of the memory it was spawned from), spoiling bench-offline's RSS measurements.
pub fn walk_in_child(path: &Path) -> Result<Walk> {
    let output = Command::new(std::env::current_exe()?)
        .arg("bare-walk")
        .arg(path)
        .stderr(Stdio::inherit())
        .output()
        .context("running the bare walk")?;
    if !output.status.success() {
        bail!("the bare walk of {} failed", path.display());
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let parsed = text
        .split_once(' ')
        .and_then(|(packets, seconds)| Some((packets.parse().ok()?, seconds.trim().parse().ok()?)));
    let (packets, seconds) = parsed.with_context(|| format!("bare walk printed {text:?}"))?;
    Ok(Walk { packets, seconds })
}

/// Walks `path` once, in this process.
pub fn walk(path: &Path) -> Result<Walk> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    // SAFETY: the benchmark's input is not modified while it runs.
    let map = unsafe { Mmap::map(&file) }.with_context(|| format!("mapping {}", path.display()))?;
    let start = Instant::now();
    let (packets, checksum) = match map.get(..4) {
        Some([0x0a, 0x0d, 0x0d, 0x0a]) => walk_pcapng(&map)?,
        Some(magic) => walk_pcap(&map, magic)?,
        None => bail!("{}: too short for a capture", path.display()),
    };
    let seconds = start.elapsed().as_secs_f64();
    black_box(checksum);
    Ok(Walk { packets, seconds })
}

/// What the walk does with a record's data: enough that it must be read.
fn touch(data: &[u8], checksum: u64) -> u64 {
    let touched = &data[..data.len().min(TOUCHED_BYTES)];
    touched
        .iter()
        .fold(checksum, |sum, &byte| sum.rotate_left(5) ^ u64::from(byte))
}

fn walk_pcap(map: &[u8], magic: &[u8]) -> Result<(u64, u64)> {
    let read_u32: fn([u8; 4]) -> u32 = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => u32::from_le_bytes,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => u32::from_be_bytes,
        _ => bail!("not a pcap or pcapng file (magic {magic:02x?})"),
    };
    let (mut at, mut packets, mut checksum) = (24, 0u64, 0u64);
    while let Some(header) = map.get(at..at + 16) {
        let field = |offset: usize| {
            read_u32(header[offset..offset + 4].try_into().expect("4 bytes")) as usize
        };
        let captured = field(8);
        let Some(data) = map.get(at + 16..at + 16 + captured) else {
            break;
        };
        checksum = touch(data, checksum ^ field(0) as u64 ^ field(4) as u64);
        packets += 1;
        at += 16 + captured;
    }
    Ok((packets, checksum))
}

fn walk_pcapng(map: &[u8]) -> Result<(u64, u64)> {
    const SECTION_HEADER: u32 = 0x0a0d_0d0a;
    const ENHANCED_PACKET: u32 = 6;
    const SIMPLE_PACKET: u32 = 3;
    let little_endian = match map.get(8..12) {
        Some([0x4d, 0x3c, 0x2b, 0x1a]) => true,
        Some([0x1a, 0x2b, 0x3c, 0x4d]) => false,
        _ => bail!("pcapng section header without a byte-order magic"),
    };
    let read_u32 = |bytes: &[u8]| {
        let bytes: [u8; 4] = bytes[..4].try_into().expect("4 bytes");
        if little_endian {
            u32::from_le_bytes(bytes)
        } else {
            u32::from_be_bytes(bytes)
        }
    };
    let (mut at, mut packets, mut checksum) = (0, 0u64, 0u64);
    while let Some(header) = map.get(at..at + 12) {
        let kind = read_u32(&header[0..]);
        let length = read_u32(&header[4..]) as usize;
        if length < 12 || kind == SECTION_HEADER && at != 0 {
            // A second section may change the byte order: out of this walk's scope.
            break;
        }
        let Some(block) = map.get(at..at + length) else {
            break;
        };
        let data = match kind {
            ENHANCED_PACKET if length >= 32 => {
                let captured = read_u32(&block[20..]) as usize;
                block.get(28..28 + captured)
            }
            SIMPLE_PACKET if length >= 16 => block.get(12..length - 4),
            _ => None,
        };
        if let Some(data) = data {
            checksum = touch(data, checksum ^ u64::from(read_u32(&block[12..])));
            packets += 1;
        }
        at += length;
    }
    Ok((packets, checksum))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The walk counts what tcpdump-style tools count on the repository's own captures.
    #[test]
    fn counts_the_records_of_pcap_and_pcapng_files() {
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data");
        let mut checked = 0;
        for entry in std::fs::read_dir(&data).expect("tests/data") {
            let path = entry.expect("entry").path();
            let capture = path
                .extension()
                .is_some_and(|ext| ext == "pcap" || ext == "pcapng");
            let Some(truth) = capinfos_packets(&path).filter(|_| capture) else {
                continue;
            };
            let walk = walk(&path).expect("walks");
            assert_eq!(walk.packets, truth, "{}", path.display());
            checked += 1;
        }
        if checked == 0 {
            mptcp_lab::skip::skip(
                "counts_the_records_of_pcap_and_pcapng_files",
                "capinfos (tshark's packages) is not installed",
            );
        }
    }

    /// capinfos' packet count, for files it reads without complaint.
    fn capinfos_packets(path: &Path) -> Option<u64> {
        let out = Command::new("capinfos")
            .args(["-c", "-M"])
            .arg(path)
            .output()
            .ok()
            .filter(|out| out.status.success())?;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|line| {
                line.strip_prefix("Number of packets:")
                    .and_then(|count| count.trim().parse().ok())
            })
    }
}
