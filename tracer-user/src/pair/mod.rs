//! Two captures of the same traffic, taken at two points (typically the client and the server):
//! which connection of one is which of the other (`map`), and what happened between the two
//! capture points (one-way delays, losses, whether reinjections helped: `owd`, `reinjections`).
//!
//! Everything here reads the single-capture analysis's results and per-packet records
//! (`analysis::record`); nothing parses packets again. `reading` runs the analysis of both
//! captures at once for `matcher`, the one matching of packets; `owd` and `reinjections` build
//! their results on it (`history`: who carried a data range before), `render` writes them.

pub mod error;
pub mod history;
pub mod map;
pub mod matcher;
pub mod owd;
mod quantiles;
mod reading;
pub mod reinjections;
pub mod render;
mod tempfile;

pub use error::PairError;
