//! The integration suite's guest: remote functions for every behaviour the
//! suite checks, and a driver whose first argument picks a scenario.
//!
//! Scenarios check their own expectations and fail the driver (exit status
//! 1, with the message) when one does not hold, so the host test sees every
//! mismatch.

use std::time::{Duration, Instant};
use wray::prelude::*;

// ---- values --------------------------------------------------------------

#[wray::remote]
fn add(a: i32, b: i32) -> i32 {
    a + b
}

#[wray::remote]
fn concat(a: String, b: String) -> String {
    format!("{a}{b}")
}

#[wray::value]
#[derive(Debug, PartialEq, Clone)]
pub struct Point {
    x: f64,
    y: f64,
}

#[wray::remote]
fn norm(p: Point) -> f64 {
    (p.x * p.x + p.y * p.y).sqrt()
}

#[wray::remote]
fn sum(v: Vec<u64>) -> u64 {
    v.iter().sum()
}

/// Takes the reference itself and fetches lazily.
#[wray::remote]
fn sum_ref(r: ObjectRef<Vec<u64>>) -> u64 {
    wray::get(&r).expect("the object exists").iter().sum()
}

/// Returns a reference to an object it put: the object outlives the task.
#[wray::remote]
fn make_ref(x: u64) -> ObjectRef<u64> {
    wray::put(&x)
}

// ---- memoized (pure) functions: docs/memo.md -------------------------------

/// Pure: its result depends on its argument only.
#[wray::remote(pure)]
fn pure_square(x: u64) -> u64 {
    x * x
}

/// Pure, with two arguments, one of which may be an object.
#[wray::remote(pure)]
fn pure_sum(v: Vec<u64>, k: u64) -> u64 {
    v.iter().sum::<u64>() * k
}

/// Declared pure, but reads the clock: the runtime does not store it.
#[wray::remote(pure)]
fn pure_but_clock(x: u64) -> u64 {
    let t = std::time::SystemTime::now();
    x + u64::from(t.elapsed().is_err())
}

/// Declared pure, and fails: a failure is not stored.
#[wray::remote(pure)]
fn pure_fails(x: u64) -> Result<u64, String> {
    Err(format!("no result for {x}"))
}

/// Declared pure, returning `kib` KiB of `fill` (for the memo's size).
#[wray::remote(pure)]
fn pure_bytes(kib: u32, fill: u8) -> Vec<u8> {
    vec![fill; kib as usize * 1024]
}

/// Declared pure, returning a reference: not stored (it would outlive
/// the object).
#[wray::remote(pure)]
fn pure_ref(x: u64) -> ObjectRef<u64> {
    wray::put(&x)
}

/// Puts `n` objects and drops them all: the host releases them in batches,
/// on the object store's reaper thread.
#[wray::remote]
fn puts_and_drops(n: u32) -> u32 {
    let refs: Vec<_> = (0..u64::from(n)).map(|i| wray::put(&i)).collect();
    drop(refs);
    n
}

/// A result too large for the stack is streamed to the host: `n` bytes of
/// `fill`, and references to `refs` objects it put and then dropped.
#[wray::remote]
fn make_large(n: u32, fill: u8, refs: u64) -> (Vec<u8>, Vec<ObjectRef<u64>>) {
    let parts = (0..refs).map(|i| wray::put(&i)).collect();
    (vec![fill; n as usize], parts)
}

#[wray::remote]
fn deref(r: ObjectRef<u64>) -> u64 {
    wray::get(&r).expect("the object exists")
}

/// `x`, or an error saying `why` if it is not empty.
#[wray::remote]
fn x_unless(x: u64, why: String) -> Result<u64, String> {
    match why.is_empty() {
        true => Ok(x),
        false => Err(why),
    }
}

/// How many references a value holds beside its bytes.
#[wray::remote]
fn count_refs(v: (Vec<u8>, Vec<ObjectRef<u64>>)) -> u64 {
    v.1.len() as u64
}

/// Sums the numbers a reference to a list of references names.
#[wray::remote]
fn sum_deep(r: ObjectRef<Vec<ObjectRef<u64>>>) -> wray::Result<u64> {
    Ok(wray::get(&wray::get(&r)?)?.iter().sum())
}

#[wray::remote]
fn nothing() {}

#[wray::remote]
fn double(x: u32) -> u32 {
    x * 2
}

#[wray::remote]
fn len(v: Vec<u8>) -> u64 {
    v.len() as u64
}

// ---- views ---------------------------------------------------------------

/// Sums numbers read in place.
#[wray::remote]
fn view_sum(v: View<Vec<f64>>) -> f64 {
    v.as_slice().iter().sum()
}

/// Reads a string and a vector of a value through its archived form.
#[wray::remote]
fn view_point_norm(p: View<Point>) -> f64 {
    let (x, y) = (p.x.to_native(), p.y.to_native());
    (x * x + y * y).sqrt()
}

/// Where a view of `v` lies in this instance's memory, after checking that
/// every byte is `fill`; then ends as `how` says: 0 returns, 1 panics,
/// 2 traps, 3 computes until stopped (a timeout or a cancel).
#[wray::remote]
fn view_then(v: View<Vec<u8>>, fill: u8, how: u32) -> u32 {
    assert!(
        v.as_slice().iter().all(|&b| b == fill),
        "the view reads its object"
    );
    let at = v.as_slice().as_ptr() as u32;
    println!("read the view at {at:#x}");
    match how {
        0 => at,
        1 => panic!("ends with a panic while a view is mapped"),
        2 => std::process::abort(),
        _ => loop {
            std::hint::black_box(&v);
        },
    }
}

/// Whether the `len` bytes at `at` are all zero, growing memory to reach
/// them if need be: what a fresh instance finds where an earlier one had an
/// object mapped.
#[wray::remote]
fn zeros_at(at: u32, len: u32) -> bool {
    zeros_in(at, len)
}

fn zeros_in(at: u32, len: u32) -> bool {
    let end = at as usize + len as usize;
    let pages = core::arch::wasm32::memory_size(0) * 65536;
    if end > pages {
        let more = (end - pages).div_ceil(65536);
        assert_ne!(core::arch::wasm32::memory_grow(0, more), usize::MAX);
    }
    let ptr = std::ptr::with_exposed_provenance::<u8>(at as usize);
    // SAFETY: the range is inside linear memory (grown above if need be);
    // it is only read.
    let bytes = unsafe { std::slice::from_raw_parts(ptr, len as usize) };
    bytes.iter().all(|&b| b == 0)
}

/// Views `v`, drops the view, and reports whether its region then reads as
/// zeros, and whether a second view reuses the region.
#[wray::remote]
fn view_drop_view(r: ObjectRef<Vec<u8>>) -> (bool, bool) {
    let first = wray::get_view(&r).expect("a view");
    let (at, len) = (first.as_slice().as_ptr() as u32, first.bytes().len() as u32);
    drop(first);
    let zeros = zeros_in(at, len);
    let again = wray::get_view(&r).expect("a second view");
    (zeros, again.as_slice().as_ptr() as u32 == at)
}

/// Reads `r` owned (decoded from its mapping, which then goes) and by a
/// view, `n` times each; returns the bytes read and the memory's size in
/// wasm pages at the end: the memory a mapping takes is reused.
#[wray::remote]
fn read_many(r: ObjectRef<Vec<u8>>, n: u32) -> (u64, u32) {
    let mut total = 0u64;
    for _ in 0..n {
        let owned: Vec<u8> = wray::get(&r).expect("a get");
        let view = wray::get_view(&r).expect("a view");
        total += owned.len() as u64 + view.len() as u64;
    }
    (total, core::arch::wasm32::memory_size(0) as u32)
}

/// The number of wasm pages of this instance's memory.
#[wray::remote]
fn memory_pages() -> u32 {
    core::arch::wasm32::memory_size(0) as u32
}

// ---- failures ------------------------------------------------------------

#[wray::remote]
fn fails(msg: String) -> Result<u32, String> {
    Err(msg)
}

#[wray::remote]
fn panics(msg: String) -> u32 {
    panic!("{msg}")
}

#[wray::remote]
fn traps() -> u32 {
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    #[cfg(not(target_arch = "wasm32"))]
    unreachable!()
}

#[wray::remote]
fn forever() -> u32 {
    let mut x = 0u64;
    loop {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}

/// Sleeps `ms` milliseconds through WASI (`poll_oneoff`), then returns how
/// long it slept by the guest's own monotonic clock.
#[wray::remote]
fn sleeps(ms: u64) -> u64 {
    let t = Instant::now();
    std::thread::sleep(Duration::from_millis(ms));
    t.elapsed().as_millis() as u64
}

/// Allocates and touches `mb` megabytes.
#[wray::remote]
fn hog(mb: u32) -> u64 {
    let v = vec![1u8; mb as usize * (1 << 20)];
    v.iter().map(|&b| u64::from(b)).sum()
}

/// Recurses `n` deep on the wasm call stack (no locals in linear memory, so
/// it exhausts the wasm stack, not Rust's shadow stack).
#[wray::remote]
fn recurse(n: u64) -> u64 {
    fn down(n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        std::hint::black_box(down(std::hint::black_box(n - 1))) + 1
    }
    down(n)
}

/// Writes `kb` kilobytes to stdout.
#[wray::remote]
fn flood(kb: u32) -> u32 {
    let line = "x".repeat(1023);
    for _ in 0..kb {
        println!("{line}");
    }
    kb
}

/// Returns a value of `mb` megabytes.
#[wray::remote]
fn giant(mb: u32) -> Vec<u8> {
    vec![3u8; mb as usize * (1 << 20)]
}

/// Counters 0..n, each checked to answer with its number.
fn counters(n: u64) -> Result<Vec<ActorHandle<Counter>>, String> {
    let actors: Vec<_> = (0..n).map(Counter::remote).collect();
    let values: Vec<_> = actors.iter().map(|a| a.value()).collect();
    let got = wray::get(&values).map_err(|err| err.to_string())?;
    check(got == (0..n).collect::<Vec<_>>(), "every actor answers")?;
    Ok(actors)
}

/// Pushes `0..n` to `counter` in order (its `push` refuses any other
/// order); the last number.
#[wray::remote]
fn push_all(counter: ActorHandle<Counter>, n: u64) -> wray::Result<u64> {
    let pushed: Vec<_> = (0..n).map(|i| counter.push(i)).collect();
    Ok(wray::get(&pushed)?.last().copied().unwrap_or(0))
}

/// Finds the counter named `name` (made on any node) and adds `by`.
#[wray::remote]
fn incr_named(name: String, by: u64) -> wray::Result<u64> {
    let counter = wray::get_actor::<Counter>(&name)?;
    wray::get(&counter.incr(by))
}

/// Makes a counter named `name`: "made", or why its first call failed.
#[wray::remote]
fn name_counter(name: String) -> String {
    let counter = Counter::options().name(name).remote(0u64);
    match wray::get(&counter.value()) {
        Ok(_) => "made".to_string(),
        Err(err) => err.to_string(),
    }
}

/// `a + b`, by the linked C module `c_math`, saying so on stdout.
#[wray::remote]
fn add_via_c(a: i64, b: i64) -> wray::Result<i64> {
    let sum = wray::cross::function::<wray::Cbor<i64>>("c_math", "add")
        .arg(a)
        .arg(b)
        .remote();
    let sum = wray::get(&sum)?;
    println!("c_math says {a} + {b} = {sum}");
    Ok(sum)
}

/// Prints to both streams, then fails if asked.
#[wray::remote]
fn chatty(lines: u32, fail: bool) -> Result<u32, String> {
    for i in 0..lines {
        println!("out {i}");
        eprintln!("err {i}");
    }
    if fail {
        Err("chatty failed".into())
    } else {
        Ok(lines)
    }
}

/// Returns `mb` MiB of fives, after reading the clock (so the runtime
/// treats it as not deterministic, although its bytes are).
#[wray::remote]
fn stamped(mb: u32) -> Vec<u8> {
    std::hint::black_box(Instant::now());
    vec![5u8; mb as usize * (1 << 20)]
}

/// Adds one to every byte (a deterministic task over a large argument,
/// for lineage chains).
#[wray::remote]
fn bump_bytes(mut v: Vec<u8>) -> Vec<u8> {
    v.iter_mut().for_each(|b| *b = b.wrapping_add(1));
    v
}

/// A task that may not be retried: its defaults say so.
#[wray::remote(max_retries = 0)]
fn fragile(ms: u64) -> u64 {
    spin_for(ms)
}

/// Spins for `ms` milliseconds, then returns `ms`.
fn spin_for(ms: u64) -> u64 {
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(ms) {
        std::hint::spin_loop();
    }
    ms
}

/// Spawns a child that never ends, then waits for it.
#[wray::remote]
fn parent_of_forever() -> u32 {
    wray::get(&forever::remote()).unwrap_or(0)
}

/// Busy for `ms` milliseconds, then returns `ms`.
#[wray::remote]
fn busy(ms: u64) -> u64 {
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(ms) {
        std::hint::spin_loop();
    }
    ms
}

// ---- gates ----------------------------------------------------------------

/// A gate the test opens when it chooses. Work that waits on a gate ends
/// when the test says so, not after a guessed time, so no check depends on
/// how fast the machine is.
#[wray::remote]
pub struct Gate {
    open: bool,
}

#[wray::remote]
impl Gate {
    pub fn new() -> Self {
        Gate { open: false }
    }

    pub fn open(&mut self) {
        self.open = true;
    }

    pub fn is_open(&self) -> bool {
        self.open
    }
}

impl Gate {
    /// A gate that is open already.
    fn opened() -> ActorHandle<Gate> {
        let g = Gate::remote();
        wray::get(&g.open()).expect("a new gate opens");
        g
    }
}

/// Blocks until `gate` is open: each question releases the caller's CPU
/// slot while the answer is on the way.
fn until_open(gate: &ActorHandle<Gate>) -> wray::Result<()> {
    while !wray::get(&gate.is_open())? {}
    Ok(())
}

/// Opens `started`, then returns `v` once `release` is open: a call that
/// holds what it was granted (a slot, resources) until told.
#[wray::remote]
fn hold(started: ActorHandle<Gate>, release: ActorHandle<Gate>, v: u64) -> wray::Result<u64> {
    wray::get(&started.open())?;
    until_open(&release)?;
    Ok(v)
}

/// Returns `v` once `gate` is open.
#[wray::remote]
fn gated(gate: ActorHandle<Gate>, v: u64) -> wray::Result<u64> {
    until_open(&gate)?;
    Ok(v)
}

/// As `gated`, but may not be retried: its defaults say so.
#[wray::remote(max_retries = 0)]
fn gated_fragile(gate: ActorHandle<Gate>, v: u64) -> wray::Result<u64> {
    until_open(&gate)?;
    Ok(v)
}

/// Spawns a child that never ends, opens `started`, then waits for the
/// child.
#[wray::remote]
fn parent_of_forever_opening(started: ActorHandle<Gate>) -> u32 {
    let child = forever::remote();
    wray::get(&started.open()).expect("the gate answers");
    wray::get(&child).unwrap_or(0)
}

// ---- nesting -------------------------------------------------------------

/// A chain of nested tasks `depth` deep: each level gets the next.
#[wray::remote]
fn chain(depth: u32) -> u32 {
    if depth == 0 {
        return 0;
    }
    wray::get(&chain::remote(depth - 1)).expect("child succeeds") + 1
}

/// A chain of nested tasks `depth` deep that passes a failure up.
#[wray::remote]
fn dive(depth: u32) -> wray::Result<u32> {
    if depth == 0 {
        return Ok(0);
    }
    Ok(wray::get(&dive::remote(depth - 1))? + 1)
}

/// A binary tree of tasks; returns how many tasks ran.
#[wray::remote]
fn tree(depth: u32) -> u64 {
    if depth == 0 {
        return 1;
    }
    let kids = [tree::remote(depth - 1), tree::remote(depth - 1)];
    wray::get(&kids)
        .expect("children succeed")
        .iter()
        .sum::<u64>()
        + 1
}

// ---- sandbox ---------------------------------------------------------------

/// Reports what the guest can see of its host.
#[wray::remote]
fn probe_sandbox() -> String {
    let env = std::env::vars().count();
    let root = std::fs::read_dir("/").is_ok();
    let passwd = std::fs::read("/etc/passwd").is_ok();
    let cwd = std::fs::read_dir(".").is_ok();
    let args = std::env::args().count();
    format!("env={env} root={root} passwd={passwd} cwd={cwd} args={args}")
}

// ---- the driver -------------------------------------------------------------

fn check(cond: bool, what: &str) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(format!("check failed: {what}"))
    }
}

/// The `<n> <ms>` arguments of scenario `name`.
fn count_and_ms(rest: &[String], name: &str) -> Result<(u64, u64), String> {
    let num = |i: usize| rest.get(i).and_then(|s: &String| s.parse().ok());
    num(0)
        .zip(num(1))
        .ok_or_else(|| format!("usage: {name} <n> <ms>"))
}

fn scenario(name: &str, rest: &[String]) -> Result<(), String> {
    let e = |e: wray::Error| e.to_string();
    match name {
        "hello" => {
            println!("driver says hi");
            let r = add::remote(2, 3);
            println!("2 + 3 = {}", wray::get(&r).map_err(e)?);
        }
        "args" => println!("args: {}", rest.join(",")),
        // Memoized calls from a guest: repeats within a run, a call turned
        // off with `memo(false)`, an argument that is an object.
        "memo" => {
            let firsts: Vec<_> = (0..4u64).map(pure_square::remote).collect();
            let firsts = wray::get(&firsts).map_err(e)?;
            let again: Vec<_> = (0..4u64).map(pure_square::remote).collect();
            check(
                wray::get(&again).map_err(e)? == firsts,
                "hits give the same values",
            )?;
            let off = pure_square::options().memo(false).remote(3u64);
            check(wray::get(&off).map_err(e)? == 9, "an unmemoized call runs")?;
            let v = wray::put(&vec![1u64, 2, 3]);
            let a = wray::get(&pure_sum::remote(&v, 2u64)).map_err(e)?;
            let b = wray::get(&pure_sum::remote(vec![1u64, 2, 3], 2u64)).map_err(e)?;
            check(
                a == 12 && b == 12,
                "an object and an inline value of the same bytes",
            )?;
            println!("memo: ok");
        }
        // Calls placed on another node of a cluster: `cluster <node id>
        // [this node's id]`.
        "copies" => {
            // A large object sent to calls on other nodes, one call at a
            // time: `copies <node> <times> [<node> <times>]...`.
            let big = wray::put(&vec![3u8; 6 << 20]);
            for pair in rest.chunks(2) {
                let [node, times] = pair else {
                    return Err("usage: copies <node> <times>...".into());
                };
                for _ in 0..times.parse::<u32>().map_err(|e| e.to_string())? {
                    let n = wray::get(&len::options().node(node).remote(&big)).map_err(e)?;
                    check(n == 6 << 20, "the object there")?;
                }
            }
            println!("copies: ok");
        }
        "cluster" => {
            let other = rest.first().ok_or("usage: cluster <node id>")?;
            let pinned = add::options().node(other).remote(2, 40);
            check(wray::get(&pinned).map_err(e)? == 42, "a call pinned there")?;
            let spread: Vec<_> = (0..12u32)
                .map(|i| double::options().spread().remote(i))
                .collect();
            let doubled: Vec<u32> = (0..12).map(|i| i * 2).collect();
            check(wray::get(&spread).map_err(e)? == doubled, "spread calls")?;
            // A large argument, pulled by the other node; a large result,
            // pulled back.
            let big = wray::put(&vec![7u8; 6 << 20]);
            let n = wray::get(&len::options().node(other).remote(&big)).map_err(e)?;
            check(n == 6 << 20, "a large argument pulled there")?;
            let bumped = wray::get(&bump_bytes::options().node(other).remote(&big)).map_err(e)?;
            check(
                bumped.len() == 6 << 20 && bumped.iter().all(|&b| b == 8),
                "a large result pulled back",
            )?;
            // A task there calls an actor here through its handle, its
            // calls in order (more than go out at once).
            let here = Counter::remote(0u64);
            let last = push_all::options().node(other).remote(&here, 200u64);
            check(
                wray::get(&last).map_err(e)? == 199,
                "a task there calls an actor here, in order",
            )?;
            // Values holding references cross nodes with the objects they
            // refer to: a reference passed to a task there, references
            // inside references, references a task there made and
            // returned (read here, passed back there).
            let numbers = wray::put(&vec![1u64, 2, 3]);
            let summed = sum_ref::options().node(other).remote(numbers);
            check(
                wray::get(&summed).map_err(e)? == 6,
                "a reference passed to a task there",
            )?;
            // An object referred to may be large: it is pulled there.
            let ones = wray::put(&vec![1u64; 300_000]);
            let summed = sum_ref::options().node(other).remote(ones);
            check(
                wray::get(&summed).map_err(e)? == 300_000,
                "a large object a reference names, there",
            )?;
            let parts: Vec<ObjectRef<u64>> = (1..=4u64).map(|i| wray::put(&i)).collect();
            let deep = sum_deep::options().node(other).remote(wray::put(&parts));
            check(
                wray::get(&deep).map_err(e)? == 10,
                "references inside a referenced value, there",
            )?;
            // An object such a value refers to that failed fails the
            // call; such a value larger than travels inline is refused.
            let failed = x_unless::remote(1, "it failed here".to_string());
            let deep = sum_deep::options()
                .node(other)
                .remote(wray::put(&vec![failed]));
            match wray::get(&deep) {
                Err(err) if err.to_string().contains("it failed here") => {}
                got => return Err(format!("a failed object inside gave {got:?}")),
            }
            let too_big = count_refs::options()
                .node(other)
                .remote((vec![0u8; 2 << 20], parts.clone()));
            match wray::get(&too_big) {
                Err(err) if err.to_string().contains("to leave its node") => {}
                got => return Err(format!("a large value holding references gave {got:?}")),
            }
            // And to an actor there.
            let adder = Counter::options().node(other).remote(100u64);
            let added = adder.add_refs(parts.clone());
            check(
                wray::get(&added).map_err(e)? == 110,
                "references passed to an actor there",
            )?;
            wray::kill(&adder);
            let made: ObjectRef<u64> =
                wray::get(&make_ref::options().node(other).remote(41u64)).map_err(e)?;
            check(wray::get(&made).map_err(e)? == 41, "a reference made there")?;
            let back = deref::options().node(other).remote(made);
            check(wray::get(&back).map_err(e)? == 41, "passed back there")?;
            let (bytes, refs) =
                wray::get(&make_large::options().node(other).remote(16, 7, 3)).map_err(e)?;
            let got: Vec<u64> = wray::get(&refs).map_err(e)?;
            check(
                bytes == vec![7u8; 16] && got == vec![0, 1, 2],
                "a result holding references, made there",
            )?;
            // Calls of a large object run where it is: here, or on the
            // node that took it before and kept a copy (the test checks).
            let local: Vec<_> = (0..8).map(|_| len::remote(&big)).collect();
            check(
                wray::get(&local).map_err(e)?.iter().all(|&n| n == 6 << 20),
                "calls with a large argument",
            )?;
            let nested = chain::options().node(other).remote(5);
            check(wray::get(&nested).map_err(e)? == 5, "nested calls there")?;
            match wray::get(&fails::options().node(other).remote("far away".to_string())) {
                Err(err) if err.to_string().contains("far away") => {}
                got => return Err(format!("a failure there came back as {got:?}")),
            }
            match wray::get(&add::options().node("999").remote(1, 1)) {
                Err(err) if err.to_string().contains("not in the cluster") => {}
                got => return Err(format!("a call pinned to no node gave {got:?}")),
            }
            // An actor pinned there: its state lives there, its calls
            // arrive in order (more than go out at once), its errors and
            // traps come back, it restarts there after a trap, and a kill
            // ends it.
            let far = Counter::options().node(other).max_restarts(1).remote(10u64);
            check(wray::get(&far.incr(5)).map_err(e)? == 15, "an actor there")?;
            let pushed: Vec<_> = (0..200u64).map(|i| far.push(i)).collect();
            check(
                wray::get(&pushed).map_err(e)? == (0..200).collect::<Vec<u64>>(),
                "calls of an actor there arrive in order",
            )?;
            match wray::get(&far.fail()) {
                Err(err) if err.to_string().contains("method failed") => {}
                got => return Err(format!("a failing method there gave {got:?}")),
            }
            check(
                wray::get(&far.crash()).is_err(),
                "a trap there fails the call",
            )?;
            check(
                wray::get(&far.value()).map_err(e)? == 10,
                "restarted there after the trap",
            )?;
            wray::kill(&far);
            match wray::get(&far.value()) {
                Err(err) if err.to_string().contains("killed") => {}
                got => return Err(format!("a killed actor there gave {got:?}")),
            }
            // Killed in the middle of a call there (which calls back an
            // actor here to say it runs): the call fails here, and the
            // node there lets go of it (the test checks).
            let (spinner, started) = (Counter::options().node(other).remote(0u64), Gate::remote());
            let spinning = spinner.spin_opening(&started);
            until_open(&started).map_err(e)?;
            wray::kill(&spinner);
            match wray::get(&spinning) {
                Err(err) if err.to_string().contains("killed") => {}
                got => return Err(format!("a call killed there gave {got:?}")),
            }
            let named = Counter::options()
                .node(other)
                .name("far-counter")
                .remote(1u64);
            wray::get(&named.incr(1)).map_err(e)?;
            let found = wray::get_actor::<Counter>("far-counter").map_err(e)?;
            check(
                wray::get(&found.value()).map_err(e)? == 2,
                "a named actor there, found by name here",
            )?;
            // A name is the cluster's: a task there finds an actor named
            // here, and cannot take its name; the name is free again once
            // the actor is killed.
            let mine = Counter::options().name("near-counter").remote(5u64);
            let by_name = incr_named::options()
                .node(other)
                .remote("near-counter".to_string(), 2u64);
            check(
                wray::get(&by_name).map_err(e)? == 7,
                "a task there finds a named actor here",
            )?;
            let again = name_counter::options()
                .node(other)
                .remote("near-counter".to_string());
            let why = wray::get(&again).map_err(e)?;
            check(
                why.contains("already taken"),
                &format!("a name taken here, claimed there: {why}"),
            )?;
            // (The release reaches etcd after the kill: claimed until it
            // does; a name never freed leaves the job running, which the
            // test's wait for its end reports.)
            wray::kill(&mine);
            loop {
                let again = name_counter::options()
                    .node(other)
                    .remote("near-counter".to_string());
                let freed = wray::get(&again).map_err(e)?;
                if freed == "made" {
                    break;
                }
                check(
                    freed.contains("already taken"),
                    &format!("a freed name, claimed there: {freed}"),
                )?;
            }
            if let Some(me) = rest.get(1) {
                let here = Counter::options().node(me).remote(1u64);
                check(
                    wray::get(&here.value()).map_err(e)? == 1,
                    "an actor pinned here",
                )?;
            }
            println!("cluster: ok");
        }
        // `survive <n> <ms>`: n busy calls of ms each, spread over the
        // cluster, every result checked (a node may die meanwhile).
        "survive" => {
            let (n, ms) = count_and_ms(rest, "survive")?;
            let calls: Vec<_> = (0..n)
                .map(|_| busy::options().spread().remote(ms))
                .collect();
            let results = wray::get(&calls).map_err(e)?;
            check(results.iter().all(|&r| r == ms), "every result is right")?;
            println!("survive: {n} ok");
        }
        // Custom resources on a node alone started with `--resources
        // '{"gpu": 1}'`: a call waits while another holds them, an actor
        // holds them while it lives, requests no node can grant fail.
        "resources" => {
            let not_ready = |r: &wray::ObjectRef<i32>, what: &str| -> Result<(), String> {
                // It cannot finish while the resource is held; a runtime
                // that did not hold it back would finish it well within.
                let (ready, _) =
                    wray::wait(std::slice::from_ref(r), 1, Some(Duration::from_millis(300)))
                        .map_err(e)?;
                check(ready.is_empty(), what)
            };
            let (started, release) = (Gate::remote(), Gate::remote());
            let holder = hold::options()
                .resource("gpu", 1.0)
                .remote(&started, &release, 7u64);
            until_open(&started).map_err(e)?;
            let waiter = add::options().resource("gpu", 0.5).remote(1, 2);
            not_ready(&waiter, "a call waits while another holds the GPU")?;
            wray::get(&release.open()).map_err(e)?;
            check(wray::get(&holder).map_err(e)? == 7, "the holder ends")?;
            check(wray::get(&waiter).map_err(e)? == 3, "then the waiter runs")?;
            // Half a GPU each: two at once.
            let halves: Vec<_> = (0..4)
                .map(|i| add::options().resource("gpu", 0.5).remote(i, i))
                .collect();
            check(
                wray::get(&halves).map_err(e)? == vec![0, 2, 4, 6],
                "half-GPU calls",
            )?;
            // An actor holds its GPU while it lives; killed, it gives it back.
            let actor = Counter::options().resource("gpu", 1.0).remote(5u64);
            check(
                wray::get(&actor.value()).map_err(e)? == 5,
                "an actor with the GPU",
            )?;
            let waiter = add::options().resource("gpu", 1.0).remote(2, 2);
            not_ready(&waiter, "a call waits while an actor holds the GPU")?;
            wray::kill(&actor);
            check(
                wray::get(&waiter).map_err(e)? == 4,
                "the actor's GPU goes back when it dies",
            )?;
            // What no node could grant fails, saying why.
            let refused = |r: wray::Result<i32>, needle: &str, what: &str| match r {
                Err(err) if err.to_string().contains(needle) => Ok(()),
                got => Err(format!("{what}: {got:?}")),
            };
            refused(
                wray::get(&add::options().resource("gpu", 2.0).remote(1, 1)),
                "needs 2 of resource `gpu`, and this node has 1",
                "more GPUs than the node has",
            )?;
            refused(
                wray::get(&add::options().resource("tpu", 1.0).remote(1, 1)),
                "resource `tpu`, and this node has 0",
                "a resource the node has not",
            )?;
            refused(
                wray::get(&add::options().resource("gpu", -1.0).remote(1, 1)),
                "must be positive",
                "a negative amount",
            )?;
            let big = Counter::options().resource("gpu", 3.0).remote(1u64);
            match wray::get(&big.value()) {
                Err(err) if err.to_string().contains("needs 3 of resource `gpu`") => {}
                got => return Err(format!("an actor needing 3 GPUs gave {got:?}")),
            }
            println!("resources: ok");
        }
        // Calls needing a resource only another node has run there:
        // `cluster_resources` on a node without `gpu`, another with it.
        "cluster_resources" => {
            let calls: Vec<_> = (0..4)
                .map(|i| add::options().resource("gpu", 1.0).remote(i, 1))
                .collect();
            check(
                wray::get(&calls).map_err(e)? == vec![1, 2, 3, 4],
                "calls needing a GPU",
            )?;
            match wray::get(&add::options().resource("tpu", 1.0).remote(1, 1)) {
                Err(err)
                    if err
                        .to_string()
                        .contains("no node of the cluster has 1 of resource `tpu`") => {}
                got => return Err(format!("a resource no node has gave {got:?}")),
            }
            let actor = Counter::options().resource("gpu", 1.0).remote(1u64);
            check(
                wray::get(&actor.incr(1)).map_err(e)? == 2,
                "an actor needing a GPU, on the node that has one",
            )?;
            println!("cluster resources: ok");
        }
        // `cluster_orphans <node id>`: a call there cancelled from here;
        // a named actor left there, for the test to kill this node under.
        "cluster_orphans" => {
            let other = rest.first().ok_or("usage: cluster_orphans <node id>")?;
            let long = busy::options().node(other).remote(120_000u64);
            wray::wait(
                std::slice::from_ref(&long),
                1,
                Some(Duration::from_millis(500)),
            )
            .map_err(e)?;
            wray::cancel(&long);
            check(wray::get(&long).is_err(), "a cancelled call there fails")?;
            let left = Counter::options()
                .node(other)
                .name("left-there")
                .remote(1u64);
            check(wray::get(&left.incr(1)).map_err(e)? == 2, "an actor there")?;
            println!("cluster orphans: ok");
        }
        // `actor_restart <node>`: an actor on node `node` whose first call
        // spins until the test kills the actor allowing a restart, with
        // four more calls out behind it: each is sent again to the
        // restarted actor (one retry each), and succeeds.
        "actor_restart" => {
            let other = rest.first().ok_or("usage: actor_restart <node id>")?;
            let actor = Counter::options()
                .node(other)
                .max_restarts(1)
                .max_task_retries(1)
                .remote(5u64);
            let started = Gate::remote();
            let first = actor.first_spins(&started);
            let rest: Vec<_> = (0..4).map(|_| actor.value()).collect();
            check(wray::get(&first).map_err(e)? == 1, "the first call, again")?;
            check(
                wray::get(&rest).map_err(e)? == vec![5; 4],
                "the calls out behind it, sent again",
            )?;
            println!("actor restart: ok");
        }
        // `actor_survive <n> <ms>`: an actor needing a GPU (on another
        // node) makes n busy calls of ms each, every result checked (its
        // node may die meanwhile: it restarts on another).
        "actor_survive" => {
            let (n, ms) = count_and_ms(rest, "actor_survive")?;
            let actor = Counter::options()
                .resource("gpu", 1.0)
                .max_restarts(1)
                .max_task_retries(1)
                .remote(0u64);
            // Every call sent at once: those out on the lost node are
            // sent again, in order, to the actor restarted elsewhere.
            let calls: Vec<_> = (0..n).map(|_| actor.busy(ms)).collect();
            check(
                wray::get(&calls).map_err(e)?.iter().all(|&got| got == ms),
                "busy calls",
            )?;
            println!("actor survive: {n} ok");
        }
        // A call of a linked C module pinned to another node:
        // `cluster_cross <node id>` (link `c_math`).
        "cluster_cross" => {
            let other = rest.first().ok_or("usage: cluster_cross <node id>")?;
            let sum = wray::cross::function::<wray::Cbor<i64>>("c_math", "add")
                .node(other)
                .arg(2i64)
                .arg(40i64)
                .remote();
            check(
                wray::get(&sum).map_err(e)? == 42,
                "a linked module's call there",
            )?;
            // A task there that calls the linked module by name itself,
            // and prints: its program's links and output travel with it.
            let via = add_via_c::options().node(other).remote(2, 40);
            check(
                wray::get(&via).map_err(e)? == 42,
                "a task there calls a linked module",
            )?;
            println!("cluster cross: ok");
        }
        // A node alone runs what is pinned to it (`0`), and refuses what
        // is pinned to another node.
        "pinned_alone" => {
            check(
                wray::get(&add::options().node("0").remote(1, 2)).map_err(e)? == 3,
                "a call pinned to this node",
            )?;
            let far = wray::get(&add::options().node("7").remote(1, 1));
            check(
                far.is_err_and(|err| err.to_string().contains("in no cluster")),
                "a call pinned to another node is refused",
            )?;
            let actor = Counter::options().node("7").remote(1u64);
            check(
                wray::get(&actor.value())
                    .is_err_and(|err| err.to_string().contains("in no cluster")),
                "an actor pinned to another node is refused",
            )?;
            println!("pinned alone: ok");
        }
        "pinned_to" => {
            // A call pinned to node `rest[0]`, not retried: what it gave.
            let node = rest.first().ok_or("which node?")?;
            match wray::get(&add::options().node(node).max_retries(0).remote(1, 2)) {
                Ok(n) => println!("pinned to {node}: ran, {n}"),
                Err(err) => println!("pinned to {node}: {err}"),
            }
        }
        "fail" => return Err("the driver gives up".into()),
        "panic" => panic!("the driver panics"),
        "exit" => std::process::exit(7),
        "values" => {
            check(
                wray::get(&concat::remote("ab", String::from("cd"))).map_err(e)? == "abcd",
                "concat",
            )?;
            let held = vec![7u8; 100 << 10];
            let holder = Holder::remote(held.clone());
            check(
                wray::get(&holder.same_as(wray::put(&held))).map_err(e)?,
                "a view parameter of an actor method",
            )?;
            let p = Point { x: 3.0, y: 4.0 };
            check(
                wray::get(&norm::remote(&p)).map_err(e)? == 5.0,
                "norm by reference",
            )?;
            check(
                wray::get(&norm::remote(p)).map_err(e)? == 5.0,
                "norm by value",
            )?;
            let big: Vec<u64> = (0..100_000).collect();
            let want: u64 = big.iter().sum();
            check(
                wray::get(&sum::remote(&big)).map_err(e)? == want,
                "large inline arg",
            )?;
            wray::get(&nothing::remote()).map_err(e)?;
        }
        "put-get" => {
            let r = wray::put(&vec![1u64, 2, 3]);
            check(wray::get(&r).map_err(e)? == vec![1, 2, 3], "get of put")?;
            let same = wray::put(&vec![1u64, 2, 3]);
            check(same.id() == r.id(), "same bytes, same id")?;
            // A value past the stack buffer (512 bytes) is streamed, here in
            // one piece.
            let medium: Vec<u16> = (0..1_000).collect();
            let mid = wray::put(&medium);
            check(wray::get(&mid).map_err(e)? == medium, "a medium value")?;
            // A large value is streamed to the host as it is encoded: the
            // same bytes, and the references inside it are held as well.
            let parts: Vec<ObjectRef<u64>> = (0..3_000u64).map(|i| wray::put(&i)).collect();
            let big = (vec![7u8; 200_000], parts.clone());
            let whole = wray::put(&big);
            check(wray::put(&big).id() == whole.id(), "streamed, same id")?;
            drop((parts, big));
            let (bytes, back) = wray::get(&whole).map_err(e)?;
            check(bytes == vec![7u8; 200_000], "streamed bytes")?;
            check(
                wray::get(&back[2_999]).map_err(e)? == 2_999,
                "refs inside a streamed value stay alive",
            )?;
            // So is a large result, with the references inside it.
            let (bytes, back) =
                wray::get(&make_large::remote(300_000u32, 9u8, 2_000u64)).map_err(e)?;
            check(bytes == vec![9u8; 300_000], "streamed result")?;
            check(
                wray::get(&back[1_999]).map_err(e)? == 1_999,
                "refs inside a streamed result stay alive",
            )?;
            let same = make_large::remote(300_000u32, 9u8, 2_000u64);
            check(wray::get(&same).map_err(e)?.0.len() == 300_000, "again")?;
            // An ObjectRef argument is resolved before the task runs...
            check(
                wray::get(&sum::remote(&r)).map_err(e)? == 6,
                "ref arg resolved",
            )?;
            // ...unless the parameter is itself an ObjectRef.
            check(
                wray::get(&sum_ref::remote(r.clone())).map_err(e)? == 6,
                "ref param passed",
            )?;
            // A task's result can be another task's argument before it is ready.
            let chained = add::remote(add::remote(1, 2), add::remote(3, 4));
            check(wray::get(&chained).map_err(e)? == 10, "chained refs")?;
            // References inside results stay alive.
            let inner: ObjectRef<u64> = wray::get(&make_ref::remote(41u64)).map_err(e)?;
            check(
                wray::get(&inner).map_err(e)? == 41,
                "ref returned from a task",
            )?;
            check(
                wray::get(&deref::remote(inner)).map_err(e)? == 41,
                "ref passed on",
            )?;
        }
        "get-many" => {
            let refs: Vec<_> = (0..50).map(|i| add::remote(i, i)).collect();
            let got = wray::get(&refs).map_err(e)?;
            check(
                got == (0..50).map(|i| i * 2).collect::<Vec<_>>(),
                "values in order",
            )?;
            let arr = [add::remote(1, 1), add::remote(2, 2)];
            check(wray::get(&arr).map_err(e)? == vec![2, 4], "array of refs")?;
            check(
                wray::get(&refs[..3]).map_err(e)? == vec![0, 2, 4],
                "slice of refs",
            )?;
        }
        "wait" => {
            // Every "slow" task waits on a gate that only this driver
            // opens: what is ready and what is not is decided here, never
            // by how long a task happens to take.
            let gate = Gate::remote();
            let slow = gated::remote(gate.clone(), 300u64);
            let fast = gated::remote(Gate::opened(), 0u64);
            wray::get(&fast).map_err(e)?;
            let refs = vec![slow.clone(), fast.clone()];
            let (ready, not_ready) = wray::wait(&refs, 1, None).map_err(e)?;
            check(ready == vec![fast.clone()], "fast one is ready")?;
            check(not_ready == vec![slow.clone()], "slow one is not")?;
            // A zero timeout polls: it returns although the slow one can
            // never be ready before the gate opens.
            let (ready, not_ready) = wray::wait(&refs, 2, Some(Duration::ZERO)).map_err(e)?;
            check(
                ready.len() == 1 && not_ready.len() == 1,
                "poll splits ready from not",
            )?;
            // A short timeout returns what is ready.
            let (ready, _) = wray::wait(&refs, 2, Some(Duration::from_millis(20))).map_err(e)?;
            check(ready.len() == 1, "timeout splits")?;
            wray::get(&gate.open()).map_err(e)?;
            let (ready, not_ready) = wray::wait(&refs, 2, None).map_err(e)?;
            check(
                ready.len() == 2 && not_ready.is_empty(),
                "all ready once the gate opens",
            )?;
            // num_returns caps the ready list, in input order.
            let (ready, not_ready) = wray::wait(&refs, 1, None).map_err(e)?;
            check(
                ready == vec![slow.clone()] && not_ready == vec![fast],
                "num_returns caps",
            )?;
            check(
                wray::wait(&refs, 3, None).is_err(),
                "num_returns > len is an error",
            )?;
            // Waiting for some of several pending ones wakes as each one
            // finishes, and ends when enough have: the last one's gate stays
            // shut, so a wait that needed it would never end.
            let gates: Vec<_> = (0..3).map(|_| Gate::remote()).collect();
            let staggered: Vec<_> = gates
                .iter()
                .map(|g| gated::remote(g.clone(), 1u64))
                .collect();
            for g in &gates[..2] {
                wray::get(&g.open()).map_err(e)?;
            }
            let (ready, not_ready) = wray::wait(&staggered, 2, None).map_err(e)?;
            check(
                ready == staggered[..2] && not_ready == staggered[2..],
                "the first two are ready, the last is not",
            )?;
            let (ready, _) =
                wray::wait(&staggered[2..], 1, Some(Duration::from_millis(20))).map_err(e)?;
            check(ready.is_empty(), "a timeout with nothing ready")?;
            // An object named twice counts twice.
            let p = gated::remote(Gate::opened(), 50u64);
            let named = vec![p.clone(), p, staggered[2].clone()];
            let (ready, not_ready) = wray::wait(&named, 2, None).map_err(e)?;
            check(
                ready == named[..2] && not_ready == staggered[2..],
                "an object named twice is two of the ready ones",
            )?;
            check(wray::cancel(&staggered[2]), "the slow one cancelled")?;
            check(wray::get(&staggered[2]).is_err(), "and failed")?;
            // Failed tasks count as ready.
            let bad = vec![fails::remote("x")];
            let (ready, _) = wray::wait(&bad, 1, None).map_err(e)?;
            check(ready.len() == 1, "failures are ready")?;
        }
        "get-timeout" => {
            let gate = Gate::remote();
            let slow = gated::remote(gate.clone(), 400u64);
            let err = wray::get_timeout(&slow, Some(Duration::from_millis(20))).unwrap_err();
            check(err.is_timeout(), "get timed out")?;
            wray::get(&gate.open()).map_err(e)?;
            check(wray::get(&slow).map_err(e)? == 400, "still gettable later")?;
        }
        "errors" => {
            let err = wray::get(&fails::remote("bad input")).unwrap_err();
            check(
                err.kind() == wray::ErrorKind::Application,
                "application error kind",
            )?;
            check(
                err.message() == "bad input" && err.function() == "fails",
                "message and function",
            )?;
            let err = wray::get(&panics::remote("kaboom")).unwrap_err();
            check(err.kind() == wray::ErrorKind::Panic, "panic kind")?;
            check(err.message().contains("kaboom"), "panic message")?;
            let err = wray::get(&traps::remote()).unwrap_err();
            check(err.kind() == wray::ErrorKind::Trap, "trap kind")?;
            check(!err.backtrace().is_empty(), "trap backtrace")?;
            // A dependent task fails with the cause chained, and never runs.
            let err = wray::get(&double::remote(fails::remote("root"))).unwrap_err();
            check(
                err.kind() == wray::ErrorKind::DependencyFailed,
                "dependency failed",
            )?;
            check(err.root_cause().message() == "root", "cause chained")?;
        }
        "nested" => {
            let depth: u32 = rest.first().and_then(|s| s.parse().ok()).unwrap_or(10);
            let got = wray::get(&chain::remote(depth)).map_err(e)?;
            check(got == depth, "chain depth")?;
            let ran = wray::get(&tree::remote(6)).map_err(e)?;
            check(ran == 127, "tree of 127 tasks")?;
            println!("nested ok: chain {got}, tree {ran}");
        }
        "output" => {
            println!("driver line");
            wray::get(&chatty::remote(2u32, false)).map_err(e)?;
        }
        "sandbox" => println!("{}", wray::get(&probe_sandbox::remote()).map_err(e)?),
        "many" => {
            let n: i32 = rest.first().and_then(|s| s.parse().ok()).unwrap_or(1000);
            let refs: Vec<_> = (0..n).map(|i| add::remote(i, 1)).collect();
            let total: i64 = wray::get(&refs)
                .map_err(e)?
                .iter()
                .map(|&x| i64::from(x))
                .sum();
            check(total == i64::from(n) * i64::from(n + 1) / 2, "sum of many")?;
        }
        "actors" => {
            let c = Counter::remote(10u64);
            check(wray::get(&c.incr(5u64)).map_err(e)? == 15, "incr")?;
            check(wray::get(&c.value()).map_err(e)? == 15, "state persists")?;
            // Handles are values: a task increments the counter.
            check(
                wray::get(&bump::remote(c.clone(), 2u64)).map_err(e)? == 17,
                "handle passed",
            )?;
            check(
                wray::get(&c.add_via_task(1)).map_err(e)? == 18,
                "a method calls a task",
            )?;
            let err = wray::get(&c.fail()).unwrap_err();
            check(err.kind() == wray::ErrorKind::Application, "method error")?;
            check(
                wray::get(&c.value()).map_err(e)? == 17,
                "an error leaves the actor alive",
            )?;
            wray::get(&c.say("hello from an actor")).map_err(e)?;
            // Named actors.
            let named = Counter::options().name("kit-counter").remote(100u64);
            let found = wray::get_actor::<Counter>("kit-counter").map_err(e)?;
            check(found == named, "named lookup")?;
            check(
                wray::get(&found.incr(1u64)).map_err(e)? == 101,
                "call through the lookup",
            )?;
            check(
                wray::get_actor::<Flag>("kit-counter").is_err(),
                "wrong type is refused",
            )?;
            check(
                wray::get_actor::<Counter>("nobody").is_err(),
                "unknown name",
            )?;
            let dup = Counter::options().name("kit-counter").remote(0u64);
            let err = wray::get(&dup.value()).unwrap_err();
            check(
                err.kind() == wray::ErrorKind::ActorDied,
                "duplicate name is an error",
            )?;
            check(err.to_string().contains("already taken"), "it says why")?;
            wray::kill(&named);
            // Kill: later calls fail with actor died.
            wray::kill(&c);
            let err = wray::get(&c.value()).unwrap_err();
            check(err.kind() == wray::ErrorKind::ActorDied, "killed actor")?;
            // A failing constructor makes a dead actor.
            let bad = NoConstructorArgs::remote();
            let err = wray::get(&bad.hello()).unwrap_err();
            check(
                err.kind() == wray::ErrorKind::ActorDied,
                "constructor failed",
            )?;
            check(
                err.to_string().contains("refusing to start"),
                "constructor cause",
            )?;
        }
        "actor-order" => {
            let n: u64 = rest.first().and_then(|s| s.parse().ok()).unwrap_or(10_000);
            let c = Counter::remote(0u64);
            let refs: Vec<_> = (0..n).map(|i| c.push(i)).collect();
            let got = wray::get(&refs).map_err(e)?;
            check(
                got == (0..n).collect::<Vec<_>>(),
                "calls ran in submission order",
            )?;
        }
        "actor-restart" => {
            let c = Counter::options().max_restarts(1).remote(5u64);
            check(wray::get(&c.incr(1u64)).map_err(e)? == 6, "before")?;
            let err = wray::get(&c.crash()).unwrap_err();
            check(
                err.kind() == wray::ErrorKind::Trap,
                "the trapping call fails with its trap",
            )?;
            check(
                wray::get(&c.value()).map_err(e)? == 5,
                "restarted with state reset",
            )?;
            let err = wray::get(&c.crash()).unwrap_err();
            check(err.kind() == wray::ErrorKind::Trap, "second trap")?;
            let err = wray::get(&c.value()).unwrap_err();
            check(
                err.kind() == wray::ErrorKind::ActorDied,
                "no restarts left: dead",
            )?;
            check(
                err.root_cause().kind() == wray::ErrorKind::Trap,
                "the cause is the trap",
            )?;
        }
        "actor-retry" => {
            let flag = Flag::remote();
            let flaky = Flaky::options()
                .max_restarts(1)
                .max_task_retries(1)
                .remote();
            let calls = wray::get(&flaky.work(flag.clone())).map_err(e)?;
            check(calls == 1, "retried once on a fresh instance")?;
        }
        "actor-kill-running" => {
            let c = Counter::remote(1u64);
            let started = Gate::remote();
            let spinning = c.spin_opening(started.clone());
            let queued = c.value();
            // Kill only once the call runs, or this checks nothing.
            until_open(&started).map_err(e)?;
            check(
                wray::wait(std::slice::from_ref(&spinning), 1, Some(Duration::ZERO))
                    .map_err(e)?
                    .0
                    .is_empty(),
                "the spinning call runs when it is killed",
            )?;
            wray::kill(&c);
            let err = wray::get(&spinning).unwrap_err();
            check(
                err.kind() == wray::ErrorKind::ActorDied,
                "the running call is interrupted",
            )?;
            let err = wray::get(&queued).unwrap_err();
            check(
                err.kind() == wray::ErrorKind::ActorDied,
                "queued calls fail",
            )?;
        }
        "actor-leak" => {
            let n: u64 = rest.first().and_then(|s| s.parse().ok()).unwrap_or(100);
            let actors = counters(n)?;
            for a in &actors {
                wray::kill(a);
            }
        }
        "actor-one-at-a-time" => {
            // Each actor is made, asked, and killed before the next: with
            // one actor slot, each constructor takes the slot (and the
            // pooled instance) its predecessor gave back.
            let n: u64 = rest.first().and_then(|s| s.parse().ok()).unwrap_or(100);
            for i in 0..n {
                let c = Counter::remote(i);
                check(wray::get(&c.value()).map_err(e)? == i, "the actor answers")?;
                wray::kill(&c);
            }
        }
        "actor-big-ctor" => {
            // Constructor arguments over 64 KiB are put as objects and
            // held for the actor's life; its death gives them back.
            let n: u64 = rest.first().and_then(|s| s.parse().ok()).unwrap_or(20);
            let actors: Vec<_> = (0..n)
                .map(|i| Holder::remote(vec![i as u8; 100 << 10]))
                .collect();
            let lens: Vec<_> = actors.iter().map(|a| a.size()).collect();
            check(
                wray::get(&lens).map_err(e)?.iter().all(|&l| l == 100 << 10),
                "every actor has its argument",
            )?;
        }
        "actor-survives-driver" => {
            // An unnamed actor ends with this driver; a named one lives on.
            Counter::options().name("survivor").remote(7u64);
            Counter::remote(8u64);
        }
        "actor-find-survivor" => {
            let c = wray::get_actor::<Counter>("survivor").map_err(e)?;
            check(
                wray::get(&c.value()).map_err(e)? == 7,
                "the named actor outlived its driver",
            )?;
            wray::kill(&c);
        }
        "spill" => {
            // Puts `mb` objects of 1 MiB, all alive at once, then reads every
            // one back and checks its bytes. With `hold`, then says so and
            // keeps them until the job is stopped.
            let mb: u32 = rest.first().and_then(|s| s.parse().ok()).unwrap_or(48);
            let hold = rest.get(1).is_some_and(|s| s == "hold");
            let fill = |i: u32| -> Vec<u8> {
                (0..1u32 << 20)
                    .map(|j| (i.wrapping_mul(31) ^ j) as u8)
                    .collect()
            };
            let refs: Vec<ObjectRef<Vec<u8>>> = (0..mb).map(|i| wray::put(&fill(i))).collect();
            for (i, r) in refs.iter().enumerate() {
                check(
                    wray::get(r).map_err(e)? == fill(i as u32),
                    "every byte comes back",
                )?;
            }
            // Results of tasks spill too, and come back as arguments.
            let sums: Vec<_> = refs.iter().map(len::remote).collect();
            check(
                wray::get(&sums).map_err(e)?.iter().all(|&n| n == 1 << 20),
                "spilled arguments",
            )?;
            if hold {
                println!("spilled {mb} MiB, holding until stopped");
                forever();
            }
        }
        "big-arg" => {
            // 32 MiB by value, under a memory limit of 80 MiB: put as an
            // object and passed by reference, so this instance holds it
            // once, not also its encoding and the call's spec; the task
            // holds its argument buffer (exactly the value's size, not the
            // next power of two) and the value it decodes.
            let v = vec![7u8; 32 << 20];
            let n = len::remote(&v);
            check(
                wray::get(&n).map_err(e)? == 32 << 20,
                "a large argument by value",
            )?;
        }
        "churn" => {
            // `rounds` times (a million by default): puts `n` objects of
            // `kib` KiB (1 and 1), all alive at once, then drops them
            // together. Every object is distinct: its first bytes are its
            // round and index. Then computes for `spin` ms (0) without
            // calling wray; `spin` = `forever` says so on stdout, then
            // computes until the job is stopped.
            let arg = |i: usize, default: u32| -> u32 {
                rest.get(i).and_then(|s| s.parse().ok()).unwrap_or(default)
            };
            let (rounds, n, kib) = (arg(0, 1_000_000), arg(1, 1), arg(2, 1).max(1));
            let until_stopped = rest.get(3).is_some_and(|s| s == "forever");
            let spin = if until_stopped { 0 } else { arg(3, 0) };
            for round in 0..rounds {
                let refs: Vec<ObjectRef<Vec<u8>>> = (0..n)
                    .map(|i| {
                        let mut v = vec![0u8; kib as usize * 1024];
                        v[..4].copy_from_slice(&round.to_le_bytes());
                        v[4..8].copy_from_slice(&i.to_le_bytes());
                        wray::put(&v)
                    })
                    .collect();
                drop(refs);
            }
            if until_stopped {
                println!("churn: every reference dropped, computing until stopped");
                forever();
            }
            busy(u64::from(spin));
        }
        "retries" => {
            // Run while the host fails every attempt: the attempts made
            // show which retry limit applied. `fragile` says max_retries = 0
            // in its attribute; per-call options override it; `busy` has
            // the runtime's default of 3.
            let attempts = |r: &ObjectRef<u64>| -> Result<u32, String> {
                let err = wray::get(r).err().ok_or("an attempt survived the faults")?;
                check(
                    err.kind() == wray::ErrorKind::WorkerFailure,
                    &format!("a worker failure: {err}"),
                )?;
                Ok(err.attempts())
            };
            // The gate never opens: every attempt waits until a fault
            // ends it, however fast or slow the machine is.
            let shut = Gate::remote();
            check(
                attempts(&gated_fragile::remote(shut.clone(), 400u64))? == 1,
                "attribute: no retries",
            )?;
            check(
                attempts(
                    &gated_fragile::options()
                        .max_retries(2)
                        .remote(shut.clone(), 400u64),
                )? == 3,
                "per-call override",
            )?;
            check(
                attempts(&gated::remote(shut, 400u64))? == 4,
                "runtime default",
            )?;
        }
        "views" => {
            // Views of a small and a large object, from `get_view` and as
            // parameters, agree with the decoded values.
            let small = vec![1.5f64, 2.5, 3.0];
            let large: Vec<f64> = (0..1_000_000).map(f64::from).collect();
            let want: f64 = large.iter().sum();
            let (rs, rl) = (wray::put(&small), wray::put(&large));
            let v = wray::get_view(&rs).map_err(e)?;
            check(v.as_slice() == small.as_slice(), "a small view")?;
            check(v.to_owned() == small, "an owned copy")?;
            let v = rl.get_view().map_err(e)?;
            check(v.as_slice() == large.as_slice(), "a large view")?;
            check(v.len() == large.len(), "the archived vector's len")?;
            check(
                wray::get(&view_sum::remote(&rl)).map_err(e)? == want,
                "a view parameter, from a reference",
            )?;
            check(
                wray::get(&view_sum::remote(&small)).map_err(e)? == 7.0,
                "a view parameter, from a value",
            )?;
            let p = Point { x: 3.0, y: 4.0 };
            check(
                wray::get(&view_point_norm::remote(p)).map_err(e)? == 5.0,
                "a view of a struct",
            )?;
        }
        "leave-queued" => {
            // Submits `n` no-op tasks (10,000) and returns without getting
            // them: the host must cancel them and exit cleanly.
            let n: u32 = rest.first().and_then(|s| s.parse().ok()).unwrap_or(10_000);
            let refs: Vec<_> = (0..n).map(|_| nothing::remote()).collect();
            println!("leaving {} tasks queued", refs.len());
        }
        "sleepers" => {
            // `n` tasks (2) that sleep for ten minutes, and a wait for them:
            // for stopping a job whose tasks sleep.
            let n: u32 = rest.first().and_then(|s| s.parse().ok()).unwrap_or(2);
            let refs: Vec<_> = (0..n).map(|_| sleeps::remote(600_000u64)).collect();
            println!("sleeping until stopped");
            wray::get(&refs).map_err(e)?;
        }
        "forever" => {
            // Never ends on its own: for stopping jobs. `forever actor
            // [n]` makes n actors (1) first, and keeps them.
            let _actors = match rest.first().map(String::as_str) {
                Some("actor") => {
                    let n: u64 = match rest.get(1) {
                        Some(n) => n.parse().map_err(|_| format!("not a count: {n}"))?,
                        None => 1,
                    };
                    counters(n)?
                }
                _ => Vec::new(),
            };
            println!("running until stopped");
            let p = parent_of_forever::remote();
            wray::get(&p).map_err(e)?;
        }
        "cancel" => {
            // Recursive: cancelling the parent ends the child it waits for.
            let started = Gate::remote();
            let p = parent_of_forever_opening::remote(started.clone());
            // Cancel only once the parent runs and has its child.
            until_open(&started).map_err(e)?;
            check(wray::cancel(&p), "something to cancel")?;
            let err = wray::get(&p).unwrap_err();
            check(err.kind() == wray::ErrorKind::Cancelled, "parent cancelled")?;
            // Finished tasks are left alone.
            let done = add::remote(1, 2);
            check(wray::get(&done).map_err(e)? == 3, "done")?;
            check(!wray::cancel(&done), "nothing to cancel")?;
            check(wray::get(&done).map_err(e)? == 3, "still there")?;
        }
        "chaos" => {
            // A mixed workload under injected faults (the host test injects
            // them): every success must be right, every failure typed.
            let trees: Vec<_> = (0..24).map(|_| tree::remote(4u32)).collect();
            let seq = Counter::options()
                .max_restarts(-1)
                .max_task_retries(-1)
                .remote(0u64);
            let n = 300u64;
            let follows: Vec<_> = (0..n).map(|i| seq.follow(i)).collect();
            let mut ok = 0;
            for t in &trees {
                match wray::get(t) {
                    Ok(n) => {
                        check(n == 31, "a tree of depth 4 is 31 tasks")?;
                        ok += 1;
                    }
                    // A tree fails when a task of it ran out of retries:
                    // its own worker failure, or a parent's panic on it.
                    Err(err) => check(
                        err.to_string().contains("worker failure"),
                        &format!("failures are typed: {err}"),
                    )?,
                }
            }
            // Unlimited redelivery: every call succeeds, and each instance
            // saw the calls it ran without a gap.
            for (i, f) in follows.iter().enumerate() {
                let v = wray::get(f).map_err(|err| format!("call {i} failed: {err}"))?;
                check(v == i as u64, "each call returns its own number")?;
            }
            println!("chaos: {ok} of {} trees succeeded", trees.len());
        }
        other => return Err(format!("unknown scenario `{other}`")),
    }
    Ok(())
}

/// Calls `function` of the module linked as `module` with `args`: a
/// guest's own call across modules, for the host to drive.
#[wray::remote]
fn cross_call(
    module: wray::Cbor<String>,
    function: wray::Cbor<String>,
    args: wray::Cbor<Vec<wray::Value>>,
) -> Result<wray::Cbor<wray::Value>, String> {
    (args.0)
        .into_iter()
        .fold(
            wray::cross::function::<wray::Cbor<wray::Value>>(&module.0, &function.0),
            |c, a| c.arg(a),
        )
        .remote()
        .get()
        .map(wray::Cbor)
        .map_err(|e| cross_error(&e))
}

/// A failed cross-module call as its callee's error, and the root cause.
fn cross_error(e: &wray::Error) -> String {
    format!("{}; root cause: {}", e.message(), e.root_cause().message())
}

/// Creates an actor of `class`, of the module linked as `module`, with
/// `args`, then calls its `method` with `margs`: a guest's own actor calls
/// across modules, for the host to drive.
#[wray::remote]
fn cross_actor(
    module: wray::Cbor<String>,
    class: wray::Cbor<String>,
    args: wray::Cbor<Vec<wray::Value>>,
    method: wray::Cbor<String>,
    margs: wray::Cbor<Vec<wray::Value>>,
) -> Result<wray::Cbor<wray::Value>, String> {
    let actor = (args.0)
        .into_iter()
        .fold(wray::cross::actor(&module.0, &class.0), |a, v| a.arg(v))
        .remote();
    (margs.0)
        .into_iter()
        .fold(
            actor.method::<wray::Cbor<wray::Value>>(&method.0),
            |c, v| c.arg(v),
        )
        .remote()
        .get()
        .map(wray::Cbor)
        .map_err(|e| cross_error(&e))
}

#[wray::main]
fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((name, rest)) = args.split_first() else {
        return Err("usage: testkit <scenario> [args]".into());
    };
    scenario(name, rest)
}

// ---- actors ------------------------------------------------------------------

/// A counter that also checks the order its calls arrive in.
#[wray::remote]
pub struct Counter {
    n: u64,
    next_seq: u64,
    /// The last number `follow` accepted in this instance.
    last: Option<u64>,
}

#[wray::remote]
impl Counter {
    pub fn new(start: u64) -> Self {
        Counter {
            n: start,
            next_seq: 0,
            last: None,
        }
    }

    /// Accepts any number first, then only the next one: an instance that
    /// missed a call fails the one after it.
    pub fn follow(&mut self, seq: u64) -> Result<u64, String> {
        if let Some(last) = self.last
            && seq != last + 1
        {
            return Err(format!("got {seq} after {last}: a call went missing"));
        }
        self.last = Some(seq);
        Ok(seq)
    }

    pub fn incr(&mut self, by: u64) -> u64 {
        self.n += by;
        self.n
    }

    pub fn value(&self) -> u64 {
        self.n
    }

    /// Adds the numbers the references name.
    pub fn add_refs(&mut self, refs: Vec<ObjectRef<u64>>) -> wray::Result<u64> {
        self.n += wray::get(&refs)?.iter().sum::<u64>();
        Ok(self.n)
    }

    /// Accepts `seq` only if it is the next number: calls must arrive in
    /// submission order.
    pub fn push(&mut self, seq: u64) -> Result<u64, String> {
        if seq != self.next_seq {
            return Err(format!("got {seq}, expected {}", self.next_seq));
        }
        self.next_seq += 1;
        Ok(seq)
    }

    pub fn fail(&self) -> Result<u64, String> {
        Err("method failed".into())
    }

    /// Traps, killing this instance.
    pub fn crash(&mut self) -> u64 {
        #[cfg(target_arch = "wasm32")]
        core::arch::wasm32::unreachable();
        #[cfg(not(target_arch = "wasm32"))]
        unreachable!()
    }

    /// Opens `started`, then computes forever (until killed).
    pub fn spin_opening(&self, started: ActorHandle<Gate>) -> wray::Result<u64> {
        wray::get(&started.open())?;
        let mut x = 0u64;
        loop {
            x = std::hint::black_box(x.wrapping_add(1));
        }
    }

    /// The first time (`started` closed): opens `started` and spins until
    /// interrupted. Again (a retry): returns 1 at once.
    pub fn first_spins(&self, started: ActorHandle<Gate>) -> wray::Result<u64> {
        if wray::get(&started.is_open())? {
            return Ok(1);
        }
        self.spin_opening(started)
    }

    /// Keeps its CPU slot busy for `ms` milliseconds.
    pub fn busy(&self, ms: u64) -> u64 {
        spin_for(ms)
    }

    /// Calls a task and gets its result from inside a method.
    pub fn add_via_task(&self, x: i32) -> wray::Result<i32> {
        wray::get(&add::remote(x, self.n as i32))
    }

    /// Prints a line, to check actor output prefixes.
    pub fn say(&self, text: String) {
        println!("{text}");
    }
}

/// Holds what it was made with.
#[wray::remote]
pub struct Holder {
    data: Vec<u8>,
}

#[wray::remote]
impl Holder {
    pub fn new(data: Vec<u8>) -> Self {
        Holder { data }
    }

    pub fn size(&self) -> u64 {
        self.data.len() as u64
    }

    /// Compares what it holds with a view it is handed.
    pub fn same_as(&self, other: View<Vec<u8>>) -> bool {
        other.as_slice() == self.data.as_slice()
    }
}

/// Keeps a view it is handed, across calls.
#[wray::remote]
pub struct Viewer {
    view: Option<View<Vec<u8>>>,
}

#[wray::remote]
impl Viewer {
    pub fn new() -> Self {
        Viewer { view: None }
    }

    /// Keeps `view` (the view of a method's argument outlives the call).
    pub fn keep(&mut self, view: View<Vec<u8>>) {
        self.view = Some(view);
    }

    /// The sum of every byte of the view, read in place.
    pub fn sum(&self) -> u64 {
        let view = self.view.as_ref().expect("a view was kept");
        view.as_slice().iter().map(|&b| u64::from(b)).sum()
    }

    /// Where the kept view lies in the actor's memory.
    pub fn at(&self) -> u32 {
        let view = self.view.as_ref().expect("a view was kept");
        view.as_slice().as_ptr() as u32
    }

    /// Whether the `len` bytes at `at` are all zero (see `zeros_at`).
    pub fn zeros_at(&self, at: u32, len: u32) -> bool {
        zeros_in(at, len)
    }
}

/// Remembers whether it was asked before: a witness that outlives restarts.
#[wray::remote]
pub struct Flag {
    set: bool,
}

#[wray::remote]
impl Flag {
    pub fn new() -> Self {
        Flag { set: false }
    }

    /// Sets the flag; returns whether it was set already.
    pub fn test_and_set(&mut self) -> bool {
        std::mem::replace(&mut self.set, true)
    }
}

/// Crashes the first time it is asked, fine after a restart.
#[wray::remote]
pub struct Flaky {
    calls: u64,
}

#[wray::remote]
impl Flaky {
    pub fn new() -> Self {
        Flaky { calls: 0 }
    }

    /// Traps unless `witness` was set before; returns how many calls this
    /// instance has served (its state starts over after a restart).
    pub fn work(&mut self, witness: ActorHandle<Flag>) -> wray::Result<u64> {
        self.calls += 1;
        if !wray::get(&witness.test_and_set())? {
            #[cfg(target_arch = "wasm32")]
            core::arch::wasm32::unreachable();
        }
        Ok(self.calls)
    }
}

/// Increments a counter actor it was handed.
#[wray::remote]
fn bump(counter: ActorHandle<Counter>, by: u64) -> wray::Result<u64> {
    wray::get(&counter.incr(by))
}

#[wray::remote]
pub struct NoConstructorArgs;

#[wray::remote]
impl NoConstructorArgs {
    pub fn new() -> Result<Self, String> {
        Err("refusing to start".into())
    }

    pub fn hello(&self) -> u32 {
        1
    }
}
