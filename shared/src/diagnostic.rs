//! Diagnostics: one validation problem each, naming the field path, the bad value and
//! what is allowed, so a user can fix every problem of a spec in one pass.
//!
//! Also home of [`UnknownName`], the error of every `FromStr` over a closed set of names
//! (precisions, modes, engines, …), and of the `named_enum!` macro that builds those enums.
//!
//! Must never: do I/O, read the clock, or format messages with a capital letter or a
//! closing full stop (they are embedded in longer messages).

use std::fmt;

use serde::Serialize;

/// One problem found while reading or validating user input.
///
/// Renders as `matrix.batch_sizes[2]: got 0, expected an integer >= 1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Where the problem is: a field path such as `matrix.batch_sizes[2]`, or
    /// `line 3, column 7` for a syntax error.
    pub path: String,
    /// The offending value, rendered as the user wrote it (strings in backticks).
    pub value: String,
    /// What would have been accepted.
    pub expected: String,
}

impl Diagnostic {
    pub fn new(path: impl Into<String>, value: impl Into<String>, expected: impl Into<String>) -> Diagnostic {
        Diagnostic { path: path.into(), value: value.into(), expected: expected.into() }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: got {}, expected {}", self.path, self.value, self.expected)
    }
}

impl std::error::Error for Diagnostic {}

/// Every problem found in one input, in the order they were found.
///
/// An error type (so `?` works into `anyhow`), displayed one diagnostic per line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn into_vec(self) -> Vec<Diagnostic> {
        self.0
    }
}

impl std::ops::Deref for Diagnostics {
    type Target = [Diagnostic];
    fn deref(&self) -> &[Diagnostic] {
        &self.0
    }
}

impl From<Vec<Diagnostic>> for Diagnostics {
    fn from(diagnostics: Vec<Diagnostic>) -> Diagnostics {
        Diagnostics(diagnostics)
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let noun = if self.0.len() == 1 { "problem" } else { "problems" };
        write!(f, "{} {noun}", self.0.len())?;
        for diagnostic in &self.0 {
            write!(f, "\n  {diagnostic}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// A name outside a closed set, e.g. precision `fp8`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{got}`, expected one of {}", allowed.join(", "))]
pub struct UnknownName {
    /// What kind of name it was: `precision`, `mode`, ….
    pub what: &'static str,
    pub got: String,
    pub allowed: &'static [&'static str],
}

impl UnknownName {
    /// The same problem as a diagnostic at `path`.
    pub fn at(&self, path: impl Into<String>) -> Diagnostic {
        Diagnostic::new(path, format!("`{}`", self.got), format!("one of {}", self.allowed.join(", ")))
    }
}

/// Declares a closed enum of names, each spelt exactly one way (lowercase), with serde,
/// `Display`, `FromStr` (error [`UnknownName`]), `ALL`, `NAMES` and `as_str`.
///
/// One macro so that the serde spelling, the display and the parser can never disagree.
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident as $what:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize,
        )]
        $vis enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// Every accepted spelling, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::diagnostic::UnknownName;
            fn from_str(s: &str) -> Result<$name, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::diagnostic::UnknownName {
                        what: $what,
                        got: s.to_owned(),
                        allowed: $name::NAMES,
                    }),
                }
            }
        }
    };
}
pub(crate) use named_enum;

#[cfg(test)]
mod tests {
    use super::*;

    named_enum! {
        enum Colour as "colour" {
            Red = "red",
            Dark = "dark_blue",
        }
    }

    #[test]
    fn diagnostic_renders_path_value_and_expectation() {
        let d = Diagnostic::new("matrix.batch_sizes[2]", "0", "an integer >= 1");
        assert_eq!(d.to_string(), "matrix.batch_sizes[2]: got 0, expected an integer >= 1");
    }

    #[test]
    fn diagnostics_list_every_problem() {
        let all = Diagnostics(vec![Diagnostic::new("a", "1", "2"), Diagnostic::new("b", "`x`", "y")]);
        assert_eq!(all.to_string(), "2 problems\n  a: got 1, expected 2\n  b: got `x`, expected y");
        assert_eq!(all.len(), 2);
    }

    #[test]
    fn named_enum_round_trips_and_lists_allowed_names() {
        for c in Colour::ALL {
            assert_eq!(c.as_str().parse::<Colour>(), Ok(*c));
            let json = serde_json::to_string(c).expect("serialises");
            assert_eq!(json, format!("\"{c}\""));
            assert_eq!(serde_json::from_str::<Colour>(&json).expect("parses"), *c);
        }
        let err = "green".parse::<Colour>().expect_err("green is no colour");
        assert_eq!(err.to_string(), "unknown colour `green`, expected one of red, dark_blue");
        assert_eq!(err.at("paint").to_string(), "paint: got `green`, expected one of red, dark_blue");
    }
}
