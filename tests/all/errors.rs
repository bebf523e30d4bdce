//! Failures are values, limits hold, and the runtime keeps serving.

use crate::common::{self, testkit};
use std::time::Duration;
use wray_runtime::{Error, ErrorKind};

#[test]
fn a_returned_err_is_an_application_error() {
    let (rt, m) = testkit();
    let r = rt
        .task(&m, "fails")
        .arg(&String::from("no good"))
        .submit()
        .unwrap();
    let e = common::task_error(&rt, &r);
    assert_eq!(e.kind(), ErrorKind::Application);
    assert_eq!(e.function(), "fails");
    assert_eq!(e.message(), "no good");
    common::still_serving(&rt, &m);
}

#[test]
fn a_panic_carries_its_message_and_location() {
    let (rt, m) = testkit();
    let r = rt
        .task(&m, "panics")
        .arg(&String::from("it broke"))
        .submit()
        .unwrap();
    let e = common::task_error(&rt, &r);
    assert_eq!(e.kind(), ErrorKind::Panic);
    assert!(e.message().contains("it broke"), "{e}");
    assert!(e.message().contains("src/lib.rs"), "location: {e}");
    assert!(
        e.record().backtrace.contains("testkit::panics"),
        "{}",
        e.record().backtrace
    );
    common::still_serving(&rt, &m);
}

#[test]
fn a_trap_has_a_wasm_backtrace() {
    let (rt, m) = testkit();
    let r = rt.task(&m, "traps").submit().unwrap();
    let e = common::task_error(&rt, &r);
    assert_eq!(e.kind(), ErrorKind::Trap);
    assert!(e.message().contains("unreachable"), "{e}");
    assert!(
        e.record().backtrace.contains("traps"),
        "{}",
        e.record().backtrace
    );
    common::still_serving(&rt, &m);
}

#[test]
fn an_endless_loop_times_out() {
    let (rt, m) = testkit();
    let r = rt
        .task(&m, "forever")
        .timeout(Duration::from_millis(100))
        .submit()
        .unwrap();
    let e = common::task_error(&rt, &r);
    assert_eq!(e.kind(), ErrorKind::Timeout);
    common::still_serving(&rt, &m);
}

#[test]
fn the_runtime_default_timeout_applies() {
    let rt = common::builder()
        .task_timeout(Some(Duration::from_millis(100)))
        .build()
        .unwrap();
    let m = rt.load_file(common::guest("testkit")).unwrap();
    let r = rt.task(&m, "forever").submit().unwrap();
    assert_eq!(common::task_error(&rt, &r).kind(), ErrorKind::Timeout);
}

#[test]
fn a_wait_inside_a_task_is_bounded_by_its_timeout() {
    // `sum_ref` receives the reference itself and blocks in `get` on it; the
    // child never finishes. The parent's deadline interrupts the wait
    // (epochs cannot: the guest is inside a host call).
    let (rt, m) = testkit();
    let child = rt.task(&m, "forever").submit().unwrap();
    let parent = rt
        .task(&m, "sum_ref")
        .arg_ref_unresolved(&child)
        .timeout(Duration::from_millis(100))
        .submit()
        .unwrap();
    assert_eq!(common::task_error(&rt, &parent).kind(), ErrorKind::Timeout);
    assert!(rt.cancel(&child));
    assert_eq!(common::task_error(&rt, &child).kind(), ErrorKind::Cancelled);
    common::still_serving(&rt, &m);
}

#[test]
fn growing_memory_past_the_limit_is_out_of_memory() {
    let (rt, m) = testkit();
    let r = rt
        .task(&m, "hog")
        .arg(&64u32)
        .memory_limit(16 << 20)
        .submit()
        .unwrap();
    let e = common::task_error(&rt, &r);
    assert_eq!(e.kind(), ErrorKind::OutOfMemory);
    assert!(e.message().contains("16777216"), "{e}");
    // Within the limit it works.
    let r = rt
        .task(&m, "hog")
        .arg(&4u32)
        .memory_limit(16 << 20)
        .submit()
        .unwrap();
    assert_eq!(rt.get::<u64>(&r).unwrap(), 4 << 20);
    common::still_serving(&rt, &m);
}

#[test]
fn deep_recursion_is_a_stack_overflow() {
    let (rt, m) = testkit();
    let r = rt.task(&m, "recurse").arg(&10_000_000u64).submit().unwrap();
    let e = common::task_error(&rt, &r);
    assert_eq!(e.kind(), ErrorKind::StackOverflow);
    common::still_serving(&rt, &m);
}

#[test]
fn flooding_output_hits_the_output_limit() {
    let rt = common::builder().output_limit(64 << 10).build().unwrap();
    let m = rt.load_file(common::guest("testkit")).unwrap();
    let r = rt.task(&m, "flood").arg(&1000u32).submit().unwrap();
    let e = common::task_error(&rt, &r);
    assert_eq!(e.kind(), ErrorKind::OutputLimit, "{e:?}");
    common::still_serving(&rt, &m);
}

#[test]
fn a_giant_return_value_is_refused() {
    let rt = common::builder().max_object_size(1 << 20).build().unwrap();
    let m = rt.load_file(common::guest("testkit")).unwrap();
    let r = rt.task(&m, "giant").arg(&8u32).submit().unwrap();
    let e = common::task_error(&rt, &r);
    assert_eq!(e.kind(), ErrorKind::ObjectTooLarge, "{e:?}");
    common::still_serving(&rt, &m);
}

#[test]
fn a_failed_task_keeps_the_tail_of_its_stderr() {
    let (rt, m) = testkit();
    let r = rt
        .task(&m, "chatty")
        .arg(&3u32)
        .arg(&true)
        .submit()
        .unwrap();
    let e = common::task_error(&rt, &r);
    assert_eq!(e.message(), "chatty failed");
    assert_eq!(e.record().stderr_tail, "err 0\nerr 1\nerr 2\n");
}

#[test]
fn dependents_of_a_failed_task_fail_without_running() {
    let (rt, m) = testkit();
    let bad = rt
        .task(&m, "panics")
        .arg(&String::from("root cause"))
        .submit()
        .unwrap();
    let mid = rt.task(&m, "double").arg_ref(&bad).submit().unwrap();
    let top = rt.task(&m, "double").arg_ref(&mid).submit().unwrap();
    let e = common::task_error(&rt, &top);
    assert_eq!(e.kind(), ErrorKind::DependencyFailed);
    let chain: Vec<ErrorKind> = std::iter::successors(Some(e.clone()), |e| e.cause())
        .map(|e| e.kind())
        .collect();
    assert_eq!(
        chain,
        [
            ErrorKind::DependencyFailed,
            ErrorKind::DependencyFailed,
            ErrorKind::Panic
        ]
    );
    assert!(e.to_string().contains("root cause"), "{e}");
}

#[test]
fn guest_errors_are_retried_only_with_retry_exceptions() {
    let (rt, m) = testkit();
    let r = rt.task(&m, "traps").max_retries(2).submit().unwrap();
    assert_eq!(common::task_error(&rt, &r).record().attempts, 1);
    let r = rt
        .task(&m, "traps")
        .max_retries(2)
        .retry_exceptions(true)
        .submit()
        .unwrap();
    assert_eq!(common::task_error(&rt, &r).record().attempts, 3);
}

#[test]
fn a_failed_driver_reports_why() {
    let (rt, m) = testkit();
    match rt.run_driver(&m, &["fail".into()]) {
        Err(Error::Task(e)) => assert_eq!(e.message(), "the driver gives up"),
        other => panic!("expected the driver's failure, got {other:?}"),
    }
    match rt.run_driver(&m, &["panic".into()]) {
        Err(Error::Task(e)) => assert_eq!(e.kind(), ErrorKind::Panic),
        other => panic!("expected a panic, got {other:?}"),
    }
    assert_eq!(rt.run_driver(&m, &["exit".into()]).unwrap(), 7);
    common::still_serving(&rt, &m);
}
