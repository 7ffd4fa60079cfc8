//! Bounds on a fingerprint an agent declares: what the coordinator stores and fans sweeps
//! out to must stay small whatever a (buggy or hostile) agent sends. One walk over the
//! serialised form covers every field, present and future: no string longer than
//! [`MAX_STRING_BYTES`], no list longer than [`MAX_LIST_LEN`], at most [`MAX_GPUS`]
//! accelerators (each one a device slot the scheduler plans for, and with its class a
//! target every `cuda` sweep fans out to).

use serde_json::Value;

use super::Fingerprint;

/// Most accelerators one agent may declare: the largest boxes in labs have 16; four
/// times that leaves room.
pub const MAX_GPUS: usize = 64;
/// Longest string anywhere in a fingerprint (CPU and GPU names, versions, flags).
pub const MAX_STRING_BYTES: usize = 256;
/// Longest list anywhere in a fingerprint (ISA flags are the longest real one, ~150).
pub const MAX_LIST_LEN: usize = 512;

impl Fingerprint {
    /// `Err` names the first field over a bound, and the bound.
    pub fn check_bounds(&self) -> Result<(), String> {
        if self.gpus.len() > MAX_GPUS {
            return Err(format!("gpus: {} devices, at most {MAX_GPUS}", self.gpus.len()));
        }
        let value = serde_json::to_value(self).map_err(|e| format!("not serialisable: {e}"))?;
        walk(&value, &mut String::new())
    }
}

fn walk(value: &Value, path: &mut String) -> Result<(), String> {
    let here = |path: &str| if path.is_empty() { "fingerprint".to_string() } else { path.to_string() };
    match value {
        Value::String(s) if s.len() > MAX_STRING_BYTES => {
            Err(format!("{}: {} bytes, at most {MAX_STRING_BYTES}", here(path), s.len()))
        }
        Value::Array(items) if items.len() > MAX_LIST_LEN => {
            Err(format!("{}: {} items, at most {MAX_LIST_LEN}", here(path), items.len()))
        }
        Value::Array(items) => items.iter().enumerate().try_for_each(|(i, item)| nested(path, &format!("[{i}]"), item)),
        Value::Object(fields) => fields.iter().try_for_each(|(k, item)| {
            let sep = if path.is_empty() { "" } else { "." };
            nested(path, &format!("{sep}{k}"), item)
        }),
        _ => Ok(()),
    }
}

fn nested(path: &mut String, step: &str, item: &Value) -> Result<(), String> {
    let len = path.len();
    path.push_str(step);
    let result = walk(item, path);
    path.truncate(len);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h100_box() -> Fingerprint {
        let text = include_str!("../../../agent/tests/fixtures/h100x8-fingerprint.json");
        serde_json::from_str(text).expect("fixture parses")
    }

    #[test]
    fn a_real_eight_gpu_box_is_within_bounds() {
        assert_eq!(h100_box().check_bounds(), Ok(()));
    }

    #[test]
    fn a_huge_gpu_name_is_refused_naming_the_field() {
        let mut fp = h100_box();
        fp.gpus[3].name = "H".repeat(3 << 20);
        assert_eq!(fp.check_bounds(), Err("gpus[3].name: 3145728 bytes, at most 256".into()));
    }

    #[test]
    fn a_thousand_fake_gpus_are_refused() {
        let mut fp = h100_box();
        let gpu = fp.gpus[0].clone();
        fp.gpus = vec![gpu; 1000];
        assert_eq!(fp.check_bounds(), Err("gpus: 1000 devices, at most 64".into()));
    }

    #[test]
    fn long_lists_anywhere_are_refused() {
        let mut fp = h100_box();
        fp.cpu.isa_flags = vec!["avx".into(); MAX_LIST_LEN + 1];
        assert_eq!(fp.check_bounds(), Err("cpu.isa_flags: 513 items, at most 512".into()));
    }
}
