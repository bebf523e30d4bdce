//! Memoized pure tasks: an expensive function over a grid of inputs, run
//! again and again, computed once.
//!
//! Shows: `#[wray::remote(pure)]` (docs/memo.md). `simulate` is pure: its
//! result depends on its arguments only, and it reads no clock and no
//! random numbers, so the runtime answers a call it has answered before
//! from its memo table, without running it. The driver sweeps the grid
//! several times: the first pass computes every point (about 200 ms each),
//! the later ones are answered at once. With `--memo-dir` the table
//! outlives the process: run it twice and the second run does no pure work
//! at all (`wray run` prints the memo's hits and misses at the end).
//!
//! Run: `make build && target/release/wray run --memo-dir /tmp/wray-memo target/wasm32-wasip1/release/memo.wasm -- 4 3`
//! (grid side, passes), then the same command again.

use std::time::Instant;

/// Iterations of `simulate`'s loop: about 200 ms of computing.
const WORK: u64 = 80_000_000;

/// A deterministic stand-in for an expensive computation (a simulation at
/// one grid point): `work` rounds of a mixing function seeded by the point.
/// No clock, no randomness: the same point gives the same bits, always.
#[wray::remote(pure)]
fn simulate(x: u32, y: u32, work: u64) -> u64 {
    let mut s = (u64::from(x) << 32 | u64::from(y)).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut acc = 0u64;
    for i in 0..work {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        acc = acc.wrapping_add(s.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ i);
    }
    acc
}

#[wray::main]
fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: u64| -> Result<u64, String> {
        args.get(i).map_or(Ok(default), |a| {
            a.parse().map_err(|e| format!("`{a}`: {e}"))
        })
    };
    let (side, passes, work) = (arg(0, 4)? as u32, arg(1, 3)?, arg(2, WORK)?);
    println!(
        "grid {side}x{side}, {passes} passes, {} calls of simulate",
        u64::from(side * side) * passes
    );
    let start = Instant::now();
    let mut checksum = 0u64;
    for pass in 1..=passes {
        let t = Instant::now();
        let calls: Vec<_> = (0..side)
            .flat_map(|x| (0..side).map(move |y| simulate::remote(x, y, work)))
            .collect();
        let values = wray::get(&calls).map_err(|e| e.to_string())?;
        let sum = values.iter().fold(0u64, |a, v| a.wrapping_add(*v));
        if pass > 1 && sum != checksum {
            return Err("a pass gave other values: simulate is not pure".into());
        }
        checksum = sum;
        println!("pass {pass}: {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
    }
    println!("checksum: {checksum:016x}");
    println!("total: {:.1} ms", start.elapsed().as_secs_f64() * 1e3);
    Ok(())
}
