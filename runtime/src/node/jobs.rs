//! The node's jobs: driver runs submitted over HTTP, their states and
//! outcomes.

use super::logs::job_name;
use super::types::{JobInfo, JobStatus};
use crate::events::unix_ms;
use crate::exec::module::Module;
use crate::job::handle::JobControl;
use std::sync::{Mutex, MutexGuard};

/// Why a job was not deleted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum DeleteRefused {
    /// No such job.
    Unknown,
    /// It is pending or running, or stopped but its driver has not unwound.
    NotEnded,
}

struct Entry {
    id: u64,
    /// As recorded: `Pending` until the job ends or is stopped (see
    /// [`Entry::info`]).
    info: JobInfo,
    job: Option<JobControl>,
}

impl Entry {
    /// The job as it is now: a pending one whose driver has started runs.
    fn info(&self) -> JobInfo {
        let mut info = self.info.clone();
        if info.status == JobStatus::Pending && self.job.as_ref().is_some_and(|j| j.started()) {
            info.status = JobStatus::Running;
        }
        info
    }
}

/// Every job the node ran, oldest first.
#[derive(Default)]
pub(crate) struct Jobs {
    entries: Mutex<Vec<Entry>>,
    /// Notified whenever a job's driver has unwound.
    unwound: tokio::sync::Notify,
}

impl Jobs {
    fn lock(&self) -> MutexGuard<'_, Vec<Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a submitted job.
    pub fn add(
        &self,
        job: JobControl,
        module: &Module,
        name: Option<String>,
        args: Vec<String>,
        node_id: &str,
    ) -> JobInfo {
        let id = job.id();
        let info = JobInfo {
            job_id: job_name(id),
            submission_id: job_name(id),
            name: name.unwrap_or_else(|| module.name().to_string()),
            module: module.id().to_string(),
            args,
            status: JobStatus::Pending,
            start_time_ms: unix_ms(),
            end_time_ms: None,
            exit_code: None,
            message: None,
            node_id: node_id.to_string(),
        };
        let entry = Entry {
            id,
            info,
            job: Some(job),
        };
        let info = entry.info();
        self.lock().push(entry);
        info
    }

    /// Records a job's outcome (unless it was stopped).
    pub fn finish(&self, id: u64, outcome: &crate::Result<i32>) {
        let mut g = self.lock();
        let Some(e) = g.iter_mut().find(|e| e.id == id) else {
            return;
        };
        e.job = None;
        self.unwound.notify_waiters();
        e.info.end_time_ms = Some(unix_ms());
        if e.info.status == JobStatus::Stopped {
            return;
        }
        match outcome {
            Ok(0) => {
                e.info.status = JobStatus::Succeeded;
                e.info.exit_code = Some(0);
            }
            Ok(code) => {
                e.info.status = JobStatus::Failed;
                e.info.exit_code = Some(*code);
                e.info.message = Some(format!("the driver exited with status {code}"));
            }
            Err(err) => {
                e.info.status = JobStatus::Failed;
                e.info.exit_code = Some(1);
                e.info.message = Some(err.to_string());
            }
        }
    }

    /// Stops job `id`; false if it had ended (or is unknown).
    pub fn stop(&self, id: u64) -> bool {
        let mut g = self.lock();
        let Some(e) = g.iter_mut().find(|e| e.id == id) else {
            return false;
        };
        match &e.job {
            Some(job) if !e.info.status.ended() => {
                job.stop();
                e.info.status = JobStatus::Stopped;
                e.info.message = Some("stopped by a user".into());
                true
            }
            _ => false,
        }
    }

    /// Forgets job `id` once it has ended and its driver has unwound.
    fn delete(&self, id: u64) -> Result<(), DeleteRefused> {
        let mut g = self.lock();
        let Some(i) = g.iter().position(|e| e.id == id) else {
            return Err(DeleteRefused::Unknown);
        };
        if !g[i].info.status.ended() || g[i].job.is_some() {
            return Err(DeleteRefused::NotEnded);
        }
        g.remove(i);
        Ok(())
    }

    /// [`delete`](Self::delete), waiting for the driver of a stopped job
    /// to unwind (it was told to, and does: its instance is interrupted,
    /// its waits cancelled), however long that takes on this machine.
    pub async fn delete_ended(&self, id: u64) -> Result<(), DeleteRefused> {
        loop {
            let mut unwound = std::pin::pin!(self.unwound.notified());
            unwound.as_mut().enable();
            match self.delete(id) {
                Err(DeleteRefused::NotEnded) if self.get(id).is_some_and(|i| i.status.ended()) => {}
                done => return done,
            }
            unwound.await;
        }
    }

    /// Job `id`.
    pub fn get(&self, id: u64) -> Option<JobInfo> {
        self.lock().iter().find(|e| e.id == id).map(Entry::info)
    }

    /// Every job, newest first.
    pub fn list(&self) -> Vec<JobInfo> {
        self.lock().iter().rev().map(Entry::info).collect()
    }
}

/// Parses `job-<n>` (or `<n>`).
pub(crate) fn parse_job_id(s: &str) -> Option<u64> {
    s.strip_prefix("job-").unwrap_or(s).parse().ok()
}
