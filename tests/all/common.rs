//! Shared helpers: where the guests are, runtimes sized for tests, the CLI.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use wray_runtime::{
    ActorRef, Error, Module, ObjectRef, OutputSink, OutputSource, Runtime, Stream, TaskError,
};

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The built wasm of a guest crate (its library name).
pub fn guest(name: &str) -> PathBuf {
    let p = root()
        .join("target/wasm32-wasip1/release")
        .join(format!("{name}.wasm"));
    assert!(
        p.exists(),
        "{} is missing: run `make guests` (or `make test`) first",
        p.display()
    );
    p
}

/// A wat file of `tests/wat`, compiled to wasm bytes.
pub fn wat(name: &str) -> Vec<u8> {
    let p = root().join("tests/wat").join(format!("{name}.wat"));
    wat::parse_file(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The compiled-code cache the suite shares (under target/, so `cargo
/// clean` clears it).
pub fn cache_dir() -> PathBuf {
    root().join("target/test-cache")
}

/// A runtime small enough to run many at once in one process: each call
/// and actor slot reserves address space, and tests run in parallel.
pub fn builder() -> wray_runtime::Builder {
    Runtime::builder()
        .num_cpus(2)
        .call_slots(64)
        .actor_slots(256)
        .cache_dir(Some(cache_dir()))
        .output(Arc::new(Collect::default()))
}

/// A test runtime with default settings.
pub fn runtime() -> Runtime {
    builder().build().expect("the runtime builds")
}

/// A test runtime and the testkit guest loaded in it.
pub fn testkit() -> (Runtime, Module) {
    let rt = runtime();
    let m = rt.load_file(guest("testkit")).expect("testkit loads");
    (rt, m)
}

/// An output sink that keeps every line, for assertions.
#[derive(Default, Clone)]
pub struct Collect(pub Arc<Mutex<Vec<(String, Stream, String)>>>);

impl OutputSink for Collect {
    fn write(&self, source: &OutputSource, stream: Stream, bytes: &[u8]) {
        let line = String::from_utf8_lossy(bytes).into_owned();
        self.0
            .lock()
            .unwrap()
            .push((source.to_string(), stream, line));
    }
}

impl Collect {
    /// Everything written, source and text of each line.
    pub fn lines(&self) -> Vec<(String, Stream, String)> {
        self.0.lock().unwrap().clone()
    }
}

/// Waits for `cond` to hold: for state that settles asynchronously, like an
/// actor killed from a guest. The bound (a minute) only turns a hang into a
/// failure; it is far above what any step takes on a slow, loaded machine.
pub fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Runs `wray` with `args` and returns its output.
pub fn wray(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wray"))
        .args(args)
        .env("WRAY_CACHE_DIR", cache_dir())
        .current_dir(root())
        .output()
        .expect("wray starts")
}

/// Stdout and stderr of a finished command, as text.
pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs the testkit driver's scenario `args` on `rt`; panics unless it
/// exits with status 0.
pub fn scenario(rt: &Runtime, m: &Module, args: &[&str]) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    match rt.run_driver(m, &args) {
        Ok(0) => {}
        Ok(code) => panic!("scenario {args:?} exited with {code}"),
        Err(e) => panic!("scenario {args:?} failed: {e:?}"),
    }
}

/// This process's resident memory in KiB, after handing freed heap back to
/// the system.
pub fn rss_kib() -> u64 {
    // SAFETY: malloc_trim has no preconditions.
    unsafe { libc::malloc_trim(0) };
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The task error `r` resolved to; panics on anything else.
pub fn task_error(rt: &Runtime, r: &ObjectRef) -> TaskError {
    match rt.get_bytes(r) {
        Err(Error::Task(e)) => e,
        other => panic!("expected a task error, got {other:?}"),
    }
}

/// After a failure, the runtime still runs tasks, and every slot is back.
pub fn still_serving(rt: &Runtime, m: &Module) {
    let r = rt.task(m, "add").arg(&20i32).arg(&22i32).submit().unwrap();
    assert_eq!(rt.get::<i32>(&r).unwrap(), 42);
    // Interrupted work (cancelled, killed) ends at its next yield point.
    eventually("every slot is back and every task ended", || {
        let stats = rt.stats();
        stats.cpu_slots_free == rt.num_cpus() && stats.tasks_unfinished == 0
    });
}

/// For a test that measures this process (its memory, say): true when the
/// test runs in a process of its own. Otherwise runs the test `name` (its
/// full path, `module::test`) alone in a fresh copy of this test binary,
/// asserts that it passed, and returns false.
///
/// ```ignore
/// if !common::alone("faults::churn") { return; }
/// ```
pub fn alone(name: &str) -> bool {
    const VAR: &str = "WRAY_TEST_ALONE";
    if std::env::var(VAR).is_ok_and(|v| v == name) {
        return true;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(VAR, name)
        .output()
        .expect("the test binary starts");
    let (stdout, stderr) = text(&out);
    assert!(
        out.status.success(),
        "{name} failed in its own process:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("1 passed"), "{name} did not run: {stdout}");
    false
}

/// A testkit `Gate` actor, shut. Work given it (`gated`) waits until the
/// test opens it: the test decides when that work ends, instead of guessing
/// how long it takes.
pub fn gate(rt: &Runtime, m: &Module) -> ActorRef {
    rt.actor(m, "Gate").create().expect("a gate is made")
}

/// Opens `gate`, and returns once it is open.
pub fn open(rt: &Runtime, gate: &ActorRef) {
    let r = rt.method(gate, "open").submit().unwrap();
    rt.get_bytes(&r).expect("the gate opens");
}

/// The testkit task `gated`: returns `v` once `gate` is open.
pub fn gated(rt: &Runtime, m: &Module, gate: &ActorRef, v: u64) -> ObjectRef {
    rt.task(m, "gated")
        .arg(&gate.id().0)
        .arg(&v)
        .submit()
        .unwrap()
}

/// Whether `r` is ready now (looks, never waits).
pub fn is_ready(rt: &Runtime, r: &ObjectRef) -> bool {
    let (ready, _) = rt
        .wait(std::slice::from_ref(r), 1, Some(std::time::Duration::ZERO))
        .unwrap();
    !ready.is_empty()
}

/// A runtime whose store holds `mib` MiB in memory and spills to `dir`
/// (none: it does not spill), with the testkit loaded; callers wait up to
/// two seconds for room.
pub fn capped(mib: usize, dir: Option<&Path>) -> (Runtime, Module) {
    let rt = builder()
        .object_store_memory((mib << 20) as u64)
        .spill_dir(dir.map(Path::to_path_buf))
        .object_store_wait(std::time::Duration::from_secs(2))
        .build()
        .unwrap();
    let m = rt.load_file(guest("testkit")).unwrap();
    (rt, m)
}
