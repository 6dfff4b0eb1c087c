//! `cargo xtask make-captures`: small MPTCP v1 captures made in the lab, each with a truth file
//! holding what the application, `ip mptcp monitor`, tcpdump and the kernel counted. The
//! integration tests check the analysis against these numbers, never against its own output.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    thread,
    time::Duration,
};

use anyhow::{Context, bail, ensure};
use mptcp_lab::{
    Capture, CaptureCounts, CaptureSpec, DropRule, EndpointMode, IpVersion, Lab, LabConfig,
    MonitorReport, Side, TransferCounts, TransferSpec,
};
use serde_json::{Value, json};

use crate::setup::output;

/// Bytes kept per packet in the small captures: headers and options, little payload.
const SNAPLEN: u32 = 128;

/// How the packets are recorded.
#[derive(Clone, Copy)]
enum Recording {
    /// One tcpdump per client interface, merged by time with mergecap into one file of this
    /// format ("pcap" or "pcapng"); link type Ethernet.
    PerPath { format: &'static str },
    /// One tcpdump on `any` in the client namespace with link type LINUX_SLL2.
    AnySll2,
}

struct Scenario {
    name: &'static str,
    description: &'static str,
    paths: usize,
    endpoints: EndpointMode,
    ip_version: IpVersion,
    client_sends: u64,
    server_sends: u64,
    recording: Recording,
    /// Drop every data segment arriving at the server on path 2 for a while after the
    /// subflows are up, so that the client reinjects that data on path 1.
    lossy: bool,
    /// Also record the same transfer with the full snaplen into `<name>-full`.
    full_snaplen_twin: bool,
}

fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "v4-2sf",
            description: "IPv4, 2 paths, client subflow endpoint, client sends 150000 bytes; \
                          Ethernet, captured (filter `tcp`) on both client veths and merged \
                          (pcap); recorded at the same time with snaplen 128 and full",
            paths: 2,
            endpoints: EndpointMode::ClientSubflow,
            ip_version: IpVersion::V4,
            client_sends: 150_000,
            server_sends: 0,
            recording: Recording::PerPath { format: "pcap" },
            lossy: false,
            full_snaplen_twin: true,
        },
        Scenario {
            name: "v4-4sf",
            description: "IPv4, 4 paths, client subflow endpoints, client sends 200000 bytes; \
                          Ethernet, captured on the 4 client veths and merged (pcap)",
            paths: 4,
            endpoints: EndpointMode::ClientSubflow,
            ip_version: IpVersion::V4,
            client_sends: 200_000,
            server_sends: 0,
            recording: Recording::PerPath { format: "pcap" },
            lossy: false,
            full_snaplen_twin: false,
        },
        Scenario {
            name: "v4-2sf-bidir",
            description: "IPv4, 2 paths, client sends 120000 bytes while the server sends 160000; \
                          Ethernet, both client veths merged (pcap)",
            paths: 2,
            endpoints: EndpointMode::ClientSubflow,
            ip_version: IpVersion::V4,
            client_sends: 120_000,
            server_sends: 160_000,
            recording: Recording::PerPath { format: "pcap" },
            lossy: false,
            full_snaplen_twin: false,
        },
        Scenario {
            name: "v6-2sf",
            description: "IPv6, 2 paths, client subflow endpoint, client sends 150000 bytes; \
                          Ethernet, both client veths merged into one pcapng (two interfaces)",
            paths: 2,
            endpoints: EndpointMode::ClientSubflow,
            ip_version: IpVersion::V6,
            client_sends: 150_000,
            server_sends: 0,
            recording: Recording::PerPath { format: "pcapng" },
            lossy: false,
            full_snaplen_twin: false,
        },
        Scenario {
            name: "v4-2sf-lossy",
            description: "IPv4, 2 paths; after the join, nftables at the server drops every data \
                          segment arriving on path 2 for 1.5 s, so the client reinjects it on \
                          path 1; client sends 150000 bytes; Ethernet, merged (pcap)",
            paths: 2,
            endpoints: EndpointMode::ClientSubflow,
            ip_version: IpVersion::V4,
            client_sends: 150_000,
            server_sends: 0,
            recording: Recording::PerPath { format: "pcap" },
            lossy: true,
            full_snaplen_twin: false,
        },
        Scenario {
            name: "v4-2sf-signal-sll2",
            description: "IPv4, 2 paths, the server announces its second address (signal \
                          endpoint, ADD_ADDR) and the client joins it; client sends 100000 and \
                          the server 50000 bytes; `tcpdump -i any -y LINUX_SLL2` at the client",
            paths: 2,
            endpoints: EndpointMode::ServerSignal,
            ip_version: IpVersion::V4,
            client_sends: 100_000,
            server_sends: 50_000,
            recording: Recording::AnySll2,
            lossy: false,
            full_snaplen_twin: false,
        },
    ]
}

pub fn make_captures(only: Option<&str>) -> anyhow::Result<()> {
    let data_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data");
    fs::create_dir_all(&data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let scratch = data_dir.join(".scratch");
    for scenario in scenarios() {
        if only.is_some_and(|filter| !scenario.name.contains(filter)) {
            continue;
        }
        if scratch.exists() {
            fs::remove_dir_all(&scratch)?;
        }
        fs::create_dir_all(&scratch)?;
        log::info!("capture {}: {}", scenario.name, scenario.description);
        let result = make_capture(&scenario, &data_dir, &scratch)
            .with_context(|| format!("capture {}", scenario.name));
        if result.is_ok() {
            fs::remove_dir_all(&scratch).ok();
        } else {
            log::error!("the partial captures are kept in {}", scratch.display());
        }
        result?;
    }
    Ok(())
}

/// The tcpdumps of one recording, and the files they write.
struct Recorder<'lab> {
    captures: Vec<(String, PathBuf, Capture<'lab>)>,
}

fn start_recorder<'lab>(
    lab: &'lab Lab,
    scenario: &Scenario,
    scratch: &Path,
    tag: &str,
    snaplen: u32,
) -> anyhow::Result<Recorder<'lab>> {
    let mut captures = Vec::new();
    let interfaces: Vec<String> = match scenario.recording {
        Recording::PerPath { .. } => (1..=scenario.paths)
            .map(|path| lab.interface(Side::Client, path))
            .collect::<Result<_, _>>()?,
        Recording::AnySll2 => vec!["any".to_owned()],
    };
    for interface in interfaces {
        let file = scratch.join(format!("{tag}.{interface}.pcap"));
        let capture = lab.start_capture(&CaptureSpec {
            side: Side::Client,
            interface: &interface,
            snaplen,
            file: &file,
            link_type: matches!(scenario.recording, Recording::AnySll2).then_some("LINUX_SLL2"),
            // The twins keep TCP only: both tcpdumps then hold exactly the same packets, and
            // no IPv6 autoconfiguration packet can fall between their start times.
            filter: scenario.full_snaplen_twin.then_some("tcp"),
            buffer_kib: None,
        })?;
        captures.push((interface, file, capture));
    }
    Ok(Recorder { captures })
}

/// Stops the tcpdumps and merges their files into `output`.
fn finish_recorder(
    recorder: Recorder<'_>,
    scenario: &Scenario,
    snaplen: u32,
    output: &Path,
) -> anyhow::Result<Vec<(String, CaptureCounts)>> {
    let mut counts = Vec::new();
    let mut files = Vec::new();
    for (interface, file, capture) in recorder.captures {
        counts.push((interface, capture.stop()?));
        files.push(file);
    }
    match scenario.recording {
        Recording::PerPath { format } => {
            let mut command = Command::new("mergecap");
            command.args(["-F", format]);
            if snaplen != 0 {
                // mergecap writes the largest snaplen of its inputs otherwise.
                command.args(["-s", &snaplen.to_string()]);
            }
            command.arg("-w").arg(output).args(&files);
            crate::setup::output(&mut command)?;
        }
        Recording::AnySll2 => {
            fs::copy(&files[0], output).with_context(|| {
                format!("copying {} to {}", files[0].display(), output.display())
            })?;
        }
    }
    Ok(counts)
}

fn make_capture(scenario: &Scenario, data_dir: &Path, scratch: &Path) -> anyhow::Result<()> {
    let lab = Lab::new(&LabConfig {
        paths: scenario.paths,
        endpoints: scenario.endpoints,
        ..LabConfig::default()
    })?;
    let client_monitor = lab.start_monitor(Side::Client)?;
    let server_monitor = lab.start_monitor(Side::Server)?;
    let extension = match scenario.recording {
        Recording::PerPath { format: "pcapng" } => "pcapng",
        _ => "pcap",
    };
    let main_recorder = start_recorder(&lab, scenario, scratch, "main", SNAPLEN)?;
    let full_recorder = if scenario.full_snaplen_twin {
        Some(start_recorder(&lab, scenario, scratch, "full", 0)?)
    } else {
        None
    };

    let extra_subflows = u8::try_from(scenario.paths - 1)?;
    let session = lab.start_transfer(&TransferSpec {
        ip_version: scenario.ip_version,
        client_sends: scenario.client_sends,
        server_sends: scenario.server_sends,
        wait_for_subflows: extra_subflows,
        ..TransferSpec::default()
    })?;
    let counts: TransferCounts = if scenario.lossy {
        let filter = lab.drop_packets(Side::Server, 2, DropRule::DataSegments)?;
        thread::scope(|scope| {
            let unblock = scope.spawn(|| {
                thread::sleep(Duration::from_millis(1500));
                lab.remove_filter(&filter)
            });
            let counts = session.finish();
            let unblocked = unblock
                .join()
                .map_err(|_| anyhow::anyhow!("the unblocking thread panicked"))?;
            unblocked?;
            anyhow::Ok(counts?)
        })?
    } else {
        session.finish()?
    };
    // Let the connection close (FINs, DATA_FIN, subflow teardown) inside the capture.
    thread::sleep(Duration::from_millis(700));
    let client_report = client_monitor.stop()?;
    let server_report = server_monitor.stop()?;
    let client_counters = nonzero_counters(lab.mptcp_counters(Side::Client)?);
    let server_counters = nonzero_counters(lab.mptcp_counters(Side::Server)?);

    let main_file = data_dir.join(format!("{}.{extension}", scenario.name));
    let main_counts = finish_recorder(main_recorder, scenario, SNAPLEN, &main_file)?;
    let mut outputs = vec![(
        scenario.name.to_owned(),
        main_file,
        main_counts,
        SNAPLEN,
        None,
    )];
    if let Some(recorder) = full_recorder {
        let name = format!("{}-full", scenario.name);
        let file = data_dir.join(format!("{name}.{extension}"));
        let counts = finish_recorder(recorder, scenario, 0, &file)?;
        outputs.push((name, file, counts, 0, Some(scenario.name)));
    }

    ensure!(
        client_report.connections == 1,
        "the client's monitor saw {} connections: {:?}",
        client_report.connections,
        client_report.lines
    );
    if scenario.lossy {
        let duplicates = counter(&server_counters, "MPTcpExtDuplicateData");
        let retransmits = counter(&client_counters, "MPTcpExtMPTCPRetrans");
        ensure!(
            duplicates > 0 || retransmits > 0,
            "the lossy scenario caused no MPTCP-level retransmission (client {client_counters}, server {server_counters})"
        );
    }

    for (name, file, tcpdump_counts, snaplen, twin_of) in outputs {
        let file_info = capinfos(&file)?;
        let packets: u64 = tcpdump_counts
            .iter()
            .map(|(_, counts)| counts.captured)
            .sum();
        ensure!(
            file_info["packets"] == json!(packets),
            "{} holds {} packets, tcpdump captured {packets}",
            file.display(),
            file_info["packets"]
        );
        let size = fs::metadata(&file)?.len();
        if size > 300_000 {
            log::warn!(
                "{} is {size} bytes, more than the 300 KB aimed at",
                file.display()
            );
        }
        let truth = json!({
            "file": file.file_name().map(|name| name.to_string_lossy().into_owned()),
            "scenario": scenario.description,
            "twin_of": twin_of,
            "mptcp_version": 1,
            "ip_version": match scenario.ip_version { IpVersion::V4 => 4, IpVersion::V6 => 6 },
            "paths": scenario.paths,
            "endpoints": match scenario.endpoints {
                EndpointMode::ClientSubflow => "client subflow",
                EndpointMode::ServerSignal => "server signal",
            },
            "lossy": scenario.lossy,
            "snaplen": if snaplen == 0 { Value::from("full (tcpdump default 262144)") } else { Value::from(snaplen) },
            "snaplen_bytes": if snaplen == 0 { 262_144 } else { snaplen },
            "capture_point": "client namespace",
            "client_addr": counts.client_addr.to_string(),
            "server_addr": counts.server_addr.to_string(),
            "application": {
                "client_to_server_bytes": counts.client_sent,
                "server_to_client_bytes": counts.server_sent,
                "client_sent": counts.client_sent,
                "server_received": counts.server_received,
                "server_sent": counts.server_sent,
                "client_received": counts.client_received,
                "extra_subflows_before_data": counts.subflows_before_data,
            },
            "ip_mptcp_monitor": {
                "mptcp_connections": client_report.connections,
                "subflows": client_report.subflows(),
                "joins": client_report.joins,
                "client_tokens": tokens(&client_report),
                "server_tokens": tokens(&server_report),
                "client_lines": client_report.lines,
                "server_lines": server_report.lines,
            },
            "tcpdump": {
                "packets": packets,
                "link_type": tcpdump_counts.first().map(|(_, counts)| counts.link_type.clone()),
                "interfaces": tcpdump_counts.iter().map(|(interface, counts)| json!({
                    "interface": interface,
                    "captured": counts.captured,
                    "received_by_filter": counts.received_by_filter,
                    "dropped_by_kernel": counts.dropped_by_kernel,
                })).collect::<Vec<_>>(),
            },
            "capinfos": file_info,
            "kernel_mptcp_counters": { "client": client_counters, "server": server_counters },
        });
        let truth_file = data_dir.join(format!("{name}.truth.json"));
        fs::write(&truth_file, serde_json::to_string_pretty(&truth)? + "\n")?;
        log::info!(
            "{}: {size} bytes, {packets} packets, {} connection(s), {} subflows, {} + {} bytes",
            file.display(),
            client_report.connections,
            client_report.subflows(),
            counts.client_sent,
            counts.server_sent
        );
    }
    Ok(())
}

/// Tokens from `token=<hex>` in the CREATED lines: the local token of each connection.
fn tokens(report: &MonitorReport) -> Vec<u32> {
    report
        .lines
        .iter()
        .filter(|line| line.contains("CREATED"))
        .filter_map(|line| {
            let hex = line.split("token=").nth(1)?.split_whitespace().next()?;
            u32::from_str_radix(hex, 16).ok()
        })
        .collect()
}

fn nonzero_counters(counters: Vec<(String, u64)>) -> Value {
    counters
        .into_iter()
        .filter(|(_, value)| *value != 0)
        .map(|(name, value)| (name, Value::from(value)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

fn counter(counters: &Value, name: &str) -> u64 {
    counters.get(name).and_then(Value::as_u64).unwrap_or(0)
}

/// The file's format, link type, packet count and snaplen as Wireshark's capinfos reads them.
fn capinfos(file: &Path) -> anyhow::Result<Value> {
    // -T: a header line and a value line, tab-separated.
    let output = output(
        Command::new("capinfos")
            .args(["-T", "-t", "-E", "-c", "-l"])
            .arg(file),
    )?;
    let mut lines = output.lines();
    let (Some(header), Some(values)) = (lines.next(), lines.next()) else {
        bail!(
            "unexpected capinfos output for {}: {output:?}",
            file.display()
        );
    };
    let table: std::collections::HashMap<&str, &str> =
        header.split('\t').zip(values.split('\t')).collect();
    let field = |name: &str| {
        table
            .get(name)
            .copied()
            .with_context(|| format!("no {name:?} in capinfos output for {}", file.display()))
    };
    let packets = field("Number of packets")?;
    Ok(json!({
        "file_type": field("File type")?,
        "encapsulation": field("File encapsulation")?,
        "packets": packets.parse::<u64>().with_context(|| format!("capinfos packet count {packets:?}"))?,
        "snaplen": field("Packet size limit")?,
    }))
}
