//! The interactive shell read from a pipe (batch mode) answers as the one-shot CLI does.

use integration_tests::{data_dir, shared_pcaps, tracer, tracer_with_stdin};

fn same_answer_in_shell_and_cli(file: &std::path::Path) {
    let path = file.to_string_lossy();
    let cli = tracer(&["list-mptcp", &path, "--json"]);
    cli.assert_success();
    let script = format!("load-pcap {path}\nlist-mptcp --json\nquit\n");
    let shell = tracer_with_stdin(&[], Some(&script));
    shell.assert_success();
    let documents = shell.json_documents();
    assert_eq!(
        documents,
        vec![cli.json()],
        "the shell's JSON for {path}; its stdout was:\n{}",
        shell.stdout
    );
}

#[test]
fn shell_in_batch_mode_gives_the_cli_json() {
    same_answer_in_shell_and_cli(&data_dir().join("v4-4sf.pcap"));
}

#[test]
fn shell_in_batch_mode_gives_the_cli_json_on_a_shared_capture() {
    if let Some(dir) = shared_pcaps("shell_in_batch_mode_gives_the_cli_json_on_a_shared_capture") {
        same_answer_in_shell_and_cli(&dir.join("client_2.pcap"));
    }
}

#[test]
fn shell_reports_a_bad_command_and_goes_on() {
    let path = data_dir().join("v4-2sf.pcap");
    let script = format!(
        "no-such-command\nload-pcap {}\nlist-mptcp --json\nquit\n",
        path.display()
    );
    let shell = tracer_with_stdin(&[], Some(&script));
    shell.assert_no_panic();
    assert!(
        shell.stderr.contains("no-such-command") || shell.stdout.contains("no-such-command"),
        "the unknown command is named: {shell:?}"
    );
    assert_eq!(
        shell.json_documents().len(),
        1,
        "the next commands still ran: {shell:?}"
    );
}
