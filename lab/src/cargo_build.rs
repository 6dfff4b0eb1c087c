//! Building a binary of the workspace and finding it from cargo's own report: the integration
//! tests and xtask run the real `mptcp-tracer` executable, wherever the target directory
//! (`CARGO_TARGET_DIR`, config, default) and whatever the profile.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("running `{command}`")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status})")]
    Failed { command: String, status: String },
    #[error("`{command}` reported no executable {binary}")]
    NoExecutable { command: String, binary: String },
}

/// `cargo build --package PACKAGE --bin BINARY [--release]` run in `workspace`, cargo's
/// diagnostics passed through to stderr; the executable's path as cargo reports it
/// (`--message-format=json`). A no-op build when it is fresh.
pub fn build_binary(
    workspace: &Path,
    package: &str,
    binary: &str,
    release: bool,
) -> Result<PathBuf, BuildError> {
    // Cargo sets CARGO for build scripts, tests and `cargo run`: the same cargo builds again.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut args = vec![
        "build",
        "--package",
        package,
        "--bin",
        binary,
        "--message-format=json-render-diagnostics",
    ];
    if release {
        args.push("--release");
    }
    let command = format!("cargo {}", args.join(" "));
    let output = Command::new(cargo)
        .current_dir(workspace)
        .args(&args)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|source| BuildError::Spawn {
            command: command.clone(),
            source,
        })?;
    if !output.status.success() {
        return Err(BuildError::Failed {
            command,
            status: output.status.to_string(),
        });
    }
    executable_in_report(&String::from_utf8_lossy(&output.stdout), binary).ok_or_else(|| {
        BuildError::NoExecutable {
            command,
            binary: binary.to_owned(),
        }
    })
}

/// The `executable` of the `compiler-artifact` message for target `binary`.
fn executable_in_report(report: &str, binary: &str) -> Option<PathBuf> {
    report
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|message| {
            message["reason"] == "compiler-artifact" && message["target"]["name"] == binary
        })
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_executable_comes_from_the_binary_artifact() {
        let report = [
            r#"{"reason":"compiler-artifact","target":{"name":"mptcp_tracer","kind":["lib"]},"executable":null}"#,
            "not json",
            r#"{"reason":"compiler-artifact","target":{"name":"mptcp-tracer","kind":["bin"]},"executable":"/t/release/mptcp-tracer"}"#,
            r#"{"reason":"build-finished","success":true}"#,
        ]
        .join("\n");
        assert_eq!(
            executable_in_report(&report, "mptcp-tracer"),
            Some(PathBuf::from("/t/release/mptcp-tracer"))
        );
        assert_eq!(executable_in_report(&report, "other"), None);
    }
}
