//! What the process may do: the capabilities live tracing needs, and the memlock limit old
//! kernels charge BPF maps against.

use nix::sys::resource::{RLIM_INFINITY, Resource, setrlimit};

use super::LiveError;

const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_BPF: u32 = 39;

/// Fails with one line naming what is missing. Loading a TC classifier needs CAP_BPF (or, on
/// kernels before 5.8, CAP_SYS_ADMIN) and CAP_NET_ADMIN; entering another network namespace needs
/// CAP_SYS_ADMIN.
pub(super) fn check(needs_netns: bool) -> Result<(), LiveError> {
    let effective = effective_capabilities().map_err(|e| {
        LiveError::Privileges(format!("cannot read the process's capabilities: {e}"))
    })?;
    check_mask(effective, needs_netns)
}

fn check_mask(effective: u64, needs_netns: bool) -> Result<(), LiveError> {
    let has = |cap: u32| effective & (1 << cap) != 0;
    let mut missing = Vec::new();
    if !has(CAP_BPF) && !has(CAP_SYS_ADMIN) {
        missing.push("CAP_BPF");
    }
    if !has(CAP_NET_ADMIN) {
        missing.push("CAP_NET_ADMIN");
    }
    if needs_netns && !has(CAP_SYS_ADMIN) {
        missing.push("CAP_SYS_ADMIN (for --netns)");
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(LiveError::Privileges(format!(
        "live tracing needs root or CAP_BPF and CAP_NET_ADMIN{}; missing {} (try sudo)",
        if needs_netns {
            " and CAP_SYS_ADMIN"
        } else {
            ""
        },
        missing.join(", ")
    )))
}

/// The `CapEff` mask of this process.
fn effective_capabilities() -> std::io::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .ok_or_else(|| std::io::Error::other("no CapEff line in /proc/self/status"))
}

/// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK; the 16 MiB ring buffer alone exceeds
/// the usual 8 MiB default there. Newer kernels use memcg accounting and ignore it.
pub(super) fn raise_memlock_limit() {
    if let Err(e) = setrlimit(Resource::RLIMIT_MEMLOCK, RLIM_INFINITY, RLIM_INFINITY) {
        log::debug!("could not lift RLIMIT_MEMLOCK ({e}); fine on kernels ≥ 5.11");
    }
}

/// Whether this process is root or holds what `check(false)` wants; tests use it to skip.
#[cfg(test)]
pub(super) fn can_trace() -> bool {
    check(true).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: u64 = 0x1ff_ffff_ffff;

    #[test]
    fn missing_capabilities_are_named() {
        assert!(check_mask(ROOT, true).is_ok());
        // CAP_BPF + CAP_NET_ADMIN is enough without a namespace switch.
        assert!(check_mask(1 << CAP_BPF | 1 << CAP_NET_ADMIN, false).is_ok());
        assert_eq!(
            check_mask(0, false).map_err(|e| e.to_string()),
            Err(
                "live tracing needs root or CAP_BPF and CAP_NET_ADMIN; missing CAP_BPF, \
                 CAP_NET_ADMIN (try sudo)"
                    .to_owned()
            )
        );
        assert_eq!(
            check_mask(1 << CAP_BPF | 1 << CAP_NET_ADMIN, true).map_err(|e| e.to_string()),
            Err(
                "live tracing needs root or CAP_BPF and CAP_NET_ADMIN and CAP_SYS_ADMIN; missing \
                 CAP_SYS_ADMIN (for --netns) (try sudo)"
                    .to_owned()
            )
        );
    }
}
