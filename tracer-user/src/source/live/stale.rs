//! Filters left behind by an mptcp-tracer that could not detach: killed with SIGKILL in netlink
//! mode, its clsact filters keep running (and filling their ring buffer) with no reader.
//!
//! A filter is ours when it is a bpf filter named like our classifiers (names nobody else
//! uses: `attach::INGRESS_PROGRAM`, `attach::EGRESS_PROGRAM`); it is stale when no live process
//! holds its program. A running tracer keeps its programs open as file descriptors, so its
//! filters are never taken for stale: the kernel lists every open program fd's id as
//! `prog_id:` in `/proc/PID/fdinfo/FD` (TCX links list theirs there too). Only the processes
//! this one can see in `/proc` count: a tracer in another PID namespace that shares the network
//! namespace would look dead from here.
//!
//! A trace removes the stale filters of ours it finds on its interfaces before it attaches
//! (`remove_at_start`): a tracer restarted after SIGKILL (by systemd, say) leaves nothing of the
//! killed one running, and says what it removed. `trace --cleanup` does the same without
//! tracing.

use std::{collections::HashSet, fs, io};

use super::{
    attach::{EGRESS_PROGRAM, INGRESS_PROGRAM, Interface},
    tc_filters::{self, Filter},
};

/// Our filters on `interface` whose program no live process holds.
pub(super) fn find(interface: &Interface) -> io::Result<Vec<Filter>> {
    let ours: Vec<Filter> = tc_filters::list(interface.ifindex)?
        .into_iter()
        .filter(is_ours)
        .collect();
    if ours.is_empty() {
        return Ok(ours);
    }
    let held = held_program_ids();
    Ok(ours
        .into_iter()
        .filter(|filter| filter.program_id.is_some_and(|id| !held.contains(&id)))
        .collect())
}

fn is_ours(filter: &Filter) -> bool {
    filter.kind == "bpf"
        && filter
            .program_name
            .as_deref()
            .is_some_and(|name| name == INGRESS_PROGRAM || name == EGRESS_PROGRAM)
}

/// The ids of every BPF program some process holds open (its own or through a link).
fn held_program_ids() -> HashSet<u32> {
    let mut held = HashSet::new();
    let Ok(processes) = fs::read_dir("/proc") else {
        return held;
    };
    for process in processes.flatten() {
        let Ok(fds) = fs::read_dir(process.path().join("fdinfo")) else {
            // Not a process, or one that ended meanwhile.
            continue;
        };
        for fd in fds.flatten() {
            let Ok(text) = fs::read_to_string(fd.path()) else {
                continue;
            };
            held.extend(program_id_of(&text));
        }
    }
    held
}

/// The `prog_id:` of one fdinfo file, if it names a program.
fn program_id_of(fdinfo: &str) -> Option<u32> {
    fdinfo
        .lines()
        .find_map(|line| line.strip_prefix("prog_id:"))
        .and_then(|id| id.trim().parse().ok())
}

/// Deletes our stale filters on `interface` (and nothing else); returns those it deleted.
pub(super) fn remove(interface: &Interface) -> io::Result<Vec<Filter>> {
    let stale = find(interface)?;
    for filter in &stale {
        tc_filters::delete(interface.ifindex, filter)?;
    }
    Ok(stale)
}

/// Before a trace attaches: removes the stale filters of ours on each interface. Returns one
/// line per interface where there were some, saying what was removed (or, if that failed, how
/// to remove them); each line is also logged at once, since the run may be long.
pub(super) fn remove_at_start(interfaces: &[Interface], netns: Option<&str>) -> Vec<String> {
    let mut notes = Vec::new();
    for interface in interfaces {
        let note = match remove(interface) {
            Ok(removed) if removed.is_empty() => continue,
            Ok(removed) => removed_note(interface, &removed),
            Err(e) => match find(interface) {
                Ok(stale) if !stale.is_empty() => {
                    format!(
                        "{}; removing them failed: {e}",
                        warning(interface, netns, &stale)
                    )
                }
                _ => {
                    log::info!(
                        "could not look for stale filters on {}: {e}",
                        interface.name
                    );
                    continue;
                }
            },
        };
        log::warn!("{note}");
        notes.push(note);
    }
    notes
}

/// What a trace says after removing a killed tracer's filters from `interface`.
fn removed_note(interface: &Interface, removed: &[Filter]) -> String {
    let shown: Vec<String> = removed.iter().map(Filter::describe).collect();
    format!(
        "{}: removed {} filter(s) of an mptcp-tracer that is no longer running ({}) before \
         attaching",
        interface.name,
        removed.len(),
        shown.join("; "),
    )
}

/// How to remove stale filters of ours that a trace could not remove itself.
fn warning(interface: &Interface, netns: Option<&str>, stale: &[Filter]) -> String {
    let shown: Vec<String> = stale.iter().map(Filter::describe).collect();
    let netns = netns.map_or(String::new(), |ns| format!(" --netns {ns}"));
    format!(
        "{}: {} filter(s) of an mptcp-tracer that is no longer running ({}) still run there and \
         fill their ring buffer; remove only those with `mptcp-tracer trace --cleanup -i {}{netns}`",
        interface.name,
        stale.len(),
        shown.join("; "),
        interface.name,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::live::tc_filters::Hook;

    fn bpf(name: &str, id: u32) -> Filter {
        Filter {
            hook: Hook::Ingress,
            priority: 49152,
            protocol: 0x0300,
            handle: 1,
            kind: "bpf".into(),
            program_name: Some(name.into()),
            program_id: Some(id),
        }
    }

    #[test]
    fn only_bpf_filters_with_our_names_are_ours() {
        assert!(is_ours(&bpf(INGRESS_PROGRAM, 7)));
        assert!(is_ours(&bpf(EGRESS_PROGRAM, 7)));
        assert!(!is_ours(&bpf("tc_ingress", 7)));
        let classic = Filter {
            kind: "u32".into(),
            ..bpf(INGRESS_PROGRAM, 7)
        };
        assert!(!is_ours(&classic));
    }

    #[test]
    fn program_ids_come_from_fdinfo() {
        let program = "pos:\t0\nflags:\t02000002\nmnt_id:\t16\nino:\t2063\nprog_type:\t3\n\
                       prog_jited:\t1\nprog_tag:\t2a1de4b3a5b7b7a1\nmemlock:\t4096\nprog_id:\t57\n";
        assert_eq!(program_id_of(program), Some(57));
        let map = "pos:\t0\nflags:\t02000002\nmap_type:\t27\nmap_id:\t12\n";
        assert_eq!(program_id_of(map), None);
    }
}
