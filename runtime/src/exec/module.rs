//! Modules: loaded once per digest, compiled once per engine, validated
//! before anything runs.
//!
//! A module's id is the blake3 digest of its bytes. Loading looks the digest
//! up in memory, then in the code cache on disk (`<cache>/code/<engine
//! key>/<digest>.cwasm`, written by this host only), and compiles only when
//! both miss. A module is then checked: every import must be a wray host
//! function or a WASI preview-1 function, every `wray:` export must be a
//! function `() -> i32`, and a module calling the host must export its
//! memory. Whatever fails is reported as [`Error::InvalidModule`] before any
//! guest code runs.

use crate::error::{Error, Result};
use crate::exec::engine::{Engines, Linked, Wasm};
use crate::exec::manifest::Signature;
use dashmap::DashMap;
use rustc_hash::{FxBuildHasher, FxHashMap};
use std::any::Any;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use wasmtime::{Engine, ExternType, InstancePre, ModuleExport, ValType};
use wray_abi::{HOST_MODULE, ObjectId, export};

/// A loaded, validated module. Cheap to clone.
#[derive(Clone)]
pub struct Module(Arc<Inner>);

impl Module {
    /// Whether only the cache holds this module (see [`ModuleCache`]).
    fn is_idle(&self) -> bool {
        Arc::strong_count(&self.0) == 1
    }
}

struct Inner {
    id: ObjectId,
    name: String,
    /// The code in the task engine.
    code: Code,
    /// The tasks (`wray:task/<name>`), by name, with the name shared, and
    /// whether the manifest declares each pure.
    tasks: FxHashMap<Arc<str>, (ModuleExport, Option<Arc<Signature>>)>,
    /// The actor methods (`wray:actor/<Type>/<method>`), by type, then
    /// method: resolved once, so a call allocates no names.
    methods: FxHashMap<Box<str>, FxHashMap<Box<str>, Arc<Method>>>,
    has_start: bool,
    /// Whether it imports `task_arg_map`: then its large arguments are left
    /// out of the argument buffer, for it to map.
    maps_args: bool,
    /// The module's bytes, to compile for the actor engine.
    bytes: Arc<[u8]>,
    /// The code in the actor engine, once needed.
    actor_code: OnceLock<Result<Code, String>>,
    /// What its manifest declares (empty without one).
    signatures: Vec<Signature>,
    /// The indices of the signatures of each name (a task and a method
    /// may share one).
    signature_index: FxHashMap<Box<str>, Vec<usize>>,
}

/// An actor method a module exports.
#[derive(Debug)]
pub(crate) struct Method {
    /// `Type.method`: how records and errors name its calls.
    pub label: Arc<str>,
    /// The full export name, `wray:actor/<Type>/<method>`.
    pub export: String,
    /// What the module's manifest declares of it.
    pub signature: Option<Signature>,
}

/// A module's code ready to instantiate in one engine.
pub(crate) struct Code {
    /// wasmtime's `InstancePre<T>` for the store data `T` of the linker it
    /// was made with (see [`Linked`]).
    pre: Box<dyn Any + Send + Sync>,
    module: wasmtime::Module,
    /// Every `wray:` function export, by full export name.
    exports: FxHashMap<String, ModuleExport>,
    memory: Option<ModuleExport>,
    /// The WASI reactor's `_initialize`, run once per instance.
    initialize: Option<ModuleExport>,
}

impl Code {
    fn new(module: &wasmtime::Module, linker: &dyn Linked) -> wasmtime::Result<Code> {
        let exports = module
            .exports()
            .filter(|e| {
                e.name().starts_with(export::PREFIX) && matches!(e.ty(), ExternType::Func(_))
            })
            .filter_map(|e| Some((e.name().to_string(), module.get_export_index(e.name())?)))
            .collect();
        let memory = module.get_export_index(export::MEMORY);
        let initialize = module.get_export_index(export::WASI_INITIALIZE);
        Ok(Code {
            pre: linker.instantiate_pre(module)?,
            module: module.clone(),
            exports,
            memory,
            initialize,
        })
    }

    /// The prepared instantiation, for stores of `T`: the store data of
    /// the linker the code was made with (one type per runtime).
    pub fn pre<T: 'static>(&self) -> &InstancePre<T> {
        self.pre
            .downcast_ref()
            .expect("code is instantiated in stores of its linker's data type")
    }

    /// The export named `name`, if it is a valid `wray:` function.
    pub fn export(&self, name: &str) -> Option<&ModuleExport> {
        self.exports.get(name)
    }

    pub fn memory_export(&self) -> Option<&ModuleExport> {
        self.memory.as_ref()
    }

    /// The reactor initializer, `_initialize`, if the module has one.
    pub fn initialize_export(&self) -> Option<&ModuleExport> {
        self.initialize.as_ref()
    }
}

impl Module {
    /// The module's bytes (what another node fetches to run it).
    #[cfg(feature = "node")]
    pub(crate) fn bytes(&self) -> &Arc<[u8]> {
        &self.0.bytes
    }

    /// The blake3 digest of the module's bytes.
    pub fn id(&self) -> ObjectId {
        self.0.id
    }

    /// The name given on load (usually the file name without `.wasm`).
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The remote functions (tasks) the module exports.
    pub fn tasks(&self) -> impl Iterator<Item = &str> {
        self.0.tasks.keys().map(|k| &**k)
    }

    /// The task named `name`: its shared name and its export.
    pub(crate) fn task(&self, name: &str) -> Option<(Arc<str>, ModuleExport)> {
        self.task_entry(name).map(|(k, e, _)| (k, e))
    }

    /// The task named `name`: its shared name, its export, and what the
    /// manifest declares of it (arity, types, encoding, purity).
    pub(crate) fn task_entry(
        &self,
        name: &str,
    ) -> Option<(Arc<str>, ModuleExport, Option<Arc<Signature>>)> {
        self.0
            .tasks
            .get_key_value(name)
            .map(|(k, (e, sig))| (k.clone(), *e, sig.clone()))
    }

    /// Method `method` of actor type `ty`.
    pub(crate) fn method(&self, ty: &str, method: &str) -> Option<&Arc<Method>> {
        self.0.methods.get(ty)?.get(method)
    }

    /// The actor types the module exports, each with its methods (the
    /// constructor, `new`, left out), sorted by name.
    pub fn actor_types(&self) -> Vec<(&str, Vec<&str>)> {
        let mut types: Vec<(&str, Vec<&str>)> = self
            .0
            .methods
            .iter()
            .map(|(ty, methods)| {
                let mut names: Vec<&str> = methods
                    .keys()
                    .map(|m| &**m)
                    .filter(|m| *m != export::ACTOR_CONSTRUCTOR)
                    .collect();
                names.sort_unstable();
                (&**ty, names)
            })
            .collect();
        types.sort_unstable();
        types
    }

    /// What the module's manifest declares of its functions (empty for a
    /// module without one: untyped).
    pub fn signatures(&self) -> &[Signature] {
        &self.0.signatures
    }

    /// The declared signature of task `name`, if the manifest has one.
    pub fn task_signature(&self, name: &str) -> Option<&Signature> {
        self.0.tasks.get(name)?.1.as_deref()
    }

    /// The declared signature of a `kind` (`task`, `actor`, `method`) named
    /// `name` (of actor type `class`), if the manifest has one.
    pub fn signature(&self, kind: &str, class: Option<&str>, name: &str) -> Option<&Signature> {
        self.0
            .signature_index
            .get(name)?
            .iter()
            .map(|&i| &self.0.signatures[i])
            .find(|s| s.kind == kind && s.class.as_deref() == class)
    }

    /// Whether the module has a driver: `wray:main` or a WASI `_start`.
    pub fn has_driver(&self) -> bool {
        self.0.code.exports.contains_key(export::MAIN) || self.0.has_start
    }

    /// Whether the module maps its large arguments itself (it imports
    /// `task_arg_map`) rather than finding them in its argument buffer.
    pub(crate) fn maps_args(&self) -> bool {
        self.0.maps_args
    }

    /// The code in the task engine.
    pub(crate) fn code(&self) -> &Code {
        &self.0.code
    }

    /// The export named `name`, if it is a valid `wray:` function.
    pub(crate) fn export(&self, name: &str) -> Option<&ModuleExport> {
        self.0.code.export(name)
    }

    /// The code in the actor engine, compiled (or read from the cache) on
    /// first use.
    pub(crate) fn actor_code(
        &self,
        engines: &Engines,
        cache: &ModuleCache,
    ) -> Result<&Code, String> {
        self.0
            .actor_code
            .get_or_init(|| {
                let wasm = engines.actors()?;
                let module = cache
                    .compile(&wasm.engine, &self.0.id, &self.0.bytes)
                    .map_err(|e| format!("{e:#}"))?;
                Code::new(&module, &*wasm.linker).map_err(|e| format!("{e:#}"))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    pub(crate) fn start_export(&self) -> Option<ModuleExport> {
        self.0
            .has_start
            .then(|| self.0.code.module.get_export_index(export::WASI_START))
            .flatten()
    }
}

impl fmt::Debug for Module {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Module({} {})", self.0.name, self.0.id.short())
    }
}

/// The largest module wray loads: 256 MiB, far above any real guest, and
/// the most the node accepts in one upload.
pub const MAX_MODULE_SIZE: usize = 256 << 20;

/// Refuses bytes that do not start as a core WebAssembly module does.
fn check_header(name: &str, bytes: &[u8]) -> Result<()> {
    let invalid = |reason: &str| Error::InvalidModule {
        name: name.to_string(),
        reason: reason.into(),
    };
    if !bytes.starts_with(b"\0asm") {
        return Err(invalid(
            "not a WebAssembly module (it lacks the `\\0asm` header)",
        ));
    }
    if bytes.get(4..8) != Some(&[1, 0, 0, 0]) {
        return Err(invalid(
            "not a core WebAssembly module (components are not supported; build for wasm32-wasip1)",
        ));
    }
    Ok(())
}

fn too_large(name: &str, len: u64) -> Error {
    Error::InvalidModule {
        name: name.to_string(),
        reason: format!(
            "{len} bytes is more than the largest module wray loads ({} MiB)",
            MAX_MODULE_SIZE >> 20
        ),
    }
}

impl Module {
    /// Reads a module file, refusing what cannot be one before reading it
    /// whole: it checks the 8-byte header first, and reads no more than
    /// [`MAX_MODULE_SIZE`] (so `/dev/zero` or a pipe is refused at once,
    /// not read until memory runs out). The module is named by the file's
    /// stem.
    pub fn read_file(path: &Path) -> Result<Vec<u8>> {
        use std::io::Read;
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let name = file_stem(path);
        let mut f = std::fs::File::open(path).map_err(io)?;
        let mut bytes = Vec::with_capacity(8);
        (&mut f).take(8).read_to_end(&mut bytes).map_err(io)?;
        check_header(&name, &bytes)?;
        let meta = f.metadata().map_err(io)?;
        if meta.is_file() && meta.len() > MAX_MODULE_SIZE as u64 {
            return Err(too_large(&name, meta.len()));
        }
        f.take(MAX_MODULE_SIZE as u64 + 1 - 8)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if bytes.len() > MAX_MODULE_SIZE {
            return Err(too_large(&name, bytes.len() as u64));
        }
        Ok(bytes)
    }
}

/// A module's name from its file: the file's stem.
pub(crate) fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map_or_else(|| "module".into(), |s| s.to_string_lossy().into_owned())
}

/// Counters of how modules were obtained.
#[derive(Debug, Default)]
pub(crate) struct CacheStats {
    pub compiled: AtomicU64,
    pub from_disk: AtomicU64,
    pub from_memory: AtomicU64,
}

/// Loaded modules by digest, and the compiled-code cache on disk.
///
/// Both are bounded. In memory, a module nothing else holds (no driver,
/// task or actor runs it, no caller keeps its handle) is *idle*: past
/// `idle_limit` idle modules, the least recently used are dropped (loading
/// one again reads its code back from disk in microseconds). On disk, past
/// `disk_limit` bytes of compiled code, the least recently used files go
/// (a use touches a file's modification time).
pub(crate) struct ModuleCache {
    loaded: DashMap<ObjectId, Loaded, FxBuildHasher>,
    /// `<cache>/code`; each engine's code lives under its key.
    dir: Option<PathBuf>,
    idle_limit: usize,
    disk_limit: u64,
    /// Ticks of use, for least-recently-used order.
    clock: AtomicU64,
    pub stats: CacheStats,
}

/// A loaded module and when it was last asked for.
struct Loaded {
    module: Module,
    used: AtomicU64,
}

impl ModuleCache {
    pub fn new(cache_dir: Option<&Path>, idle_limit: usize, disk_limit: u64) -> ModuleCache {
        ModuleCache {
            loaded: DashMap::with_hasher(FxBuildHasher),
            dir: cache_dir.map(|d| d.join("code")),
            idle_limit,
            disk_limit,
            clock: AtomicU64::new(0),
            stats: CacheStats::default(),
        }
    }

    /// The module with digest `id`, if it is loaded.
    #[cfg(feature = "node")] // read by the node only
    pub fn get(&self, id: &ObjectId) -> Option<Module> {
        self.loaded.get(id).map(|l| self.touch(&l))
    }

    /// How many modules are loaded.
    pub fn len(&self) -> usize {
        self.loaded.len()
    }

    fn touch(&self, l: &Loaded) -> Module {
        let now = self.clock.fetch_add(1, Ordering::Relaxed);
        l.used.store(now, Ordering::Relaxed);
        l.module.clone()
    }

    /// Drops the least recently used idle modules past the limit.
    fn trim_idle(&self) {
        let mut idle: Vec<(u64, ObjectId)> = self
            .loaded
            .iter()
            .filter(|l| l.module.is_idle())
            .map(|l| (l.used.load(Ordering::Relaxed), *l.key()))
            .collect();
        if idle.len() <= self.idle_limit {
            return;
        }
        idle.sort_unstable();
        for (_, id) in &idle[..idle.len() - self.idle_limit] {
            // Unless it was taken up meanwhile.
            self.loaded.remove_if(id, |_, l| l.module.is_idle());
        }
    }

    /// Loads a module from its bytes.
    pub fn load(&self, wasm: &Wasm, name: &str, bytes: &[u8]) -> Result<Module> {
        let (engine, linker) = (&wasm.engine, &wasm.linker);
        let id = ObjectId(*blake3::hash(bytes).as_bytes());
        if let Some(l) = self.loaded.get(&id) {
            self.stats.from_memory.fetch_add(1, Ordering::Relaxed);
            return Ok(self.touch(&l));
        }
        let invalid = |reason: String| Error::InvalidModule {
            name: name.to_string(),
            reason,
        };
        check_header(name, bytes)?;
        if bytes.len() > MAX_MODULE_SIZE {
            return Err(too_large(name, bytes.len() as u64));
        }
        let module = self
            .compile(engine, &id, bytes)
            .map_err(|e| invalid(format!("{e:#}")))?;
        let module = validate(name, id, module, &**linker, bytes.into())?;
        let loaded = Loaded {
            module: module.clone(),
            used: AtomicU64::new(self.clock.fetch_add(1, Ordering::Relaxed)),
        };
        self.loaded.insert(id, loaded);
        self.trim_idle();
        Ok(module)
    }

    /// Compiles `bytes` (named `id`) for `engine`, or loads the code cached
    /// for this engine's settings.
    fn compile(
        &self,
        engine: &Engine,
        id: &ObjectId,
        bytes: &[u8],
    ) -> wasmtime::Result<wasmtime::Module> {
        let path = self.dir.as_ref().map(|d| {
            d.join(crate::exec::engine::code_key(engine))
                .join(format!("{id}.cwasm"))
        });
        if let Some(p) = path.as_ref().filter(|p| p.exists()) {
            // SAFETY: files in this directory are written only by `store`
            // below, from `Module::serialize` of this engine configuration
            // (the directory name is the engine's compatibility key), and
            // named by the digest of the source bytes.
            match unsafe { wasmtime::Module::deserialize_file(engine, p) } {
                Ok(m) => {
                    self.stats.from_disk.fetch_add(1, Ordering::Relaxed);
                    // Recently used: the last to be evicted.
                    let _ = std::fs::File::options()
                        .append(true)
                        .open(p)
                        .and_then(|f| f.set_modified(std::time::SystemTime::now()));
                    return Ok(m);
                }
                Err(_) => {
                    // A truncated or stale file: compile again and replace it.
                    let _ = std::fs::remove_file(p);
                }
            }
        }
        let module = wasmtime::Module::new(engine, bytes)?;
        self.stats.compiled.fetch_add(1, Ordering::Relaxed);
        if let (Some(p), Some(dir)) = (path, &self.dir) {
            // The cache is an optimisation: failing to write it is not an error.
            if store(&p, &module).is_ok() {
                trim_disk(dir, self.disk_limit, &p);
            }
        }
        Ok(module)
    }
}

/// Removes the least recently used compiled code under `dir` (one folder
/// per engine key) until it holds at most `limit` bytes, sparing `keep`
/// (just written).
fn trim_disk(dir: &Path, limit: u64, keep: &Path) {
    let mut files: Vec<(std::time::SystemTime, u64, PathBuf)> = Vec::new();
    for engine_dir in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(engine_dir.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let path = f.path();
            if path.extension().is_some_and(|e| e == "cwasm")
                && let Ok(meta) = f.metadata()
                && meta.is_file()
            {
                let when = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
                files.push((when, meta.len(), path));
            }
        }
    }
    let mut total: u64 = files.iter().map(|f| f.1).sum();
    files.sort();
    for (_, len, path) in files {
        if total <= limit {
            break;
        }
        if path != keep && std::fs::remove_file(&path).is_ok() {
            total -= len;
        }
    }
}

/// Writes compiled code atomically: a temporary file, then a rename.
fn store(path: &Path, module: &wasmtime::Module) -> std::io::Result<()> {
    let dir = path.parent().expect("cache paths have a parent");
    std::fs::create_dir_all(dir)?;
    let bytes = module.serialize().map_err(std::io::Error::other)?;
    let tmp = dir.join(format!(".{}.{}.tmp", std::process::id(), rand_suffix()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

/// Checks imports and exports; prepares the instance template.
fn validate(
    name: &str,
    id: ObjectId,
    module: wasmtime::Module,
    linker: &dyn Linked,
    bytes: Arc<[u8]>,
) -> Result<Module> {
    let invalid = |reason: String| Error::InvalidModule {
        name: name.to_string(),
        reason,
    };
    let mut uses_host = false;
    let mut maps_args = false;
    for import in module.imports() {
        match import.module() {
            HOST_MODULE => {
                uses_host = true;
                maps_args |= import.name() == wray_abi::import::TASK_ARG_MAP;
            }
            "wasi_snapshot_preview1" => {}
            other if other.starts_with("wray:") => {
                return Err(invalid(format!(
                    "it imports `{other}::{}`, but this host speaks {HOST_MODULE}: rebuild it with a \
                     matching wray SDK",
                    import.name()
                )));
            }
            other => {
                return Err(invalid(format!(
                    "it imports `{other}::{}`; wray guests may import only `{HOST_MODULE}` and \
                     `wasi_snapshot_preview1` functions",
                    import.name()
                )));
            }
        }
    }
    let mut exports = FxHashMap::default();
    let mut has_memory = false;
    let mut has_start = false;
    for e in module.exports() {
        match e.ty() {
            ExternType::Memory(_) if e.name() == export::MEMORY => has_memory = true,
            ExternType::Func(f) if e.name() == export::WASI_START => {
                if f.params().len() != 0 || f.results().len() != 0 {
                    return Err(invalid(
                        "its `_start` export is not a function `() -> ()`".into(),
                    ));
                }
                has_start = true;
            }
            ExternType::Func(f)
                if e.name() == export::WASI_INITIALIZE
                    && f.params().len() == 0
                    && f.results().len() == 0 => {}
            _ if e.name() == export::WASI_INITIALIZE => {
                return Err(invalid(
                    "its `_initialize` export is not a function `() -> ()`".into(),
                ));
            }
            ty if e.name().starts_with(export::PREFIX) => {
                let ok = match &ty {
                    ExternType::Func(f) => {
                        f.params().len() == 0
                            && f.results().len() == 1
                            && matches!(f.results().next(), Some(ValType::I32))
                    }
                    _ => false,
                };
                if !ok {
                    return Err(invalid(format!(
                        "its export `{}` has type {}, but wray exports must be functions `() -> i32`",
                        e.name(),
                        describe(&ty)
                    )));
                }
                let index = module
                    .get_export_index(e.name())
                    .expect("the export was just listed");
                exports.insert(e.name().to_string(), index);
            }
            _ => {}
        }
    }
    if uses_host && !has_memory {
        return Err(invalid(format!(
            "it imports {HOST_MODULE} functions but exports no memory named `memory`"
        )));
    }
    let signatures = crate::exec::manifest::read(&bytes).map_err(invalid)?;
    let tasks = exports
        .iter()
        .filter_map(|(name, e)| {
            let name = name.strip_prefix(export::TASK_PREFIX)?;
            let sig = signatures
                .iter()
                .find(|s| s.kind == "task" && s.name == name)
                .map(|s| Arc::new(s.clone()));
            Some((Arc::from(name), (*e, sig)))
        })
        .collect();
    let mut methods: FxHashMap<Box<str>, FxHashMap<Box<str>, Arc<Method>>> = FxHashMap::default();
    for full in exports.keys() {
        let Some((ty, method)) = full
            .strip_prefix(export::ACTOR_PREFIX)
            .and_then(|rest| rest.split_once('/'))
        else {
            continue;
        };
        let kind = if method == export::ACTOR_CONSTRUCTOR {
            "actor"
        } else {
            "method"
        };
        let m = Method {
            label: format!("{ty}.{method}").into(),
            export: full.clone(),
            signature: signatures
                .iter()
                .find(|s| s.kind == kind && s.class.as_deref() == Some(ty) && s.name == method)
                .cloned(),
        };
        methods
            .entry(ty.into())
            .or_default()
            .insert(method.into(), Arc::new(m));
    }
    let code = Code::new(&module, linker).map_err(|e| invalid(format!("{e:#}")))?;
    let mut signature_index: FxHashMap<Box<str>, Vec<usize>> = FxHashMap::default();
    for (i, s) in signatures.iter().enumerate() {
        signature_index
            .entry(s.name.as_str().into())
            .or_default()
            .push(i);
    }
    Ok(Module(Arc::new(Inner {
        id,
        name: name.to_string(),
        code,
        tasks,
        methods,
        has_start,
        maps_args,
        bytes,
        signatures,
        signature_index,
        actor_code: OnceLock::new(),
    })))
}

fn describe(ty: &ExternType) -> String {
    match ty {
        ExternType::Func(f) => {
            let params: Vec<String> = f.params().map(|p| p.to_string()).collect();
            let results: Vec<String> = f.results().map(|r| r.to_string()).collect();
            format!("({}) -> ({})", params.join(", "), results.join(", "))
        }
        ExternType::Memory(_) => "memory".into(),
        ExternType::Table(_) => "table".into(),
        ExternType::Global(_) => "global".into(),
        _ => "non-function".into(),
    }
}
