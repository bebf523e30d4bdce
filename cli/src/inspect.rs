//! `wray inspect`: what a module offers: its driver, tasks and actor types.

use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use wray_runtime::Runtime;

#[derive(Args)]
pub struct InspectArgs {
    /// The module (a `.wasm` file).
    module: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn main(args: InspectArgs) -> anyhow::Result<ExitCode> {
    // Loading validates the module (imports, exports) and compiles it.
    let rt = Runtime::builder().num_cpus(1).build()?;
    let size = std::fs::metadata(&args.module)?.len();
    let m = rt.load_file(&args.module)?;
    let mut tasks: Vec<&str> = m.tasks().collect();
    tasks.sort_unstable();
    let actors = m.actor_types();
    if args.json {
        let actors: serde_json::Map<String, serde_json::Value> = actors
            .iter()
            .map(|(ty, methods)| (ty.to_string(), serde_json::json!(methods)))
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "name": m.name(),
                "digest": m.id().to_string(),
                "size": size,
                "driver": m.has_driver(),
                "tasks": tasks,
                "actors": actors,
                "signatures": m.signatures().iter().map(|sig| serde_json::json!({
                    "kind": sig.kind,
                    "name": sig.name,
                    "class": sig.class,
                    "params": sig.params,
                    "returns": sig.returns,
                    "encoding": sig.encoding,
                })).collect::<Vec<_>>(),
            })
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!("module {} ({} bytes, digest {})", m.name(), size, m.id());
    println!(
        "driver: {}",
        if m.has_driver() {
            "yes (`wray run`)"
        } else {
            "none (call its functions: `wray call`)"
        }
    );
    println!(
        "tasks: {}",
        if tasks.is_empty() {
            "none".into()
        } else {
            tasks.join(", ")
        }
    );
    for name in &tasks {
        if let Some(sig) = m.task_signature(name) {
            println!("  {} ({})", sig.describe(), sig.encoding);
        }
    }
    if m.signatures().is_empty() {
        println!("(no manifest: its functions' types are not declared, and calls are not checked)");
    }
    if actors.is_empty() {
        println!("actors: none");
    }
    for (ty, methods) in &actors {
        println!("actor {ty}: {}", methods.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}
