//! The ABI without the SDK: a hand-written guest works, and a guest abusing
//! every host function gets errors, never a host crash.

use crate::common::{self, text, wat, wray};
use wray_abi::Status;
use wray_runtime::{Error, ErrorKind, Module, Runtime};

#[test]
fn a_guest_written_from_the_spec_runs_tasks_and_a_driver() {
    let rt = common::runtime();
    let m = rt.load_bytes("abi_add", &wat("abi_add")).unwrap();
    // Its task, from the host.
    let r = rt.task(&m, "add").arg(&20i32).arg(&22i32).submit().unwrap();
    assert_eq!(rt.get::<i32>(&r).unwrap(), 42);
    // Its driver, which submits its own task with a hand-made spec.
    assert_eq!(rt.run_driver(&m, &[]).unwrap(), 0);
}

#[test]
fn a_guest_written_from_the_spec_runs_under_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("abi_add.wasm");
    std::fs::write(&path, wat("abi_add")).unwrap();
    let out = wray(&["run", path.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout, "42 15\n");
}

/// A WASI reactor (what C and Go guests are): `_initialize` sets `$ready`
/// to 42 and counts its calls; the task returns `ready * 100 + calls`, the
/// actor's `get` the calls so far.
const REACTOR: &str = r#"(module
  (import "wray:host/v1" "task_return" (func $task_return (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $ready (mut i32) (i32.const 0))
  (global $calls (mut i32) (i32.const 0))
  (func (export "_initialize")
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (global.set $ready (i32.const 42)))
  (func $return (param i32) (result i32)
    (i32.store (i32.const 0) (local.get 0))
    (drop (call $task_return (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 0) (i32.const 0)))
    (i32.const 0))
  (func (export "wray:task/ready") (result i32)
    (call $return (i32.add (i32.mul (global.get $ready) (i32.const 100)) (global.get $calls))))
  (func (export "wray:actor/A/new") (result i32) (i32.const 0))
  (func (export "wray:actor/A/get") (result i32) (call $return (global.get $calls))))"#;

#[test]
fn a_reactor_is_initialized_once_per_instance_before_any_export() {
    let rt = common::runtime();
    let m = rt
        .load_bytes("reactor", &wat::parse_str(REACTOR).unwrap())
        .unwrap();
    for _ in 0..3 {
        let r = rt.task(&m, "ready").submit().unwrap();
        assert_eq!(
            rt.get::<i32>(&r).unwrap(),
            4201,
            "a fresh, initialized instance"
        );
    }
    let a = rt.actor(&m, "A").create().unwrap();
    for _ in 0..3 {
        let r = rt.method(&a, "get").submit().unwrap();
        assert_eq!(
            rt.get::<i32>(&r).unwrap(),
            1,
            "once for the actor's instance"
        );
    }
}

#[test]
fn a_reactor_whose_initializer_traps_fails_its_calls_and_a_bad_one_does_not_load() {
    let rt = common::runtime();
    let trapping = REACTOR.replace("(global.set $ready (i32.const 42)))", "unreachable)");
    let m = rt
        .load_bytes("trapping", &wat::parse_str(&trapping).unwrap())
        .unwrap();
    let r = rt.task(&m, "ready").submit().unwrap();
    match rt.get::<i32>(&r) {
        Err(Error::Task(e)) => assert_eq!(e.kind(), ErrorKind::Trap, "{e}"),
        other => panic!("the initializer's trap was not the task's: {other:?}"),
    }
    let bad = REACTOR.replace(
        r#"(func (export "_initialize")"#,
        r#"(func (export "_initialize") (param i32)"#,
    );
    match rt.load_bytes("bad", &wat::parse_str(&bad).unwrap()) {
        Err(e) => assert!(e.to_string().contains("`_initialize`"), "{e}"),
        Ok(_) => panic!("an `_initialize` taking a parameter was loaded"),
    }
}

fn abuse() -> (Runtime, Module) {
    let rt = common::runtime();
    let m = rt.load_bytes("abi_abuse", &wat("abi_abuse")).unwrap();
    (rt, m)
}

fn violation(rt: &Runtime, m: &Module, task: &str, host_function: &str) {
    let r = rt.task(m, task).submit().unwrap();
    match rt.get_bytes(&r) {
        Err(Error::Task(e)) => {
            assert_eq!(e.kind(), ErrorKind::AbiViolation, "{task}: {e}");
            assert!(e.message().starts_with(host_function), "{task}: {e}");
        }
        other => panic!("{task}: expected an ABI violation, got {other:?}"),
    }
}

fn status(rt: &Runtime, m: &Module, task: &str) -> i32 {
    let r = rt.task(m, task).submit().unwrap();
    rt.get::<i32>(&r).unwrap_or_else(|e| panic!("{task}: {e}"))
}

#[test]
fn out_of_bounds_pointers_trap_naming_the_host_function() {
    let (rt, m) = abuse();
    for (task, f) in [
        ("put_oob", "object_put"),
        ("put_huge_len_oob", "object_put"),
        ("put_refs_oob", "object_put"),
        ("put_write_oob", "object_put_write"),
        ("put_end_oob", "object_put_end"),
        ("get_oob", "object_get"),
        ("get_buffer_oob", "object_get"),
        ("wait_oob", "object_wait"),
        ("submit_oob", "task_submit"),
        ("args_oob", "task_args"),
        ("return_oob", "task_return"),
        ("return_end_oob", "task_return_end"),
        ("fail_oob", "task_fail"),
        ("retain_oob", "object_retain"),
        ("last_error_oob", "last_error"),
    ] {
        violation(&rt, &m, task, f);
    }
    // Nothing leaked, and the host still serves.
    let stats = rt.stats();
    assert_eq!((stats.objects, stats.object_bytes), (0, 0));
    assert_eq!(status(&rt, &m, "wait_nothing"), 0);
}

#[test]
fn malformed_but_in_bounds_calls_get_a_status() {
    let (rt, m) = abuse();
    assert_eq!(status(&rt, &m, "get_unknown"), Status::NotFound as i32);
    assert_eq!(status(&rt, &m, "last_error_none"), 0, "an empty reason");
    assert_eq!(
        status(&rt, &m, "submit_garbage"),
        Status::InvalidArgument as i32
    );
    assert_eq!(status(&rt, &m, "wait_too_many"), Status::TooLarge as i32);
    assert_eq!(status(&rt, &m, "release_unknown"), Status::NotFound as i32);
    assert_eq!(status(&rt, &m, "retain_unknown"), Status::NotFound as i32);
    assert_eq!(
        status(&rt, &m, "cancel_bad_flags"),
        Status::InvalidArgument as i32
    );
    assert_eq!(
        status(&rt, &m, "return_bad_index"),
        Status::InvalidArgument as i32
    );
    assert_eq!(
        status(&rt, &m, "return_twice"),
        11,
        "the first return stands"
    );
    for (task, want) in [
        ("put_write_unbegun", Status::InvalidState),
        ("put_end_unbegun", Status::InvalidState),
        ("put_begin_too_large", Status::TooLarge),
        ("put_too_many_refs", Status::TooLarge),
        ("put_end_too_many_refs", Status::TooLarge),
        ("return_too_many_refs", Status::TooLarge),
        ("return_end_too_many_refs", Status::TooLarge),
        ("put_write_past_end", Status::InvalidState),
        ("put_end_short", Status::InvalidState),
        ("return_end_unbegun", Status::InvalidState),
        ("return_end_short", Status::InvalidState),
        ("return_end_bad_index", Status::InvalidArgument),
        ("put_value_not_cbor", Status::InvalidArgument),
        ("put_value_unlisted_ref", Status::InvalidArgument),
        ("put_value_trailing", Status::InvalidArgument),
        ("put_value_ok", Status::Ok),
    ] {
        assert_eq!(status(&rt, &m, task), want as i32, "{task}");
    }
    // poll_oneoff answers in WASI's errno codes.
    assert_eq!(status(&rt, &m, "poll_none"), 28, "EINVAL");
    assert_eq!(status(&rt, &m, "poll_too_many"), 28, "EINVAL");
    assert_eq!(status(&rt, &m, "poll_oob"), 21, "EFAULT");
    assert_eq!(status(&rt, &m, "poll_clock"), 1, "one event");
    assert_eq!(status(&rt, &m, "put_streamed"), 1, "the same object");
    assert_eq!(
        status(&rt, &m, "return_end_twice"),
        11,
        "the first return stands"
    );
    assert_eq!(status(&rt, &m, "return_streamed"), 42, "a streamed result");
    let stats = rt.stats();
    assert_eq!((stats.objects, stats.object_bytes), (0, 0), "nothing left");
}

/// Guests cannot name objects they were not given: ids are not capabilities
/// to be guessed.
#[test]
fn guests_cannot_reach_objects_by_guessing_ids() {
    let rt = common::runtime();
    let secret = rt.put(&String::from("secret")).unwrap();
    // A module whose task tries to get an object whose id it read from its
    // own data: the host's object exists, but the guest was never handed it.
    let id_bytes: String = secret.id().0.iter().map(|b| format!("\\{b:02x}")).collect();
    let m = wat::parse_str(format!(
        r#"(module
          (import "wray:host/v1" "object_get" (func $get (param i32 i64 i32 i32 i32) (result i32)))
          (import "wray:host/v1" "task_return" (func $ret (param i32 i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (data (i32.const 0) "{id_bytes}")
          (func (export "wray:task/steal") (result i32)
            (i32.store (i32.const 100) (call $get (i32.const 0) (i64.const 0) (i32.const 200) (i32.const 64) (i32.const 300)))
            (drop (call $ret (i32.const 0) (i32.const 100) (i32.const 4) (i32.const 0) (i32.const 0)))
            (i32.const 0)))"#
    ))
    .unwrap();
    let m = rt.load_bytes("thief", &m).unwrap();
    let r = rt.task(&m, "steal").submit().unwrap();
    assert_eq!(rt.get::<i32>(&r).unwrap(), Status::NotFound as i32);
}
