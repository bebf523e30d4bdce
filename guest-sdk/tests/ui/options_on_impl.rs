#[wray::remote]
#[derive(Default)]
struct Counter {
    n: u64,
}

#[wray::remote(max_restarts = 2)]
impl Counter {
    fn add(&mut self, k: u64) -> u64 {
        self.n += k;
        self.n
    }
}

fn main() {}
