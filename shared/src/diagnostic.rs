//! TODO(owner): diagnostic
