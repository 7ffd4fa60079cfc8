//! Agent.
pub mod detect;
