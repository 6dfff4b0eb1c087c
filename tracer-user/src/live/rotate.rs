//! `-w` rotation as tcpdump's `-C`, `-G` and `-W`: a new pcapng file once the current one is
//! past a size or covers an interval, the oldest removed past a count. Each file is a whole
//! pcapng (section header and every interface description), readable on its own.
//!
//! Files are named after the `-w` path with a sequence number before the extension:
//! `trace.pcapng` → `trace-000001.pcapng`, `trace-000002.pcapng`, … (tcpdump appends digits
//! after the extension, which hides the format from file managers). An interval is measured
//! in packet time from the file's first packet, so a quiet period makes no empty files.

use std::{
    collections::VecDeque,
    path::{Path, PathBuf},
};

use crate::{
    output::pcapng::{PcapngEventWriter, PcapngWriteError},
    source::live::{CaptureWriter, Rotation, error_chain},
};

/// The writer of rotated files.
pub struct RotatingWriter {
    base: PathBuf,
    rotation: Rotation,
    force: bool,
    current: PcapngEventWriter,
    /// Every interface declared so far, declared again at the head of each new file.
    interfaces: Vec<(String, u32, Option<String>)>,
    /// Time of the current file's first packet.
    file_start_ns: Option<u64>,
    sequence: u64,
    /// The files written, oldest first (only those still kept).
    files: VecDeque<PathBuf>,
}

impl RotatingWriter {
    /// Creates the first file. Without `force` no existing file is replaced.
    pub fn create(base: &Path, rotation: Rotation, force: bool) -> Result<Self, PcapngWriteError> {
        let first = numbered(base, 1);
        Ok(Self {
            current: PcapngEventWriter::create(&first, force)?,
            base: base.to_path_buf(),
            rotation,
            force,
            interfaces: Vec::new(),
            file_start_ns: None,
            sequence: 1,
            files: VecDeque::from([first]),
        })
    }

    fn due(&self, ts_ns: u64) -> bool {
        let full = self
            .rotation
            .max_bytes
            .is_some_and(|max| self.current.bytes_written() >= max);
        let late = match (self.rotation.interval, self.file_start_ns) {
            (Some(interval), Some(start)) => {
                ts_ns.saturating_sub(start) >= interval.as_nanos() as u64
            }
            _ => false,
        };
        full || late
    }

    /// Closes the current file, opens the next with the interfaces, drops the oldest past
    /// `keep`.
    fn rotate(&mut self) -> Result<(), PcapngWriteError> {
        self.current.flush()?;
        self.sequence += 1;
        let path = numbered(&self.base, self.sequence);
        let mut next = PcapngEventWriter::create(&path, self.force)?;
        for (name, ifindex, netns) in &self.interfaces {
            next.add_interface(name, *ifindex, netns.as_deref())?;
        }
        self.current = next;
        self.file_start_ns = None;
        self.files.push_back(path);
        while let Some(keep) = self.rotation.keep
            && self.files.len() > keep.max(1)
        {
            if let Some(oldest) = self.files.pop_front() {
                // A file the user already moved away is no error.
                let _ = std::fs::remove_file(&oldest);
            }
        }
        Ok(())
    }
}

/// `dir/stem.ext` → `dir/stem-NNNNNN.ext`.
pub fn numbered(base: &Path, sequence: u64) -> PathBuf {
    let stem = base.file_stem().unwrap_or_default().to_string_lossy();
    let name = match base.extension() {
        Some(ext) => format!("{stem}-{sequence:06}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{sequence:06}"),
    };
    base.with_file_name(name)
}

/// Each file's writer is the plain `-w` one (`PcapngEventWriter`'s `CaptureWriter`, errors
/// rendered there); this adds only the moving on.
impl CaptureWriter for RotatingWriter {
    fn add_interface(
        &mut self,
        name: &str,
        ifindex: u32,
        netns: Option<&str>,
    ) -> Result<u32, String> {
        self.interfaces
            .push((name.to_owned(), ifindex, netns.map(str::to_owned)));
        CaptureWriter::add_interface(&mut self.current, name, ifindex, netns)
    }

    fn write_packet(
        &mut self,
        iface_id: u32,
        ts_ns: u64,
        inbound: bool,
        data: &[u8],
        orig_len: u32,
        gso_segs: u16,
    ) -> Result<(), String> {
        if self.due(ts_ns) {
            self.rotate().map_err(|e| error_chain(&e))?;
        }
        self.file_start_ns.get_or_insert(ts_ns);
        CaptureWriter::write_packet(
            &mut self.current,
            iface_id,
            ts_ns,
            inbound,
            data,
            orig_len,
            gso_segs,
        )
    }

    fn flush(&mut self) -> Result<(), String> {
        CaptureWriter::flush(&mut self.current)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::source::pcap::tests::{TempDir, epoch_ns, tshark_fields};

    const T0: u64 = 1_764_000_000_000_000_000;
    const SECOND: u64 = 1_000_000_000;

    /// A minimal IPv4 header and `extra` payload bytes.
    fn ipv4(extra: usize) -> Vec<u8> {
        let mut packet = vec![
            0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        let total = (20 + extra) as u16;
        packet[2..4].copy_from_slice(&total.to_be_bytes());
        packet.extend(std::iter::repeat_n(0xab, extra));
        packet
    }

    /// Writes a packet at each time, on two interfaces in turn; returns the files left, in
    /// order, each with tshark's timestamps and interface names of its packets.
    fn write_at(
        dir: &TempDir,
        rotation: Rotation,
        times: &[u64],
    ) -> Vec<(PathBuf, Vec<Vec<String>>)> {
        let base = dir.0.join("trace.pcapng");
        let mut writer = RotatingWriter::create(&base, rotation, false).expect("create");
        let eth = writer.add_interface("eth0", 2, None).expect("eth0");
        let veth = writer.add_interface("veth1", 5, Some("ns")).expect("veth1");
        for (i, &ts) in times.iter().enumerate() {
            let iface = if i % 2 == 0 { eth } else { veth };
            writer
                .write_packet(iface, ts, i % 2 == 0, &ipv4(100), 120, 0)
                .expect("write");
        }
        writer.flush().expect("flush");
        drop(writer);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir.0)
            .expect("dir")
            .map(|e| e.expect("entry").path())
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|path| {
                // tshark reads each file on its own (None without tshark: skipped there).
                let frames = tshark_fields(&path, &["frame.time_epoch", "frame.interface_name"])
                    .unwrap_or_default();
                (path, frames)
            })
            .collect()
    }

    fn names(files: &[(PathBuf, Vec<Vec<String>>)]) -> Vec<String> {
        files
            .iter()
            .map(|(path, _)| {
                path.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect()
    }

    /// `-G 1`: packets at 0, 0.5, 1.0, 1.5, 2.2 and 5.0 s go to files starting at 0, 1.0, 2.2
    /// and 5.0 s (an interval counts from a file's first packet, so the quiet 2.2–5.0 s makes
    /// no empty file); with `-W 2` only the last two remain. Each file is whole: tshark reads
    /// its packets with their interfaces.
    #[test]
    fn interval_rotation_counts_from_each_files_first_packet() {
        let times = [
            0,
            SECOND / 2,
            SECOND,
            3 * SECOND / 2,
            22 * SECOND / 10,
            5 * SECOND,
        ]
        .map(|t| T0 + t);
        let every = Rotation {
            interval: Some(Duration::from_secs(1)),
            ..Rotation::default()
        };
        let dir = TempDir::new("rotate-interval");
        let files = write_at(&dir, every, &times);
        assert_eq!(
            names(&files),
            [
                "trace-000001.pcapng",
                "trace-000002.pcapng",
                "trace-000003.pcapng",
                "trace-000004.pcapng"
            ]
        );
        if files.iter().all(|(_, frames)| !frames.is_empty()) {
            let per_file: Vec<Vec<u64>> = files
                .iter()
                .map(|(_, frames)| frames.iter().map(|f| epoch_ns(&f[0]) - T0).collect())
                .collect();
            assert_eq!(
                per_file,
                [
                    vec![0, SECOND / 2],
                    vec![SECOND, 3 * SECOND / 2],
                    vec![22 * SECOND / 10],
                    vec![5 * SECOND]
                ]
            );
            // The second file's packets are on eth0 then veth1: both interfaces re-declared.
            assert_eq!(files[1].1[0][1], "eth0");
            assert_eq!(files[1].1[1][1], "veth1");
        }
        let dir = TempDir::new("rotate-keep");
        let kept = write_at(
            &dir,
            Rotation {
                keep: Some(2),
                ..every
            },
            &times,
        );
        assert_eq!(names(&kept), ["trace-000003.pcapng", "trace-000004.pcapng"]);
    }

    /// `-C`: a file grows past the limit by at most one packet, then the next packet starts a
    /// new file; no packet is lost or repeated across the files.
    #[test]
    fn size_rotation_moves_on_once_a_file_is_past_the_limit() {
        let times: Vec<u64> = (0..40).map(|i| T0 + i * 1000).collect();
        let limit = 1000;
        let dir = TempDir::new("rotate-size");
        let files = write_at(
            &dir,
            Rotation {
                max_bytes: Some(limit),
                ..Rotation::default()
            },
            &times,
        );
        // Each packet block is 32 bytes of header, 120 of data, 12 of flags option and end.
        let block = 32 + 120 + 12;
        let sizes: Vec<u64> = files
            .iter()
            .map(|(path, _)| std::fs::metadata(path).expect("size").len())
            .collect();
        let (last, full) = sizes.split_last().expect("files");
        assert!(files.len() > 2, "{sizes:?}");
        for size in full {
            assert!(*size >= limit && *size < limit + block, "{sizes:?}");
        }
        assert!(*last <= limit + block, "{sizes:?}");
        if files.iter().all(|(_, frames)| !frames.is_empty()) {
            let read: Vec<u64> = files
                .iter()
                .flat_map(|(_, frames)| frames.iter().map(|f| epoch_ns(&f[0])))
                .collect();
            assert_eq!(read, times);
        }
    }

    #[test]
    fn an_existing_file_is_not_replaced_without_force() {
        let dir = TempDir::new("rotate-exists");
        let kept = dir.file("trace-000001.pcapng", b"mine");
        let error = RotatingWriter::create(&dir.0.join("trace.pcapng"), Rotation::default(), false)
            .err()
            .expect("refused");
        assert!(error.to_string().contains("trace-000001.pcapng"), "{error}");
        assert_eq!(std::fs::read(&kept).expect("kept"), b"mine");
    }
}
