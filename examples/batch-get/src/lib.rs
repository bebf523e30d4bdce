//! The lesson "call `get` late, in one batch".
//!
//! `get` waits. Calling it right after each `remote` makes the program
//! sequential: the next task is not even submitted until the previous one
//! finished. Submitting everything first and getting all results at the end
//! lets the tasks run in parallel, on every core. Both versions below do the
//! same work; the example prints both timings.
//!
//! Run: `make build && target/release/wray run target/wasm32-wasip1/release/batch_get.wasm`

use std::time::{Duration, Instant};

/// Stands in for real work: computes for about `ms` milliseconds.
#[wray::remote]
fn work(i: u64, ms: u64) -> u64 {
    let start = Instant::now();
    let mut x = i;
    while start.elapsed() < Duration::from_millis(ms) {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
    i * i
}

#[wray::main]
fn main() -> wray::Result<()> {
    let n = 16;

    // Anti-pattern: get right after remote, so each task runs alone.
    let start = Instant::now();
    let mut slow = Vec::new();
    for i in 0..n {
        slow.push(wray::get(&work::remote(i, 50))?);
    }
    let sequential = start.elapsed();

    // Better: submit all, then get all.
    let start = Instant::now();
    let refs: Vec<_> = (0..n).map(|i| work::remote(i, 50)).collect();
    let fast = wray::get(&refs)?;
    let batched = start.elapsed();

    assert_eq!(slow, fast);
    println!("get after each remote: {sequential:.2?}");
    println!(
        "get once, at the end:  {batched:.2?} ({:.1}x faster)",
        sequential.as_secs_f64() / batched.as_secs_f64()
    );
    Ok(())
}
