//! Guests in other languages: the C and Go examples (`examples/c-math`,
//! `examples/go-math`, twins built by `make guests`) called from Rust host
//! code, the command line and HTTP with cross-language values, their
//! errors, and the C codec checked against the shared vectors.

use crate::common::{self, guest, root};
use std::process::Command;
use wray_runtime::{Error, ErrorKind, Module, Runtime, Value};

/// The guests in other languages, by file name: each has the same tasks
/// and actor.
const GUESTS: [&str; 2] = ["c_math", "go_math"];

/// Asserts that a call was refused before it ran, saying `says`.
fn refused<T: std::fmt::Debug>(r: wray_runtime::Result<T>, says: &str) {
    match r {
        Err(Error::InvalidArgument(e)) => assert!(e.contains(says), "{e}"),
        other => panic!("not refused ({says}): {other:?}"),
    }
}

/// Asserts that a call ran and failed, its error saying `says`.
fn failed<T: std::fmt::Debug>(r: wray_runtime::Result<T>, says: &str) {
    match r {
        Err(Error::Task(e)) => assert!(e.to_string().contains(says), "{e}"),
        other => panic!("did not fail ({says}): {other:?}"),
    }
}

fn load(name: &str) -> (Runtime, Module) {
    let rt = common::runtime();
    let m = rt.load_file(guest(name)).unwrap();
    (rt, m)
}

#[test]
fn c_and_go_tasks_take_and_give_cross_language_values() {
    for name in GUESTS {
        tasks_take_and_give_values(name);
    }
}

fn tasks_take_and_give_values(name: &str) {
    let (rt, m) = load(name);
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
fn c_and_go_actors_keep_their_state_in_their_own_instances() {
    for name in GUESTS {
        actors_keep_their_state(name);
    }
}

fn actors_keep_their_state(name: &str) {
    let (rt, m) = load(name);
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
fn c_and_go_failures_and_bad_arguments_are_clear_errors_and_the_runtime_serves_on() {
    for name in GUESTS {
        failures_are_clear_errors(name);
    }
}

fn failures_are_clear_errors(name: &str) {
    let (rt, m) = load(name);
    let r = rt.task(&m, "fails").submit().unwrap();
    let e = common::task_error(&rt, &r);
    assert_eq!(e.kind(), ErrorKind::Application);
    assert_eq!(e.function(), "fails");
    assert!(e.message().contains("fails always fails"), "{e}");
    // Wrong kinds, wrong arity, and rkyv values where CBOR ones go: the
    // manifest refuses them before anything runs, naming the parameter.
    let bad_calls = [
        (
            vec![Value::Str("x".into()), Value::Int(2)],
            "argument `a` of `add(a: int, b: int) -> int` must be an int, not a str",
        ),
        (vec![Value::Int(1)], "takes 2 arguments, not 1"),
        (
            vec![Value::Int(1), Value::Int(2), Value::Int(3)],
            "takes 2 arguments, not 3",
        ),
    ];
    for (args, says) in &bad_calls {
        let call = args.iter().fold(rt.task(&m, "add"), |b, v| b.arg_value(v));
        refused(call.submit(), says);
    }
    refused(
        rt.task(&m, "add").arg(&1u32).arg(&2u32).submit(),
        "not rkyv ones",
    );
    // Without its manifest the module is untyped: the guest checks.
    let bytes = std::fs::read(guest(name)).unwrap();
    let untyped = rt
        .load_bytes(name, &wray_runtime::embed_manifest(&bytes, &[]).unwrap())
        .unwrap();
    assert!(untyped.signatures().is_empty());
    for (args, _) in &bad_calls {
        let r = args
            .iter()
            .fold(rt.task(&untyped, "add"), |b, v| b.arg_value(v))
            .submit()
            .unwrap();
        let e = common::task_error(&rt, &r);
        assert!(
            e.message().contains("add takes two integers"),
            "{args:?}: {e}"
        );
    }
    // An rkyv u32 (4 bytes) is not one CBOR item.
    let r = rt
        .task(&untyped, "add")
        .arg(&1u32)
        .arg(&2u32)
        .submit()
        .unwrap();
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
    // A Rust guest's function takes rkyv values: refused before it runs.
    let out = common::wray(&["call", guest("hello").to_str().unwrap(), "say_hello", "x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        common::text(&out).1.contains("takes rkyv values"),
        "{}",
        common::text(&out).1
    );
    for (args, says) in [
        (
            vec!["add", "x", "2"],
            "argument `a` of `add(a: int, b: int) -> int` must be an int, not a str",
        ),
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

// ---- over HTTP -------------------------------------------------------------------

use crate::node::{Resp, get, http, post, serve};
use serde_json::json;

/// Uploads the C example to a node; its digest.
fn upload_c_math(addr: std::net::SocketAddr) -> String {
    let bytes = std::fs::read(guest("c_math")).unwrap();
    let r = http(
        addr,
        "POST",
        "/api/modules",
        &[("Content-Type", "application/wasm")],
        &bytes,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["digest"].as_str().unwrap().to_string()
}

fn call(addr: std::net::SocketAddr, query: &str, body: serde_json::Value) -> Resp {
    post(addr, &format!("/api/tasks{query}"), &body)
}

#[test]
fn tasks_and_values_over_http() {
    let n = serve(None);
    let addr = n.node.addr();
    let digest = upload_c_math(addr);
    // One round trip: the result in the answer, nothing held.
    let r = call(
        addr,
        "?wait=600",
        json!({"module": digest, "function": "add", "args": [1, 2]}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["result"], json!(3));
    assert_eq!(r.json()["pending"], json!(false));
    let r = call(
        addr,
        "?wait=600",
        json!({"module": digest, "function": "sum", "args": [[0.5, 1, 2.25]]}),
    );
    assert_eq!(r.json()["result"], json!(3.75));
    // Submitted, then read and let go.
    let r = call(
        addr,
        "",
        json!({"module": digest, "function": "add", "args": [40, 2]}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let id = r.json()["object_id"].as_str().unwrap().to_string();
    let r = get(addr, &format!("/api/objects/{id}?timeout=600"));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["result"], json!(42));
    assert_eq!(
        http(addr, "DELETE", &format!("/api/objects/{id}"), &[], b"").status,
        204
    );
    assert_eq!(
        http(addr, "DELETE", &format!("/api/objects/{id}"), &[], b"").status,
        404
    );
    // CBOR in and out: the body is the result's bytes.
    let body = wray_runtime::Value::map([
        (Value::Str("module".into()), Value::Str(digest.clone())),
        (Value::Str("function".into()), Value::Str("add".into())),
        (
            Value::Str("args".into()),
            Value::List(vec![Value::Int(100), Value::Int(-1)]),
        ),
    ])
    .encode()
    .unwrap();
    let r = http(
        addr,
        "POST",
        "/api/tasks?wait=600",
        &[
            ("Content-Type", "application/cbor"),
            ("Accept", "application/cbor"),
        ],
        &body,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/cbor"));
    assert_eq!(Value::decode(&r.bytes).unwrap(), Value::Int(99));
    assert!(r.header("x-wray-object-id").is_some());
    // A value put over HTTP is the object the host's put_value makes.
    let v = json!({"b": [1.5, {"$bytes": "AAE="}], "a": null});
    let r = post(addr, "/api/objects", &v);
    assert_eq!(r.status, 200, "{}", r.body);
    let id = r.json()["object_id"].as_str().unwrap().to_string();
    let same = n.rt.put_value(&Value::from_json(&v).unwrap()).unwrap();
    assert_eq!(id, same.id().to_string());
    assert_eq!(get(addr, &format!("/api/objects/{id}")).json()["result"], v);
}

#[test]
fn bad_calls_over_http_get_clear_errors_and_the_node_serves_on() {
    let n = serve(None);
    let addr = n.node.addr();
    let digest = upload_c_math(addr);
    // The function fails: 422, with the failure.
    let r = call(
        addr,
        "?wait=600",
        json!({"module": digest, "function": "fails"}),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.json()["failure"]["function"], json!("fails"));
    assert!(
        r.json()["failure"]["message"]
            .as_str()
            .unwrap()
            .contains("fails always fails")
    );
    for (body, status, says) in [
        (
            json!({"module": "00".repeat(32), "function": "add"}),
            404,
            "no module",
        ),
        (
            json!({"module": "nope", "function": "add"}),
            404,
            "no module",
        ),
        (
            json!({"module": digest, "function": "nope"}),
            404,
            "no remote function `nope`",
        ),
        (
            json!({"module": digest, "function": "add", "args": [{"$ref": "zz"}]}),
            400,
            "argument 0",
        ),
        (json!({"module": digest}), 400, "not a task call"),
        (
            json!({"module": digest, "function": "add", "args": [1]}),
            400,
            "`add(a: int, b: int) -> int` takes 2 arguments, not 1",
        ),
        (
            json!({"module": digest, "function": "add", "args": ["1", 2]}),
            400,
            "argument `a` of `add(a: int, b: int) -> int` must be an int, not a str",
        ),
    ] {
        let r = call(addr, "?wait=600", body.clone());
        assert_eq!(r.status, status, "{body}: {}", r.body);
        assert!(r.error().contains(says), "{body}: {}", r.body);
    }
    let r = call(
        addr,
        "?wait=forever",
        json!({"module": digest, "function": "add", "args": [1, 2]}),
    );
    assert_eq!(r.status, 400);
    let r = http(
        addr,
        "POST",
        "/api/tasks",
        &[("Content-Type", "text/plain")],
        b"{}",
    );
    assert_eq!(r.status, 415);
    let r = http(
        addr,
        "POST",
        "/api/tasks",
        &[("Content-Type", "application/cbor")],
        &[0xff],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.error().contains("not deterministic CBOR"), "{}", r.body);
    assert_eq!(get(addr, "/api/objects/xyz").status, 400);
    assert_eq!(
        get(addr, &format!("/api/objects/{}", "11".repeat(32))).status,
        404
    );
    // A Rust guest's rkyv object is not read as a value.
    let rkyv = n.rt.put(&7u64).unwrap();
    let r = get(addr, &format!("/api/objects/{}", rkyv.id()));
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.error().contains("not a cross-language value"),
        "{}",
        r.body
    );
    // Non-canonical CBOR is refused.
    let r = http(
        addr,
        "POST",
        "/api/objects",
        &[("Content-Type", "application/cbor")],
        &[0x18, 0x01],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    // And the node serves on.
    let r = call(
        addr,
        "?wait=600",
        json!({"module": digest, "function": "add", "args": [2, 2]}),
    );
    assert_eq!(r.json()["result"], json!(4));
}

#[test]
fn wray_call_runs_a_function_on_a_node() {
    let n = serve(None);
    let url = n.node.url();
    let m = guest("c_math");
    let m = m.to_str().unwrap();
    let out = common::wray(&["call", "--address", &url, m, "add", "20", "22"]);
    let (stdout, stderr) = common::text(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout, "42\n");
    let out = common::wray(&["call", "--address", &url, m, "fails"]);
    let stderr = common::text(&out).1;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("fails always fails"), "{stderr}");
}

#[test]
fn actors_over_http() {
    let n = serve(None);
    let addr = n.node.addr();
    let digest = upload_c_math(addr);
    let r = post(
        addr,
        "/api/actors",
        &json!({"module": digest, "class": "Counter", "args": [5]}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let id = r.json()["actor_id"].as_str().unwrap().to_string();
    for want in [6, 7] {
        let r = http(
            addr,
            "POST",
            &format!("/api/actors/{id}/methods/incr?wait=600"),
            &[],
            b"",
        );
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json()["result"], json!(want));
    }
    for (path, body, status, says) in [
        (
            "/api/actors",
            json!({"module": digest, "class": "Nope"}),
            404,
            "no actor type `Nope`",
        ),
        (
            "/api/actors",
            json!({"module": "00", "class": "Counter"}),
            404,
            "no module",
        ),
        (
            &*format!("/api/actors/{id}/methods/nope"),
            json!({}),
            404,
            "no method `nope`",
        ),
        (
            "/api/actors/999999/methods/incr",
            json!({}),
            404,
            "no live actor",
        ),
    ] {
        let r = post(addr, path, &body);
        assert_eq!(r.status, status, "{path}: {}", r.body);
        assert!(r.error().contains(says), "{path}: {}", r.body);
    }
    // A name is taken once.
    let named = json!({"module": digest, "class": "Counter", "args": [0], "name": "once"});
    assert_eq!(post(addr, "/api/actors", &named).status, 200);
    let r = post(addr, "/api/actors", &named);
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.error().contains("\"once\" exists already"), "{}", r.body);
    // A constructor argument of the wrong kind is refused.
    let r = post(
        addr,
        "/api/actors",
        &json!({"module": digest, "class": "Counter", "args": ["x"]}),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.error().contains("argument `start`"), "{}", r.body);
    // A constructor that fails: the actor is dead, its calls fail.
    let r = post(
        addr,
        "/api/actors",
        &json!({"module": digest, "class": "Counter", "args": [{"$int": "-9223372036854775809"}]}),
    );
    let dead = r.json()["actor_id"].as_str().unwrap().to_string();
    let r = http(
        addr,
        "POST",
        &format!("/api/actors/{dead}/methods/incr?wait=600"),
        &[],
        b"",
    );
    assert!(matches!(r.status, 404 | 422), "{}", r.body);
}

#[test]
fn objects_in_batches_over_http() {
    let n = serve(None);
    let addr = n.node.addr();
    let digest = upload_c_math(addr);
    let ids: Vec<String> = (0..50)
        .map(|i| {
            let r = call(
                addr,
                "",
                json!({"module": digest, "function": "add", "args": [i, 1]}),
            );
            r.json()["object_id"].as_str().unwrap().to_string()
        })
        .collect();
    let failed = call(addr, "", json!({"module": digest, "function": "fails"})).json()["object_id"]
        .as_str()
        .unwrap()
        .to_string();
    // Wait for 10, then all: the ready ones in the order asked.
    let r = post(
        addr,
        "/api/objects/wait",
        &json!({"ids": ids, "num_returns": 10, "timeout": 600}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let ready: Vec<String> = serde_json::from_value(r.json()["ready"].clone()).unwrap();
    assert_eq!(ready.len(), 10);
    let order: Vec<usize> = ready
        .iter()
        .map(|id| ids.iter().position(|x| x == id).unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    let mut all = ids.clone();
    all.push(failed.clone());
    let r = post(
        addr,
        "/api/objects/values",
        &json!({"ids": all, "timeout": 600}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let objects = r.json()["objects"].as_array().unwrap().clone();
    assert_eq!(objects.len(), 51);
    for (i, o) in objects[..50].iter().enumerate() {
        assert_eq!(o["result"], json!(i + 1), "{o}");
    }
    assert_eq!(objects[50]["failure"]["function"], json!("fails"));
    // Unknown ids: refused by wait, reported by values.
    let unknown = "22".repeat(32);
    let r = post(addr, "/api/objects/wait", &json!({"ids": [unknown]}));
    assert_eq!(r.status, 404, "{}", r.body);
    let r = post(addr, "/api/objects/values", &json!({"ids": [unknown]}));
    assert_eq!(
        r.json()["objects"][0]["failure"]["kind"],
        json!("unknown object")
    );
    for bad in [
        json!({"ids": ["zz"]}),
        json!({"ids": ids, "num_returns": 99}),
        json!({"ids": [], "timeout": -1}),
    ] {
        let r = post(addr, "/api/objects/wait", &bad);
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
    // Past a JSON body's 64 KiB: 2,000 ids (the unknown ones reported).
    let many: Vec<String> = (0..2000).map(|i| format!("{i:064x}")).collect();
    let r = post(addr, "/api/objects/values", &json!({"ids": many}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["objects"].as_array().unwrap().len(), 2000);
    // Released: the node no longer holds them.
    let r = post(addr, "/api/objects/release", &json!({"ids": ids}));
    assert_eq!(r.json()["released"], json!(50));
    let r = post(addr, "/api/objects/release", &json!({"ids": ids}));
    assert_eq!(r.json()["released"], json!(0));
    common::eventually("the released objects are gone", || {
        get(addr, &format!("/api/objects/{}", ids[0])).status == 404
    });
}

/// The curl example of docs/http-api.md ("Calls and values") works as
/// written, against a node of this test's own.
#[test]
fn the_documented_curl_calls_work() {
    let n = serve(None);
    let doc = std::fs::read_to_string(root().join("docs/http-api.md")).unwrap();
    let section = &doc[doc.find("## Calls and values").unwrap()..];
    let block = section
        .split("```sh\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    let script = block.replace("localhost:8265", &n.node.addr().to_string());
    let out = Command::new("sh")
        .args(["-ec", &script])
        .current_dir(root())
        .output()
        .expect("sh and curl run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(r#""result":3"#), "{stdout}");
    assert!(stdout.contains(r#""result":42"#), "{stdout}");
}

#[test]
fn wray_inspect_shows_what_a_module_offers() {
    let out = common::wray(&["inspect", guest("c_math").to_str().unwrap()]);
    let (stdout, stderr) = common::text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("tasks: add, apply, fails, store, sum"),
        "{stdout}"
    );
    assert!(stdout.contains("actor Counter: incr"), "{stdout}");
    assert!(stdout.contains("driver: none"), "{stdout}");
    let out = common::wray(&["inspect", "--json", guest("testkit").to_str().unwrap()]);
    let j: serde_json::Value = serde_json::from_str(&common::text(&out).0).unwrap();
    assert_eq!(j["driver"], json!(true));
    assert!(j["tasks"].as_array().unwrap().contains(&json!("add")));
    assert_eq!(j["actors"]["Gate"], json!(["is_open", "open"]));
    let add = j["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == json!("add"))
        .unwrap()
        .clone();
    assert_eq!(add["params"], json!([["a", "int"], ["b", "int"]]));
    assert_eq!(add["returns"], json!("int"));
    assert_eq!(add["encoding"], json!("rkyv"));
    let out = common::wray(&["inspect", guest("hello").to_str().unwrap()]);
    assert!(
        common::text(&out).0.contains("say_hello("),
        "{}",
        common::text(&out).0
    );
    // Not a module: a clear error.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.wasm");
    std::fs::write(&bad, b"not wasm").unwrap();
    let out = common::wray(&["inspect", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        common::text(&out).1.contains("error"),
        "{}",
        common::text(&out).1
    );
}

/// A Rust guest's manifest declares its actors too: constructors and
/// methods called with the wrong arity are refused before anything runs.
#[test]
fn actor_calls_are_checked_against_the_manifest() {
    let (rt, m) = load("counter");
    let sig = m.signature("method", Some("Counter"), "add").unwrap();
    assert_eq!(sig.describe(), "add(by: int) -> int");
    let e = rt.actor(&m, "Counter").create().unwrap_err().to_string();
    assert!(
        e.contains("`new(start: int) -> null` takes 1 argument, not 0"),
        "{e}"
    );
    let a = rt.actor(&m, "Counter").arg(&5i64).create().unwrap();
    let e = rt.method(&a, "add").submit().unwrap_err().to_string();
    assert!(
        e.contains("`add(by: int) -> int` takes 1 argument, not 0"),
        "{e}"
    );
    let e = rt
        .method(&a, "add")
        .arg_value(&Value::Int(1))
        .submit()
        .unwrap_err()
        .to_string();
    assert!(e.contains("takes rkyv values"), "{e}");
    let r = rt.method(&a, "add").arg(&2i64).submit().unwrap();
    assert_eq!(rt.get::<i64>(&r).unwrap(), 7);
}

// ---- calls across modules ------------------------------------------------------

/// What `examples/polyglot` prints when C and Go are linked to it.
const POLYGLOT_OUTPUT: &str = "\
c_math.add(1, 2) = 3
go_math.sum([0.5, 1.5, 2.0]) = 4
c_math.add(go_math.add(3, 100), 1000) = 1103
c_math.apply(polyglot.double, 21) = 42
c_math.Counter(10).incr() x3 = [11, 12, 13]
go_math.Counter(10).incr() x3 = [11, 12, 13]
[1, 2, 3] put from Rust, C and Go is one object: true
c_math.fails() failed: fails always fails: this is its message
";

/// `--module` arguments linking the C and Go examples.
fn links() -> Vec<String> {
    GUESTS
        .iter()
        .flat_map(|name| {
            [
                "--module".to_string(),
                format!("{name}={}", guest(name).display()),
            ]
        })
        .collect()
}

#[test]
fn a_rust_program_calls_c_and_go_and_c_calls_rust() {
    let polyglot = guest("polyglot");
    let mut args = vec!["run".to_string(), polyglot.display().to_string()];
    args.extend(links());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = common::wray(&args);
    let (stdout, stderr) = common::text(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout, POLYGLOT_OUTPUT);
}

#[test]
fn a_program_calling_a_module_it_was_not_given_fails_naming_it() {
    let polyglot = guest("polyglot");
    let c = format!("c_math={}", guest("c_math").display());
    let out = common::wray(&["run", polyglot.to_str().unwrap(), "--module", &c]);
    let (stdout, stderr) = common::text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.starts_with("c_math.add(1, 2) = 3\n"), "{stdout}");
    assert!(
        stderr.contains("no module named `go_math` is linked to this program"),
        "{stderr}"
    );
    // A malformed link is refused before anything runs.
    for bad in ["c_math", "=x.wasm", "c_math="] {
        let out = common::wray(&["run", polyglot.to_str().unwrap(), "--module", bad]);
        let stderr = common::text(&out).1;
        assert_eq!(out.status.code(), Some(2), "{bad}: {stderr}");
        assert!(stderr.contains("expected NAME=FILE"), "{bad}: {stderr}");
    }
    let out = common::wray(&[
        "run",
        polyglot.to_str().unwrap(),
        "--module",
        "c_math=/no/such.wasm",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(common::text(&out).1.contains("/no/such.wasm"));
}

#[test]
fn modules_linked_to_the_host_serve_its_calls_and_c_calls_rust_through_them() {
    let (rt, c) = load("c_math");
    let rust = rt.load_file(guest("polyglot")).unwrap();
    let apply = |module: &str| {
        let r = rt
            .task(&c, "apply")
            .arg_value(&Value::Str(module.into()))
            .arg_value(&Value::Str("double".into()))
            .arg_value(&Value::Int(21))
            .submit()
            .unwrap();
        rt.get_value(&r)
    };
    // Not linked yet: the C task's nested call fails, and so does it.
    let e = apply("rusty").unwrap_err();
    assert!(
        matches!(&e, Error::Task(t) if t.message().contains("apply: the call failed")),
        "{e:?}"
    );
    rt.link("rusty", &rust);
    assert_eq!(apply("rusty").unwrap(), Value::Int(42));
    // A Rust function taking `Cbor` values is typed by its manifest.
    let sig = rust.task_signature("double").unwrap();
    assert_eq!(sig.describe(), "double(x: int) -> int");
    assert_eq!(sig.encoding, "cbor");
    let r = rt
        .task(&rust, "double")
        .arg_value(&Value::Int(-4))
        .submit()
        .unwrap();
    assert_eq!(rt.get_value(&r).unwrap(), Value::Int(-8));
    // A value of the wrong kind is refused by the manifest, and one the
    // manifest cannot judge by the Rust function itself.
    refused(
        rt.task(&rust, "double")
            .arg_value(&Value::Str("x".into()))
            .submit(),
        "argument `x`",
    );
    let r = rt
        .task(&rust, "double")
        .arg_value(&Value::Int(1 << 63))
        .submit()
        .unwrap();
    let e = common::task_error(&rt, &r);
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(e.message().contains("does not fit in a i64"), "{e:?}");
}

#[test]
fn a_job_on_a_node_links_modules_uploaded_with_it() {
    let n = serve(None);
    let url = n.node.url();
    let polyglot = guest("polyglot");
    let mut args = vec![
        "job".to_string(),
        "submit".to_string(),
        "--address".to_string(),
        url.clone(),
        "--follow".to_string(),
        polyglot.display().to_string(),
    ];
    args.extend(links());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = common::wray(&args);
    let (stdout, stderr) = common::text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains(POLYGLOT_OUTPUT), "{stdout}");
    // A link to a module the node does not have is refused, naming it.
    let bytes = std::fs::read(&polyglot).unwrap();
    let missing = "0".repeat(64);
    let r = http(
        n.node.addr(),
        "POST",
        &format!("/api/jobs/?link=c_math={missing}"),
        &[("Content-Type", "application/wasm")],
        &bytes,
    );
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(r.error().contains("module `c_math`"), "{}", r.body);
}

#[test]
fn wray_manifest_embeds_a_checked_manifest_in_a_c_or_go_module() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("c_math.wasm");
    let untyped = wray_runtime::embed_manifest(&std::fs::read(guest("c_math")).unwrap(), &[]);
    std::fs::write(&wasm, untyped.unwrap()).unwrap();
    let json = dir.path().join("m.json");
    let embed = |records: &str| {
        std::fs::write(&json, records).unwrap();
        common::wray(&["manifest", wasm.to_str().unwrap(), json.to_str().unwrap()])
    };
    // Refused, the module unchanged: not an array, not a record, a type
    // the schema does not have.
    for (bad, says) in [
        ("{}", "must be a JSON array"),
        ("[1]", "malformed record"),
        (
            r#"[{"kind": "task", "name": "add", "params": [["a", "integer"]]}]"#,
            "malformed record",
        ),
        ("[", "is not JSON"),
    ] {
        let before = std::fs::read(&wasm).unwrap();
        let out = embed(bad);
        let stderr = common::text(&out).1;
        assert_eq!(out.status.code(), Some(1), "{bad}: {stderr}");
        assert!(stderr.contains(says), "{bad}: {stderr}");
        assert_eq!(std::fs::read(&wasm).unwrap(), before, "{bad}");
    }
    let manifest = root().join("examples/c-math/manifest.json");
    let out = embed(&std::fs::read_to_string(manifest).unwrap());
    assert!(out.status.success(), "{}", common::text(&out).1);
    let out = common::wray(&["inspect", wasm.to_str().unwrap()]);
    let stdout = common::text(&out).0;
    assert!(
        stdout.contains("  add(a: int, b: int) -> int (cbor)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  apply(module: str, function: str, x: int) -> int (cbor)"),
        "{stdout}"
    );
    // Now typed: a call of the wrong kind is refused before it runs.
    let out = common::wray(&["call", wasm.to_str().unwrap(), "sum", "1"]);
    let stderr = common::text(&out).1;
    assert!(
        stderr.contains("argument `xs` of `sum(xs: list) -> float` must be a list, not an int"),
        "{stderr}"
    );
}

#[test]
fn objects_record_their_encoding_and_a_function_refuses_another() {
    let (rt, c) = load("c_math");
    let rust = rt.load_file(guest("testkit")).unwrap();
    // One byte, 0x07: as rkyv a u8, as CBOR the int 7. The object says
    // which it is, so it is not read as the other.
    let rkyv = rt.put(&7u8).unwrap();
    match rt.get_value(&rkyv) {
        Err(Error::Decode { reason, .. }) => {
            assert!(reason.contains("holds an rkyv value"), "{reason}")
        }
        other => panic!("an rkyv object read as a value: {other:?}"),
    }
    let refused = |r: &wray_runtime::ObjectRef, says: &str| {
        let e = common::task_error(&rt, r);
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
        assert!(e.message().contains(says), "{e}");
    };
    // An rkyv object handed to a C function: refused before it runs.
    let r = rt
        .task(&c, "add")
        .arg_ref(&rkyv)
        .arg_value(&Value::Int(1))
        .submit()
        .unwrap();
    refused(
        &r,
        "argument `a` of `add(a: int, b: int) -> int` is an rkyv object (written by Rust), \
         but the function takes cross-language (CBOR) values",
    );
    // A Rust task's result is rkyv too; a C task's is CBOR.
    let sum = rt
        .task(&rust, "add")
        .arg(&1i32)
        .arg(&2i32)
        .submit()
        .unwrap();
    let r = rt
        .task(&c, "add")
        .arg_value(&Value::Int(1))
        .arg_ref(&sum)
        .submit()
        .unwrap();
    refused(
        &r,
        "argument `b` of `add(a: int, b: int) -> int` is an rkyv object",
    );
    let from_c = rt
        .task(&c, "add")
        .arg_value(&Value::Int(1))
        .arg_value(&Value::Int(2))
        .submit()
        .unwrap();
    let r = rt
        .task(&rust, "add")
        .arg_ref(&from_c)
        .arg(&2i32)
        .submit()
        .unwrap();
    refused(
        &r,
        "argument `a` of `add(a: int, b: int) -> int` is a cross-language (CBOR) object, but \
         the function takes rkyv values",
    );
    // A C actor's constructor too: the actor is dead, saying why.
    let counter = rt.actor(&c, "Counter").arg_ref(&rkyv).create().unwrap();
    let r = rt.method(&counter, "incr").submit().unwrap();
    let e = common::task_error(&rt, &r);
    assert!(e.to_string().contains("argument `start`"), "{e}");
    // Objects of matching encodings pass, and bytes of unknown encoding
    // are the guest's to check.
    let r = rt
        .task(&c, "add")
        .arg_ref(&from_c)
        .arg_ref(&rt.put_bytes(&[0x08]).unwrap())
        .submit()
        .unwrap();
    assert_eq!(rt.get_value(&r).unwrap(), Value::Int(11));
}

#[test]
fn the_node_says_how_each_object_is_encoded_and_reads_none_as_another() {
    let n = serve(None);
    let addr = n.node.addr();
    let rkyv = n.rt.put(&7u8).unwrap();
    let cbor = n.rt.put_value(&Value::Int(7)).unwrap();
    let raw = n.rt.put_bytes(b"\x18\x2a").unwrap();
    let list = get(addr, "/api/v0/objects?limit=1000").json();
    let encoding = |r: &wray_runtime::ObjectRef| {
        let id = r.id().to_string();
        list["objects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["object_id"] == json!(id))
            .unwrap_or_else(|| panic!("{id} is listed"))["encoding"]
            .clone()
    };
    assert_eq!(encoding(&rkyv), json!("rkyv"));
    assert_eq!(encoding(&cbor), json!("cbor"));
    assert_eq!(encoding(&raw), json!("raw"));
    let r = get(addr, &format!("/api/objects/{}", rkyv.id()));
    assert!(r.body.contains("holds an rkyv value"), "{}", r.body);
    let r = get(addr, &format!("/api/objects/{}", raw.id()));
    assert_eq!(r.json()["result"], json!(42), "{}", r.body);
}

#[test]
fn the_same_value_put_from_any_language_is_one_object() {
    let (rt, c) = load("c_math");
    let go = rt.load_file(guest("go_math")).unwrap();
    for v in [
        Value::Int(7),
        Value::Str("wray".into()),
        Value::List(vec![Value::Float(1.5), Value::Null, Value::Bool(true)]),
        Value::map([(Value::Str("k".into()), Value::Bytes(vec![0, 1]))]),
    ] {
        let from_host = rt.put_value(&v).unwrap();
        for m in [&c, &go] {
            let r = rt.task(m, "store").arg_value(&v).submit().unwrap();
            assert_eq!(
                rt.get_value(&r).unwrap(),
                Value::Ref(from_host.id()),
                "{v:?} from {}",
                m.name()
            );
        }
    }
    // (A guest cannot pass other bytes off as a value: tests/all/abi.rs.)
}

#[test]
fn a_guests_calls_are_checked_against_the_callees_manifest() {
    let (rt, c) = load("c_math");
    let kit = rt.load_file(guest("testkit")).unwrap();
    rt.link("c_math", &c);
    let call = |function: &str, args: Vec<Value>| {
        let r = rt
            .task(&kit, "cross_call")
            .arg_value(&Value::Str("c_math".into()))
            .arg_value(&Value::Str(function.into()))
            .arg_value(&Value::List(args))
            .submit()
            .unwrap();
        rt.get_value(&r)
    };
    assert_eq!(
        call("add", vec![Value::Int(1), Value::Int(2)]).unwrap(),
        Value::Int(3)
    );
    for (args, says) in [
        (
            vec![Value::Str("x".into()), Value::Int(1)],
            "argument `a` of `add(a: int, b: int) -> int` must be an int, not a str",
        ),
        (
            vec![Value::Int(1)],
            "`add(a: int, b: int) -> int` takes 2 arguments, not 1",
        ),
    ] {
        failed(call("add", args), says);
    }
}

#[test]
fn a_guests_actor_calls_are_checked_against_the_callees_manifest() {
    let (rt, c) = load("c_math");
    let kit = rt.load_file(guest("testkit")).unwrap();
    rt.link("c_math", &c);
    let s = |v: &str| Value::Str(v.into());
    let drive = |args: Vec<Value>, method: &str, margs: Vec<Value>| {
        let r = rt
            .task(&kit, "cross_actor")
            .arg_value(&s("c_math"))
            .arg_value(&s("Counter"))
            .arg_value(&Value::List(args))
            .arg_value(&s(method))
            .arg_value(&Value::List(margs))
            .submit()
            .unwrap();
        rt.get_value(&r)
    };
    assert_eq!(
        drive(vec![Value::Int(41)], "incr", vec![]).unwrap(),
        Value::Int(42)
    );
    for (args, margs, says) in [
        (
            vec![s("x")],
            vec![],
            "argument `start` of `new(start: int) -> null` must be an int, not a str",
        ),
        (
            vec![Value::Int(0)],
            vec![Value::Int(1)],
            "`incr() -> int` takes 0 arguments, not 1",
        ),
    ] {
        failed(drive(args, "incr", margs), says);
    }
}
