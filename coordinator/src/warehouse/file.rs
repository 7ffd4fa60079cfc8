//! The warehouse's files as every part of the coordinator names them: a [`Table`] and a
//! [`FileEntry`]. One type on the whole commit path: the committer stages entries,
//! Raft replicates the same entries in `CompleteCells`/`CommitFiles`, the warehouse
//! manifest commits them, and a restart mirrors Raft's entries into the manifest.
//!
//! Stored (Raft log, snapshots, manifest commits): a field that changes meaning bumps
//! the manifest's `FORMAT`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The tables of the warehouse; each is a top-level folder of Parquet files. Their
/// columns are in `schema.rs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    Results,
    Samples,
    Agents,
    Sweeps,
    Cells,
    /// Regression alarms `accelbench regressions --record` found: derived, never measured.
    Alarms,
    /// Agents' GEMM and memory-copy micro-benchmarks, appended when they register.
    Calibrations,
    /// What `accelbench predict` answered: derived, never measured.
    Predictions,
}

impl Table {
    pub const ALL: [Table; 8] = [
        Table::Results,
        Table::Samples,
        Table::Agents,
        Table::Sweeps,
        Table::Cells,
        Table::Alarms,
        Table::Calibrations,
        Table::Predictions,
    ];

    /// The folder name, also the name of the DuckDB view.
    pub fn as_str(self) -> &'static str {
        match self {
            Table::Results => "results",
            Table::Samples => "samples",
            Table::Agents => "agents",
            Table::Sweeps => "sweeps",
            Table::Cells => "cells",
            Table::Alarms => "alarms",
            Table::Calibrations => "calibrations",
            Table::Predictions => "predictions",
        }
    }

    pub fn parse(name: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl Serialize for Table {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Table {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Table, D::Error> {
        let name = String::deserialize(d)?;
        Table::parse(&name).ok_or_else(|| serde::de::Error::custom(format!("unknown table `{name}`")))
    }
}

/// One data file of the warehouse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Object path relative to the warehouse root, e.g. `results/date=…/sweep=…/….parquet`.
    pub path: String,
    pub table: Table,
    /// `n_rows` in Raft entries written before this type was shared.
    #[serde(alias = "n_rows")]
    pub rows: u64,
    /// Size in bytes; 0 in Raft entries written before this type was shared (the restart
    /// mirror then reads the size from the store).
    #[serde(default)]
    pub bytes: u64,
}

impl FileEntry {
    /// Whether two entries describe the same committed file: same path, table and rows
    /// (bytes are not compared, since older Raft entries lack them).
    pub fn same_file(&self, other: &FileEntry) -> bool {
        (&self.path, self.table, self.rows) == (&other.path, other.table, other.rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_read_both_the_raft_and_the_manifest_spellings() {
        let old_raft = r#"{"path":"results/a.parquet","table":"results","n_rows":3}"#;
        let manifest = r#"{"path":"results/a.parquet","table":"results","rows":3,"bytes":99}"#;
        let (a, b): (FileEntry, FileEntry) =
            (serde_json::from_str(old_raft).unwrap(), serde_json::from_str(manifest).unwrap());
        assert!(a.same_file(&b));
        assert_eq!((a.bytes, b.bytes), (0, 99));
        assert_eq!(serde_json::to_string(&b).unwrap(), manifest);
        let bad = r#"{"path":"x","table":"../etc","rows":1}"#;
        assert!(serde_json::from_str::<FileEntry>(bad).unwrap_err().to_string().contains("unknown table `../etc`"));
    }
}
