//! The accelbench coordinator and user CLI (`accelbench`).
//!
//! Layout:
//! - [`cli`]: the `accelbench` command line, one file per noun.
//!
//! Architecture invariant: this is the only crate that may know Raft, DuckDB, Parquet and
//! HTTP. It links the agent library only to offer an in-process agent for quickstart.

pub mod cli;
