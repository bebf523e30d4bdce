struct NotAValue;

#[wray::remote]
fn take(x: NotAValue) -> u32 {
    let _ = x;
    1
}

fn main() {}
