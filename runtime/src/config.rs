//! Runtime configuration, set through [`Builder`](crate::Builder).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Largest linear memory a wasm32 guest can have.
pub(crate) const MAX_WASM32_MEMORY: u64 = 4 << 30;

/// The settings of one runtime. Defaults suit a laptop: every core, 4 GiB of
/// linear memory per instance, no time limit, Ray's retry policy.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    /// CPU slots: how many guests compute at once.
    pub num_cpus: usize,
    /// How many calls (tasks and drivers) can be in progress at once,
    /// computing or waiting inside a host call such as `get`: the task
    /// engine's instances and fiber stacks.
    pub call_slots: u32,
    /// How many actors can exist at once: the actor engine's instances.
    pub actor_slots: u32,
    /// Default linear memory limit of an instance, in bytes.
    pub memory_limit: u64,
    /// Default wall-clock limit of one task attempt.
    pub task_timeout: Option<Duration>,
    /// Largest object, in bytes.
    pub max_object_size: usize,
    /// Most output (stdout plus stderr) one instance may write, in bytes.
    pub output_limit: usize,
    /// Default retries after system failures.
    pub max_retries: i32,
    /// Most wasm stack a guest may use, in bytes.
    pub max_wasm_stack: usize,
    /// Where compiled code is cached; `None` disables the disk cache.
    pub cache_dir: Option<PathBuf>,
    /// Bytes of compiled code the disk cache keeps (least recently used
    /// files go first).
    pub code_cache_size: u64,
    /// Loaded modules that nothing runs, kept in memory for reuse.
    pub idle_modules: usize,
    /// Bytes of objects the store keeps in memory before spilling.
    pub object_store_memory: u64,
    /// The directory this runtime's own spill directory goes in; `None`:
    /// the system's temporary directory.
    pub spill_dir: Option<PathBuf>,
    /// Whether objects spill at all (if not, the memory cap is hard).
    pub spilling: bool,
    /// How long a put waits for room before failing.
    pub store_wait: Duration,
    /// This node's id, the prefix of every task and actor id it creates.
    pub node_id: u32,
    /// Task and actor-call records kept for the state API.
    pub history: usize,
    /// Whether pure calls are memoized (`docs/memo.md`).
    pub memo: bool,
    /// Where the memo table is kept across runs; `None`: in memory only.
    pub memo_dir: Option<PathBuf>,
    /// Bytes of results the memo table keeps (on disk; in memory, at most
    /// a quarter of the object store's memory too).
    pub memo_size: u64,
    /// Custom resources this node has, in thousandths by name
    /// (`exec::resources`).
    pub resources: BTreeMap<String, u64>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            num_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            call_slots: 1_000,
            actor_slots: 2_048,
            memory_limit: MAX_WASM32_MEMORY,
            task_timeout: None,
            max_object_size: 2 << 30,
            output_limit: 64 << 20,
            max_retries: 3,
            max_wasm_stack: 512 << 10,
            cache_dir: default_cache_dir(),
            code_cache_size: 1 << 30,
            idle_modules: 64,
            object_store_memory: default_object_store_memory(),
            spill_dir: None,
            spilling: true,
            store_wait: Duration::from_secs(10),
            node_id: 0,
            history: 100_000,
            memo: true,
            memo_dir: None,
            memo_size: 256 << 20,
            resources: BTreeMap::new(),
        }
    }
}

impl Config {
    /// How deep tasks may nest (a driver's tasks are at depth 1): half the
    /// call slots. Each parent waiting on its child holds a call slot, so a
    /// deeper chain could take every slot and wait for ever; this way one
    /// chain leaves half of them to the rest of the node.
    pub fn max_call_depth(&self) -> u32 {
        (self.call_slots / 2).max(1)
    }
}

/// 30% of the machine's memory, as Ray's object store defaults to.
fn default_object_store_memory() -> u64 {
    total_memory().map_or(4 << 30, |bytes| bytes * 3 / 10)
}

/// Resident memory of this process (0 where `/proc` does not tell it).
#[cfg_attr(not(feature = "node"), allow(dead_code))]
pub(crate) fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// The machine's memory in bytes, where `/proc/meminfo` tells it.
pub(crate) fn total_memory() -> Option<u64> {
    let m = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib = m
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .split_whitespace()
        .next()?
        .parse::<u64>()
        .ok()?;
    Some(kib * 1024)
}

/// `$WRAY_CACHE_DIR`, else `$XDG_CACHE_HOME/wray`, else `~/.cache/wray`.
pub(crate) fn default_cache_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("WRAY_CACHE_DIR") {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return Some(PathBuf::from(d).join("wray"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache").join("wray"))
}
