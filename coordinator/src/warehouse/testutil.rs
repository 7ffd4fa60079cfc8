//! Test helpers: plausible result records without an agent. Test-only; never used to
//! produce data that is stored outside a test's temporary folder.

use shared::result::ResultRecord;

/// An `ok` record of `sweep_id`/`cell_key`/`attempt` with these samples (ns), started
/// 2025-03-05T19:57:13Z (`shared::fixtures::ok_record`).
pub fn record(sweep_id: &str, cell_key: &str, attempt: u32, samples_ns: &[f64]) -> ResultRecord {
    ResultRecord { attempt, ..shared::fixtures::ok_record(sweep_id, cell_key, samples_ns) }
}
