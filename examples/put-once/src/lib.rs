//! The lesson "put a large value once and pass the reference".
//!
//! A 5000 x 5000 array of f64 (200 MB) is given to 10 tasks, first by value
//! (every call puts the whole array again: a large argument becomes an
//! object, as in Ray), then by reference (one `put`, then ten 32-byte
//! references). wray addresses objects by content, so the ten by-value
//! copies are stored only once, but each call still pays to send and hash
//! 200 MB; the reference costs that once. The example prints both timings,
//! and how long the driver took to submit the ten calls: that is where the
//! two differ. Expect the totals to be close,
//! in either order: each task copies and decodes the whole matrix into its
//! own instance either way (400 MB of fresh pages), which takes most of the
//! time, and by value the tasks start while the driver is still submitting.
//!
//! Run: `make build && target/release/wray run target/wasm32-wasip1/release/put_once.wasm`

use std::time::Instant;
use wray::ObjectRef;

const N: usize = 5000;

/// Sums one row band of the matrix.
#[wray::remote]
fn band_sum(matrix: Vec<f64>, band: u32, bands: u32) -> f64 {
    let rows = N / bands as usize;
    let start = band as usize * rows * N;
    matrix[start..start + rows * N].iter().sum()
}

/// The same, taking the reference and fetching the matrix itself.
#[wray::remote]
fn band_sum_ref(matrix: ObjectRef<Vec<f64>>, band: u32, bands: u32) -> wray::Result<f64> {
    let matrix = wray::get(&matrix)?;
    let rows = N / bands as usize;
    let start = band as usize * rows * N;
    Ok(matrix[start..start + rows * N].iter().sum())
}

#[wray::main]
fn main() -> wray::Result<()> {
    let tasks = 10u32;
    let matrix: Vec<f64> = (0..N * N).map(|i| (i % 7) as f64).collect();
    let want: f64 = matrix.iter().sum();

    let start = Instant::now();
    let refs: Vec<_> = (0..tasks)
        .map(|b| band_sum::remote(&matrix, b, tasks))
        .collect();
    let value_submit = start.elapsed();
    let by_value: f64 = wray::get(&refs)?.iter().sum();
    let value_time = start.elapsed();

    let start = Instant::now();
    let shared = wray::put(&matrix);
    // Passing `&shared` where a Vec<f64> is expected would resolve it before
    // the task starts; here the task takes the reference itself.
    let refs: Vec<_> = (0..tasks)
        .map(|b| band_sum_ref::remote(shared.clone(), b, tasks))
        .collect();
    let ref_submit = start.elapsed();
    let by_ref: f64 = wray::get(&refs)?.iter().sum();
    let ref_time = start.elapsed();

    assert_eq!(by_value, want);
    assert_eq!(by_ref, want);
    println!(
        "{N}x{N} f64 matrix ({} MB) to {tasks} tasks",
        N * N * 8 / 1_000_000
    );
    println!("passed by value:     {value_time:.2?} (submitting took {value_submit:.2?})");
    println!("put once, by ref:    {ref_time:.2?} (submitting took {ref_submit:.2?})");
    Ok(())
}
