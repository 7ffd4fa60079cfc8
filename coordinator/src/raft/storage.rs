//! The durable Raft log, hard state, conf state and latest snapshot, in one redb file,
//! implementing raft-rs's [`Storage`].
//!
//! Tables: `raft_log` maps an entry's index to its term (8 bytes, big-endian) followed by the
//! protobuf-encoded entry, so `term()` needs no decoding; `raft_meta` holds the protobuf
//! hard state, conf state and snapshot under fixed keys. The small metadata is also kept in
//! memory, so reads of it cost nothing.
//!
//! Durability: [`RedbStorage::persist`] writes a Ready's entries and hard state in one
//! write transaction committed with `Durability::Immediate` (redb fsyncs before `commit`
//! returns), so when it returns `Ok` the node may send `persisted_messages`. Raising the
//! commit index alone ([`RedbStorage::set_commit`]) is written without an fsync: the commit
//! index only bounds what is replayed after a restart, a lost raise is re-learnt from the
//! log, and the only durable trace of what was applied, a snapshot, raises the stored
//! commit index in its own (fsynced) transaction.
//!
//! Must never: retry a failed write (after a failed fsync the page cache may already have
//! dropped the data: retrying could report success for data that is gone), or panic where
//! raft-rs's `MemStorage` would; after any I/O error the storage is poisoned and refuses
//! every later call, and the node stops.

use std::path::{Path, PathBuf};

use protobuf::Message as _;
use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft::{GetEntriesContext, RaftState, Storage};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_meta");
const HARD_STATE: &str = "hard_state";
const CONF_STATE: &str = "conf_state";
const SNAPSHOT: &str = "snapshot";

/// A failure of the durable store. Every one of them stops the node.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("raft store `{path}`: {source}")]
    Redb { path: PathBuf, source: redb::Error },
    #[error("raft store `{path}`: corrupt {what}: {source}")]
    Corrupt { path: PathBuf, what: String, source: protobuf::ProtobufError },
    #[error("raft store `{path}`: {problem}")]
    Invalid { path: PathBuf, problem: String },
    #[error("raft store `{path}` refuses work after an earlier i/o error")]
    Poisoned { path: PathBuf },
    /// A write that failed in the simulation's storage model (an injected fsync error or
    /// a full disk).
    #[error("raft store `{path}`: {problem}")]
    Io { path: PathBuf, problem: String },
}

/// What the node needs of its durable store beyond raft-rs's [`Storage`] reads: the
/// writes of the Ready loop. [`RedbStorage`] is the real one; the simulation has its own
/// (synced and unsynced writes kept apart, faults injected).
///
/// Contract of every write: `Ok` means durable (fsynced), except [`LogStore::set_commit`]
/// (see the module doc); an `Err` stops the node, and the store refuses work afterwards.
pub trait LogStore: Storage + Send + 'static {
    fn persist(&mut self, entries: &[Entry], hard_state: Option<&HardState>) -> Result<(), StoreError>;
    fn set_commit(&mut self, commit: u64) -> Result<(), StoreError>;
    fn set_conf_state(&mut self, conf_state: ConfState) -> Result<(), StoreError>;
    fn compact_to_snapshot(&mut self, index: u64, data: Vec<u8>) -> Result<(), StoreError>;
    fn apply_snapshot(&mut self, snapshot: Snapshot) -> Result<(), StoreError>;
    fn latest_snapshot(&self) -> &Snapshot;
}

impl LogStore for RedbStorage {
    fn persist(&mut self, entries: &[Entry], hard_state: Option<&HardState>) -> Result<(), StoreError> {
        RedbStorage::persist(self, entries, hard_state)
    }
    fn set_commit(&mut self, commit: u64) -> Result<(), StoreError> {
        RedbStorage::set_commit(self, commit)
    }
    fn set_conf_state(&mut self, conf_state: ConfState) -> Result<(), StoreError> {
        RedbStorage::set_conf_state(self, conf_state)
    }
    fn compact_to_snapshot(&mut self, index: u64, data: Vec<u8>) -> Result<(), StoreError> {
        RedbStorage::compact_to_snapshot(self, index, data)
    }
    fn apply_snapshot(&mut self, snapshot: Snapshot) -> Result<(), StoreError> {
        RedbStorage::apply_snapshot(self, snapshot)
    }
    fn latest_snapshot(&self) -> &Snapshot {
        RedbStorage::latest_snapshot(self)
    }
}

/// raft-rs storage backed by one redb database.
pub struct RedbStorage {
    db: Database,
    path: PathBuf,
    hard_state: HardState,
    conf_state: ConfState,
    snapshot: Snapshot,
    /// Index of the first entry in `raft_log`: the snapshot's index + 1.
    first_index: u64,
    /// Index of the last entry, or the snapshot's index when the log is empty.
    last_index: u64,
    poisoned: bool,
}

impl RedbStorage {
    /// Opens the store at `path`, creating it when absent. A new store starts with
    /// `voters` as its configuration (a single voter: `[own id]`); an existing one keeps
    /// its own.
    pub fn open(path: &Path, voters: &[u64]) -> Result<RedbStorage, StoreError> {
        let db = Database::create(path).map_err(|e| redb_error(path, e))?;
        RedbStorage::from_database(db, path, voters)
    }

    /// `path` only names the store in errors.
    pub(crate) fn from_database(db: Database, path: &Path, voters: &[u64]) -> Result<RedbStorage, StoreError> {
        let mut storage = RedbStorage {
            db,
            path: path.to_owned(),
            hard_state: HardState::default(),
            conf_state: ConfState::default(),
            snapshot: Snapshot::default(),
            first_index: 1,
            last_index: 0,
            poisoned: false,
        };
        storage.create_tables()?;
        storage.load()?;
        if storage.conf_state.voters.is_empty() && storage.last_index == 0 {
            storage.set_conf_state(ConfState { voters: voters.to_vec(), ..ConfState::default() })?;
        }
        Ok(storage)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn hard_state(&self) -> &HardState {
        &self.hard_state
    }

    pub fn conf_state(&self) -> &ConfState {
        &self.conf_state
    }

    /// The latest snapshot (empty, index 0, when none was taken).
    pub fn latest_snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// Step 5 of the Ready loop: appends `entries` (replacing any conflicting suffix) and
    /// stores `hard_state`, in one fsynced transaction.
    pub fn persist(&mut self, entries: &[Entry], hard_state: Option<&HardState>) -> Result<(), StoreError> {
        self.check_poisoned()?;
        if let Some(first) = entries.first() {
            self.check_append(first.index)?;
        }
        let result = self.write(|txn| {
            let mut log = txn.open_table(LOG)?;
            if let Some(first) = entries.first() {
                // A new leader may overwrite an uncommitted suffix: drop it before writing.
                log.retain_in(first.index.., |_, _| false)?;
            }
            for entry in entries {
                log.insert(entry.index, encode_entry(entry)?.as_slice())?;
            }
            if let Some(hs) = hard_state {
                txn.open_table(META)?.insert(HARD_STATE, encode(hs)?.as_slice())?;
            }
            Ok(())
        });
        self.finish(result, redb::Durability::Immediate)?;
        if let Some(last) = entries.last() {
            self.last_index = last.index;
        }
        if let Some(hs) = hard_state {
            self.hard_state = hs.clone();
        }
        Ok(())
    }

    /// Records a raised commit index (step 7 of the Ready loop), without an fsync: see the
    /// module doc for why that is safe.
    pub fn set_commit(&mut self, commit: u64) -> Result<(), StoreError> {
        self.check_poisoned()?;
        let mut hs = self.hard_state.clone();
        hs.commit = commit;
        let result = self.write(|txn| {
            txn.open_table(META)?.insert(HARD_STATE, encode(&hs)?.as_slice())?;
            Ok(())
        });
        self.finish(result, redb::Durability::None)?;
        self.hard_state = hs;
        Ok(())
    }

    pub fn set_conf_state(&mut self, conf_state: ConfState) -> Result<(), StoreError> {
        self.check_poisoned()?;
        let result = self.write(|txn| {
            txn.open_table(META)?.insert(CONF_STATE, encode(&conf_state)?.as_slice())?;
            Ok(())
        });
        self.finish(result, redb::Durability::Immediate)?;
        self.conf_state = conf_state;
        Ok(())
    }

    /// Stores a snapshot of the state machine taken at applied index `index`, and drops
    /// every log entry it covers, in one fsynced transaction. The stored commit index is
    /// raised to at least `index`, so a restart never finds applied ahead of committed.
    pub fn compact_to_snapshot(&mut self, index: u64, data: Vec<u8>) -> Result<(), StoreError> {
        self.check_poisoned()?;
        if index <= self.snapshot.get_metadata().index || index > self.last_index {
            return Err(self.invalid(format!(
                "snapshot at index {index}, expected one after {} and at most {}",
                self.snapshot.get_metadata().index,
                self.last_index
            )));
        }
        let term = self.term(index).map_err(|e| self.invalid(format!("no term for index {index}: {e}")))?;
        let mut snapshot = Snapshot { data: data.into(), ..Snapshot::default() };
        let meta = snapshot.mut_metadata();
        meta.index = index;
        meta.term = term;
        meta.set_conf_state(self.conf_state.clone());
        self.store_snapshot(snapshot, false)
    }

    /// Step 3 of the Ready loop: replaces the log with a snapshot received from a leader.
    pub fn apply_snapshot(&mut self, snapshot: Snapshot) -> Result<(), StoreError> {
        self.check_poisoned()?;
        let index = snapshot.get_metadata().index;
        if index < self.first_index.saturating_sub(1) {
            return Err(self.invalid(format!("snapshot at index {index} is older than the log")));
        }
        self.store_snapshot(snapshot, true)
    }

    fn store_snapshot(&mut self, snapshot: Snapshot, replace_log: bool) -> Result<(), StoreError> {
        let meta = snapshot.get_metadata().clone();
        let mut hs = self.hard_state.clone();
        hs.commit = hs.commit.max(meta.index);
        hs.term = hs.term.max(meta.term);
        let result = self.write(|txn| {
            let mut log = txn.open_table(LOG)?;
            if replace_log {
                log.retain(|_, _| false)?;
            } else {
                log.retain_in(..=meta.index, |_, _| false)?;
            }
            let mut meta_table = txn.open_table(META)?;
            meta_table.insert(SNAPSHOT, encode(&snapshot)?.as_slice())?;
            meta_table.insert(HARD_STATE, encode(&hs)?.as_slice())?;
            meta_table.insert(CONF_STATE, encode(meta.get_conf_state())?.as_slice())?;
            Ok(())
        });
        self.finish(result, redb::Durability::Immediate)?;
        self.first_index = meta.index + 1;
        if replace_log || self.last_index < meta.index {
            self.last_index = meta.index;
        }
        self.hard_state = hs;
        self.conf_state = meta.get_conf_state().clone();
        self.snapshot = snapshot;
        Ok(())
    }

    fn create_tables(&mut self) -> Result<(), StoreError> {
        let result = self.write(|txn| {
            txn.open_table(LOG)?;
            txn.open_table(META)?;
            Ok(())
        });
        self.finish(result, redb::Durability::Immediate)
    }

    /// Reads the metadata and the log's bounds into memory.
    fn load(&mut self) -> Result<(), StoreError> {
        let (hard_state, conf_state, snapshot, bounds) = self.read(|txn| {
            let meta = txn.open_table(META)?;
            let get =
                |key: &str| -> Result<Option<Vec<u8>>, redb::Error> { Ok(meta.get(key)?.map(|v| v.value().to_vec())) };
            let log = txn.open_table(LOG)?;
            let first = log.first()?.map(|(k, _)| k.value());
            let last = log.last()?.map(|(k, _)| k.value());
            Ok((get(HARD_STATE)?, get(CONF_STATE)?, get(SNAPSHOT)?, first.zip(last)))
        })?;
        self.hard_state = self.decode_or_default(hard_state, "hard state")?;
        self.conf_state = self.decode_or_default(conf_state, "conf state")?;
        self.snapshot = self.decode_or_default(snapshot, "snapshot")?;
        let snapshot_index = self.snapshot.get_metadata().index;
        self.first_index = snapshot_index + 1;
        self.last_index = snapshot_index;
        if let Some((first, last)) = bounds {
            if first != self.first_index {
                return Err(self.invalid(format!("log starts at {first}, expected {}", self.first_index)));
            }
            self.last_index = last;
        }
        Ok(())
    }

    fn decode_or_default<M: protobuf::Message + Default>(
        &self,
        bytes: Option<Vec<u8>>,
        what: &str,
    ) -> Result<M, StoreError> {
        let Some(bytes) = bytes else { return Ok(M::default()) };
        M::parse_from_bytes(&bytes).map_err(|source| StoreError::Corrupt {
            path: self.path.clone(),
            what: what.into(),
            source,
        })
    }

    fn check_append(&self, first: u64) -> Result<(), StoreError> {
        if first < self.first_index || first > self.last_index + 1 {
            return Err(self.invalid(format!(
                "append at index {first}, expected one from {} to {}",
                self.first_index,
                self.last_index + 1
            )));
        }
        Ok(())
    }

    fn check_poisoned(&self) -> Result<(), StoreError> {
        if self.poisoned {
            return Err(StoreError::Poisoned { path: self.path.clone() });
        }
        Ok(())
    }

    fn invalid(&self, problem: String) -> StoreError {
        StoreError::Invalid { path: self.path.clone(), problem }
    }

    /// Runs `body` in a write transaction; [`Self::finish`] commits it.
    fn write<T>(
        &self,
        body: impl FnOnce(&redb::WriteTransaction) -> Result<T, redb::Error>,
    ) -> Result<(redb::WriteTransaction, T), redb::Error> {
        let txn = self.db.begin_write()?;
        let value = body(&txn)?;
        Ok((txn, value))
    }

    /// Commits a transaction built by [`Self::write`]; any failure poisons the storage.
    fn finish<T>(
        &mut self,
        built: Result<(redb::WriteTransaction, T), redb::Error>,
        durability: redb::Durability,
    ) -> Result<T, StoreError> {
        let committed = built.and_then(|(mut txn, value)| {
            txn.set_durability(durability)?;
            txn.commit()?;
            Ok(value)
        });
        committed.map_err(|e| {
            self.poisoned = true;
            redb_error(&self.path, e)
        })
    }

    fn read<T>(&self, body: impl FnOnce(&redb::ReadTransaction) -> Result<T, redb::Error>) -> Result<T, StoreError> {
        let txn = self.db.begin_read().map_err(|e| redb_error(&self.path, e))?;
        body(&txn).map_err(|e| redb_error(&self.path, e))
    }

    fn read_entries(&self, low: u64, high: u64, max_size: Option<u64>) -> Result<Vec<Entry>, StoreError> {
        let rows = self.read(|txn| {
            let log = txn.open_table(LOG)?;
            let mut rows = Vec::new();
            for row in log.range(low..high)? {
                let (_, value) = row?;
                rows.push(value.value().to_vec());
            }
            Ok(rows)
        })?;
        let mut entries = Vec::with_capacity(rows.len());
        for row in rows {
            entries.push(self.decode_entry(&row)?);
        }
        raft::util::limit_size(&mut entries, max_size);
        Ok(entries)
    }

    fn decode_entry(&self, row: &[u8]) -> Result<Entry, StoreError> {
        let body = row.get(8..).unwrap_or_default();
        Entry::parse_from_bytes(body).map_err(|source| StoreError::Corrupt {
            path: self.path.clone(),
            what: "log entry".into(),
            source,
        })
    }

    fn stored_term(&self, idx: u64) -> Result<Option<u64>, StoreError> {
        let row = self.read(|txn| Ok(txn.open_table(LOG)?.get(idx)?.map(|v| v.value().to_vec())))?;
        Ok(row.and_then(|r| r.get(..8).and_then(|b| b.try_into().ok())).map(u64::from_be_bytes))
    }
}

impl Storage for RedbStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        self.check_poisoned().map_err(unavailable)?;
        Ok(RaftState { hard_state: self.hard_state.clone(), conf_state: self.conf_state.clone() })
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        self.check_poisoned().map_err(unavailable)?;
        if low < self.first_index {
            return Err(raft::Error::Store(raft::StorageError::Compacted));
        }
        if high > self.last_index + 1 || low > high {
            return Err(raft::Error::Store(raft::StorageError::Unavailable));
        }
        self.read_entries(low, high, max_size.into()).map_err(unavailable)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        self.check_poisoned().map_err(unavailable)?;
        let snapshot = self.snapshot.get_metadata();
        if idx == snapshot.index {
            return Ok(snapshot.term);
        }
        if idx < self.first_index {
            return Err(raft::Error::Store(raft::StorageError::Compacted));
        }
        if idx > self.last_index {
            return Err(raft::Error::Store(raft::StorageError::Unavailable));
        }
        self.stored_term(idx).map_err(unavailable)?.ok_or(raft::Error::Store(raft::StorageError::Unavailable))
    }

    fn first_index(&self) -> raft::Result<u64> {
        self.check_poisoned().map_err(unavailable)?;
        Ok(self.first_index)
    }

    fn last_index(&self) -> raft::Result<u64> {
        self.check_poisoned().map_err(unavailable)?;
        Ok(self.last_index)
    }

    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        self.check_poisoned().map_err(unavailable)?;
        if self.snapshot.get_metadata().index < request_index {
            return Err(raft::Error::Store(raft::StorageError::SnapshotTemporarilyUnavailable));
        }
        Ok(self.snapshot.clone())
    }
}

/// raft-rs's storage errors carry no detail: log ours before collapsing it.
fn unavailable(error: StoreError) -> raft::Error {
    tracing::error!(%error, "raft store read failed");
    raft::Error::Store(raft::StorageError::Unavailable)
}

fn redb_error(path: &Path, source: impl Into<redb::Error>) -> StoreError {
    StoreError::Redb { path: path.to_owned(), source: source.into() }
}

fn encode(message: &impl protobuf::Message) -> Result<Vec<u8>, redb::Error> {
    message.write_to_bytes().map_err(|e| redb::Error::Corrupted(format!("protobuf encoding failed: {e}")))
}

fn encode_entry(entry: &Entry) -> Result<Vec<u8>, redb::Error> {
    let mut row = entry.term.to_be_bytes().to_vec();
    row.extend(encode(entry)?);
    Ok(row)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    fn entry(index: u64, term: u64, data: &[u8]) -> Entry {
        Entry { index, term, data: data.to_vec().into(), ..Entry::default() }
    }

    fn open(dir: &tempfile::TempDir) -> RedbStorage {
        RedbStorage::open(&dir.path().join("raft.redb"), &[1]).expect("opens")
    }

    #[test]
    fn entries_and_hard_state_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut store = open(&dir);
        assert_eq!(store.initial_state().expect("state").conf_state.voters, [1]);
        let hs = HardState { term: 2, vote: 1, commit: 2, ..HardState::default() };
        store.persist(&[entry(1, 1, b"a"), entry(2, 2, b"b"), entry(3, 2, b"c")], Some(&hs)).expect("persists");
        drop(store);
        let store = open(&dir);
        assert_eq!(store.initial_state().expect("state").hard_state, hs);
        assert_eq!((store.first_index().expect("first"), store.last_index().expect("last")), (1, 3));
        let got = store.entries(2, 4, None, GetEntriesContext::empty(false)).expect("entries");
        assert_eq!(got, vec![entry(2, 2, b"b"), entry(3, 2, b"c")]);
        assert_eq!(store.term(3).expect("term"), 2);
        assert!(store.entries(2, 9, None, GetEntriesContext::empty(false)).is_err());
    }

    #[test]
    fn a_conflicting_suffix_is_replaced() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut store = open(&dir);
        store.persist(&[entry(1, 1, b"a"), entry(2, 1, b"b"), entry(3, 1, b"c")], None).expect("persists");
        store.persist(&[entry(2, 2, b"x")], None).expect("persists");
        assert_eq!(store.last_index().expect("last"), 2);
        let got = store.entries(1, 3, None, GetEntriesContext::empty(false)).expect("entries");
        assert_eq!(got, vec![entry(1, 1, b"a"), entry(2, 2, b"x")]);
        let gap = store.persist(&[entry(9, 2, b"gap")], None).expect_err("a gap is refused");
        assert!(gap.to_string().contains("append at index 9, expected one from 1 to 3"), "{gap}");
    }

    /// A memory backend whose fsync fails while `fail` is set.
    #[derive(Debug, Default)]
    pub(crate) struct FlakyFsync {
        inner: redb::backends::InMemoryBackend,
        pub(crate) fail: std::sync::Arc<std::sync::atomic::AtomicBool>,
    }

    impl redb::StorageBackend for FlakyFsync {
        fn len(&self) -> std::io::Result<u64> {
            self.inner.len()
        }
        fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
            self.inner.read(offset, out)
        }
        fn set_len(&self, len: u64) -> std::io::Result<()> {
            self.inner.set_len(len)
        }
        fn sync_data(&self) -> std::io::Result<()> {
            if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(std::io::Error::other("injected fsync failure"));
            }
            self.inner.sync_data()
        }
        fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
            self.inner.write(offset, data)
        }
    }

    #[test]
    fn a_failed_fsync_poisons_the_store_for_good() {
        let backend = FlakyFsync::default();
        let fail = std::sync::Arc::clone(&backend.fail);
        let db = Database::builder().create_with_backend(backend).expect("in-memory database");
        let mut store = RedbStorage::from_database(db, Path::new("flaky"), &[1]).expect("opens");
        store.persist(&[entry(1, 1, b"a")], None).expect("persists");
        fail.store(true, std::sync::atomic::Ordering::SeqCst);
        let error = store.persist(&[entry(2, 1, b"b")], None).expect_err("fsync fails");
        assert!(error.to_string().starts_with("raft store `flaky`"), "{error}");
        fail.store(false, std::sync::atomic::Ordering::SeqCst);
        let again = store.persist(&[entry(2, 1, b"b")], None).expect_err("no retry after a failed fsync");
        assert_eq!(again.to_string(), "raft store `flaky` refuses work after an earlier i/o error");
        assert!(store.last_index().is_err());
        assert!(store.entries(1, 2, None, GetEntriesContext::empty(false)).is_err());
    }

    #[test]
    fn snapshots_compact_the_log_and_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut store = open(&dir);
        store.persist(&[entry(1, 1, b"a"), entry(2, 1, b"b"), entry(3, 1, b"c")], None).expect("persists");
        store.compact_to_snapshot(2, b"state at 2".to_vec()).expect("snapshots");
        assert!(store.compact_to_snapshot(2, vec![]).is_err());
        drop(store);
        let store = open(&dir);
        assert_eq!((store.first_index().expect("first"), store.last_index().expect("last")), (3, 3));
        assert_eq!(store.term(2).expect("the snapshot's term"), 1);
        assert!(matches!(store.term(1), Err(raft::Error::Store(raft::StorageError::Compacted))));
        assert_eq!(store.hard_state().commit, 2);
        let snapshot = store.snapshot(2, 0).expect("snapshot");
        assert_eq!(&snapshot.data[..], b"state at 2");
        assert_eq!(snapshot.get_metadata().get_conf_state().voters, [1]);
    }
}
