//! Domain types of accelbench.
