//! The classifiers' in-kernel cost (`LiveStats::program_runs`): run time and run count per
//! program, exported only while the kernel keeps them (`kernel.bpf_stats_enabled`). The cost
//! per run is their ratio: `rate(mptcp_tracer_bpf_run_time_seconds_total[5m]) /
//! rate(mptcp_tracer_bpf_runs_total[5m])`.

use std::sync::atomic::AtomicU64;

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family},
    registry::{Registry, Unit},
};

use crate::source::live::ProgramRuns;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProgramLabels {
    /// `ingress` or `egress`.
    program: &'static str,
}

#[derive(Default)]
pub(super) struct ProgramMetrics {
    run_time: Family<ProgramLabels, Counter<f64, AtomicU64>>,
    runs: Family<ProgramLabels, Counter>,
}

impl ProgramMetrics {
    /// Registers under `tracer` (the `mptcp_tracer` prefix).
    pub(super) fn register(&self, tracer: &mut Registry) {
        tracer.register_with_unit(
            "bpf_run_time",
            "Time the classifiers ran in the kernel, while kernel.bpf_stats_enabled is on",
            Unit::Seconds,
            self.run_time.clone(),
        );
        tracer.register(
            "bpf_runs",
            "Runs of the classifiers (one per packet per direction), while \
             kernel.bpf_stats_enabled is on",
            self.runs.clone(),
        );
    }

    /// Brings each program's counters up to the kernel's (which only grow while the programs
    /// are loaded).
    pub(super) fn update(&self, runs: &[ProgramRuns]) {
        for runs in runs {
            let labels = ProgramLabels {
                program: runs.program,
            };
            let time = self.run_time.get_or_create(&labels);
            let seconds = runs.run_time_ns as f64 / 1e9;
            if seconds > time.get() {
                time.inc_by(seconds - time.get());
            }
            let count = self.runs.get_or_create(&labels);
            count.inc_by(runs.run_count.saturating_sub(count.get()));
        }
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::encoding::text::encode;

    use super::*;

    fn runs(program: &'static str, run_time_ns: u64, run_count: u64) -> ProgramRuns {
        ProgramRuns {
            program,
            run_time_ns,
            run_count,
        }
    }

    fn exposition(metrics: &ProgramMetrics) -> String {
        let mut registry = Registry::default();
        metrics.register(registry.sub_registry_with_prefix("mptcp_tracer"));
        let mut text = String::new();
        encode(&mut text, &registry).expect("encoding");
        text
    }

    #[test]
    fn counters_follow_the_kernels_counts_per_program() {
        let metrics = ProgramMetrics::default();
        assert!(
            !exposition(&metrics).contains("{program="),
            "no series before any count"
        );
        metrics.update(&[
            runs("ingress", 1_500_000_000, 3),
            runs("egress", 250_000, 5),
        ]);
        metrics.update(&[
            runs("ingress", 3_000_000_000, 10),
            runs("egress", 250_000, 5),
        ]);
        let text = exposition(&metrics);
        for line in [
            "mptcp_tracer_bpf_run_time_seconds_total{program=\"ingress\"} 3.0",
            "mptcp_tracer_bpf_run_time_seconds_total{program=\"egress\"} 0.00025",
            "mptcp_tracer_bpf_runs_total{program=\"ingress\"} 10",
            "mptcp_tracer_bpf_runs_total{program=\"egress\"} 5",
            "# UNIT mptcp_tracer_bpf_run_time_seconds seconds",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}
