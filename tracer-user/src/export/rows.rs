//! The column list (`COLUMNS`, the order both formats use; the README documents each column)
//! and one bounded batch of records rendered as CSV lines. Parquet batches are laid out in
//! columns as the records come (`columns`).

use std::{fmt::Write as _, io::Write, sync::Arc};

use arrow_schema::DataType;

use crate::analysis::record::PacketRecord;

/// Records per CSV batch. Bounded so that memory stays flat whatever the size of the captures.
pub const BATCH_ROWS: usize = 64 * 1024;

/// Name, Arrow type and nullability of each column, in output order.
pub const COLUMNS: &[(&str, DataType, bool)] = &[
    ("capture", DataType::Utf8, false),
    ("frame", DataType::UInt64, false),
    ("ts_ns", DataType::UInt64, false),
    ("iface", DataType::UInt32, false),
    ("src", DataType::Utf8, false),
    ("src_port", DataType::UInt16, false),
    ("dst", DataType::Utf8, false),
    ("dst_port", DataType::UInt16, false),
    ("tcp_stream", DataType::UInt32, false),
    ("tcp_direction", DataType::Utf8, false),
    ("seq", DataType::UInt32, false),
    ("ack", DataType::UInt32, false),
    ("relative_seq", DataType::UInt64, true),
    ("relative_ack", DataType::UInt64, true),
    ("payload_len", DataType::UInt32, false),
    ("flags", DataType::UInt8, false),
    ("mptcp_subtypes", DataType::UInt16, false),
    ("tcp_retransmitted_bytes", DataType::UInt64, false),
    ("keep_alive", DataType::Boolean, false),
    ("mptcp_connection", DataType::UInt32, true),
    ("subflow", DataType::UInt32, true),
    ("subflow_role", DataType::Utf8, true),
    ("mptcp_direction", DataType::Utf8, true),
    ("dsn_start", DataType::UInt64, true),
    ("dsn_end", DataType::UInt64, true),
    ("data_ack", DataType::UInt64, true),
    ("map_dsn", DataType::UInt64, true),
    ("map_ssn", DataType::UInt64, true),
    ("map_len", DataType::UInt32, true),
    ("data_fin", DataType::Boolean, true),
    ("new_bytes", DataType::UInt64, true),
    ("retransmitted_bytes", DataType::UInt64, true),
    ("reinjected_bytes", DataType::UInt64, true),
    ("unmapped_bytes", DataType::UInt64, true),
    ("resolved_new_bytes", DataType::UInt64, true),
    ("resolved_reinjected_bytes", DataType::UInt64, true),
    ("retransmission", DataType::Boolean, false),
    ("reinjection", DataType::Boolean, false),
];

/// Up to `BATCH_ROWS` records of one capture. Records are `Copy`: the batch keeps them as they
/// are and renders them line by line.
pub struct Rows {
    /// The capture the rows come from, as the user named it.
    pub capture: Arc<str>,
    records: Vec<PacketRecord>,
    /// Rows that make the batch full.
    limit: usize,
}

impl Rows {
    /// A batch full at `limit` rows (`BATCH_ROWS` for CSV).
    pub fn with_limit(capture: Arc<str>, limit: usize) -> Self {
        Rows {
            capture,
            records: Vec::with_capacity(limit),
            limit,
        }
    }

    pub fn records(&self) -> &[PacketRecord] {
        &self.records
    }

    pub fn push(&mut self, record: &PacketRecord) {
        self.records.push(*record);
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.records.len() >= self.limit
    }

    /// Writes the rows as CSV lines (`COLUMNS` order; a missing value is an empty field).
    pub fn write_csv<W: Write>(&self, out: &mut csv::Writer<W>) -> csv::Result<()> {
        let mut field = String::new();
        for x in &self.records {
            out.write_field(&*self.capture)?;
            let mut put = |value: &dyn std::fmt::Display| {
                field.clear();
                let _ = write!(field, "{value}");
                out.write_field(&field)
            };
            put(&x.number)?;
            put(&x.ts_ns)?;
            put(&x.iface)?;
            put(&x.src)?;
            put(&x.src_port)?;
            put(&x.dst)?;
            put(&x.dst_port)?;
            put(&x.tcp_stream)?;
            put(&x.tcp_direction.as_str())?;
            put(&x.seq)?;
            put(&x.ack)?;
            put(&Maybe(x.relative_seq))?;
            put(&Maybe(x.relative_ack))?;
            put(&x.payload_len)?;
            put(&x.flags)?;
            put(&x.mptcp_subtypes)?;
            put(&x.tcp_retransmitted_bytes)?;
            put(&x.keep_alive)?;
            let m = x.mptcp;
            put(&Maybe(m.map(|m| m.connection)))?;
            put(&Maybe(m.map(|m| m.subflow)))?;
            put(&Maybe(m.map(|m| m.role.as_str())))?;
            put(&Maybe(m.map(|m| m.direction.as_str())))?;
            put(&Maybe(m.and_then(|m| m.data).map(|d| d.start)))?;
            put(&Maybe(m.and_then(|m| m.data).map(|d| d.end)))?;
            put(&Maybe(m.and_then(|m| m.data_ack)))?;
            put(&Maybe(m.and_then(|m| m.mapping).map(|p| p.dsn)))?;
            put(&Maybe(m.and_then(|m| m.mapping).map(|p| p.ssn)))?;
            put(&Maybe(m.and_then(|m| m.mapping).map(|p| p.len)))?;
            put(&Maybe(m.map(|m| m.data_fin)))?;
            put(&Maybe(m.map(|m| m.new_bytes)))?;
            put(&Maybe(m.map(|m| m.retransmitted_bytes)))?;
            put(&Maybe(m.map(|m| m.reinjected_bytes)))?;
            put(&Maybe(m.map(|m| m.unmapped_bytes)))?;
            put(&Maybe(m.map(|m| m.resolved_new_bytes)))?;
            put(&Maybe(m.map(|m| m.resolved_reinjected_bytes)))?;
            put(&retransmission(x))?;
            put(&reinjection(x))?;
            out.write_record(None::<&[u8]>)?;
        }
        Ok(())
    }
}

/// Some payload byte was carried before by the same TCP direction (TCP level), or by the same
/// subflow at the data level.
pub(super) fn retransmission(x: &PacketRecord) -> bool {
    x.tcp_retransmitted_bytes > 0 || x.mptcp.is_some_and(|m| m.retransmitted_bytes > 0)
}

/// Some data byte this packet carried was carried before, in subflow bytes new to this
/// subflow.
pub(super) fn reinjection(x: &PacketRecord) -> bool {
    x.mptcp.is_some_and(|m| m.reinjected_bytes > 0)
}

/// An optional value as a CSV field: empty when missing.
struct Maybe<T>(Option<T>);

impl<T: std::fmt::Display> std::fmt::Display for Maybe<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(value) => value.fmt(f),
            None => Ok(()),
        }
    }
}
