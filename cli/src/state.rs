//! The client commands: `wray job ...`, `wray list ...`, `wray summary`,
//! `wray status`, `wray memory`, `wray timeline`.

use crate::client::{Client, query_escape};
use crate::progress::{Progress, describe, print_above};
use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Where the node is.
#[derive(Args, Clone)]
pub struct Address {
    /// The node's address (default: $WRAY_ADDRESS, else the node `wray
    /// start` started on this machine, else http://127.0.0.1:8265).
    #[arg(long, value_name = "URL", global = true)]
    address: Option<String>,
}

impl Address {
    fn client(&self) -> Client {
        Client::new(self.address.as_deref())
    }
}

#[derive(Subcommand)]
pub enum JobCommand {
    /// Upload a module and run its driver as a job on the node.
    Submit {
        /// The module (a `.wasm` file built for wasm32-wasip1).
        module: PathBuf,
        /// Stream the job's output until it ends, and exit with its status.
        #[arg(long)]
        follow: bool,
        /// A label for the job (default: the module's file name).
        #[arg(long)]
        name: Option<String>,
        /// Arguments for the driver, after `--`.
        #[arg(last = true, value_name = "ARGS")]
        args: Vec<String>,
    },
    /// List the node's jobs.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one job.
    Status {
        /// The job's id (`job-3`).
        id: String,
    },
    /// Print a job's output.
    Logs {
        /// The job's id.
        id: String,
        /// Keep printing until the job ends.
        #[arg(long)]
        follow: bool,
    },
    /// Stop a job: its driver is interrupted and its tasks cancelled.
    Stop {
        /// The job's id.
        id: String,
    },
    /// Forget an ended job: its record and its logs.
    Delete {
        /// The job's id.
        id: String,
    },
}

#[derive(Args)]
pub struct JobArgs {
    #[command(subcommand)]
    command: JobCommand,
    #[command(flatten)]
    address: Address,
}

pub fn job(args: JobArgs) -> anyhow::Result<ExitCode> {
    let c = args.address.client();
    match args.command {
        JobCommand::Submit {
            module,
            follow,
            name,
            args,
        } => {
            let id = submit(&c, &module, name, &args)?;
            if follow {
                return follow_job(&c, &id);
            }
            println!("{id}");
            Ok(ExitCode::SUCCESS)
        }
        JobCommand::List { json } => {
            let jobs = c.get("/api/jobs/")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&jobs)?);
            } else {
                table(
                    &jobs,
                    &[
                        "job_id",
                        "name",
                        "status",
                        "start_time_ms",
                        "end_time_ms",
                        "exit_code",
                    ],
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        JobCommand::Status { id } => {
            let j = c.get(&format!("/api/jobs/{}", query_escape(&id)))?;
            println!("{}", serde_json::to_string_pretty(&j)?);
            Ok(ExitCode::SUCCESS)
        }
        JobCommand::Logs { id, follow } => {
            if follow {
                return follow_job(&c, &id);
            }
            let l = c.get(&format!("/api/jobs/{}/logs", query_escape(&id)))?;
            print!("{}", l["logs"].as_str().unwrap_or(""));
            Ok(ExitCode::SUCCESS)
        }
        JobCommand::Stop { id } => {
            let r = c.post(
                &format!("/api/jobs/{}/stop", query_escape(&id)),
                &Value::Null,
            )?;
            if r["stopped"].as_bool() == Some(true) {
                println!("stopped {id}");
            } else {
                println!("{id} had already ended");
            }
            Ok(ExitCode::SUCCESS)
        }
        JobCommand::Delete { id } => {
            c.delete(&format!("/api/jobs/{}", query_escape(&id)))?;
            println!("deleted {id}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Uploads `module` and starts it as a job; returns the job's id.
pub fn submit(
    c: &Client,
    module: &Path,
    name: Option<String>,
    args: &[String],
) -> anyhow::Result<String> {
    let bytes = wray_runtime::Module::read_file(module)?;
    let name = name.unwrap_or_else(|| {
        module
            .file_stem()
            .map_or_else(|| "job".into(), |s| s.to_string_lossy().into_owned())
    });
    let mut path = format!("/api/jobs/?name={}", query_escape(&name));
    for a in args {
        path.push_str(&format!("&arg={}", query_escape(a)));
    }
    let r = c.post_wasm(&path, &bytes)?;
    r["job_id"]
        .as_str()
        .map(str::to_string)
        .context("the node's answer has no job_id")
}

/// Streams job `id`'s output (with a progress line on a terminal) until it
/// ends; the exit code is the job's.
pub fn follow_job(c: &Client, id: &str) -> anyhow::Result<ExitCode> {
    let progress = Progress::new();
    let mut offset = 0u64;
    loop {
        let l = c.get(&format!(
            "/api/jobs/{}/logs?offset={offset}",
            query_escape(id)
        ))?;
        print_above(progress.as_deref(), l["logs"].as_str().unwrap_or(""));
        offset = l["offset"].as_u64().unwrap_or(offset);
        let j = c.get(&format!("/api/jobs/{}", query_escape(id)))?;
        if l["done"].as_bool() == Some(true) {
            if let Some(p) = &progress {
                p.clear();
            }
            // Output written after the last read.
            let l = c.get(&format!(
                "/api/jobs/{}/logs?offset={offset}",
                query_escape(id)
            ))?;
            print_above(None, l["logs"].as_str().unwrap_or(""));
            return Ok(match j["status"].as_str() {
                Some("SUCCEEDED") => ExitCode::SUCCESS,
                status => {
                    eprintln!(
                        "error: job {id} {}: {}",
                        status.unwrap_or("ended").to_lowercase(),
                        j["message"].as_str().unwrap_or("")
                    );
                    j["exit_code"]
                        .as_u64()
                        .and_then(|c| u8::try_from(c).ok())
                        .filter(|&c| c != 0)
                        .map_or(ExitCode::FAILURE, ExitCode::from)
                }
            });
        }
        if let Some(p) = &progress {
            let t = &j["tasks"];
            let n = |k: &str| t[k].as_u64().unwrap_or(0);
            p.set(describe(
                [
                    n("PENDING"),
                    n("RUNNING"),
                    n("FINISHED"),
                    n("FAILED"),
                    n("CANCELLED"),
                ],
                None,
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Kind {
    Tasks,
    Actors,
    Objects,
    Jobs,
    Nodes,
}

#[derive(Args)]
pub struct ListArgs {
    /// What to list.
    kind: Kind,
    /// Keep only entries where KEY is VALUE (`state=RUNNING`, `job=job-2`,
    /// `function=f`, `actor=3`, `class=Counter`, `name=n`); repeatable.
    #[arg(long = "filter", short = 'f', value_name = "KEY=VALUE")]
    filters: Vec<String>,
    /// At most this many entries.
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    address: Address,
}

pub fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let c = args.address.client();
    let mut query = format!("limit={}", args.limit);
    for f in &args.filters {
        let Some((k, v)) = f.split_once('=') else {
            bail!("a filter is KEY=VALUE, not `{f}`");
        };
        query.push_str(&format!("&{}={}", query_escape(k), query_escape(v)));
    }
    let (path, key, columns): (&str, Option<&str>, &[&str]) = match args.kind {
        Kind::Tasks => (
            "/api/v0/tasks",
            Some("tasks"),
            &[
                "task_id",
                "function",
                "state",
                "attempts",
                "duration_ms",
                "job_id",
                "parent_id",
            ],
        ),
        Kind::Actors => (
            "/api/v0/actors",
            Some("actors"),
            &[
                "actor_id", "class", "name", "state", "restarts", "calls", "job_id",
            ],
        ),
        Kind::Objects => (
            "/api/v0/objects",
            Some("objects"),
            &["object_id", "size", "refs", "where", "task_id"],
        ),
        Kind::Jobs => (
            "/api/jobs/",
            None,
            &["job_id", "name", "status", "start_time_ms", "exit_code"],
        ),
        Kind::Nodes => (
            "/api/v0/nodes",
            None,
            &["node_id", "address", "state", "cpus", "memory_bytes"],
        ),
    };
    let v = c.get(&format!("{path}?{query}"))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    match key {
        Some(k) => {
            table(&v[k], columns);
            if let Some(total) = v["total"].as_u64()
                && total as usize > v[k].as_array().map_or(0, Vec::len)
            {
                println!("({total} in all; --limit shows more)");
            }
        }
        None => table(&v, columns),
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub struct SummaryArgs {
    /// What to summarize.
    #[arg(value_parser = ["tasks"])]
    kind: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    address: Address,
}

pub fn summary(args: SummaryArgs) -> anyhow::Result<ExitCode> {
    let v = args.address.client().get("/api/v0/tasks/summary")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        table(
            &v["functions"],
            &[
                "function",
                "PENDING",
                "RUNNING",
                "FINISHED",
                "FAILED",
                "CANCELLED",
                "mean_ms",
            ],
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub struct JsonArgs {
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    address: Address,
}

pub fn status(args: JsonArgs) -> anyhow::Result<ExitCode> {
    let v = args.address.client().get("/api/v0/status")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    let n = &v["node"];
    println!(
        "node {} at {} (wray {}, pid {})",
        n["node_id"],
        n["address"].as_str().unwrap_or("?"),
        n["version"].as_str().unwrap_or("?"),
        n["pid"]
    );
    println!(
        "cpus:          {} of {} in use",
        v["cpus"]["in_use"], v["cpus"]["total"]
    );
    println!(
        "memory:        {} resident",
        bytes(v["memory"]["rss_bytes"].as_u64())
    );
    let o = &v["object_store"];
    println!(
        "object store:  {} in {} objects, of {}; {} spilled",
        bytes(o["bytes"].as_u64()),
        o["objects"],
        bytes(o["capacity"].as_u64()),
        bytes(o["spilled_bytes"].as_u64())
    );
    let tasks = ["PENDING", "RUNNING", "FINISHED", "FAILED", "CANCELLED"];
    println!(
        "tasks:         {} ({:.0}/s)",
        states(&v["tasks"], &tasks),
        v["tasks"]["per_second"].as_f64().unwrap_or(0.0)
    );
    let actors = ["STARTING", "ALIVE", "RESTARTING", "DEAD"];
    println!("actors:        {}", states(&v["actors"], &actors));
    let jobs = ["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "STOPPED"];
    println!("jobs:          {}", states(&v["jobs"], &jobs));
    Ok(ExitCode::SUCCESS)
}

pub fn memory(args: JsonArgs) -> anyhow::Result<ExitCode> {
    let v = args.address.client().get("/api/v0/objects?limit=10000")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{} objects, {}", v["total"], bytes(v["bytes"].as_u64()));
    table(
        &v["objects"],
        &["object_id", "size", "refs", "where", "task_id"],
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub struct TimelineArgs {
    /// Where to write the trace (open it in Perfetto or chrome://tracing).
    #[arg(short, long, default_value = "timeline.json")]
    output: PathBuf,
    #[command(flatten)]
    address: Address,
}

pub fn timeline(args: TimelineArgs) -> anyhow::Result<ExitCode> {
    let v = args.address.client().get("/api/v0/timeline")?;
    std::fs::write(&args.output, serde_json::to_vec(&v)?)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    println!(
        "{} events written to {} (open it in https://ui.perfetto.dev or chrome://tracing)",
        v.as_array().map_or(0, Vec::len),
        args.output.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `pending 0, running 1, ...`: the counts in `v` in the order given.
fn states(v: &Value, order: &[&str]) -> String {
    order
        .iter()
        .map(|k| format!("{} {}", k.to_lowercase(), v[*k].as_u64().unwrap_or(0)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn bytes(n: Option<u64>) -> String {
    let n = n.unwrap_or(0) as f64;
    match n {
        n if n >= (1u64 << 30) as f64 => format!("{:.1} GiB", n / (1u64 << 30) as f64),
        n if n >= (1u64 << 20) as f64 => format!("{:.1} MiB", n / (1u64 << 20) as f64),
        n if n >= 1024.0 => format!("{:.1} KiB", n / 1024.0),
        n => format!("{n} B"),
    }
}

/// Prints `rows` (a JSON array of objects) as aligned columns.
fn table(rows: &Value, columns: &[&str]) {
    let rows = rows.as_array().map(Vec::as_slice).unwrap_or(&[]);
    let cell = |v: &Value| match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => format!("{f:.3}"),
            _ => n.to_string(),
        },
        v => v.to_string(),
    };
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| columns.iter().map(|c| cell(&r[*c])).collect())
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|r| r[i].len())
                .chain([c.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |vals: Vec<String>| {
        let s: Vec<String> = vals
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect();
        println!("{}", s.join("  ").trim_end());
    };
    line(columns.iter().map(|c| c.to_uppercase()).collect());
    for r in cells {
        line(r);
    }
}
