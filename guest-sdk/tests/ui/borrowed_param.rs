#[wray::remote]
fn greet(name: &str) -> String {
    format!("hi {name}")
}

fn main() {}
