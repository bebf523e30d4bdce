//! Nested tasks: a task that submits tasks and waits for them.
//!
//! A parallel merge sort: each task splits its slice, sorts the halves in
//! two child tasks and merges them. Waiting tasks release their CPU slot, so
//! the tree completes even with `--num-cpus 1`.
//!
//! Run: `make build && target/release/wray run --num-cpus 2 target/wasm32-wasip1/release/nested.wasm`

use std::time::Instant;

/// Sorts `v`, in parallel below `depth` levels of splitting.
#[wray::remote]
fn sort(v: Vec<u32>, depth: u32) -> wray::Result<Vec<u32>> {
    if depth == 0 || v.len() < 1024 {
        let mut v = v;
        v.sort_unstable();
        return Ok(v);
    }
    let (left, right) = v.split_at(v.len() / 2);
    // Both children start before this task waits for either.
    let halves = [
        sort::remote(left.to_vec(), depth - 1),
        sort::remote(right.to_vec(), depth - 1),
    ];
    let [a, b]: [Vec<u32>; 2] = wray::get(&halves)?.try_into().expect("two halves");
    Ok(merge(&a, &b))
}

fn merge(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i] <= b[j] {
            out.push(a[i]);
            i += 1;
        } else {
            out.push(b[j]);
            j += 1;
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

#[wray::main]
fn main() -> wray::Result<()> {
    let n = 2_000_000u32;
    let data: Vec<u32> = (0..n).map(|i| i.wrapping_mul(2_654_435_761) % n).collect();
    let start = Instant::now();
    let sorted = wray::get(&sort::remote(&data, 4))?;
    let took = start.elapsed();
    assert!(sorted.windows(2).all(|w| w[0] <= w[1]));
    println!(
        "sorted {n} numbers with a tree of {} tasks in {took:.2?}",
        (1 << 5) - 1
    );
    Ok(())
}
