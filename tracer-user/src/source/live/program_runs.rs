//! The classifiers' in-kernel cost as the kernel counts it: run time and run count per program,
//! kept only while BPF statistics are on (`sysctl kernel.bpf_stats_enabled=1`, or a
//! `BPF_ENABLE_STATS` file descriptor someone holds). They are off by default because timing
//! every run costs two clock reads per run; the tracer never turns them on itself.

use aya::{Ebpf, programs::SchedClassifier};

use super::attach::{EGRESS_PROGRAM, INGRESS_PROGRAM};

/// Run time and run count of one classifier since it was loaded, over every interface it is
/// attached to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProgramRuns {
    /// `ingress` or `egress`.
    pub program: &'static str,
    pub run_time_ns: u64,
    pub run_count: u64,
}

const SYSCTL: &str = "/proc/sys/kernel/bpf_stats_enabled";

/// Both classifiers' counts, or nothing while the counts mean nothing: statistics off and never
/// on since the programs were loaded (both counts zero).
pub(super) fn read(ebpf: &Ebpf) -> Vec<ProgramRuns> {
    let runs: Vec<ProgramRuns> = [("ingress", INGRESS_PROGRAM), ("egress", EGRESS_PROGRAM)]
        .into_iter()
        .filter_map(|(program, name)| {
            let classifier: &SchedClassifier = ebpf.program(name)?.try_into().ok()?;
            let info = classifier.info().ok()?;
            Some(ProgramRuns {
                program,
                run_time_ns: u64::try_from(info.run_time().as_nanos()).unwrap_or(u64::MAX),
                run_count: info.run_count(),
            })
        })
        .collect();
    if stats_enabled() || runs.iter().any(|runs| runs.run_count > 0) {
        runs
    } else {
        Vec::new()
    }
}

fn stats_enabled() -> bool {
    std::fs::read_to_string(SYSCTL).is_ok_and(|text| text.trim() == "1")
}
