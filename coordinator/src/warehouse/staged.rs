//! Two-phase writes for the coordinator: stage a result's files, let Raft decide whether
//! the result commits (its fencing epoch must be current), then commit the files to the
//! warehouse manifest, or discard them. Raft's replicated manifest is the authority;
//! [`Warehouse::commit_staged`] is idempotent so that a restart can mirror into the
//! warehouse whatever Raft committed just before a crash.
//!
//! Between staging and the warehouse commit, the staged files are named by an intent
//! object, `_pending/<uuid v7>.json`, written before Raft decides: `gc` never deletes a
//! file an intent names, so files Raft may have committed survive however long the
//! coordinator stays down before its restart mirrors them. The intent is removed once
//! the files are committed or discarded, and all of them after a restart's mirror.

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use shared::result::ResultRecord;

use super::manifest::{self, FileEntry};
use arrow::array::{Array, StringArray, UInt32Array};

use super::schema::{Origin, ResultKey, Table};
use super::{writer, Warehouse, WarehouseError};

/// Where staging intents live.
pub const PENDING_DIR: &str = "_pending";

/// Attempts at winning a manifest sequence number against other writers.
const MAX_ATTEMPTS: u32 = 64;

impl Warehouse {
    /// Writes `records` as Parquet without committing them: invisible to readers until
    /// [`Warehouse::commit_staged`].
    pub async fn stage(&self, records: &[&ResultRecord], origin: Origin) -> Result<Vec<FileEntry>, WarehouseError> {
        writer::stage_results(self.store.as_ref(), records, origin).await
    }

    /// Commits staged files with the result keys they hold; files already live are
    /// skipped, so committing twice is harmless.
    pub async fn commit_staged(&self, files: Vec<FileEntry>, keys: Vec<ResultKey>) -> Result<(), WarehouseError> {
        let mut state = self.state.lock().await;
        for attempt in 0..MAX_ATTEMPTS {
            // The first try trusts the state last seen: sequence numbers are dense, so
            // winning `sequence + 1` proves nobody committed since. Only a lost race pays
            // for a refresh, whose listing grows with the manifest.
            if attempt > 0 {
                manifest::refresh(self.store.as_ref(), &mut state).await?;
            }
            // Live already (a retry, a mirror), or removed by a compaction since: never again.
            let fresh: Vec<FileEntry> = files
                .iter()
                .filter(|f| !state.live.contains_key(&f.path) && !state.removed.contains(&f.path))
                .cloned()
                .collect();
            if fresh.is_empty() {
                return Ok(());
            }
            let keys: Vec<ResultKey> = keys.iter().filter(|k| !state.result_keys.contains(k)).cloned().collect();
            if manifest::commit(self.store.as_ref(), self.local_root.as_deref(), &mut state, fresh, Vec::new(), keys)
                .await?
                .is_some()
            {
                return Ok(());
            }
        }
        Err(WarehouseError::CommitContention { n_attempts: MAX_ATTEMPTS })
    }

    /// Names `files` in a new intent (durably, before Raft is asked): `gc` keeps them until
    /// [`Warehouse::clear_intent`]. Returns the intent's path.
    pub async fn record_intent(&self, files: &[FileEntry]) -> Result<String, WarehouseError> {
        let path = format!("{PENDING_DIR}/{}.json", uuid::Uuid::now_v7());
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        let body = serde_json::to_vec(&paths)
            .map_err(|e| WarehouseError::CorruptManifest { path: path.clone(), reason: e.to_string() })?;
        let location = Path::from(path.as_str());
        self.store.put(&location, PutPayload::from(body)).await.map_err(|source| WarehouseError::Store {
            op: "put",
            path: path.clone(),
            source,
        })?;
        super::durable::sync_local(self.local_root.as_deref(), vec![path.clone()]).await?;
        Ok(path)
    }

    /// Removes an intent whose files are committed or discarded. A failure only leaves
    /// the files protected from `gc` until the next restart clears every intent.
    pub async fn clear_intent(&self, intent: &str) {
        if let Err(e) = self.store.delete(&Path::from(intent)).await {
            tracing::warn!(intent, error = %e, "could not remove a staging intent");
        }
    }

    /// Removes every intent: after a restart has mirrored all Raft committed, the files
    /// they name are either committed or garbage nobody will commit.
    pub async fn clear_all_intents(&self) -> Result<usize, WarehouseError> {
        let intents = self.intents().await?;
        for intent in &intents {
            self.clear_intent(intent.as_ref()).await;
        }
        Ok(intents.len())
    }

    /// Every file some intent names.
    pub async fn pending_files(&self) -> Result<std::collections::HashSet<String>, WarehouseError> {
        let mut files = std::collections::HashSet::new();
        for intent in self.intents().await? {
            let store_err = |source| WarehouseError::Store { op: "get", path: intent.to_string(), source };
            let bytes = self.store.get(&intent).await.map_err(store_err)?.bytes().await.map_err(store_err)?;
            // An intent cut short by a crash names nothing yet (the Raft proposal comes
            // after it is complete), so an unreadable one protects nothing.
            if let Ok(paths) = serde_json::from_slice::<Vec<String>>(&bytes) {
                files.extend(paths);
            }
        }
        Ok(files)
    }

    async fn intents(&self) -> Result<Vec<Path>, WarehouseError> {
        let prefix = Path::from(PENDING_DIR);
        let listed: Vec<_> = self
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|source| WarehouseError::Store { op: "list", path: PENDING_DIR.into(), source })?;
        Ok(listed.into_iter().map(|m| m.location).filter(|p| p.as_ref().ends_with(".json")).collect())
    }

    /// The paths among `paths` that no commit ever added or removed: what a restart
    /// still has to mirror from Raft's list.
    pub async fn never_committed(&self, paths: Vec<String>) -> Result<Vec<String>, WarehouseError> {
        let mut state = self.state.lock().await;
        manifest::refresh(self.store.as_ref(), &mut state).await?;
        Ok(paths.into_iter().filter(|p| !state.live.contains_key(p) && !state.removed.contains(p)).collect())
    }

    /// The result keys of the rows of a `results` file (for a mirror, which knows the
    /// files Raft committed but not the keys in them).
    pub async fn result_keys_in(&self, file: &FileEntry) -> Result<Vec<ResultKey>, WarehouseError> {
        let mut keys = Vec::new();
        for batch in self.read_file(Table::Results, file).await? {
            let text =
                |name: &str| batch.column_by_name(name).and_then(|c| c.as_any().downcast_ref::<StringArray>().cloned());
            let attempts =
                batch.column_by_name("attempt").and_then(|c| c.as_any().downcast_ref::<UInt32Array>().cloned());
            let (Some(sweeps), Some(cells), Some(attempts)) = (text("sweep_id"), text("cell_key"), attempts) else {
                return Err(WarehouseError::CorruptManifest {
                    path: file.path.clone(),
                    reason: "a results file without sweep_id, cell_key and attempt".into(),
                });
            };
            for i in 0..batch.num_rows() {
                keys.push(ResultKey {
                    sweep_id: sweeps.is_valid(i).then(|| sweeps.value(i).to_string()),
                    cell_key: cells.value(i).to_string(),
                    attempt: attempts.value(i),
                });
            }
        }
        Ok(keys)
    }

    /// Deletes staged files whose result was refused.
    pub async fn discard(&self, files: &[FileEntry]) {
        writer::delete_quietly(self.store.as_ref(), files).await;
    }

    /// Whether the object exists and its size (for mirroring Raft's manifest).
    pub async fn object_size(&self, path: &str) -> Option<u64> {
        self.store.as_ref().head(&object_store::path::Path::from(path)).await.ok().map(|m| m.size)
    }
}
