//! The wray demo: what `make run` shows.
//!
//! Tasks fanned out over every core, a nested task tree, objects put once
//! and shared, an actor updated by many tasks, `wait` for the first results,
//! an error coming back as a value, and timings for each.
//!
//! Run: `make run`, or `target/release/wray run target/wasm32-wasip1/release/demo.wasm`

use std::time::{Duration, Instant};
use wray::prelude::*;

/// A small unit of work: how many primes are below `n`.
#[wray::remote]
fn count_primes(lo: u64, hi: u64) -> u64 {
    (lo.max(2)..hi)
        .filter(|&n| (2..).take_while(|d| d * d <= n).all(|d| n % d != 0))
        .count() as u64
}

/// Nested tasks: fib(n) computed by a tree of tasks down to `cutoff`.
#[wray::remote]
fn fib(n: u32, cutoff: u32) -> wray::Result<u64> {
    if n <= cutoff {
        let (mut a, mut b) = (0u64, 1u64);
        for _ in 0..n {
            (a, b) = (b, a + b);
        }
        return Ok(a);
    }
    let parts = [fib::remote(n - 1, cutoff), fib::remote(n - 2, cutoff)];
    Ok(wray::get(&parts)?.iter().sum())
}

/// Reads a shared table by reference.
#[wray::remote]
fn lookup(table: ObjectRef<Vec<u64>>, i: u64) -> wray::Result<u64> {
    Ok(wray::get(&table)?[i as usize])
}

/// Takes `ms` milliseconds.
#[wray::remote]
fn sleepy(ms: u64) -> u64 {
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(ms) {
        std::hint::spin_loop();
    }
    ms
}

/// An actor: a running histogram that tasks report to.
#[wray::remote]
struct Histogram {
    buckets: Vec<u64>,
}

#[wray::remote]
impl Histogram {
    fn new(n: u64) -> Self {
        Histogram {
            buckets: vec![0; n as usize],
        }
    }

    fn record(&mut self, value: u64) {
        let n = self.buckets.len() as u64;
        self.buckets[(value % n) as usize] += 1;
    }

    fn buckets(&self) -> Vec<u64> {
        self.buckets.clone()
    }
}

/// A task that reports its results to the histogram actor.
#[wray::remote]
fn report(hist: ActorHandle<Histogram>, from: u64, count: u64) -> wray::Result<u64> {
    let calls: Vec<_> = (from..from + count).map(|v| hist.record(v * v)).collect();
    wray::get(&calls)?;
    Ok(count)
}

#[wray::remote]
fn checked_div(a: i64, b: i64) -> Result<i64, String> {
    if b == 0 {
        Err(format!("cannot divide {a} by zero"))
    } else {
        Ok(a / b)
    }
}

fn section(title: &str) {
    println!("\n== {title}");
}

#[wray::main]
fn main() -> wray::Result<()> {
    println!(
        "wray demo: tasks, nested tasks, objects, an actor, wait and errors, each call in its own wasm sandbox"
    );

    section("tasks: 1,000 remote calls, then one get");
    let start = Instant::now();
    let refs: Vec<_> = (0..1000u64)
        .map(|i| count_primes::remote(i * 1000, (i + 1) * 1000))
        .collect();
    let primes: u64 = wray::get(&refs)?.iter().sum();
    let took = start.elapsed();
    println!(
        "{primes} primes below 1,000,000 in {took:.2?} ({:.0} tasks/s)",
        1000.0 / took.as_secs_f64()
    );

    section("nested tasks: fib(24) as a tree of tasks");
    let start = Instant::now();
    let f = wray::get(&fib::remote(24u32, 12u32))?;
    println!("fib(24) = {f} in {:.2?}", start.elapsed());

    section("objects: put a table once, share it by reference");
    let table: Vec<u64> = (0..1_000_000).map(|i| i * i).collect();
    let start = Instant::now();
    let shared = wray::put(&table);
    let reads: Vec<_> = [10u64, 1000, 999_999]
        .iter()
        .map(|&i| lookup::remote(shared.clone(), i))
        .collect();
    println!(
        "table[10, 1000, 999999] = {:?} in {:.2?}",
        wray::get(&reads)?,
        start.elapsed()
    );
    println!(
        "object {} holds {} bytes",
        shared.id().short(),
        table.len() * 8
    );

    section("actors: one histogram, updated by 8 tasks, calls applied one at a time");
    let start = Instant::now();
    let hist = Histogram::remote(10u64);
    let reporters: Vec<_> = (0..8u64)
        .map(|i| report::remote(hist.clone(), i * 1000, 1000u64))
        .collect();
    let reported: u64 = wray::get(&reporters)?.iter().sum();
    let buckets = wray::get(&hist.buckets())?;
    println!(
        "{reported} values recorded, {} counted, in {:.2?}: {buckets:?}",
        buckets.iter().sum::<u64>(),
        start.elapsed()
    );

    section("wait: the first of several results");
    let start = Instant::now();
    let racers: Vec<_> = [300u64, 30, 200]
        .iter()
        .map(|&ms| sleepy::remote(ms))
        .collect();
    let (first, _rest) = wray::wait(&racers, 1, None)?;
    println!(
        "first finished: {} ms task, after {:.2?}",
        wray::get(&first[0])?,
        start.elapsed()
    );

    section("errors are values");
    match wray::get(&checked_div::remote(1i64, 0i64)) {
        Ok(v) => println!("unexpected: {v}"),
        Err(e) => println!("the task failed, and get says why: {e}"),
    }
    println!("\ndone.");
    Ok(())
}
