//! `wray bench`.

use clap::Args;
use std::process::ExitCode;

#[derive(Args)]
pub struct BenchArgs {
    /// Print one JSON object (on the last line) instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn main(_args: BenchArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet")
}
