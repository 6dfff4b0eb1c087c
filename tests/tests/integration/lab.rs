//! The namespace lab itself (the mptcp-lab crate), which makes the test captures and drives
//! the live tests: transfers count what they move, the monitor sees the subflows, tcpdump's
//! file holds what it says it captured, and nothing is left behind.

use std::{path::Path, process::Command};

use integration_tests::{can_use_namespaces, tshark_fields};
use mptcp_lab::{
    CaptureSpec, DropRule, EndpointMode, IpVersion, Lab, LabConfig, Side, TransferSpec,
};

fn namespaces() -> String {
    let output = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("running ip netns list");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn two_way_transfer(config: LabConfig, ip_version: IpVersion) {
    let lab = Lab::new(&config).expect("building the lab");
    let names = [
        lab.namespace(Side::Client).to_owned(),
        lab.namespace(Side::Server).to_owned(),
    ];
    assert!(
        names
            .iter()
            .all(|name| namespaces().contains(name.as_str()))
    );
    let monitor = lab
        .start_monitor(Side::Client)
        .expect("starting ip mptcp monitor");
    let counts = lab
        .transfer(&TransferSpec {
            ip_version,
            client_sends: 70_000,
            server_sends: 30_000,
            wait_for_subflows: 1,
            ..TransferSpec::default()
        })
        .expect("the transfer");
    assert_eq!(
        (counts.client_sent, counts.server_received),
        (70_000, 70_000)
    );
    assert_eq!(
        (counts.server_sent, counts.client_received),
        (30_000, 30_000)
    );
    assert_eq!(counts.subflows_before_data, 1);
    assert_eq!(
        counts.server_addr.ip(),
        lab.address(Side::Server, 1, ip_version).expect("path 1")
    );
    let report = monitor.stop().expect("stopping the monitor");
    assert_eq!(
        (report.connections, report.joins),
        (1, 1),
        "{:?}",
        report.lines
    );
    drop(lab);
    let left = namespaces();
    assert!(
        names.iter().all(|name| !left.contains(name.as_str())),
        "left behind: {left}"
    );
}

#[test]
fn ipv4_transfer_with_a_client_subflow_endpoint() {
    if can_use_namespaces("ipv4_transfer_with_a_client_subflow_endpoint") {
        two_way_transfer(LabConfig::default(), IpVersion::V4);
    }
}

#[test]
fn ipv6_transfer_with_a_client_subflow_endpoint() {
    if can_use_namespaces("ipv6_transfer_with_a_client_subflow_endpoint") {
        two_way_transfer(LabConfig::default(), IpVersion::V6);
    }
}

#[test]
fn ipv4_transfer_with_a_server_signal_endpoint() {
    if can_use_namespaces("ipv4_transfer_with_a_server_signal_endpoint") {
        two_way_transfer(
            LabConfig {
                endpoints: EndpointMode::ServerSignal,
                ..LabConfig::default()
            },
            IpVersion::V4,
        );
    }
}

#[test]
fn capture_holds_what_tcpdump_counted() {
    if !can_use_namespaces("capture_holds_what_tcpdump_counted") {
        return;
    }
    let lab = Lab::new(&LabConfig {
        paths: 1,
        ..LabConfig::default()
    })
    .expect("building the lab");
    let file =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("lab-{}.pcap", std::process::id()));
    let interface = lab.interface(Side::Client, 1).expect("path 1");
    let capture = lab
        .start_capture(&CaptureSpec {
            side: Side::Client,
            interface: &interface,
            snaplen: 96,
            file: &file,
            link_type: None,
            filter: Some("tcp"),
            buffer_kib: None,
        })
        .expect("starting tcpdump");
    let counts = lab
        .transfer(&TransferSpec {
            client_sends: 20_000,
            ..TransferSpec::default()
        })
        .expect("the transfer");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let captured = capture.stop().expect("stopping tcpdump");
    assert_eq!(captured.link_type, "EN10MB (Ethernet)");
    let rows = tshark_fields(&file, "", &["tcp.srcport", "tcp.len", "frame.cap_len"]);
    assert_eq!(rows.len() as u64, captured.captured, "packets in the file");
    assert!(
        rows.iter()
            .all(|row| row[2].parse::<u32>().is_ok_and(|len| len <= 96))
    );
    let client_port = counts.client_addr.port().to_string();
    let sent: u64 = rows
        .iter()
        .filter(|row| row[0] == client_port)
        .filter_map(|row| row[1].parse::<u64>().ok())
        .sum();
    // One path, no loss: the payload on the wire is what the application wrote.
    assert_eq!(sent, 20_000);
    std::fs::remove_file(&file).ok();
}

#[test]
fn drop_rule_is_installed_and_removed() {
    if !can_use_namespaces("drop_rule_is_installed_and_removed") {
        return;
    }
    let lab = Lab::new(&LabConfig::default()).expect("building the lab");
    let tables = || {
        lab.exec(Side::Server, "nft", &["list", "tables"])
            .expect("nft list tables")
    };
    let filter = lab
        .drop_packets(Side::Server, 2, DropRule::Random { percent: 5 })
        .expect("installing the rule");
    let ruleset = lab
        .exec(Side::Server, "nft", &["list", "ruleset"])
        .expect("nft list ruleset");
    assert!(
        ruleset.contains("iifname \"srv2\"") && ruleset.contains("drop"),
        "{ruleset}"
    );
    assert!(!tables().is_empty());
    lab.remove_filter(&filter).expect("removing the rule");
    assert!(tables().trim().is_empty(), "{}", tables());
    assert!(
        lab.drop_packets(Side::Server, 3, DropRule::All).is_err(),
        "path 3 does not exist"
    );
}
