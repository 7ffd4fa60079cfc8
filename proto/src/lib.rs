//! accelbench wire types: the tonic/prost code generated from `proto/accelbench.proto`.
//!
//! Generated code plus conversions, nothing else. Structured values that `shared`
//! already defines (sweep spec, fingerprint, cell, result record) travel as JSON
//! strings and are decoded with [`decode_json`], which turns any malformed payload into
//! a `tonic::Status` naming the field, never a panic.

pub mod connect;
pub mod convert;
pub mod identity;

/// Generated from `proto/accelbench.proto` (package `accelbench.v1`).
pub mod v1 {
    tonic::include_proto!("accelbench.v1");
}

/// Decodes a JSON-carrying field of a request, naming the field in the error.
pub fn decode_json<T: serde::de::DeserializeOwned>(field: &str, json: &str) -> Result<T, tonic::Status> {
    if json.is_empty() {
        return Err(tonic::Status::invalid_argument(format!("{field}: missing")));
    }
    serde_json::from_str(json).map_err(|e| tonic::Status::invalid_argument(format!("{field}: invalid json: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_json_names_the_field() {
        let err = decode_json::<u32>("cell_json", "{").unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert!(err.message().starts_with("cell_json: invalid json"), "{}", err.message());
        let err = decode_json::<u32>("result_json", "").unwrap_err();
        assert_eq!(err.message(), "result_json: missing");
        assert_eq!(decode_json::<u32>("x", "7").unwrap(), 7);
    }
}
