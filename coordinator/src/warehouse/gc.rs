//! Garbage collection: deletes data objects that no commit lists, i.e. files staged by
//! a writer that crashed (or lost a race) before committing, and files a compaction
//! removed from the manifest.
//!
//! Must never: delete a live file, a file a staging intent names (a coordinator's Raft
//! may have committed it; see [`super::staged`]), anything younger than the grace age
//! (it may belong to a writer that is about to commit, or to a reader of an older
//! manifest), or touch `_manifest/`, `_checkpoint/` and `_pending/`.

use std::time::Duration;

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStoreExt};

use super::schema::Table;
use super::{manifest, Warehouse, WarehouseError};

/// What [`Warehouse::gc`] did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GcOutcome {
    /// Object paths deleted.
    pub deleted: Vec<String>,
    /// Unlisted objects kept because they are younger than the grace age.
    pub kept_young: usize,
}

impl Warehouse {
    /// Deletes the unlisted objects under the table folders that are older than
    /// `min_age`. Use a grace age well above the longest write-to-commit time (minutes);
    /// tests pass zero.
    pub async fn gc(&self, min_age: Duration) -> Result<GcOutcome, WarehouseError> {
        // List first, read the manifest second: a file committed in between is then
        // known to be live, never mistaken for garbage.
        let objects = self.list_data_objects().await?;
        // Staged files a coordinator may have committed through Raft and not yet into
        // the manifest: never garbage, however old.
        let pending = self.pending_files().await?;
        let mut state = self.state.lock().await;
        manifest::refresh(self.store.as_ref(), &mut state).await?;
        let cutoff = chrono::Utc::now() - chrono::Duration::from_std(min_age).unwrap_or(chrono::Duration::MAX);
        let mut outcome = GcOutcome::default();
        let unlisted = objects.into_iter().filter(|o| !state.live.contains_key(o.location.as_ref()));
        for object in unlisted.filter(|o| !pending.contains(o.location.as_ref())) {
            if object.last_modified > cutoff {
                outcome.kept_young += 1;
                continue;
            }
            match self.store.delete(&object.location).await {
                // Someone else collected it first: the goal is met.
                Ok(()) | Err(object_store::Error::NotFound { .. }) => outcome.deleted.push(object.location.to_string()),
                Err(source) => {
                    return Err(WarehouseError::Store { op: "delete", path: object.location.to_string(), source })
                }
            }
        }
        Ok(outcome)
    }

    async fn list_data_objects(&self) -> Result<Vec<ObjectMeta>, WarehouseError> {
        let mut objects = Vec::new();
        for table in Table::ALL {
            let prefix = Path::from(table.as_str());
            let listed: Vec<ObjectMeta> = self
                .store
                .list(Some(&prefix))
                .try_collect()
                .await
                .map_err(|source| WarehouseError::Store { op: "list", path: prefix.to_string(), source })?;
            objects.extend(listed);
        }
        Ok(objects)
    }
}
