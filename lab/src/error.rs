//! The lab's one error type.

use std::{io, time::Duration};

use crate::lab::MAX_PATHS;

/// Everything that can go wrong while building or using the lab.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("could not start `{command}`")]
    Spawn {
        command: String,
        #[source]
        source: io::Error,
    },
    #[error("a lab has 1 to {MAX_PATHS} paths, not {0}")]
    PathCount(usize),
    #[error("this lab has no path {path} (it has {paths})")]
    NoSuchPath { path: usize, paths: usize },
    #[error("entering network namespace {namespace}")]
    EnterNamespace {
        namespace: String,
        #[source]
        source: io::Error,
    },
    #[error("MPTCP transfer, {step}")]
    Transfer {
        step: String,
        #[source]
        source: io::Error,
    },
    #[error("MPTCP transfer: {0}")]
    TransferMismatch(String),
    #[error("{what} did not happen within {timeout:?}")]
    Timeout { what: String, timeout: Duration },
    #[error("tcpdump on {interface} in netns {namespace}: {detail}")]
    Capture {
        interface: String,
        namespace: String,
        detail: String,
    },
    #[error("a lab thread ({0}) panicked")]
    ThreadPanicked(&'static str),
}
