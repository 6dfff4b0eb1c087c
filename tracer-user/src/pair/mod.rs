//! Two captures of the same traffic, taken at two points (typically the client and the server):
//! which connection of one is which of the other (`map`), and what happened between the two
//! capture points (one-way delays, losses, whether reinjections helped: `owd`, `reinjections`).
//!
//! Everything here reads the single-capture analysis's results and per-packet records
//! (`analysis::record`); nothing parses packets again.

pub mod error;
pub mod history;
pub mod map;
pub mod matcher;
pub mod owd;
mod quantiles;
pub mod reinjections;
mod tempfile;

pub use error::PairError;
