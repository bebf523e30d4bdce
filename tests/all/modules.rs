//! Loading modules: validation before anything runs, and the code cache.

use crate::common::{self, guest};
use wray_runtime::{Error, Runtime};

fn invalid(rt: &Runtime, bytes: &[u8]) -> String {
    match rt.load_bytes("bad", bytes) {
        Err(Error::InvalidModule { name, reason }) => {
            assert_eq!(name, "bad");
            reason
        }
        other => panic!("expected an invalid module, got {other:?}"),
    }
}

#[test]
fn random_bytes_are_not_a_module() {
    let rt = common::runtime();
    let reason = invalid(&rt, b"this is not wasm at all");
    assert!(reason.contains("not a WebAssembly module"), "{reason}");
    assert!(invalid(&rt, &[]).contains("not a WebAssembly module"));
}

#[test]
fn truncated_modules_are_rejected() {
    let rt = common::runtime();
    let bytes = std::fs::read(guest("testkit")).unwrap();
    for cut in [9, 100, bytes.len() / 2, bytes.len() - 1] {
        invalid(&rt, &bytes[..cut]);
    }
}

#[test]
fn components_are_rejected_with_a_hint() {
    let rt = common::runtime();
    let reason = invalid(&rt, b"\0asm\x0d\0\x01\0");
    assert!(reason.contains("wasm32-wasip1"), "{reason}");
}

#[test]
fn unknown_imports_are_named() {
    let rt = common::runtime();
    let m = wat::parse_str(r#"(module (import "env" "launch_missiles" (func)))"#).unwrap();
    let reason = invalid(&rt, &m);
    assert!(reason.contains("env::launch_missiles"), "{reason}");
    let m = wat::parse_str(
        r#"(module (import "wray:host/v1" "no_such_call" (func)) (memory (export "memory") 1))"#,
    )
    .unwrap();
    let reason = invalid(&rt, &m);
    assert!(reason.contains("no_such_call"), "{reason}");
    let m = wat::parse_str(r#"(module (import "wray:host/v9" "object_get" (func)))"#).unwrap();
    let reason = invalid(&rt, &m);
    assert!(reason.contains("wray:host/v1"), "{reason}");
}

#[test]
fn wray_exports_must_have_the_right_signature() {
    let rt = common::runtime();
    let m = wat::parse_str(
        r#"(module (func (export "wray:task/f") (param i32) (result i32) i32.const 0))"#,
    )
    .unwrap();
    let reason = invalid(&rt, &m);
    assert!(
        reason.contains("wray:task/f") && reason.contains("(i32) -> (i32)"),
        "{reason}"
    );
    let m = wat::parse_str(r#"(module (global (export "wray:main") i32 (i32.const 0)))"#).unwrap();
    assert!(invalid(&rt, &m).contains("wray:main"));
}

#[test]
fn host_imports_need_an_exported_memory() {
    let rt = common::runtime();
    let m = wat::parse_str(
        r#"(module (import "wray:host/v1" "object_release" (func (param i32) (result i32))))"#,
    )
    .unwrap();
    assert!(invalid(&rt, &m).contains("exports no memory"));
}

#[test]
fn a_module_without_a_driver_cannot_run_as_one() {
    let rt = common::runtime();
    let m = rt
        .load_bytes("lib", &wat::parse_str("(module)").unwrap())
        .unwrap();
    assert!(!m.has_driver());
    match rt.run_driver(&m, &[]) {
        Err(Error::Task(e)) => assert!(e.message().contains("no driver"), "{e}"),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn modules_are_named_by_digest_and_listed() {
    let rt = common::runtime();
    let path = guest("testkit");
    let m = rt.load_file(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(m.id().0, *blake3::hash(&bytes).as_bytes());
    assert_eq!(m.name(), "testkit");
    assert!(m.has_driver());
    let mut tasks: Vec<&str> = m.tasks().collect();
    tasks.sort();
    assert!(
        tasks.contains(&"add") && tasks.contains(&"chain"),
        "{tasks:?}"
    );
}

#[test]
fn compiled_code_is_cached_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let build = || {
        common::builder()
            .cache_dir(Some(dir.path().to_path_buf()))
            .build()
            .unwrap()
    };
    let rt = build();
    rt.load_file(guest("hello")).unwrap();
    assert_eq!(
        (
            rt.stats().modules_compiled,
            rt.stats().modules_from_disk_cache
        ),
        (1, 0)
    );
    drop(rt);
    let rt = build();
    let m = rt.load_file(guest("hello")).unwrap();
    assert_eq!(
        (
            rt.stats().modules_compiled,
            rt.stats().modules_from_disk_cache
        ),
        (0, 1)
    );
    assert_eq!(rt.run_driver(&m, &[]).unwrap(), 0, "cached code runs");
}

#[test]
fn a_corrupt_cache_entry_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let build = || {
        common::builder()
            .cache_dir(Some(dir.path().to_path_buf()))
            .build()
            .unwrap()
    };
    build().load_file(guest("hello")).unwrap();
    let entry = walk(dir.path())
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .unwrap();
    std::fs::write(&entry, b"garbage").unwrap();
    let rt = build();
    let m = rt.load_file(guest("hello")).unwrap();
    assert_eq!(rt.stats().modules_compiled, 1);
    assert_eq!(rt.run_driver(&m, &[]).unwrap(), 0);
    assert!(std::fs::read(&entry).unwrap().len() > 100, "rewritten");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
