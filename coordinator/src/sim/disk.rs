//! The simulation's storage model: a node's Raft store in memory, with what reached the
//! disk (synced) kept apart from what only the page cache holds (unsynced).
//!
//! Every write is an [`Op`] applied at once to the store the node reads. A durable write
//! (`persist`, a conf state, a snapshot) then syncs: every unsynced op before it, and
//! itself, reach [`Disk::synced`], in order, as redb's `Durability::Immediate` commit
//! makes earlier non-durable commits durable too. `set_commit` stays unsynced until the
//! next sync. A crash keeps only `synced`; the restarted node opens a store built from it.
//!
//! Faults, armed by the world: a failed fsync (the write may or may not have reached
//! the disk: the world's RNG decides when it arms the fault) and a full disk (nothing
//! is written).
//! Either makes the write return an error and poisons the store, as [`RedbStorage`]
//! does, so the node stops.
//!
//! [`RedbStorage`]: crate::raft::storage::RedbStorage

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft::{GetEntriesContext, RaftState, Storage, StorageError};

use crate::raft::storage::{LogStore, StoreError};

/// The contents of a store: snapshot, hard and conf state, and the log after the snapshot.
#[derive(Debug, Clone, Default)]
pub struct Stored {
    hard_state: HardState,
    conf_state: ConfState,
    snapshot: Snapshot,
    /// Entries from `snapshot.index + 1` on.
    log: Vec<Entry>,
}

/// One write, applied the same way to the node's view and, once synced, to the disk.
#[derive(Debug, Clone)]
enum Op {
    Append(Vec<Entry>),
    HardState(HardState),
    Commit(u64),
    ConfState(ConfState),
    /// Keep `snapshot`; `replace_log` drops the whole log (one from a leader), else only
    /// what it covers (our own compaction).
    Snapshot {
        snapshot: Snapshot,
        replace_log: bool,
    },
}

impl Stored {
    /// A new node's empty store, with `voters` as its first configuration.
    pub fn new(voters: &[u64]) -> Stored {
        let mut stored = Stored::default();
        stored.conf_state.voters = voters.to_vec();
        stored
    }

    fn first_index(&self) -> u64 {
        self.snapshot.get_metadata().index + 1
    }

    fn last_index(&self) -> u64 {
        self.snapshot.get_metadata().index + self.log.len() as u64
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Append(entries) => {
                if let Some(first) = entries.first() {
                    let keep = first.index.saturating_sub(self.first_index()) as usize;
                    self.log.truncate(keep);
                    self.log.extend(entries.iter().cloned());
                }
            }
            Op::HardState(hs) => self.hard_state = hs.clone(),
            Op::Commit(commit) => self.hard_state.commit = *commit,
            Op::ConfState(cs) => self.conf_state = cs.clone(),
            Op::Snapshot { snapshot, replace_log } => {
                let meta = snapshot.get_metadata();
                if *replace_log {
                    self.log.clear();
                } else {
                    let covered = (meta.index + 1).saturating_sub(self.first_index()) as usize;
                    self.log.drain(..covered.min(self.log.len()));
                }
                self.hard_state.commit = self.hard_state.commit.max(meta.index);
                self.hard_state.term = self.hard_state.term.max(meta.term);
                self.conf_state = meta.get_conf_state().clone();
                self.snapshot = snapshot.clone();
            }
        }
    }
}

/// What survives a crash of one node, and the faults armed against its next write.
#[derive(Debug)]
pub struct Disk {
    pub synced: Stored,
    /// The next durable write fails its fsync; `Some(true)` when its data reaches the
    /// disk anyway.
    pub fail_next_sync: Option<bool>,
    /// Every durable write fails: the disk is full.
    pub full: bool,
    /// A deliberately broken disk that acknowledges every fsync and keeps nothing: only
    /// for the test that proves the checks catch lost writes.
    pub lying: bool,
}

impl Disk {
    pub fn new(voters: &[u64]) -> Disk {
        Disk { synced: Stored::new(voters), fail_next_sync: None, full: false, lying: false }
    }
}

/// The [`LogStore`] of a simulated node.
pub struct SimStorage {
    node_id: u64,
    mem: Stored,
    unsynced: Vec<Op>,
    disk: Arc<Mutex<Disk>>,
    poisoned: bool,
}

impl SimStorage {
    /// The store a (re)started node opens: what its disk holds.
    pub fn open(node_id: u64, disk: Arc<Mutex<Disk>>) -> SimStorage {
        let mem = lock(&disk).synced.clone();
        SimStorage { node_id, mem, unsynced: Vec::new(), disk, poisoned: false }
    }

    fn path(&self) -> PathBuf {
        PathBuf::from(format!("sim://node-{}", self.node_id))
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.poisoned {
            return Err(StoreError::Poisoned { path: self.path() });
        }
        Ok(())
    }

    /// Applies `op` to the node's view and, when `durable`, syncs everything so far.
    fn write(&mut self, op: Op, durable: bool) -> Result<(), StoreError> {
        self.check()?;
        self.mem.apply(&op);
        self.unsynced.push(op);
        if durable {
            self.sync()?;
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        let mut disk = lock(&self.disk);
        let failure = if disk.full {
            Some(("no space left on device", false))
        } else {
            // After a failed fsync the data may or may not be on the disk.
            disk.fail_next_sync.take().map(|landed| ("fsync failed (injected)", landed))
        };
        let reached_disk = failure.is_none_or(|(_, landed)| landed);
        if disk.lying {
            self.unsynced.clear();
        } else if reached_disk {
            for op in self.unsynced.drain(..) {
                disk.synced.apply(&op);
            }
        }
        drop(disk);
        match failure {
            None => Ok(()),
            Some((problem, _)) => {
                self.poisoned = true;
                Err(StoreError::Io { path: self.path(), problem: problem.into() })
            }
        }
    }
}

fn lock(disk: &Mutex<Disk>) -> std::sync::MutexGuard<'_, Disk> {
    disk.lock().unwrap_or_else(|p| p.into_inner())
}

impl LogStore for SimStorage {
    fn persist(&mut self, entries: &[Entry], hard_state: Option<&HardState>) -> Result<(), StoreError> {
        self.check()?;
        if let Some(first) = entries.first() {
            if first.index < self.mem.first_index() || first.index > self.mem.last_index() + 1 {
                return Err(StoreError::Invalid {
                    path: self.path(),
                    problem: format!("append at index {} outside the log", first.index),
                });
            }
            self.write(Op::Append(entries.to_vec()), hard_state.is_none())?;
        }
        if let Some(hs) = hard_state {
            self.write(Op::HardState(hs.clone()), true)?;
        }
        Ok(())
    }

    fn set_commit(&mut self, commit: u64) -> Result<(), StoreError> {
        self.write(Op::Commit(commit), false)
    }

    fn set_conf_state(&mut self, conf_state: ConfState) -> Result<(), StoreError> {
        self.write(Op::ConfState(conf_state), true)
    }

    fn compact_to_snapshot(&mut self, index: u64, data: Vec<u8>) -> Result<(), StoreError> {
        self.check()?;
        let term = self.term(index).map_err(|e| StoreError::Invalid {
            path: self.path(),
            problem: format!("no term for snapshot index {index}: {e}"),
        })?;
        let mut snapshot = Snapshot { data: data.into(), ..Snapshot::default() };
        let meta = snapshot.mut_metadata();
        meta.index = index;
        meta.term = term;
        meta.set_conf_state(self.mem.conf_state.clone());
        self.write(Op::Snapshot { snapshot, replace_log: false }, true)
    }

    fn apply_snapshot(&mut self, snapshot: Snapshot) -> Result<(), StoreError> {
        self.write(Op::Snapshot { snapshot, replace_log: true }, true)
    }

    fn latest_snapshot(&self) -> &Snapshot {
        &self.mem.snapshot
    }
}

impl Storage for SimStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState { hard_state: self.mem.hard_state.clone(), conf_state: self.mem.conf_state.clone() })
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if self.poisoned {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        if low < self.mem.first_index() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > self.mem.last_index() + 1 || low > high {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let offset = self.mem.first_index();
        let mut entries = self.mem.log[(low - offset) as usize..(high - offset) as usize].to_vec();
        raft::util::limit_size(&mut entries, max_size.into());
        Ok(entries)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        let meta = self.mem.snapshot.get_metadata();
        if idx == meta.index {
            return Ok(meta.term);
        }
        if idx < self.mem.first_index() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if idx > self.mem.last_index() {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        Ok(self.mem.log[(idx - self.mem.first_index()) as usize].term)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.mem.first_index())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.mem.last_index())
    }

    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        if self.mem.snapshot.get_metadata().index < request_index {
            return Err(raft::Error::Store(StorageError::SnapshotTemporarilyUnavailable));
        }
        Ok(self.mem.snapshot.clone())
    }
}
