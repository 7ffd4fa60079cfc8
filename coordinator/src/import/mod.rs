//! Importing results measured elsewhere into result records: [`legacy`] reads the Python
//! framework's benchmark JSON.
//!
//! Must never: do I/O (parsers take bytes and a label; the CLI reads files and writes the
//! warehouse), or produce a record that could pass for one accelbench measured.

pub mod legacy;
