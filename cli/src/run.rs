//! `wray run`.

use crate::RuntimeArgs;
use crate::client::Client;
use crate::progress::{Progress, ProgressSink, describe};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use wray_runtime::node::{LogStore, Node, NodeOptions};
use wray_runtime::{Error, OutputSink};

#[derive(Args)]
pub struct RunArgs {
    /// The module to run (a `.wasm` file built for wasm32-wasip1).
    module: PathBuf,
    /// Run the driver as a job on the node at this address (see `wray
    /// start`) instead of in this process; its output streams here.
    #[arg(long, value_name = "URL", conflicts_with = "dashboard")]
    address: Option<String>,
    /// Serve the dashboard and the API (http://127.0.0.1:8265, or a free
    /// port if that one is taken) while the program runs.
    #[arg(long)]
    dashboard: bool,
    /// The dashboard's port with --dashboard.
    #[arg(long, default_value_t = 8265, requires = "dashboard")]
    port: u16,
    /// Another module the program calls by name, as `c_math` in
    /// `--module c_math=c_math.wasm` (repeatable).
    #[arg(long = "module", value_name = "NAME=FILE", value_parser = crate::state::parse_link)]
    links: Vec<(String, PathBuf)>,
    #[command(flatten)]
    runtime: RuntimeArgs,
    /// Arguments for the driver, after `--` (it reads them with std::env::args()).
    #[arg(last = true, value_name = "ARGS")]
    args: Vec<String>,
}

pub fn main(args: RunArgs) -> anyhow::Result<ExitCode> {
    if let Some(address) = &args.address {
        let c = Client::new(Some(address));
        let id = crate::state::submit(&c, &args.module, None, &args.links, &args.args)?;
        eprintln!("wray: running as {id} on {}", c.base());
        return crate::state::follow_job(&c, &id);
    }
    let progress = Progress::new();
    let terminal: Arc<dyn OutputSink> = Arc::new(ProgressSink(progress.clone()));
    // Output is kept for the dashboard's logs only when there is one.
    let logs = args
        .dashboard
        .then(|| Arc::new(LogStore::new(terminal.clone())));
    let sink: Arc<dyn OutputSink> = match &logs {
        Some(l) => l.clone(),
        None => terminal,
    };
    let rt = args.runtime.builder().output(sink).build()?;
    let _node = if let Some(logs) = &logs {
        let serve = |port| {
            Node::serve(
                &rt,
                logs.clone(),
                NodeOptions {
                    port,
                    ..NodeOptions::default()
                },
            )
        };
        // Another node may hold the port: any free one will do.
        let node = serve(args.port).or_else(|_| serve(0))?;
        eprintln!(
            "wray: dashboard at {} while this program runs (`wray start` keeps a node up)",
            node.url()
        );
        Some(node)
    } else {
        None
    };
    let module = rt.load_file(&args.module)?;
    let links = args
        .links
        .iter()
        .map(|(name, file)| Ok((name.clone(), rt.load_file(file)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let _line = progress.as_ref().map(|p| {
        let stats = rt.stats_source();
        p.follow(move || Some(describe(stats.task_counts(), Some(stats.actors()))))
    });
    // SIGINT or SIGTERM stops the driver, so the runtime ends as after a
    // normal exit: its tasks cancelled, its spill files removed.
    let job = rt.start_linked_job(&module, &args.args, &links);
    let control = job.control();
    let signalled = Arc::new(AtomicI32::new(0));
    let seen = signalled.clone();
    rt.handle().spawn(async move {
        if let Ok(signal) = crate::stop_signal().await {
            seen.store(signal, Ordering::SeqCst);
            control.stop();
        }
    });
    let outcome = rt.block_on(job.wait());
    drop(_line);
    // What memoization did, when the program made memoized calls.
    let memo = rt.stats_source().memo();
    if memo.hits + memo.misses > 0 {
        use std::io::Write;
        let _ = std::io::stdout().flush();
        eprintln!(
            "wray: memo: {} hits, {} misses, {} stored{}",
            memo.hits,
            memo.misses,
            memo.stored,
            if memo.corrupt > 0 {
                format!(", {} corrupt files dropped", memo.corrupt)
            } else {
                String::new()
            }
        );
    }
    let signal = signalled.load(Ordering::SeqCst);
    if signal != 0 {
        eprintln!("wray: stopped by signal {signal}");
        return Ok(ExitCode::from(128 + signal as u8));
    }
    match outcome {
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
