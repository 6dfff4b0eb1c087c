//! A string column of a Parquet row group, dictionary-encoded from the keys its batches
//! already carry.
//!
//! The `parquet` crate's writer hashes every row's string to find its dictionary index, even
//! when it is handed an Arrow dictionary array whose keys are those indices
//! (apache/arrow-rs#10465, open): measured on the bench capture, a fifth of an export's CPU
//! for six columns that hold 2 % of the file. Here each batch's few distinct values are looked
//! up once and its keys mapped through a small table. The chunk is laid out as the Parquet
//! format's `Encodings.md` describes (a PLAIN dictionary page; one V1 data page of
//! definition levels, one RLE run when nothing is null, else bit-packed, and bit-packed
//! indices; Snappy, the file's codec); the crate's page writer writes the page headers and
//! its metadata builder describes the chunk, which the row group then takes as an
//! already-encoded column. The crate's own RLE/bit-packing encoder is public only behind its
//! `experimental` feature, which pulls in its Variant crates: the encoding below is a few
//! dozen lines, and the tests read the pages back with the crate's reader.

use std::sync::Arc;

use arrow_array::{Array, DictionaryArray, cast::AsArray, types::UInt32Type};
use bytes::Bytes;
use parquet::{
    basic::{Compression, Encoding, PageType},
    column::{
        page::{CompressedPage, Page, PageWriteSpec, PageWriter},
        writer::ColumnCloseResult,
    },
    errors::ParquetError,
    file::{
        metadata::{ColumnChunkMetaData, PageEncodingStats},
        writer::{SerializedPageWriter, TrackedWrite},
    },
    schema::types::ColumnDescPtr,
};
use rustc_hash::FxHashMap;

/// The rows of one string column since the row group began.
pub struct DictionaryColumn {
    descr: ColumnDescPtr,
    /// The row group's distinct values as the dictionary page holds them (PLAIN: a
    /// little-endian `u32` length, then the bytes), and the key of each.
    page: Vec<u8>,
    keys_of: FxHashMap<Box<str>, u32>,
    /// The key of every present value, in row order.
    keys: Vec<u32>,
    /// Per row, whether it has a value (only for a nullable column: its definition levels).
    present: Vec<bool>,
    rows: usize,
    /// Scratch: the row group's key for each key of the batch being appended.
    remap: Vec<u32>,
}

impl DictionaryColumn {
    /// An empty column chunk for the leaf `descr` of the file's schema.
    pub fn new(descr: ColumnDescPtr) -> Self {
        DictionaryColumn {
            descr,
            page: Vec::new(),
            keys_of: FxHashMap::default(),
            keys: Vec::new(),
            present: Vec::new(),
            rows: 0,
            remap: Vec::new(),
        }
    }

    fn nullable(&self) -> bool {
        self.descr.max_def_level() > 0
    }

    /// Adds a batch's rows. A null in a column the schema says is required is an error (the
    /// record batch's own checks make that unreachable).
    pub fn append(&mut self, array: &DictionaryArray<UInt32Type>) -> Result<(), ParquetError> {
        let values = array.values().as_string_opt::<i32>().ok_or_else(|| {
            ParquetError::General(format!("{}: not a string dictionary", self.descr.name()))
        })?;
        self.remap.clear();
        for i in 0..values.len() {
            let key = self.key(values.value(i));
            self.remap.push(key);
        }
        let remap = &self.remap;
        let keys = array.keys().values();
        match array.nulls().filter(|n| n.null_count() > 0) {
            None => {
                self.keys.extend(keys.iter().map(|&k| remap[k as usize]));
                if self.nullable() {
                    self.present.resize(self.present.len() + keys.len(), true);
                }
            }
            Some(_) if !self.nullable() => {
                return Err(ParquetError::General(format!(
                    "{}: null in a required column",
                    self.descr.name()
                )));
            }
            Some(nulls) => {
                for (i, &k) in keys.iter().enumerate() {
                    let valid = nulls.is_valid(i);
                    if valid {
                        self.keys.push(remap[k as usize]);
                    }
                    self.present.push(valid);
                }
            }
        }
        self.rows += keys.len();
        Ok(())
    }

    /// The row group's key of `value`, added to the dictionary if new.
    fn key(&mut self, value: &str) -> u32 {
        if let Some(&key) = self.keys_of.get(value) {
            return key;
        }
        let key = self.keys_of.len() as u32;
        self.page
            .extend_from_slice(&(value.len() as u32).to_le_bytes());
        self.page.extend_from_slice(value.as_bytes());
        self.keys_of.insert(value.into(), key);
        key
    }

    /// The column chunk of the rows appended so far, and its metadata with offsets relative
    /// to the returned bytes (as `SerializedRowGroupWriter::append_column` takes them); the
    /// column is empty again afterwards.
    pub fn finish(&mut self) -> Result<(Bytes, ColumnCloseResult), ParquetError> {
        let mut snappy = snap::raw::Encoder::new();
        let mut compress = |body: &[u8]| {
            snappy
                .compress_vec(body)
                .map(Bytes::from)
                .map_err(|e| ParquetError::External(Box::new(e)))
        };
        let dictionary = Page::DictionaryPage {
            buf: compress(&self.page)?,
            num_values: self.keys_of.len() as u32,
            encoding: Encoding::PLAIN,
            is_sorted: false,
        };
        let body = self.data_page_body();
        let data = Page::DataPage {
            buf: compress(&body)?,
            num_values: self.rows as u32,
            encoding: Encoding::RLE_DICTIONARY,
            def_level_encoding: Encoding::RLE,
            rep_level_encoding: Encoding::RLE,
            statistics: None,
        };
        let mut sink = TrackedWrite::new(Vec::new());
        let mut pages = SerializedPageWriter::new(&mut sink);
        let dictionary = pages.write_page(CompressedPage::new(dictionary, self.page.len()))?;
        let data = pages.write_page(CompressedPage::new(data, body.len()))?;
        pages.close()?;
        let bytes = Bytes::from(sink.into_inner()?);
        let metadata = self.metadata(&dictionary, &data)?;
        let close = ColumnCloseResult {
            bytes_written: bytes.len() as u64,
            rows_written: self.rows as u64,
            metadata,
            bloom_filter: None,
            column_index: None,
            offset_index: None,
        };
        self.clear();
        Ok((bytes, close))
    }

    /// A V1 data page before compression: the definition levels (nullable columns only,
    /// length-prefixed), then the indices' bit width and the indices.
    fn data_page_body(&self) -> Vec<u8> {
        let width = bit_width(self.keys_of.len().saturating_sub(1) as u32);
        let mut body = Vec::with_capacity(self.rows / 8 + self.keys.len() * 4 + 16);
        if self.nullable() {
            let mut levels = Vec::with_capacity(self.rows / 8 + 8);
            if self.keys.len() == self.rows {
                // No null: one run of 1s, a few bytes instead of a bit per row.
                rle_run(1, self.rows, &mut levels);
            } else {
                bit_pack(self.present.iter().map(|&p| u32::from(p)), 1, &mut levels);
            }
            body.extend_from_slice(&(levels.len() as u32).to_le_bytes());
            body.extend_from_slice(&levels);
        }
        body.push(width);
        bit_pack(self.keys.iter().copied(), width, &mut body);
        body
    }

    fn metadata(
        &self,
        dictionary: &PageWriteSpec,
        data: &PageWriteSpec,
    ) -> Result<ColumnChunkMetaData, ParquetError> {
        let stats = |page_type, encoding| PageEncodingStats {
            page_type,
            encoding,
            count: 1,
        };
        ColumnChunkMetaData::builder(Arc::clone(&self.descr))
            .set_compression(Compression::SNAPPY)
            .set_encodings(vec![
                Encoding::PLAIN,
                Encoding::RLE,
                Encoding::RLE_DICTIONARY,
            ])
            .set_page_encoding_stats(vec![
                stats(PageType::DICTIONARY_PAGE, Encoding::PLAIN),
                stats(PageType::DATA_PAGE, Encoding::RLE_DICTIONARY),
            ])
            .set_num_values(self.rows as i64)
            .set_total_compressed_size((dictionary.compressed_size + data.compressed_size) as i64)
            .set_total_uncompressed_size(
                (dictionary.uncompressed_size + data.uncompressed_size) as i64,
            )
            .set_dictionary_page_offset(Some(dictionary.offset as i64))
            .set_data_page_offset(data.offset as i64)
            .build()
    }

    fn clear(&mut self) {
        self.page.clear();
        self.keys_of.clear();
        self.keys.clear();
        self.present.clear();
        self.rows = 0;
    }
}

/// Bits needed for values up to `max` (0 for a dictionary of one value, as the format allows).
fn bit_width(max: u32) -> u8 {
    (u32::BITS - max.leading_zeros()) as u8
}

/// A ULEB128 number (the headers of the RLE/bit-packing hybrid).
fn uleb128(mut value: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// `count` times a 1-bit `value` as one RLE run of the hybrid: the header (the count shifted
/// left once, low bit clear), then the value in one byte.
fn rle_run(value: u8, count: usize, out: &mut Vec<u8>) {
    uleb128((count as u64) << 1, out);
    out.push(value);
}

/// `values` as one bit-packed run of the RLE/bit-packing hybrid: the header (the number of
/// 8-value groups shifted left once, low bit set), then each value in `width` bits, least
/// significant first, the last group padded with zeros.
fn bit_pack(values: impl ExactSizeIterator<Item = u32>, width: u8, out: &mut Vec<u8>) {
    let groups = values.len().div_ceil(8);
    uleb128(((groups as u64) << 1) | 1, out);
    if width == 0 {
        return;
    }
    let end = out.len() + groups * usize::from(width);
    let (mut bits, mut pending) = (0u64, 0u32);
    for value in values {
        bits |= u64::from(value) << pending;
        pending += u32::from(width);
        while pending >= 8 {
            out.push(bits as u8);
            bits >>= 8;
            pending -= 8;
        }
    }
    if pending > 0 {
        out.push(bits as u8);
    }
    out.resize(end, 0);
}

#[cfg(test)]
mod tests {
    use arrow_array::{StringArray, UInt32Array};
    use arrow_schema::{DataType, Field, Schema};
    use parquet::{
        arrow::{ArrowSchemaConverter, arrow_reader::ParquetRecordBatchReaderBuilder},
        file::{properties::WriterProperties, writer::SerializedFileWriter},
    };

    use super::*;

    /// The Parquet spec's bit-packing example: 0..=7 in 3 bits is `10001000 11000110 11111010`.
    #[test]
    fn bit_packing_is_the_specs_example() {
        let mut out = Vec::new();
        bit_pack(0..8u32, 3, &mut out);
        assert_eq!(out, [0b11, 0b1000_1000, 0b1100_0110, 0b1111_1010]);
        let mut out = Vec::new();
        bit_pack([1u32, 0, 1].into_iter(), 1, &mut out);
        assert_eq!(out, [0b11, 0b101], "one group, padded");
        let mut out = Vec::new();
        bit_pack(std::iter::repeat_n(0u32, 8 * 64), 0, &mut out);
        assert_eq!(
            out,
            [0x81, 0x01],
            "64 groups: a two-byte header, no data at width 0"
        );
    }

    /// The spec's RLE run: 300 times 1 (header 600 as ULEB128 `0xd8 0x04`), then the value.
    #[test]
    fn rle_run_is_the_specs_layout() {
        let mut out = Vec::new();
        rle_run(1, 300, &mut out);
        assert_eq!(out, [0xd8, 0x04, 1]);
    }

    #[test]
    fn bit_widths() {
        assert_eq!(
            [0, 1, 2, 3, 4, 255, 256].map(bit_width),
            [0, 1, 2, 2, 3, 8, 9]
        );
    }

    fn dictionary(keys: Vec<Option<u32>>, values: &[&str]) -> DictionaryArray<UInt32Type> {
        DictionaryArray::try_new(
            UInt32Array::from(keys),
            Arc::new(StringArray::from(values.to_vec())),
        )
        .unwrap()
    }

    /// Batches with different dictionaries, one value or several, nulls or none, one row group
    /// each of two appends: the crate's reader gets back every row's string.
    #[test]
    fn the_crates_reader_reads_the_chunks_back() {
        let field = |name, nullable| {
            let ty = DataType::Dictionary(Box::new(DataType::UInt32), Box::new(DataType::Utf8));
            Field::new(name, ty, nullable)
        };
        let schema = Schema::new(vec![field("required", false), field("nullable", true)]);
        let properties = Arc::new(WriterProperties::builder().build());
        let parquet = ArrowSchemaConverter::new().convert(&schema).unwrap();
        let mut writer =
            SerializedFileWriter::new(Vec::new(), parquet.root_schema_ptr(), properties).unwrap();
        let batches = [
            (
                dictionary(vec![Some(0), Some(1), Some(0)], &["a", "bb"]),
                dictionary(vec![Some(1), None, Some(0)], &["x", "yy"]),
            ),
            (
                dictionary((0..20).map(|i| Some(i % 3)).collect(), &["bb", "c", "a"]),
                dictionary((0..20).map(|i| (i % 4 != 0).then_some(0)).collect(), &["z"]),
            ),
            (
                dictionary(vec![Some(0); 5], &["only"]),
                dictionary((0..5).map(|i| Some(i % 2)).collect(), &["p", "q"]),
            ),
        ];
        let mut expected: [Vec<Option<String>>; 2] = Default::default();
        for (required, nullable) in &batches {
            let mut columns = [
                DictionaryColumn::new(parquet.column(0)),
                DictionaryColumn::new(parquet.column(1)),
            ];
            for ((column, array), expected) in columns
                .iter_mut()
                .zip([required, nullable])
                .zip(&mut expected)
            {
                column.append(array).unwrap();
                column.append(array).unwrap();
                let strings = array.downcast_dict::<StringArray>().unwrap();
                let rows: Vec<_> = strings.into_iter().map(|s| s.map(String::from)).collect();
                expected.extend(rows.iter().chain(&rows).cloned());
            }
            let mut group = writer.next_row_group().unwrap();
            for column in &mut columns {
                let (bytes, close) = column.finish().unwrap();
                assert_eq!(
                    (column.rows, column.keys.len()),
                    (0, 0),
                    "empty after finish"
                );
                group.append_column(&bytes, close).unwrap();
            }
            group.close().unwrap();
        }
        let file = Bytes::from(writer.into_inner().unwrap());
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        let mut read: [Vec<Option<String>>; 2] = Default::default();
        for batch in reader {
            let batch = batch.unwrap();
            for (column, read) in batch.columns().iter().zip(&mut read) {
                let column = strings(column);
                read.extend(column);
            }
        }
        assert_eq!(read, expected);
        assert_eq!(read[0].len(), 2 * (3 + 20 + 5));
    }

    /// A column read back as strings (the reader returns plain or dictionary arrays).
    fn strings(column: &arrow_array::ArrayRef) -> Vec<Option<String>> {
        match column.data_type() {
            DataType::Utf8 => column
                .as_string::<i32>()
                .iter()
                .map(|s| s.map(String::from))
                .collect(),
            DataType::Dictionary(..) => column
                .as_dictionary::<UInt32Type>()
                .downcast_dict::<StringArray>()
                .unwrap()
                .into_iter()
                .map(|s| s.map(String::from))
                .collect(),
            other => panic!("read back as {other}"),
        }
    }
}
