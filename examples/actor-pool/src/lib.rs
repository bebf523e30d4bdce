//! An actor pool: a set of actors fed work round-robin.
//!
//! Shows: the pattern Ray users reach for first (`ray.util.ActorPool`).
//! Each actor keeps state that is expensive to build (here, a lookup table
//! built in its constructor), and work items are spread over the actors in
//! turn; results come back in order with `get`, or as they finish with
//! `wait`.
//!
//! Run: `make build && target/release/wray run target/wasm32-wasip1/release/actor_pool.wasm`

use wray::prelude::*;

#[wray::remote]
struct Scorer {
    table: Vec<u64>,
    scored: u64,
}

#[wray::remote]
impl Scorer {
    /// Builds the table once per actor, not once per item.
    fn new(seed: u64) -> Self {
        let table = (0..65_536u64)
            .map(|i| (i * 2_654_435_761 + seed) % 1_000)
            .collect();
        Scorer { table, scored: 0 }
    }

    fn score(&mut self, item: u64) -> u64 {
        self.scored += 1;
        (0..64)
            .map(|k| self.table[((item * 64 + k) % 65_536) as usize])
            .sum()
    }

    fn scored(&self) -> u64 {
        self.scored
    }
}

/// A fixed set of actors, used in turn.
struct Pool {
    actors: Vec<ActorHandle<Scorer>>,
    next: usize,
}

impl Pool {
    fn new(size: usize) -> Pool {
        Pool {
            actors: (0..size).map(|_| Scorer::remote(7)).collect(),
            next: 0,
        }
    }

    /// Submits one item to the next actor.
    fn submit(&mut self, item: u64) -> ObjectRef<u64> {
        let actor = &self.actors[self.next];
        self.next = (self.next + 1) % self.actors.len();
        actor.score(item)
    }
}

#[wray::main]
fn main() -> wray::Result<()> {
    let mut pool = Pool::new(4);

    // map: results in submission order.
    let refs: Vec<_> = (0..100).map(|item| pool.submit(item)).collect();
    let scores = wray::get(&refs)?;
    println!(
        "scored {} items; first three: {:?}",
        scores.len(),
        &scores[..3]
    );

    // map_unordered: take results as they finish.
    let mut pending: Vec<_> = (100..120).map(|item| pool.submit(item)).collect();
    let mut done = 0;
    while !pending.is_empty() {
        let (ready, rest) = wray::wait(&pending, 1, None)?;
        done += wray::get(&ready)?.len();
        pending = rest;
    }
    println!("{done} more as they finished");

    let per_actor: Vec<_> = pool.actors.iter().map(|a| a.scored()).collect();
    println!("items per actor: {:?}", wray::get(&per_actor)?);
    Ok(())
}
