//! The offline training table as a file: Parquet or CSV, chosen by the file extension.
//!
//! Columns, in order: `product_id` (string), `event_time` (int64, ns since the Unix epoch, UTC),
//! `segment` (int64), the 14 `FEATURE_NAMES` (float64), `future_volatility_60s` (float64, null
//! when the future window is incomplete), `future_window_complete` (bool), `future_tick_count`
//! (int64). In CSV a null is an empty field and floats are written in their shortest
//! round-trip form.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::domain::FEATURE_NAMES;
use crate::features::offline::TrainingRow;

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

/// Column names, in file order.
pub fn column_names() -> Vec<&'static str> {
    let mut names = vec!["product_id", "event_time", "segment"];
    names.extend(FEATURE_NAMES);
    names.extend(["future_volatility_60s", "future_window_complete", "future_tick_count"]);
    names
}

/// The Arrow schema of the table.
pub fn schema() -> Schema {
    let mut fields = vec![
        Field::new("product_id", DataType::Utf8, false),
        Field::new("event_time", DataType::Int64, false),
        Field::new("segment", DataType::Int64, false),
    ];
    fields.extend(FEATURE_NAMES.iter().map(|name| Field::new(*name, DataType::Float64, false)));
    fields.push(Field::new("future_volatility_60s", DataType::Float64, true));
    fields.push(Field::new("future_window_complete", DataType::Boolean, false));
    fields.push(Field::new("future_tick_count", DataType::Int64, false));
    Schema::new(fields)
}

/// Writes `rows` to `path` in the format its extension names (the file is replaced).
pub fn write(path: &Path, rows: &[TrainingRow]) -> Result<(), TableError> {
    match TableFormat::from_path(path)? {
        TableFormat::Parquet => write_parquet(path, rows),
        TableFormat::Csv => write_csv(path, rows),
    }
}

fn event_time_nanos(row: &TrainingRow) -> Result<i64, TableError> {
    row.event_time.timestamp_nanos_opt().ok_or(TableError::EventTime(row.event_time))
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn record_batch(schema: &Arc<Schema>, rows: &[TrainingRow]) -> Result<RecordBatch, TableError> {
    let times = rows.iter().map(event_time_nanos).collect::<Result<Vec<_>, _>>()?;
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.product_id.as_str()))),
        Arc::new(Int64Array::from(times)),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| to_i64(r.segment)))),
    ];
    let features: Vec<[f64; FEATURE_NAMES.len()]> = rows.iter().map(|r| r.features.to_array()).collect();
    for k in 0..FEATURE_NAMES.len() {
        columns.push(Arc::new(Float64Array::from_iter_values(features.iter().map(|f| f[k]))));
    }
    columns.push(Arc::new(rows.iter().map(|r| r.future_volatility_60s).collect::<Float64Array>()));
    columns.push(Arc::new(rows.iter().map(|r| Some(r.future_window_complete)).collect::<BooleanArray>()));
    columns.push(Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| to_i64(r.future_tick_count)))));
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

fn write_parquet(path: &Path, rows: &[TrainingRow]) -> Result<(), TableError> {
    let parquet_err = |source| TableError::Parquet { path: path.to_path_buf(), source };
    let file = File::create(path).map_err(|source| TableError::Io { path: path.to_path_buf(), source })?;
    let schema = Arc::new(schema());
    let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
    let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(props)).map_err(parquet_err)?;
    for chunk in rows.chunks(BATCH_ROWS) {
        writer.write(&record_batch(&schema, chunk)?).map_err(parquet_err)?;
    }
    writer.close().map_err(parquet_err)?;
    Ok(())
}

/// Output buffer of the CSV writer.
const CSV_BUFFER_BYTES: usize = 1 << 20;

fn write_csv(path: &Path, rows: &[TrainingRow]) -> Result<(), TableError> {
    let csv_err = |source| TableError::Csv { path: path.to_path_buf(), source };
    let io_err = |source| TableError::Io { path: path.to_path_buf(), source };
    let file = File::create(path).map_err(io_err)?;
    let mut writer = csv::WriterBuilder::new()
        .buffer_capacity(CSV_BUFFER_BYTES)
        .from_writer(BufWriter::with_capacity(CSV_BUFFER_BYTES, file));
    writer.write_record(column_names()).map_err(csv_err)?;
    // Every field is formatted into one reused buffer (`Display`, as `to_string` would, without
    // allocating a string per field).
    let mut field = String::with_capacity(32);
    let mut put = |writer: &mut csv::Writer<_>, value: &dyn std::fmt::Display| {
        field.clear();
        write!(field, "{value}").expect("formatting into a String cannot fail");
        writer.write_field(&field)
    };
    for row in rows {
        writer.write_field(&row.product_id).map_err(csv_err)?;
        put(&mut writer, &event_time_nanos(row)?).map_err(csv_err)?;
        put(&mut writer, &row.segment).map_err(csv_err)?;
        for value in row.features.to_array() {
            put(&mut writer, &value).map_err(csv_err)?;
        }
        match row.future_volatility_60s {
            Some(value) => put(&mut writer, &value),
            None => writer.write_field(""),
        }
        .map_err(csv_err)?;
        put(&mut writer, &row.future_window_complete).map_err(csv_err)?;
        put(&mut writer, &row.future_tick_count).map_err(csv_err)?;
        writer.write_record(None::<&[u8]>).map_err(csv_err)?;
    }
    let mut inner = writer.into_inner().map_err(|e| io_err(e.into_error()))?;
    inner.flush().map_err(io_err)
}
