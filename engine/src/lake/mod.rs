//! The lake past the loader's disk: object stores (`store`) and Delta Lake tables (`delta`).
//!
//! Sinks write into the lake and `engine lake` maintains it; both reach a store and a table the
//! same way through this module, so what a pipeline file says of a lake (its `path`, `endpoint`,
//! `allow_http`, `region`) means one thing everywhere.

pub mod delta;
pub mod store;
