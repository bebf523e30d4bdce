//! [`Builder`]: a runtime's configuration, checked, and the making of its
//! layers (`Env`, `Tasks`, `Actors`), its tokio runtime, engines and spill
//! directory. The upcalls are registered here, once, before any guest runs.

use crate::actor::registry::{Actors, Registry};
use crate::api::runtime::Runtime;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::exec::engine::{Engines, EpochTicker};
use crate::exec::env::{Env, Upcalls};
use crate::exec::module::ModuleCache;
use crate::exec::slots::Slots;
use crate::objects::memo::MemoTable;
use crate::objects::spill_dir::SpillDir;
use crate::objects::store::{ObjectStore, StoreLimits};
use crate::output::{OutputSink, TerminalSink};
use crate::task::table::{TaskTable, Tasks};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::Semaphore;

impl Runtime {
    /// A builder with the default configuration.
    pub fn builder() -> Builder {
        Builder {
            config: Config::default(),
            sink: Arc::new(TerminalSink),
            resources: BTreeMap::new(),
        }
    }
}

/// Configures and builds a [`Runtime`].
///
/// ```no_run
/// let rt = wray_runtime::Runtime::builder().num_cpus(4).build()?;
/// # Ok::<(), wray_runtime::Error>(())
/// ```
#[must_use]
pub struct Builder {
    config: Config,
    sink: Arc<dyn OutputSink>,
    /// Custom resources, in units as given (checked by `build`).
    resources: BTreeMap<String, f64>,
}

impl Builder {
    /// How many guests compute at once (default: the machine's cores).
    pub fn num_cpus(mut self, n: usize) -> Self {
        self.config.num_cpus = n;
        self
    }

    /// How many actors may exist at once (default 2,048). Each slot
    /// reserves address space and a fiber stack, set up when the first
    /// actor is created; creating more waits for a slot to free.
    pub fn actor_slots(mut self, n: u32) -> Self {
        self.config.actor_slots = n;
        self
    }

    /// How many calls can be in progress at once, computing or waiting in
    /// a host call such as `get` (default 1,000). Each has a fiber stack,
    /// set up when the runtime starts. A quarter is kept for nested tasks.
    pub fn call_slots(mut self, n: u32) -> Self {
        self.config.call_slots = n;
        self
    }

    /// Default linear memory limit per instance, in bytes (default and
    /// maximum: 4 GiB).
    pub fn memory_limit(mut self, bytes: u64) -> Self {
        self.config.memory_limit = bytes;
        self
    }

    /// Default wall-clock limit of one task attempt (default: none).
    pub fn task_timeout(mut self, limit: Option<Duration>) -> Self {
        self.config.task_timeout = limit;
        self
    }

    /// Largest object, in bytes (default 2 GiB).
    pub fn max_object_size(mut self, bytes: usize) -> Self {
        self.config.max_object_size = bytes;
        self
    }

    /// Most output one instance may write, in bytes (default 64 MiB).
    pub fn output_limit(mut self, bytes: usize) -> Self {
        self.config.output_limit = bytes;
        self
    }

    /// Default retries after system failures (default 3; -1: no limit).
    pub fn max_retries(mut self, n: i32) -> Self {
        self.config.max_retries = n;
        self
    }

    /// Most wasm stack a guest may use, in bytes (default 512 KiB).
    pub fn max_wasm_stack(mut self, bytes: usize) -> Self {
        self.config.max_wasm_stack = bytes;
        self
    }

    /// Where compiled code is cached (default `$WRAY_CACHE_DIR`, else
    /// `~/.cache/wray`); `None` turns the disk cache off.
    pub fn cache_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.config.cache_dir = dir;
        self
    }

    /// Bytes of objects kept in memory (default: 30% of the machine's
    /// memory). Past it, the least recently used objects nobody is reading
    /// spill to disk and are read back when used.
    pub fn object_store_memory(mut self, bytes: u64) -> Self {
        self.config.object_store_memory = bytes;
        self
    }

    /// Bytes of compiled code the disk cache keeps (default 1 GiB); past
    /// it, the least recently used modules' code is removed.
    pub fn code_cache_size(mut self, bytes: u64) -> Self {
        self.config.code_cache_size = bytes;
        self
    }

    /// How many loaded modules that nothing runs or holds stay in memory
    /// (default 64); past it the least recently used are dropped, and a
    /// later load reads their code back from the disk cache.
    pub fn idle_modules(mut self, n: usize) -> Self {
        self.config.idle_modules = n;
        self
    }

    /// This node's number, carried by every task, actor and object id it
    /// makes (default 0, a node alone; in a cluster, the one the cluster
    /// hands out, so ids are unique across nodes).
    pub fn node_id(mut self, number: u32) -> Self {
        self.config.node_id = number;
        self
    }

    /// Custom resources this node has, by name, in units (Ray's
    /// `resources={"gpu": 1}`; fractions to a thousandth): calls and actors
    /// that ask for them (`.resource("gpu", 1.0)`) run here only while
    /// that much is free, and fail if it never could be. `CPU` and
    /// `memory` are not custom resources.
    pub fn resources(mut self, units: impl IntoIterator<Item = (String, f64)>) -> Self {
        self.resources = units.into_iter().collect();
        self
    }

    /// How many task and actor-call records the state API keeps (default
    /// 100,000); the oldest go first.
    pub fn history(mut self, records: usize) -> Self {
        self.config.history = records;
        self
    }

    /// The directory objects spill into (default: the system's temporary
    /// directory; made if missing). Each runtime spills into a directory
    /// of its own inside it, made on the first spill and removed when the
    /// runtime ends; directories that ended processes left there are
    /// removed at start. `None` turns spilling off, making the memory cap
    /// hard.
    pub fn spill_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.config.spilling = dir.is_some();
        self.config.spill_dir = dir;
        self
    }

    /// How long a put waits for room in the object store before failing
    /// (default 10 s).
    pub fn object_store_wait(mut self, wait: Duration) -> Self {
        self.config.store_wait = wait;
        self
    }

    /// Whether calls of pure functions are memoized (default on): a call
    /// of the same module, function and arguments as one stored before is
    /// answered from the memo table without running (`docs/memo.md`).
    pub fn memo(mut self, on: bool) -> Self {
        self.config.memo = on;
        self
    }

    /// Keep the memo table in this directory (made if missing), so that
    /// later runs find the results of earlier ones (default: in memory
    /// only). Several processes may share one.
    pub fn memo_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.config.memo_dir = dir;
        self
    }

    /// Most bytes of results the memo table keeps (default 256 MiB): on
    /// disk, and in memory (there at most a quarter of the object store's
    /// memory too); the least recently used go first.
    pub fn memo_size(mut self, bytes: u64) -> Self {
        self.config.memo_size = bytes;
        self
    }

    /// Where guest output goes (default: this process's stdout and stderr,
    /// task lines prefixed with the task).
    pub fn output(mut self, sink: Arc<dyn OutputSink>) -> Self {
        self.sink = sink;
        self
    }

    /// Builds the runtime.
    pub fn build(self) -> Result<Runtime> {
        let mut config = self.config;
        config.resources =
            crate::exec::resources::from_units(self.resources).map_err(Error::Config)?;
        if config.num_cpus == 0 {
            return Err(Error::Config("num_cpus must be at least 1".into()));
        }
        if config.actor_slots == 0 || config.call_slots < 2 {
            return Err(Error::Config(
                "actor_slots must be at least 1 and call_slots at least 2".into(),
            ));
        }
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        if let Some(limit) = max_map_count() {
            // Each pooled stack is two mappings, each live instance two more.
            let needed = 4 * u64::from(config.actor_slots)
                + 4 * u64::from(config.call_slots)
                + 4 * workers as u64
                + 4096;
            if needed > limit {
                return Err(Error::Config(format!(
                    "{} actor slots and {} call slots need about {needed} memory mappings, but this \
                     system allows {limit} per process (vm.max_map_count); lower them or raise the limit",
                    config.actor_slots, config.call_slots
                )));
            }
        }
        if config.memory_limit < 64 << 10 {
            return Err(Error::Config(
                "memory_limit must be at least one wasm page (64 KiB)".into(),
            ));
        }
        if config.memory_limit > crate::config::MAX_WASM32_MEMORY {
            return Err(Error::Config(
                "memory_limit can be at most 4 GiB, all a wasm32 guest can address".into(),
            ));
        }
        if config.object_store_memory < 1 << 20 {
            return Err(Error::Config(
                "object_store_memory must be at least 1 MiB".into(),
            ));
        }
        if config.task_timeout == Some(Duration::ZERO) {
            return Err(Error::Config(
                "task_timeout must be longer than 0 (leave it unset for no limit)".into(),
            ));
        }
        let engines = Arc::new(Engines::new(&config, workers as u32, crate::host::linker)?);
        // Spills go to a directory of this process's own, inside the one
        // given or the system's temporary directory (see `spill_dir`).
        let spill = if config.spilling {
            let parent = match &config.spill_dir {
                Some(dir) => {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        Error::Config(format!(
                            "the spill directory {} cannot be made: {e}",
                            dir.display()
                        ))
                    })?;
                    dir.clone()
                }
                None => std::env::temp_dir(),
            };
            Some(Arc::new(SpillDir::new(parent)))
        } else {
            None
        };
        let tokio = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name("wray-worker")
            .enable_all()
            .build()
            .map_err(|e| Error::Config(format!("cannot start worker threads: {e}")))?;
        let objects = Arc::new(ObjectStore::new(StoreLimits {
            memory: config.object_store_memory,
            spill_dir: spill.clone(),
            wait: config.store_wait,
        }));
        let modules = ModuleCache::new(
            config.cache_dir.as_deref(),
            config.idle_modules,
            config.code_cache_size,
        );
        let slots = Slots::new(config.num_cpus, config.call_slots as usize);
        let actor_slots = Arc::new(Semaphore::new(config.actor_slots as usize));
        let env = Arc::new(Env::new(
            config,
            engines.clone(),
            modules,
            objects.clone(),
            slots,
            self.sink,
            tokio.handle().clone(),
        ));
        let memo = if env.config.memo {
            let config = &env.config;
            let in_memory = config.memo_size.min(config.object_store_memory / 4);
            let dir = config.memo_dir.clone().map(|d| (d, config.memo_size));
            let table = MemoTable::new(in_memory, dir, objects.stats_arc()).map_err(|e| {
                Error::Config(format!(
                    "the memo directory {} cannot be made: {e}",
                    config
                        .memo_dir
                        .as_deref()
                        .unwrap_or(Path::new(""))
                        .display()
                ))
            })?;
            Some(table)
        } else {
            None
        };
        let tasks = Arc::new(Tasks {
            env: env.clone(),
            table: TaskTable::default(),
            memo,
        });
        let actors = Arc::new(Actors {
            env: env.clone(),
            tasks,
            registry: Registry::default(),
            slots: actor_slots,
        });
        env.set_upcalls(Arc::downgrade(&actors) as Weak<dyn Upcalls>);
        tokio.spawn(spiller(Arc::downgrade(&objects)));
        if let Some(dir) = &spill {
            // What processes that died left behind: on a thread of its own,
            // which nothing waits for (a sweep cut short by this process's
            // end is finished by the next).
            let parent = dir.parent().to_path_buf();
            let _ = std::thread::Builder::new()
                .name("wray-spill-sweep".into())
                .spawn(move || crate::objects::spill_dir::sweep(&parent));
        }
        Ok(Runtime {
            ticker: EpochTicker::start(engines),
            tokio: Some(tokio),
            spill,
            actors,
        })
    }
}

/// Spills objects whenever a caller waits for room or reads spilled bytes
/// back past the cap. (The runtime's shutdown ends it.)
async fn spiller(store: Weak<ObjectStore>) {
    while let Some(s) = store.upgrade() {
        s.spill_wanted().await;
        let _ = tokio::task::spawn_blocking(move || s.spill_round()).await;
    }
}

/// The kernel's limit on memory mappings per process, where it can be read.
fn max_map_count() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()?
        .trim()
        .parse()
        .ok()
}
