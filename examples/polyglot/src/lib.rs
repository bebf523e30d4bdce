//! One program, three languages: a Rust driver calls tasks and an actor
//! written in C and Go, passes object references between them, and a C
//! task calls back into a Rust task.
//!
//! ```text
//! make guests
//! wray run target/wasm32-wasip1/release/polyglot.wasm \
//!     --module c_math=target/wasm32-wasip1/release/c_math.wasm \
//!     --module go_math=target/wasm32-wasip1/release/go_math.wasm
//! ```

use wray::{Cbor, Value, cross};

/// A Rust task any language can call: it takes and returns a
/// cross-language value.
#[wray::remote]
fn double(x: Cbor<i64>) -> Cbor<i64> {
    Cbor(x.0 * 2)
}

#[wray::main]
fn main() -> wray::Result<()> {
    // This program's own module, by the name `wray run` links it under.
    let me = std::env::args().next().unwrap_or_else(|| "polyglot".into());

    // Rust calls C and Go.
    let three = cross::function::<Cbor<i64>>("c_math", "add")
        .arg(1)
        .arg(2)
        .remote();
    let total = cross::function::<Cbor<f64>>("go_math", "sum")
        .arg(vec![0.5, 1.5, 2.0])
        .remote();
    println!("c_math.add(1, 2) = {}", three.get()?);
    println!("go_math.sum([0.5, 1.5, 2.0]) = {}", total.get()?);

    // A result made in C goes to Go by reference, and Go's result back to C.
    let in_go = cross::function::<Cbor<i64>>("go_math", "add")
        .arg_ref(&three)
        .arg(100)
        .remote();
    let in_c = cross::function::<Cbor<i64>>("c_math", "add")
        .arg_ref(&in_go)
        .arg(1000)
        .remote();
    println!("c_math.add(go_math.add(3, 100), 1000) = {}", in_c.get()?);

    // A C task calls a Rust task of this module.
    let applied = cross::function::<Cbor<i64>>("c_math", "apply")
        .arg(me.as_str())
        .arg("double")
        .arg(21)
        .remote();
    println!("c_math.apply({me}.double, 21) = {}", applied.get()?);

    // Actors in C and Go, driven from Rust.
    for module in ["c_math", "go_math"] {
        let counter = cross::actor(module, "Counter").arg(10).remote();
        let calls: Vec<_> = (0..3)
            .map(|_| counter.method::<Cbor<i64>>("incr").remote())
            .collect();
        println!("{module}.Counter(10).incr() x3 = {:?}", wray::get(&calls)?);
    }

    // The same value put from Rust, C and Go is one object.
    let here = cross::put(vec![1, 2, 3]);
    let stored: Vec<_> = ["c_math", "go_math"]
        .iter()
        .map(|m| {
            cross::function::<Cbor<Value>>(m, "store")
                .arg(vec![1, 2, 3])
                .remote()
        })
        .collect();
    let same = wray::get(&stored)?
        .iter()
        .all(|r| *r == Value::Ref(here.id()));
    println!("[1, 2, 3] put from Rust, C and Go is one object: {same}");

    // A guest's error comes back with its message.
    let err = cross::function::<Cbor<i64>>("c_math", "fails")
        .remote()
        .get()
        .expect_err("fails fails");
    println!("c_math.fails() failed: {}", err.message());
    Ok(())
}
