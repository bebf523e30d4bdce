//! `wray`: run wray programs, run a node and talk to it, benchmark the
//! runtime.
//!
//! A thin layer over `wray_runtime`: it parses flags, builds a runtime and
//! reports outcomes; scheduling and storage live in the library.

mod bench;
mod call;
mod client;
mod cluster_bench;
mod etcd;
mod inspect;
mod manifest;
mod node;
mod progress;
mod run;
mod state;
mod units;

use clap::{Args, Parser, Subcommand};
use std::process::ExitCode;
use wray_runtime::{Builder, Runtime};

// glibc's per-thread arenas grow and shrink with mprotect and page faults
// under the per-task allocation pattern; mimalloc keeps freed pages.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// wray: Ray's tasks, actors and objects, on sandboxed WebAssembly.
///
/// Build a guest crate with `cargo build --release --target wasm32-wasip1`,
/// then `wray run target/wasm32-wasip1/release/<crate>.wasm` (hyphens in the
/// crate's name become underscores in the file's).
#[derive(Parser)]
#[command(name = "wray", version, propagate_version = true, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a module's driver (`#[wray::main]`, or a WASI `_start`) and the
    /// tasks it submits.
    ///
    /// Guest output is streamed to this terminal: the driver's as written,
    /// each task's prefixed with `(function task=N)`. The exit status is the
    /// driver's (1 when it fails; the error, its cause chain and wasm
    /// backtrace go to stderr).
    Run(run::RunArgs),
    /// Call one function of a module with arguments from the command line,
    /// and print its result.
    ///
    /// For functions that take and return cross-language values (guests in
    /// C and other languages; `docs/abi.md`, "Values across languages"):
    /// `wray call target/wasm32-wasip1/release/c_math.wasm add 1 2` prints 3.
    Call(call::CallArgs),
    /// Show what a module offers: its driver, tasks and actor types.
    Inspect(inspect::InspectArgs),
    /// Embed a manifest (the types of a module's functions, as JSON) in a
    /// module whose compiler cannot: guests in C and Go.
    Manifest(manifest::ManifestArgs),
    /// Start a wray node: a runtime that stays up, serving the dashboard,
    /// jobs and the state API at http://127.0.0.1:8265.
    Start(node::StartArgs),
    /// Stop the node `wray start --detach` started.
    Stop,
    /// Submit, list, follow, stop and delete jobs on a node.
    Job(state::JobArgs),
    /// List a node's tasks, actors, objects, jobs or nodes.
    List(state::ListArgs),
    /// Summarize a node's tasks by function.
    Summary(state::SummaryArgs),
    /// Show a node's resources in use.
    Status(state::JsonArgs),
    /// Show a node's objects: sizes, references, where they are.
    Memory(state::JsonArgs),
    /// Save a node's task timeline as a Chrome trace.
    Timeline(state::TimelineArgs),
    /// Measure the runtime: task, object and start-up throughput, as a table
    /// (median of several runs) or as JSON.
    Bench(bench::BenchArgs),
}

impl Command {
    /// Whether the command only prints what a node answered.
    fn prints_listings(&self) -> bool {
        matches!(
            self,
            Command::Job(_)
                | Command::List(_)
                | Command::Summary(_)
                | Command::Status(_)
                | Command::Memory(_)
                | Command::Timeline(_)
        )
    }
}

/// Settings of the embedded runtime, shared by the subcommands that start one.
#[derive(Args, Clone, Debug)]
pub struct RuntimeArgs {
    /// How many guests compute at once (default: every core).
    #[arg(long, value_name = "N")]
    num_cpus: Option<usize>,
    /// Linear memory limit per instance, e.g. `256MiB` (default and most: 4GiB).
    #[arg(long, value_name = "SIZE", value_parser = units::parse_size)]
    memory_limit: Option<u64>,
    /// Wall-clock limit of each task attempt, e.g. `30s`, `500ms` (default: none).
    #[arg(long, value_name = "DURATION", value_parser = units::parse_duration)]
    task_timeout: Option<std::time::Duration>,
    /// How many calls (tasks and drivers) may be in progress at once,
    /// counting those waiting in `get` (default 1000).
    #[arg(long, value_name = "N")]
    call_slots: Option<u32>,
    /// How many actors may exist at once (default 2048).
    #[arg(long, value_name = "N")]
    actor_slots: Option<u32>,
    /// Memory for objects, e.g. `4GiB` (default: 30% of the machine's);
    /// past it, objects spill to disk.
    #[arg(long, value_name = "SIZE", value_parser = units::parse_size)]
    object_store_memory: Option<u64>,
    /// Where objects spill (default: a temporary directory, removed at exit).
    #[arg(long, value_name = "DIR", conflicts_with = "no_spill")]
    spill_dir: Option<std::path::PathBuf>,
    /// Never spill: puts that do not fit in memory fail.
    #[arg(long)]
    no_spill: bool,
    /// Do not read or write the compiled-code cache (~/.cache/wray).
    #[arg(long)]
    no_cache: bool,
    /// Most compiled code the disk cache keeps, e.g. `512MiB` (default
    /// 1GiB); the least recently used goes first.
    #[arg(long, value_name = "SIZE", value_parser = units::parse_size)]
    code_cache_size: Option<u64>,
    /// Modules kept loaded in memory while nothing runs them (default 64).
    #[arg(long, value_name = "N")]
    idle_modules: Option<usize>,
    /// Never memoize: run every call of a pure function (see docs/memo.md).
    #[arg(long, conflicts_with_all = ["memo_dir", "memo_size"])]
    no_memo: bool,
    /// Keep the memo table of pure calls' results in this directory, so
    /// that later runs reuse them (default: in memory, for this run only).
    #[arg(long, value_name = "DIR")]
    memo_dir: Option<std::path::PathBuf>,
    /// Most bytes of results the memo table keeps, e.g. `1GiB` (default
    /// 256MiB); the least recently used go first.
    #[arg(long, value_name = "SIZE", value_parser = units::parse_size)]
    memo_size: Option<u64>,
    /// Custom resources this node has, as JSON: `'{"gpu": 1}'` (Ray's
    /// `--resources`). Calls and actors that ask for them
    /// (`.resource("gpu", 1.0)`) run only where and while they are free.
    #[arg(long, value_name = "JSON", value_parser = parse_resources)]
    resources: Option<std::collections::BTreeMap<String, f64>>,
}

/// `--resources`: a JSON object of names to amounts.
fn parse_resources(s: &str) -> Result<std::collections::BTreeMap<String, f64>, String> {
    serde_json::from_str(s).map_err(|e| {
        format!("expected a JSON object of names to amounts, like '{{\"gpu\": 1}}': {e}")
    })
}

impl RuntimeArgs {
    /// A runtime builder with these settings applied.
    pub fn builder(&self) -> Builder {
        let mut b = Runtime::builder();
        if let Some(n) = self.num_cpus {
            b = b.num_cpus(n);
        }
        if let Some(m) = self.memory_limit {
            b = b.memory_limit(m);
        }
        if let Some(t) = self.task_timeout {
            b = b.task_timeout(Some(t));
        }
        if let Some(n) = self.call_slots {
            b = b.call_slots(n);
        }
        if let Some(n) = self.actor_slots {
            b = b.actor_slots(n);
        }
        if let Some(m) = self.object_store_memory {
            b = b.object_store_memory(m);
        }
        if let Some(d) = &self.spill_dir {
            b = b.spill_dir(Some(d.clone()));
        }
        if self.no_spill {
            b = b.spill_dir(None);
        }
        if self.no_cache {
            b = b.cache_dir(None);
        }
        if let Some(n) = self.code_cache_size {
            b = b.code_cache_size(n);
        }
        if let Some(n) = self.idle_modules {
            b = b.idle_modules(n);
        }
        if self.no_memo {
            b = b.memo(false);
        }
        if let Some(d) = &self.memo_dir {
            b = b.memo_dir(Some(d.clone()));
        }
        if let Some(n) = self.memo_size {
            b = b.memo_size(n);
        }
        if let Some(r) = &self.resources {
            b = b.resources(r.clone());
        }
        b
    }
}

/// Waits for SIGINT (Ctrl-C) or SIGTERM and returns its number. A second
/// one, while the first is being handled, ends the process at once.
async fn stop_signal() -> std::io::Result<i32> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let first = tokio::select! {
        _ = int.recv() => libc::SIGINT,
        _ = term.recv() => libc::SIGTERM,
    };
    tokio::spawn(async move {
        let second = tokio::select! {
            _ = int.recv() => libc::SIGINT,
            _ = term.recv() => libc::SIGTERM,
        };
        std::process::exit(128 + second);
    });
    Ok(first)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.command.prints_listings() {
        // Like any Unix tool, end quietly when the reader of the listing
        // goes away (`wray list tasks | head`) instead of failing to print.
        // (Not for the node and `run`, which must outlive a closed pipe.)
        // SAFETY: restores the default action of SIGPIPE before any thread
        // starts.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    let result = match cli.command {
        Command::Run(args) => run::main(args),
        Command::Call(args) => call::main(args),
        Command::Inspect(args) => inspect::main(args),
        Command::Manifest(args) => manifest::main(args),
        Command::Bench(args) => bench::main(args),
        Command::Start(args) => node::start(args),
        Command::Stop => node::stop(),
        Command::Job(args) => state::job(args),
        Command::List(args) => state::list(args),
        Command::Summary(args) => state::summary(args),
        Command::Status(args) => state::status(args),
        Command::Memory(args) => state::memory(args),
        Command::Timeline(args) => state::timeline(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
