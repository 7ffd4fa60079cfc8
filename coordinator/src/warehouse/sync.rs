//! Local copies of the committed files, for DuckDB (which reads only local files here:
//! its `httpfs` extension cannot be built from crates.io).
//!
//! Must never: copy an uncommitted file, or leave a half-downloaded file under its final
//! name (downloads go to a temporary name and are renamed into place).

use std::collections::BTreeMap;
use std::path::{Path as FsPath, PathBuf};

use object_store::path::Path;
use object_store::ObjectStoreExt;

use super::manifest::FileEntry;
use super::schema::Table;
use super::{manifest, Warehouse, WarehouseError};

/// The committed files of each table as local paths.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalFiles {
    /// The folder the paths sit under: the warehouse itself when it is local, else the
    /// cache folder.
    pub root: PathBuf,
    /// Every table appears, possibly with no files; paths sorted.
    pub files: BTreeMap<Table, Vec<PathBuf>>,
}

impl Warehouse {
    /// The committed files as local paths: in place for a local warehouse, otherwise
    /// downloaded into `cache_dir` (files already there with the right size are kept;
    /// data files are immutable, so size is enough).
    pub async fn sync_to_local(&self, cache_dir: &FsPath) -> Result<LocalFiles, WarehouseError> {
        let live: Vec<FileEntry> = {
            let mut state = self.state.lock().await;
            manifest::refresh(self.store.as_ref(), &mut state).await?;
            state.live.values().cloned().collect()
        };
        let root = match &self.local_root {
            Some(root) => root.clone(),
            None => cache_dir.to_path_buf(),
        };
        let mut files: BTreeMap<Table, Vec<PathBuf>> = Table::ALL.into_iter().map(|t| (t, Vec::new())).collect();
        for file in &live {
            let local = root.join(&file.path);
            if self.local_root.is_none() {
                self.download(file, &local).await?;
            }
            files.entry(file.table).or_default().push(local);
        }
        Ok(LocalFiles { root, files })
    }

    async fn download(&self, file: &FileEntry, local: &FsPath) -> Result<(), WarehouseError> {
        let io_err = |path: &FsPath| {
            let path = path.to_path_buf();
            move |source| WarehouseError::Io { path, source }
        };
        if tokio::fs::metadata(local).await.is_ok_and(|m| m.len() == file.bytes) {
            return Ok(());
        }
        let store_err = |source| WarehouseError::Store { op: "get", path: file.path.clone(), source };
        let bytes = self
            .store
            .get(&Path::from(file.path.as_str()))
            .await
            .map_err(store_err)?
            .bytes()
            .await
            .map_err(store_err)?;
        if let Some(parent) = local.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(io_err(parent))?;
        }
        let partial = local.with_extension(format!("partial-{}", uuid::Uuid::now_v7()));
        tokio::fs::write(&partial, &bytes).await.map_err(io_err(&partial))?;
        tokio::fs::rename(&partial, local).await.map_err(io_err(local))?;
        Ok(())
    }
}
