//! `InputType: PARQUET`: each row of an Apache Parquet object is one item, a JSON
//! object of its columns (docs/WORKFLOWS.md says how each type is rendered).
//!
//! The object comes from a tenant, so it is checked before the parquet crate decodes
//! it: the crate trusts the lengths a file declares (a thrift list or string
//! length becomes a `Vec::with_capacity`, which aborts the process when it cannot be
//! had) and recurses over the schema. So, before decoding: the footer is at most
//! [`MAX_FOOTER_BYTES`] (the cloud's 5 MB) and its thrift is walked here, every length
//! within the bytes that follow it and the nesting bounded; the schema's tree is
//! at most [`MAX_SCHEMA_DEPTH`] deep; each column chunk's pages are walked the same
//! way, their sizes within the chunk and a row group's decoded pages at most
//! [`MAX_ROW_GROUP_BYTES`] (the cloud's 256 MB); uncompressed, Snappy, GZIP and ZSTD
//! pages are read; the rows declared are checked against the item bound. The crate
//! decompresses a GZIP or ZSTD page unbounded (`read_to_end`, `io::copy` into a
//! `Vec`), and only then compares what it got with the size the page declares: a
//! page of a few kilobytes declaring 100 bytes could expand to gigabytes first (a
//! decompression bomb in a tenant's blob). So each such page is decompressed here
//! once, streamed into nothing and stopped one byte past its declared size, and a
//! page that expands past it (or does not decompress) refuses the file; all a file's
//! pages decompress to at most [`MAX_INFLATED_BYTES`]. What is still left to the crate
//! runs under `catch_unwind`: a panic there is the file's fault and becomes the
//! reader's failure.

use std::io::{self, Read as _};
use std::panic::{AssertUnwindSafe, catch_unwind};

use ::parquet::basic::Compression;
use ::parquet::data_type::Decimal;
use ::parquet::file::reader::{FileReader, SerializedFileReader};
use ::parquet::record::{Field, Row};
use base64::Engine as _;
use chrono::{DateTime, NaiveDate};
use serde_json::{Map, Value};

use super::{Bounds, ItemsError, MAX_ROW_BYTES, fail, too_many};
use crate::workflow::payload::json_len;

/// The longest footer (file metadata), as in the cloud.
pub const MAX_FOOTER_BYTES: usize = 5 * 1024 * 1024;
/// The most a row group's pages may decode to, as in the cloud's row-group limit.
pub const MAX_ROW_GROUP_BYTES: u64 = 256 * 1024 * 1024;
/// The deepest schema (nested groups, lists and maps) read.
pub const MAX_SCHEMA_DEPTH: usize = 32;
/// The most values a column chunk's pages may declare: repeated columns have more
/// values than rows, but not without bound (a page of nulls costs no bytes).
const MAX_CHUNK_VALUES: u64 = 16 * 1024 * 1024;
/// The most bytes a file's GZIP and ZSTD pages may decompress to, in all. Each
/// page is bounded by the size it declares, and a row group by
/// [`MAX_ROW_GROUP_BYTES`], but a file may hold many row groups: at deflate's ratio
/// of about 1000 a 64 MiB object would decompress to some 64 GiB (ZSTD's RLE blocks,
/// 4 bytes for 128 KiB, to terabytes), minutes of CPU (and the crate decompresses it
/// again). A gigabyte is four of the cloud's largest row groups, and over ten times
/// the object bound at common ratios.
pub const MAX_INFLATED_BYTES: u64 = 1024 * 1024 * 1024;
/// Thrift structures nest far less than this in a footer or a page header.
const MAX_THRIFT_DEPTH: u32 = 24;
/// The longest decimal read (bytes of its unscaled value; 38 digits take 16).
const MAX_DECIMAL_BYTES: usize = 64;
const MAGIC: &[u8] = b"PAR1";

/// The rows of a Parquet file as items.
pub(super) fn rows(data: &[u8], bounds: Bounds) -> Result<Vec<Value>, ItemsError> {
    // Checked input still reaches code that may panic on what it did not expect
    // (asserts, slicing): a panic is the file's fault, not the host's.
    match catch_unwind(AssertUnwindSafe(|| read(data, bounds))) {
        Ok(result) => result,
        Err(panic) => {
            let why = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("no reason given");
            Err(fail(format!(
                "the Parquet file is corrupt: decoding it stopped ({why})"
            )))
        }
    }
}

fn read(data: &[u8], bounds: Bounds) -> Result<Vec<Value>, ItemsError> {
    let footer = footer(data)?;
    check_footer(footer)?;
    let bytes = bytes::Bytes::copy_from_slice(data);
    let reader = SerializedFileReader::new(bytes)
        .map_err(|e| fail(format!("the Parquet file is corrupt: {e}")))?;
    let meta = reader.metadata();
    let mut declared: u64 = 0;
    let mut inflated: u64 = 0;
    for (g, group) in meta.row_groups().iter().enumerate() {
        let rows = u64::try_from(group.num_rows()).map_err(|_| {
            fail(format!(
                "the Parquet file is corrupt: row group {g} declares a negative number of rows"
            ))
        })?;
        declared = declared.saturating_add(rows);
        let mut decoded: u64 = 0;
        for column in group.columns() {
            let name = column.column_path().string();
            let codec = match column.compression() {
                // Snappy's decoder writes into the declared size, and refuses more.
                Compression::UNCOMPRESSED | Compression::SNAPPY => None,
                Compression::GZIP(_) => Some(Inflate::Gzip),
                Compression::ZSTD(_) => Some(Inflate::Zstd),
                other => {
                    // LZ4, BROTLI and LZO are not built in (each is a C library or more
                    // crates): the cloud reads only GZIP and ZSTD besides Snappy.
                    let codec = other.to_string();
                    let codec = codec.split('(').next().unwrap_or_default();
                    return Err(fail(format!(
                        "column `{name}` is {codec}-compressed; this host reads uncompressed, SNAPPY, GZIP and ZSTD Parquet files"
                    )));
                }
            };
            let start = column
                .dictionary_page_offset()
                .unwrap_or_else(|| column.data_page_offset());
            let range = u64::try_from(start)
                .ok()
                .zip(u64::try_from(column.compressed_size()).ok())
                .and_then(|(s, n)| Some((usize::try_from(s).ok()?, usize::try_from(n).ok()?)))
                .filter(|(s, n)| s.checked_add(*n).is_some_and(|end| end <= data.len()))
                .ok_or_else(|| {
                    fail(format!(
                        "the Parquet file is corrupt: column `{name}` of row group {g} lies outside the file"
                    ))
                })?;
            let chunk = &data[range.0..range.0 + range.1];
            decoded = decoded.saturating_add(pages(chunk, &name, codec, &mut inflated)?);
            if decoded > MAX_ROW_GROUP_BYTES {
                return Err(fail(format!(
                    "row group {g} decodes to over {MAX_ROW_GROUP_BYTES} bytes, the most a row group may hold"
                )));
            }
        }
    }
    // Past the bound with no MaxItems under it: refused before a row is decoded.
    let stops = bounds.take.is_some_and(|t| t <= bounds.bound);
    if !stops && declared > bounds.bound as u64 {
        return Err(too_many(bounds.bound));
    }
    let mut items = Vec::new();
    let iter = reader
        .get_row_iter(None)
        .map_err(|e| fail(format!("the Parquet file is corrupt: {e}")))?;
    for (n, row) in iter.enumerate() {
        if bounds.taken(&items) {
            break;
        }
        bounds.room(&items)?;
        let row = row.map_err(|e| fail(format!("the Parquet file is corrupt at row {n}: {e}")))?;
        let item = row_value(&row).map_err(|e| fail(format!("row {n}: {e}")))?;
        let size = json_len(&item);
        if size > MAX_ROW_BYTES {
            return Err(fail(format!(
                "row {n} is {size} bytes as JSON, over the {MAX_ROW_BYTES}-byte limit of an item"
            )));
        }
        items.push(item);
    }
    Ok(items)
}

/// The footer's thrift bytes, after the file's framing is checked.
fn footer(data: &[u8]) -> Result<&[u8], ItemsError> {
    let not = || fail("the object is not a Parquet file (no PAR1 magic at its start and end)");
    if data.len() < 12 || !data.starts_with(MAGIC) {
        return Err(not());
    }
    let tail = &data[data.len() - 8..];
    if &tail[4..] == b"PARE" {
        return Err(fail(
            "the Parquet file's footer is encrypted; this host reads plaintext footers",
        ));
    }
    if &tail[4..] != MAGIC {
        return Err(not());
    }
    let len = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]) as usize;
    if len > MAX_FOOTER_BYTES {
        return Err(fail(format!(
            "the Parquet footer is {len} bytes, over the {MAX_FOOTER_BYTES}-byte limit"
        )));
    }
    if len > data.len() - 12 {
        return Err(fail(format!(
            "the Parquet file is truncated: its footer is {len} bytes, the file {}",
            data.len()
        )));
    }
    Ok(&data[data.len() - 8 - len..data.len() - 8])
}

/// The file metadata's thrift walked: well formed, and the schema's tree bounded.
fn check_footer(footer: &[u8]) -> Result<(), ItemsError> {
    let mut t = Thrift::new(footer);
    let mut children: Vec<i64> = Vec::new();
    t.fields(0, |t, id, ty, depth| {
        // FileMetaData.2: the schema, each element's num_children (its field 5).
        if id != 2 || ty != LIST {
            return Ok(false);
        }
        let (elem, n) = t.list_begin()?;
        if elem != STRUCT {
            return Err(t.bad("the schema is not a list of elements"));
        }
        for _ in 0..n {
            let mut kids = 0;
            t.fields(depth + 1, |t, id, ty, _| {
                if id == 5 && ty == I32 {
                    kids = t.int()?;
                    return Ok(true);
                }
                Ok(false)
            })?;
            children.push(kids);
        }
        Ok(true)
    })
    .map_err(|e| fail(format!("the Parquet footer is corrupt: {e}")))?;
    schema_depth(&children)
}

/// The schema's flat list (each element's number of children, depth first) as a
/// tree: every child present, none left over, at most [`MAX_SCHEMA_DEPTH`] deep.
fn schema_depth(children: &[i64]) -> Result<(), ItemsError> {
    let bad = |why: &str| fail(format!("the Parquet schema is corrupt: {why}"));
    let Some((root, rest)) = children.split_first() else {
        return Err(bad("it has no root"));
    };
    let mut open: Vec<i64> = Vec::new();
    if *root < 0 {
        return Err(bad("a negative number of children"));
    }
    if *root > 0 {
        open.push(*root);
    }
    for kids in rest {
        let Some(top) = open.last_mut() else {
            return Err(bad("more elements than its groups hold"));
        };
        *top -= 1;
        if *kids < 0 {
            return Err(bad("a negative number of children"));
        }
        if *kids > 0 {
            open.push(*kids);
            if open.len() > MAX_SCHEMA_DEPTH {
                return Err(fail(format!(
                    "the Parquet schema nests over {MAX_SCHEMA_DEPTH} levels"
                )));
            }
        }
        while open.last() == Some(&0) {
            open.pop();
        }
    }
    if !open.is_empty() {
        return Err(bad("a group declares more children than follow it"));
    }
    Ok(())
}

/// A codec whose pages are decompressed here, bounded, before the crate reads them.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Inflate {
    Gzip,
    Zstd,
}

impl Inflate {
    fn name(self) -> &'static str {
        match self {
            Inflate::Gzip => "GZIP",
            Inflate::Zstd => "ZSTD",
        }
    }
}

/// A column chunk's pages walked: each header well formed, each page within the
/// chunk; with a `codec`, each page decompressed (see [`inflate`]), all of a file's
/// counted in `inflated`. The bytes its pages decode to.
fn pages(
    chunk: &[u8],
    column: &str,
    codec: Option<Inflate>,
    inflated: &mut u64,
) -> Result<u64, ItemsError> {
    let bad = |why: String| fail(format!("column `{column}` is corrupt: {why}"));
    let mut at = 0;
    let mut decoded: u64 = 0;
    let mut values: u64 = 0;
    while at < chunk.len() {
        let mut t = Thrift::new(&chunk[at..]);
        let (mut plain, mut packed, mut count) = (-1, -1, 0);
        // A data page V2's levels, stored uncompressed before its values, and whether
        // its values are compressed (the default).
        let (mut levels, mut compressed) = (0_i64, true);
        t.fields(0, |t, id, ty, depth| match (id, ty) {
            (2, I32) => {
                plain = t.int()?;
                Ok(true)
            }
            (3, I32) => {
                packed = t.int()?;
                Ok(true)
            }
            // data_page_header, dictionary_page_header, data_page_header_v2: each
            // with its num_values first; the V2 header's definition (5) and
            // repetition (6) levels' byte lengths and is_compressed (7).
            (5 | 7 | 8, STRUCT) => {
                t.fields(depth + 1, |t, field, ty, _| match (field, ty) {
                    (1, I32) => {
                        count = t.int()?;
                        Ok(true)
                    }
                    (5 | 6, I32) if id == 8 => {
                        let n = t.int()?;
                        if n < 0 {
                            return Err(t.bad("a negative length of levels"));
                        }
                        levels = levels.saturating_add(n);
                        Ok(true)
                    }
                    (7, BOOL_TRUE | BOOL_FALSE) if id == 8 => {
                        compressed = ty == BOOL_TRUE;
                        Ok(true)
                    }
                    _ => Ok(false),
                })?;
                Ok(true)
            }
            _ => Ok(false),
        })
        .map_err(|e| bad(format!("a page header at byte {at} of its chunk: {e}")))?;
        let (Ok(plain), Ok(packed), Ok(count)) = (
            u64::try_from(plain),
            usize::try_from(packed),
            u64::try_from(count),
        ) else {
            return Err(bad(format!(
                "the page at byte {at} of its chunk declares no or negative sizes"
            )));
        };
        let header = at;
        at += t.at;
        if packed > chunk.len() - at {
            return Err(bad(format!(
                "a page of {packed} bytes runs past the end of its chunk (truncated?)"
            )));
        }
        let page = &chunk[at..at + packed];
        at += packed;
        decoded = decoded.saturating_add(plain);
        values = values.saturating_add(count);
        if decoded > MAX_ROW_GROUP_BYTES {
            return Err(bad(format!(
                "its pages decode to over {MAX_ROW_GROUP_BYTES} bytes"
            )));
        }
        if values > MAX_CHUNK_VALUES {
            return Err(bad(format!(
                "its pages declare over {MAX_CHUNK_VALUES} values"
            )));
        }
        let Some(codec) = codec.filter(|_| compressed) else {
            continue;
        };
        // As the crate reads a page: its levels (V2) as they are, the rest
        // decompressed to the size declared less the levels; none when that is 0.
        let levels = u64::try_from(levels).unwrap_or(u64::MAX);
        let (Some(declared), Some(body)) = (
            plain.checked_sub(levels),
            usize::try_from(levels).ok().and_then(|l| page.get(l..)),
        ) else {
            return Err(bad(format!(
                "the page at byte {header} of its chunk declares levels past its size"
            )));
        };
        if declared == 0 {
            continue;
        }
        *inflated = inflated.saturating_add(declared);
        if *inflated > MAX_INFLATED_BYTES {
            return Err(fail(format!(
                "column `{column}`: the file's compressed pages decompress to over {MAX_INFLATED_BYTES} bytes, the most this host decompresses for one file"
            )));
        }
        inflate(codec, body, declared).map_err(|e| {
            fail(format!(
                "column `{column}` is corrupt: the page at byte {header} of its chunk {e}"
            ))
        })?;
    }
    Ok(decoded)
}

/// A page's compressed bytes decompressed into nothing, with the decoder the crate
/// uses (every gzip member, every zstd frame), and stopped one byte past `declared`:
/// what it declares is all it may hold, and no buffer the size of what it would
/// expand to is had (zstd's window, which a frame declares, is bounded by the
/// decoder's default limit, 128 MiB, as in the crate's own decoder).
fn inflate(codec: Inflate, compressed: &[u8], declared: u64) -> Result<(), String> {
    let bound = declared.saturating_add(1);
    let got = match codec {
        Inflate::Gzip => io::copy(
            &mut flate2::read::MultiGzDecoder::new(compressed).take(bound),
            &mut io::sink(),
        ),
        Inflate::Zstd => zstd::stream::read::Decoder::with_buffer(compressed)
            .and_then(|d| io::copy(&mut d.take(bound), &mut io::sink())),
    }
    .map_err(|e| format!("does not decompress as {}: {e}", codec.name()))?;
    if got > declared {
        return Err(format!(
            "decompresses to more than the {declared} bytes its header declares (a decompression bomb?)"
        ));
    }
    if got < declared {
        return Err(format!(
            "decompresses to {got} bytes, not the {declared} its header declares"
        ));
    }
    Ok(())
}

// Thrift compact protocol types.
const BOOL_TRUE: u8 = 1;
const BOOL_FALSE: u8 = 2;
const BYTE: u8 = 3;
const I16: u8 = 4;
const I32: u8 = 5;
const I64: u8 = 6;
const DOUBLE: u8 = 7;
const BINARY: u8 = 8;
const LIST: u8 = 9;
const SET: u8 = 10;
const MAP: u8 = 11;
const STRUCT: u8 = 12;
const UUID: u8 = 13;

/// A reader of thrift's compact protocol that checks every length against the bytes
/// left, so what it accepts the crate can decode without an unbounded allocation.
struct Thrift<'a> {
    data: &'a [u8],
    at: usize,
}

type Walk<T> = Result<T, String>;

impl<'a> Thrift<'a> {
    fn new(data: &'a [u8]) -> Self {
        Thrift { data, at: 0 }
    }

    fn bad(&self, why: &str) -> String {
        format!("{why} (byte {})", self.at)
    }

    fn left(&self) -> usize {
        self.data.len() - self.at
    }

    fn byte(&mut self) -> Walk<u8> {
        let b = *self
            .data
            .get(self.at)
            .ok_or_else(|| self.bad("it ends early"))?;
        self.at += 1;
        Ok(b)
    }

    fn skip(&mut self, n: usize) -> Walk<()> {
        if n > self.left() {
            return Err(self.bad("a length runs past its end"));
        }
        self.at += n;
        Ok(())
    }

    fn varint(&mut self) -> Walk<u64> {
        let mut v: u64 = 0;
        for shift in (0..70).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.bad("a varint is over 10 bytes"))
    }

    /// A zigzag integer (i16, i32 or i64).
    fn int(&mut self) -> Walk<i64> {
        let v = self.varint()?;
        Ok((v >> 1) as i64 ^ -((v & 1) as i64))
    }

    fn list_begin(&mut self) -> Walk<(u8, usize)> {
        let header = self.byte()?;
        let size = match header >> 4 {
            15 => usize::try_from(self.varint()?).unwrap_or(usize::MAX),
            n => usize::from(n),
        };
        // Every element takes at least one byte: a longer list is a lie.
        if size > self.left() {
            return Err(self.bad("a list declares more elements than bytes follow"));
        }
        Ok((header & 0x0f, size))
    }

    /// A struct's fields, each given to `f` (which reads it and says so, or leaves
    /// it to be skipped), up to its stop.
    fn fields(
        &mut self,
        depth: u32,
        mut f: impl FnMut(&mut Self, i16, u8, u32) -> Walk<bool>,
    ) -> Walk<()> {
        if depth > MAX_THRIFT_DEPTH {
            return Err(self.bad("structures nest too deep"));
        }
        let mut last: i16 = 0;
        loop {
            let header = self.byte()?;
            if header == 0 {
                return Ok(());
            }
            let ty = header & 0x0f;
            let id = match header >> 4 {
                0 => i16::try_from(self.int()?).map_err(|_| self.bad("a field id out of range"))?,
                delta => last.saturating_add(i16::from(delta)),
            };
            last = id;
            if matches!(ty, BOOL_TRUE | BOOL_FALSE) {
                // The value is in the type: `f` may note it, nothing follows to skip.
                f(self, id, ty, depth)?;
                continue;
            }
            if !f(self, id, ty, depth)? {
                self.value(ty, depth + 1)?;
            }
        }
    }

    fn value(&mut self, ty: u8, depth: u32) -> Walk<()> {
        if depth > MAX_THRIFT_DEPTH {
            return Err(self.bad("structures nest too deep"));
        }
        match ty {
            BOOL_TRUE | BOOL_FALSE | BYTE => self.skip(1),
            I16 | I32 | I64 => self.varint().map(drop),
            DOUBLE => self.skip(8),
            UUID => self.skip(16),
            BINARY => {
                let n = usize::try_from(self.varint()?).unwrap_or(usize::MAX);
                self.skip(n)
            }
            LIST | SET => {
                let (elem, n) = self.list_begin()?;
                for _ in 0..n {
                    self.value(elem, depth + 1)?;
                }
                Ok(())
            }
            MAP => {
                let n = usize::try_from(self.varint()?).unwrap_or(usize::MAX);
                if n == 0 {
                    return Ok(());
                }
                if n > self.left() / 2 {
                    return Err(self.bad("a map declares more entries than bytes follow"));
                }
                let kinds = self.byte()?;
                for _ in 0..n {
                    self.value(kinds >> 4, depth + 1)?;
                    self.value(kinds & 0x0f, depth + 1)?;
                }
                Ok(())
            }
            STRUCT => self.fields(depth, |_, _, _, _| Ok(false)),
            other => Err(self.bad(&format!("an unknown thrift type {other}"))),
        }
    }
}

/// A row as a JSON object of its columns.
fn row_value(row: &Row) -> Result<Value, String> {
    let mut object = Map::new();
    for (name, field) in row.get_column_iter() {
        object.insert(name.clone(), field_value(field)?);
    }
    Ok(Value::Object(object))
}

fn float(v: f64) -> Value {
    // JSON has no NaN or infinity.
    serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
}

fn field_value(field: &Field) -> Result<Value, String> {
    Ok(match field {
        Field::Null => Value::Null,
        Field::Bool(b) => Value::Bool(*b),
        Field::Byte(n) => Value::from(*n),
        Field::Short(n) => Value::from(*n),
        Field::Int(n) => Value::from(*n),
        Field::Long(n) => Value::from(*n),
        Field::UByte(n) => Value::from(*n),
        Field::UShort(n) => Value::from(*n),
        Field::UInt(n) => Value::from(*n),
        Field::ULong(n) => Value::from(*n),
        Field::Float16(n) => float(f64::from(*n)),
        Field::Float(n) => float(f64::from(*n)),
        Field::Double(n) => float(*n),
        Field::Decimal(d) => Value::String(decimal(d)?),
        Field::Str(s) => Value::String(s.clone()),
        Field::Bytes(b) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(b.data()))
        }
        Field::Date(days) => Value::String(
            NaiveDate::from_num_days_from_ce_opt(days.saturating_add(719_163))
                .ok_or_else(|| format!("date {days} is out of range"))?
                .format("%Y-%m-%d")
                .to_string(),
        ),
        Field::TimeMillis(ms) => Value::String(time_of_day(i64::from(*ms) * 1000)?),
        Field::TimeMicros(us) => Value::String(time_of_day(*us)?),
        Field::TimestampMillis(ms) => Value::String(
            DateTime::from_timestamp_millis(*ms)
                .ok_or_else(|| format!("timestamp {ms} ms is out of range"))?
                .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                .to_string(),
        ),
        Field::TimestampMicros(us) => Value::String(
            DateTime::from_timestamp_micros(*us)
                .ok_or_else(|| format!("timestamp {us} µs is out of range"))?
                .format("%Y-%m-%dT%H:%M:%S%.6fZ")
                .to_string(),
        ),
        Field::Group(row) => row_value(row)?,
        Field::ListInternal(list) => Value::Array(
            list.elements()
                .iter()
                .map(field_value)
                .collect::<Result<_, _>>()?,
        ),
        Field::MapInternal(map) => {
            let mut object = Map::new();
            for (k, v) in map.entries() {
                let key = match field_value(k)? {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                object.insert(key, field_value(v)?);
            }
            Value::Object(object)
        }
    })
}

/// A time of day (`HH:MM:SS.ffffff`) from microseconds since midnight.
fn time_of_day(us: i64) -> Result<String, String> {
    if !(0..86_400_000_000).contains(&us) {
        return Err(format!("time of day {us} µs is out of range"));
    }
    let (s, frac) = (us / 1_000_000, us % 1_000_000);
    Ok(format!(
        "{:02}:{:02}:{:02}.{frac:06}",
        s / 3600,
        s / 60 % 60,
        s % 60
    ))
}

/// A decimal's exact digits (its unscaled big-endian two's complement value with
/// the point `scale` digits from the right), as text: a JSON number would lose them.
fn decimal(d: &Decimal) -> Result<String, String> {
    let bytes = d.data();
    if bytes.len() > MAX_DECIMAL_BYTES {
        return Err(format!("a decimal of {} bytes is too long", bytes.len()));
    }
    let negative = bytes.first().is_some_and(|b| b & 0x80 != 0);
    let mut magnitude: Vec<u8> = bytes.to_vec();
    if negative {
        // Two's complement: invert and add one.
        for b in magnitude.iter_mut() {
            *b = !*b;
        }
        for b in magnitude.iter_mut().rev() {
            let (v, carry) = b.overflowing_add(1);
            *b = v;
            if !carry {
                break;
            }
        }
    }
    // Base 256 to base 10 by repeated division.
    let mut digits = Vec::new();
    while magnitude.iter().any(|b| *b != 0) {
        let mut rem: u32 = 0;
        for b in magnitude.iter_mut() {
            let cur = (rem << 8) | u32::from(*b);
            *b = (cur / 10) as u8;
            rem = cur % 10;
        }
        digits.push(b'0' + rem as u8);
    }
    if digits.is_empty() {
        digits.push(b'0');
    }
    let scale = usize::try_from(d.scale()).unwrap_or(0);
    while digits.len() <= scale {
        digits.push(b'0');
    }
    digits.reverse();
    let mut text = String::with_capacity(digits.len() + 2);
    if negative {
        text.push('-');
    }
    let point = digits.len() - scale;
    text.push_str(std::str::from_utf8(&digits[..point]).unwrap_or("0"));
    if scale > 0 {
        text.push('.');
        text.push_str(std::str::from_utf8(&digits[point..]).unwrap_or("0"));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ::parquet::basic::Compression;
    use ::parquet::data_type::{ByteArrayType, Int32Type};
    use ::parquet::file::properties::WriterProperties;
    use ::parquet::file::writer::SerializedFileWriter;
    use ::parquet::schema::parser::parse_message_type;
    use serde_json::json;

    use super::*;

    fn all() -> Bounds {
        Bounds {
            take: None,
            bound: 1000,
        }
    }

    /// Two row groups of a string, a nullable int and a decimal column.
    fn file(compression: Compression) -> Vec<u8> {
        let schema = parse_message_type(
            "message m { required binary s (STRING); optional int32 n; required int32 d (DECIMAL(5,3)); }",
        )
        .unwrap();
        let props = WriterProperties::builder()
            .set_compression(compression)
            .build();
        let mut out = Vec::new();
        let mut w = SerializedFileWriter::new(&mut out, Arc::new(schema), Arc::new(props)).unwrap();
        for g in 0..2 {
            let mut group = w.next_row_group().unwrap();
            let mut i = 0;
            while let Some(mut c) = group.next_column().unwrap() {
                match i {
                    0 => c.typed::<ByteArrayType>().write_batch(
                        &[format!("g{g}a").as_str().into(), "b".into()],
                        None,
                        None,
                    ),
                    1 => c
                        .typed::<Int32Type>()
                        .write_batch(&[7], Some(&[0, 1]), None),
                    _ => c
                        .typed::<Int32Type>()
                        .write_batch(&[-1, 12_345], None, None),
                }
                .unwrap();
                c.close().unwrap();
                i += 1;
            }
            group.close().unwrap();
        }
        w.close().unwrap();
        out
    }

    /// Every codec this host reads.
    fn codecs() -> [Compression; 4] {
        [
            Compression::UNCOMPRESSED,
            Compression::SNAPPY,
            Compression::GZIP(Default::default()),
            Compression::ZSTD(Default::default()),
        ]
    }

    #[test]
    fn rows_of_every_row_group_in_order() {
        for compression in codecs() {
            let items = rows(&file(compression), all()).unwrap();
            assert_eq!(
                Value::Array(items),
                json!([
                    {"s": "g0a", "n": null, "d": "-0.001"},
                    {"s": "b", "n": 7, "d": "12.345"},
                    {"s": "g1a", "n": null, "d": "-0.001"},
                    {"s": "b", "n": 7, "d": "12.345"},
                ]),
                "{compression}"
            );
        }
    }

    /// Attack: every byte of a file flipped, and every truncation, is read or refused;
    /// none takes the host down (a panic in the crate is caught as a refusal).
    #[test]
    fn a_damaged_file_is_refused_never_a_crash() {
        for compression in codecs() {
            let good = file(compression);
            let mut refused = 0;
            for at in 0..good.len() {
                for flip in [0xff_u8, 0x01, 0x80] {
                    let mut bad = good.clone();
                    bad[at] ^= flip;
                    if rows(&bad, all()).is_err() {
                        refused += 1;
                    }
                }
            }
            assert!(refused > 0, "no flip of {} bytes refused", good.len());
            for len in 0..good.len() {
                let err = rows(&good[..len], all()).unwrap_err();
                assert!(err.0.contains("Parquet"), "{len}: {err}");
            }
        }
    }

    #[test]
    fn hostile_page_headers_are_refused_before_decoding() {
        // uncompressed_page_size 2^31-1: past a row group's bytes.
        let huge = [
            0x15, 0x00, 0x15, 0xfe, 0xff, 0xff, 0xff, 0x0f, 0x15, 0x00, 0x00,
        ];
        let mut inflated = 0;
        let err = pages(&huge, "c", None, &mut inflated).unwrap_err();
        assert!(err.0.contains("decode to over"), "{err}");
        // Statistics with a 2^40-byte max value in a few bytes.
        let stats = [
            0x15, 0x00, 0x15, 0x02, 0x15, 0x02, 0x2c, 0x15, 0x02, 0x15, 0x00, 0x15, 0x00, 0x15,
            0x00, 0x1c, 0x18, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20, 0x00, 0x00, 0x00,
        ];
        let err = pages(&stats, "c", None, &mut inflated).unwrap_err();
        assert!(err.0.contains("runs past its end"), "{err}");
        // A page longer than its chunk.
        let long = [0x15, 0x00, 0x15, 0x02, 0x15, 0x02, 0x00];
        let err = pages(&long, "c", None, &mut inflated).unwrap_err();
        assert!(err.0.contains("runs past the end of its chunk"), "{err}");
        // Nesting past the bound.
        let mut deep = vec![0x1c; 40];
        deep.extend([0x00; 41]);
        assert!(Thrift::new(&deep).value(STRUCT, 0).is_err());
    }

    /// `n` bytes of zeros, gzipped.
    fn gzip(n: usize) -> Vec<u8> {
        use std::io::Write as _;
        let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        w.write_all(&vec![0; n]).unwrap();
        w.finish().unwrap()
    }

    /// Attack: a compressed page expanding past the size it declares is refused once
    /// it has given one byte more; it is streamed, never held. Every gzip member is
    /// read (as the crate reads them): a bomb cannot hide after a small first member.
    #[test]
    fn a_page_decompresses_to_what_it_declares_and_no_more() {
        let mib = 1024 * 1024;
        // 64 members of 1 MiB: 64 MiB of zeros in some 65 KB.
        let bomb = gzip(mib).repeat(64);
        assert!(bomb.len() < 100_000, "{}", bomb.len());
        let err = inflate(Inflate::Gzip, &bomb, 100).unwrap_err();
        assert!(err.contains("more than the 100 bytes"), "{err}");
        let err = inflate(Inflate::Gzip, &bomb, 63 * mib as u64).unwrap_err();
        assert!(err.contains("decompression bomb"), "{err}");
        // What it holds, declared, reads (so the refusals are of the sizes).
        inflate(Inflate::Gzip, &bomb, 64 * mib as u64).unwrap();
        let err = inflate(Inflate::Gzip, &bomb, 64 * mib as u64 + 1).unwrap_err();
        assert!(
            err.contains(&format!("to {} bytes, not the", 64 * mib)),
            "{err}"
        );
        // Corrupt: the deflate data, the CRC, the length, a stream cut short; none a panic.
        let good = gzip(1000);
        inflate(Inflate::Gzip, &good, 1000).unwrap();
        let n = good.len();
        for (at, why) in [(10, "deflate"), (n - 8, "crc"), (n - 1, "length")] {
            let mut bad = good.clone();
            bad[at] ^= 0xff;
            let err = inflate(Inflate::Gzip, &bad, 1000).unwrap_err();
            assert!(err.contains("does not decompress as GZIP"), "{why}: {err}");
        }
        for len in [0, 5, 12, n - 4] {
            assert!(inflate(Inflate::Gzip, &good[..len], 1000).is_err(), "{len}");
        }
    }

    /// A zstd frame of `blocks` RLE blocks of 128 KiB of zeros, 4 bytes each: a ratio
    /// of 32,768 (zstd's own encoder writes such blocks for a run of one byte).
    fn zstd_rle(blocks: u32) -> Vec<u8> {
        // Magic; a header of no content size nor checksum; a window of 2^17 bytes.
        let mut frame = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38];
        for i in 0..blocks {
            // Block header: its size (regenerated, for RLE), type 1 (RLE), last.
            let header = (128 * 1024) << 3 | 1 << 1 | u32::from(i + 1 == blocks);
            frame.extend_from_slice(&header.to_le_bytes()[..3]);
            frame.push(0);
        }
        frame
    }

    /// Attack: the same for ZSTD, whose RLE blocks expand 32,768 times: a megabyte
    /// of them, 32 GiB, is refused one byte past what the page declares (an unbounded
    /// read would take minutes, or the memory). Every frame is read.
    #[test]
    fn a_zstd_page_decompresses_to_what_it_declares_and_no_more() {
        let mib = 1024 * 1024;
        let bomb = zstd_rle(512);
        assert_eq!(bomb.len(), 6 + 4 * 512);
        inflate(Inflate::Zstd, &bomb, 64 * mib).unwrap();
        let err = inflate(Inflate::Zstd, &bomb, 100).unwrap_err();
        assert!(err.contains("more than the 100 bytes"), "{err}");
        let err = inflate(Inflate::Zstd, &bomb, 64 * mib + 1).unwrap_err();
        assert!(
            err.contains(&format!("to {} bytes, not the", 64 * mib)),
            "{err}"
        );
        // A small frame, then the bomb: the second frame is read too.
        let mut hidden = zstd::bulk::compress(b"small", 3).unwrap();
        hidden.extend(&bomb);
        let err = inflate(Inflate::Zstd, &hidden, 5).unwrap_err();
        assert!(err.contains("more than the 5 bytes"), "{err}");
        let huge = zstd_rle(256 * 1024);
        assert_eq!(huge.len(), 6 + mib as usize);
        let err = inflate(Inflate::Zstd, &huge, 64 * mib).unwrap_err();
        assert!(err.contains("decompression bomb"), "{err}");
        // Corrupt: a reserved header bit, a reserved block type, cut short; never a panic.
        let good = zstd::bulk::compress(&[7; 1000], 3).unwrap();
        inflate(Inflate::Zstd, &good, 1000).unwrap();
        let mut reserved = good.clone();
        reserved[4] |= 0x08;
        let mut block = bomb.clone();
        block[6] |= 0x06;
        for bad in [
            reserved,
            block,
            good[..good.len() - 1].to_vec(),
            b"zstd".to_vec(),
        ] {
            let err = inflate(Inflate::Zstd, &bad, 1000).unwrap_err();
            assert!(
                err.contains("does not decompress as ZSTD"),
                "{bad:?}: {err}"
            );
        }
    }

    /// The page walk decompresses each page of a compressed column as the crate does:
    /// a V2 page's levels stay as they are, an uncompressed V2 page is not read, and
    /// all a file's pages count towards [`MAX_INFLATED_BYTES`].
    #[test]
    fn a_compressed_chunk_is_decompressed_page_by_page() {
        // A data page V2 (type 3) of `plain` bytes declared, `levels` of them
        // definition levels, `compressed` or not, then its bytes.
        let page = |plain: u8, levels: u8, compressed: bool, body: &[u8]| {
            let mut p = vec![0x15, 0x06, 0x15, plain << 1, 0x15];
            p.extend(varint(body.len() as u64 * 2));
            // field 8 (delta 5): num_values 1, definition_levels_byte_length (5),
            // is_compressed (7).
            p.extend([0x5c, 0x15, 0x02, 0x45, levels << 1]);
            p.push(if compressed { 0x21 } else { 0x22 });
            p.extend([0x00, 0x00]);
            p.extend(body);
            p
        };
        let mut body = vec![7, 7]; // two bytes of levels
        body.extend(gzip(50));
        let mut inflated = 0;
        let chunk = [page(52, 2, true, &body), page(52, 2, true, &body)].concat();
        assert_eq!(
            pages(&chunk, "c", Some(Inflate::Gzip), &mut inflated).unwrap(),
            104
        );
        assert_eq!(inflated, 100);
        // Declared one byte over or under what the values hold; the levels taken for
        // one byte more or less (the stream then starts elsewhere).
        for (plain, levels, want) in [
            (53, 2, "decompresses to 50 bytes, not the 51"),
            (51, 2, "decompresses to more than the 49 bytes"),
            (52, 3, "does not decompress as GZIP"),
            (52, 1, "does not decompress as GZIP"),
        ] {
            let err = pages(
                &page(plain, levels, true, &body),
                "c",
                Some(Inflate::Gzip),
                &mut 0,
            )
            .unwrap_err();
            assert!(err.0.contains(want), "{plain} {levels}: {err}");
            assert!(
                err.0.contains("column `c` is corrupt: the page at byte 0"),
                "{err}"
            );
        }
        // Levels past the page's size, or past its bytes.
        for (plain, levels) in [(1, 2), (60, 60)] {
            let err = pages(
                &page(plain, levels, true, &body),
                "c",
                Some(Inflate::Gzip),
                &mut 0,
            )
            .unwrap_err();
            assert!(
                err.0.contains("declares levels past its size"),
                "{plain} {levels}: {err}"
            );
        }
        // Not compressed: its bytes are not decompressed (nor could they be).
        let mut inflated = 0;
        pages(
            &page(3, 1, false, &[1, 2, 3]),
            "c",
            Some(Inflate::Gzip),
            &mut inflated,
        )
        .unwrap();
        assert_eq!(inflated, 0);
        // Nothing to decompress (all levels): not read, as the crate does not.
        pages(&page(2, 2, true, &[1, 2]), "c", Some(Inflate::Gzip), &mut 0).unwrap();
        // The file's total: a page past what is left of it is refused unread.
        let mut inflated = MAX_INFLATED_BYTES - 49;
        let err = pages(
            &page(52, 2, true, &body),
            "c",
            Some(Inflate::Gzip),
            &mut inflated,
        )
        .unwrap_err();
        assert!(
            err.0
                .contains("the most this host decompresses for one file"),
            "{err}"
        );
        let mut inflated = MAX_INFLATED_BYTES - 50;
        pages(
            &page(52, 2, true, &body),
            "c",
            Some(Inflate::Gzip),
            &mut inflated,
        )
        .unwrap();
    }

    fn varint(mut v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return out;
            }
            out.push(b | 0x80);
        }
    }

    #[test]
    fn the_schema_tree_is_checked() {
        assert!(schema_depth(&[2, 0, 1, 0]).is_ok());
        for (children, want) in [
            (vec![], "no root"),
            (vec![3, 0], "more children than follow"),
            (vec![1, 0, 0], "more elements than"),
            (vec![1, -1], "negative"),
            (vec![1; 40], "nests over 32"),
        ] {
            let err = schema_depth(&children).unwrap_err();
            assert!(err.0.contains(want), "{children:?}: {err}");
        }
    }

    #[test]
    fn decimals_times_and_floats_render_exactly() {
        let dec = |bytes: &[u8], scale: i32| {
            decimal(&Decimal::from_bytes(bytes.to_vec().into(), 38, scale)).unwrap()
        };
        assert_eq!(dec(&[0x00], 0), "0");
        assert_eq!(dec(&[0x30, 0x39], 2), "123.45");
        assert_eq!(dec(&[0xff, 0xff], 3), "-0.001");
        assert_eq!(dec(&[0x80], 0), "-128");
        // 10^30, past an i64.
        let big = [
            0x0c, 0x9f, 0x2c, 0x9c, 0xd0, 0x46, 0x74, 0xed, 0xea, 0x40, 0x00, 0x00, 0x00,
        ];
        assert_eq!(dec(&big, 30), "1.000000000000000000000000000000");
        assert!(decimal(&Decimal::from_bytes(vec![1; 65].into(), 38, 0)).is_err());
        assert_eq!(time_of_day(49_500_000_001).unwrap(), "13:45:00.000001");
        assert!(time_of_day(-1).is_err());
        assert_eq!(field_value(&Field::Double(f64::NAN)).unwrap(), Value::Null);
        assert!(field_value(&Field::TimestampMillis(i64::MAX)).is_err());
    }
}
