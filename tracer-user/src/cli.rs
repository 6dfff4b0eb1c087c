//! The clap command definitions, used by the one-shot CLI and the interactive shell.

pub fn main() -> anyhow::Result<i32> {
    todo!()
}
