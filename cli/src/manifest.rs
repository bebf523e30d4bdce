//! `wray manifest`: gives a module the manifest its compiler could not
//! (Go has no custom sections; C has no CBOR): the records, written as
//! JSON, are checked and embedded in the module's `wray:manifest` section.

use anyhow::Context;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use wray_runtime::Value;

#[derive(Args)]
pub struct ManifestArgs {
    /// The module (a `.wasm` file); rewritten in place unless `--output`.
    module: PathBuf,
    /// The manifest: a JSON array of records, one per task, actor
    /// constructor and method, as `docs/abi.md` ("Manifest") describes:
    /// `[{"kind": "task", "name": "add", "params": [["a", "int"], ["b",
    /// "int"]], "returns": "int"}]`.
    manifest: PathBuf,
    /// Write the module with its manifest here instead.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

pub fn main(args: ManifestArgs) -> anyhow::Result<ExitCode> {
    let wasm = wray_runtime::Module::read_file(&args.module)?;
    let text = std::fs::read_to_string(&args.manifest)
        .with_context(|| format!("cannot read {}", args.manifest.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not JSON", args.manifest.display()))?;
    let Some(items) = json.as_array() else {
        anyhow::bail!(
            "{}: the manifest must be a JSON array of records",
            args.manifest.display()
        );
    };
    let records = items
        .iter()
        .map(Value::from_json)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.manifest.display()))?;
    let out = wray_runtime::embed_manifest(&wasm, &records)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.manifest.display()))?;
    let dest = args.output.as_ref().unwrap_or(&args.module);
    // Written beside, then renamed: a reader never sees half a module.
    let tmp = dest.with_extension("wasm.tmp");
    std::fs::write(&tmp, &out).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, dest).with_context(|| format!("cannot write {}", dest.display()))?;
    eprintln!(
        "wray: {} records in the manifest of {}",
        records.len(),
        dest.display()
    );
    Ok(ExitCode::SUCCESS)
}
