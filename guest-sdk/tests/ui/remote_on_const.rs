#[wray::remote]
const LIMIT: u32 = 3;

fn main() {}
