//! The accelbench coordinator and user CLI (`accelbench`).
//!
//! Layout:
//! - [`cli`]: the `accelbench` command line, one file per noun.
//! - [`warehouse`]: Parquet files through object_store, the committed-files manifest,
//!   gc and compaction.
//! - [`query`]: DuckDB over the committed files, confined for user SQL; derived views.
//! - [`report`]: the standard reports (Markdown, CSV, JSON, HTML with SVG charts).
//! - [`import`]: result JSON lines and the legacy framework's JSON.
//! - [`state`]: the replicated state machine (sweeps, cells, leases, manifest): a pure,
//!   deterministic `apply(&mut State, Command) -> Outcome`.
//! - [`scheduler`]: which pending cells an agent gets (a pure `solve`).
//! - [`server`]: `accelbench serve`, the gRPC services over Raft and the warehouse.
//! - [`raft`]: the single-voter raft-rs node that orders commands, on a redb log.
//!
//! Architecture invariant: this is the only crate that may know Raft, DuckDB, Parquet and
//! HTTP. It links the agent library only to offer an in-process agent for quickstart.

pub mod answers;
pub mod cli;
pub mod dashboard;
pub mod import;
pub mod query;
pub mod raft;
pub mod report;
pub mod scheduler;
pub mod server;
pub mod sim;
pub mod state;
pub mod warehouse;
