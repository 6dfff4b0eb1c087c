//! Entering a named network namespace for the calling thread only.
//!
//! Interface names, TCX links and netlink requests all resolve in the network namespace of the
//! thread that makes them, so the thread that attaches, polls and detaches lives in the traced
//! namespace for the whole run and returns to its own namespace afterwards.

use std::{
    fs::File,
    path::{Path, PathBuf},
};

use nix::sched::{CloneFlags, setns};

use super::LiveError;

/// Where `ip netns add` puts its namespaces.
const NETNS_RUN_DIR: &str = "/run/netns";

/// While alive, the current thread is in another network namespace; dropping it goes back.
pub(super) struct NetnsGuard {
    name: String,
    original: File,
}

impl NetnsGuard {
    pub(super) fn enter(name: &str) -> Result<NetnsGuard, LiveError> {
        let fail = |reason: String| LiveError::Netns {
            name: name.to_owned(),
            reason,
        };
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(fail(
                "not a namespace name (expected a name from `ip netns list`)".into(),
            ));
        }
        let path: PathBuf = Path::new(NETNS_RUN_DIR).join(name);
        let target = File::open(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => fail(format!(
                "{} does not exist (see `ip netns list`)",
                path.display()
            )),
            _ => fail(format!("cannot open {}: {e}", path.display())),
        })?;
        let original = File::open("/proc/thread-self/ns/net")
            .map_err(|e| fail(format!("cannot open this thread's network namespace: {e}")))?;
        // Affects the calling thread only.
        setns(&target, CloneFlags::CLONE_NEWNET).map_err(|e| fail(format!("setns failed: {e}")))?;
        Ok(NetnsGuard {
            name: name.to_owned(),
            original,
        })
    }
}

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        if let Err(e) = setns(&self.original, CloneFlags::CLONE_NEWNET) {
            log::error!("could not leave network namespace {}: {e}", self.name);
        }
    }
}
