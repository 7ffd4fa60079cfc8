//! The committed-files manifest: an append-only sequence of commits, each a JSON object
//! `_manifest/<20-digit zero-padded sequence>.json` created put-if-absent, plus
//! checkpoints `_checkpoint/<sequence>.json` of the state after every
//! [`CHECKPOINT_EVERY`]th commit.
//!
//! A commit lists the files it adds (path, table, rows, bytes), the files it removes
//! (compaction) and the keys of the results it adds. Reading applies the commits in
//! sequence order: the live files are those added and not removed since; the committed
//! keys are the union of all keys. Because the commit object appears atomically or not
//! at all, a result is either entirely visible or not at all.
//!
//! Must never: overwrite a commit (a writer that loses the race for a sequence number
//! tries the next one), skip a sequence number, or accept a commit out of order.

use std::collections::{BTreeMap, HashSet};

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

pub use super::file::FileEntry;
use super::schema::{ResultKey, Table};
use super::WarehouseError;

pub const MANIFEST_DIR: &str = "_manifest";
pub const CHECKPOINT_DIR: &str = "_checkpoint";
/// A checkpoint after every this many commits bounds what a fresh reader replays.
pub const CHECKPOINT_EVERY: u64 = 100;
const FORMAT: &str = "accelbench-manifest/1";

/// The stored form of one commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Commit {
    pub format: String,
    pub sequence: u64,
    /// Wall-clock time of the writer, Unix ms; informational only (order is `sequence`).
    pub committed_at_ms: i64,
    pub added: Vec<FileEntry>,
    pub removed: Vec<String>,
    /// `[sweep_id or null, cell_key, attempt]` of every result row this commit adds.
    pub result_keys: Vec<(Option<String>, String, u32)>,
}

/// The state after applying commits `1..=sequence`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ManifestState {
    pub sequence: u64,
    pub live: BTreeMap<String, FileEntry>,
    pub result_keys: HashSet<ResultKey>,
    /// Every path a commit ever removed (compaction). Such a path is never added again:
    /// a restart that mirrors Raft's older view of the files must not bring back rows
    /// a compaction moved into another file.
    pub removed: HashSet<String>,
}

/// The stored form of a checkpoint.
#[derive(Debug, Serialize, Deserialize)]
struct Checkpoint {
    format: String,
    sequence: u64,
    live: Vec<FileEntry>,
    result_keys: Vec<(Option<String>, String, u32)>,
    /// Absent in checkpoints written before removed paths were kept.
    #[serde(default)]
    removed: Vec<String>,
}

impl ManifestState {
    /// The live files of `table`, by path.
    pub fn live_files(&self, table: Table) -> impl Iterator<Item = &FileEntry> {
        self.live.values().filter(move |f| f.table == table)
    }

    /// Applies the next commit; anything but sequence `self.sequence + 1` is refused.
    pub fn apply(&mut self, commit: Commit, path: &str) -> Result<(), WarehouseError> {
        if commit.sequence != self.sequence + 1 {
            let reason = format!("sequence {} follows {}", commit.sequence, self.sequence);
            return Err(WarehouseError::CorruptManifest { path: path.to_string(), reason });
        }
        for removed in &commit.removed {
            self.live.remove(removed);
            self.removed.insert(removed.clone());
        }
        for file in commit.added {
            self.live.insert(file.path.clone(), file);
        }
        self.result_keys.extend(commit.result_keys.into_iter().map(key_from_tuple));
        self.sequence = commit.sequence;
        Ok(())
    }
}

fn key_from_tuple((sweep_id, cell_key, attempt): (Option<String>, String, u32)) -> ResultKey {
    ResultKey { sweep_id, cell_key, attempt }
}

fn key_to_tuple(key: &ResultKey) -> (Option<String>, String, u32) {
    (key.sweep_id.clone(), key.cell_key.clone(), key.attempt)
}

pub fn commit_path(sequence: u64) -> Path {
    Path::from(format!("{MANIFEST_DIR}/{sequence:020}.json"))
}

fn checkpoint_path(sequence: u64) -> Path {
    Path::from(format!("{CHECKPOINT_DIR}/{sequence:020}.json"))
}

/// The sequence number in a commit or checkpoint object name; `None` for anything else
/// (a local store's temporary upload files, say).
fn sequence_of(path: &Path) -> Option<u64> {
    let name = path.filename()?;
    let digits = name.strip_suffix(".json")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok()).flatten()
}

fn store_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(object_store::Error) -> WarehouseError + 'a {
    move |source| WarehouseError::Store { op, path: path.to_string(), source }
}

async fn get_json<T: serde::de::DeserializeOwned>(store: &dyn ObjectStore, path: &Path) -> Result<T, WarehouseError> {
    let bytes = store.get(path).await.map_err(store_err("get", path))?.bytes().await.map_err(store_err("get", path))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| WarehouseError::CorruptManifest { path: path.to_string(), reason: e.to_string() })
}

/// Sequence numbers under `dir` greater than `after`, ascending.
async fn list_sequences(store: &dyn ObjectStore, dir: &str, after: u64) -> Result<Vec<u64>, WarehouseError> {
    let prefix = Path::from(dir);
    let offset = Path::from(format!("{dir}/{after:020}.json"));
    let metas: Vec<_> =
        store.list_with_offset(Some(&prefix), &offset).try_collect().await.map_err(store_err("list", &prefix))?;
    let mut sequences: Vec<u64> =
        metas.iter().filter_map(|m| sequence_of(&m.location)).filter(|s| *s > after).collect();
    sequences.sort_unstable();
    Ok(sequences)
}

/// Brings `state` up to the newest commit: from the newest checkpoint when `state` is
/// behind it, then commit by commit.
pub async fn refresh(store: &dyn ObjectStore, state: &mut ManifestState) -> Result<(), WarehouseError> {
    if let Some(&newest) = list_sequences(store, CHECKPOINT_DIR, state.sequence).await?.last() {
        *state = load_checkpoint(store, newest).await?;
    }
    for sequence in list_sequences(store, MANIFEST_DIR, state.sequence).await? {
        let path = commit_path(sequence);
        let commit: Commit = get_json(store, &path).await?;
        state.apply(commit, path.as_ref())?;
    }
    Ok(())
}

async fn load_checkpoint(store: &dyn ObjectStore, sequence: u64) -> Result<ManifestState, WarehouseError> {
    let path = checkpoint_path(sequence);
    let checkpoint: Checkpoint = get_json(store, &path).await?;
    if checkpoint.sequence != sequence {
        let reason = format!("holds sequence {}", checkpoint.sequence);
        return Err(WarehouseError::CorruptManifest { path: path.to_string(), reason });
    }
    Ok(ManifestState {
        sequence,
        live: checkpoint.live.into_iter().map(|f| (f.path.clone(), f)).collect(),
        result_keys: checkpoint.result_keys.into_iter().map(key_from_tuple).collect(),
        removed: checkpoint.removed.into_iter().collect(),
    })
}

/// Tries to commit `added`/`removed`/`keys` as sequence `state.sequence + 1`.
/// `Some(sequence)` when committed (and `state` updated); `None` when another writer
/// took that number first: refresh and decide again. The caller must have refreshed
/// `state` and checked its keys and removals against it.
pub async fn commit(
    store: &dyn ObjectStore,
    local_root: Option<&std::path::Path>,
    state: &mut ManifestState,
    added: Vec<FileEntry>,
    removed: Vec<String>,
    keys: Vec<ResultKey>,
) -> Result<Option<u64>, WarehouseError> {
    // The files first: a commit must never name a file a power cut can take back.
    super::durable::sync_local(local_root, added.iter().map(|f| f.path.clone()).collect()).await?;
    let commit = Commit {
        format: FORMAT.to_string(),
        sequence: state.sequence + 1,
        committed_at_ms: chrono::Utc::now().timestamp_millis(),
        added,
        removed,
        result_keys: keys.iter().map(key_to_tuple).collect(),
    };
    let path = commit_path(commit.sequence);
    let body = serde_json::to_vec(&commit)
        .map_err(|e| WarehouseError::CorruptManifest { path: path.to_string(), reason: e.to_string() })?;
    let options = PutOptions::from(PutMode::Create);
    match store.put_opts(&path, PutPayload::from(body), options).await {
        Ok(_) => {}
        Err(object_store::Error::AlreadyExists { .. }) => return Ok(None),
        Err(source) => return Err(WarehouseError::Store { op: "put-if-absent", path: path.to_string(), source }),
    }
    // Then the commit itself, before anyone is told it happened.
    super::durable::sync_local(local_root, vec![path.to_string()]).await?;
    let sequence = commit.sequence;
    state.apply(commit, path.as_ref())?;
    if sequence.is_multiple_of(CHECKPOINT_EVERY) {
        write_checkpoint(store, state).await?;
    }
    Ok(Some(sequence))
}

/// Writes the state as a checkpoint. Plain overwrite is fine: a checkpoint of a given
/// sequence has one possible content.
pub async fn write_checkpoint(store: &dyn ObjectStore, state: &ManifestState) -> Result<(), WarehouseError> {
    let mut result_keys: Vec<_> = state.result_keys.iter().map(key_to_tuple).collect();
    result_keys.sort();
    let checkpoint = Checkpoint {
        format: FORMAT.to_string(),
        sequence: state.sequence,
        live: state.live.values().cloned().collect(),
        result_keys,
        removed: {
            let mut removed: Vec<String> = state.removed.iter().cloned().collect();
            removed.sort();
            removed
        },
    };
    let path = checkpoint_path(state.sequence);
    let body = serde_json::to_vec(&checkpoint)
        .map_err(|e| WarehouseError::CorruptManifest { path: path.to_string(), reason: e.to_string() })?;
    store.put(&path, PutPayload::from(body)).await.map_err(store_err("put", &path))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str) -> FileEntry {
        FileEntry { path: path.to_string(), table: Table::Results, rows: 1, bytes: 10 }
    }

    fn commit_of(sequence: u64, added: &[&str], removed: &[&str]) -> Commit {
        Commit {
            format: FORMAT.to_string(),
            sequence,
            committed_at_ms: 0,
            added: added.iter().map(|p| entry(p)).collect(),
            removed: removed.iter().map(|p| p.to_string()).collect(),
            result_keys: vec![(None, format!("k{sequence}"), 1)],
        }
    }

    #[test]
    fn applying_commits_adds_and_removes_files() {
        let mut state = ManifestState::default();
        state.apply(commit_of(1, &["a", "b"], &[]), "1").expect("1");
        state.apply(commit_of(2, &["c"], &["a", "b"]), "2").expect("2");
        assert_eq!(state.live.keys().collect::<Vec<_>>(), vec!["c"]);
        assert_eq!(state.result_keys.len(), 2);
        assert_eq!(state.sequence, 2);
    }

    #[test]
    fn a_commit_out_of_order_is_refused_naming_the_object() {
        let mut state = ManifestState::default();
        let err = state.apply(commit_of(2, &["a"], &[]), "_manifest/x.json").expect_err("refused");
        assert!(err.to_string().contains("_manifest/x.json"), "{err}");
        assert!(state.live.is_empty());
    }

    #[test]
    fn only_twenty_digit_json_names_are_commits() {
        assert_eq!(sequence_of(&commit_path(42)), Some(42));
        assert_eq!(sequence_of(&Path::from("_manifest/00000000000000000042.json#1")), None);
        assert_eq!(sequence_of(&Path::from("_manifest/42.json")), None);
    }

    #[test]
    fn a_commit_round_trips_through_json() {
        let commit = commit_of(7, &["a"], &["b"]);
        let text = serde_json::to_string(&commit).expect("json");
        assert!(text.contains(r#""table":"results""#), "{text}");
        let back: Commit = serde_json::from_str(&text).expect("parse");
        assert_eq!(back, commit);
    }
}
