//! Entering a named network namespace for the calling thread only.
//!
//! Interface names, TCX links and netlink requests all resolve in the network namespace of the
//! thread that makes them, so the thread that attaches, polls and detaches lives in the traced
//! namespace for the whole run and returns to its own namespace afterwards.

use std::{
    fs::File,
    os::fd::AsRawFd as _,
    path::{Path, PathBuf},
};

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
        // SAFETY: valid namespace file descriptor; affects the calling thread only.
        if unsafe { libc::setns(target.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(fail(format!(
                "setns failed: {}",
                std::io::Error::last_os_error()
            )));
        }
        Ok(NetnsGuard {
            name: name.to_owned(),
            original,
        })
    }
}

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        // SAFETY: the namespace file descriptor opened in `enter`.
        if unsafe { libc::setns(self.original.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            log::error!(
                "could not leave network namespace {}: {}",
                self.name,
                std::io::Error::last_os_error()
            );
        }
    }
}
