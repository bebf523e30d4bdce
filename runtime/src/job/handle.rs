//! A job: one run of a driver, and what names, stops and waits for it.

use crate::actor::registry::Actors;
use crate::error::{Error, Result, TaskError};
use crate::exec::module::Module;
use crate::job::driver::Started;
use std::fmt;
use std::sync::Arc;

/// Starts `module`'s driver as job `id` (see `IdGen::next_job`; in a
/// cluster, the cluster's count) on `handle`'s threads.
pub(crate) fn start_job(
    shared: &Arc<Actors>,
    handle: &tokio::runtime::Handle,
    id: u64,
    module: &Module,
    args: &[String],
    links: &[(String, Module)],
) -> Job {
    let mut argv = Vec::with_capacity(args.len() + 1);
    argv.push(module.name().to_string());
    argv.extend(args.iter().cloned());
    // The program calls its own module by name too.
    shared.env.links.link(id, module.name(), module.clone());
    for (name, linked) in links {
        shared.env.links.link(id, name, linked.clone());
    }
    let cancel = Arc::new(crate::exec::state::CancelToken::default());
    let started = Arc::new(Started::default());
    let (s, m, token, run) = (
        shared.clone(),
        module.clone(),
        cancel.clone(),
        started.clone(),
    );
    // On a worker thread: the driver's guest code runs where tasks run.
    let join =
        handle.spawn(async move { crate::job::driver::run(&s, &m, argv, id, token, &run).await });
    Job {
        control: JobControl {
            id,
            cancel,
            started,
            shared: shared.clone(),
        },
        handle: join,
    }
}

/// A driver run: a job. Dropping it leaves the job running.
pub struct Job {
    control: JobControl,
    handle: tokio::task::JoinHandle<std::result::Result<i32, wray_abi::wire::ErrorRecord>>,
}

/// Names and stops a [`Job`]; cheap to clone.
#[derive(Clone)]
pub struct JobControl {
    id: u64,
    cancel: Arc<crate::exec::state::CancelToken>,
    started: Arc<Started>,
    shared: Arc<Actors>,
}

impl JobControl {
    /// The job's number (from 1), as tasks and output name it.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Whether the driver has started: false while it waits for a call
    /// slot (every one is taken by running calls), as a pending Ray job
    /// waits for resources.
    pub fn started(&self) -> bool {
        self.started.get()
    }

    /// Resolves once the driver has started (never, if it is stopped
    /// before).
    pub async fn wait_started(&self) {
        self.started.wait().await
    }

    /// Stops the job: interrupts its driver and cancels its unfinished
    /// tasks and actor calls; its unnamed actors end with the driver.
    pub fn stop(&self) {
        crate::job::driver::stop(&self.shared, self.id, &self.cancel);
    }
}

impl Job {
    /// The job's number (from 1), as tasks and output name it.
    pub fn id(&self) -> u64 {
        self.control.id
    }

    /// What names and stops the job, apart from waiting for it.
    pub fn control(&self) -> JobControl {
        self.control.clone()
    }

    /// Whether the driver has ended.
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Waits for the driver: its exit status, or its failure.
    pub async fn wait(self) -> Result<i32> {
        match self.handle.await {
            Ok(r) => r.map_err(|rec| Error::Task(TaskError::new(rec))),
            Err(e) => Err(Error::Config(format!("the driver's thread failed: {e}"))),
        }
    }
}

impl fmt::Debug for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job").field("id", &self.control.id).finish()
    }
}
