//! The client commands: `wray job ...`, `wray list ...`, `wray summary`,
//! `wray status`, `wray memory`, `wray timeline`.

use crate::client::{Client, segment};
use crate::progress::{Progress, describe, print_above};
use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use wray_runtime::node::types::{
    ActorList, ActorStatus, JobDeleted, JobDetail, JobInfo, JobLogs, JobStatus, JobStopped,
    JobSubmitted, ModuleUploaded, NodeEntry, ObjectEntry, ObjectList, ObjectPlace, Status,
    TaskList, TaskState, TaskSummary,
};

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
        /// Another module the program calls by name (repeatable).
        #[arg(long = "module", value_name = "NAME=FILE", value_parser = parse_link)]
        links: Vec<(String, PathBuf)>,
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
            links,
            args,
        } => {
            let id = submit(&c, &module, name, &links, &args)?;
            if follow {
                // Its id, for `wray job logs|status|stop` later.
                eprintln!("submitted {id}");
                return follow_job(&c, &id);
            }
            println!("{id}");
            Ok(ExitCode::SUCCESS)
        }
        JobCommand::List { json } => {
            if json {
                let jobs: Value = c.get("/api/jobs/")?;
                println!("{}", serde_json::to_string_pretty(&jobs)?);
            } else {
                let jobs: Vec<JobInfo> = c.get("/api/jobs/")?;
                table(&jobs, JOB_COLUMNS);
            }
            Ok(ExitCode::SUCCESS)
        }
        JobCommand::Status { id } => {
            // Printed as the node sent it.
            let j: Value = c.get(&format!("/api/jobs/{}", segment(&id)))?;
            println!("{}", serde_json::to_string_pretty(&j)?);
            Ok(ExitCode::SUCCESS)
        }
        JobCommand::Logs { id, follow } => {
            if follow {
                return follow_job(&c, &id);
            }
            let l: JobLogs = c.get(&format!("/api/jobs/{}/logs", segment(&id)))?;
            print!("{}", l.logs);
            Ok(ExitCode::SUCCESS)
        }
        JobCommand::Stop { id } => {
            let r: JobStopped =
                c.post(&format!("/api/jobs/{}/stop", segment(&id)), &Value::Null)?;
            if r.stopped {
                println!("stopped {id}");
            } else {
                println!("{id} had already ended");
            }
            Ok(ExitCode::SUCCESS)
        }
        JobCommand::Delete { id } => {
            let _: JobDeleted = c.delete(&format!("/api/jobs/{}", segment(&id)))?;
            println!("deleted {id}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `NAME=FILE`: a module linked to a program under a name.
pub fn parse_link(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((name, file)) if !name.is_empty() && !file.is_empty() => {
            Ok((name.to_string(), PathBuf::from(file)))
        }
        _ => Err(format!(
            "expected NAME=FILE (a name the program calls the module by, and its .wasm file), not `{s}`"
        )),
    }
}

/// Uploads `module` (and the modules it links) and starts it as a job;
/// returns the job's id.
pub fn submit(
    c: &Client,
    module: &Path,
    name: Option<String>,
    links: &[(String, PathBuf)],
    args: &[String],
) -> anyhow::Result<String> {
    let bytes = wray_runtime::Module::read_file(module)?;
    let name = name.unwrap_or_else(|| {
        module
            .file_stem()
            .map_or_else(|| "job".into(), |s| s.to_string_lossy().into_owned())
    });
    let mut linked = Vec::with_capacity(links.len());
    for (link, file) in links {
        let up: ModuleUploaded =
            c.post_wasm("/api/modules", &[], &wray_runtime::Module::read_file(file)?)?;
        linked.push(format!("{link}={}", up.digest));
    }
    let mut query = vec![("name", name.as_str())];
    query.extend(linked.iter().map(|l| ("link", l.as_str())));
    query.extend(args.iter().map(|a| ("arg", a.as_str())));
    let r: JobSubmitted = c.post_wasm("/api/jobs/", &query, &bytes)?;
    Ok(r.job_id)
}

/// Streams job `id`'s output (with a progress line on a terminal) until it
/// ends; the exit code is the job's.
pub fn follow_job(c: &Client, id: &str) -> anyhow::Result<ExitCode> {
    let progress = Progress::new();
    let mut offset = 0u64;
    loop {
        let l: JobLogs = c.get_query(
            &format!("/api/jobs/{}/logs", segment(id)),
            &[("offset", &offset.to_string())],
        )?;
        print_above(progress.as_deref(), &l.logs);
        offset = l.offset;
        let j: JobDetail = c.get(&format!("/api/jobs/{}", segment(id)))?;
        if l.done {
            if let Some(p) = &progress {
                p.clear();
            }
            // Output written after the last read.
            let l: JobLogs = c.get_query(
                &format!("/api/jobs/{}/logs", segment(id)),
                &[("offset", &offset.to_string())],
            )?;
            print_above(None, &l.logs);
            let j = j.info;
            return Ok(match j.status {
                JobStatus::Succeeded => ExitCode::SUCCESS,
                status => {
                    eprintln!(
                        "error: job {id} {}: {}",
                        status.as_str().to_lowercase(),
                        j.message.as_deref().unwrap_or("")
                    );
                    j.exit_code
                        .and_then(|c| u8::try_from(c).ok())
                        .filter(|&c| c != 0)
                        .map_or(ExitCode::FAILURE, ExitCode::from)
                }
            });
        }
        if let Some(p) = &progress {
            p.set(describe(j.tasks.to_array(), None));
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
    let limit = args.limit.to_string();
    let mut query = vec![("limit", limit.as_str())];
    if let Kind::Tasks = args.kind {
        // In a cluster, every node's calls (a node alone ignores it).
        query.push(("scope", "cluster"));
    }
    for f in &args.filters {
        let Some(kv) = f.split_once('=') else {
            bail!("a filter is KEY=VALUE, not `{f}`");
        };
        query.push(kv);
    }
    let path = match args.kind {
        Kind::Tasks => "/api/v0/tasks",
        Kind::Actors => "/api/v0/actors",
        Kind::Objects => "/api/v0/objects",
        Kind::Jobs => "/api/jobs/",
        Kind::Nodes => "/api/v0/nodes",
    };
    if args.json {
        let v: Value = c.get_query(path, &query)?;
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    let (shown, total) = match args.kind {
        Kind::Tasks => {
            let v: TaskList = c.get_query(path, &query)?;
            table(
                &v.tasks,
                &[
                    ("task_id", |t| t.task_id.cell()),
                    ("function", |t| t.function.cell()),
                    ("state", |t| t.state.cell()),
                    ("attempts", |t| t.attempts.cell()),
                    ("duration_ms", |t| t.duration_ms.cell()),
                    ("job_id", |t| t.job_id.cell()),
                    ("parent_id", |t| t.parent_id.cell()),
                    // The node it ran on (blank: a node alone).
                    ("node", |t| t.node_id.cell()),
                    ("memo", |t| t.memo.cell()),
                ],
            );
            for (node, why) in &v.unanswered {
                eprintln!("note: node {node} did not answer ({why}): its calls are missing");
            }
            (v.tasks.len(), Some(v.total))
        }
        Kind::Actors => {
            let v: ActorList = c.get_query(path, &query)?;
            table(
                &v.actors,
                &[
                    ("actor_id", |a| a.actor_id.cell()),
                    ("class", |a| a.class.cell()),
                    ("name", |a| a.name.cell()),
                    ("state", |a| a.state.cell()),
                    ("restarts", |a| a.restarts.cell()),
                    ("calls", |a| a.calls.cell()),
                    ("job_id", |a| a.job_id.cell()),
                    ("node", |a| a.node_id.cell()),
                ],
            );
            for (node, why) in &v.unanswered {
                match node.as_str() {
                    "records" => eprintln!("note: the actors' records could not be read: {why}"),
                    _ => eprintln!(
                        "note: node {node} did not answer ({why}): its actors as last recorded"
                    ),
                }
            }
            (v.actors.len(), Some(v.total))
        }
        Kind::Objects => {
            let v: ObjectList = c.get_query(path, &query)?;
            table(&v.objects, OBJECT_COLUMNS);
            (v.objects.len(), Some(v.total))
        }
        Kind::Jobs => {
            let v: Vec<JobInfo> = c.get_query(path, &query)?;
            table(&v, JOB_COLUMNS);
            (v.len(), None)
        }
        Kind::Nodes => {
            let v: Vec<NodeEntry> = c.get_query(path, &query)?;
            table(
                &v,
                &[
                    ("node_id", |n| n.node_id.cell()),
                    ("address", |n| n.address.cell()),
                    ("state", |n| n.state.cell()),
                    ("head", |n| {
                        if n.is_head {
                            "yes".into()
                        } else {
                            String::new()
                        }
                    }),
                    // In use / total, when the node told its load.
                    ("cpus", |n| match &n.load {
                        Some(l) => format!("{}/{}", l.cpus_in_use, n.cpus),
                        None => n.cpus.cell(),
                    }),
                    ("running", |n| n.load.as_ref().map(|l| l.running).cell()),
                    ("pending", |n| n.load.as_ref().map(|l| l.pending).cell()),
                    ("store_bytes", |n| {
                        n.load.as_ref().map(|l| l.object_store_bytes).cell()
                    }),
                    ("memory_bytes", |n| n.memory_bytes.cell()),
                    ("resources", |n| {
                        let r: Vec<String> = n
                            .resources
                            .iter()
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect();
                        r.join(",")
                    }),
                ],
            );
            (v.len(), None)
        }
    };
    if let Some(total) = total
        && total as usize > shown
    {
        println!("({total} in all; --limit shows more)");
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
    let c = args.address.client();
    // In a cluster, every node's calls (a node alone ignores it).
    let (path, query) = ("/api/v0/tasks/summary", [("scope", "cluster")]);
    if args.json {
        let v: Value = c.get_query(path, &query)?;
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        let v: TaskSummary = c.get_query(path, &query)?;
        table(
            &v.functions,
            &[
                ("function", |f| f.function.cell()),
                ("PENDING", |f| f.counts.pending.cell()),
                ("RUNNING", |f| f.counts.running.cell()),
                ("FINISHED", |f| f.counts.finished.cell()),
                ("FAILED", |f| f.counts.failed.cell()),
                ("CANCELLED", |f| f.counts.cancelled.cell()),
                ("MEMOIZED", |f| f.counts.memoized.cell()),
                ("mean_ms", |f| f.mean_ms.cell()),
            ],
        );
        for (node, why) in &v.unanswered {
            eprintln!("note: node {node} did not answer ({why}): its calls are not counted");
        }
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
    let c = args.address.client();
    if args.json {
        let v: Value = c.get("/api/v0/status")?;
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    let v: Status = c.get("/api/v0/status")?;
    let n = &v.node;
    println!(
        "node {} at {} (wray {}, pid {})",
        // In quotes, as JSON.
        Value::from(n.node_id.as_str()),
        n.address,
        n.version,
        n.pid
    );
    println!(
        "cpus:          {} of {} in use",
        v.cpus.in_use, v.cpus.total
    );
    println!("memory:        {} resident", bytes(v.memory.rss_bytes));
    let o = &v.object_store;
    println!(
        "object store:  {} in {} objects, of {}; {} spilled",
        bytes(o.bytes),
        o.objects,
        bytes(o.capacity),
        bytes(o.spilled_bytes)
    );
    let t = v.tasks.counts.to_array();
    println!(
        "tasks:         {} ({:.0}/s)",
        states(TaskState::ALL.map(|s| (s.as_str(), t[s as usize]))),
        v.tasks.per_second
    );
    let a = &v.actors;
    println!(
        "actors:        {}",
        states(
            [a.starting, a.alive, a.restarting, a.dead]
                .into_iter()
                .zip(ActorStatus::ALL)
                .map(|(n, s)| (s.as_str(), n))
        )
    );
    // In a cluster, the lines above are this node's; jobs are the
    // cluster's (every node lists every job).
    println!(
        "jobs:          {}{}",
        states(JobStatus::ALL.map(|s| (s.as_str(), v.jobs.get(s)))),
        if v.cluster.is_some() {
            " (every node's)"
        } else {
            ""
        }
    );
    if !v.resources.is_empty() {
        let r: Vec<String> = v
            .resources
            .iter()
            .map(|(name, u)| format!("{name} {} of {} free", u.available, u.total))
            .collect();
        println!("resources:     {}", r.join(", "));
    }
    if let Some(cl) = &v.cluster {
        let nodes: Vec<NodeEntry> = c.get("/api/v0/nodes")?;
        let head = nodes.iter().find(|n| n.is_head).map(|n| n.node_id.as_str());
        println!(
            "cluster:       {} nodes, head {}; {} calls out on {}, {} objects lent",
            nodes.len(),
            head.map_or("none".into(), |h| Value::from(h).to_string()),
            cl.calls_out,
            if cl.peers.is_empty() {
                "no other node".to_string()
            } else {
                cl.peers.join(", ")
            },
            cl.lent
        );
        // The whole cluster's load, from the nodes that told theirs.
        let told: Vec<_> = nodes
            .iter()
            .filter_map(|n| Some((n, n.load.as_ref()?)))
            .collect();
        let sum = |f: fn(&wray_runtime::cluster::place::NodeLoad) -> u64| -> u64 {
            told.iter().map(|(_, l)| f(l)).sum()
        };
        println!(
            "cluster load:  {} of {} CPUs in use, {} calls running, {} waiting ({} of {} nodes told)",
            sum(|l| l.cpus_in_use),
            told.iter().map(|(n, _)| n.cpus).sum::<u64>(),
            sum(|l| l.running),
            sum(|l| l.pending),
            told.len(),
            nodes.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn memory(args: JsonArgs) -> anyhow::Result<ExitCode> {
    let c = args.address.client();
    let (path, query) = ("/api/v0/objects", [("limit", "10000")]);
    if args.json {
        let v: Value = c.get_query(path, &query)?;
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    let v: ObjectList = c.get_query(path, &query)?;
    println!("{} objects, {}", v.total, bytes(v.bytes));
    table(&v.objects, OBJECT_COLUMNS);
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
    // Written as the node sent it (a Chrome trace).
    let v: Value = args.address.client().get("/api/v0/timeline")?;
    std::fs::write(&args.output, serde_json::to_vec(&v)?)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    println!(
        "{} events written to {} (open it in https://ui.perfetto.dev or chrome://tracing)",
        v.as_array().map_or(0, Vec::len),
        args.output.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `pending 0, running 1, ...`: each state's count, in the order given.
fn states<'a>(counts: impl IntoIterator<Item = (&'a str, u64)>) -> String {
    counts
        .into_iter()
        .map(|(k, n)| format!("{} {n}", k.to_lowercase()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn bytes(n: u64) -> String {
    let n = n as f64;
    match n {
        n if n >= (1u64 << 30) as f64 => format!("{:.1} GiB", n / (1u64 << 30) as f64),
        n if n >= (1u64 << 20) as f64 => format!("{:.1} MiB", n / (1u64 << 20) as f64),
        n if n >= 1024.0 => format!("{:.1} KiB", n / 1024.0),
        n => format!("{n} B"),
    }
}

/// The columns of `wray job list`.
const JOB_COLUMNS: &[Column<JobInfo>] = &[
    ("job_id", |j| j.job_id.cell()),
    ("name", |j| j.name.cell()),
    ("status", |j| j.status.cell()),
    ("started", |j| utc(j.start_time_ms)),
    // Until now, for a job still running.
    ("duration_s", |j| job_seconds(j).cell()),
    ("exit_code", |j| j.exit_code.cell()),
    ("node", |j| j.node_id.cell()),
];

/// How long job `j` ran, or has run so far, in seconds.
fn job_seconds(j: &JobInfo) -> f64 {
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    };
    let end = j.end_time_ms.unwrap_or_else(now);
    end.saturating_sub(j.start_time_ms) as f64 / 1000.0
}

/// Unix time `ms` as UTC, `2026-12-07 21:10:45` (days to a civil date
/// as in Howard Hinnant's `civil_from_days`).
fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// The columns of `wray list objects` and `wray memory`.
const OBJECT_COLUMNS: &[Column<ObjectEntry>] = &[
    ("object_id", |o| o.object_id.cell()),
    ("size", |o| o.size.cell()),
    ("refs", |o| o.refs.cell()),
    ("where", |o| o.place.cell()),
    ("task_id", |o| o.task_id.cell()),
];

/// A table's column: its field's name in the API, and its cell.
type Column<R> = (&'static str, fn(&R) -> String);

/// A value as a table cell: `-` for none, fractions to three places.
trait Cell {
    fn cell(&self) -> String;
}

impl Cell for String {
    fn cell(&self) -> String {
        self.clone()
    }
}

impl Cell for f64 {
    fn cell(&self) -> String {
        format!("{self:.3}")
    }
}

macro_rules! cell_by_display {
    ($($t:ty),*) => {$(
        impl Cell for $t {
            fn cell(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
cell_by_display!(u32, u64, i32);

macro_rules! cell_by_name {
    ($($t:ty),*) => {$(
        impl Cell for $t {
            fn cell(&self) -> String {
                self.as_str().to_string()
            }
        }
    )*};
}
cell_by_name!(TaskState, JobStatus, ActorStatus, ObjectPlace);

impl<T: Cell> Cell for Option<T> {
    fn cell(&self) -> String {
        self.as_ref().map_or_else(|| "-".to_string(), Cell::cell)
    }
}

/// Prints `rows` as aligned columns, headed by the fields' names.
fn table<R>(rows: &[R], columns: &[Column<R>]) {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| columns.iter().map(|(_, cell)| cell(r)).collect())
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, (c, _))| {
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
    line(columns.iter().map(|(c, _)| c.to_uppercase()).collect());
    for r in cells {
        line(r);
    }
}

#[cfg(test)]
mod tests {
    use super::utc;

    #[test]
    fn times_read_as_utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(951_825_599_000), "2000-02-29 11:59:59");
        assert_eq!(utc(1_796_678_445_123), "2026-12-07 21:20:45");
        assert_eq!(utc(4_107_542_400_000), "2100-03-01 00:00:00");
    }
}
