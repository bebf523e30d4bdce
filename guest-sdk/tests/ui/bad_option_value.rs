#[wray::remote(max_retries = "three")]
fn work() {}

fn main() {}
