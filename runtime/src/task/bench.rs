//! The floor under the task figures of `wray bench`: task attempts without
//! submission, slot queue, records or stored results.

use crate::exec::module::Module;
use crate::exec::request::Submission;
use crate::exec::slots::Grant;
use crate::objects::held::HeldRefs;
use crate::task::run::{Task, execute, spawn_next};
use crate::task::table::{TaskHandle, Tasks};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use wray_abi::wire::Options;

/// Runs `n` calls of `function`, which takes no arguments, each on a fresh
/// instance, `parallel` at a time: the path of one task attempt
/// ([`execute`]) without submission, slot queue, records or stored
/// results. `wray bench` reports it as the floor under the task figures.
pub(crate) async fn bare_calls(
    rt: &Arc<Tasks>,
    module: &Module,
    function: &str,
    n: u32,
    parallel: usize,
) -> Result<(), String> {
    let Some((function, export)) = module.task(function) else {
        return Err(format!(
            "module `{}` has no remote function `{function}`",
            module.name()
        ));
    };
    let sub = Submission::host(
        function,
        Vec::new(),
        HeldRefs::new(&rt.env.objects),
        Options::default(),
    );
    let task = Arc::new(Task::new(
        rt,
        rt.env.ids.next_task(),
        module.clone(),
        export,
        Vec::new(),
        Arc::new(TaskHandle::new(false, 0)),
        sub,
    ));
    let next = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let workers: Vec<_> = (0..parallel.max(1))
        .map(|_| {
            let (rt, task, next) = (rt.clone(), task.clone(), next.clone());
            let spawner = rt.env.spawner.clone();
            spawner.spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < n {
                    let grant = Grant {
                        cpu: None,
                        call: None,
                    };
                    let (outcome, next) = Box::pin(execute(&rt, &task, Vec::new(), grant)).await;
                    spawn_next(&rt, next);
                    outcome.map_err(|e| e.message)?;
                }
                Ok::<(), String>(())
            })
        })
        .collect();
    for w in workers {
        w.await.map_err(|e| e.to_string())??;
    }
    Ok(())
}
