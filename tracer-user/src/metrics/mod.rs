//! `trace --metrics ADDR:PORT`: the trace's counters and MPTCP connections as Prometheus
//! metrics, served at `/metrics` in the OpenMetrics text format (README, "Metrics").
//!
//! The registry (`prometheus-client`) is updated from the trace's interval callback
//! (`Metrics::update`, every `--interval`); a scrape only encodes it (`Exposition`). The HTTP
//! endpoint (`server`) runs as a `SideTask` on the trace's own event loop, the one thread that
//! also calls the interval callback, so a scrape never sees an update half done and the
//! endpoint needs no thread of its own.
//!
//! Counters never go down: the byte and event counts of each connection are followed
//! (`totals`), and only what grew since the last update is added, so the bytes of a connection
//! that ended (and, with `--long-run`, was forgotten) stay in the totals. Per-connection series
//! exist for the busiest open connections only (`series`), to bound the cardinality.

mod programs;
mod series;
pub mod server;
mod subflows;
mod totals;

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use prometheus_client::{
    encoding::{self, EncodeLabelSet},
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::{Registry, Unit},
};

pub use self::server::{MetricsError, MetricsServer};
use self::{
    programs::ProgramMetrics,
    series::{Candidate, Selection},
    subflows::SubflowSeries,
    totals::{BYTE_KINDS, CONNECTION_KINDS, SIGNALS, Totals},
};
use crate::{
    live::{Ended, Snapshot},
    source::live::LiveStats,
};

/// `--metrics-max-connections`' default.
pub const DEFAULT_MAX_CONNECTIONS: usize = 100;

/// The label values of a connection's two directions, as the JSON schema names them.
const DIRECTIONS: [&str; 2] = ["client_to_server", "server_to_client"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabels {
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CauseLabels {
    cause: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OptionLabels {
    option: &'static str,
}

/// One direction of one connection's per-connection series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnectionLabels {
    id: String,
    client: String,
    server: String,
    direction: &'static str,
}

/// What a scrape reads: the registry, and the count of scrapes (closed connections' series
/// stay until one has seen them).
#[derive(Clone)]
pub struct Exposition {
    registry: Arc<Registry>,
    scrapes: Arc<AtomicU64>,
}

impl Exposition {
    /// The registry in `format`; counts as a scrape.
    pub fn scrape(&self, format: Format) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        match format {
            Format::OpenMetrics => encoding::text::encode(&mut text, &self.registry)?,
            Format::PrometheusText => encoding::prometheus_text::encode(&mut text, &self.registry)?,
        }
        self.scrapes.fetch_add(1, Ordering::Relaxed);
        Ok(text)
    }
}

/// The text formats a scrape can ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0 text, `# EOF` last: what Prometheus asks for, and the default.
    OpenMetrics,
    /// Prometheus's older text format 0.0.4, for clients that ask for `text/plain` only
    /// (`promtool check metrics` reads only this one).
    PrometheusText,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => server::CONTENT_TYPE,
            Format::PrometheusText => encoding::prometheus_text::CONTENT_TYPE,
        }
    }
}

/// The tracer's own health, from `LiveStats`.
#[derive(Default)]
struct Health {
    packets_seen: Counter,
    events_received: Counter,
    events_lost: Family<CauseLabels, Counter>,
    gso_batches: Counter,
    folded_events: Counter,
    wire_packets: Counter,
    interfaces_attached: Gauge,
    programs: ProgramMetrics,
}

/// MPTCP over every connection seen.
#[derive(Default)]
struct Mptcp {
    connections_open: Gauge,
    connections_opened: Counter,
    connections_closed: Family<ReasonLabels, Counter>,
    subflows_open: Gauge,
    subflows_joined: Counter,
    subflows_failed: Counter,
    /// wire, unique, acked, reinjected, retransmitted (`totals::BYTE_KINDS`).
    bytes: [Family<DirectionLabels, Counter>; BYTE_KINDS.len()],
    signals: Family<OptionLabels, Counter>,
}

/// The updating side: the metrics' handles and what they were computed from.
pub struct Metrics {
    health: Health,
    mptcp: Mptcp,
    /// wire, unique, acked, reinjected, retransmitted of each selected connection
    /// (`CONNECTION_KINDS`).
    per_connection: [Family<ConnectionLabels, Counter>; CONNECTION_KINDS.len()],
    /// The busiest subflows of the selected connections.
    per_subflow: SubflowSeries,
    totals: Totals,
    selection: Selection,
    scrapes: Arc<AtomicU64>,
}

impl Metrics {
    /// The metrics, registered, and what the endpoint serves. Per-connection series for at
    /// most `max_connections` open connections.
    pub fn new(max_connections: usize) -> (Metrics, Exposition) {
        let metrics = Metrics {
            health: Health::default(),
            mptcp: Mptcp::default(),
            per_connection: Default::default(),
            per_subflow: SubflowSeries::default(),
            totals: Totals::default(),
            selection: Selection::new(max_connections),
            scrapes: Arc::new(AtomicU64::new(0)),
        };
        let mut registry = Registry::default();
        metrics.register_health(&mut registry);
        metrics.register_mptcp(&mut registry);
        metrics.register_per_connection(&mut registry);
        let exposition = Exposition {
            registry: Arc::new(registry),
            scrapes: Arc::clone(&metrics.scrapes),
        };
        (metrics, exposition)
    }

    fn register_health(&self, registry: &mut Registry) {
        let health = &self.health;
        let tracer = registry.sub_registry_with_prefix("mptcp_tracer");
        let counters = [
            (
                "packets_seen",
                "Packets the classifiers saw",
                &health.packets_seen,
            ),
            (
                "events_received",
                "Events userspace received",
                &health.events_received,
            ),
            (
                "gso_batches",
                "Events that were GSO batches",
                &health.gso_batches,
            ),
            (
                "folded_events",
                "Events that stood for several pure ACKs of one flow, folded in the kernel",
                &health.folded_events,
            ),
            (
                "wire_packets",
                "Wire packets the received events stand for",
                &health.wire_packets,
            ),
        ];
        for (name, help, counter) in counters {
            tracer.register(name, help, counter.clone());
        }
        tracer.register(
            "events_lost",
            "Events lost, by cause: ring buffer full (kernel) or userspace",
            health.events_lost.clone(),
        );
        tracer.register(
            "interfaces_attached",
            "Interfaces traced now",
            health.interfaces_attached.clone(),
        );
        health.programs.register(tracer);
    }

    fn register_mptcp(&self, registry: &mut Registry) {
        let mptcp = &self.mptcp;
        let sub = registry.sub_registry_with_prefix("mptcp");
        sub.register(
            "connections_open",
            "MPTCP connections open",
            mptcp.connections_open.clone(),
        );
        sub.register(
            "connections_opened",
            "MPTCP connections seen",
            mptcp.connections_opened.clone(),
        );
        sub.register(
            "connections_closed",
            "MPTCP connections ended, by how: DATA_FIN, MP_FASTCLOSE, reset, fallback, idle \
             timeout",
            mptcp.connections_closed.clone(),
        );
        sub.register(
            "subflows_open",
            "Subflows of the open MPTCP connections",
            mptcp.subflows_open.clone(),
        );
        sub.register(
            "subflows_joined",
            "Subflows attached by MP_JOIN",
            mptcp.subflows_joined.clone(),
        );
        sub.register(
            "subflows_failed",
            "MP_JOIN subflows refused or unanswered (no SYN/ACK, or reset before carrying data), \
             counted when their connection ends",
            mptcp.subflows_failed.clone(),
        );
        for ((name, help), family) in BYTE_KINDS.iter().zip(&mptcp.bytes) {
            sub.register_with_unit(*name, *help, Unit::Bytes, family.clone());
        }
        sub.register(
            "signals",
            "ADD_ADDR, RM_ADDR, MP_PRIO and MP_FAIL options seen",
            mptcp.signals.clone(),
        );
    }

    fn register_per_connection(&self, registry: &mut Registry) {
        let sub = registry.sub_registry_with_prefix("mptcp_connection");
        for ((name, help), family) in CONNECTION_KINDS.iter().zip(&self.per_connection) {
            let help = format!(
                "{help}, per connection (the busiest open ones; closed ones until scraped)"
            );
            sub.register_with_unit(*name, help, Unit::Bytes, family.clone());
        }
        self.per_subflow.register(registry);
    }

    /// Called every interval with the trace's counters, what is left in its state and what
    /// ended since the last call.
    pub fn update(&mut self, stats: &LiveStats, snapshot: &Snapshot, ended: &[Ended]) {
        self.update_health(stats);
        let growth = self.totals.update(snapshot, ended);
        let mptcp = &self.mptcp;
        mptcp.connections_opened.inc_by(growth.opened);
        for (reason, count) in &growth.closed {
            let reason = reason.as_str();
            mptcp
                .connections_closed
                .get_or_create(&ReasonLabels { reason })
                .inc_by(*count);
        }
        mptcp.subflows_joined.inc_by(growth.joined);
        mptcp.subflows_failed.inc_by(growth.failed_joins);
        for (family, by_direction) in mptcp.bytes.iter().zip(&growth.bytes) {
            for (direction, bytes) in DIRECTIONS.into_iter().zip(by_direction) {
                family
                    .get_or_create(&DirectionLabels { direction })
                    .inc_by(*bytes);
            }
        }
        for (option, count) in SIGNALS.iter().zip(&growth.signals) {
            let labels = OptionLabels { option: option.1 };
            mptcp.signals.get_or_create(&labels).inc_by(*count);
        }
        set_gauge(&mptcp.connections_open, snapshot.open.len() as u64);
        set_gauge(&mptcp.subflows_open, growth.subflows_open);
        self.update_series(&growth.open, &growth.just_closed);
    }

    fn update_health(&self, stats: &LiveStats) {
        let health = &self.health;
        raise(&health.packets_seen, stats.packets_seen);
        raise(&health.events_received, stats.events_received);
        raise(&health.gso_batches, stats.gso_batches);
        raise(&health.folded_events, stats.folded_events);
        raise(&health.wire_packets, stats.wire_packets);
        for (cause, lost) in [
            ("ringbuf_full", stats.ringbuf_full),
            ("userspace", stats.userspace_lost),
        ] {
            raise(
                &health.events_lost.get_or_create(&CauseLabels { cause }),
                lost,
            );
        }
        set_gauge(&health.interfaces_attached, stats.interfaces_attached);
        health.programs.update(&stats.program_runs);
    }

    /// Shows the selected connections' values and removes the series `Selection` says go.
    fn update_series(&mut self, open: &[Candidate], just_closed: &[Candidate]) {
        let scrapes = self.scrapes.load(Ordering::Relaxed);
        let plan = self.selection.update(open, just_closed, scrapes);
        // Removals first: a connection whose initial subflow's endpoints changed is removed
        // (old labels) and shown again (new ones) in one plan, and its subflows are by id.
        for candidate in &plan.remove {
            for direction in DIRECTIONS {
                let labels = connection_labels(candidate, direction);
                for family in &self.per_connection {
                    family.remove(&labels);
                }
            }
            self.per_subflow.remove(candidate.id);
        }
        for candidate in &plan.show {
            for (direction_index, direction) in DIRECTIONS.into_iter().enumerate() {
                let labels = connection_labels(candidate, direction);
                for (family, values) in self.per_connection.iter().zip(&candidate.values) {
                    raise(&family.get_or_create(&labels), values[direction_index]);
                }
            }
            self.per_subflow.show(candidate);
        }
    }
}

fn connection_labels(candidate: &Candidate, direction: &'static str) -> ConnectionLabels {
    ConnectionLabels {
        id: candidate.id.to_string(),
        client: candidate.client.clone(),
        server: candidate.server.clone(),
        direction,
    }
}

/// Brings a counter up to `value`, a total that only grows; never down.
fn raise(counter: &Counter, value: u64) {
    counter.inc_by(value.saturating_sub(counter.get()));
}

fn set_gauge(gauge: &Gauge, value: u64) {
    gauge.set(i64::try_from(value).unwrap_or(i64::MAX));
}

#[cfg(test)]
mod tests;
