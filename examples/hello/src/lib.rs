//! Hello, wray: one remote function, called from a driver.
//!
//! Shows: `#[wray::remote]`, `f::remote(..)` returning an `ObjectRef` at once,
//! `wray::get`, and task output streamed to your terminal with a prefix.
//!
//! Run: `make build && target/release/wray run target/wasm32-wasip1/release/hello.wasm`

#[wray::remote]
fn say_hello(name: String) -> String {
    println!("saying hello to {name}");
    format!("Hello, {name}!")
}

#[wray::main]
fn main() -> wray::Result<()> {
    let greeting = say_hello::remote("wray");
    println!("{}", wray::get(&greeting)?);
    Ok(())
}
