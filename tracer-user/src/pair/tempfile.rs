//! A temporary file of this process, removed when dropped: where the two-capture analyses
//! spill what would otherwise grow with the capture.

use std::{
    fs::File,
    io,
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
};

pub(crate) struct TempFile {
    path: PathBuf,
}

static CREATED: AtomicU64 = AtomicU64::new(0);

impl TempFile {
    /// Creates a new file under the system's temporary directory (never an existing one), open
    /// for writing.
    pub fn create(name: &str) -> io::Result<(TempFile, File)> {
        let n = CREATED.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "mptcp-tracer-pair-{}-{n}-{name}",
            std::process::id()
        ));
        let file = File::options().write(true).create_new(true).open(&path)?;
        Ok((TempFile { path }, file))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
