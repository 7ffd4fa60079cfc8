//! TODO(owner): spec
