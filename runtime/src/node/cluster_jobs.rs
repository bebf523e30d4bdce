//! A cluster's jobs: each node keeps its own jobs (`jobs.rs`) and writes
//! each one's record to the cluster's metadata (`/wray/jobs/<n>`) when it
//! is submitted, starts, is stopped, ends or is deleted, so any node lists
//! every job of the cluster, as Ray's GCS job table does. Job numbers are
//! the cluster's (one counter in etcd), so `job-7` names one job anywhere.
//!
//! The records outlive their node: the head marks the unfinished jobs of
//! a node that left the cluster failed. A job's details, logs, stop and
//! delete are answered by its node, over the cluster's `Ask` call.

use super::jobs::Jobs;
use super::types::{JobInfo, JobStatus};
use crate::cluster::place::Cluster;
use crate::cluster::{Ask, JOBS_PREFIX, JobOp, Membership, NEXT_JOB_KEY};
use crate::events::unix_ms;
use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// How often a node looks whether it has just become head (and then
/// looks for jobs whose node left).
const SWEEP_EVERY: Duration = Duration::from_secs(1);

type Publish = (u64, Option<oneshot::Sender<()>>);

/// This node's side of the cluster's jobs.
pub(crate) struct ClusterJobs {
    membership: Arc<dyn Membership>,
    cluster: Arc<Cluster>,
    publish: mpsc::UnboundedSender<Publish>,
}

fn key(job: u64) -> String {
    format!("{JOBS_PREFIX}{job}")
}

impl ClusterJobs {
    /// The cluster's jobs, as `membership` keeps them, with this node's
    /// `jobs`; the tasks that write its records and (on the head) mark
    /// the jobs of nodes that left run on `handle` while it lives.
    pub fn start(
        membership: Arc<dyn Membership>,
        cluster: Arc<Cluster>,
        jobs: Arc<Jobs>,
        handle: &tokio::runtime::Handle,
    ) -> ClusterJobs {
        let (publish, queue) = mpsc::unbounded_channel();
        handle.spawn(write(queue, membership.clone(), jobs));
        handle.spawn(sweep(
            Arc::downgrade(&membership),
            membership.member_changes(),
        ));
        ClusterJobs {
            membership,
            cluster,
            publish,
        }
    }

    /// A number for a new job: the cluster's next.
    pub async fn next_job(&self) -> anyhow::Result<u64> {
        self.membership.count(NEXT_JOB_KEY.to_string()).await
    }

    /// Writes job `job`'s record as it is now (or removes it, if the job
    /// is forgotten), after every earlier write.
    pub fn publish(&self, job: u64) {
        let _ = self.publish.send((job, None));
    }

    /// [`publish`](Self::publish), resolving once written.
    pub async fn publish_now(&self, job: u64) {
        let (done, written) = oneshot::channel();
        if self.publish.send((job, Some(done))).is_ok() {
            let _ = written.await;
        }
    }

    /// Every job of the cluster, newest first: the records, with this
    /// node's own jobs as it knows them now (`jobs`).
    pub async fn list(&self, jobs: &Jobs) -> anyhow::Result<Vec<JobInfo>> {
        let mut all: BTreeMap<u64, JobInfo> = self
            .membership
            .list(JOBS_PREFIX.to_string())
            .await?
            .into_iter()
            .filter_map(|(k, v)| Some((k.parse().ok()?, serde_json::from_slice(&v).ok()?)))
            .collect();
        for info in jobs.list() {
            if let Some(n) = super::jobs::parse_job_id(&info.job_id) {
                all.insert(n, info);
            }
        }
        Ok(all.into_values().rev().collect())
    }

    /// Job `job`'s record, if the cluster has one.
    pub async fn record(&self, job: u64) -> anyhow::Result<Option<JobInfo>> {
        let v = self.membership.read(key(job)).await?;
        Ok(v.and_then(|v| serde_json::from_slice(&v).ok()))
    }

    /// Removes job `job`'s record (its node is gone).
    pub async fn forget(&self, job: u64) -> anyhow::Result<()> {
        self.membership.delete(key(job)).await
    }
}

/// Writes the records `queue` asks for, in order, until the node's side
/// of the cluster's jobs is dropped.
async fn write(
    mut queue: mpsc::UnboundedReceiver<Publish>,
    m: Arc<dyn Membership>,
    jobs: Arc<Jobs>,
) {
    while let Some((job, done)) = queue.recv().await {
        let written = match jobs.get(job) {
            Some(info) => {
                let record = serde_json::to_vec(&info).expect("a job record serializes");
                m.put(key(job), record).await
            }
            None => m.delete(key(job)).await,
        };
        if let Err(e) = written {
            eprintln!("wray: cannot record job-{job} in the cluster: {e:#}");
        }
        if let Some(done) = done {
            let _ = done.send(());
        }
    }
}

/// On the head: marks failed the unfinished jobs of nodes that left, and
/// dead their actors (`cluster_actors`), whenever the members change,
/// and when this node becomes head (looked at every [`SWEEP_EVERY`]: it
/// may become head after they changed). A sweep that failed is tried
/// again on the next look.
async fn sweep(m: Weak<dyn Membership>, mut members: tokio::sync::watch::Receiver<u64>) {
    let mut due = true;
    let mut led = false;
    loop {
        {
            let Some(m) = m.upgrade() else { return };
            let leads = m.leads();
            if leads && (due || !led) {
                due = match mark_orphans(&*m).await {
                    Ok(()) => false,
                    Err(e) => {
                        eprintln!("wray: cannot check the cluster's jobs and actors: {e:#}");
                        true
                    }
                };
            }
            led = leads;
        }
        match tokio::time::timeout(SWEEP_EVERY, members.changed()).await {
            Ok(Ok(())) => due = true,
            Ok(Err(_)) => return, // The membership is gone.
            Err(_) => {}
        }
    }
}

/// Marks failed every unfinished job whose node is not a member now, and
/// dead every actor of such a node.
async fn mark_orphans(m: &dyn Membership) -> anyhow::Result<()> {
    let live = m.members().await?;
    let records = m.list(JOBS_PREFIX.to_string()).await?;
    for (k, v) in records {
        let Ok(mut info) = serde_json::from_slice::<JobInfo>(&v) else {
            continue;
        };
        if info.status.ended() || live.iter().any(|(id, _)| *id == info.node_id) {
            continue;
        }
        info.status = JobStatus::Failed;
        info.end_time_ms = Some(unix_ms());
        info.message = Some(format!(
            "its node {} left the cluster while the job ran",
            info.node_id
        ));
        let new = serde_json::to_vec(&info).expect("a job record serializes");
        // Unless its node wrote it meanwhile.
        m.replace(format!("{JOBS_PREFIX}{k}"), v, new).await?;
    }
    super::cluster_actors::mark_orphans(m, &live).await
}

/// Where a request about a job of another node ends.
pub(crate) enum Elsewhere {
    /// Its node's answer: the HTTP status and JSON body.
    Answered(u16, Vec<u8>),
    /// Its node left the cluster: its record.
    Orphan(JobInfo),
    /// No such job, or the cluster could not be asked: the HTTP status
    /// and why.
    Failed(u16, String),
}

impl ClusterJobs {
    /// Asks the node of job `n` (not this node's) about it, or, if that
    /// node left, reads its record.
    pub async fn elsewhere(&self, id: &str, n: u64, op: JobOp) -> Elsewhere {
        let info = match self.record(n).await {
            Ok(Some(info)) => info,
            Ok(None) => return Elsewhere::Failed(404, format!("no job {id}")),
            Err(e) => return Elsewhere::Failed(503, format!("{e:#}")),
        };
        if !self.cluster.is_live(&info.node_id).await {
            return Elsewhere::Orphan(info);
        }
        match self
            .cluster
            .ask(&info.node_id, &Ask::Job { job: n, op })
            .await
        {
            Ok((status, body)) => Elsewhere::Answered(status, body),
            Err(e) => Elsewhere::Failed(502, e),
        }
    }
}
