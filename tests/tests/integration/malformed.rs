//! Damaged input: a clear error naming the file (and the packet, for a damaged record), a
//! non-zero exit, never a panic, and the results of the packets before the damage still
//! printed (exit code 2 = results printed but data was lost).

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use integration_tests::{Run, as_u64, data_dir, direction, tracer, tshark_fields};

/// Exit code for "results printed, but reading stopped at damage".
const DATA_LOST: i32 = 2;

fn scratch_dir() -> PathBuf {
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("malformed-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap_or_else(|error| panic!("creating {}: {error}", dir.display()));
    dir
}

fn write(name: &str, bytes: &[u8]) -> PathBuf {
    let path = scratch_dir().join(name);
    fs::write(&path, bytes).unwrap_or_else(|error| panic!("writing {}: {error}", path.display()));
    path
}

/// Byte offset of each record of a classic pcap file, from the record lengths tshark reports
/// (24-byte file header, 16-byte record headers).
fn pcap_record_offsets(file: &Path) -> Vec<usize> {
    let mut offset = 24;
    tshark_fields(file, "", &["frame.cap_len"])
        .iter()
        .map(|row| {
            let start = offset;
            offset += 16
                + row
                    .first()
                    .and_then(|len| len.parse::<usize>().ok())
                    .unwrap_or(0);
            start
        })
        .collect()
}

fn assert_names(run: &Run, what: &str) {
    assert!(
        run.stderr.contains(what),
        "{}: stderr should name {what:?}:\n{}",
        run.command,
        run.stderr
    );
}

/// The whole file's unique bytes, for comparison with a damaged copy.
fn full_client_to_server(file: &Path) -> u64 {
    let path = file.to_string_lossy();
    let run = tracer(&["mptcp-summary", &path, "0", "--json"]);
    run.assert_success();
    as_u64(
        &direction(&run.json(), "client_to_server")["unique_bytes"],
        "unique_bytes",
    )
}

fn check_damaged_pcap(original: &Path, damaged: &Path, packet: usize) {
    let path = damaged.to_string_lossy();
    let file_name = damaged
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();

    let list = tracer(&["list-mptcp", &path, "--json"]);
    list.assert_no_panic();
    assert_eq!(list.code(), DATA_LOST, "{}: {}", list.command, list.stderr);
    assert_names(&list, file_name);
    assert_names(&list, &packet.to_string());
    // The connection and its join started long before the damage.
    let connections = list.json()["mptcp_connections"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(connections.len(), 1, "{}", list.stdout);
    assert_eq!(
        connections[0]["subflows"].as_array().map(Vec::len),
        Some(2),
        "{}",
        list.stdout
    );

    let summary = tracer(&["mptcp-summary", &path, "0", "--json"]);
    summary.assert_no_panic();
    assert_eq!(
        summary.code(),
        DATA_LOST,
        "{}: {}",
        summary.command,
        summary.stderr
    );
    let unique = as_u64(
        &direction(&summary.json(), "client_to_server")["unique_bytes"],
        "unique_bytes",
    );
    let full = full_client_to_server(original);
    assert!(
        unique > 0 && unique < full,
        "{path}: {unique} of {full} bytes before the damage"
    );
}

#[test]
fn pcap_truncated_in_the_middle_of_a_record() {
    let original = data_dir().join("v4-2sf-full.pcap");
    let bytes = fs::read(&original).expect("reading the capture");
    let offsets = pcap_record_offsets(&original);
    let packet = 150; // 1-based, as Wireshark's frame.number
    let start = offsets[packet - 1];
    let end = offsets.get(packet).copied().unwrap_or(bytes.len());
    let cut = start + 16 + (end - start - 16) / 2;
    let damaged = write("cut-in-record.pcap", &bytes[..cut]);
    check_damaged_pcap(&original, &damaged, packet);
}

#[test]
fn pcap_truncated_in_a_record_header() {
    let original = data_dir().join("v4-2sf-full.pcap");
    let bytes = fs::read(&original).expect("reading the capture");
    let offsets = pcap_record_offsets(&original);
    let packet = 120;
    let damaged = write("cut-in-header.pcap", &bytes[..offsets[packet - 1] + 8]);
    check_damaged_pcap(&original, &damaged, packet);
}

#[test]
fn pcap_record_with_an_impossible_length() {
    let original = data_dir().join("v4-2sf-full.pcap");
    let mut bytes = fs::read(&original).expect("reading the capture");
    let offsets = pcap_record_offsets(&original);
    let packet = 100;
    // incl_len (bytes 8..12 of the record header, file byte order: this file is little-endian
    // as written by tcpdump on x86) far beyond the file and any snaplen.
    let field = offsets[packet - 1] + 8;
    assert_eq!(
        &bytes[..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "a little-endian pcap"
    );
    bytes[field..field + 4].copy_from_slice(&0x7fff_0000u32.to_le_bytes());
    let damaged = write("bad-length.pcap", &bytes);
    check_damaged_pcap(&original, &damaged, packet);
}

#[test]
fn pcapng_truncated_in_the_middle() {
    let original = data_dir().join("v6-2sf.pcapng");
    let bytes = fs::read(&original).expect("reading the capture");
    let damaged = write("cut.pcapng", &bytes[..bytes.len() * 3 / 5]);
    // tshark reads the complete packets before the cut; the next one is the damaged one.
    let output = Command::new("tshark")
        .arg("-r")
        .arg(&damaged)
        .args(["-T", "fields", "-e", "frame.number"])
        .output()
        .expect("running tshark");
    let complete = String::from_utf8_lossy(&output.stdout).lines().count();
    assert!(
        complete > 10,
        "tshark read {complete} packets of the cut pcapng"
    );
    let path = damaged.to_string_lossy();
    let run = tracer(&["list-mptcp", &path, "--json"]);
    run.assert_no_panic();
    assert_eq!(run.code(), DATA_LOST, "{}: {}", run.command, run.stderr);
    assert_names(&run, "cut.pcapng");
    assert_names(&run, &(complete + 1).to_string());
    assert_eq!(
        run.json()["mptcp_connections"].as_array().map(Vec::len),
        Some(1),
        "{}",
        run.stdout
    );
}

fn check_unreadable(path: &Path) {
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_owned();
    let path = path.to_string_lossy();
    for args in [
        vec!["list-mptcp", &path, "--json"],
        vec!["list-tcp", &path],
        vec!["mptcp-summary", &path, "0"],
    ] {
        let run = tracer(&args);
        run.assert_no_panic();
        assert_ne!(
            run.code(),
            0,
            "{} succeeded on an unreadable file",
            run.command
        );
        assert_names(&run, &file_name);
    }
}

#[test]
fn random_bytes_are_not_a_capture() {
    // A fixed linear congruential sequence: the same "random" file on every run.
    let mut state: u32 = 0x1234_5678;
    let bytes: Vec<u8> = (0..4096)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 24) as u8
        })
        .collect();
    check_unreadable(&write("random.pcap", &bytes));
}

#[test]
fn empty_file_is_not_a_capture() {
    check_unreadable(&write("empty.pcap", &[]));
}

#[test]
fn missing_file_is_named() {
    check_unreadable(&scratch_dir().join("does-not-exist.pcap"));
}

/// `-` (standard input, a pipe here), `/dev/stdin` and a process substitution `<(cat FILE)` read
/// the capture as the file itself: the same list-tcp and mptcp-summary output, exit 0.
#[test]
fn stdin_and_pipes_read_like_the_file() {
    use std::{io::Write as _, process::Stdio};

    let file = data_dir().join("v4-2sf.pcap");
    let path = file.to_string_lossy();
    let expected = [
        tracer(&["list-tcp", &path, "--json"]),
        tracer(&["mptcp-summary", &path, "0", "--json"]),
    ];
    let bytes = fs::read(&file).expect("capture");
    for name in ["-", "/dev/stdin"] {
        for (args, expected) in [
            vec!["list-tcp", name, "--json"],
            vec!["mptcp-summary", name, "0", "--json"],
        ]
        .iter()
        .zip(&expected)
        {
            expected.assert_success();
            let mut child = Command::new(integration_tests::tracer_binary())
                .args(args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("mptcp-tracer starts");
            let mut stdin = child.stdin.take().expect("piped");
            let input = bytes.clone();
            let writer = std::thread::spawn(move || stdin.write_all(&input));
            let output = child.wait_with_output().expect("mptcp-tracer runs");
            writer.join().expect("writer").expect("all written");
            assert!(output.status.success(), "{args:?}: {output:?}");
            assert_eq!(
                String::from_utf8_lossy(&output.stdout),
                expected.stdout,
                "{args:?}"
            );
        }
    }
    // Process substitution, where bash is there to make one.
    let script = format!(
        "{} list-tcp <(cat \"$1\") --json",
        integration_tests::tracer_binary().display()
    );
    if let Ok(output) = Command::new("bash")
        .args(["-c", &script, "bash", &path])
        .output()
    {
        assert!(output.status.success(), "{output:?}");
        assert_eq!(String::from_utf8_lossy(&output.stdout), expected[0].stdout);
    }
}
