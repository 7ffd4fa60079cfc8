//! The agent's durable spool: every result is written here before it is sent, and
//! deleted only after the coordinator acknowledges it, so a crash or a coordinator
//! outage loses nothing. After a restart the agent re-sends what is spooled; the
//! coordinator deduplicates by (sweep, cell key, attempt), so a re-send never stores a
//! result twice.
//!
//! Each result is one JSON file named by its key. A write goes to a temporary file that
//! is fsynced, renamed into place and followed by an fsync of the folder: after `put`
//! returns, the result survives a power cut, and a torn write is never visible under
//! the final name.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shared::result::ResultRecord;

/// A spooled result with the fencing epoch of the lease it ran under (the coordinator
/// refuses a result whose epoch is no longer current).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Spooled {
    pub epoch: u64,
    pub record: ResultRecord,
}

pub struct Spool {
    dir: PathBuf,
}

impl Spool {
    /// Opens (creating) the spool folder and removes temporary files of torn writes.
    pub fn open(dir: &Path) -> anyhow::Result<Spool> {
        fs::create_dir_all(dir).with_context(|| format!("creating spool {}", dir.display()))?;
        for e in fs::read_dir(dir).with_context(|| format!("listing spool {}", dir.display()))?.flatten() {
            if e.path().extension().is_some_and(|x| x == "tmp") {
                let _ = fs::remove_file(e.path());
            }
        }
        Ok(Spool { dir: dir.to_path_buf() })
    }

    /// Durably stores `item`; returns its spool path.
    pub fn put(&self, item: &Spooled) -> anyhow::Result<PathBuf> {
        let path = self.path_of(&item.record);
        let tmp = path.with_extension("tmp");
        let bytes = serde_json::to_vec(item)?;
        let mut f = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(&bytes)?;
        f.sync_all().with_context(|| format!("fsync {}", tmp.display()))?;
        fs::rename(&tmp, &path).with_context(|| format!("renaming into {}", path.display()))?;
        File::open(&self.dir)?.sync_all().with_context(|| format!("fsync {}", self.dir.display()))?;
        Ok(path)
    }

    /// Forgets a record once the coordinator has acknowledged it.
    pub fn remove(&self, record: &ResultRecord) -> anyhow::Result<()> {
        let path = self.path_of(record);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
        }
    }

    /// How many results wait in the spool (files counted, none read): for metrics.
    pub fn depth(&self) -> usize {
        fs::read_dir(&self.dir).map(|d| d.flatten().filter(|e| is_result_file(&e.path())).count()).unwrap_or(0)
    }

    /// Every spooled record, oldest first. A file that does not parse (a disk error, a
    /// hand edit) is moved aside as `*.corrupt` and reported, never re-sent.
    pub fn pending(&self) -> anyhow::Result<Vec<Spooled>> {
        let mut entries: Vec<_> =
            fs::read_dir(&self.dir)?.flatten().map(|e| e.path()).filter(|p| is_result_file(p)).collect();
        entries.sort_by_key(|p| fs::metadata(p).and_then(|m| m.modified()).ok());
        let mut out = Vec::with_capacity(entries.len());
        for p in entries {
            match fs::read(&p).ok().and_then(|b| serde_json::from_slice::<Spooled>(&b).ok()) {
                Some(r) => out.push(r),
                None => {
                    tracing::error!(path = %p.display(), "unreadable spooled result moved aside");
                    let _ = fs::rename(&p, p.with_extension("corrupt"));
                }
            }
        }
        Ok(out)
    }

    /// A result's file: its name is a hash ([`is_result_file`] knows it by that).
    fn path_of(&self, r: &ResultRecord) -> PathBuf {
        // Hashed: sweep ids and keys are external input and must not shape a path.
        let key = format!("{}\n{}\n{}", r.sweep_id.as_deref().unwrap_or("-"), r.cell_key, r.attempt);
        self.dir.join(format!("{}.json", &hex::encode(Sha256::digest(key.as_bytes()))[..32]))
    }
}

/// Whether `path` is a spooled result: 32 hex digits and `.json`, as [`Spool::path_of`]
/// names them. The folder holds other files too (the agent id, the calibrations cache),
/// which are not results and must be neither sent nor moved aside.
fn is_result_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.strip_suffix(".json").is_some_and(|stem| stem.len() == 32 && stem.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cell::CellRequest;
    use crate::engine::weights::Weights;
    use shared::catalog::{Family, Mode, Precision};
    use shared::result::Coordinates;
    use shared::spec::MeasurePolicy;

    fn item(attempt: u32) -> Spooled {
        Spooled { epoch: 7, record: record(attempt) }
    }

    fn record(attempt: u32) -> ResultRecord {
        let req = CellRequest {
            sweep_id: Some("s1".into()),
            cell_key: "a".repeat(64),
            attempt,
            agent_id: Some("agent".into()),
            coordinates: Coordinates {
                model: "bert-tiny".into(),
                family: Family::Bert,
                hardware_class: "cpu/x".into(),
                batch: 1,
                seq_len: 8,
                precision: Precision::Fp32,
                mode: Mode::Inference,
                engine: "candle".into(),
            },
            measure: MeasurePolicy::default(),
            weights: Weights::Random { seed: 1 },
            device: "cpu".into(),
            fingerprint_hash: "h".into(),
            runner: None,
        };
        crate::cell::child::record_for(&req, 1)
    }

    #[test]
    fn survives_reopen_until_acknowledged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = Spool::open(dir.path()).expect("open");
        spool.put(&item(1)).expect("put");
        spool.put(&item(2)).expect("put");
        spool.put(&item(1)).expect("same key again replaces");
        std::fs::write(dir.path().join("torn.tmp"), b"{").expect("torn write");
        drop(spool);

        let spool = Spool::open(dir.path()).expect("reopen");
        assert!(!dir.path().join("torn.tmp").exists(), "torn write left behind");
        let pending = spool.pending().expect("pending");
        assert_eq!(pending.len(), 2);
        assert!(pending.iter().all(|s| s.epoch == 7));
        spool.remove(&record(1)).expect("ack");
        spool.remove(&record(1)).expect("a second ack is fine");
        let pending = spool.pending().expect("pending");
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].record.attempt, 2);
    }

    #[test]
    fn corrupt_files_are_moved_aside() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = Spool::open(dir.path()).expect("open");
        let torn = "0123456789abcdef0123456789abcdef";
        std::fs::write(dir.path().join(format!("{torn}.json")), b"not json").expect("junk");
        assert!(spool.pending().expect("pending").is_empty());
        assert!(dir.path().join(format!("{torn}.corrupt")).exists());
    }

    /// The spool folder also holds the agent id and the calibrations cache: they are not
    /// results, so they are neither counted, sent nor moved aside (the cache was, once:
    /// every restart then measured the calibrations again).
    #[test]
    fn other_files_in_the_folder_are_left_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = Spool::open(dir.path()).expect("open");
        std::fs::write(dir.path().join("calibrations.json"), b"{\"version\": 1}").expect("cache");
        std::fs::write(dir.path().join("agent-id"), b"01a24c23").expect("id");
        spool.put(&item(3)).expect("put");
        assert_eq!(spool.depth(), 1);
        let pending = spool.pending().expect("pending");
        assert_eq!(pending.len(), 1);
        assert_eq!(std::fs::read(dir.path().join("calibrations.json")).expect("still there"), b"{\"version\": 1}");
        assert!(dir.path().join("agent-id").exists() && !dir.path().join("calibrations.corrupt").exists());
    }
}
