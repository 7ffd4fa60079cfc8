//! Answers over the warehouse, not just rows: `compare` (is B slower than A?),
//! `regressions` (what got slower, from which run), `predict` (a cell nobody measured,
//! with an interval) and `recommend` (which class should run a model). The statistics are the pure
//! `analysis` crate's; this module chooses the data with DuckDB (through the same
//! confined [`crate::query::QueryEngine`] as `accelbench query`) and shapes the output.

pub mod columns;
pub mod compare;
pub mod predict;
pub mod recommend;
pub mod regressions;
pub mod scorecard;
pub mod selection;

#[cfg(test)]
mod tests;
