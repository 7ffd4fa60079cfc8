//! The model axis: a name must be in the catalog (any case; the catalog's spelling is
//! kept), and a name that is not gets the nearest catalog names as suggestions.
//!
//! Must never: accept a name the catalog does not have.

use super::check::{refuse, Refusal};
use super::GLOB_OPTIONS;
use crate::catalog;

/// One element of `matrix.models`: the catalog's spelling of it.
pub(super) fn model(raw: &String) -> Result<String, Refusal> {
    match catalog::lookup(raw) {
        Some(m) => Ok(m.name.to_owned()),
        None => {
            Err(refuse(format!("`{raw}`"), format!("a catalog model; closest: {}", closest_models(raw).join(", "))))
        }
    }
}

/// Whether an exclude's model pattern matches some catalog model.
pub(super) fn matches_a_model(pattern: &glob::Pattern) -> bool {
    catalog::all().iter().any(|m| pattern.matches_with(m.name, GLOB_OPTIONS))
}

/// Up to three catalog names nearest to `name` (case-insensitive): by edit distance to
/// the whole name, or to its prefix of the same length plus one, so that a truncated
/// name (`bert-bas`) finds its model before a short one that happens to be near.
pub(super) fn closest_models(name: &str) -> Vec<&'static str> {
    let wanted = name.to_ascii_lowercase();
    let score = |candidate: &str| {
        let candidate = candidate.to_ascii_lowercase();
        let prefix: String = candidate.chars().take(wanted.chars().count()).collect();
        edit_distance(&wanted, &candidate).min(edit_distance(&wanted, &prefix) + 1)
    };
    let mut scored: Vec<(usize, &'static str)> = catalog::all().iter().map(|m| (score(m.name), m.name)).collect();
    scored.sort();
    scored.into_iter().take(3).map(|(_, name)| name).collect()
}

/// Levenshtein distance over chars.
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}
