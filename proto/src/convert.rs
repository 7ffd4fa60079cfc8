//! Conversions between wire types and `shared`'s domain types, in one place. Every id
//! that arrives as a string is parsed here with the field named in the error, so the
//! same bad value gets the same `InvalidArgument` on every RPC.

use std::fmt::Display;
use std::str::FromStr;

use shared::cell::CellKey;
use shared::ids::SweepId;
use tonic::Status;

use crate::v1::LeaseRef;

/// Parses a string field of a request, naming the field and the value when it is bad
/// (the value cut to 80 characters: an error must not echo a megabyte back).
pub fn parse_field<T>(field: &str, value: &str) -> Result<T, Status>
where
    T: FromStr,
    T::Err: Display,
{
    value.parse().map_err(|e| {
        let shown: String = value.chars().take(80).collect();
        let cut = if shown.len() < value.len() { "…" } else { "" };
        Status::invalid_argument(format!("{field} {shown:?}{cut}: {e}"))
    })
}

/// A lease as the domain names it: the cell and the epoch that fences its result.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LeaseId {
    pub sweep_id: SweepId,
    pub cell_key: CellKey,
    pub epoch: u64,
}

impl LeaseRef {
    /// The lease's ids, parsed; `field` names where the lease sits in the request.
    pub fn to_domain(&self, field: &str) -> Result<LeaseId, Status> {
        Ok(LeaseId {
            sweep_id: parse_field(&format!("{field}.sweep_id"), &self.sweep_id)?,
            cell_key: parse_field(&format!("{field}.cell_key"), &self.cell_key)?,
            epoch: self.epoch,
        })
    }

    pub fn new(sweep_id: &SweepId, cell_key: &CellKey, attempt: u32, epoch: u64) -> LeaseRef {
        LeaseRef { sweep_id: sweep_id.to_string(), cell_key: cell_key.to_string(), attempt, epoch }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::ids::AgentId;

    #[test]
    fn a_bad_id_is_refused_naming_its_field_and_value() {
        let err = parse_field::<SweepId>("sweep_id", "nope").unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert!(err.message().starts_with("sweep_id \"nope\": not a sweep id"), "{}", err.message());
        let huge = "x".repeat(1 << 20);
        let err = parse_field::<AgentId>("agent_id", &huge).unwrap_err();
        assert!(err.message().len() < 300, "the error echoes the whole value: {} bytes", err.message().len());
    }

    #[test]
    fn lease_refs_round_trip() {
        let sweep_id: SweepId = "0190c6a2-7a3e-7d1c-9a55-3c2b1e0f4d8a".parse().unwrap();
        let cell_key: CellKey = "ab".repeat(32).parse().unwrap();
        let wire = LeaseRef::new(&sweep_id, &cell_key, 2, 9);
        assert_eq!(wire.to_domain("lease").unwrap(), LeaseId { sweep_id, cell_key, epoch: 9 });
        let bad = LeaseRef { cell_key: "short".into(), ..wire };
        let err = bad.to_domain("held[3]").unwrap_err();
        assert!(err.message().starts_with("held[3].cell_key \"short\""), "{}", err.message());
    }
}
