//! Integration tests: one target, modules by area.
