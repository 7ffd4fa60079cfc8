//! Compaction: merges the live files of one table partition into one file, committed
//! atomically (one commit adds the merged file and removes the old ones), so readers
//! see either the old files or the new one, never both or neither.
//!
//! Must never: change, drop or duplicate a row, delete the old files (gc does that after
//! its grace age, so a reader still holding the old list keeps working), or commit a
//! merge whose inputs another writer already removed.

use arrow::array::RecordBatch;
use object_store::path::Path;
use object_store::ObjectStoreExt;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::reader::ChunkReader;

use super::manifest::{self, FileEntry};
use super::schema::Table;
use super::{writer, Warehouse, WarehouseError, MAX_COMMIT_ATTEMPTS};

/// What [`Warehouse::compact`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct CompactOutcome {
    /// Files taken out of the manifest (still on disk until gc).
    pub removed: Vec<String>,
    /// The merged file; `None` when there was nothing to merge (fewer than two files).
    pub added: Option<FileEntry>,
    pub sequence: Option<u64>,
}

impl Warehouse {
    /// The distinct partitions (`date=…/sweep=…`) holding live files of `table`.
    pub async fn partitions(&self, table: Table) -> Result<Vec<String>, WarehouseError> {
        let mut partitions: Vec<String> =
            self.live_files(table).await?.iter().filter_map(|f| partition_of(&f.path).map(str::to_string)).collect();
        partitions.dedup();
        Ok(partitions)
    }

    /// Merges the live files of `table` in `partition` (as [`Warehouse::partitions`]
    /// spells it) into one.
    pub async fn compact(&self, table: Table, partition: &str) -> Result<CompactOutcome, WarehouseError> {
        let inputs: Vec<FileEntry> =
            self.live_files(table).await?.into_iter().filter(|f| partition_of(&f.path) == Some(partition)).collect();
        if inputs.len() < 2 {
            return Ok(CompactOutcome { removed: Vec::new(), added: None, sequence: None });
        }
        let mut batches = Vec::new();
        for input in &inputs {
            batches.extend(self.read_file(table, input).await?);
        }
        let merged =
            writer::write_file(self.store.as_ref(), table, partition, table.schema(), batches.into_iter().map(Ok))
                .await?;
        let removed: Vec<String> = inputs.iter().map(|f| f.path.clone()).collect();
        let mut state = self.state.lock().await;
        for _ in 0..MAX_COMMIT_ATTEMPTS {
            manifest::refresh(self.store.as_ref(), &mut state).await?;
            if !removed.iter().all(|p| state.live.contains_key(p)) {
                // Another compaction got there first: ours is garbage now.
                writer::delete_quietly(self.store.as_ref(), std::slice::from_ref(&merged)).await;
                return Ok(CompactOutcome { removed: Vec::new(), added: None, sequence: None });
            }
            let commit = manifest::commit(
                self.store.as_ref(),
                self.local_root.as_deref(),
                &mut state,
                vec![merged.clone()],
                removed.clone(),
                Vec::new(),
            );
            if let Some(sequence) = commit.await? {
                return Ok(CompactOutcome { removed, added: Some(merged), sequence: Some(sequence) });
            }
        }
        Err(WarehouseError::CommitContention { n_attempts: MAX_COMMIT_ATTEMPTS })
    }

    /// Reads one data file into batches of `table`'s current schema.
    pub async fn read_file(&self, table: Table, file: &FileEntry) -> Result<Vec<RecordBatch>, WarehouseError> {
        let path = Path::from(file.path.as_str());
        let store_err = |source| WarehouseError::Store { op: "get", path: file.path.clone(), source };
        let bytes = self.store.get(&path).await.map_err(store_err)?.bytes().await.map_err(store_err)?;
        let label = file.path.clone();
        tokio::task::spawn_blocking(move || decode(table, &label, bytes)).await?
    }
}

fn decode(table: Table, path: &str, bytes: impl ChunkReader + 'static) -> Result<Vec<RecordBatch>, WarehouseError> {
    let parquet_err = |source| WarehouseError::Parquet { path: path.to_string(), source };
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(parquet_err)?.build().map_err(parquet_err)?;
    let mut batches = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|source| WarehouseError::Arrow { table: table.as_str(), source })?;
        batches.push(to_current_schema(table, &batch)?);
    }
    Ok(batches)
}

/// `batch` re-typed against the table's current schema, column by name: a nullable
/// column added since the file was written (`results.device`) reads as null; anything
/// else that differs refuses the file instead of merging it into one that lies about
/// its columns.
fn to_current_schema(table: Table, batch: &RecordBatch) -> Result<RecordBatch, WarehouseError> {
    let schema = table.schema();
    let arrow_err = |source| WarehouseError::Arrow { table: table.as_str(), source };
    let columns = schema
        .fields()
        .iter()
        .map(|field| match batch.schema().index_of(field.name()) {
            Ok(i) => Ok(batch.column(i).clone()),
            Err(_) if field.is_nullable() => Ok(arrow::array::new_null_array(field.data_type(), batch.num_rows())),
            Err(e) => Err(arrow_err(e)),
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(schema, columns).map_err(arrow_err)
}

/// `date=…/sweep=…` of `<table>/date=…/sweep=…/<file>.parquet`.
fn partition_of(path: &str) -> Option<&str> {
    let (_table, rest) = path.split_once('/')?;
    let (partition, _file) = rest.rsplit_once('/')?;
    Some(partition)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_partition_is_what_sits_between_table_and_file() {
        assert_eq!(partition_of("results/date=2025-03-05/sweep=s/x.parquet"), Some("date=2025-03-05/sweep=s"));
        assert_eq!(partition_of("agents/date=2025-03-05/x.parquet"), Some("date=2025-03-05"));
        assert_eq!(partition_of("x.parquet"), None);
    }
}
