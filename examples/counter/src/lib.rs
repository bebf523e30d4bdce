//! A counter actor: state that lives between calls.
//!
//! Shows: `#[wray::remote]` on a struct and its impl block, `Counter::remote`
//! returning a handle at once, method calls in order, passing the handle to
//! tasks, a named actor found with `wray::get_actor`, and `wray::kill`.
//!
//! Run: `make build && target/release/wray run target/wasm32-wasip1/release/counter.wasm`

use wray::prelude::*;

#[wray::remote]
struct Counter {
    value: i64,
}

#[wray::remote]
impl Counter {
    fn new(start: i64) -> Self {
        Counter { value: start }
    }

    fn add(&mut self, by: i64) -> i64 {
        self.value += by;
        self.value
    }

    fn get(&self) -> i64 {
        self.value
    }
}

/// A task that bumps a counter it was handed.
#[wray::remote]
fn bump_twice(counter: ActorHandle<Counter>) -> wray::Result<i64> {
    wray::get(&counter.add(1))?;
    wray::get(&counter.add(1))
}

#[wray::main]
fn main() -> wray::Result<()> {
    let counter = Counter::options().name("visits").remote(0);

    // Calls from one caller run one at a time, in the order they were made.
    let adds: Vec<_> = (1..=5).map(|i| counter.add(i)).collect();
    println!("running totals: {:?}", wray::get(&adds)?); // [1, 3, 6, 10, 15]

    // Handles are values: tasks can call the actor too.
    let tasks: Vec<_> = (0..4)
        .map(|_| bump_twice::remote(counter.clone()))
        .collect();
    wray::get(&tasks)?;
    println!(
        "after 4 tasks bumped it twice each: {}",
        wray::get(&counter.get())?
    ); // 23

    // Anyone can find a named actor.
    let found = wray::get_actor::<Counter>("visits")?;
    println!("found by name: {}", wray::get(&found.get())?);

    wray::kill(&counter);
    match wray::get(&counter.get()) {
        Ok(v) => println!("unexpected: {v}"),
        Err(e) => println!("after kill: {e}"),
    }
    Ok(())
}
