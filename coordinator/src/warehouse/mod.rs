//! The warehouse: Parquet files in an object store (a local folder by default) plus a
//! manifest of committed files, which is what readers see.
//!
//! Layout of a warehouse root:
//! - `<table>/date=YYYY-MM-DD/sweep=<id>/<uuid v7>.parquet`: data files, Hive style
//!   (`agents` has no sweep level). See [`schema`] and docs/SCHEMA.md.
//! - `_manifest/<20-digit sequence>.json`: commits, created put-if-absent. The live files
//!   are those the commits add and do not later remove. See [`manifest`].
//! - `_checkpoint/<20-digit sequence>.json`: the state after that commit, so a reader
//!   need not replay every commit.
//!
//! Modules: [`store`] opens the object store, [`schema`] converts records to Arrow,
//! [`writer`] writes Parquet files (uncommitted), [`manifest`] commits them
//! ([`durable`] fsyncs a local folder's files before the commit names them), [`gc`]
//! removes what no commit lists, [`compact`] merges small files, [`sync`] gives DuckDB
//! local copies.
//!
//! Must never: make a file visible before its commit, store a result key twice, delete
//! a committed file outside a commit that removes it, or let imported and generated rows
//! pass for measured ones.

pub mod compact;
pub mod durable;
pub mod file;
pub mod gc;
pub mod manifest;
pub mod schema;
pub mod staged;
pub mod store;
pub mod sync;
pub mod writer;

#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod testutil;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use object_store::ObjectStore;
use shared::result::ResultRecord;
use tokio::sync::Mutex;

use manifest::{FileEntry, ManifestState};
use schema::{Origin, ResultKey, Table};

/// Everything that can go wrong in the warehouse, each naming the object or input.
#[derive(Debug, thiserror::Error)]
pub enum WarehouseError {
    #[error("cannot open warehouse {location}: {reason}")]
    Open { location: String, reason: String },
    #[error("object store {op} {path}: {source}")]
    Store {
        op: &'static str,
        path: String,
        #[source]
        source: object_store::Error,
    },
    #[error("building {table} batch: {source}")]
    Arrow {
        table: &'static str,
        #[source]
        source: arrow::error::ArrowError,
    },
    #[error("parquet {path}: {source}")]
    Parquet {
        path: String,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error("corrupt manifest object {path}: {reason}")]
    CorruptManifest { path: String, reason: String },
    #[error("result {cell_key}: weights_source `{weights_source}` does not fit origin `{origin}`")]
    OriginMismatch { cell_key: String, weights_source: String, origin: &'static str },
    #[error("result {cell_key}: {field} is {value_ms} ms, not a representable time")]
    InvalidTimestamp { cell_key: String, field: &'static str, value_ms: i64 },
    #[error("too many records in one batch: {n_records}")]
    TooManyRecords { n_records: usize },
    #[error("gave up committing after {n_attempts} conflicting commits")]
    CommitContention { n_attempts: u32 },
    #[error("local cache {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("background task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// What [`Warehouse::write_results`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteOutcome {
    /// Records stored by this call.
    pub new: usize,
    /// Records whose key was already committed (or repeated within the call): not stored.
    pub duplicate: usize,
    /// The files committed (results and samples); empty when nothing was new.
    pub files: Vec<FileEntry>,
    /// The manifest sequence of the commit; `None` when nothing was new.
    pub sequence: Option<u64>,
}

/// An opened warehouse. Cheap to share behind an `Arc`; writers in one process are
/// serialised by its lock, writers in different processes by put-if-absent commits.
pub struct Warehouse {
    store: Arc<dyn ObjectStore>,
    local_root: Option<PathBuf>,
    /// The manifest as of the last commit this process saw; refreshed before each use.
    state: Mutex<ManifestState>,
}

/// How many times a commit is retried when another writer took its sequence number.
const MAX_COMMIT_ATTEMPTS: u32 = 64;

impl Warehouse {
    /// Opens a warehouse at a folder path or a URL (`file://`, `s3://`, `gs://`, `az://`).
    pub async fn open(location: &str) -> Result<Warehouse, WarehouseError> {
        let opened = store::open(location)?;
        Ok(Warehouse::from_store(opened.store, opened.local_root))
    }

    /// A warehouse over an existing store; `local_root` is its folder when it is local.
    pub fn from_store(store: Arc<dyn ObjectStore>, local_root: Option<PathBuf>) -> Warehouse {
        Warehouse { store, local_root, state: Mutex::new(ManifestState::default()) }
    }

    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The warehouse folder when it is on this machine.
    pub fn local_root(&self) -> Option<&std::path::Path> {
        self.local_root.as_deref()
    }

    /// Stores `records` exactly once each: keys already committed are skipped, the rest
    /// are written as Parquet and then committed in one atomic commit. When this returns
    /// `Ok`, the new records are durable and visible; it is safe to ack them.
    pub async fn write_results(
        &self,
        records: &[ResultRecord],
        origin: Origin,
    ) -> Result<WriteOutcome, WarehouseError> {
        check_origin(records, origin)?;
        let mut state = self.state.lock().await;
        for _ in 0..MAX_COMMIT_ATTEMPTS {
            manifest::refresh(self.store.as_ref(), &mut state).await?;
            let (fresh, duplicate) = dedup(records, &state.result_keys);
            if fresh.is_empty() {
                return Ok(WriteOutcome { new: 0, duplicate, files: Vec::new(), sequence: None });
            }
            let files = writer::stage_results(self.store.as_ref(), &fresh, origin).await?;
            let keys: Vec<ResultKey> = fresh.iter().map(|r| ResultKey::of(r)).collect();
            match manifest::commit(
                self.store.as_ref(),
                self.local_root.as_deref(),
                &mut state,
                files.clone(),
                Vec::new(),
                keys,
            )
            .await?
            {
                Some(sequence) => {
                    return Ok(WriteOutcome { new: fresh.len(), duplicate, files, sequence: Some(sequence) })
                }
                // Another writer took the sequence and may have stored some of these
                // keys: drop the staged files and decide again from the newer state.
                None => writer::delete_quietly(self.store.as_ref(), &files).await,
            }
        }
        Err(WarehouseError::CommitContention { n_attempts: MAX_COMMIT_ATTEMPTS })
    }

    /// Writes rows of one of the small tables and commits them. These tables are
    /// append-only logs: the newest row of an id wins, readers decide.
    pub async fn write_agents(&self, rows: &[schema::AgentRow]) -> Result<WriteOutcome, WarehouseError> {
        let staged = writer::stage_agents(self.store.as_ref(), rows).await?;
        self.commit_files(staged, rows.len()).await
    }

    pub async fn write_calibrations(&self, rows: &[schema::CalibrationRow]) -> Result<WriteOutcome, WarehouseError> {
        let staged = writer::stage_calibrations(self.store.as_ref(), rows).await?;
        self.commit_files(staged, rows.len()).await
    }

    pub async fn write_sweeps(&self, rows: &[schema::SweepRow]) -> Result<WriteOutcome, WarehouseError> {
        let staged = writer::stage_sweeps(self.store.as_ref(), rows).await?;
        self.commit_files(staged, rows.len()).await
    }

    pub async fn write_cells(&self, rows: &[schema::CellRow]) -> Result<WriteOutcome, WarehouseError> {
        let staged = writer::stage_cells(self.store.as_ref(), rows).await?;
        self.commit_files(staged, rows.len()).await
    }

    /// Commits a batch of `alarms` rows (one file, partitioned by the day they were
    /// found), as `accelbench regressions --record` makes them.
    pub async fn write_alarms(
        &self,
        batch: arrow::array::RecordBatch,
        detected_at_ms: i64,
    ) -> Result<WriteOutcome, WarehouseError> {
        self.write_derived(Table::Alarms, batch, detected_at_ms, "detected_at").await
    }

    /// Commits a batch of `predictions` rows, as `accelbench predict` makes them.
    pub async fn write_predictions(
        &self,
        rows: &[schema::PredictionRow],
        predicted_at_ms: i64,
    ) -> Result<WriteOutcome, WarehouseError> {
        self.write_derived(Table::Predictions, schema::predictions_batch(rows)?, predicted_at_ms, "predicted_at").await
    }

    /// One file of a derived table (answers, not measurements), in the partition of the
    /// day `at_ms` (the time column `field`) falls on.
    async fn write_derived(
        &self,
        table: Table,
        batch: arrow::array::RecordBatch,
        at_ms: i64,
        field: &'static str,
    ) -> Result<WriteOutcome, WarehouseError> {
        let n_rows = batch.num_rows();
        if n_rows == 0 {
            return self.commit_files(Vec::new(), 0).await;
        }
        let date = writer::utc_date(at_ms).ok_or(WarehouseError::InvalidTimestamp {
            cell_key: String::new(),
            field,
            value_ms: at_ms,
        })?;
        let partition = writer::Partition { date, sweep: None }.path_segment();
        let file = writer::write_file(self.store.as_ref(), table, &partition, table.schema(), [Ok(batch)]).await?;
        self.commit_files(vec![file], n_rows).await
    }

    async fn commit_files(&self, files: Vec<FileEntry>, n_rows: usize) -> Result<WriteOutcome, WarehouseError> {
        if files.is_empty() {
            return Ok(WriteOutcome { new: 0, duplicate: 0, files, sequence: None });
        }
        let mut state = self.state.lock().await;
        for _ in 0..MAX_COMMIT_ATTEMPTS {
            manifest::refresh(self.store.as_ref(), &mut state).await?;
            // No keys to clash on: a lost race only needs the next sequence number.
            if let Some(sequence) = manifest::commit(
                self.store.as_ref(),
                self.local_root.as_deref(),
                &mut state,
                files.clone(),
                Vec::new(),
                Vec::new(),
            )
            .await?
            {
                return Ok(WriteOutcome { new: n_rows, duplicate: 0, files, sequence: Some(sequence) });
            }
        }
        Err(WarehouseError::CommitContention { n_attempts: MAX_COMMIT_ATTEMPTS })
    }

    /// The committed files of `table`, sorted by path.
    pub async fn live_files(&self, table: Table) -> Result<Vec<FileEntry>, WarehouseError> {
        let mut state = self.state.lock().await;
        manifest::refresh(self.store.as_ref(), &mut state).await?;
        Ok(state.live_files(table).cloned().collect())
    }

    /// Whether a result with this key is committed.
    pub async fn is_committed(&self, key: &ResultKey) -> Result<bool, WarehouseError> {
        let mut state = self.state.lock().await;
        manifest::refresh(self.store.as_ref(), &mut state).await?;
        Ok(state.result_keys.contains(key))
    }
}

/// Refuses a batch whose provenance contradicts `origin`: an imported row written as
/// measured (or the reverse) would be a lie nobody could detect later.
fn check_origin(records: &[ResultRecord], origin: Origin) -> Result<(), WarehouseError> {
    for record in records {
        let says_imported = record.provenance.weights_source.starts_with("imported:");
        let fits = match origin {
            Origin::Measured => !says_imported,
            Origin::Imported => says_imported,
            Origin::LoadTest => !says_imported,
        };
        if !fits {
            return Err(WarehouseError::OriginMismatch {
                cell_key: record.cell_key.clone(),
                weights_source: record.provenance.weights_source.clone(),
                origin: origin.as_str(),
            });
        }
    }
    Ok(())
}

/// The records whose key is neither committed nor repeated earlier in `records`, and
/// how many were left out.
fn dedup<'a>(records: &'a [ResultRecord], committed: &HashSet<ResultKey>) -> (Vec<&'a ResultRecord>, usize) {
    let mut seen = HashSet::new();
    let fresh: Vec<&ResultRecord> = records
        .iter()
        .filter(|r| {
            let key = ResultKey::of(r);
            !committed.contains(&key) && seen.insert(key)
        })
        .collect();
    let duplicate = records.len() - fresh.len();
    (fresh, duplicate)
}
