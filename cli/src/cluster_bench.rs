//! `wray bench --cluster N`: a cluster of N node processes on this machine
//! (and an etcd of its own, on free ports), measured, then stopped.
//!
//! The bench guest's driver runs as a job on the first node and prints its
//! own timings (`<figure>_us=`): the process that measures is not the one
//! that runs it. Node deaths and the head's failover are timed from here,
//! against what the surviving nodes report.

use crate::client::Client;
use anyhow::{anyhow, bail};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// The nodes' lease in the bench, in seconds (the figures are
/// stated against it).
const LEASE_TTL: u64 = 3;

/// A child process, killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Node {
    proc: Proc,
    id: String,
    client: Client,
    _state: tempfile::TempDir,
}

/// The cluster under test.
struct Cluster {
    etcd: crate::etcd::Etcd,
    nodes: Vec<Node>,
    /// The directory of the nodes' TLS files, if they use TLS.
    tls: Option<std::path::PathBuf>,
    _etcd_dir: tempfile::TempDir,
}

/// Polls `cond` every 10 ms until it holds; fails past `limit`.
fn until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) -> anyhow::Result<Duration> {
    let start = Instant::now();
    while !cond() {
        if start.elapsed() > limit {
            bail!("{what}: not within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(start.elapsed())
}

impl Cluster {
    fn start(n: usize, num_cpus: Option<usize>, tls: Option<&Path>) -> anyhow::Result<Cluster> {
        let dir = tempfile::tempdir_in("/dev/shm").or_else(|_| tempfile::tempdir())?;
        let etcd = crate::etcd::Etcd::start(IpAddr::from([127, 0, 0, 1]), 0, dir.path(), None)?;
        let mut cluster = Cluster {
            etcd,
            nodes: Vec::new(),
            tls: tls.map(Path::to_path_buf),
            _etcd_dir: dir,
        };
        for _ in 0..n {
            let node = cluster.start_node(num_cpus)?;
            cluster.nodes.push(node);
        }
        // Every node places calls on every other.
        for node in &cluster.nodes {
            until("the nodes see each other", Duration::from_secs(20), || {
                peers(&node.client).is_ok_and(|p| p.len() == n - 1)
            })?;
        }
        Ok(cluster)
    }

    fn start_node(&self, num_cpus: Option<usize>) -> anyhow::Result<Node> {
        let state = tempfile::tempdir()?;
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.args(["start", "--port", "0", "--etcd", &self.etcd.url])
            .args(["--lease-ttl", &LEASE_TTL.to_string()])
            .env("WRAY_STATE_DIR", state.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(n) = num_cpus {
            cmd.args(["--num-cpus", &n.to_string()]);
        }
        if let Some(dir) = &self.tls {
            cmd.arg("--tls-cert").arg(dir.join("node.crt"));
            cmd.arg("--tls-key").arg(dir.join("node.key"));
            cmd.arg("--tls-ca").arg(dir.join("ca.crt"));
        }
        let mut child = cmd.spawn()?;
        let mut stderr = BufReader::new(child.stderr.take().expect("piped"));
        let proc = Proc(child);
        let (mut url, mut id) = (None, None);
        let mut line = String::new();
        while id.is_none() {
            line.clear();
            if stderr.read_line(&mut line)? == 0 {
                bail!("a node ended before it joined the cluster: {line}");
            }
            if let Some(u) = line.trim().strip_prefix("dashboard and API: ") {
                url = Some(u.to_string());
            }
            if let Some(rest) = line.trim().strip_prefix("joined the cluster at ") {
                id = rest.split(" as node ").nth(1).map(str::to_string);
            }
        }
        // Its later lines go nowhere (the pipe is drained, so it never blocks).
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        let url = url.ok_or_else(|| anyhow!("a node did not print its address"))?;
        Ok(Node {
            proc,
            id: id.expect("read above"),
            client: Client::new(Some(&url)),
            _state: state,
        })
    }
}

/// The other nodes `c`'s node places calls on.
fn peers(c: &Client) -> anyhow::Result<Vec<String>> {
    let s: Value = c.get("/api/v0/status")?;
    Ok(s["cluster"]["peers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

/// The head `c`'s node reports, if any.
fn head(c: &Client) -> Option<String> {
    let nodes: Value = c.get("/api/v0/nodes").ok()?;
    nodes
        .as_array()?
        .iter()
        .find(|n| n["is_head"] == true)
        .and_then(|n| n["node_id"].as_str().map(str::to_string))
}

/// Runs the bench guest's driver with `args` as a job on `node`; what it
/// printed, once it succeeded.
fn job(node: &Node, module: &Path, args: &[&str]) -> anyhow::Result<String> {
    let id = submit(node, module, args)?;
    finished(node, &id)
}

/// Starts the bench guest's driver with `args` as a job on `node`.
fn submit(node: &Node, module: &Path, args: &[&str]) -> anyhow::Result<String> {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    crate::state::submit(&node.client, module, None, &[], &args)
}

/// What job `id` on `node` printed, once it succeeded.
fn finished(node: &Node, id: &str) -> anyhow::Result<String> {
    let logs = || -> anyhow::Result<String> {
        let l: Value = node.client.get(&format!("/api/jobs/{id}/logs"))?;
        Ok(l["logs"].as_str().unwrap_or_default().to_string())
    };
    loop {
        let j: Value = node.client.get(&format!("/api/jobs/{id}"))?;
        match j["status"].as_str() {
            Some("PENDING" | "RUNNING") => std::thread::sleep(Duration::from_millis(5)),
            Some("SUCCEEDED") => return logs(),
            other => bail!("the bench job {id} ended {other:?}: {}", logs()?),
        }
    }
}

/// The microseconds a job printed as `<figure>_us=`, in seconds.
fn printed(logs: &str, figure: &str) -> anyhow::Result<f64> {
    let key = format!("{figure}_us=");
    logs.lines()
        .find_map(|l| l.split(&key).nth(1))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|us| us / 1e6)
        .ok_or_else(|| anyhow!("the bench job printed no {key}: {logs}"))
}

/// Counts etcd's writes (puts and deletes of keys) so far.
fn etcd_writes(url: &str) -> anyhow::Result<f64> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let text = agent
        .get(format!("{url}/metrics"))
        .call()?
        .body_mut()
        .read_to_string()?;
    let sum = |name: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    Ok(sum("etcd_mvcc_put_total") + sum("etcd_mvcc_delete_total"))
}

/// Median of `runs` runs of `f`.
fn median(runs: usize, mut f: impl FnMut() -> anyhow::Result<f64>) -> anyhow::Result<f64> {
    let mut v = (0..runs)
        .map(|_| f())
        .collect::<anyhow::Result<Vec<f64>>>()?;
    v.sort_by(f64::total_cmp);
    Ok(v[v.len() / 2])
}

/// What `wray bench --cluster` was asked.
pub struct Options<'a> {
    pub nodes: usize,
    pub runs: usize,
    pub quick: bool,
    pub json: bool,
    /// The bench guest.
    pub module: &'a Path,
    /// CPU slots of each node (default: every core).
    pub num_cpus: Option<usize>,
    /// Only the figures whose key contains one of these (all if empty).
    pub only: &'a [String],
    /// TLS between the nodes: the directory of their certificate, key and
    /// CA.
    pub tls: Option<&'a Path>,
}

/// The cluster figures, printed as a table (and JSON on the last line).
pub fn main(o: Options<'_>) -> anyhow::Result<ExitCode> {
    let Options {
        nodes: n,
        runs,
        quick,
        json,
        module,
        num_cpus,
        only,
        tls,
    } = o;
    let want = |key: &str| only.is_empty() || only.iter().any(|o| key.contains(o.as_str()));
    if n < 2 {
        bail!("--cluster needs at least 2 nodes");
    }
    if !module.exists() {
        bail!(
            "no bench guest at {} (build it with `make guests`, and run from the repository root)",
            module.display()
        );
    }
    let runs = runs.max(1);
    let (tasks, pulls_mb, job_tasks, job_ms) = if quick {
        ("1000", "64", "40", "20")
    } else {
        ("10000", "1024", "100", "100")
    };
    println!(
        "wray {} bench: a cluster of {n} node processes on this machine ({} cores){}, lease {LEASE_TTL} s, median of {runs} runs{}",
        env!("CARGO_PKG_VERSION"),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        if tls.is_some() {
            ", TLS between nodes"
        } else {
            ""
        },
        if quick {
            " (quick: not a measurement)"
        } else {
            ""
        }
    );
    let mut figures: Vec<(&str, f64, &str, &str)> = Vec::new();
    let mut cluster = Cluster::start(n, num_cpus, tls)?;
    let other = cluster.nodes[1].id.clone();
    let first = cluster.nodes[0].id.clone();
    // Warm every node's module cache.
    job(&cluster.nodes[0], module, &["cluster_spread", "64"])?;
    if want("tasks") || want("etcd") {
        let writes_before = etcd_writes(&cluster.etcd.url)?;
        let t = median(runs, || {
            printed(
                &job(&cluster.nodes[0], module, &["cluster_tasks", tasks])?,
                "tasks",
            )
        })?;
        let ops: f64 = tasks.parse()?;
        figures.push((
            "cluster_tasks_per_s",
            ops / t,
            "tasks/s",
            "no-op tasks from one driver, placed local first",
        ));
        let t = median(runs, || {
            printed(
                &job(&cluster.nodes[0], module, &["cluster_spread", tasks])?,
                "spread",
            )
        })?;
        figures.push((
            "cluster_spread_tasks_per_s",
            ops / t,
            "tasks/s",
            "no-op tasks from one driver, spread over every node",
        ));
        let writes = etcd_writes(&cluster.etcd.url)? - writes_before;
        figures.push((
            "etcd_writes_per_task",
            writes / (ops * 2.0 * runs as f64),
            "writes",
            "etcd puts and deletes per task, over both",
        ));
    }
    if want("remote_task") {
        let t = median(runs, || {
            printed(
                &job(&cluster.nodes[0], module, &["remote_task", "200", &other])?,
                "p50",
            )
        })?;
        figures.push((
            "remote_task_p50_ms",
            t * 1e3,
            "ms",
            "a no-op pinned to another node, sync round trip",
        ));
    }
    if want("remote_actor") {
        let t = median(runs, || {
            printed(
                &job(&cluster.nodes[0], module, &["remote_actor", tasks, &other])?,
                "actor",
            )
        })?;
        let ops: f64 = tasks.parse()?;
        figures.push((
            "remote_actor_calls_per_s",
            ops / t,
            "calls/s",
            "calls of an actor on another node, submitted at once",
        ));
    }
    if want("pull") {
        let t = median(runs, || {
            printed(
                &job(
                    &cluster.nodes[0],
                    module,
                    &["pull", pulls_mb, &first, &other],
                )?,
                "pull",
            )
        })?;
        let mb: f64 = pulls_mb.parse()?;
        figures.push((
            "object_pull_gb_per_s",
            mb * 1e6 / t / 1e9,
            "GB/s",
            "an object made on one node, mapped by a task on another",
        ));
    }
    // A job of tasks spread over every node, without and with the loss of
    // one node partway.
    if want("loss") {
        let base = median(runs, || {
            printed(
                &job(
                    &cluster.nodes[0],
                    module,
                    &["spread_job", job_tasks, job_ms],
                )?,
                "job",
            )
        })?;
        let lossy = {
            let id = submit(
                &cluster.nodes[0],
                module,
                &["spread_job", job_tasks, job_ms],
            )?;
            std::thread::sleep(Duration::from_secs_f64(base / 4.0));
            drop(cluster.nodes.pop());
            printed(&finished(&cluster.nodes[0], &id)?, "job")?
        };
        figures.push((
            "job_with_node_loss_extra_s",
            lossy - base,
            "s",
            "a spread job losing one node partway, against without",
        ));
    }
    // A node killed: how long until the others stop placing calls on it.
    if want("death") {
        let victim = cluster.nodes.pop().expect("at least 2 nodes");
        let victim_id = victim.id.clone();
        drop(victim);
        let detect = until(
            "the killed node is dropped",
            Duration::from_secs(60),
            || peers(&cluster.nodes[0].client).is_ok_and(|p| !p.contains(&victim_id)),
        )?;
        figures.push((
            "node_death_detect_s",
            detect.as_secs_f64(),
            "s",
            "a node killed (SIGKILL) until another drops it",
        ));
    }
    // The head killed: how long until a standby takes over (a fresh node
    // joins first if only one would be left).
    if want("failover") {
        if cluster.nodes.len() < 2 {
            let node = cluster.start_node(num_cpus)?;
            cluster.nodes.push(node);
        }
        until("a head is elected", Duration::from_secs(30), || {
            head(&cluster.nodes[0].client).is_some()
        })?;
        let old = head(&cluster.nodes[0].client).expect("checked");
        let at = cluster
            .nodes
            .iter()
            .position(|n| n.id == old)
            .ok_or_else(|| anyhow!("the head is not a node of the bench"))?;
        let mut dead = cluster.nodes.remove(at);
        let _ = dead.proc.0.kill();
        let _ = dead.proc.0.wait();
        let failover = until("a standby takes over", Duration::from_secs(60), || {
            head(&cluster.nodes[0].client).is_some_and(|h| h != old)
        })?;
        figures.push((
            "head_failover_s",
            failover.as_secs_f64(),
            "s",
            "the head killed until a standby holds the head key",
        ));
    }
    println!("{:<28} {:>12} {:<8}  what", "benchmark", "median", "unit");
    for (key, v, unit, what) in &figures {
        println!(
            "{key:<28} {:>12} {unit:<8}  {what}",
            crate::bench::fmt_num(*v)
        );
    }
    if json {
        let mut obj = serde_json::Map::new();
        for (k, v, _, _) in &figures {
            obj.insert((*k).into(), serde_json::json!(crate::bench::round(*v)));
        }
        obj.insert("nodes".into(), serde_json::json!(n));
        obj.insert("lease_ttl_s".into(), serde_json::json!(LEASE_TTL));
        println!("{}", Value::Object(obj));
    }
    Ok(ExitCode::SUCCESS)
}
