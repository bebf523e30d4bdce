//! The guest behind `wray bench`.
//!
//! Its driver takes a benchmark name and a count (`wray run wray_bench.wasm
//! -- tasks_async 10000`) and does that much work; `wray bench` times whole
//! driver runs from the host, so every figure includes the real submit,
//! schedule, instantiate, call and notify path.

use wray::{ActorHandle, ObjectRef, RemoteOptions, View};

/// A task that does nothing.
#[wray::remote]
fn noop() {}

/// A parent that submits `children` no-op tasks and gets them all.
#[wray::remote]
fn parent(children: u32) -> u32 {
    let refs: Vec<_> = (0..children).map(|_| noop::remote()).collect();
    wray::get(&refs).expect("children succeed").len() as u32
}

fn tasks_sync(n: u32) {
    for _ in 0..n {
        wray::get(&noop::remote()).expect("noop succeeds");
    }
}

fn tasks_async(n: u32) {
    let refs: Vec<_> = (0..n).map(|_| noop::remote()).collect();
    wray::get(&refs).expect("noops succeed");
}

/// Computes for `us` microseconds.
#[wray::remote]
fn spin(us: u64) {
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_micros(us) {
        std::hint::spin_loop();
    }
}

/// Submits `n` tasks that compute for `us` microseconds each, waits for
/// the first half to finish, then for the rest: `wait` with `num_returns`
/// under the number of references. Not in the suite; for comparing builds
/// (`wray run wray_bench.wasm -- tasks_wait 20000 100`).
fn tasks_wait(n: u32, us: u64) {
    let refs: Vec<_> = (0..n).map(|_| spin::remote(us)).collect();
    let half = refs.len() / 2;
    let (ready, rest) = wray::wait(&refs, half, None).expect("wait succeeds");
    assert_eq!(ready.len(), half);
    let (ready, _) = wray::wait(&rest, rest.len(), None).expect("wait succeeds");
    assert_eq!(ready.len(), refs.len() - half);
}

/// Makes a value of `mb` megabytes and returns it.
#[wray::remote]
fn large_result(mb: u32, i: u32) -> Vec<u8> {
    let mut v = vec![0u8; mb as usize * 1_000_000];
    v[..4].copy_from_slice(&i.to_le_bytes());
    v
}

/// `n` tasks one after another, each returning `mb` megabytes into the
/// store (the driver waits for each, without fetching it). Not in the
/// suite, as making the value in a fresh instance costs as much as
/// returning it; for comparing builds (`wray run wray_bench.wasm --
/// results 10 100`).
fn results(n: u32, mb: usize) {
    for i in 0..n {
        let r = large_result::remote(mb as u32, i);
        wray::wait(&[r], 1, None).expect("wait succeeds");
    }
}

/// A pure function: after its first call, calls with the same argument
/// are answered from the memo table (docs/memo.md).
#[wray::remote(pure)]
fn memo_square(x: u64) -> u64 {
    x * x
}

/// `n` calls answered from the memo table, submitted then all got (one
/// call first stores the result).
fn memo_hits(n: u32) {
    wray::get(&memo_square::remote(3u64)).expect("the first call runs");
    let refs: Vec<_> = (0..n).map(|_| memo_square::remote(3u64)).collect();
    let got = wray::get(&refs).expect("hits succeed");
    assert!(got.iter().all(|&v| v == 9));
}

fn tasks_nested(parents: u32) {
    let refs: Vec<_> = (0..parents).map(|_| parent::remote(10u32)).collect();
    let got = wray::get(&refs).expect("parents succeed");
    assert!(got.iter().all(|&c| c == 10));
}

fn put_small(n: u32) {
    // Distinct values: content addressing would otherwise store one object.
    let refs: Vec<ObjectRef<u64>> = (0..u64::from(n)).map(|i| wray::put(&i)).collect();
    assert_eq!(refs.len(), n as usize);
}

fn get_small(n: u32) {
    let r = wray::put(&42u64);
    for _ in 0..n {
        assert_eq!(wray::get(&r).expect("get succeeds"), 42);
    }
}

/// Puts `n` distinct values of `mb` megabytes each.
fn put_large(n: u32, mb: usize) {
    let mut v = vec![0u8; mb * 1_000_000];
    for i in 0..n {
        v[0] = i as u8;
        v[1] = (i >> 8) as u8;
        drop(wray::put(&v));
    }
}

/// Gets one object of `mb` megabytes `n` times into this instance.
fn get_large(n: u32, mb: usize) {
    let r = wray::put(&vec![7u8; mb * 1_000_000]);
    for _ in 0..n {
        let v: Vec<u8> = wray::get(&r).expect("get succeeds");
        assert_eq!(v.len(), mb * 1_000_000);
    }
}

/// Reads every byte of `v` in place (eight at a time) and sums them.
#[wray::remote]
fn read_view(v: View<Vec<u8>>) -> u64 {
    let bytes = v.as_slice();
    let words = bytes.chunks_exact(8);
    let tail: u64 = words.remainder().iter().map(|&b| u64::from(b)).sum();
    words.fold(tail, |sum, w| {
        sum.wrapping_add(u64::from_le_bytes(w.try_into().expect("eight bytes")))
    })
}

/// Puts one object of `mb` megabytes, then has `n` tasks in turn read all
/// of it through a view.
fn view_large(n: u32, mb: usize) {
    let r = wray::put(&vec![1u8; mb * 1_000_000]);
    let want = (mb * 1_000_000 / 8) as u64 * 0x0101_0101_0101_0101;
    for _ in 0..n {
        assert_eq!(wray::get(&read_view::remote(&r)).expect("a read"), want);
    }
}

/// Puts one object of `kb` KiB, then views it `n` times in this instance,
/// reading every byte: where mapping an object starts to beat copying it.
fn view_kb(n: u32, kb: usize) {
    let r = wray::put(&vec![1u8; kb << 10]);
    let mut sum = 0u64;
    for _ in 0..n {
        let v = wray::get_view(&r).expect("a view");
        sum += v.as_slice().iter().map(|&b| u64::from(b)).sum::<u64>();
    }
    assert_eq!(sum, u64::from(n) * (kb << 10) as u64);
}

/// An actor that does nothing.
#[wray::remote]
struct Target;

#[wray::remote]
impl Target {
    fn new() -> Self {
        Target
    }

    fn noop(&self) {}
}

fn actor_calls_sync(n: u32) {
    let a = Target::remote();
    for _ in 0..n {
        wray::get(&a.noop()).expect("noop succeeds");
    }
}

fn actor_calls_async(n: u32) {
    let a = Target::remote();
    // Created and ready before the timed calls matter little at 10,000.
    let refs: Vec<_> = (0..n).map(|_| a.noop()).collect();
    wray::get(&refs).expect("noops succeed");
}

/// A caller that makes `n` calls on its actor, then gets them all.
#[wray::remote]
fn caller(a: ActorHandle<Target>, n: u32) -> u32 {
    let refs: Vec<_> = (0..n).map(|_| a.noop()).collect();
    wray::get(&refs).expect("noops succeed").len() as u32
}

/// `pairs` callers (tasks), each calling its own actor `n / pairs` times.
fn actor_calls_n_n(n: u32, pairs: u32) {
    let actors: Vec<_> = (0..pairs).map(|_| Target::remote()).collect();
    let callers: Vec<_> = actors
        .iter()
        .map(|a| caller::remote(a.clone(), n / pairs))
        .collect();
    wray::get(&callers).expect("callers succeed");
}

/// Creates `n` actors and calls each once.
fn actors_create(n: u32) {
    let actors: Vec<_> = (0..n).map(|_| Target::remote()).collect();
    let refs: Vec<_> = actors.iter().map(|a| a.noop()).collect();
    wray::get(&refs).expect("every actor answers");
}

// ---- a cluster (`wray bench --cluster N`) ---------------------------------
// These print their own timings (`<figure>_us=<microseconds>`): the driver
// runs on a node, not in the process that measures.

/// A view's length: the bytes are mapped, not read.
#[wray::remote]
fn view_len(v: View<Vec<u8>>) -> u64 {
    v.as_slice().len() as u64
}

fn print_elapsed(figure: &str, since: std::time::Instant) {
    println!("{figure}_us={}", since.elapsed().as_micros());
}

/// `n` no-op tasks submitted at once, placed as the scheduler likes (or
/// spread over every node), all got.
fn cluster_tasks(n: u32, spread: bool) {
    let start = std::time::Instant::now();
    let refs: Vec<_> = (0..n)
        .map(|_| match spread {
            true => noop::options().spread().remote(),
            false => noop::remote(),
        })
        .collect();
    wray::get(&refs).expect("noops succeed");
    print_elapsed(if spread { "spread" } else { "tasks" }, start);
}

/// `n` no-op tasks on node `other`, one after another: the median round
/// trip.
fn remote_task(n: u32, other: &str) {
    let mut took: Vec<u128> = (0..n)
        .map(|_| {
            let start = std::time::Instant::now();
            wray::get(&noop::options().node(other).remote()).expect("a noop there");
            start.elapsed().as_micros()
        })
        .collect();
    took.sort_unstable();
    println!("p50_us={}", took[took.len() / 2]);
}

/// `n` calls of an actor placed on node `other`, submitted at once, all
/// got (the actor is made and answers once before the timing).
fn remote_actor(n: u32, other: &str) {
    let a = Target::options().node(other).remote();
    wray::get(&a.noop()).expect("the actor answers");
    let start = std::time::Instant::now();
    let refs: Vec<_> = (0..n).map(|_| a.noop()).collect();
    wray::get(&refs).expect("noops succeed");
    print_elapsed("actor", start);
}

/// An object of `mb` megabytes made on node `here`, then read (mapped)
/// by a task on node `other`, which pulls it: twice, the second timed.
fn pull(mb: u32, here: &str, other: &str) {
    // Each round an object of its own (the first warms the way up), new to
    // the other node, which keeps copies of what it pulled: stamped with
    // the clock, so no earlier run made the same.
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u32);
    let mut figure = 0;
    for round in 0..2 {
        let big = large_result::options()
            .node(here)
            .remote(mb, stamp.wrapping_add(round));
        wray::wait(std::slice::from_ref(&big), 1, None).expect("the object is made");
        let start = std::time::Instant::now();
        let n = wray::get(&view_len::options().node(other).remote(&big)).expect("a pull");
        assert_eq!(n, u64::from(mb) * 1_000_000);
        figure = start.elapsed().as_micros();
    }
    println!("pull_us={figure}");
}

/// `n` tasks of `ms` milliseconds each, spread over every node, all got.
fn spread_job(n: u32, ms: u64) {
    let start = std::time::Instant::now();
    let refs: Vec<_> = (0..n)
        .map(|_| spin::options().spread().remote(ms * 1000))
        .collect();
    wray::get(&refs).expect("every task succeeds");
    print_elapsed("job", start);
}

#[wray::main]
fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [name, count, rest @ ..] = args.as_slice() else {
        return Err(
            "usage: wray_bench <benchmark> <count> [megabytes, pairs or microseconds]".into(),
        );
    };
    let n: u32 = count.parse().map_err(|_| format!("bad count `{count}`"))?;
    let mb: usize = rest
        .first()
        .map_or(Ok(100), |s| s.parse())
        .map_err(|_| "bad size")?;
    match name.as_str() {
        "tasks_sync" => tasks_sync(n),
        "tasks_async" => tasks_async(n),
        "tasks_wait" => tasks_wait(n, mb as u64),
        "tasks_nested" => tasks_nested(n),
        "results" => results(n, mb),
        "put_small" => put_small(n),
        "get_small" => get_small(n),
        "put_large" => put_large(n, mb),
        "get_large" => get_large(n, mb),
        "view_large" => view_large(n, mb),
        "view_kb" => view_kb(n, mb),
        "actor_calls_sync" => actor_calls_sync(n),
        "actor_calls_async" => actor_calls_async(n),
        "actor_calls_n_n" => actor_calls_n_n(n, mb as u32),
        "actors_create" => actors_create(n),
        "memo_hits" => memo_hits(n),
        "cluster_tasks" => cluster_tasks(n, false),
        "cluster_spread" => cluster_tasks(n, true),
        "remote_task" => remote_task(n, arg(rest, 0)?),
        "remote_actor" => remote_actor(n, arg(rest, 0)?),
        "pull" => pull(n, arg(rest, 0)?, arg(rest, 1)?),
        "spread_job" => spread_job(n, mb as u64),
        other => return Err(format!("unknown benchmark `{other}`")),
    }
    Ok(())
}

/// The driver's argument `i` after the count.
fn arg(rest: &[String], i: usize) -> Result<&str, String> {
    rest.get(i)
        .map(String::as_str)
        .ok_or_else(|| format!("argument {} is missing", i + 3))
}
