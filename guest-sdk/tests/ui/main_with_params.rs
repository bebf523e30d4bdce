#[wray::main]
fn driver(args: Vec<String>) {
    let _ = args;
}

fn main() {}
