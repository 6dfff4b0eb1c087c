//! One bounded batch of packet rows, column by column, and its two renderings: an Arrow
//! `RecordBatch` (for Parquet) and CSV lines. The column list is `COLUMNS`, in the order both
//! renderings use; the README documents each column.

use std::{fmt::Write as _, io::Write, net::IpAddr, sync::Arc};

use arrow_array::{
    ArrayRef, BooleanArray, RecordBatch, StringArray, UInt8Array, UInt16Array, UInt32Array,
    UInt64Array, builder::StringBuilder,
};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};

use crate::analysis::record::PacketRecord;

/// Rows per batch: one Parquet row group each. Bounded so that memory stays flat whatever the
/// size of the captures (a row is about 200 bytes in these columns).
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

/// The Arrow schema of `COLUMNS`.
pub fn schema() -> SchemaRef {
    let fields: Vec<Field> = COLUMNS
        .iter()
        .map(|(name, ty, nullable)| Field::new(*name, ty.clone(), *nullable))
        .collect();
    Arc::new(Schema::new(fields))
}

/// Up to `BATCH_ROWS` records of one capture. Records are `Copy`: the batch keeps them as they
/// are and renders them column by column.
pub struct Rows {
    /// The capture the rows come from, as the user named it.
    pub capture: Arc<str>,
    records: Vec<PacketRecord>,
}

impl Rows {
    pub fn new(capture: Arc<str>) -> Self {
        Rows {
            capture,
            records: Vec::with_capacity(BATCH_ROWS),
        }
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
        self.records.len() >= BATCH_ROWS
    }

    /// The rows as an Arrow batch of `schema()`.
    pub fn to_record_batch(&self, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
        let r = &self.records;
        let u64s = |f: &dyn Fn(&PacketRecord) -> u64| -> ArrayRef {
            Arc::new(r.iter().map(f).collect::<UInt64Array>())
        };
        let opt_u64s = |f: &dyn Fn(&PacketRecord) -> Option<u64>| -> ArrayRef {
            Arc::new(r.iter().map(f).collect::<UInt64Array>())
        };
        let u32s = |f: &dyn Fn(&PacketRecord) -> Option<u32>| -> ArrayRef {
            Arc::new(r.iter().map(f).collect::<UInt32Array>())
        };
        let u16s = |f: &dyn Fn(&PacketRecord) -> u16| -> ArrayRef {
            Arc::new(r.iter().map(|x| Some(f(x))).collect::<UInt16Array>())
        };
        let bools = |f: &dyn Fn(&PacketRecord) -> Option<bool>| -> ArrayRef {
            Arc::new(r.iter().map(f).collect::<BooleanArray>())
        };
        let strs = |f: &dyn Fn(&PacketRecord) -> Option<&'static str>| -> ArrayRef {
            Arc::new(r.iter().map(f).collect::<StringArray>())
        };
        let addrs = |f: &dyn Fn(&PacketRecord) -> IpAddr| -> ArrayRef {
            let mut b = StringBuilder::with_capacity(r.len(), r.len() * 16);
            // Packets come in bursts of one flow: format an address only when it changes.
            let mut last: Option<(IpAddr, String)> = None;
            for x in r {
                let addr = f(x);
                match &last {
                    Some((known, text)) if *known == addr => b.append_value(text),
                    _ => {
                        let text = addr.to_string();
                        b.append_value(&text);
                        last = Some((addr, text));
                    }
                }
            }
            Arc::new(b.finish())
        };
        let m = |x: &PacketRecord| x.mptcp;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
                &*self.capture,
                r.len(),
            ))),
            u64s(&|x| x.number),
            u64s(&|x| x.ts_ns),
            u32s(&|x| Some(x.iface)),
            addrs(&|x| x.src),
            u16s(&|x| x.src_port),
            addrs(&|x| x.dst),
            u16s(&|x| x.dst_port),
            u32s(&|x| Some(x.tcp_stream)),
            strs(&|x| Some(x.tcp_direction.as_str())),
            u32s(&|x| Some(x.seq)),
            u32s(&|x| Some(x.ack)),
            opt_u64s(&|x| x.relative_seq),
            opt_u64s(&|x| x.relative_ack),
            u32s(&|x| Some(x.payload_len)),
            Arc::new(r.iter().map(|x| Some(x.flags)).collect::<UInt8Array>()),
            u16s(&|x| x.mptcp_subtypes),
            u64s(&|x| x.tcp_retransmitted_bytes),
            bools(&|x| Some(x.keep_alive)),
            u32s(&|x| m(x).map(|m| m.connection)),
            u32s(&|x| m(x).map(|m| m.subflow)),
            strs(&|x| m(x).map(|m| m.role.as_str())),
            strs(&|x| m(x).map(|m| m.direction.as_str())),
            opt_u64s(&|x| m(x).and_then(|m| m.data).map(|d| d.start)),
            opt_u64s(&|x| m(x).and_then(|m| m.data).map(|d| d.end)),
            opt_u64s(&|x| m(x).and_then(|m| m.data_ack)),
            opt_u64s(&|x| m(x).and_then(|m| m.mapping).map(|p| p.dsn)),
            opt_u64s(&|x| m(x).and_then(|m| m.mapping).map(|p| p.ssn)),
            u32s(&|x| m(x).and_then(|m| m.mapping).map(|p| p.len)),
            bools(&|x| m(x).map(|m| m.data_fin)),
            opt_u64s(&|x| m(x).map(|m| m.new_bytes)),
            opt_u64s(&|x| m(x).map(|m| m.retransmitted_bytes)),
            opt_u64s(&|x| m(x).map(|m| m.reinjected_bytes)),
            opt_u64s(&|x| m(x).map(|m| m.unmapped_bytes)),
            opt_u64s(&|x| m(x).map(|m| m.resolved_new_bytes)),
            opt_u64s(&|x| m(x).map(|m| m.resolved_reinjected_bytes)),
            bools(&|x| Some(retransmission(x))),
            bools(&|x| Some(reinjection(x))),
        ];
        RecordBatch::try_new(Arc::clone(schema), columns)
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
fn retransmission(x: &PacketRecord) -> bool {
    x.tcp_retransmitted_bytes > 0 || x.mptcp.is_some_and(|m| m.retransmitted_bytes > 0)
}

/// Some data byte this packet carried was carried before, in subflow bytes new to this
/// subflow.
fn reinjection(x: &PacketRecord) -> bool {
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
