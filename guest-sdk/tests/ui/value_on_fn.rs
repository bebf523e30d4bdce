#[wray::value]
fn not_a_type() {}

fn main() {}
