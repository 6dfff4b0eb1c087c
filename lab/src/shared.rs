//! The third-party captures every test suite may read: `$MPTCP_SHARED_DIR/pcaps`, else
//! `shared/pcaps` beside the workspace. They are not in the repository; a test that needs them
//! skips itself, saying where it looked.

use std::path::{Path, PathBuf};

use crate::skip::skip;

/// The directory of the shared captures, or `None` after recording that `test` skips itself
/// because they are absent.
pub fn shared_pcaps(test: &str) -> Option<PathBuf> {
    let shared = std::env::var_os("MPTCP_SHARED_DIR")
        .map_or_else(|| workspace_root().join("../shared"), PathBuf::from);
    let pcaps = shared.join("pcaps");
    if pcaps.join("client_2.pcap").is_file() {
        Some(pcaps)
    } else {
        skip(
            test,
            format!(
                "no shared captures in {} (set MPTCP_SHARED_DIR)",
                pcaps.display()
            ),
        );
        None
    }
}

/// The workspace this crate belongs to.
fn workspace_root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}
