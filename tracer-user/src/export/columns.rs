//! The Parquet side of a batch: the records laid out column by column, one column at a time,
//! into vectors that become the Arrow arrays themselves (no copy).
//!
//! String columns are Arrow dictionaries built here without formatting a string per row: the
//! capture name once per batch, the directions and roles as fixed tables, the addresses
//! interned in a small map per batch (formatted once each). The Parquet schema stays plain
//! strings (the Arrow schema is not stored in the file), so readers see the same columns as
//! `rows::COLUMNS` lists. Nullable MPTCP columns share one validity bitmap per group
//! (`mptcp`, `data`, `mapping`) instead of one per column.

use std::{fmt::Write as _, net::IpAddr, sync::Arc};

use arrow_array::{
    ArrayRef, BooleanArray, DictionaryArray, PrimitiveArray, RecordBatch, StringArray,
    builder::StringBuilder,
    types::{ArrowPrimitiveType, UInt8Type, UInt16Type, UInt32Type, UInt64Type},
};
use arrow_buffer::{BooleanBuffer, NullBuffer, ScalarBuffer};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};
use rustc_hash::FxHashMap;

use super::rows::COLUMNS;
use crate::analysis::{
    direction::Direction,
    record::{MptcpRecord, PacketRecord},
    summary::SubflowRole,
};

const DIRECTIONS: [&str; 2] = ["client_to_server", "server_to_client"];
const ROLES: [&str; 3] = ["initial", "join", "unknown"];

/// The Arrow schema the batches have: `COLUMNS`, strings as dictionaries of u32 keys.
pub fn schema() -> SchemaRef {
    let fields: Vec<Field> = COLUMNS
        .iter()
        .map(|(name, ty, nullable)| {
            let ty = match ty {
                DataType::Utf8 => {
                    DataType::Dictionary(Box::new(DataType::UInt32), Box::new(DataType::Utf8))
                }
                other => other.clone(),
            };
            Field::new(*name, ty, *nullable)
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// Slots of the stream cache: a power of two, about the flows a batch interleaves.
const STREAM_SLOTS: usize = 1024;

/// The addresses of one batch, each formatted once; `src` and `dst` share the dictionary.
struct Addresses {
    keys: FxHashMap<IpAddr, u32>,
    /// Per TCP stream (direct-mapped by its number), the keys of its client and server: a
    /// stream's two addresses never change, so most rows need no hashing at all.
    streams: Vec<Slot>,
    values: StringBuilder,
    text: String,
}

#[derive(Clone, Copy)]
struct Slot {
    /// The stream the slot holds; `u64::MAX` when empty.
    stream: u64,
    client: u32,
    server: u32,
}

impl Addresses {
    fn new() -> Self {
        let empty = Slot {
            stream: u64::MAX,
            client: 0,
            server: 0,
        };
        Addresses {
            keys: FxHashMap::default(),
            streams: vec![empty; STREAM_SLOTS],
            values: StringBuilder::new(),
            text: String::new(),
        }
    }

    /// The keys of a record's source and destination.
    #[inline]
    fn keys(&mut self, x: &PacketRecord) -> (u32, u32) {
        let index = x.tcp_stream as usize % STREAM_SLOTS;
        let to_server = x.tcp_direction == Direction::ClientToServer;
        let mut slot = self.streams[index];
        if slot.stream != u64::from(x.tcp_stream) {
            let (client, server) = if to_server {
                (x.src, x.dst)
            } else {
                (x.dst, x.src)
            };
            slot = Slot {
                stream: u64::from(x.tcp_stream),
                client: self.key(client),
                server: self.key(server),
            };
            self.streams[index] = slot;
        }
        if to_server {
            (slot.client, slot.server)
        } else {
            (slot.server, slot.client)
        }
    }

    fn key(&mut self, addr: IpAddr) -> u32 {
        if let Some(&key) = self.keys.get(&addr) {
            return key;
        }
        let key = self.keys.len() as u32;
        self.text.clear();
        let _ = write!(self.text, "{addr}");
        self.values.append_value(&self.text);
        self.keys.insert(addr, key);
        key
    }
}

/// Rows per batch. Small enough that a batch's columns stay in the cache while the writer
/// thread fills and encodes them; the row groups are `ROW_GROUP_ROWS`.
pub const BATCH_ROWS: usize = 8 * 1024;

/// Rows per Parquet row group (the writer cuts them; memory holds one encoded).
pub const ROW_GROUP_ROWS: usize = 64 * 1024;

/// The booleans and validities of one row, as bits of a `u16`: the bitmaps are packed from
/// them 64 rows at a time when the batch is written, instead of bit by bit as rows come.
mod bit {
    pub const KEEP_ALIVE: u16 = 1;
    pub const MPTCP: u16 = 1 << 1;
    pub const DATA: u16 = 1 << 2;
    pub const MAPPING: u16 = 1 << 3;
    pub const DATA_FIN: u16 = 1 << 4;
    pub const RETRANSMISSION: u16 = 1 << 5;
    pub const REINJECTION: u16 = 1 << 6;
    pub const RELATIVE_SEQ: u16 = 1 << 7;
    pub const RELATIVE_ACK: u16 = 1 << 8;
    pub const DATA_ACK: u16 = 1 << 9;
}

/// An empty column with room for `BATCH_ROWS` values: filled by `extend`, never zeroed first
/// (zeroing every batch's 2.4 MB cost a pass over memory the rows overwrite anyway).
fn column<T>() -> Vec<T> {
    Vec::with_capacity(BATCH_ROWS)
}

/// Up to `BATCH_ROWS` rows of one capture, column by column (`COLUMNS` order).
pub struct Columns {
    capture: Arc<str>,
    /// One value per row: its length is the batch's.
    frame: Vec<u64>,
    ts_ns: Vec<u64>,
    iface: Vec<u32>,
    addresses: Addresses,
    src: Vec<u32>,
    src_port: Vec<u16>,
    dst: Vec<u32>,
    dst_port: Vec<u16>,
    tcp_stream: Vec<u32>,
    tcp_direction: Vec<u32>,
    seq: Vec<u32>,
    ack: Vec<u32>,
    relative_seq: Vec<u64>,
    relative_ack: Vec<u64>,
    payload_len: Vec<u32>,
    flags: Vec<u8>,
    mptcp_subtypes: Vec<u16>,
    tcp_retransmitted_bytes: Vec<u64>,
    /// `bit` flags of each row.
    bits: Vec<u16>,
    connection: Vec<u32>,
    subflow: Vec<u32>,
    role: Vec<u32>,
    mptcp_direction: Vec<u32>,
    dsn_start: Vec<u64>,
    dsn_end: Vec<u64>,
    data_ack: Vec<u64>,
    map_dsn: Vec<u64>,
    map_ssn: Vec<u64>,
    map_len: Vec<u32>,
    /// new, retransmitted, reinjected, unmapped, resolved new, resolved reinjected bytes.
    bytes: [Vec<u64>; 6],
}

impl Columns {
    pub fn new(capture: Arc<str>) -> Self {
        Columns {
            capture,
            frame: column(),
            ts_ns: column(),
            iface: column(),
            addresses: Addresses::new(),
            src: column(),
            src_port: column(),
            dst: column(),
            dst_port: column(),
            tcp_stream: column(),
            tcp_direction: column(),
            seq: column(),
            ack: column(),
            relative_seq: column(),
            relative_ack: column(),
            payload_len: column(),
            flags: column(),
            mptcp_subtypes: column(),
            tcp_retransmitted_bytes: column(),
            bits: column(),
            connection: column(),
            subflow: column(),
            role: column(),
            mptcp_direction: column(),
            dsn_start: column(),
            dsn_end: column(),
            data_ack: column(),
            map_dsn: column(),
            map_ssn: column(),
            map_len: column(),
            bytes: std::array::from_fn(|_| column()),
        }
    }

    /// The capture the rows come from.
    pub fn capture(&self) -> &Arc<str> {
        &self.capture
    }

    pub fn len(&self) -> usize {
        self.frame.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frame.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.frame.len() >= BATCH_ROWS
    }

    /// Adds rows, one column at a time: each column is one tight loop over the records (still
    /// in the cache), where pushing a row at a time into some thirty vectors cost a length
    /// check and store per value (measured by perf's samples: row by row took a fifth more).
    /// The batch may outgrow `BATCH_ROWS`; callers check `is_full` after.
    pub fn extend(&mut self, records: &[PacketRecord]) {
        fn fill<T>(column: &mut Vec<T>, records: &[PacketRecord], f: impl Fn(&PacketRecord) -> T) {
            column.extend(records.iter().map(f));
        }
        fill(&mut self.frame, records, |x| x.number);
        fill(&mut self.ts_ns, records, |x| x.ts_ns);
        fill(&mut self.iface, records, |x| x.iface);
        for x in records {
            let (src, dst) = self.addresses.keys(x);
            self.src.push(src);
            self.dst.push(dst);
        }
        fill(&mut self.src_port, records, |x| x.src_port);
        fill(&mut self.dst_port, records, |x| x.dst_port);
        fill(&mut self.tcp_stream, records, |x| x.tcp_stream);
        fill(&mut self.tcp_direction, records, |x| {
            direction_key(x.tcp_direction)
        });
        fill(&mut self.seq, records, |x| x.seq);
        fill(&mut self.ack, records, |x| x.ack);
        fill(&mut self.relative_seq, records, |x| {
            x.relative_seq.unwrap_or(0)
        });
        fill(&mut self.relative_ack, records, |x| {
            x.relative_ack.unwrap_or(0)
        });
        fill(&mut self.payload_len, records, |x| x.payload_len);
        fill(&mut self.flags, records, |x| x.flags);
        fill(&mut self.mptcp_subtypes, records, |x| x.mptcp_subtypes);
        fill(&mut self.tcp_retransmitted_bytes, records, |x| {
            x.tcp_retransmitted_bytes
        });
        fill(&mut self.bits, records, row_bits);
        self.extend_mptcp(records);
    }

    /// The MPTCP columns (zeros outside MPTCP, under cleared validity bits).
    fn extend_mptcp(&mut self, records: &[PacketRecord]) {
        fn fill<T>(column: &mut Vec<T>, records: &[PacketRecord], f: impl Fn(&MptcpRecord) -> T) {
            column.extend(
                records
                    .iter()
                    .map(|x| f(x.mptcp.as_ref().unwrap_or(&EMPTY))),
            );
        }
        fill(&mut self.connection, records, |m| m.connection);
        fill(&mut self.subflow, records, |m| m.subflow);
        fill(&mut self.role, records, |m| match m.role {
            SubflowRole::Initial => 0,
            SubflowRole::Join => 1,
            SubflowRole::Unknown => 2,
        });
        fill(&mut self.mptcp_direction, records, |m| {
            direction_key(m.direction)
        });
        fill(&mut self.dsn_start, records, |m| {
            m.data.map_or(0, |d| d.start)
        });
        fill(&mut self.dsn_end, records, |m| m.data.map_or(0, |d| d.end));
        fill(&mut self.data_ack, records, |m| m.data_ack.unwrap_or(0));
        fill(&mut self.map_dsn, records, |m| {
            m.mapping.map_or(0, |p| p.dsn)
        });
        fill(&mut self.map_ssn, records, |m| {
            m.mapping.map_or(0, |p| p.ssn)
        });
        fill(&mut self.map_len, records, |m| {
            m.mapping.map_or(0, |p| p.len)
        });
        let [
            new,
            retransmitted,
            reinjected,
            unmapped,
            resolved_new,
            resolved_reinjected,
        ] = &mut self.bytes;
        fill(new, records, |m| m.new_bytes);
        fill(retransmitted, records, |m| m.retransmitted_bytes);
        fill(reinjected, records, |m| m.reinjected_bytes);
        fill(unmapped, records, |m| m.unmapped_bytes);
        fill(resolved_new, records, |m| m.resolved_new_bytes);
        fill(resolved_reinjected, records, |m| {
            m.resolved_reinjected_bytes
        });
    }

    /// The batch as Arrow arrays of `schema()`: the vectors become the arrays' buffers.
    pub fn into_record_batch(self, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
        let n = self.len();
        let bits = &self.bits[..n];
        let mask = |bit: u16| BooleanBuffer::collect_bool(n, |i| bits[i] & bit != 0);
        // No null buffer when nothing is null: Parquet then writes the levels as one run.
        let valid = |bit: u16| Some(NullBuffer::new(mask(bit))).filter(|n| n.null_count() > 0);
        let flag = |bit: u16| -> ArrayRef { Arc::new(BooleanArray::new(mask(bit), None)) };
        let addresses: ArrayRef = Arc::new({ self.addresses }.values.finish());
        let directions: ArrayRef = Arc::new(StringArray::from(DIRECTIONS.to_vec()));
        let roles: ArrayRef = Arc::new(StringArray::from(ROLES.to_vec()));
        let capture: ArrayRef = Arc::new(StringArray::from(vec![&*self.capture]));
        let (mptcp, data, mapping) = (valid(bit::MPTCP), valid(bit::DATA), valid(bit::MAPPING));
        let m = || mptcp.clone();
        let u64s = |v, nulls| plain::<UInt64Type>(v, nulls);
        let u32s = |v, nulls| plain::<UInt32Type>(v, nulls);
        let u16s = |v| plain::<UInt16Type>(v, None);
        let [
            new,
            retransmitted,
            reinjected,
            unmapped,
            resolved_new,
            resolved_reinjected,
        ] = self.bytes;
        let columns: Vec<ArrayRef> = vec![
            dictionary(vec![0; n], None, &capture)?,
            u64s(self.frame, None),
            u64s(self.ts_ns, None),
            u32s(self.iface, None),
            dictionary(self.src, None, &addresses)?,
            u16s(self.src_port),
            dictionary(self.dst, None, &addresses)?,
            u16s(self.dst_port),
            u32s(self.tcp_stream, None),
            dictionary(self.tcp_direction, None, &directions)?,
            u32s(self.seq, None),
            u32s(self.ack, None),
            u64s(self.relative_seq, valid(bit::RELATIVE_SEQ)),
            u64s(self.relative_ack, valid(bit::RELATIVE_ACK)),
            u32s(self.payload_len, None),
            plain::<UInt8Type>(self.flags, None),
            u16s(self.mptcp_subtypes),
            u64s(self.tcp_retransmitted_bytes, None),
            flag(bit::KEEP_ALIVE),
            u32s(self.connection, m()),
            u32s(self.subflow, m()),
            dictionary(self.role, m(), &roles)?,
            dictionary(self.mptcp_direction, m(), &directions)?,
            u64s(self.dsn_start, data.clone()),
            u64s(self.dsn_end, data),
            u64s(self.data_ack, valid(bit::DATA_ACK)),
            u64s(self.map_dsn, mapping.clone()),
            u64s(self.map_ssn, mapping.clone()),
            u32s(self.map_len, mapping),
            Arc::new(BooleanArray::new(mask(bit::DATA_FIN), m())),
            u64s(new, m()),
            u64s(retransmitted, m()),
            u64s(reinjected, m()),
            u64s(unmapped, m()),
            u64s(resolved_new, m()),
            u64s(resolved_reinjected, m()),
            flag(bit::RETRANSMISSION),
            flag(bit::REINJECTION),
        ];
        RecordBatch::try_new(Arc::clone(schema), columns)
    }
}

/// An MPTCP record's stand-in outside MPTCP: its values are stored under cleared bits.
const EMPTY: MptcpRecord = MptcpRecord::new(0, 0, SubflowRole::Initial, Direction::ClientToServer);

/// The `bit` flags of a row.
fn row_bits(x: &PacketRecord) -> u16 {
    let flag = |set: bool, bit: u16| if set { bit } else { 0 };
    let m = x.mptcp.as_ref();
    flag(x.keep_alive, bit::KEEP_ALIVE)
        | flag(x.relative_seq.is_some(), bit::RELATIVE_SEQ)
        | flag(x.relative_ack.is_some(), bit::RELATIVE_ACK)
        | flag(super::rows::retransmission(x), bit::RETRANSMISSION)
        | flag(super::rows::reinjection(x), bit::REINJECTION)
        | flag(m.is_some(), bit::MPTCP)
        | flag(m.is_some_and(|m| m.data.is_some()), bit::DATA)
        | flag(m.is_some_and(|m| m.mapping.is_some()), bit::MAPPING)
        | flag(m.is_some_and(|m| m.data_fin), bit::DATA_FIN)
        | flag(m.is_some_and(|m| m.data_ack.is_some()), bit::DATA_ACK)
}

/// The key of a direction in `DIRECTIONS`.
#[inline]
fn direction_key(direction: Direction) -> u32 {
    match direction {
        Direction::ClientToServer => 0,
        Direction::ServerToClient => 1,
    }
}

/// A column as an array.
fn plain<T: ArrowPrimitiveType>(values: Vec<T::Native>, nulls: Option<NullBuffer>) -> ArrayRef {
    Arc::new(PrimitiveArray::<T>::new(ScalarBuffer::from(values), nulls))
}

/// Keys into `values` (checked once here: a key out of range would be a bug of this module).
fn dictionary(
    keys: Vec<u32>,
    nulls: Option<NullBuffer>,
    values: &ArrayRef,
) -> Result<ArrayRef, ArrowError> {
    let keys = PrimitiveArray::<UInt32Type>::new(ScalarBuffer::from(keys), nulls);
    Ok(Arc::new(DictionaryArray::try_new(
        keys,
        Arc::clone(values),
    )?))
}

#[cfg(test)]
mod tests {
    use arrow_array::{Array, cast::AsArray};

    use super::*;
    use crate::{
        analysis::record::{DataRange, MappingRecord},
        export::rows::Rows,
    };

    fn record(stream: u32, to_server: bool, client: IpAddr, server: IpAddr) -> PacketRecord {
        let (src, dst) = if to_server {
            (client, server)
        } else {
            (server, client)
        };
        let direction = if to_server {
            Direction::ClientToServer
        } else {
            Direction::ServerToClient
        };
        PacketRecord {
            number: u64::from(stream) * 10 + u64::from(to_server),
            ts_ns: 1_700_000_000_000_000_000 + u64::from(stream),
            iface: 2,
            src,
            dst,
            src_port: 40000,
            dst_port: 80,
            tcp_stream: stream,
            tcp_direction: direction,
            seq: 7,
            ack: 9,
            relative_seq: Some(1),
            relative_ack: None,
            payload_len: 100,
            flags: 16,
            mptcp_subtypes: 4,
            tcp_retransmitted_bytes: 0,
            keep_alive: false,
            ip_id: None,
            timestamps: None,
            mptcp: (stream % 2 == 1).then_some(MptcpRecord {
                connection: stream,
                subflow: 1,
                role: SubflowRole::Join,
                direction,
                data: Some(DataRange {
                    start: u64::MAX - 50,
                    end: 49,
                }),
                data_ack: None,
                mapping: Some(MappingRecord {
                    dsn: u64::MAX - 50,
                    ssn: 1,
                    len: 100,
                }),
                data_fin: true,
                new_bytes: 100,
                retransmitted_bytes: 0,
                reinjected_bytes: 3,
                unmapped_bytes: 0,
                resolved_new_bytes: 0,
                resolved_reinjected_bytes: 0,
            }),
        }
    }

    /// A value of the batch as the CSV writes it.
    fn text(column: &ArrayRef, i: usize) -> String {
        if column.is_null(i) {
            return String::new();
        }
        match column.data_type() {
            DataType::Dictionary(..) => {
                let dict = column.as_dictionary::<UInt32Type>();
                let key = dict.keys().value(i) as usize;
                dict.values().as_string::<i32>().value(key).to_owned()
            }
            DataType::UInt64 => column.as_primitive::<UInt64Type>().value(i).to_string(),
            DataType::UInt32 => column.as_primitive::<UInt32Type>().value(i).to_string(),
            DataType::UInt16 => column.as_primitive::<UInt16Type>().value(i).to_string(),
            DataType::UInt8 => column.as_primitive::<UInt8Type>().value(i).to_string(),
            DataType::Boolean => column.as_boolean().value(i).to_string(),
            other => panic!("unexpected column type {other}"),
        }
    }

    /// Streams that share a slot of the address cache, both directions, IPv4 and IPv6, MPTCP
    /// and not: every value of the batch is the one the CSV rendering writes.
    #[test]
    fn columns_hold_what_the_csv_says() {
        let a = IpAddr::from([10, 0, 0, 1]);
        let b = IpAddr::from([10, 0, 0, 2]);
        let c: IpAddr = "fd00::1".parse().unwrap();
        let slot = STREAM_SLOTS as u32;
        let records = [
            record(3, true, a, b),
            record(3 + slot, true, c, a),
            record(3, false, a, b),
            record(3 + slot, false, c, a),
            record(4, true, b, c),
            record(3 + 2 * slot, false, b, b),
        ];
        let capture: Arc<str> = "x.pcap".into();
        let mut columns = Columns::new(Arc::clone(&capture));
        let mut rows = Rows::with_limit(capture, crate::export::rows::BATCH_ROWS);
        columns.extend(&records);
        for r in &records {
            rows.push(r);
        }
        let batch = columns.into_record_batch(&schema()).unwrap();
        let mut csv = csv::WriterBuilder::new().from_writer(Vec::new());
        rows.write_csv(&mut csv).unwrap();
        let csv = String::from_utf8(csv.into_inner().unwrap()).unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), records.len());
        for (i, line) in lines.iter().enumerate() {
            let row: Vec<String> = batch.columns().iter().map(|c| text(c, i)).collect();
            assert_eq!(row.join(","), *line, "row {i}");
        }
    }
}
