//! TODO(owner): result
