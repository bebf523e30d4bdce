//! Monte Carlo estimate of pi over many tasks.
//!
//! Shows: fanning work out to many `remote` calls, each with its own seed so
//! results are reproducible, and combining the results with one `get`.
//!
//! Run: `make build && target/release/wray run target/wasm32-wasip1/release/pi.wasm -- 64 1000000`
//! (tasks, samples per task).

use std::time::Instant;

/// xorshift64*: a tiny deterministic generator; each task gets its own seed.
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Counts how many of `samples` random points in the unit square fall
/// inside the quarter circle.
#[wray::remote]
fn sample(seed: u64, samples: u64) -> u64 {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    (0..samples)
        .filter(|_| {
            let (x, y) = (rng.next_f64(), rng.next_f64());
            x * x + y * y <= 1.0
        })
        .count() as u64
}

#[wray::main]
fn main() -> wray::Result<()> {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let tasks = args.first().copied().unwrap_or(64);
    let per_task = args.get(1).copied().unwrap_or(1_000_000);
    let start = Instant::now();
    let refs: Vec<_> = (0..tasks)
        .map(|seed| sample::remote(seed, per_task))
        .collect();
    let inside: u64 = wray::get(&refs)?.iter().sum();
    let pi = 4.0 * inside as f64 / (tasks * per_task) as f64;
    println!(
        "pi ~= {pi:.6} from {} samples in {tasks} tasks, {:.2?}",
        tasks * per_task,
        start.elapsed()
    );
    Ok(())
}
