//! Formatting of results: human tables (`table`), JSON (`json`), and pcapng of events (`pcapng`).

pub mod json;
pub mod pcapng;
pub mod table;
