//! TODO(owner): cell
