//! `wray run`.

use crate::RuntimeArgs;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use wray_runtime::Error;

#[derive(Args)]
pub struct RunArgs {
    /// The module to run (a `.wasm` file built for wasm32-wasip1).
    module: PathBuf,
    #[command(flatten)]
    runtime: RuntimeArgs,
    /// Arguments for the driver, after `--` (it reads them with std::env::args()).
    #[arg(last = true, value_name = "ARGS")]
    args: Vec<String>,
}

pub fn main(args: RunArgs) -> anyhow::Result<ExitCode> {
    let rt = args.runtime.builder().build()?;
    let module = rt.load_file(&args.module)?;
    match rt.run_driver(&module, &args.args) {
        Ok(status) => Ok(exit_code(status)),
        Err(Error::Task(e)) => {
            eprintln!("error: the driver failed: {e:?}");
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.into()),
    }
}

/// The process status for a driver's exit status (WASI statuses are 0-255
/// in practice; anything else reports plain failure).
fn exit_code(status: i32) -> ExitCode {
    match u8::try_from(status) {
        Ok(s) => ExitCode::from(s),
        Err(_) => ExitCode::FAILURE,
    }
}
