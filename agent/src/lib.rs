//! The accelbench agent: what runs on a lab machine.
//!
//! Layout:
//! - [`detect`]: hardware fingerprinting (CPU, NVIDIA via NVML, AMD, Apple, Snapdragon).
//! - [`engine`]: the built-in candle engine (models of the catalog, weights, precisions).
//! - [`measure`]: the measurement loop and energy counters.
//! - [`cell`]: one cell in a child process (`exec-cell`) and the parent that runs it.
//! - [`placement`]: the device a leased cell runs on, or why it cannot run here.
//! - [`runners`]: external engines' runners (docs/RUNNERS.md) and their handshake.
//! - [`slots`]: the device slots (CPU, each CUDA device) cells run in, one cell each.
//! - [`worker`]: `accelbench-agent run`, the loop against a coordinator.
//! - [`spool`]: results kept on disk until the coordinator acknowledges them.
//! - [`calibrate`]: GEMM and memory-copy micro-benchmarks per device, sent at registration.
//! - [`bench`]: local runs of a matrix on this machine (`accelbench-agent bench`).
//! - [`cli`]: the `accelbench-agent` command line; [`config`]: its `--config` file.
//! - [`tls`]: rustls for the HTTP (metrics) listeners, shared with the coordinator.
//!
//! Logs, traces and trace context across processes are the `telemetry` crate's, shared
//! with the coordinator.
//!
//! Architecture invariant: the agent never links DuckDB, Raft or the warehouse; it must
//! stay lean enough to build for a Snapdragon board or a Mac.

pub mod bench;
pub mod calibrate;
pub mod cell;
pub mod cli;
pub mod config;
pub mod detect;
pub mod doctor;
pub mod engine;
pub mod measure;
pub mod metrics;
pub mod placement;
pub mod runners;
pub mod slots;
pub mod spool;
pub mod tls;
pub mod worker;

/// The agent's version, as recorded in result provenance.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The git commit this binary was built from (`-dirty` if the tree had changes).
pub const GIT_COMMIT: &str = env!("ACCELBENCH_GIT_COMMIT");

/// `--version` text of both binaries: version and commit.
pub const LONG_VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("ACCELBENCH_GIT_COMMIT"), ")");
