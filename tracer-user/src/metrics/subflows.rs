//! Per-subflow series of the connections that have series (`series`): for each, its busiest
//! subflows (at most `MAX_SUBFLOW_SERIES`), labelled with the connection's id and the subflow's
//! TCP stream and endpoints. A subflow that falls out of its connection's busiest loses its
//! series at the next update; all of a connection's go with the connection's.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family},
    registry::{Registry, Unit},
};
use rustc_hash::FxHashMap;

use super::{
    DIRECTIONS, raise,
    series::{Candidate, MAX_SUBFLOW_SERIES},
    totals::SUBFLOW_KINDS,
};

/// One direction of one subflow's series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SubflowLabels {
    id: String,
    subflow: String,
    client: String,
    server: String,
    direction: &'static str,
}

#[derive(Default)]
pub(super) struct SubflowSeries {
    /// By kind (`SUBFLOW_KINDS`).
    families: [Family<SubflowLabels, Counter>; SUBFLOW_KINDS.len()],
    /// The labels shown now, by connection id.
    shown: FxHashMap<u64, Vec<SubflowLabels>>,
}

impl SubflowSeries {
    pub(super) fn register(&self, registry: &mut Registry) {
        let sub = registry.sub_registry_with_prefix("mptcp_subflow");
        for ((name, help), family) in SUBFLOW_KINDS.iter().zip(&self.families) {
            let help = format!(
                "{help}, per subflow of the connections with series of their own (at most \
                 {MAX_SUBFLOW_SERIES} each, the busiest)"
            );
            sub.register_with_unit(*name, help, Unit::Bytes, family.clone());
        }
    }

    /// Sets `connection`'s subflow series to its values; removes those of its subflows that
    /// are no longer among the shown.
    pub(super) fn show(&mut self, connection: &Candidate) {
        let mut labels_now = Vec::new();
        for subflow in &connection.subflows {
            for (direction_index, direction) in DIRECTIONS.into_iter().enumerate() {
                let labels = SubflowLabels {
                    id: connection.id.to_string(),
                    subflow: subflow.stream.to_string(),
                    client: subflow.client.clone(),
                    server: subflow.server.clone(),
                    direction,
                };
                for (family, values) in self.families.iter().zip(&subflow.values) {
                    raise(&family.get_or_create(&labels), values[direction_index]);
                }
                labels_now.push(labels);
            }
        }
        let before = self.shown.insert(connection.id, labels_now.clone());
        for gone in before.unwrap_or_default() {
            if !labels_now.contains(&gone) {
                self.remove_labels(&gone);
            }
        }
    }

    /// Removes every subflow series of connection `id`.
    pub(super) fn remove(&mut self, id: u64) {
        for labels in self.shown.remove(&id).unwrap_or_default() {
            self.remove_labels(&labels);
        }
    }

    fn remove_labels(&self, labels: &SubflowLabels) {
        for family in &self.families {
            family.remove(labels);
        }
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::encoding::text::encode;

    use super::*;
    use crate::metrics::series::SubflowCandidate;

    fn subflow(stream: u64, wire: u64) -> SubflowCandidate {
        SubflowCandidate {
            stream,
            client: format!("10.0.{stream}.1:4000{stream}"),
            server: format!("10.0.{stream}.2:5201"),
            values: [[wire, 1], [wire / 2, 0], [0, 0], [3, 0]],
        }
    }

    fn connection(subflows: Vec<SubflowCandidate>) -> Candidate {
        Candidate {
            id: 4,
            client: "10.0.0.1:40000".into(),
            server: "10.0.0.2:5201".into(),
            wire: 0,
            values: Default::default(),
            subflows,
        }
    }

    fn exposition(series: &SubflowSeries) -> String {
        let mut registry = Registry::default();
        series.register(&mut registry);
        let mut text = String::new();
        encode(&mut text, &registry).expect("encoding");
        text
    }

    fn line(kind: &str, stream: u64, direction: &str, value: u64) -> String {
        format!(
            "mptcp_subflow_{kind}_bytes_total{{id=\"4\",subflow=\"{stream}\",\
             client=\"10.0.{stream}.1:4000{stream}\",server=\"10.0.{stream}.2:5201\",\
             direction=\"{direction}\"}} {value}"
        )
    }

    #[test]
    fn subflow_series_follow_their_connection() {
        let mut series = SubflowSeries::default();
        series.show(&connection(vec![subflow(0, 1000), subflow(1, 500)]));
        let text = exposition(&series);
        for expected in [
            line("wire", 0, "client_to_server", 1000),
            line("wire", 0, "server_to_client", 1),
            line("unique", 1, "client_to_server", 250),
            line("retransmitted", 1, "client_to_server", 3),
            line("reinjected", 0, "server_to_client", 0),
        ] {
            assert!(text.lines().any(|l| l == expected), "{expected} in\n{text}");
        }
        // Subflow 1 fell out of the shown ones, subflow 2 came in.
        series.show(&connection(vec![subflow(0, 2000), subflow(2, 700)]));
        let text = exposition(&series);
        assert!(!text.contains("subflow=\"1\""), "{text}");
        assert!(
            text.lines()
                .any(|l| l == line("wire", 0, "client_to_server", 2000))
        );
        assert!(
            text.lines()
                .any(|l| l == line("wire", 2, "client_to_server", 700))
        );
        series.remove(4);
        assert!(!exposition(&series).contains("subflow="), "all gone");
    }
}
