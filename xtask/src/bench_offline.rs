//! `cargo xtask bench-offline`: offline analysis speed and memory against tshark.
//!
//! Generates (or reuses) a large synthetic MPTCP v1 capture — Ethernet, IPv4, snaplen 128, many
//! concurrent connections of two subflows each, every data segment carrying a DSS mapping — then
//! in one run measures `mptcp-tracer list-mptcp`, `mptcp-summary` and `export --format
//! parquet`, the bare walk of the same file (`bare_walk`: the one-core ceiling), and tshark
//! exporting MPTCP fields from the same file, and prints packets/s, our fraction of the
//! ceiling, the ratio to tshark and peak RSS.
//!
//! The generator knows what it wrote, so the run also checks our numbers against it: a benchmark
//! of wrong results is worthless.

use std::{
    fs::File,
    io::{BufWriter, Write},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{Context as _, Result, bail};
use mptcp_tracer::analysis::keys::key_material;

/// Shape of the synthetic capture.
pub struct Synthetic {
    /// Connections open at the same time (interleaved packets).
    pub concurrent: u32,
    /// Data segments per connection, client to server, alternating between the two subflows.
    pub segments_per_connection: u32,
    /// MSS-sized payload of every data segment (on the wire; the capture keeps 128 bytes).
    pub payload: u16,
    /// Stop once the file reaches this size.
    pub target_bytes: u64,
}

/// What the generator wrote, to check the analysis against.
#[derive(Debug, Default)]
pub struct Written {
    pub packets: u64,
    pub connections: u64,
    pub subflows: u64,
    /// Client-to-server data bytes of each connection (all connections send the same).
    pub bytes_per_connection: u64,
}

const SNAPLEN: usize = 128;

struct PcapOut {
    out: BufWriter<File>,
    packets: u64,
    bytes: u64,
    ts_us: u64,
}

impl PcapOut {
    fn create(path: &Path) -> Result<Self> {
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        // pcap global header, microsecond magic, little endian, snaplen 128, Ethernet.
        out.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
        out.write_all(&2u16.to_le_bytes())?;
        out.write_all(&4u16.to_le_bytes())?;
        out.write_all(&[0u8; 8])?;
        out.write_all(&(SNAPLEN as u32).to_le_bytes())?;
        out.write_all(&1u32.to_le_bytes())?;
        Ok(Self {
            out,
            packets: 0,
            bytes: 24,
            ts_us: 1_700_000_000_000_000,
        })
    }

    fn record(&mut self, frame: &[u8], orig_len: usize) -> Result<()> {
        self.ts_us += 3;
        let cap = frame.len().min(SNAPLEN);
        self.out
            .write_all(&((self.ts_us / 1_000_000) as u32).to_le_bytes())?;
        self.out
            .write_all(&((self.ts_us % 1_000_000) as u32).to_le_bytes())?;
        self.out.write_all(&(cap as u32).to_le_bytes())?;
        self.out.write_all(&(orig_len as u32).to_le_bytes())?;
        self.out.write_all(&frame[..cap])?;
        self.packets += 1;
        self.bytes += 16 + cap as u64;
        Ok(())
    }
}

/// One TCP segment to encode.
struct Segment<'a> {
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    options: &'a [u8],
    payload: u16,
}

/// Ethernet + IPv4 + TCP frame with `options` (padded to 4 bytes) and a zero payload, which the
/// snaplen cuts anyway. Returns the frame bytes (headers and as much payload as fits the
/// snaplen) and the original length.
fn frame(seg: &Segment<'_>, buf: &mut Vec<u8>) -> usize {
    buf.clear();
    buf.extend_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]);
    let opt_len = seg.options.len().div_ceil(4) * 4;
    let tcp_len = 20 + opt_len;
    let total = 20 + tcp_len + seg.payload as usize;
    buf.extend_from_slice(&[0x45, 0]);
    buf.extend_from_slice(&(total as u16).to_be_bytes());
    buf.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0]);
    buf.extend_from_slice(&seg.src);
    buf.extend_from_slice(&seg.dst);
    buf.extend_from_slice(&seg.sport.to_be_bytes());
    buf.extend_from_slice(&seg.dport.to_be_bytes());
    buf.extend_from_slice(&seg.seq.to_be_bytes());
    buf.extend_from_slice(&seg.ack.to_be_bytes());
    buf.push(((tcp_len / 4) as u8) << 4);
    buf.push(seg.flags);
    buf.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
    buf.extend_from_slice(seg.options);
    buf.resize(14 + 20 + tcp_len, 1); // NOP padding
    let captured_payload = (SNAPLEN.saturating_sub(buf.len())).min(seg.payload as usize);
    buf.resize(buf.len() + captured_payload, 0);
    14 + total
}

/// splitmix64: deterministic, well-spread keys and nonces without a random-number dependency.
fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// One synthetic connection: an MP_CAPABLE v1 subflow and one MP_JOIN subflow.
struct Conn {
    index: u64,
    client_key: u64,
    server_key: u64,
    server_token: u32,
    /// Client's IDSN + 1: the first data sequence number.
    dsn_start: u64,
    /// Server's IDSN + 1 (the data ACK the client sends).
    server_dsn_start: u64,
    /// Next subflow sequence numbers (client side) of the two subflows, relative to their ISN.
    next_rel: [u32; 2],
}

const CLIENT_ISN: [u32; 2] = [0xffff_f000, 1_000_000]; // the first wraps around 2^32 early
const SERVER_ISN: [u32; 2] = [7_000_000, 0x8000_0000];
const PORT: u16 = 5201;

impl Conn {
    fn new(index: u64) -> Self {
        let client_key = splitmix(index * 2);
        let server_key = splitmix(index * 2 + 1);
        let client = key_material(1, client_key);
        let server = key_material(1, server_key);
        Self {
            index,
            client_key,
            server_key,
            server_token: server.token,
            dsn_start: client.idsn.wrapping_add(1),
            server_dsn_start: server.idsn.wrapping_add(1),
            next_rel: [1, 1],
        }
    }

    fn addrs(&self, subflow: usize) -> ([u8; 4], [u8; 4], u16) {
        let i = self.index;
        let client = [10, 1 + 2 * subflow as u8, (i >> 8) as u8, i as u8];
        let server = [10, 2 + 2 * subflow as u8, 0, 1];
        (client, server, 10_000 + (i >> 16) as u16)
    }

    fn steps(segments: u32) -> u32 {
        6 + 2 * segments + 2 + 6
    }

    /// Emits step `step` of this connection's life.
    fn emit(
        &mut self,
        step: u32,
        syn: &Synthetic,
        out: &mut PcapOut,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        const SYN: u8 = 0x02;
        const ACK: u8 = 0x10;
        const FIN: u8 = 0x01;
        let payload = u32::from(syn.payload);
        let segments = syn.segments_per_connection;
        let mut opt = [0u8; 40];
        let (subflow, from_client, flags, opt_len, payload_len);
        let mut rel_seq_c = 0u32; // client's relative seq of this packet (for data)
        let mut rel_ack_c = 0u32; // server's ack of client data
        let data_end = segments * payload; // bytes of client data in all
        match step {
            0 => {
                (subflow, from_client, flags, payload_len) = (0, true, SYN, 0);
                opt[..4].copy_from_slice(&[30, 4, 0x01, 0x01]);
                opt_len = 4;
            }
            1 => {
                (subflow, from_client, flags, payload_len) = (0, false, SYN | ACK, 0);
                opt[..4].copy_from_slice(&[30, 12, 0x01, 0x01]);
                opt[4..12].copy_from_slice(&self.server_key.to_be_bytes());
                opt_len = 12;
            }
            2 => {
                (subflow, from_client, flags, payload_len) = (0, true, ACK, 0);
                opt[..4].copy_from_slice(&[30, 20, 0x01, 0x01]);
                opt[4..12].copy_from_slice(&self.client_key.to_be_bytes());
                opt[12..20].copy_from_slice(&self.server_key.to_be_bytes());
                opt_len = 20;
            }
            3 => {
                (subflow, from_client, flags, payload_len) = (1, true, SYN, 0);
                opt[..4].copy_from_slice(&[30, 12, 0x10, 1]);
                opt[4..8].copy_from_slice(&self.server_token.to_be_bytes());
                opt[8..12].copy_from_slice(&(splitmix(self.index ^ 0x55) as u32).to_be_bytes());
                opt_len = 12;
            }
            4 => {
                (subflow, from_client, flags, payload_len) = (1, false, SYN | ACK, 0);
                opt[..4].copy_from_slice(&[30, 16, 0x10, 0]);
                opt[4..12].copy_from_slice(&splitmix(self.index ^ 0x66).to_be_bytes());
                opt[12..16].copy_from_slice(&(splitmix(self.index ^ 0x77) as u32).to_be_bytes());
                opt_len = 16;
            }
            5 => {
                (subflow, from_client, flags, payload_len) = (1, true, ACK, 0);
                opt[..4].copy_from_slice(&[30, 24, 0x10, 0]);
                opt_len = 24;
            }
            s if s < 6 + 2 * segments => {
                let k = (s - 6) / 2;
                subflow = (k % 2) as usize;
                let dsn = self
                    .dsn_start
                    .wrapping_add(u64::from(k) * u64::from(payload));
                if (s - 6) % 2 == 0 {
                    // Client data segment with its own mapping and a data ACK.
                    (from_client, flags, payload_len) = (true, ACK, payload);
                    rel_seq_c = self.next_rel[subflow];
                    opt[..4].copy_from_slice(&[30, 26, 0x20, 0x0f]);
                    opt[4..12].copy_from_slice(&self.server_dsn_start.to_be_bytes());
                    opt[12..20].copy_from_slice(&dsn.to_be_bytes());
                    opt[20..24].copy_from_slice(&rel_seq_c.to_be_bytes());
                    opt[24..26].copy_from_slice(&(payload as u16).to_be_bytes());
                    opt_len = 26;
                } else {
                    // Server ACK with the data ACK of that segment.
                    (from_client, flags, payload_len) = (false, ACK, 0);
                    self.next_rel[subflow] += payload;
                    rel_ack_c = self.next_rel[subflow];
                    opt[..4].copy_from_slice(&[30, 12, 0x20, 0x03]);
                    opt[4..12].copy_from_slice(&(dsn + u64::from(payload)).to_be_bytes());
                    opt_len = 12;
                }
            }
            s if s == 6 + 2 * segments => {
                // Bare DATA_FIN: mapping of length 1, no payload, subflow seq 0.
                (subflow, from_client, flags, payload_len) = (0, true, ACK, 0);
                rel_seq_c = self.next_rel[0];
                let fin_dsn = self.dsn_start.wrapping_add(u64::from(data_end));
                opt[..4].copy_from_slice(&[30, 26, 0x20, 0x1f]);
                opt[4..12].copy_from_slice(&self.server_dsn_start.to_be_bytes());
                opt[12..20].copy_from_slice(&fin_dsn.to_be_bytes());
                opt[20..24].copy_from_slice(&0u32.to_be_bytes());
                opt[24..26].copy_from_slice(&1u16.to_be_bytes());
                opt_len = 26;
            }
            s if s == 6 + 2 * segments + 1 => {
                (subflow, from_client, flags, payload_len) = (0, false, ACK, 0);
                rel_ack_c = self.next_rel[0];
                let acked = self.dsn_start.wrapping_add(u64::from(data_end) + 1);
                opt[..4].copy_from_slice(&[30, 12, 0x20, 0x03]);
                opt[4..12].copy_from_slice(&acked.to_be_bytes());
                opt_len = 12;
            }
            s => {
                // FIN from the client, FIN from the server, last ACK, on each subflow.
                let k = s - (6 + 2 * segments + 2);
                subflow = (k / 3) as usize;
                opt_len = 0;
                payload_len = 0;
                match k % 3 {
                    0 => {
                        (from_client, flags) = (true, FIN | ACK);
                        rel_seq_c = self.next_rel[subflow];
                    }
                    1 => {
                        (from_client, flags) = (false, FIN | ACK);
                        rel_ack_c = self.next_rel[subflow] + 1;
                    }
                    _ => {
                        (from_client, flags) = (true, ACK);
                        rel_seq_c = self.next_rel[subflow] + 1;
                    }
                }
            }
        }
        let (client, server, cport) = self.addrs(subflow);
        let client_rel = if from_client {
            rel_seq_c.max(1)
        } else {
            rel_ack_c
        };
        let (seq, ack) = if from_client {
            let seq = if flags & SYN != 0 {
                CLIENT_ISN[subflow]
            } else {
                CLIENT_ISN[subflow].wrapping_add(client_rel)
            };
            (
                seq,
                if flags & SYN != 0 && flags & ACK == 0 {
                    0
                } else {
                    SERVER_ISN[subflow].wrapping_add(1)
                },
            )
        } else {
            let seq = if flags & SYN != 0 {
                SERVER_ISN[subflow]
            } else {
                SERVER_ISN[subflow].wrapping_add(1)
            };
            (
                seq,
                CLIENT_ISN[subflow].wrapping_add(if flags & SYN != 0 { 1 } else { client_rel }),
            )
        };
        let seg = Segment {
            src: if from_client { client } else { server },
            dst: if from_client { server } else { client },
            sport: if from_client { cport } else { PORT },
            dport: if from_client { PORT } else { cport },
            seq,
            ack,
            flags,
            options: &opt[..opt_len],
            payload: payload_len as u16,
        };
        let orig = frame(&seg, buf);
        out.record(buf, orig)
    }
}

/// Writes the synthetic capture; returns what it wrote.
pub fn generate(path: &Path, syn: &Synthetic) -> Result<Written> {
    let mut out = PcapOut::create(path)?;
    let mut buf = Vec::with_capacity(256);
    let steps = Conn::steps(syn.segments_per_connection);
    let mut next_index = 0u64;
    while out.bytes < syn.target_bytes {
        let mut batch: Vec<Conn> = (0..u64::from(syn.concurrent))
            .map(|i| Conn::new(next_index + i))
            .collect();
        next_index += u64::from(syn.concurrent);
        for step in 0..steps {
            for conn in &mut batch {
                conn.emit(step, syn, &mut out, &mut buf)?;
            }
        }
    }
    out.out.flush()?;
    Ok(Written {
        packets: out.packets,
        connections: next_index,
        subflows: next_index * 2,
        bytes_per_connection: u64::from(syn.segments_per_connection) * u64::from(syn.payload),
    })
}

/// Wall time and peak RSS of one child process.
struct Measured {
    seconds: f64,
    max_rss_kib: u64,
    stdout: Vec<u8>,
}

/// Runs `cmd` to completion, stdout captured (or discarded), and measures it with wait4(2).
fn measure(cmd: &mut Command, keep_stdout: bool) -> Result<Measured> {
    let out_path = std::env::temp_dir().join(format!("bench-offline-{}.out", std::process::id()));
    let stdout = if keep_stdout {
        Stdio::from(File::create(&out_path)?)
    } else {
        Stdio::null()
    };
    let start = Instant::now();
    let child = cmd
        .stdout(stdout)
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("running {cmd:?}"))?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: zeroed rusage is a valid value; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our child, not yet reaped (std's Child is never waited on here).
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let seconds = start.elapsed().as_secs_f64();
    if r != pid {
        bail!(
            "wait4 on {cmd:?} failed: {}",
            std::io::Error::last_os_error()
        );
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        bail!("{cmd:?} failed (status {status})");
    }
    std::mem::forget(child);
    let stdout = if keep_stdout {
        std::fs::read(&out_path)?
    } else {
        Vec::new()
    };
    let _ = std::fs::remove_file(&out_path);
    Ok(Measured {
        seconds,
        max_rss_kib: usage.ru_maxrss as u64,
        stdout,
    })
}

pub struct Options {
    pub file: Option<PathBuf>,
    pub size_mb: u64,
    pub rounds: u32,
    /// Limit tshark to the first N packets (its rate is measured on those); 0 = the whole file.
    pub tshark_packets: u64,
}

pub fn run(root: &Path, options: &Options) -> Result<()> {
    // The release binary where cargo says it put it (CARGO_TARGET_DIR and all).
    let tracer = crate::bench_live::build_tracer()?;

    let synthetic = Synthetic {
        concurrent: 200,
        segments_per_connection: 2000,
        payload: 1400,
        target_bytes: options.size_mb * 1_000_000,
    };
    let file = options
        .file
        .clone()
        .unwrap_or_else(|| root.join("bench-data/offline.pcap"));
    let written = if file.exists() && options.file.is_some() {
        println!("reusing {}", file.display());
        None
    } else {
        std::fs::create_dir_all(file.parent().unwrap_or(root))?;
        println!("generating {} ({} MB) ...", file.display(), options.size_mb);
        let t = Instant::now();
        let w = generate(&file, &synthetic)?;
        println!(
            "  {} packets, {} connections in {:.1} s",
            w.packets,
            w.connections,
            t.elapsed().as_secs_f64()
        );
        Some(w)
    };
    let file_bytes = std::fs::metadata(&file)?.len();
    // Packet count from the tool itself, checked against the generator when we made the file.
    let mut best_list = f64::MAX;
    let mut best_summary = f64::MAX;
    let mut peak_rss = 0u64;
    let mut best_walk = f64::MAX;
    let mut walked_packets = 0;
    let mut list_json = Vec::new();
    let mut summary_json = Vec::new();
    let mut best_export = f64::MAX;
    let mut export_rss = 0u64;
    let export_out =
        std::env::temp_dir().join(format!("bench-export-{}.parquet", std::process::id()));
    for _ in 0..options.rounds {
        // Interleaved with our rounds, so that both see the same machine and page cache.
        let walk = crate::bare_walk::walk_in_child(&file)?;
        best_walk = best_walk.min(walk.seconds);
        walked_packets = walk.packets;
        let m = measure(
            Command::new(&tracer)
                .args(["--quiet", "list-mptcp"])
                .arg(&file)
                .arg("--json"),
            true,
        )?;
        best_list = best_list.min(m.seconds);
        peak_rss = peak_rss.max(m.max_rss_kib);
        list_json = m.stdout;
        let m = measure(
            Command::new(&tracer)
                .args(["--quiet", "mptcp-summary"])
                .arg(&file)
                .args(["0", "--json"]),
            true,
        )?;
        best_summary = best_summary.min(m.seconds);
        peak_rss = peak_rss.max(m.max_rss_kib);
        summary_json = m.stdout;
        let m = measure(
            Command::new(&tracer)
                .args(["--quiet", "export"])
                .arg(&file)
                .arg("-o")
                .arg(&export_out)
                .args(["--format", "parquet", "--force"]),
            false,
        )?;
        best_export = best_export.min(m.seconds);
        export_rss = export_rss.max(m.max_rss_kib);
    }
    let export_bytes = std::fs::metadata(&export_out).map_or(0, |m| m.len());
    let _ = std::fs::remove_file(&export_out);
    let list: serde_json::Value =
        serde_json::from_slice(&list_json).context("list-mptcp --json output")?;
    let summary: serde_json::Value =
        serde_json::from_slice(&summary_json).context("mptcp-summary --json output")?;
    let connections = list["mptcp_connections"].as_array().map_or(0, Vec::len) as u64;
    let subflows: u64 = list["mptcp_connections"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| c["subflows"].as_array().map_or(0, Vec::len) as u64)
        .sum();
    let packets = match &written {
        Some(w) => w.packets,
        None => count_packets(&file)?,
    };
    if walked_packets != packets {
        bail!("the bare walk read {walked_packets} packets of {packets}");
    }
    if let Some(w) = &written {
        let unique = summary["directions"][0]["unique_bytes"]
            .as_u64()
            .unwrap_or(0);
        let ok = connections == w.connections
            && subflows == w.subflows
            && unique == w.bytes_per_connection;
        println!(
            "check against the generator: {connections} / {} connections, {subflows} / {} subflows, \
             connection 0 unique bytes {unique} / {} -> {}",
            w.connections,
            w.subflows,
            w.bytes_per_connection,
            if ok { "OK" } else { "MISMATCH" }
        );
        if !ok {
            bail!("the analysis disagrees with what the generator wrote");
        }
    }

    let tshark_packets = if options.tshark_packets == 0 {
        packets
    } else {
        options.tshark_packets.min(packets)
    };
    let mut tshark = Command::new("tshark");
    tshark.args(["-n", "-r"]).arg(&file).args([
        "-T",
        "fields",
        "-e",
        "frame.number",
        "-e",
        "tcp.stream",
        "-e",
        "mptcp.stream",
        "-e",
        "tcp.options.mptcp.subtype",
        "-e",
        "tcp.options.mptcp.rawdataseqno",
        "-e",
        "tcp.options.mptcp.rawdataack",
        "-e",
        "mptcp.expected_token",
    ]);
    if tshark_packets < packets {
        tshark.args(["-c", &tshark_packets.to_string()]);
    }
    println!("running tshark on {tshark_packets} packets ...");
    let t = measure(&mut tshark, false)?;

    let ours_list = packets as f64 / best_list;
    let ours_summary = packets as f64 / best_summary;
    let ceiling = packets as f64 / best_walk;
    let ours_export = packets as f64 / best_export;
    let theirs = tshark_packets as f64 / t.seconds;
    println!();
    println!(
        "file: {} ({:.2} GB, {packets} packets, snaplen 128)",
        file.display(),
        file_bytes as f64 / 1e9
    );
    println!(
        "mptcp-tracer list-mptcp     {:>12.0} packets/s  ({:.2} s, best of {})",
        ours_list, best_list, options.rounds
    );
    println!(
        "mptcp-tracer mptcp-summary  {:>12.0} packets/s  ({:.2} s, best of {})",
        ours_summary, best_summary, options.rounds
    );
    println!(
        "bare walk (the ceiling)     {:>12.0} packets/s  ({:.2} s, best of {}: mmap, record \
         headers, first 64 bytes)",
        ceiling, best_walk, options.rounds
    );
    println!(
        "fraction of the ceiling     {:>12.1} % (list-mptcp), {:.1} % (mptcp-summary); target >= 50 %",
        100.0 * ours_list / ceiling,
        100.0 * ours_summary / ceiling
    );
    println!(
        "tshark MPTCP field export   {:>12.0} packets/s  ({:.2} s on {tshark_packets} packets, peak RSS {} MiB)",
        theirs,
        t.seconds,
        t.max_rss_kib / 1024
    );
    println!(
        "ratio mptcp-tracer/tshark   {:>12.1} x (list-mptcp), {:.1} x (mptcp-summary)",
        ours_list / theirs,
        ours_summary / theirs
    );
    println!(
        "export --format parquet     {:>12.0} packets/s  ({:.2} s, best of {}; {:.0} % of \
         mptcp-summary, {:.1} x tshark; peak RSS {:.1} MiB, target <= 128 MB; {:.0} MB written)",
        ours_export,
        best_export,
        options.rounds,
        100.0 * ours_export / ours_summary,
        ours_export / theirs,
        export_rss as f64 / 1024.0,
        export_bytes as f64 / 1e6
    );
    println!(
        "mptcp-tracer peak RSS       {:>12.1} MiB (target <= 64 MB)",
        peak_rss as f64 / 1024.0
    );
    println!(
        "target >= 10 M packets/s:   {}",
        if ours_list.min(ours_summary) >= 10e6 {
            "met"
        } else {
            "NOT met"
        }
    );
    Ok(())
}

/// Counts the records of a reused file with capinfos (from the tshark packages).
fn count_packets(file: &Path) -> Result<u64> {
    let out = Command::new("capinfos")
        .args(["-c", "-M"])
        .arg(file)
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| {
            l.strip_prefix("Number of packets:")
                .map(|v| v.trim().parse::<u64>())
        })
        .context("capinfos printed no packet count")?
        .context("capinfos packet count")
}
