//! nftables rules that drop packets on one path of a lab, to make loss and reinjection.

use std::sync::atomic::Ordering;

use crate::{
    Lab, LabError, Side,
    command::{run, run_with_stdin},
};

/// What an nftables drop rule matches on its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropRule {
    /// Every packet.
    All,
    /// A random `percent` of the packets.
    Random { percent: u8 },
    /// Every TCP packet longer than 200 bytes: data segments, not handshakes or pure ACKs.
    DataSegments,
}

/// An installed nftables drop rule (its own table).
#[derive(Debug)]
pub struct PacketFilter {
    namespace: String,
    table: String,
}

impl PacketFilter {
    pub(crate) fn new(namespace: String, table: String) -> Self {
        Self { namespace, table }
    }

    /// (namespace, table).
    pub(crate) fn location(&self) -> (&str, &str) {
        (&self.namespace, &self.table)
    }
}

impl Lab {
    /// Installs an nftables rule in a host's namespace dropping packets that arrive on path
    /// `path`. Remove it with [`Lab::remove_filter`] (or leave it to the lab's drop).
    pub fn drop_packets(
        &self,
        side: Side,
        path: usize,
        rule: DropRule,
    ) -> Result<PacketFilter, LabError> {
        let interface = self.interface(side, path)?;
        let namespace = self.namespace(side).to_owned();
        let table = format!(
            "mptlab_drop{}",
            self.nft_sequence.fetch_add(1, Ordering::Relaxed)
        );
        let matcher = match rule {
            DropRule::All => String::new(),
            DropRule::Random { percent } => format!("numgen random mod 100 < {percent}"),
            // Data segments are the only large packets; handshakes (and so joins) still pass.
            DropRule::DataSegments => "meta l4proto tcp meta length > 200".to_owned(),
        };
        let script = format!(
            "table inet {table} {{\n  chain input {{\n    type filter hook input priority 0; policy accept;\n    iifname \"{interface}\" {matcher} drop\n  }}\n}}\n"
        );
        nft_apply(&namespace, &script)?;
        self.nft_tables
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((namespace.clone(), table.clone()));
        Ok(PacketFilter { namespace, table })
    }

    /// Deletes a rule made by [`Lab::drop_packets`].
    pub fn remove_filter(&self, filter: &PacketFilter) -> Result<(), LabError> {
        run(
            "ip",
            &[
                "netns",
                "exec",
                &filter.namespace,
                "nft",
                "delete",
                "table",
                "inet",
                &filter.table,
            ],
        )?;
        self.nft_tables
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|(namespace, table)| {
                !(namespace == &filter.namespace && table == &filter.table)
            });
        Ok(())
    }
}

/// Loads an nftables script (`nft -f -`) in a namespace.
pub(crate) fn nft_apply(namespace: &str, script: &str) -> Result<(), LabError> {
    run_with_stdin(
        "ip",
        &["netns", "exec", namespace, "nft", "-f", "-"],
        Some(script),
    )
    .map(drop)
}
