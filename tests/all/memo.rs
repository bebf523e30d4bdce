//! Memoized pure calls (docs/memo.md): hits and misses, what is never
//! stored, the memo directory across runtimes and processes (digests,
//! rebuilt modules, eviction), and what the state API, metrics and the CLI
//! show. Every check counts what happened; none depends on timing.

use crate::common::{self, guest};
use crate::node;
use std::path::Path;
use wray_runtime::events::TaskState;
use wray_runtime::{MemoCounts, Module, Runtime};

fn square(rt: &Runtime, m: &Module, x: u64) -> u64 {
    let r = rt.task(m, "pure_square").arg(&x).submit().unwrap();
    rt.get::<u64>(&r).unwrap()
}

fn memo(rt: &Runtime) -> MemoCounts {
    rt.stats().memo
}

fn counts(rt: &Runtime, state: TaskState) -> u64 {
    rt.task_counts()[state as usize]
}

/// A runtime keeping its memo table in `dir` (at most `size` bytes), with
/// the testkit loaded.
fn with_dir(dir: &Path, size: Option<u64>) -> (Runtime, Module) {
    let mut b = common::builder().memo_dir(Some(dir.to_path_buf()));
    if let Some(n) = size {
        b = b.memo_size(n);
    }
    let rt = b.build().unwrap();
    let m = rt.load_file(guest("testkit")).unwrap();
    (rt, m)
}

/// The entry files of a memo directory.
fn entry_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    v.sort();
    v
}

#[test]
fn a_pure_call_made_again_is_answered_without_running() {
    let (rt, m) = common::testkit();
    assert_eq!(square(&rt, &m, 7), 49);
    assert_eq!(
        (memo(&rt).misses, memo(&rt).stored, memo(&rt).hits),
        (1, 1, 0)
    );
    for _ in 0..3 {
        assert_eq!(square(&rt, &m, 7), 49);
    }
    assert_eq!(square(&rt, &m, 8), 64, "other arguments: another key");
    let c = memo(&rt);
    assert_eq!((c.hits, c.misses, c.stored), (3, 2, 2));
    assert_eq!(counts(&rt, TaskState::Memoized), 3);
    assert_eq!(counts(&rt, TaskState::Finished), 2, "only the misses ran");
    // Turned off for one call: it runs.
    let r = rt.task(&m, "pure_square").arg(&7u64).memo(false).submit();
    assert_eq!(rt.get::<u64>(&r.unwrap()).unwrap(), 49);
    assert_eq!(counts(&rt, TaskState::Finished), 3);
    assert_eq!(memo(&rt).hits, 3);
}

#[test]
fn a_function_not_declared_pure_is_never_memoized() {
    let (rt, m) = common::testkit();
    for _ in 0..3 {
        let r = rt.task(&m, "add").arg(&2i32).arg(&3i32).submit().unwrap();
        assert_eq!(rt.get::<i32>(&r).unwrap(), 5);
    }
    assert_eq!(memo(&rt), MemoCounts::default());
    assert_eq!(counts(&rt, TaskState::Finished), 3);
    // Asked for per call, it is.
    for _ in 0..2 {
        let r = rt.task(&m, "add").arg(&2i32).arg(&3i32).memo(true);
        assert_eq!(rt.get::<i32>(&r.submit().unwrap()).unwrap(), 5);
    }
    assert_eq!((memo(&rt).misses, memo(&rt).hits), (1, 1));
}

#[test]
fn memoization_off_runs_every_call() {
    let rt = common::builder().memo(false).build().unwrap();
    let m = rt.load_file(guest("testkit")).unwrap();
    for _ in 0..2 {
        assert_eq!(square(&rt, &m, 3), 9);
    }
    assert_eq!(memo(&rt), MemoCounts::default());
    assert_eq!(counts(&rt, TaskState::Finished), 2);
}

#[test]
fn guests_memoize_their_calls_and_can_turn_it_off() {
    let (rt, m) = common::testkit();
    common::scenario(&rt, &m, &["memo"]);
    let c = memo(&rt);
    // Four squares, then the same four again (hits); one call with memo
    // off; `pure_sum` of an object and of the same bytes inline (a hit).
    assert_eq!(c.hits, 5, "{c:?}");
    assert_eq!(c.misses, 5, "{c:?}");
}

#[test]
fn a_pure_call_that_reads_the_clock_is_not_stored() {
    let (rt, m) = common::testkit();
    for _ in 0..2 {
        let r = rt.task(&m, "pure_but_clock").arg(&1u64).submit().unwrap();
        assert_eq!(rt.get::<u64>(&r).unwrap(), 1);
    }
    let c = memo(&rt);
    assert_eq!((c.hits, c.misses, c.stored), (0, 2, 0));
    assert_eq!(counts(&rt, TaskState::Finished), 2);
}

#[test]
fn a_failed_pure_call_is_not_stored_and_is_retried_as_usual() {
    let (rt, m) = common::testkit();
    for _ in 0..2 {
        let r = rt
            .task(&m, "pure_fails")
            .arg(&1u64)
            .retry_exceptions(true)
            .max_retries(1)
            .submit()
            .unwrap();
        let e = common::task_error(&rt, &r);
        assert_eq!(e.record().attempts, 2, "retried: {e:?}");
    }
    let c = memo(&rt);
    assert_eq!((c.hits, c.misses, c.stored), (0, 2, 0));
    assert_eq!(counts(&rt, TaskState::Failed), 2);
}

#[test]
fn a_result_holding_references_is_not_stored() {
    let (rt, m) = common::testkit();
    for _ in 0..2 {
        let r = rt.task(&m, "pure_ref").arg(&4u64).submit().unwrap();
        rt.get_bytes(&r).unwrap();
    }
    assert_eq!((memo(&rt).stored, memo(&rt).hits), (0, 0));
}

#[test]
fn a_call_waiting_for_its_argument_is_looked_up_once_the_argument_is_ready() {
    let (rt, m) = common::testkit();
    let gate = common::gate(&rt, &m);
    // `pure_square(gated(3))` twice: the argument is pending at submission.
    let first = common::gated(&rt, &m, &gate, 3);
    let second = common::gated(&rt, &m, &gate, 3);
    let a = rt.task(&m, "pure_square").arg_ref(&first).submit().unwrap();
    common::open(&rt, &gate);
    assert_eq!(rt.get::<u64>(&a).unwrap(), 9);
    let b = rt
        .task(&m, "pure_square")
        .arg_ref(&second)
        .submit()
        .unwrap();
    assert_eq!(rt.get::<u64>(&b).unwrap(), 9);
    let c = memo(&rt);
    assert_eq!((c.misses, c.hits), (1, 1), "{c:?}");
    assert_eq!(counts(&rt, TaskState::Memoized), 1);
}

#[test]
fn the_memo_dir_keeps_results_across_runtimes_and_drops_a_corrupt_file() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (rt, m) = with_dir(dir.path(), None);
        assert_eq!(square(&rt, &m, 5), 25);
        assert_eq!(memo(&rt).stored, 1);
    }
    {
        let (rt, m) = with_dir(dir.path(), None);
        assert_eq!(square(&rt, &m, 5), 25);
        let c = memo(&rt);
        assert_eq!((c.hits, c.misses), (1, 0), "read back from the directory");
        assert_eq!(counts(&rt, TaskState::Finished), 0, "nothing ran");
    }
    // One bit of the stored value flipped: the digest catches it, the file
    // goes, the call runs, and its result is stored again.
    let files = entry_files(dir.path());
    assert_eq!(files.len(), 1);
    let mut bytes = std::fs::read(&files[0]).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    std::fs::write(&files[0], bytes).unwrap();
    {
        let (rt, m) = with_dir(dir.path(), None);
        assert_eq!(square(&rt, &m, 5), 25, "recomputed, not the corrupt value");
        let c = memo(&rt);
        assert_eq!((c.corrupt, c.misses, c.stored), (1, 1, 1), "{c:?}");
    }
    let (rt, m) = with_dir(dir.path(), None);
    assert_eq!(square(&rt, &m, 5), 25);
    assert_eq!((memo(&rt).hits, memo(&rt).corrupt), (1, 0));
}

#[test]
fn a_rebuilt_module_never_finds_the_old_entries() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(guest("testkit")).unwrap();
    // The same code with one more custom section: another digest, as any
    // rebuild that changes a byte.
    let mut rebuilt = bytes.clone();
    rebuilt.extend_from_slice(&[0, 8, 7]);
    rebuilt.extend_from_slice(b"rebuilt");
    let (rt, _) = with_dir(dir.path(), None);
    let old = rt.load_bytes("testkit", &bytes).unwrap();
    let new = rt.load_bytes("testkit2", &rebuilt).unwrap();
    assert_ne!(old.id(), new.id());
    assert_eq!(square(&rt, &old, 6), 36);
    assert_eq!(square(&rt, &new, 6), 36);
    assert_eq!((memo(&rt).misses, memo(&rt).hits), (2, 0));
    drop(rt);
    let (rt, _) = with_dir(dir.path(), None);
    let new = rt.load_bytes("testkit2", &rebuilt).unwrap();
    assert_eq!(square(&rt, &new, 6), 36);
    assert_eq!(memo(&rt).hits, 1, "its own entry is found");
}

#[test]
fn the_memo_dir_stays_within_its_size_least_recently_used_first() {
    let dir = tempfile::tempdir().unwrap();
    let limit = 350 << 10;
    let bytes = |rt: &Runtime, m: &Module, fill: u8| {
        let r = rt.task(m, "pure_bytes").arg(&100u32).arg(&fill).submit();
        rt.get_bytes(&r.unwrap()).unwrap().len()
    };
    {
        let (rt, m) = with_dir(dir.path(), Some(limit));
        for fill in 0..6u8 {
            assert!(bytes(&rt, &m, fill) >= 100 << 10);
        }
        assert!(memo(&rt).evicted > 0);
    }
    let total: u64 = entry_files(dir.path())
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    assert!(total <= limit, "{total} bytes on disk, past {limit}");
    // The newest is there, the oldest was evicted.
    let (rt, m) = with_dir(dir.path(), Some(limit));
    bytes(&rt, &m, 5);
    assert_eq!(memo(&rt).hits, 1);
    bytes(&rt, &m, 0);
    assert_eq!(memo(&rt).misses, 1);
}

#[test]
fn the_state_api_metrics_and_timeline_show_memo_hits_and_why_not() {
    let n = node::serve(None);
    let (rt, m, a) = (&n.rt, &n.m, n.node.addr());
    for _ in 0..2 {
        assert_eq!(square(rt, m, 11), 121);
        let r = rt.task(m, "pure_but_clock").arg(&1u64).submit().unwrap();
        rt.get_bytes(&r).unwrap();
    }
    let tasks = node::get(a, "/api/v0/tasks?function=pure_square").json();
    let states: Vec<(&str, &str)> = tasks["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["state"].as_str().unwrap(), t["memo"].as_str().unwrap()))
        .collect();
    assert_eq!(states, [("MEMOIZED", "hit"), ("FINISHED", "stored")]);
    let memoized = node::get(a, "/api/v0/tasks?state=MEMOIZED").json();
    assert_eq!(memoized["total"], 1);
    let clock = node::get(a, "/api/v0/tasks?function=pure_but_clock").json();
    for t in clock["tasks"].as_array().unwrap() {
        assert_eq!(t["state"], "FINISHED");
        assert_eq!(t["memo"], "not stored: it read the clock or random numbers");
    }
    let summary = node::get(a, "/api/v0/tasks/summary?function=pure_square").json();
    assert_eq!(summary["functions"][0]["MEMOIZED"], 1);
    let metrics = node::get(a, "/metrics").body;
    for line in [
        "wray_memo_hits_total 1",
        "wray_memo_misses_total 3",
        "wray_memo_stored_total 1",
        "wray_tasks{state=\"MEMOIZED\"} 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no `{line}`:\n{metrics}"
        );
    }
    let timeline = node::get(a, "/api/v0/timeline").json();
    let hits: Vec<_> = timeline
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["cat"] == "memo")
        .collect();
    assert_eq!(hits.len(), 1);
    assert_eq!(
        (&hits[0]["ph"], &hits[0]["name"]),
        (&"i".into(), &"pure_square".into())
    );
}

#[test]
fn wray_run_with_a_memo_dir_does_no_pure_work_the_second_time() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let kit = guest("testkit");
    let kit = kit.to_str().unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["run"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[kit, "--", "memo"]);
        let out = common::wray(&args);
        let (stdout, stderr) = common::text(&out);
        assert!(out.status.success(), "{stdout}\n{stderr}");
        assert!(stdout.contains("memo: ok"), "{stdout}");
        stderr
    };
    let first = run(&["--memo-dir", d]);
    assert!(
        first.contains("wray: memo: 5 hits, 5 misses, 5 stored"),
        "{first}"
    );
    let second = run(&["--memo-dir", d]);
    assert!(second.contains("wray: memo: 10 hits, 0 misses"), "{second}");
    let off = run(&["--no-memo"]);
    assert!(!off.contains("wray: memo:"), "{off}");
    let list = common::wray(&["run", "--no-memo", "--memo-dir", d, kit, "--", "memo"]);
    assert!(
        !list.status.success(),
        "--no-memo conflicts with --memo-dir"
    );
}
