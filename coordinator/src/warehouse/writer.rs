//! Writing Parquet files (zstd) at Hive-partitioned paths. This is the *staging* step:
//! a file written here is invisible until [`super::manifest::commit`] lists it, and is
//! garbage for [`super::gc`] if that never happens.
//!
//! Must never: overwrite an existing object (every file gets a fresh UUIDv7 name), write
//! to `_manifest/`, or encode Parquet on an async worker thread (encoding runs in
//! `spawn_blocking`).

use std::collections::BTreeMap;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use chrono::{DateTime, NaiveDate};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use shared::result::ResultRecord;

use super::manifest::FileEntry;
use super::schema::{self, AgentRow, CellRow, Origin, SweepRow, Table};
use super::WarehouseError;

/// Samples per Arrow batch handed to the encoder: bounds memory for huge writes.
const SAMPLES_PER_BATCH: usize = 1 << 20;

/// A Hive partition: `date=YYYY-MM-DD[/sweep=<value>]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Partition {
    pub date: NaiveDate,
    /// `None` for tables without a sweep level (`agents`).
    pub sweep: Option<String>,
}

impl Partition {
    /// The partition of a result: its start date (UTC) and its sweep. A record with no
    /// sweep goes to `sweep=local` when measured and `sweep=<origin>` otherwise, so
    /// imported and load-test rows also sit apart on disk.
    pub fn of_result(record: &ResultRecord, origin: Origin) -> Result<Partition, WarehouseError> {
        let date = utc_date(record.provenance.started_at_ms).ok_or_else(|| WarehouseError::InvalidTimestamp {
            cell_key: record.cell_key.clone(),
            field: "provenance.started_at_ms",
            value_ms: record.provenance.started_at_ms,
        })?;
        let sweep = match (&record.sweep_id, origin) {
            (Some(id), _) => id.clone(),
            (None, Origin::Measured) => "local".to_string(),
            (None, other) => other.as_str().to_string(),
        };
        Ok(Partition { date, sweep: Some(sweep) })
    }

    /// The path segments under the table folder.
    pub fn path_segment(&self) -> String {
        let date = self.date.format("%Y-%m-%d");
        match &self.sweep {
            Some(sweep) => format!("date={date}/sweep={}", path_safe(sweep)),
            None => format!("date={date}"),
        }
    }
}

/// The UTC calendar date of a Unix-milliseconds time.
pub fn utc_date(ms: i64) -> Option<NaiveDate> {
    DateTime::from_timestamp_millis(ms).map(|t| t.date_naive())
}

/// Keeps a partition value to characters every store and Hive reader accepts; sweep
/// ids (UUIDs) pass unchanged.
fn path_safe(value: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let cleaned: String = value.chars().map(|c| if safe(c) { c } else { '_' }).collect();
    if cleaned.is_empty() || cleaned.starts_with('.') {
        format!("_{cleaned}")
    } else {
        cleaned
    }
}

/// A new, unique object path for one file of `table` in `partition`.
pub fn new_file_path(table: Table, partition: &str) -> Path {
    Path::from(format!("{}/{partition}/{}.parquet", table.as_str(), uuid::Uuid::now_v7()))
}

fn writer_properties() -> WriterProperties {
    WriterProperties::builder().set_compression(Compression::ZSTD(ZstdLevel::default())).build()
}

/// Encodes `batches` into one Parquet file and puts it at a fresh path.
pub async fn write_file(
    store: &dyn ObjectStore,
    table: Table,
    partition: &str,
    schema: SchemaRef,
    batches: impl IntoIterator<Item = Result<RecordBatch, WarehouseError>>,
) -> Result<FileEntry, WarehouseError> {
    let path = new_file_path(table, partition);
    let parquet_err = |source| WarehouseError::Parquet { path: path.to_string(), source };
    let mut writer = ArrowWriter::try_new(Vec::new(), schema, Some(writer_properties())).map_err(parquet_err)?;
    let mut rows = 0u64;
    for batch in batches {
        let batch = batch?;
        rows += batch.num_rows() as u64;
        // Encoding is CPU work (zstd): off the async threads, one batch at a time.
        writer =
            tokio::task::spawn_blocking(move || writer.write(&batch).map(|()| writer)).await?.map_err(parquet_err)?;
    }
    let bytes = tokio::task::spawn_blocking(move || writer.into_inner()).await?.map_err(parquet_err)?;
    let n_bytes = bytes.len() as u64;
    store.put(&path, PutPayload::from(bytes)).await.map_err(|source| WarehouseError::Store {
        op: "put",
        path: path.to_string(),
        source,
    })?;
    Ok(FileEntry { path: path.to_string(), table, rows, bytes: n_bytes })
}

/// Writes the `results` and `samples` files of `records` (one of each per partition)
/// without committing them: the lower half of [`super::Warehouse::write_results`].
pub async fn stage_results(
    store: &dyn ObjectStore,
    records: &[&ResultRecord],
    origin: Origin,
) -> Result<Vec<FileEntry>, WarehouseError> {
    let mut by_partition: BTreeMap<Partition, Vec<&ResultRecord>> = BTreeMap::new();
    for record in records {
        by_partition.entry(Partition::of_result(record, origin)?).or_default().push(record);
    }
    let mut files = Vec::new();
    for (partition, group) in by_partition {
        let segment = partition.path_segment();
        let results = [schema::results_batch(&group, origin)];
        let results = write_file(store, Table::Results, &segment, schema::results_schema(), results);
        if group.iter().any(|r| !r.samples_ns.is_empty()) {
            // The two files are independent: encode and write them side by side.
            let batches = sample_chunks(&group).map(schema::samples_batch);
            let samples = write_file(store, Table::Samples, &segment, schema::samples_schema(), batches);
            let (results, samples) = futures::future::try_join(results, samples).await?;
            files.extend([results, samples]);
        } else {
            files.push(results.await?);
        }
    }
    Ok(files)
}

/// Consecutive runs of `records` holding at most [`SAMPLES_PER_BATCH`] samples each
/// (a single larger record makes a run of its own).
fn sample_chunks<'a, 'r>(records: &'a [&'r ResultRecord]) -> impl Iterator<Item = &'a [&'r ResultRecord]> {
    let mut start = 0;
    std::iter::from_fn(move || {
        if start >= records.len() {
            return None;
        }
        let mut end = start;
        let mut n_samples = 0;
        while end < records.len() && (end == start || n_samples + records[end].samples_ns.len() <= SAMPLES_PER_BATCH) {
            n_samples += records[end].samples_ns.len();
            end += 1;
        }
        let chunk = &records[start..end];
        start = end;
        Some(chunk)
    })
}

/// Stages `agents` rows, one file per day of `last_seen_at`.
pub async fn stage_agents(store: &dyn ObjectStore, rows: &[AgentRow]) -> Result<Vec<FileEntry>, WarehouseError> {
    let by_day = group_rows(rows, |r| (r.last_seen_at_ms, None))?;
    let mut files = Vec::new();
    for (partition, group) in by_day {
        let batch = [schema::agents_batch(&group)];
        files.push(write_file(store, Table::Agents, &partition.path_segment(), schema::agents_schema(), batch).await?);
    }
    Ok(files)
}

/// Stages `calibrations` rows, one file per day they were measured.
pub async fn stage_calibrations(
    store: &dyn ObjectStore,
    rows: &[schema::CalibrationRow],
) -> Result<Vec<FileEntry>, WarehouseError> {
    let by_day = group_rows(rows, |r| (r.calibration.measured_at_ms, None))?;
    let mut files = Vec::new();
    for (partition, group) in by_day {
        let batch = [schema::calibrations_batch(&group)];
        let segment = partition.path_segment();
        files.push(write_file(store, Table::Calibrations, &segment, schema::calibrations_schema(), batch).await?);
    }
    Ok(files)
}

pub async fn stage_sweeps(store: &dyn ObjectStore, rows: &[SweepRow]) -> Result<Vec<FileEntry>, WarehouseError> {
    let groups = group_rows(rows, |r| (r.submitted_at_ms, Some(r.sweep_id.clone())))?;
    let mut files = Vec::new();
    for (partition, group) in groups {
        let batch = [schema::sweeps_batch(&group)];
        files.push(write_file(store, Table::Sweeps, &partition.path_segment(), schema::sweeps_schema(), batch).await?);
    }
    Ok(files)
}

pub async fn stage_cells(store: &dyn ObjectStore, rows: &[CellRow]) -> Result<Vec<FileEntry>, WarehouseError> {
    let groups = group_rows(rows, |r| (r.updated_at_ms, Some(r.sweep_id.clone())))?;
    let mut files = Vec::new();
    for (partition, group) in groups {
        let batch = [schema::cells_batch(&group)];
        files.push(write_file(store, Table::Cells, &partition.path_segment(), schema::cells_schema(), batch).await?);
    }
    Ok(files)
}

/// Groups rows by the partition of their (time, sweep).
fn group_rows<T: Clone>(
    rows: &[T],
    key: impl Fn(&T) -> (i64, Option<String>),
) -> Result<BTreeMap<Partition, Vec<T>>, WarehouseError> {
    let mut groups: BTreeMap<Partition, Vec<T>> = BTreeMap::new();
    for row in rows {
        let (ms, sweep) = key(row);
        let date = utc_date(ms).ok_or_else(|| WarehouseError::InvalidTimestamp {
            cell_key: sweep.clone().unwrap_or_default(),
            field: "row time",
            value_ms: ms,
        })?;
        groups.entry(Partition { date, sweep }).or_default().push(row.clone());
    }
    Ok(groups)
}

/// Deletes staged files after a lost commit race. Failures are left to gc: these files
/// are uncommitted, so leaving them costs only space.
pub async fn delete_quietly(store: &dyn ObjectStore, files: &[FileEntry]) {
    for file in files {
        let _ = store.delete(&Path::from(file.path.as_str())).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::warehouse::testutil::record;

    #[test]
    fn results_partition_by_utc_start_date_and_sweep() {
        let mut r = record("0190-sweep", "k", 1, &[1.0]);
        r.provenance.started_at_ms = 1_741_204_633_297; // 2025-03-05T19:57:13Z
        let p = Partition::of_result(&r, Origin::Measured).expect("partition");
        assert_eq!(p.path_segment(), "date=2025-03-05/sweep=0190-sweep");
        r.sweep_id = None;
        assert_eq!(
            Partition::of_result(&r, Origin::Measured).expect("p").path_segment(),
            "date=2025-03-05/sweep=local"
        );
        assert_eq!(
            Partition::of_result(&r, Origin::Imported).expect("p").path_segment(),
            "date=2025-03-05/sweep=imported"
        );
    }

    #[test]
    fn odd_sweep_values_are_made_path_safe() {
        assert_eq!(path_safe("a/b:c"), "a_b_c");
        assert_eq!(path_safe(".."), "_..");
        assert_eq!(path_safe(""), "_");
    }

    #[test]
    fn sample_chunks_cover_every_record_once() {
        let big = record("s", "a", 1, &vec![1.0; SAMPLES_PER_BATCH]);
        let small = record("s", "b", 1, &[1.0, 2.0]);
        let records = [&small, &big, &small, &small];
        let chunks: Vec<usize> = sample_chunks(&records).map(<[_]>::len).collect();
        assert_eq!(chunks.iter().sum::<usize>(), 4);
        assert_eq!(chunks, vec![1, 1, 2]);
    }
}
