//! The node's HTTP API as types: every request and response body of
//! `docs/http-api.md`, defined once. The node serialises them to answer;
//! the `wray` CLI deserialises them to read its answers.
//!
//! The JSON is the API's contract (the dashboard's JavaScript reads it
//! too): field names, `null` for an absent optional value (never a missing
//! field), and the upper-case state names are part of it. Ids are strings
//! (`"17"`, `"job-3"`) except in the timeline, whose trace format carries
//! task ids as numbers.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub use crate::events::{STATES, TaskKind, TaskState};

/// The body of every refused request (4xx and 5xx).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiError {
    /// What went wrong, for a person.
    pub error: String,
}

// ---- jobs -------------------------------------------------------------------

/// Where a job is in its life (Ray's names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    /// Submitted, driver not started.
    Pending,
    /// The driver runs.
    Running,
    /// The driver returned 0.
    Succeeded,
    /// The driver failed or returned another status.
    Failed,
    /// Stopped by a user.
    Stopped,
}

impl JobStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [JobStatus; 5] = [
        JobStatus::Pending,
        JobStatus::Running,
        JobStatus::Succeeded,
        JobStatus::Failed,
        JobStatus::Stopped,
    ];

    /// The name the APIs use.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "PENDING",
            JobStatus::Running => "RUNNING",
            JobStatus::Succeeded => "SUCCEEDED",
            JobStatus::Failed => "FAILED",
            JobStatus::Stopped => "STOPPED",
        }
    }

    /// Whether the job has ended.
    pub fn ended(self) -> bool {
        matches!(
            self,
            JobStatus::Succeeded | JobStatus::Failed | JobStatus::Stopped
        )
    }
}

/// A job as `GET /api/jobs/` lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobInfo {
    /// `job-<n>`.
    pub job_id: String,
    /// The same as `job_id` (Ray has both).
    pub submission_id: String,
    /// A label: the module's name unless the submitter gave one.
    pub name: String,
    /// The module's digest.
    pub module: String,
    /// The driver's arguments.
    pub args: Vec<String>,
    /// Where it is.
    pub status: JobStatus,
    /// When it was submitted, in milliseconds since the Unix epoch.
    pub start_time_ms: u64,
    /// When it ended.
    pub end_time_ms: Option<u64>,
    /// The driver's exit status.
    pub exit_code: Option<i32>,
    /// Why it failed (the error and its causes) or was stopped.
    pub message: Option<String>,
    /// The node its driver runs on.
    #[serde(default)]
    pub node_id: String,
}

/// `GET /api/jobs/{id}`: the job and its calls by state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobDetail {
    /// The job.
    #[serde(flatten)]
    pub info: JobInfo,
    /// Its tasks and actor calls in each state.
    pub tasks: StateCounts,
}

/// The JSON body of `POST /api/jobs/`: a module uploaded before, by
/// digest. (A module can also be the body itself, with its arguments as
/// `arg` query parameters and its label as `name`.)
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobRequest {
    /// The module's digest: 64 hex digits.
    pub module: String,
    /// The driver's arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// A label for the job (default: the module's name).
    #[serde(default)]
    pub name: Option<String>,
    /// Other modules the program calls by name: name to digest (each
    /// uploaded first, `POST /api/modules`).
    #[serde(default)]
    pub links: std::collections::BTreeMap<String, String>,
}

/// The answer to `POST /api/jobs/`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobSubmitted {
    /// The new job's id, `job-<n>`.
    pub job_id: String,
    /// The same as `job_id` (Ray has both).
    pub submission_id: String,
    /// The module's digest.
    pub module: String,
}

/// The answer to `POST /api/modules`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModuleUploaded {
    /// The module's digest, by which a job names it.
    pub digest: String,
    /// The module's name.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
}

/// `GET /api/jobs/{id}/logs`: a job's output from an offset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobLogs {
    /// The text from the offset asked for.
    pub logs: String,
    /// The offset to ask for next.
    pub offset: u64,
    /// Whether the job has ended (read once more from `offset` for output
    /// written just before the end).
    pub done: bool,
}

/// The answer to `POST /api/jobs/{id}/stop`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobStopped {
    /// False if the job had already ended.
    pub stopped: bool,
}

/// The answer to `DELETE /api/jobs/{id}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobDeleted {
    /// Always true (a refusal is an [`ApiError`]).
    pub deleted: bool,
}

// ---- tasks ------------------------------------------------------------------

/// Calls in each state, under the states' API names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub struct StateCounts {
    /// Waiting for arguments or a CPU slot.
    pub pending: u64,
    /// Running an attempt.
    pub running: u64,
    /// Done.
    pub finished: u64,
    /// Failed for good.
    pub failed: u64,
    /// Cancelled.
    pub cancelled: u64,
    /// Answered from the memo table without running.
    #[serde(default)]
    pub memoized: u64,
}

impl StateCounts {
    /// Counts in [`TaskState::ALL`] order.
    pub fn from_array(c: [u64; STATES]) -> StateCounts {
        let [pending, running, finished, failed, cancelled, memoized] = c;
        StateCounts {
            pending,
            running,
            finished,
            failed,
            cancelled,
            memoized,
        }
    }

    /// The counts in [`TaskState::ALL`] order.
    pub fn to_array(self) -> [u64; STATES] {
        [
            self.pending,
            self.running,
            self.finished,
            self.failed,
            self.cancelled,
            self.memoized,
        ]
    }
}

/// A failure: of a task (`error`), or an actor's death (`death_cause`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorInfo {
    /// The error kind's name (`panic`, `trap`, `timeout`, `actor died`...).
    pub kind: String,
    /// The function that failed.
    pub function: String,
    /// What it said.
    pub message: String,
    /// Its causes, outermost first: `<kind> in <function>: <message>`.
    pub chain: Vec<String>,
}

/// One task or actor call in `GET /api/v0/tasks`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskEntry {
    /// Its id.
    pub task_id: String,
    /// The function, or `Class.method`.
    pub function: String,
    /// A task or an actor method.
    pub kind: TaskKind,
    /// Its job (`job-3`; `host` for the host's own work).
    pub job_id: String,
    /// The task that submitted it, if a task did.
    pub parent_id: Option<String>,
    /// The actor it was called on.
    pub actor_id: Option<String>,
    /// Where it is.
    pub state: TaskState,
    /// Attempts started.
    pub attempts: u32,
    /// When it was submitted (milliseconds since the Unix epoch).
    pub submitted_ms: u64,
    /// When its last attempt started.
    pub started_ms: Option<u64>,
    /// When it ended.
    pub ended_ms: Option<u64>,
    /// How long its last attempt ran (so far, if it runs), in milliseconds.
    pub duration_ms: Option<f64>,
    /// The worker thread of its last attempt.
    pub worker: u32,
    /// The other node of the cluster its last attempt ran on (absent:
    /// the node listing it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    /// Why it failed.
    pub error: Option<ErrorInfo>,
    /// Why its last attempt that was retried failed (kept when a later
    /// attempt succeeds).
    #[serde(default)]
    pub retried_error: Option<ErrorInfo>,
    /// For a memoized call: `hit` (answered from the memo table), `stored`,
    /// or `not stored: ...` saying why.
    #[serde(default)]
    pub memo: Option<String>,
}

/// `GET /api/v0/tasks`: a page of the calls matching the filters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskList {
    /// How many matched.
    pub total: u64,
    /// The page, newest first.
    pub tasks: Vec<TaskEntry>,
    /// With `scope=cluster`, the nodes that did not answer, and why:
    /// their calls are missing.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unanswered: BTreeMap<String, String>,
}

/// One function's calls in the task summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FunctionSummary {
    /// The function, or `Class.method`.
    pub function: String,
    /// Its calls in each state.
    #[serde(flatten)]
    pub counts: StateCounts,
    /// The mean run time of its finished calls, in milliseconds.
    pub mean_ms: Option<f64>,
}

/// `GET /api/v0/tasks/summary`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskSummary {
    /// Calls that matched the filters.
    pub total: u64,
    /// By function, in name order.
    pub functions: Vec<FunctionSummary>,
    /// With `scope=cluster`, the nodes that did not answer, and why:
    /// their calls are not counted.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unanswered: BTreeMap<String, String>,
}

// ---- actors -----------------------------------------------------------------

/// Where an actor is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ActorStatus {
    /// Running its constructor for the first time.
    Starting,
    /// Serving calls.
    Alive,
    /// Running its constructor again, after a trap or a kill.
    Restarting,
    /// Gone for good.
    Dead,
}

impl ActorStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [ActorStatus; 4] = [
        ActorStatus::Starting,
        ActorStatus::Alive,
        ActorStatus::Restarting,
        ActorStatus::Dead,
    ];

    /// The name the APIs use.
    pub fn as_str(self) -> &'static str {
        match self {
            ActorStatus::Starting => "STARTING",
            ActorStatus::Alive => "ALIVE",
            ActorStatus::Restarting => "RESTARTING",
            ActorStatus::Dead => "DEAD",
        }
    }
}

/// One actor in `GET /api/v0/actors`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActorEntry {
    /// Its id.
    pub actor_id: String,
    /// Its class.
    pub class: String,
    /// Its name, if it has one.
    pub name: Option<String>,
    /// The job that made it.
    pub job_id: String,
    /// Where it is.
    pub state: ActorStatus,
    /// How many times it restarted.
    pub restarts: u32,
    /// Method calls it served.
    pub calls: u64,
    /// Why it died.
    pub death_cause: Option<ErrorInfo>,
    /// The node it lives on.
    #[serde(default)]
    pub node_id: String,
}

/// `GET /api/v0/actors`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActorList {
    /// How many matched.
    pub total: u64,
    /// The page, newest first.
    pub actors: Vec<ActorEntry>,
    /// In a cluster, the nodes that did not answer, and why: their actors
    /// are listed as their records last said (`records`: the records could
    /// not be read).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unanswered: BTreeMap<String, String>,
}

/// Actors in each state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub struct ActorCounts {
    /// See [`ActorStatus::Starting`].
    pub starting: u64,
    /// See [`ActorStatus::Alive`].
    pub alive: u64,
    /// See [`ActorStatus::Restarting`].
    pub restarting: u64,
    /// See [`ActorStatus::Dead`].
    pub dead: u64,
}

/// The answer to `POST /api/v0/actors/{id}/kill`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActorKilled {
    /// False if it was already dead.
    pub killed: bool,
}

// ---- objects ----------------------------------------------------------------

/// Where an object's value is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ObjectPlace {
    /// In memory.
    Memory,
    /// In a spill file.
    Spilled,
    /// Spilled and then lost; made again by its lineage when read.
    Lost,
    /// Not made yet.
    Pending,
    /// Its task failed.
    Failed,
}

impl ObjectPlace {
    /// The name the APIs use.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectPlace::Memory => "MEMORY",
            ObjectPlace::Spilled => "SPILLED",
            ObjectPlace::Lost => "LOST",
            ObjectPlace::Pending => "PENDING",
            ObjectPlace::Failed => "FAILED",
        }
    }
}

impl From<crate::Place> for ObjectPlace {
    fn from(p: crate::Place) -> ObjectPlace {
        match p {
            crate::Place::Memory => ObjectPlace::Memory,
            crate::Place::Spilled => ObjectPlace::Spilled,
            crate::Place::Lost => ObjectPlace::Lost,
            crate::Place::Pending => ObjectPlace::Pending,
            crate::Place::Failed => ObjectPlace::Failed,
        }
    }
}

/// One object in `GET /api/v0/objects`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObjectEntry {
    /// Its id (hex).
    pub object_id: String,
    /// Its size in bytes, once made.
    pub size: Option<u64>,
    /// Holders of a reference to it.
    pub refs: u64,
    /// Where its value is.
    #[serde(rename = "where")]
    pub place: ObjectPlace,
    /// How its bytes are encoded, once made: `rkyv` (written by Rust),
    /// `cbor` (a cross-language value) or `raw` (unknown).
    #[serde(default)]
    pub encoding: Option<String>,
    /// The task that makes it, for a task's result.
    pub task_id: Option<String>,
}

/// `GET /api/v0/objects`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObjectList {
    /// How many objects there are.
    pub total: u64,
    /// Their bytes together.
    pub bytes: u64,
    /// The page, largest first.
    pub objects: Vec<ObjectEntry>,
}

// ---- the node ---------------------------------------------------------------

/// A node, as `GET /api/v0/nodes` lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeEntry {
    /// Its id.
    pub node_id: String,
    /// The address it serves on.
    pub address: String,
    /// `ALIVE` (a node that answers is).
    pub state: String,
    /// wray's version.
    pub version: String,
    /// Its process id.
    pub pid: u32,
    /// CPU slots.
    pub cpus: u64,
    /// The machine's memory.
    pub memory_bytes: u64,
    /// When it started (milliseconds since the Unix epoch).
    pub started_ms: u64,
    /// Whether it is its cluster's head (a node alone is its own).
    #[serde(default)]
    pub is_head: bool,
    /// In a cluster, the address other nodes call it at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpc_address: Option<String>,
    /// Its custom resources (`wray start --resources`), in units by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resources: BTreeMap<String, f64>,
    /// What it is busy with now (in `GET /api/v0/nodes`; absent for a
    /// node that did not answer in time, and in its cluster record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<crate::cluster::place::NodeLoad>,
    /// In a cluster, whether it talks to the other nodes over TLS.
    #[serde(default)]
    pub tls: bool,
}

/// A custom resource in `GET /api/v0/status`, in units.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResourceUse {
    /// What the node has.
    pub total: f64,
    /// Free now (not held by a call or an actor).
    pub available: f64,
}

/// CPU slots in `GET /api/v0/status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuUse {
    /// CPU slots.
    pub total: u64,
    /// Held now.
    pub in_use: u64,
}

/// Memory in `GET /api/v0/status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryUse {
    /// Resident memory of the node process.
    pub rss_bytes: u64,
    /// The machine's memory.
    pub total_bytes: u64,
}

/// The object store in `GET /api/v0/status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreUse {
    /// Objects in the store.
    pub objects: u64,
    /// Bytes of objects in memory.
    pub bytes: u64,
    /// The store's memory cap.
    pub capacity: u64,
    /// Bytes of objects spilled to disk.
    pub spilled_bytes: u64,
}

/// Calls by state, and the recent rate, in `GET /api/v0/status`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskCounts {
    /// Calls in each state: now, for pending and running; since the
    /// start, for the others.
    #[serde(flatten)]
    pub counts: StateCounts,
    /// Calls ended per second, lately.
    pub per_second: f64,
}

/// Jobs in each status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub struct JobCounts {
    /// See [`JobStatus::Pending`].
    pub pending: u64,
    /// See [`JobStatus::Running`].
    pub running: u64,
    /// See [`JobStatus::Succeeded`].
    pub succeeded: u64,
    /// See [`JobStatus::Failed`].
    pub failed: u64,
    /// See [`JobStatus::Stopped`].
    pub stopped: u64,
}

impl JobCounts {
    /// Counts one more job in `status`.
    pub fn add(&mut self, status: JobStatus) {
        *match status {
            JobStatus::Pending => &mut self.pending,
            JobStatus::Running => &mut self.running,
            JobStatus::Succeeded => &mut self.succeeded,
            JobStatus::Failed => &mut self.failed,
            JobStatus::Stopped => &mut self.stopped,
        } += 1;
    }

    /// Jobs in `status`.
    pub fn get(&self, status: JobStatus) -> u64 {
        match status {
            JobStatus::Pending => self.pending,
            JobStatus::Running => self.running,
            JobStatus::Succeeded => self.succeeded,
            JobStatus::Failed => self.failed,
            JobStatus::Stopped => self.stopped,
        }
    }
}

/// Free slots in `GET /api/v0/status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotUse {
    /// Call slots free.
    pub call_free: u64,
    /// Actor slots free.
    pub actor_free: u64,
}

/// Module uploads in `GET /api/v0/status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadUse {
    /// Bodies being read.
    pub reading: u64,
    /// Uploads waiting for their turn.
    pub waiting: u64,
}

/// Kept logs in `GET /api/v0/status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogUse {
    /// Bytes of all jobs' logs kept.
    pub bytes: u64,
}

/// `GET /api/v0/status`: resources and load.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// The node.
    pub node: NodeEntry,
    /// CPU slots.
    pub cpus: CpuUse,
    /// Memory.
    pub memory: MemoryUse,
    /// The object store.
    pub object_store: StoreUse,
    /// Calls by state.
    pub tasks: TaskCounts,
    /// Actors by state.
    pub actors: ActorCounts,
    /// Jobs by status (in a cluster, every node's).
    pub jobs: JobCounts,
    /// Free slots.
    pub slots: SlotUse,
    /// Module uploads.
    pub uploads: UploadUse,
    /// Kept logs.
    pub logs: LogUse,
    /// In a cluster: this node's view of the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterUse>,
    /// Custom resources by name: what the node has and what is free.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resources: BTreeMap<String, ResourceUse>,
}

pub use crate::cluster::place::ClusterUse;

/// `GET /api/v0/config`: the node's runtime configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// CPU slots.
    pub num_cpus: u64,
    /// Calls in progress at once (fiber stacks).
    pub call_slots: u32,
    /// Live actors at once.
    pub actor_slots: u32,
    /// A guest's memory limit, in bytes.
    pub memory_limit: u64,
    /// A task's time limit.
    pub task_timeout_ms: Option<u64>,
    /// The largest object, in bytes.
    pub max_object_size: u64,
    /// Output an instance may write, in bytes.
    pub output_limit: u64,
    /// Retries of system failures by default.
    pub max_retries: i32,
    /// A guest's wasm stack, in bytes.
    pub max_wasm_stack: u64,
    /// The object store's memory cap.
    pub object_store_memory: u64,
    /// Whether objects spill to disk past the cap.
    pub spilling: bool,
    /// How long a put waits for room.
    pub object_store_wait_ms: u64,
    /// Task records kept.
    pub history: u64,
    /// The compiled-code cache.
    pub cache_dir: Option<String>,
    /// The address the node serves on.
    pub address: String,
    /// Whether requests need a token.
    pub token_required: bool,
}

// ---- logs -------------------------------------------------------------------

/// Which stream a line was written to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// One line of guest output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    /// When it was written, in milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// Who wrote it (`say_hello task=12`, `Counter actor=3`, a driver's
    /// module name).
    pub source: String,
    /// The job it belongs to (`job-3`; `host` for the host's own work).
    pub job_id: String,
    /// The task that wrote it.
    pub task_id: Option<String>,
    /// The actor that wrote it.
    pub actor_id: Option<String>,
    /// Where it was written.
    pub stream: LogStream,
    /// The text, without its line end.
    pub text: String,
}

/// `GET /api/v0/logs`: the last lines matching the filters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogList {
    /// How many matched.
    pub total: u64,
    /// The last of them, oldest first.
    pub lines: Vec<LogLine>,
}

// ---- the timeline -----------------------------------------------------------

/// One event of the Chrome trace `GET /api/v0/timeline` returns: a task
/// attempt on its worker's row (`X`), or a memo hit (`i`, category `memo`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TraceEvent {
    /// The function.
    pub name: String,
    /// `task` or `actor`.
    pub cat: String,
    /// The event's phase: `X`, complete; `i`, instant (a memo hit).
    pub ph: String,
    /// When the attempt started, in microseconds since the node started.
    pub ts: u64,
    /// How long it ran (so far), in microseconds.
    pub dur: u64,
    /// The process's row: 0.
    pub pid: u32,
    /// The worker thread's row.
    pub tid: u32,
    /// What the trace viewer shows of the event.
    pub args: TraceArgs,
}

/// A [`TraceEvent`]'s details.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TraceArgs {
    /// The task's id, as a number.
    pub task_id: u64,
    /// Its state.
    pub state: TaskState,
    /// Its job.
    pub job: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flattened_counts_and_renamed_fields_keep_their_wire_names() {
        let s = FunctionSummary {
            function: "f".into(),
            counts: StateCounts::from_array([1, 2, 3, 4, 5, 6]),
            mean_ms: None,
        };
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(
            v,
            json!({"function": "f", "PENDING": 1, "RUNNING": 2, "FINISHED": 3,
                   "FAILED": 4, "CANCELLED": 5, "MEMOIZED": 6, "mean_ms": null})
        );
        assert_eq!(serde_json::from_value::<FunctionSummary>(v).unwrap(), s);
        let o = ObjectEntry {
            object_id: "ab".into(),
            size: None,
            refs: 1,
            place: ObjectPlace::Spilled,
            encoding: Some("cbor".into()),
            task_id: None,
        };
        let v = serde_json::to_value(&o).unwrap();
        assert_eq!(v["where"], "SPILLED");
        assert_eq!(v["size"], serde_json::Value::Null, "null, not missing");
        let l = LogStream::Stderr;
        assert_eq!(serde_json::to_value(l).unwrap(), "stderr");
    }
}

// ---- calls and values ------------------------------------------------------------

/// `POST /api/tasks`: a call of a remote function of an uploaded module,
/// with cross-language values in their JSON form (`docs/abi.md`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskCall {
    /// The module's digest, as `POST /api/modules` answered it.
    pub module: String,
    /// The function's name.
    pub function: String,
    /// Its arguments, one per parameter.
    #[serde(default)]
    pub args: Vec<serde_json::Value>,
}

/// The answer of `POST /api/tasks`, `POST /api/objects` and
/// `GET /api/objects/{id}`: an object, and its value when it is asked for
/// and ready.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObjectAnswer {
    /// The object's id (64 hex digits).
    pub object_id: String,
    /// Its value in JSON form, when ready and asked for (`?wait=`, or a
    /// `GET`); `null` otherwise.
    pub result: Option<serde_json::Value>,
    /// Whether it is not ready yet (the node holds it for a later `GET`).
    pub pending: bool,
}

/// The answer when the call failed (status 422): the object and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CallFailed {
    /// The failure, for a person.
    pub error: String,
    /// The object that holds the failure.
    pub object_id: String,
    /// The failure as a record.
    pub failure: ErrorInfo,
}

/// `POST /api/actors`: a new actor of a type of an uploaded module.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActorCall {
    /// The module's digest.
    pub module: String,
    /// The actor type.
    pub class: String,
    /// The constructor's arguments.
    #[serde(default)]
    pub args: Vec<serde_json::Value>,
    /// A name to find it by (`GET /api/v0/actors?name=`).
    #[serde(default)]
    pub name: Option<String>,
}

/// The answer of `POST /api/actors`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActorCreated {
    /// The new actor's id (as the state API lists it).
    pub actor_id: String,
}

/// `POST /api/actors/{id}/methods/{name}`: a method call's arguments.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MethodCall {
    /// The method's arguments.
    #[serde(default)]
    pub args: Vec<serde_json::Value>,
}

/// `POST /api/objects/values`, `/wait` and `/release`: objects by id.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ObjectIds {
    /// The objects (64 hex digits each).
    pub ids: Vec<String>,
    /// How long to wait, in seconds (`values`, `wait`; default 0).
    #[serde(default)]
    pub timeout: Option<f64>,
    /// How many must be ready (`wait`; default all).
    #[serde(default)]
    pub num_returns: Option<usize>,
}

/// One object of `POST /api/objects/values`: its value, its failure, or
/// neither while it is pending.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObjectValue {
    /// The object's id.
    pub object_id: String,
    /// Its value in JSON form, when ready.
    pub result: Option<serde_json::Value>,
    /// Why it has none, when it failed (or is not a cross-language value,
    /// or is unknown: then `kind` says so).
    pub failure: Option<ErrorInfo>,
    /// Whether it is not ready yet.
    pub pending: bool,
}

/// The answer of `POST /api/objects/values`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObjectValues {
    /// One per id asked for, in order.
    pub objects: Vec<ObjectValue>,
}

/// The answer of `POST /api/objects/wait`: the ready (or failed) ones, in
/// the order asked, at most `num_returns`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObjectsReady {
    /// Their ids.
    pub ready: Vec<String>,
}

/// The answer of `POST /api/objects/release`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObjectsReleased {
    /// How many the node held and let go of.
    pub released: usize,
}
