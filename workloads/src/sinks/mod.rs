//! Outputs other than Kafka: the offline feature table (Parquet/CSV) and the raw-frame NDJSON mirror.

pub mod decimal;
pub mod mirror;
pub mod table;
