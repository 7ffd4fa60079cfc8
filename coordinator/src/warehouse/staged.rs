//! Two-phase writes for the coordinator: stage a result's files, let Raft decide whether
//! the result commits (its fencing epoch must be current), then commit the files to the
//! warehouse manifest, or discard them. Raft's replicated manifest is the authority;
//! [`Warehouse::commit_staged`] is idempotent so that a restart can mirror into the
//! warehouse whatever Raft committed just before a crash.

use object_store::ObjectStoreExt;
use shared::result::ResultRecord;

use super::manifest::{self, FileEntry};
use super::schema::{Origin, ResultKey};
use super::{writer, Warehouse, WarehouseError};

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

    /// Deletes staged files whose result was refused.
    pub async fn discard(&self, files: &[FileEntry]) {
        writer::delete_quietly(self.store.as_ref(), files).await;
    }

    /// Whether the object exists and its size (for mirroring Raft's manifest).
    pub async fn object_size(&self, path: &str) -> Option<u64> {
        self.store.as_ref().head(&object_store::path::Path::from(path)).await.ok().map(|m| m.size)
    }
}
