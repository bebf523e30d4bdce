//! `wray bench`: the built-in benchmark suite.
//!
//! Each benchmark runs the bench guest's driver (`bench/src/lib.rs`) with a
//! benchmark name and a count, timed from the host: the figure includes the
//! whole path a user's program takes. Every benchmark runs several times
//! after a warm-up and reports the median. Byte throughputs are measured as
//! the difference between a long and a short run, so fixed costs (the
//! driver's instance, its first memory growth) cancel out.

use anyhow::{Context, bail};
use clap::Args;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wray_runtime::{Module, NullSink, Runtime, Value};

#[derive(Args)]
pub struct BenchArgs {
    /// Print the table, then one JSON object with every figure on the last line.
    #[arg(long)]
    json: bool,
    /// Timed runs of each benchmark (the median is reported).
    #[arg(long, default_value_t = 5, value_name = "N")]
    runs: usize,
    /// Run only the benchmarks whose key contains this text (repeatable).
    #[arg(long, value_name = "TEXT")]
    only: Vec<String>,
    /// Also print every run's figure, in the order they ran, under its row.
    #[arg(long)]
    samples: bool,
    /// Smaller workloads: a fast check that the suite works, not a measurement.
    #[arg(long)]
    quick: bool,
    /// The bench guest module.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "target/wasm32-wasip1/release/wray_bench.wasm"
    )]
    module: PathBuf,
    /// The put-once example, for the seed benchmarks.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "target/wasm32-wasip1/release/put_once.wasm"
    )]
    put_once: PathBuf,
    /// The hello example, for the start-up benchmark.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "target/wasm32-wasip1/release/hello.wasm"
    )]
    hello: PathBuf,
    /// The C example, for the C task benchmark.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "target/wasm32-wasip1/release/c_math.wasm"
    )]
    c_math: PathBuf,
    /// The Go example, for the Go task benchmark.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "target/wasm32-wasip1/release/go_math.wasm"
    )]
    go_math: PathBuf,
    /// The memo example, for the memo benchmark's second run.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "target/wasm32-wasip1/release/memo.wasm"
    )]
    memo: PathBuf,
    /// CPU slots of the runtime under test (default: every core).
    #[arg(long, value_name = "N")]
    num_cpus: Option<usize>,
    /// Measure a cluster instead: N node processes on this machine, and
    /// an etcd of their own (`etcd` must be installed), started and
    /// stopped by the bench.
    #[arg(long, value_name = "N")]
    cluster: Option<usize>,
    /// With --cluster: the nodes talk over TLS, with the `node.crt`,
    /// `node.key` and `ca.crt` in this directory (docs/cluster.md says how
    /// to make them).
    #[arg(long, value_name = "DIR", requires = "cluster")]
    tls: Option<PathBuf>,
}

/// What one benchmark measures and how its figure is computed.
enum Measure {
    /// Operations per second: `ops` operations per driver run.
    Rate { args: Vec<String>, ops: f64 },
    /// Calls per second of a no-op on fresh instances, without the
    /// scheduler (`Runtime::bench_bare_calls`).
    BareCalls { function: &'static str, n: u32 },
    /// Gigabytes per second: the difference of a long and a short run.
    Bandwidth {
        name: &'static str,
        short: u32,
        long: u32,
        mb: u32,
    },
    /// Milliseconds of a whole `wray run` of the hello example.
    HelloRun,
    /// A figure of `wray run --num-cpus 4` of the put-once example: Ray's
    /// "put a large array once" snippet.
    Seed(SeedFigure),
    /// Resident kilobytes per idle actor.
    IdleActorRss,
    /// Milliseconds from `wray start` to a served dashboard page.
    NodeStart,
    /// Resident megabytes of an idle node.
    NodeIdleRss,
    /// Milliseconds of the slowest state API answer with 100,000 tasks
    /// recorded.
    StateApi,
    /// Tasks per second of a guest's `add` (the C example's, or the Go
    /// example's with `go`), `n` submitted from the host with
    /// cross-language values, then all got.
    GuestTasks { n: u32, go: bool },
    /// Nanoseconds per side (encode, decode) of a small argument tuple in
    /// deterministic CBOR.
    CborCodec { n: u32 },
    /// Milliseconds of a whole `wray run --memo-dir` of the memo example:
    /// the first (an empty memo directory) or the second (warm).
    MemoRun { second: bool },
}

/// What the put-once example's run gives.
#[derive(Clone, Copy)]
enum SeedFigure {
    /// Seconds to pass the array by value to 10 no-op tasks.
    ByValue,
    /// Seconds to put it once and pass the reference to 10 no-op tasks.
    PutOnce,
    /// The process's peak resident memory over both, in MB.
    PeakRss,
}

struct Bench {
    key: &'static str,
    what: &'static str,
    unit: &'static str,
    measure: Measure,
}

fn suite(quick: bool) -> Vec<Bench> {
    let scale = |n: u32| if quick { (n / 50).max(2) } else { n };
    let rate = |name: &str, n: u32, ops_per: f64| Measure::Rate {
        args: vec![name.to_string(), n.to_string()],
        ops: f64::from(n) * ops_per,
    };
    let mb = if quick { 4 } else { 100 };
    vec![
        Bench {
            key: "tasks_sync_per_s",
            what: "tasks, submit then get, one at a time",
            unit: "tasks/s",
            measure: rate("tasks_sync", scale(5_000), 1.0),
        },
        Bench {
            key: "tasks_async_per_s",
            what: "tasks, 10,000 submitted then all got",
            unit: "tasks/s",
            measure: rate("tasks_async", scale(10_000), 1.0),
        },
        Bench {
            key: "instance_calls_per_s",
            what: "fresh instance, call, drop of the no-op, no scheduler: the floor under tasks",
            unit: "calls/s",
            measure: Measure::BareCalls {
                function: "noop",
                n: scale(10_000),
            },
        },
        Bench {
            key: "tasks_nested_per_s",
            what: "tasks, parents each submitting and getting 10 children",
            unit: "tasks/s",
            measure: rate("tasks_nested", scale(1_000), 11.0),
        },
        Bench {
            key: "put_small_per_s",
            what: "put of a distinct u64 from a guest",
            unit: "puts/s",
            measure: rate("put_small", scale(200_000), 1.0),
        },
        Bench {
            key: "get_small_per_s",
            what: "get of a u64 into a guest",
            unit: "gets/s",
            measure: rate("get_small", scale(200_000), 1.0),
        },
        Bench {
            key: "put_gb_per_s",
            what: "put of distinct 100 MB values from a guest",
            unit: "GB/s",
            measure: Measure::Bandwidth {
                name: "put_large",
                short: 2,
                long: if quick { 4 } else { 12 },
                mb,
            },
        },
        Bench {
            key: "get_gb_per_s",
            what: "get of a 100 MB object into a guest",
            unit: "GB/s",
            measure: Measure::Bandwidth {
                name: "get_large",
                short: 2,
                long: if quick { 4 } else { 12 },
                mb,
            },
        },
        Bench {
            key: "view_gb_per_s",
            what: "a task reading every byte of a 200 MB object through a view",
            unit: "GB/s",
            measure: Measure::Bandwidth {
                name: "view_large",
                short: 2,
                long: if quick { 4 } else { 12 },
                mb: if quick { 4 } else { 200 },
            },
        },
        Bench {
            key: "seed_by_value_s",
            what: "Ray's put-once snippet: 200 MB of zeros by value to 10 no-op tasks (put_once.wasm, 4 CPUs)",
            unit: "s",
            measure: Measure::Seed(SeedFigure::ByValue),
        },
        Bench {
            key: "seed_put_once_s",
            what: "the same, put once and passed by reference",
            unit: "s",
            measure: Measure::Seed(SeedFigure::PutOnce),
        },
        Bench {
            key: "seed_peak_rss_mb",
            what: "peak resident memory of the whole `wray run` of the snippet",
            unit: "MB",
            measure: Measure::Seed(SeedFigure::PeakRss),
        },
        Bench {
            key: "actor_calls_sync_per_s",
            what: "actor calls, call then get, one at a time",
            unit: "calls/s",
            measure: rate("actor_calls_sync", scale(5_000), 1.0),
        },
        Bench {
            key: "actor_calls_async_per_s",
            what: "actor calls, 10,000 on one actor then all got",
            unit: "calls/s",
            measure: rate("actor_calls_async", scale(10_000), 1.0),
        },
        Bench {
            key: "actor_calls_n_n_per_s",
            what: "actor calls, one caller task per actor, as many pairs as cores",
            unit: "calls/s",
            measure: Measure::Rate {
                args: vec![
                    "actor_calls_n_n".into(),
                    scale(20_000).to_string(),
                    cores().to_string(),
                ],
                ops: f64::from(scale(20_000) / cores() as u32 * cores() as u32),
            },
        },
        Bench {
            key: "actors_create_per_s",
            what: "actors, 10,000 created and each called once",
            unit: "actors/s",
            measure: rate("actors_create", scale(10_000), 1.0),
        },
        Bench {
            key: "actor_idle_rss_kb",
            what: "resident memory per idle actor (2,000 alive)",
            unit: "KiB",
            measure: Measure::IdleActorRss,
        },
        Bench {
            key: "memo_hit_per_s",
            what: "calls of a pure function answered from the memo table, 100,000 submitted then all got",
            unit: "calls/s",
            measure: rate("memo_hits", scale(100_000), 1.0),
        },
        Bench {
            key: "memo_first_run_ms",
            what: "a whole `wray run --memo-dir` of the memo example, empty memo directory (16 points of ~200 ms)",
            unit: "ms",
            measure: Measure::MemoRun { second: false },
        },
        Bench {
            key: "memo_second_run_ms",
            what: "the same run again: every call answered from the memo directory",
            unit: "ms",
            measure: Measure::MemoRun { second: true },
        },
        Bench {
            key: "run_hello_ms",
            what: "a whole `wray run` of hello, warm code cache",
            unit: "ms",
            measure: Measure::HelloRun,
        },
        Bench {
            key: "node_start_ms",
            what: "`wray start` to the dashboard's first page served",
            unit: "ms",
            measure: Measure::NodeStart,
        },
        Bench {
            key: "node_idle_rss_mb",
            what: "resident memory of an idle node",
            unit: "MB",
            measure: Measure::NodeIdleRss,
        },
        Bench {
            key: "c_tasks_async_per_s",
            what: "C tasks (the c-math example's add), 10,000 submitted from the host with CBOR values, then all got",
            unit: "tasks/s",
            measure: Measure::GuestTasks {
                n: scale(10_000),
                go: false,
            },
        },
        Bench {
            key: "go_tasks_async_per_s",
            what: "Go tasks (the go-math example's add), as c_tasks_async_per_s: Go's runtime starts in every fresh instance",
            unit: "tasks/s",
            measure: Measure::GuestTasks {
                n: scale(2_000),
                go: true,
            },
        },
        Bench {
            key: "cbor_encode_decode_ns",
            what: "a small argument tuple [1, 2.5, \"text\", [true, null]] in deterministic CBOR: ns per encode or decode",
            unit: "ns",
            measure: Measure::CborCodec { n: scale(200_000) },
        },
        Bench {
            key: "state_api_100k_ms",
            what: "slowest of the task/actor list, summary and status APIs, 100,000 tasks recorded",
            unit: "ms",
            measure: Measure::StateApi,
        },
    ]
}

pub fn main(args: BenchArgs) -> anyhow::Result<ExitCode> {
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    if let Some(n) = args.cluster {
        return crate::cluster_bench::main(crate::cluster_bench::Options {
            nodes: n,
            runs: args.runs,
            quick: args.quick,
            json: args.json,
            module: &args.module,
            num_cpus: args.num_cpus,
            only: &args.only,
            tls: args.tls.as_deref(),
        });
    }
    // Room for the 10,000 actors of actors_create, and the driver.
    let mut builder = Runtime::builder()
        .output(Arc::new(NullSink))
        .actor_slots(12_000);
    if let Some(n) = args.num_cpus {
        builder = builder.num_cpus(n);
    }
    let rt = builder.build()?;
    let module = rt.load_file(&args.module).with_context(|| {
        format!(
            "cannot load the bench guest {} (build it with `make guests`, and run from the repository root)",
            args.module.display()
        )
    })?;
    let cores = cores();
    println!(
        "wray {} bench: {cores} cores, {} CPU slots, median of {} runs{}",
        env!("CARGO_PKG_VERSION"),
        rt.num_cpus(),
        args.runs,
        if args.quick {
            " (quick: not a measurement)"
        } else {
            ""
        }
    );
    println!(
        "{:<22} {:>14} {:<8} {:>22}  what",
        "benchmark", "median", "unit", "range"
    );
    let mut figures = Vec::new();
    for bench in suite(args.quick) {
        if !args.only.is_empty() && !args.only.iter().any(|o| bench.key.contains(o.as_str())) {
            continue;
        }
        let samples = measure(&rt, &module, &bench.measure, &args)?;
        let runs: Vec<String> = samples.iter().map(|&v| fmt_num(v)).collect();
        let (lo, mid, hi) = summary(samples);
        println!(
            "{:<22} {:>14} {:<8} {:>22}  {}",
            bench.key,
            fmt_num(mid),
            bench.unit,
            format!("{} .. {}", fmt_num(lo), fmt_num(hi)),
            bench.what
        );
        if args.samples {
            println!("{:<22} runs: {}", "", runs.join(", "));
        }
        figures.push((bench.key, mid));
    }
    if args.json {
        let mut obj = serde_json::Map::new();
        for (k, v) in figures {
            obj.insert(k.into(), serde_json::json!(round(v)));
        }
        obj.insert("cores".into(), serde_json::json!(cores));
        obj.insert("cpu_slots".into(), serde_json::json!(rt.num_cpus()));
        println!("{}", serde_json::Value::Object(obj));
    }
    Ok(ExitCode::SUCCESS)
}

fn measure(
    rt: &Runtime,
    module: &Module,
    m: &Measure,
    args: &BenchArgs,
) -> anyhow::Result<Vec<f64>> {
    let runs = args.runs;
    match m {
        Measure::Rate { args: drv, ops } => per_second(runs, *ops, || time_driver(rt, module, drv)),
        Measure::BareCalls { function, n } => per_second(runs, f64::from(*n), || {
            let start = Instant::now();
            rt.bench_bare_calls(module, function, *n)?;
            Ok(start.elapsed())
        }),
        Measure::Bandwidth {
            name,
            short,
            long,
            mb,
        } => {
            let drv = |n: u32| vec![name.to_string(), n.to_string(), mb.to_string()];
            time_driver(rt, module, &drv(*short))?;
            (0..runs)
                .map(|_| {
                    let t_short = time_driver(rt, module, &drv(*short))?;
                    let t_long = time_driver(rt, module, &drv(*long))?;
                    let bytes = f64::from(long - short) * f64::from(*mb) * 1e6;
                    let secs = t_long.saturating_sub(t_short).as_secs_f64().max(1e-9);
                    Ok(bytes / secs / 1e9)
                })
                .collect()
        }
        Measure::IdleActorRss => {
            let n = if args.quick { 100 } else { 2_000 };
            (0..runs).map(|_| idle_actor_rss(rt, module, n)).collect()
        }
        Measure::NodeStart => (0..runs)
            .map(|_| Ok(start_node()?.0.as_secs_f64() * 1e3))
            .collect(),
        Measure::NodeIdleRss => (0..runs).map(|_| Ok(start_node()?.1)).collect(),
        Measure::StateApi => state_api(rt, module, if args.quick { 2_000 } else { 100_000 }, runs),
        Measure::GuestTasks { n, go } => {
            let path = if *go { &args.go_math } else { &args.c_math };
            let c = rt.load_file(path).with_context(|| {
                format!(
                    "cannot load {} (build it with `make guests`)",
                    path.display()
                )
            })?;
            c_tasks(rt, &c, 100)?; // warms the code
            per_second(runs, f64::from(*n), || c_tasks(rt, &c, *n))
        }
        Measure::CborCodec { n } => (0..runs).map(|_| Ok(cbor_codec(*n))).collect(),
        Measure::MemoRun { second } => {
            // The quick suite sweeps a smaller grid, with less work a point.
            let grid: &[&str] = if args.quick {
                &["2", "2", "1000000"]
            } else {
                &["4", "3"]
            };
            let dir = std::env::temp_dir().join(format!("wray-bench-memo-{}", std::process::id()));
            let fresh = || {
                let _ = std::fs::remove_dir_all(&dir);
            };
            fresh();
            let ms = |d: Duration| d.as_secs_f64() * 1e3;
            let out = if *second {
                memo_run(&args.memo, &dir, grid).and_then(|_| {
                    (0..runs)
                        .map(|_| Ok(ms(memo_run(&args.memo, &dir, grid)?)))
                        .collect()
                })
            } else {
                (0..runs)
                    .map(|_| {
                        fresh();
                        Ok(ms(memo_run(&args.memo, &dir, grid)?))
                    })
                    .collect()
            };
            fresh();
            out
        }
        Measure::Seed(figure) => {
            seed(&args.put_once)?; // warms the code cache
            (0..runs)
                .map(|_| Ok(seed(&args.put_once)?[*figure as usize]))
                .collect()
        }
        Measure::HelloRun => {
            let exe = std::env::current_exe().context("cannot find the wray executable")?;
            let run = || -> anyhow::Result<Duration> {
                let start = Instant::now();
                let status = Command::new(&exe)
                    .arg("run")
                    .arg(&args.hello)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()?;
                let took = start.elapsed();
                if !status.success() {
                    bail!("`wray run {}` failed: {status}", args.hello.display());
                }
                Ok(took)
            };
            run()?; // warms the code cache
            (0..runs).map(|_| Ok(run()?.as_secs_f64() * 1e3)).collect()
        }
    }
}

/// Submits `n` calls of the C example's `add` from the host, then gets
/// them all.
fn c_tasks(rt: &Runtime, c: &Module, n: u32) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let refs = (0..n)
        .map(|i| {
            rt.task(c, "add")
                .arg_value(&Value::Int(i64::from(i).into()))
                .arg_value(&Value::Int(1))
                .submit()
        })
        .collect::<Result<Vec<_>, _>>()?;
    for (i, r) in refs.iter().enumerate() {
        let v = rt.get_value(r)?;
        if v != Value::Int(i as i128 + 1) {
            bail!("add gave {v:?}");
        }
    }
    Ok(start.elapsed())
}

/// Nanoseconds per encode or decode of a small argument tuple.
fn cbor_codec(n: u32) -> f64 {
    let v = Value::List(vec![
        Value::Int(1),
        Value::Float(2.5),
        Value::Str("text".into()),
        Value::List(vec![Value::Bool(true), Value::Null]),
    ]);
    let start = Instant::now();
    for _ in 0..n {
        let bytes = std::hint::black_box(&v).encode().expect("encodes");
        let back = Value::decode(std::hint::black_box(&bytes)).expect("decodes");
        std::hint::black_box(back);
    }
    start.elapsed().as_secs_f64() * 1e9 / f64::from(n) / 2.0
}

/// Runs the put-once example under `wray run --num-cpus 4` (the seed's
/// setting) and returns what it printed, in seconds, and the process's peak
/// resident memory in MB, in [`SeedFigure`] order.
fn seed(example: &std::path::Path) -> anyhow::Result<[f64; 3]> {
    let exe = std::env::current_exe().context("cannot find the wray executable")?;
    let child = Command::new(&exe)
        .args(["run", "--num-cpus", "4"])
        .arg(example)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot run {}", example.display()))?;
    let pid = child.id() as libc::pid_t;
    let out = std::io::read_to_string(child.stdout.context("no stdout")?)?;
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, whose stdout we have read to its end.
    if unsafe { libc::wait4(pid, &mut status, 0, &mut usage) } != pid
        || !libc::WIFEXITED(status)
        || libc::WEXITSTATUS(status) != 0
    {
        bail!(
            "`wray run {}` failed (build it with `make guests`): {out}",
            example.display()
        );
    }
    let seconds = |label: &str| -> anyhow::Result<f64> {
        out.lines()
            .find_map(|l| l.strip_prefix(label))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .with_context(|| format!("the example printed no `{label}` line: {out}"))
    };
    // ru_maxrss is in KiB on Linux.
    let peak_mb = usage.ru_maxrss as f64 * 1024.0 / 1e6;
    Ok([seconds("by value:")?, seconds("put once:")?, peak_mb])
}

/// Times a whole `wray run --memo-dir <dir>` of the memo example.
fn memo_run(
    example: &std::path::Path,
    dir: &std::path::Path,
    grid: &[&str],
) -> anyhow::Result<Duration> {
    let exe = std::env::current_exe().context("cannot find the wray executable")?;
    let start = Instant::now();
    let status = Command::new(&exe)
        .arg("run")
        .arg("--memo-dir")
        .arg(dir)
        .arg(example)
        .arg("--")
        .args(grid)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    let took = start.elapsed();
    if !status.success() {
        bail!(
            "`wray run {}` failed (build it with `make guests`): {status}",
            example.display()
        );
    }
    Ok(took)
}

/// Resident KiB per actor: `n` actors created and called once, compared
/// with the process before them.
fn idle_actor_rss(rt: &Runtime, module: &Module, n: usize) -> anyhow::Result<f64> {
    // A first actor builds the actor engine, whose pool is not per actor.
    let warm = rt.actor(module, "Target").create()?;
    rt.get_bytes(&rt.method(&warm, "noop").submit()?)?;
    let before = rss_kib()?;
    let actors = (0..n)
        .map(|_| rt.actor(module, "Target").create())
        .collect::<Result<Vec<_>, _>>()?;
    let calls = actors
        .iter()
        .map(|a| rt.method(a, "noop").submit())
        .collect::<Result<Vec<_>, _>>()?;
    for c in &calls {
        rt.get_bytes(c)?;
    }
    let after = rss_kib()?;
    for a in actors.iter().chain([&warm]) {
        rt.kill(a, false);
    }
    Ok(after.saturating_sub(before) as f64 / n as f64)
}

/// Starts a node (`wray start` on a free port, its own state directory),
/// times it until its dashboard page is served, reads its resident memory
/// after a second idle, and stops it. Returns (time to serve, MB resident).
fn start_node() -> anyhow::Result<(Duration, f64)> {
    use std::io::BufRead;
    let exe = std::env::current_exe().context("cannot find the wray executable")?;
    let dir = std::env::temp_dir().join(format!("wray-bench-node-{}", std::process::id()));
    let began = Instant::now();
    let mut child = Command::new(&exe)
        .args(["start", "--port", "0"])
        .env("WRAY_STATE_DIR", &dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let result = (|| {
        let mut err = std::io::BufReader::new(child.stderr.take().context("no stderr")?);
        let mut line = String::new();
        while !line.contains("http://") {
            line.clear();
            if err.read_line(&mut line)? == 0 {
                bail!("`wray start` exited before serving");
            }
        }
        let url = line
            .split_whitespace()
            .last()
            .unwrap_or_default()
            .to_string();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let page = agent.get(&url).call()?;
        let served = began.elapsed();
        if !page.status().is_success() {
            bail!("the dashboard answered {}", page.status());
        }
        std::thread::sleep(Duration::from_secs(1));
        let status = std::fs::read_to_string(format!("/proc/{}/status", child.id()))?;
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .context("no VmRSS for the node")?;
        Ok((served, kib * 1024.0 / 1e6))
    })();
    // SAFETY: signals our own child, which handles SIGTERM.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Records `tasks` tasks, serves the API, and times its list, summary and
/// status answers; each run's figure is the slowest answer.
fn state_api(rt: &Runtime, module: &Module, tasks: u32, runs: usize) -> anyhow::Result<Vec<f64>> {
    use wray_runtime::node::{LogStore, Node, NodeOptions};
    for _ in 0..tasks.div_ceil(10_000) {
        time_driver(
            rt,
            module,
            &["tasks_async".into(), tasks.min(10_000).to_string()],
        )?;
    }
    let node = Node::serve(
        rt,
        Arc::new(LogStore::new(Arc::new(NullSink))),
        NodeOptions {
            port: 0,
            ..NodeOptions::default()
        },
    )?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let paths = [
        "/api/v0/tasks",
        "/api/v0/tasks?function=noop&offset=50000",
        "/api/v0/tasks/summary",
        "/api/v0/actors",
        "/api/v0/status",
        "/api/jobs/",
    ];
    (0..=runs)
        .map(|_| {
            let mut slowest = Duration::ZERO;
            for p in paths {
                let start = Instant::now();
                let mut resp = agent.get(format!("{}{p}", node.url())).call()?;
                resp.body_mut().read_to_vec()?;
                slowest = slowest.max(start.elapsed());
                if !resp.status().is_success() {
                    bail!("{p} answered {}", resp.status());
                }
            }
            Ok(slowest.as_secs_f64() * 1e3)
        })
        .skip(1) // warm-up
        .collect()
}

/// This process's resident memory, in KiB.
fn rss_kib() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmRSS in /proc/self/status")
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `runs` rates of `ops` operations done by `run`, after a warm-up run.
fn per_second(
    runs: usize,
    ops: f64,
    run: impl Fn() -> anyhow::Result<Duration>,
) -> anyhow::Result<Vec<f64>> {
    run()?; // warm-up
    (0..runs).map(|_| Ok(ops / run()?.as_secs_f64())).collect()
}

fn time_driver(rt: &Runtime, module: &Module, args: &[String]) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let status = rt.run_driver(module, args)?;
    let took = start.elapsed();
    if status != 0 {
        bail!("the bench driver exited with status {status} for {args:?}");
    }
    Ok(took)
}

/// (min, median, max).
fn summary(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let mid = if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    };
    (v[0], mid, v[v.len() - 1])
}

pub(crate) fn round(v: f64) -> f64 {
    if v.abs() >= 100.0 {
        v.round()
    } else {
        (v * 100.0).round() / 100.0
    }
}

pub(crate) fn fmt_num(v: f64) -> String {
    if v.abs() >= 1000.0 {
        let s = format!("{:.0}", v);
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        out
    } else {
        format!("{:.2}", v)
    }
}
