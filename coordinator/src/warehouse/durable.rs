//! Durability of a warehouse in a local folder: a file counts as written only after an
//! fsync of the file and of every folder on its path up to the root (a new file's
//! directory entry is not durable until its directory is synced).
//!
//! `object_store`'s local backend renames a temporary file into place without any
//! fsync, so a power cut after an acknowledgement could lose Parquet files or the
//! manifest commit that names them. On object stores the completed put is the
//! durability, and nothing here runs.
//!
//! Must never: report success for a path it did not sync.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::WarehouseError;

/// Syncs each file (paths relative to `root`) and then each folder between it and
/// `root`, `root` included, once each. Blocking: call from `spawn_blocking`.
pub fn sync_files(root: &Path, rel_paths: &[String]) -> Result<(), WarehouseError> {
    let mut dirs = BTreeSet::new();
    for rel in rel_paths {
        let path = root.join(rel);
        sync_one(&path)?;
        let mut dir = path.parent();
        while let Some(d) = dir {
            dirs.insert(d.to_path_buf());
            if d == root {
                break;
            }
            dir = d.parent();
        }
    }
    // Deepest first: a folder's own entry is synced after what it holds.
    for dir in dirs.iter().rev() {
        sync_one(dir)?;
    }
    Ok(())
}

fn sync_one(path: &PathBuf) -> Result<(), WarehouseError> {
    let io = |source| WarehouseError::Io { path: path.clone(), source };
    std::fs::File::open(path).map_err(io)?.sync_all().map_err(io)
}

/// [`sync_files`] off the async runtime; nothing to do without a local root.
pub async fn sync_local(root: Option<&Path>, rel_paths: Vec<String>) -> Result<(), WarehouseError> {
    let Some(root) = root else { return Ok(()) };
    if rel_paths.is_empty() {
        return Ok(());
    }
    let root = root.to_path_buf();
    tokio::task::spawn_blocking(move || sync_files(&root, &rel_paths)).await?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syncs_files_and_their_folders_and_fails_on_a_missing_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("results/date=2026-01-01")).expect("mkdir");
        std::fs::write(root.join("results/date=2026-01-01/a.parquet"), b"x").expect("write");
        sync_files(root, &["results/date=2026-01-01/a.parquet".into()]).expect("synced");
        let err = sync_files(root, &["results/missing.parquet".into()]).expect_err("nothing to sync");
        assert!(err.to_string().contains("missing.parquet"), "{err}");
    }
}
