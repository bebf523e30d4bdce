#[wray::remote(num_cpus = 2)]
fn work() {}

fn main() {}
