//! Which results an answer looks at: a sweep id, `all`, or `column=value` filters
//! (`engine_version=0.9.1,hardware_class=cpu/AMD EPYC 7B13`) on a fixed set of columns.
//! Values are quoted as SQL strings and columns come from the list below only, so a
//! selection can never become SQL of its own.

use std::fmt;

use crate::query::sql_string;

/// Columns a selection may filter on: what tells two runs apart.
pub const FILTER_COLUMNS: [&str; 13] = [
    "sweep_id",
    "model",
    "hardware_class",
    "precision",
    "mode",
    "engine",
    "engine_version",
    "agent_version",
    "git_commit",
    "fingerprint_hash",
    "agent_id",
    "origin",
    "weights_source",
];

/// A parsed selection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// (column, value) pairs, all of which must hold; empty: every result.
    filters: Vec<(&'static str, String)>,
    text: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SelectionError {
    #[error("`{0}`: expected a sweep id, `all`, or column=value[,column=value…]")]
    Malformed(String),
    #[error("`{column}` cannot be filtered on; use one of: {}", FILTER_COLUMNS.join(", "))]
    UnknownColumn { column: String },
}

impl Selection {
    pub fn parse(text: &str) -> Result<Selection, SelectionError> {
        let text = text.trim();
        if text == "all" {
            return Ok(Selection { filters: Vec::new(), text: text.into() });
        }
        if !text.contains('=') {
            // A sweep id (or a local run's id): letters, digits, `-`, `_`, `:`.
            let plain = !text.is_empty()
                && text.len() <= 128
                && text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':'));
            if !plain {
                return Err(SelectionError::Malformed(text.into()));
            }
            return Ok(Selection { filters: vec![("sweep_id", text.into())], text: text.into() });
        }
        let mut filters = Vec::new();
        for part in text.split(',') {
            let (column, value) = part.split_once('=').ok_or_else(|| SelectionError::Malformed(text.into()))?;
            let column = column.trim();
            let known = FILTER_COLUMNS
                .iter()
                .find(|c| **c == column)
                .ok_or_else(|| SelectionError::UnknownColumn { column: column.into() })?;
            filters.push((*known, value.trim().to_string()));
        }
        Ok(Selection { filters, text: text.into() })
    }

    /// Every result whose `column` equals `value` for each pair (values may hold commas
    /// or `=`, which the text form cannot say); `columns` must be [`FILTER_COLUMNS`].
    pub fn exact(pairs: &[(&str, &str)]) -> Result<Selection, SelectionError> {
        let mut filters = Vec::new();
        for (column, value) in pairs {
            let known = FILTER_COLUMNS
                .iter()
                .find(|c| *c == column)
                .ok_or_else(|| SelectionError::UnknownColumn { column: column.to_string() })?;
            filters.push((*known, value.to_string()));
        }
        let text = pairs.iter().map(|(c, v)| format!("{c}={v}")).collect::<Vec<_>>().join(",");
        Ok(Selection { filters, text })
    }

    /// The part of [`Selection::condition`] on `columns` only (`TRUE` if none): how
    /// another table that has some of the columns (`samples` has `sweep_id`) is narrowed
    /// to the same files.
    pub fn condition_on(&self, alias: &str, columns: &[&str]) -> String {
        let parts: Vec<String> = self
            .filters
            .iter()
            .filter(|(c, _)| columns.contains(c))
            .map(|(c, v)| format!("{alias}.\"{c}\" = {}", sql_string(v)))
            .collect();
        if parts.is_empty() {
            "TRUE".into()
        } else {
            parts.join(" AND ")
        }
    }

    /// The SQL condition on a `results` row aliased `alias`; `TRUE` for `all`.
    pub fn condition(&self, alias: &str) -> String {
        if self.filters.is_empty() {
            return "TRUE".into();
        }
        let parts: Vec<String> =
            self.filters.iter().map(|(c, v)| format!("{alias}.\"{c}\" = {}", sql_string(v))).collect();
        parts.join(" AND ")
    }
}

impl fmt::Display for Selection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_ids_all_and_filters_parse_into_quoted_conditions() {
        let id = Selection::parse("0190c6a2-7a3e-7d1c-9a55-3c2b1e0f4d8a").unwrap();
        assert_eq!(id.condition("r"), "r.\"sweep_id\" = '0190c6a2-7a3e-7d1c-9a55-3c2b1e0f4d8a'");
        assert_eq!(Selection::parse("all").unwrap().condition("r"), "TRUE");
        let f = Selection::parse("engine_version=0.9, hardware_class=cpu/O'Brien CPU").unwrap();
        assert_eq!(f.condition("r"), "r.\"engine_version\" = '0.9' AND r.\"hardware_class\" = 'cpu/O''Brien CPU'");
    }

    #[test]
    fn anything_else_is_refused_naming_it() {
        assert_eq!(
            Selection::parse("latency_p50_ns=1").unwrap_err(),
            SelectionError::UnknownColumn { column: "latency_p50_ns".into() }
        );
        for bad in ["", "x y", "1; DROP TABLE results", "a,b=c"] {
            assert!(Selection::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Selection::parse("sweep_id=x'; SELECT 1 --").unwrap().condition("r").ends_with("'x''; SELECT 1 --'"));
    }
}
