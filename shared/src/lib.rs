//! The accelbench domain, shared by every other crate.
//!
//! Layout:
//! - [`diagnostic`]: one validation problem (field path, bad value, what is allowed).
//! - [`hardware`]: hardware kinds and hardware classes (`cuda/NVIDIA H100 80GB HBM3`).
//! - [`catalog`]: the named models users ask for, their configs, parameter counts, FLOPs.
//! - [`spec`]: the sweep spec (TOML/JSON) and its validation.
//! - [`cell`]: matrix expansion into cells, stable cell keys, excludes, fan-out.
//! - [`stats`]: summary statistics over raw samples.
//! - [`fingerprint`]: what an agent knows about its machine; hardware classes.
//! - [`device_group`]: an agent's device groups (from its fingerprint) and which cells
//!   each can run.
//! - [`result`]: the result record of one attempt.
//! - [`calibration`]: a device's measured GEMM rate and memory bandwidth.
//!
//! Architecture invariant: this crate does no I/O, no async, no network and never reads
//! the clock. Functions that need a time take it as an argument. It knows nothing of
//! tonic, raft, Parquet or candle.

pub mod calibration;
pub mod catalog;
pub mod cell;
pub mod device_group;
pub mod diagnostic;
pub mod fingerprint;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
pub mod hardware;
pub mod ids;
pub mod result;
pub mod runner;
pub mod spec;
pub mod stats;
