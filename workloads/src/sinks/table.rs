//! The offline training table as a file: Parquet or CSV, chosen by the file extension.
//!
//! Columns, in order: `product_id` (string); for the training table (one row per evaluated
//! second) `second` (int64, seconds since the Unix epoch); `event_time` (int64, ns since the Unix
//! epoch, UTC, of the feature vector); `segment` (int64); every feature of `FEATURE_NAMES`
//! (float64, null when missing); for the training table the label's `rv_future_60s` and the
//! baselines' `rv_past_60s`, `rv_past_300s`, `rv_past_900s` (float64; docs/features.md,
//! "Label"). In CSV a null is an empty field and floats are written in their shortest
//! round-trip form.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{ArrowColumnChunk, ArrowColumnWriter, compute_leaves};
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::domain::FEATURE_NAMES;
use crate::features::label::SecondLabel;
use crate::features::offline::{Rows, TrainingRow};

/// Rows per Parquet record batch (bounds the memory of the Arrow copy).
const BATCH_ROWS: usize = 65_536;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    Parquet,
    Csv,
}

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("cannot tell the table format of {path}: use a .parquet or .csv file name")]
    UnsupportedExtension { path: PathBuf },
    #[error("cannot write {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("cannot write Parquet file {path}: {source}")]
    Parquet { path: PathBuf, source: parquet::errors::ParquetError },
    #[error("cannot build the Arrow batch: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    #[error("cannot write CSV file {path}: {source}")]
    Csv { path: PathBuf, source: csv::Error },
    #[error("event time {0} does not fit in int64 nanoseconds")]
    EventTime(chrono::DateTime<chrono::Utc>),
}

impl TableFormat {
    /// `.parquet` / `.csv`, case-insensitive.
    pub fn from_path(path: &Path) -> Result<TableFormat, TableError> {
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("parquet") => Ok(TableFormat::Parquet),
            Some("csv") => Ok(TableFormat::Csv),
            _ => Err(TableError::UnsupportedExtension { path: path.to_path_buf() }),
        }
    }
}

/// The label columns of the training table, after the features.
pub const LABEL_COLUMNS: [&str; 4] = ["rv_future_60s", "rv_past_60s", "rv_past_300s", "rv_past_900s"];

/// Column names, in file order.
pub fn column_names(kind: Rows) -> Vec<&'static str> {
    let mut names = vec!["product_id"];
    if kind == Rows::PerSecond {
        names.push("second");
    }
    names.extend(["event_time", "segment"]);
    names.extend(FEATURE_NAMES);
    if kind == Rows::PerSecond {
        names.extend(LABEL_COLUMNS);
    }
    names
}

/// The Arrow schema of the table.
pub fn schema(kind: Rows) -> Schema {
    let mut fields = vec![Field::new("product_id", DataType::Utf8, false)];
    if kind == Rows::PerSecond {
        fields.push(Field::new("second", DataType::Int64, false));
    }
    fields.push(Field::new("event_time", DataType::Int64, false));
    fields.push(Field::new("segment", DataType::Int64, false));
    fields.extend(FEATURE_NAMES.iter().map(|name| Field::new(*name, DataType::Float64, true)));
    if kind == Rows::PerSecond {
        fields.extend(LABEL_COLUMNS.iter().map(|name| Field::new(*name, DataType::Float64, false)));
    }
    Schema::new(fields)
}

/// Writes `rows` to `path` in the format its extension names (the file is replaced).
pub fn write(path: &Path, rows: &[TrainingRow], kind: Rows) -> Result<(), TableError> {
    match TableFormat::from_path(path)? {
        TableFormat::Parquet => write_parquet(path, rows, kind),
        TableFormat::Csv => write_csv(path, rows, kind),
    }
}

/// The label values of a training-table row, in [`LABEL_COLUMNS`] order.
fn label_values(label: &SecondLabel) -> [f64; LABEL_COLUMNS.len()] {
    let [p60, p300, p900] = label.rv_past;
    [label.rv_future_60s, p60, p300, p900]
}

/// A row of the training table without its label: the rows came from the wrong builder.
fn unlabelled() -> TableError {
    TableError::Arrow(arrow_schema::ArrowError::SchemaError("a row of the training table has no label".into()))
}

fn event_time_nanos(row: &TrainingRow) -> Result<i64, TableError> {
    row.event_time.timestamp_nanos_opt().ok_or(TableError::EventTime(row.event_time))
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn record_batch(schema: &Arc<Schema>, rows: &[TrainingRow], kind: Rows) -> Result<RecordBatch, TableError> {
    let times = rows.iter().map(event_time_nanos).collect::<Result<Vec<_>, _>>()?;
    let labels: Vec<&SecondLabel> = match kind {
        Rows::PerSecond => rows.iter().map(|r| r.label.as_ref().ok_or_else(unlabelled)).collect::<Result<_, _>>()?,
        Rows::EveryTick => Vec::new(),
    };
    let mut columns: Vec<ArrayRef> =
        vec![Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.product_id.as_str())))];
    if kind == Rows::PerSecond {
        columns.push(Arc::new(Int64Array::from_iter_values(labels.iter().map(|l| l.second))));
    }
    columns.push(Arc::new(Int64Array::from(times)));
    columns.push(Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| to_i64(r.segment)))));
    for k in 0..FEATURE_NAMES.len() {
        // A missing feature (NaN) is a null.
        columns.push(Arc::new(
            rows.iter().map(|r| Some(r.features.0[k]).filter(|v| !v.is_nan())).collect::<Float64Array>(),
        ));
    }
    if kind == Rows::PerSecond {
        for k in 0..LABEL_COLUMNS.len() {
            columns.push(Arc::new(Float64Array::from_iter_values(labels.iter().map(|l| label_values(l)[k]))));
        }
    }
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// Writes the row groups ArrowWriter would write, with their columns encoded on one thread per
/// available core (a column chunk's bytes depend on that column's values only).
fn write_parquet(path: &Path, rows: &[TrainingRow], kind: Rows) -> Result<(), TableError> {
    let parquet_err = |source| TableError::Parquet { path: path.to_path_buf(), source };
    let file = File::create(path).map_err(|source| TableError::Io { path: path.to_path_buf(), source })?;
    let schema = Arc::new(schema(kind));
    let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
    let group_rows = props.max_row_group_size().max(1);
    let writer = ArrowWriter::try_new(file, schema.clone(), Some(props)).map_err(parquet_err)?;
    let (mut file_writer, row_groups) = writer.into_serialized_writer().map_err(parquet_err)?;
    // The batches within a row group are those ArrowWriter would get: BATCH_ROWS divides the
    // row group size (1,048,576 rows by default), so no batch straddles two groups.
    for (index, group) in rows.chunks(group_rows).enumerate() {
        let columns = row_groups.create_column_writers(index).map_err(parquet_err)?;
        let chunks = encode_columns(path, &schema, columns, group, kind)?;
        let mut row_group = file_writer.next_row_group().map_err(parquet_err)?;
        for chunk in chunks {
            chunk.append_to_row_group(&mut row_group).map_err(parquet_err)?;
        }
        row_group.close().map_err(parquet_err)?;
    }
    file_writer.close().map_err(parquet_err)?;
    Ok(())
}

/// Encodes `rows` into one column chunk per column, in batches of [`BATCH_ROWS`] as ArrowWriter
/// would: this thread builds the batches, one thread per core encodes a share of the columns.
fn encode_columns(
    path: &Path,
    schema: &Arc<Schema>,
    columns: Vec<ArrowColumnWriter>,
    rows: &[TrainingRow],
    kind: Rows,
) -> Result<Vec<ArrowColumnChunk>, TableError> {
    let parquet_err = |source| TableError::Parquet { path: path.to_path_buf(), source };
    let count = columns.len();
    if count != schema.fields().len() {
        // Every column of the table is a flat one: one Parquet leaf per Arrow field.
        return Err(TableError::Arrow(arrow_schema::ArrowError::SchemaError(format!(
            "{count} Parquet columns for {} fields",
            schema.fields().len()
        ))));
    }
    let threads = std::thread::available_parallelism().map_or(1, usize::from).clamp(1, count.max(1));
    // Column `k` goes to thread `k % threads`: the float columns, most of the work, spread evenly.
    let mut shares: Vec<Vec<(usize, ArrowColumnWriter)>> = (0..threads).map(|_| Vec::new()).collect();
    for (k, column) in columns.into_iter().enumerate() {
        shares[k % threads].push((k, column));
    }
    let encoded = std::thread::scope(|scope| {
        let mut batches = Vec::with_capacity(threads);
        let mut encoders = Vec::with_capacity(threads);
        for share in shares {
            let (sender, received) = std::sync::mpsc::sync_channel::<Arc<RecordBatch>>(1);
            batches.push(sender);
            encoders.push(scope.spawn(move || encode_share(share, received)));
        }
        let built = rows.chunks(BATCH_ROWS).try_for_each(|chunk| {
            let batch = Arc::new(record_batch(schema, chunk, kind)?);
            // An encoder that stopped has failed: its error is reported below.
            for sender in &batches {
                let _ = sender.send(Arc::clone(&batch));
            }
            Ok::<(), TableError>(())
        });
        drop(batches);
        let encoded: Vec<_> = encoders
            .into_iter()
            .map(|encoder| encoder.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect();
        built.map(|()| encoded)
    })?;
    let mut chunks: Vec<Option<ArrowColumnChunk>> = (0..count).map(|_| None).collect();
    for share in encoded {
        for (k, chunk) in share.map_err(parquet_err)? {
            chunks[k] = Some(chunk);
        }
    }
    chunks
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| TableError::Arrow(arrow_schema::ArrowError::SchemaError("a column was not encoded".into())))
}

/// Writes every batch's columns of `share` (by column index) and closes them.
fn encode_share(
    mut share: Vec<(usize, ArrowColumnWriter)>,
    batches: std::sync::mpsc::Receiver<Arc<RecordBatch>>,
) -> Result<Vec<(usize, ArrowColumnChunk)>, parquet::errors::ParquetError> {
    for batch in batches {
        for (k, column) in &mut share {
            for leaf in compute_leaves(batch.schema_ref().field(*k), batch.column(*k))? {
                column.write(&leaf)?;
            }
        }
    }
    share.into_iter().map(|(k, column)| column.close().map(|chunk| (k, chunk))).collect()
}

/// Rows formatted at a time by one thread when writing CSV.
const CSV_CHUNK_ROWS: usize = 16_384;

/// Output buffer of the CSV file.
const CSV_BUFFER_BYTES: usize = 1 << 20;

/// Writes the header, then the rows: chunks of them are formatted on one thread per available
/// core, and written in order (a row's text does not depend on the rows around it).
fn write_csv(path: &Path, rows: &[TrainingRow], kind: Rows) -> Result<(), TableError> {
    let io_err = |source| TableError::Io { path: path.to_path_buf(), source };
    let mut file = BufWriter::with_capacity(CSV_BUFFER_BYTES, File::create(path).map_err(io_err)?);
    let mut header = csv_writer(Vec::new());
    header.write_record(column_names(kind)).map_err(|source| TableError::Csv { path: path.to_path_buf(), source })?;
    file.write_all(&csv_text(path, header)?).map_err(io_err)?;
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    for batch in rows.chunks(CSV_CHUNK_ROWS * threads) {
        let texts: Vec<Result<Vec<u8>, TableError>> = std::thread::scope(|scope| {
            let formatting: Vec<_> =
                batch.chunks(CSV_CHUNK_ROWS).map(|chunk| scope.spawn(move || csv_rows(path, chunk, kind))).collect();
            formatting
                .into_iter()
                .map(|thread| thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
                .collect()
        });
        for text in texts {
            file.write_all(&text?).map_err(io_err)?;
        }
    }
    file.flush().map_err(io_err)
}

fn csv_writer(out: Vec<u8>) -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new().from_writer(out)
}

/// The bytes a CSV writer into memory has collected.
fn csv_text(path: &Path, writer: csv::Writer<Vec<u8>>) -> Result<Vec<u8>, TableError> {
    writer.into_inner().map_err(|e| TableError::Io { path: path.to_path_buf(), source: e.into_error() })
}

/// `rows` as CSV records.
fn csv_rows(path: &Path, rows: &[TrainingRow], kind: Rows) -> Result<Vec<u8>, TableError> {
    let csv_err = |source| TableError::Csv { path: path.to_path_buf(), source };
    // About 430 bytes per row on the BTC-USD recording.
    let mut writer = csv_writer(Vec::with_capacity(rows.len() * 448));
    // Every field is formatted into one reused buffer (as `to_string` would write it, without
    // allocating a string per field); floats by `decimal::push_f64`, the same text as `Display`.
    let mut field = String::with_capacity(32);
    let mut put = |writer: &mut csv::Writer<_>, value: &dyn std::fmt::Display| {
        field.clear();
        write!(field, "{value}").expect("formatting into a String cannot fail");
        writer.write_field(&field)
    };
    let mut number = Vec::with_capacity(32);
    let mut put_f64 = |writer: &mut csv::Writer<_>, value: f64| {
        number.clear();
        super::decimal::push_f64(&mut number, value);
        writer.write_field(&number)
    };
    for row in rows {
        let label = match kind {
            Rows::PerSecond => Some(row.label.as_ref().ok_or_else(unlabelled)?),
            Rows::EveryTick => None,
        };
        writer.write_field(&row.product_id).map_err(csv_err)?;
        if let Some(label) = label {
            put(&mut writer, &label.second).map_err(csv_err)?;
        }
        put(&mut writer, &event_time_nanos(row)?).map_err(csv_err)?;
        put(&mut writer, &row.segment).map_err(csv_err)?;
        for value in row.features.to_array() {
            // A missing feature (NaN) is an empty field.
            if value.is_nan() { writer.write_field("") } else { put_f64(&mut writer, value) }.map_err(csv_err)?;
        }
        if let Some(label) = label {
            for value in label_values(label) {
                put_f64(&mut writer, value).map_err(csv_err)?;
            }
        }
        writer.write_record(None::<&[u8]>).map_err(csv_err)?;
    }
    csv_text(path, writer)
}
