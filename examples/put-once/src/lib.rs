//! Ray's lesson "put a large array once and pass the reference", ported
//! faithfully from Ray's own snippet: a 5000 x 5000 array of zeros (200 MB)
//! given to 10 tasks that do nothing with it, first by value (each call
//! puts the array again, as in Ray), then put once and passed by reference.
//! Each timing starts before the zeros are made, as Ray's does; wray's also
//! waits for the ten tasks to finish, which Ray's leaves out.
//!
//! The tasks take a `View<Vec<f64>>`, the counterpart of the read-only
//! numpy array a Ray task receives: the host maps the object's pages into
//! each task's memory, so no task copies the 200 MB, and ten tasks share one
//! copy. After the timings, a task sums the whole 200 MB array in place,
//! and another sums an array of known, non-zero contents to show that a
//! view reads the real data.
//!
//! Measured on the 2-core machine (`make build && target/release/wray run
//! --num-cpus 4 target/wasm32-wasip1/release/put_once.wasm`, 2026-12-06):
//! by value 0.33-0.43 s, put once 0.04-0.06 s; Ray 2.60 there: 0.40-1.03 s
//! and 0.016-0.017 s. The "submitted in" figures are nearly the totals:
//! the puts are the work, and the no-op tasks have finished by the time the
//! last one is submitted. `wray bench --only seed` runs this example and reports the
//! same figures (`seed_by_value_s`, `seed_put_once_s`, `seed_peak_rss_mb`).

use std::time::Instant;
use wray::View;

const N: usize = 5000;

/// Does nothing with the array, as in Ray's snippet.
#[wray::remote]
fn no_work(_a: View<Vec<f64>>) {}

/// Sums the array, read where it lies.
#[wray::remote]
fn sum(a: View<Vec<f64>>) -> f64 {
    a.as_slice().iter().sum()
}

#[wray::main]
fn main() -> wray::Result<()> {
    // Each part in a block of its own: its array goes when it ends.
    let (by_value, by_value_submitted) = {
        let start = Instant::now();
        let a = vec![0.0f64; N * N];
        let result_ids: Vec<_> = (0..10).map(|_| no_work::remote(&a)).collect();
        let submitted = start.elapsed();
        wray::get(&result_ids)?;
        (start.elapsed(), submitted)
    };

    let (put_once, put_once_submitted) = {
        let start = Instant::now();
        let a_id = wray::put(&vec![0.0f64; N * N]);
        let result_ids: Vec<_> = (0..10).map(|_| no_work::remote(&a_id)).collect();
        let submitted = start.elapsed();
        wray::get(&result_ids)?;
        let took = start.elapsed();
        // A task reads all 200 MB where they lie.
        assert_eq!(wray::get(&sum::remote(&a_id))?, 0.0);
        (took, submitted)
    };

    // Reading in place: a task sees an array's real contents.
    let counting: Vec<f64> = (0..1000 * 1000).map(|i| (i % 7) as f64).collect();
    let want: f64 = counting.iter().sum();
    let got = wray::get(&sum::remote(wray::put(&counting)))?;
    assert_eq!(got, want, "the task read the array in place");

    println!(
        "{N}x{N} f64 array of zeros ({} MB) to 10 no-op tasks",
        N * N * 8 / 1_000_000
    );
    println!(
        "by value:  {:.3} s (submitted in {:.3} s)",
        by_value.as_secs_f64(),
        by_value_submitted.as_secs_f64()
    );
    println!(
        "put once:  {:.3} s (submitted in {:.3} s)",
        put_once.as_secs_f64(),
        put_once_submitted.as_secs_f64()
    );
    println!("a task summed 1000000 numbers in place: {got}");
    Ok(())
}
