//! Which connections have series of their own: the `max` busiest open ones (most wire bytes,
//! both directions), to bound the cardinality a scraper sees. A connection that falls out of
//! them loses its series at once (the aggregates still count it); one that closes keeps them,
//! with its final counts, until a scrape has seen them (or, when nobody scrapes, until `max`
//! closed ones wait), so the last bytes of a short connection are not lost between scrapes.

use std::{cmp::Reverse, collections::BTreeMap};

use rustc_hash::FxHashSet;

use super::totals::{CONNECTION_KINDS, SUBFLOW_KINDS, byte_values};
use crate::analysis::summary::{
    MptcpConnectionInfo, MptcpDirectionSummary, MptcpSummary, SubflowInfo, SubflowRole,
};

/// Subflows with series of their own per connection: the busiest (most wire bytes). Linux
/// keeps at most 8 subflows open at once, but over a long life a connection can have had many.
pub(super) const MAX_SUBFLOW_SERIES: usize = 8;

/// A connection as its series show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Candidate {
    pub id: u64,
    /// Its initial subflow's endpoints (`"10.0.0.1:33782"`).
    pub client: String,
    pub server: String,
    /// Wire bytes of both directions: what "busiest" compares.
    pub wire: u64,
    /// By kind (`CONNECTION_KINDS`), then direction.
    pub values: [[u64; 2]; CONNECTION_KINDS.len()],
    /// Its busiest subflows (at most `MAX_SUBFLOW_SERIES`), in TCP stream order.
    pub subflows: Vec<SubflowCandidate>,
}

/// One subflow as its series show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct SubflowCandidate {
    /// Its TCP stream number (as in `list-tcp`).
    pub stream: u64,
    /// Its own endpoints.
    pub client: String,
    pub server: String,
    /// By kind (`SUBFLOW_KINDS`), then direction.
    pub values: [[u64; 2]; SUBFLOW_KINDS.len()],
}

impl SubflowCandidate {
    fn of(subflow: &SubflowInfo, directions: &[MptcpDirectionSummary]) -> Self {
        let mut values = [[0; 2]; SUBFLOW_KINDS.len()];
        for (index, direction) in directions.iter().take(2).enumerate() {
            let Some(carried) = direction
                .subflows
                .iter()
                .find(|s| s.tcp_stream == subflow.tcp_stream)
            else {
                continue;
            };
            values[0][index] = carried.wire_bytes;
            values[1][index] = carried.unique_bytes;
            values[2][index] = carried.reinjected_bytes;
            values[3][index] = carried.retransmitted_bytes;
        }
        SubflowCandidate {
            stream: subflow.tcp_stream,
            client: subflow.client.to_string(),
            server: subflow.server.to_string(),
            values,
        }
    }

    fn wire(&self) -> u64 {
        self.values[0][0] + self.values[0][1]
    }
}

/// The `MAX_SUBFLOW_SERIES` subflows of `info` with the most wire bytes, in stream order.
fn busiest_subflows(info: &MptcpConnectionInfo, summary: &MptcpSummary) -> Vec<SubflowCandidate> {
    let mut subflows: Vec<SubflowCandidate> = info
        .subflows
        .iter()
        .map(|subflow| SubflowCandidate::of(subflow, &summary.directions))
        .collect();
    subflows.sort_unstable_by_key(|s| (Reverse(s.wire()), s.stream));
    subflows.truncate(MAX_SUBFLOW_SERIES);
    subflows.sort_unstable_by_key(|s| s.stream);
    subflows
}

impl Candidate {
    pub fn of(info: &MptcpConnectionInfo, summary: &MptcpSummary) -> Self {
        let initial = info
            .subflows
            .iter()
            .find(|s| s.role == SubflowRole::Initial)
            .or(info.subflows.first());
        let mut values = [[0; 2]; CONNECTION_KINDS.len()];
        for (index, direction) in summary.directions.iter().take(2).enumerate() {
            for (kind, value) in byte_values(direction).into_iter().enumerate() {
                values[kind][index] = value;
            }
        }
        Candidate {
            id: summary.id,
            client: initial.map_or_else(String::new, |s| s.client.to_string()),
            server: initial.map_or_else(String::new, |s| s.server.to_string()),
            wire: values[0][0] + values[0][1],
            values,
            subflows: busiest_subflows(info, summary),
        }
    }
}

/// What to do with the series this update.
#[derive(Debug, Default)]
pub(super) struct Plan {
    /// Set these connections' series to their values.
    pub show: Vec<Candidate>,
    /// Remove these connections' series (the labels they were shown with).
    pub remove: Vec<Candidate>,
}

struct Shown {
    candidate: Candidate,
    /// Once closed: the scrape count and the update number then.
    closed_at: Option<(u64, u64)>,
}

pub(super) struct Selection {
    max: usize,
    shown: BTreeMap<u64, Shown>,
    updates: u64,
}

impl Selection {
    pub fn new(max: usize) -> Self {
        Selection {
            max,
            shown: BTreeMap::new(),
            updates: 0,
        }
    }

    /// `open`: the open connections; `just_closed`: those that closed since the last update;
    /// `scrapes`: how many scrapes there have been so far.
    pub fn update(&mut self, open: &[Candidate], just_closed: &[Candidate], scrapes: u64) -> Plan {
        self.updates += 1;
        let mut plan = Plan::default();
        for candidate in just_closed {
            if let Some(shown) = self.shown.get_mut(&candidate.id)
                && shown.closed_at.is_none()
            {
                shown.closed_at = Some((scrapes, self.updates));
                plan.show.push(candidate.clone());
            }
        }
        let busiest = busiest(open, self.max);
        let selected: FxHashSet<u64> = busiest.iter().map(|c| c.id).collect();
        self.shown.retain(|id, shown| {
            let keep = match shown.closed_at {
                Some((closed_scrapes, _)) => scrapes <= closed_scrapes,
                None => selected.contains(id),
            };
            if !keep {
                plan.remove.push(shown.candidate.clone());
            }
            keep
        });
        self.bound_closed(&mut plan);
        for candidate in busiest {
            let shown = Shown {
                candidate: candidate.clone(),
                closed_at: None,
            };
            if let Some(old) = self.shown.insert(candidate.id, shown)
                && (&old.candidate.client, &old.candidate.server)
                    != (&candidate.client, &candidate.server)
            {
                plan.remove.push(old.candidate);
            }
            plan.show.push(candidate.clone());
        }
        plan
    }

    /// Without scrapes, closed connections would wait for ever: keep the newest `max`.
    fn bound_closed(&mut self, plan: &mut Plan) {
        let mut closed: Vec<(u64, u64)> = self
            .shown
            .iter()
            .filter_map(|(id, shown)| shown.closed_at.map(|(_, update)| (update, *id)))
            .collect();
        if closed.len() <= self.max {
            return;
        }
        closed.sort_unstable();
        for (_, id) in &closed[..closed.len() - self.max] {
            if let Some(shown) = self.shown.remove(id) {
                plan.remove.push(shown.candidate);
            }
        }
    }

    /// The connections that have series now, by id.
    #[cfg(test)]
    pub fn shown(&self) -> Vec<u64> {
        self.shown.keys().copied().collect()
    }
}

/// The `max` open connections with the most wire bytes (the lower id first among equals).
fn busiest(open: &[Candidate], max: usize) -> Vec<&Candidate> {
    let mut busiest: Vec<&Candidate> = open.iter().collect();
    busiest.sort_unstable_by_key(|c| (Reverse(c.wire), c.id));
    busiest.truncate(max);
    busiest
}
