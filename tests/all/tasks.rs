//! Tasks and nesting, from drivers and from the host API.

use crate::common::{self, testkit};
use std::time::Duration;
use wray_runtime::{Error, ErrorKind};

/// Runs a testkit scenario as a driver; it checks its own expectations.
fn scenario(args: &[&str]) {
    let (rt, m) = testkit();
    common::scenario(&rt, &m, args);
}

#[test]
fn values_of_every_kind_round_trip() {
    scenario(&["values"]);
}

#[test]
fn objects_put_get_and_references_as_arguments() {
    scenario(&["put-get"]);
}

#[test]
fn get_of_a_slice_returns_values_in_order() {
    scenario(&["get-many"]);
}

#[test]
fn wait_follows_rays_semantics() {
    scenario(&["wait"]);
}

#[test]
fn get_with_a_timeout_leaves_the_object_fetchable() {
    scenario(&["get-timeout"]);
}

#[test]
fn failures_are_values_with_their_cause_chained() {
    scenario(&["errors"]);
}

#[test]
fn many_tasks_complete() {
    scenario(&["many", "3000"]);
}

/// Decision 3: a task waiting in `get` releases its CPU slot, so a chain of
/// nested tasks completes on one CPU.
#[test]
fn nested_tasks_of_depth_ten_complete_with_one_cpu() {
    let rt = common::builder().num_cpus(1).build().unwrap();
    let m = rt.load_file(common::guest("testkit")).unwrap();
    let status = rt.run_driver(&m, &["nested".into(), "10".into()]).unwrap();
    assert_eq!(status, 0);
    assert_eq!(rt.stats().cpu_slots_free, 1, "the slot is back");
}

/// A task queued for its slots runs next on the worker that frees them,
/// whether the task before it succeeded, failed, or failed and is retried
/// (a retry queues again, so the next task starts on its own meanwhile).
/// On one CPU, a line mixing all three gives every task its own outcome,
/// and every slot comes back.
#[test]
fn a_line_of_tasks_on_one_cpu_runs_through_failures_and_retries() {
    let rt = common::builder().num_cpus(1).build().unwrap();
    let m = rt.load_file(common::guest("testkit")).unwrap();
    // The only CPU is busy until the test ends `first`, so the whole line
    // forms behind it.
    let first = rt.task(&m, "forever").submit().unwrap();
    let line: Vec<_> = (0..300i32)
        .map(|i| match i % 3 {
            0 => rt.task(&m, "add").arg(&i).arg(&1i32).submit(),
            1 => rt.task(&m, "fails").arg(&format!("no {i}")).submit(),
            _ => rt
                .task(&m, "fails")
                .arg(&format!("again {i}"))
                .retry_exceptions(true)
                .max_retries(2)
                .submit(),
        })
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        !common::is_ready(&rt, &first),
        "the line formed behind a running task"
    );
    assert!(rt.cancel(&first));
    let (ready, _) = rt
        .wait(&line, line.len(), Some(Duration::from_secs(60)))
        .unwrap();
    assert_eq!(ready.len(), line.len(), "every task of the line ended");
    for (i, r) in (0..).zip(&line) {
        match i % 3 {
            0 => assert_eq!(rt.get::<i32>(r).unwrap(), i + 1),
            k => {
                let e = common::task_error(&rt, r);
                let (msg, attempts) = if k == 1 { ("no", 1) } else { ("again", 3) };
                assert!(e.message().contains(&format!("{msg} {i}")), "{e}");
                assert_eq!(e.record().attempts, attempts, "{e}");
            }
        }
    }
    common::still_serving(&rt, &m);
}

/// More parents blocked in `get` than there are call slots for top-level
/// tasks: the reserve for nested tasks lets their children run.
#[test]
fn a_wide_fan_out_of_blocked_parents_completes() {
    let rt = common::builder().call_slots(8).build().unwrap();
    let m = rt.load_file(common::guest("testkit")).unwrap();
    let parents: Vec<_> = (0..40)
        .map(|_| rt.task(&m, "chain").arg(&2u32).submit().unwrap())
        .collect();
    for p in &parents {
        assert_eq!(rt.get::<u32>(p).unwrap(), 2);
    }
}

#[test]
fn the_host_api_submits_tasks_and_chains_references() {
    let (rt, m) = testkit();
    let a = rt.task(&m, "add").arg(&2i32).arg(&3i32).submit().unwrap();
    let b = rt.task(&m, "add").arg_ref(&a).arg(&10i32).submit().unwrap();
    assert_eq!(rt.get::<i32>(&b).unwrap(), 15);
    let s = rt
        .task(&m, "concat")
        .arg(&String::from("wa"))
        .arg(&String::from("sm"))
        .submit()
        .unwrap();
    assert_eq!(rt.get::<String>(&s).unwrap(), "wasm");
    let (ready, not_ready) = rt.wait(&[a.clone(), b.clone()], 2, None).unwrap();
    assert_eq!((ready.len(), not_ready.len()), (2, 0));
}

#[test]
fn an_unknown_function_fails_its_result_not_the_caller() {
    let (rt, m) = testkit();
    let r = rt.task(&m, "no_such_function").submit().unwrap();
    match rt.get::<i32>(&r) {
        Err(Error::Task(e)) => {
            assert_eq!(e.kind(), ErrorKind::InvalidModule);
            assert!(e.message().contains("no_such_function"), "{e}");
        }
        other => panic!("expected a task error, got {other:?}"),
    }
}

#[test]
fn wrong_argument_types_fail_the_task_with_a_clear_error() {
    let (rt, m) = testkit();
    let r = rt
        .task(&m, "concat")
        .arg(&1u8)
        .arg(&String::new())
        .submit()
        .unwrap();
    let e = rt.get::<String>(&r).unwrap_err().to_string();
    assert!(
        e.contains("invalid argument") && e.contains("argument `a`"),
        "{e}"
    );
    // The module's manifest declares `add`: a call of the wrong arity is
    // refused before anything runs.
    let e = rt
        .task(&m, "add")
        .arg(&1i32)
        .submit()
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`add(a: int, b: int) -> int` takes 2 arguments, not 1"),
        "{e}"
    );
    let e = rt
        .task(&m, "add")
        .arg(&1i32)
        .arg(&1i32)
        .arg(&1i32)
        .submit()
        .unwrap_err()
        .to_string();
    assert!(e.contains("takes 2 arguments, not 3"), "{e}");
    // The guest checks too (a module without a manifest, or a call from
    // another guest): its own message names the arity.
    let stripped = rt
        .load_bytes(
            "untyped",
            &strip_manifest(&std::fs::read(common::guest("testkit")).unwrap()),
        )
        .unwrap();
    assert!(stripped.signatures().is_empty());
    let r = rt.task(&stripped, "add").arg(&1i32).submit().unwrap();
    let e = rt.get::<i32>(&r).unwrap_err().to_string();
    assert!(e.contains("missing argument `b`"), "{e}");
}

#[test]
fn task_output_is_prefixed_with_the_task() {
    let sink = common::Collect::default();
    let rt = common::builder()
        .output(std::sync::Arc::new(sink.clone()))
        .build()
        .unwrap();
    let m = rt.load_file(common::guest("testkit")).unwrap();
    rt.run_driver(&m, &["output".into()]).unwrap();
    let lines = sink.lines();
    assert!(
        lines
            .iter()
            .any(|(src, _, l)| src == "testkit" && l == "driver line\n"),
        "{lines:?}"
    );
    let chatty: Vec<_> = lines
        .iter()
        .filter(|(src, _, _)| src.starts_with("chatty task="))
        .collect();
    assert_eq!(chatty.len(), 4, "two lines on each stream: {lines:?}");
    assert!(
        chatty
            .iter()
            .any(|(_, s, l)| *s == wray_runtime::Stream::Stderr && l == "err 1\n")
    );
}

#[test]
fn guests_see_no_files_environment_or_arguments() {
    let (rt, m) = testkit();
    let r = rt.task(&m, "probe_sandbox").submit().unwrap();
    let seen: String = rt.get(&r).unwrap();
    assert_eq!(seen, "env=0 root=false passwd=false cwd=false args=0");
}

#[test]
fn a_get_timeout_on_the_host_is_a_timeout_error() {
    let (rt, m) = testkit();
    let gate = common::gate(&rt, &m);
    let r = common::gated(&rt, &m, &gate, 300);
    match rt.get_timeout::<u64>(&r, Some(Duration::from_millis(10))) {
        Err(Error::Timeout(_)) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
    common::open(&rt, &gate);
    assert_eq!(rt.get::<u64>(&r).unwrap(), 300);
}

/// The floor `wray bench` reports: fresh instances called without the
/// scheduler. It runs the real export, reports failures and unknown names,
/// and leaves the runtime serving.
#[test]
fn bare_calls_run_the_export_and_report_failures() {
    let (rt, m) = testkit();
    rt.bench_bare_calls(&m, "nothing", 50)
        .expect("a no-op runs");
    let err = rt.bench_bare_calls(&m, "no_such_fn", 1).unwrap_err();
    assert!(err.to_string().contains("no_such_fn"), "{err}");
    let err = rt.bench_bare_calls(&m, "traps", 3).unwrap_err();
    assert!(err.to_string().contains("unreachable"), "{err}");
    common::still_serving(&rt, &m);
}

/// `wasm` without its `wray:manifest` custom sections.
fn strip_manifest(wasm: &[u8]) -> Vec<u8> {
    fn leb(b: &[u8], at: &mut usize) -> usize {
        let (mut v, mut shift) = (0, 0);
        loop {
            let byte = b[*at];
            *at += 1;
            v |= usize::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return v;
            }
            shift += 7;
        }
    }
    let mut out = wasm[..8].to_vec();
    let mut at = 8;
    while at < wasm.len() {
        let start = at;
        let id = wasm[at];
        at += 1;
        let size = leb(wasm, &mut at);
        let end = at + size;
        let mut p = at;
        let n = leb(wasm, &mut p);
        let manifest = id == 0 && &wasm[p..p + n] == b"wray:manifest";
        if !manifest {
            out.extend_from_slice(&wasm[start..end]);
        }
        at = end;
    }
    out
}
