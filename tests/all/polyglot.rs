//! Guests in other languages: the C example (`examples/c-math`, built by
//! `make guests`) called from Rust host code with cross-language values, its
//! errors, and the C codec checked against the shared vectors.

use crate::common::{self, guest, root};
use std::process::Command;
use wray_runtime::{Error, ErrorKind, Module, Runtime, Value};

fn c_math() -> (Runtime, Module) {
    let rt = common::runtime();
    let m = rt.load_file(guest("c_math")).unwrap();
    (rt, m)
}

#[test]
fn c_tasks_take_and_give_cross_language_values() {
    let (rt, m) = c_math();
    let r = rt
        .task(&m, "add")
        .arg_value(&Value::Int(1))
        .arg_value(&Value::Int(2))
        .submit()
        .unwrap();
    assert_eq!(rt.get_value(&r).unwrap(), Value::Int(3));
    let xs = Value::List(vec![Value::Float(1.5), Value::Int(2), Value::Float(3.25)]);
    let r = rt.task(&m, "sum").arg_value(&xs).submit().unwrap();
    assert_eq!(rt.get_value(&r).unwrap(), Value::Float(6.75));
    // A large sum: the result is a double, not narrowed.
    let r = rt
        .task(&m, "sum")
        .arg_value(&Value::List(vec![Value::Float(0.1), Value::Float(0.2)]))
        .submit()
        .unwrap();
    assert_eq!(rt.get_value(&r).unwrap(), Value::Float(0.1 + 0.2));
}

#[test]
fn a_c_actor_keeps_its_state_in_its_own_instance() {
    let (rt, m) = c_math();
    let a = rt
        .actor(&m, "Counter")
        .arg_value(&Value::Int(10))
        .create()
        .unwrap();
    let b = rt
        .actor(&m, "Counter")
        .arg_value(&Value::Int(-5))
        .create()
        .unwrap();
    for want in [11, 12, 13] {
        let r = rt.method(&a, "incr").submit().unwrap();
        assert_eq!(rt.get_value(&r).unwrap(), Value::Int(want));
    }
    let r = rt.method(&b, "incr").submit().unwrap();
    assert_eq!(rt.get_value(&r).unwrap(), Value::Int(-4));
}

#[test]
fn c_failures_and_bad_arguments_are_clear_errors_and_the_runtime_serves_on() {
    let (rt, m) = c_math();
    let r = rt.task(&m, "fails").submit().unwrap();
    let e = common::task_error(&rt, &r);
    assert_eq!(e.kind(), ErrorKind::Application);
    assert_eq!(e.function(), "fails");
    assert!(e.message().contains("fails always fails"), "{e}");
    // Wrong kinds, wrong arity, and an rkyv value where a CBOR one goes.
    for (args, why) in [
        (vec![Value::Str("x".into()), Value::Int(2)], "a string"),
        (vec![Value::Int(1)], "one argument"),
        (
            vec![Value::Int(1), Value::Int(2), Value::Int(3)],
            "three arguments",
        ),
    ] {
        let r = args
            .iter()
            .fold(rt.task(&m, "add"), |b, v| b.arg_value(v))
            .submit()
            .unwrap();
        let e = common::task_error(&rt, &r);
        assert!(e.message().contains("add takes two integers"), "{why}: {e}");
    }
    // An rkyv u32 (4 bytes) is not one CBOR item. (Objects do not record
    // their encoding yet: a one-byte rkyv value would read as a CBOR int.)
    let r = rt.task(&m, "add").arg(&1u32).arg(&2u32).submit().unwrap();
    let e = common::task_error(&rt, &r);
    assert!(e.message().contains("add takes two integers"), "rkyv: {e}");
    // A value that is not CBOR read as one: a decode error, not garbage.
    let rkyv = rt.put(&7u64).unwrap();
    match rt.get_value(&rkyv) {
        Err(Error::Decode { type_name, .. }) => assert!(type_name.contains("CBOR")),
        other => panic!("an rkyv object read as a value: {other:?}"),
    }
    let r = rt
        .task(&m, "add")
        .arg_value(&Value::Int(40))
        .arg_value(&Value::Int(2))
        .submit()
        .unwrap();
    assert_eq!(rt.get_value(&r).unwrap(), Value::Int(42));
}

#[test]
fn values_put_from_the_host_are_the_bytes_every_language_writes() {
    let rt = common::runtime();
    let v = Value::map([
        (
            Value::Str("b".into()),
            Value::List(vec![Value::Int(2), Value::Int(3)]),
        ),
        (Value::Str("a".into()), Value::Int(1)),
    ]);
    let r = rt.put_value(&v).unwrap();
    assert_eq!(&rt.get_bytes(&r).unwrap()[..], &v.encode().unwrap()[..]);
    assert_eq!(rt.get_value(&r).unwrap(), v);
    // The same value put again is the same object.
    assert_eq!(rt.put_value(&v).unwrap().id(), r.id());
    // A reference inside a value keeps its object, and must exist.
    let inner = rt.put(&1u64).unwrap();
    let outer = rt
        .put_value(&Value::List(vec![Value::Ref(inner.id())]))
        .unwrap();
    assert_eq!(rt.get_value(&outer).unwrap().refs(), vec![inner.id()]);
    let gone = wray_runtime::ObjectId([9; 32]);
    assert!(matches!(
        rt.put_value(&Value::Ref(gone)),
        Err(Error::ObjectNotFound(id)) if id == gone
    ));
}

/// The C codec, built natively, reads and writes back every shared vector
/// byte for byte.
#[test]
fn the_c_codec_writes_the_shared_vectors() {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("vectors");
    let sdk = root().join("guest-sdk/c");
    let built = Command::new("clang")
        .arg("-O1")
        .arg("-I")
        .arg(sdk.join("include"))
        .arg(sdk.join("src/cbor.c"))
        .arg(sdk.join("tests/vectors.c"))
        .args(["-lm", "-o"])
        .arg(&exe)
        .output()
        .expect("clang runs (`make setup` installs it)");
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let out = Command::new(&exe)
        .arg(root().join("tests/cbor-vectors.txt"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let checked: usize = text.split_whitespace().next().unwrap().parse().unwrap();
    assert!(checked >= 38, "{text}");
}

#[test]
fn wray_call_runs_a_function_from_the_command_line() {
    let m = guest("c_math");
    let m = m.to_str().unwrap();
    let out = common::wray(&["call", m, "add", "1", "2"]);
    let (stdout, stderr) = common::text(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout, "3\n");
    let out = common::wray(&["call", m, "sum", "[1.5, 2, 3.25]", "--json"]);
    assert_eq!(common::text(&out).0, "6.75\n");
    // A failure: its message on stderr, status 1.
    let out = common::wray(&["call", m, "fails"]);
    let (stdout, stderr) = common::text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("fails always fails"), "{stderr}");
    for (args, says) in [
        (vec!["add", "x", "2"], "add takes two integers"),
        (vec!["nope"], "has no remote function `nope`"),
        (
            vec!["add", "@/no/such/file", "2"],
            "cannot read the argument file",
        ),
    ] {
        let mut all = vec!["call", m];
        all.extend(args);
        let out = common::wray(&all);
        let stderr = common::text(&out).1;
        assert_eq!(out.status.code(), Some(1), "{all:?}: {stderr}");
        assert!(stderr.contains(says), "{all:?}: {stderr}");
    }
}
