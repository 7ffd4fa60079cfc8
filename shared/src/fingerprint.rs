//! TODO(owner): fingerprint
