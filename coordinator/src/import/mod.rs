//! Importing results written elsewhere.
pub mod legacy;
