//! Cell keys: the stable identity of a cell within its sweep, and the versioned
//! encoding it hashes.
//!
//! Must never: change the encoding of an existing [`CELL_KEY_VERSION`]; every stored
//! result is joined to its cell through it.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Cell;

/// The stable identity of a cell within its sweep: 64 lowercase hex digits of a
/// SHA-256. The idempotency key of the cell's results.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CellKey(String);

impl CellKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CellKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cell key `{0}`, expected 64 lowercase hex digits")]
pub struct InvalidCellKey(pub String);

impl TryFrom<String> for CellKey {
    type Error = InvalidCellKey;
    fn try_from(text: String) -> Result<CellKey, InvalidCellKey> {
        let ok = text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if ok {
            Ok(CellKey(text))
        } else {
            Err(InvalidCellKey(text))
        }
    }
}

impl std::str::FromStr for CellKey {
    type Err = InvalidCellKey;
    fn from_str(text: &str) -> Result<CellKey, InvalidCellKey> {
        CellKey::try_from(text.to_owned())
    }
}

impl From<CellKey> for String {
    fn from(key: CellKey) -> String {
        key.0
    }
}

/// Names the encoding below; bump it (and keep the old one readable) to change it.
pub const CELL_KEY_VERSION: &str = "accelbench-cell-key/1";

impl Cell {
    /// The cell's key: SHA-256 over a versioned, length-prefixed encoding of the sweep's
    /// name and every coordinate (selector constraints and resolved class included).
    ///
    /// The sweep identity is the spec's `name`, not the sweep id: the id is a UUIDv7
    /// (random and time-based), while the name makes the same spec give the same keys on
    /// any machine and on every resubmission, so a nightly sweep's cells can be joined
    /// night to night. The measurement policy is deliberately left out: tightening the
    /// CI target does not make a cell a different cell.
    pub fn key(&self, sweep_name: &str) -> CellKey {
        let mut hasher = Sha256::new();
        hasher.update(self.canonical_encoding(sweep_name));
        CellKey(hex::encode(hasher.finalize()))
    }

    /// `label=len:value` lines (or `label=-` for an absent value) in a fixed order. The
    /// length prefix makes the encoding injective whatever a name or glob contains.
    pub(super) fn canonical_encoding(&self, sweep_name: &str) -> String {
        let gib = self.hardware.min_memory_gib.map(|g| g.to_string());
        let fields: [(&str, Option<&str>); 12] = [
            ("version", Some(CELL_KEY_VERSION)),
            ("sweep", Some(sweep_name)),
            ("model", Some(&self.model)),
            ("hardware.kind", Some(self.hardware.kind.as_str())),
            ("hardware.min_memory_gib", gib.as_deref()),
            ("hardware.name", self.hardware.name.as_deref()),
            ("hardware_class", self.hardware_class.as_deref()),
            ("batch", Some(&self.batch.to_string())),
            ("seq_len", Some(&self.seq_len.to_string())),
            ("precision", Some(self.precision.as_str())),
            ("mode", Some(self.mode.as_str())),
            ("engine", Some(self.engine.as_str())),
        ];
        let mut out = String::new();
        for (label, value) in fields {
            match value {
                Some(v) => out.push_str(&format!("{label}={}:{v}\n", v.len())),
                None => out.push_str(&format!("{label}=-\n")),
            }
        }
        // Appended only when set, so that the keys of cells not pinned to an agent are
        // the keys they always had.
        if let Some(agent) = &self.agent_id {
            out.push_str(&format!("agent_id={}:{agent}\n", agent.len()));
        }
        out
    }
}
