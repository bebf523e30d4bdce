//! A parameter server: one actor holds the model, many tasks update it.
//!
//! Shows: the pattern behind Ray's parameter-server example. Each worker
//! task computes a gradient and sends it to the server actor; the server
//! applies updates one at a time, so concurrent updates from many tasks are
//! each applied exactly once, with no locks in user code. The example checks
//! the final weights against the sum of every gradient.
//!
//! Run: `make build && target/release/wray run target/wasm32-wasip1/release/param_server.wasm`

use wray::prelude::*;

const DIM: usize = 1000;

#[wray::remote]
struct ParameterServer {
    weights: Vec<f64>,
    updates: u64,
}

#[wray::remote]
impl ParameterServer {
    fn new(dim: u64) -> Self {
        ParameterServer {
            weights: vec![0.0; dim as usize],
            updates: 0,
        }
    }

    /// Applies one gradient; returns how many updates have been applied.
    fn apply(&mut self, gradient: Vec<f64>) -> u64 {
        for (w, g) in self.weights.iter_mut().zip(&gradient) {
            *w += g;
        }
        self.updates += 1;
        self.updates
    }

    fn weights(&self) -> Vec<f64> {
        self.weights.clone()
    }
}

/// The gradient worker `worker` computes in `step`: deterministic, so the
/// driver can check the result.
fn gradient(worker: u64, step: u64) -> Vec<f64> {
    (0..DIM)
        .map(|i| ((worker * 31 + step * 7 + i as u64) % 13) as f64 / 100.0)
        .collect()
}

/// A worker: computes `steps` gradients and pushes each to the server.
#[wray::remote]
fn worker(server: ActorHandle<ParameterServer>, id: u64, steps: u64) -> wray::Result<u64> {
    for step in 0..steps {
        wray::get(&server.apply(gradient(id, step)))?;
    }
    Ok(steps)
}

#[wray::main]
fn main() -> wray::Result<()> {
    let (workers, steps) = (8u64, 25u64);
    let server = ParameterServer::remote(DIM as u64);
    let start = std::time::Instant::now();
    let jobs: Vec<_> = (0..workers)
        .map(|w| worker::remote(server.clone(), w, steps))
        .collect();
    wray::get(&jobs)?;
    let weights = wray::get(&server.weights())?;

    let mut expected = vec![0.0; DIM];
    for w in 0..workers {
        for s in 0..steps {
            for (e, g) in expected.iter_mut().zip(gradient(w, s)) {
                *e += g;
            }
        }
    }
    let max_err = weights
        .iter()
        .zip(&expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    let updates = wray::get(&server.apply(vec![0.0; DIM]))? - 1;
    println!(
        "{workers} workers x {steps} steps: {updates} updates applied in {:.2?}, max error {max_err:e}",
        start.elapsed()
    );
    assert_eq!(
        updates,
        workers * steps,
        "every update applied exactly once"
    );
    assert!(max_err < 1e-9);
    Ok(())
}
