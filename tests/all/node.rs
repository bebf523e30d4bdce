//! The node's HTTP API: jobs, state, metrics, timeline, and the guard in
//! front of all of it (Host, Origin, token, body limits); and the CLI that
//! starts, queries and stops a node.

use crate::common::{self, guest};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use wray_runtime::node::{LogStore, Node, NodeOptions};
use wray_runtime::{Module, NullSink, Runtime};

/// A runtime serving the API on a free port, with the testkit loaded.
pub struct TestNode {
    pub node: Node,
    pub m: Module,
    pub rt: Runtime,
}

pub fn serve(token: Option<&str>) -> TestNode {
    serve_with(common::builder(), token)
}

fn serve_with(builder: wray_runtime::Builder, token: Option<&str>) -> TestNode {
    let logs = Arc::new(LogStore::new(Arc::new(NullSink)));
    let rt = builder.output(logs.clone()).build().unwrap();
    let m = rt.load_file(guest("testkit")).unwrap();
    let node = Node::serve(
        &rt,
        logs,
        NodeOptions {
            port: 0,
            token: token.map(str::to_string),
            ..NodeOptions::default()
        },
    )
    .unwrap();
    TestNode { node, m, rt }
}

/// An HTTP response: status, headers (lowercased names), body.
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// The body's bytes, as sent.
    pub bytes: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// The `error` message of a refused request.
    pub fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error message: {}", self.body))
            .to_string()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One request over a fresh connection. `headers` may override `Host`.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: {addr}\r\n"));
    }
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
    {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    // The server may answer (and close) before reading a refused body.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let bytes = raw.get(split + 4..).unwrap_or_default().to_vec();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {raw:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
        .collect();
    Resp {
        status,
        headers,
        body: body.to_string(),
        bytes,
    }
}

pub fn get(addr: SocketAddr, path: &str) -> Resp {
    get_as(addr, path, &[])
}

/// `GET path` with `headers` (a token, say).
pub fn get_as(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Resp {
    http(addr, "GET", path, headers, b"")
}

pub fn post(addr: SocketAddr, path: &str, body: &Value) -> Resp {
    http(
        addr,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
}

/// Submits `module`'s bytes as a job with `args`; returns its id.
pub fn submit(addr: SocketAddr, module: &str, args: &[&str]) -> String {
    submit_as(addr, module, args, &[])
}

/// [`submit`], with `headers` (a token, say).
pub fn submit_as(
    addr: SocketAddr,
    module: &str,
    args: &[&str],
    headers: &[(&str, &str)],
) -> String {
    let bytes = std::fs::read(guest(module)).unwrap();
    let query: String = args.iter().map(|a| format!("&arg={a}")).collect();
    let mut headers = headers.to_vec();
    headers.push(("Content-Type", "application/wasm"));
    let r = http(
        addr,
        "POST",
        &format!("/api/jobs/?name={module}{query}"),
        &headers,
        &bytes,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["job_id"].as_str().unwrap().to_string()
}

/// Waits for job `id` to end, however it ends; returns the job.
pub fn wait_job_end(addr: SocketAddr, id: &str) -> Value {
    wait_job_end_as(addr, id, &[])
}

/// [`wait_job_end`], with `headers` (a token, say).
pub fn wait_job_end_as(addr: SocketAddr, id: &str, headers: &[(&str, &str)]) -> Value {
    let mut job = Value::Null;
    common::eventually(&format!("{id} ends"), || {
        job = get_as(addr, &format!("/api/jobs/{id}"), headers).json();
        job["status"] != "RUNNING" && job["status"] != "PENDING"
    });
    job
}

/// Waits for job `id` to reach `status`; returns the job.
pub fn wait_job(addr: SocketAddr, id: &str, status: &str) -> Value {
    let mut job = Value::Null;
    common::eventually(&format!("{id} is {status}"), || {
        job = get(addr, &format!("/api/jobs/{id}")).json();
        job["status"] == status
    });
    job
}

#[test]
fn jobs_run_over_http_and_everything_they_did_is_listed() {
    let n = serve(None);
    let a = n.node.addr();
    let id = submit(a, "hello", &["x"]);
    let job = wait_job(a, &id, "SUCCEEDED");
    assert_eq!(job["exit_code"], 0);
    assert_eq!(job["args"], json!(["x"]));
    assert_eq!(job["tasks"]["FINISHED"], 1, "{job}");
    let logs = get(a, &format!("/api/jobs/{id}/logs")).json();
    let text = logs["logs"].as_str().unwrap();
    assert!(text.contains("(say_hello task="), "{text}");
    assert!(text.contains("Hello, wray!"), "{text}");
    assert_eq!(logs["done"], true);
    // Following from the returned offset gives nothing new.
    let rest = get(a, &format!("/api/jobs/{id}/logs?offset={}", logs["offset"])).json();
    assert_eq!(rest["logs"], "");

    let tasks = get(a, &format!("/api/v0/tasks?job={id}")).json();
    assert_eq!(tasks["total"], 1);
    let t = &tasks["tasks"][0];
    assert_eq!(
        (t["function"].as_str(), t["state"].as_str()),
        (Some("say_hello"), Some("FINISHED"))
    );
    assert_eq!(
        (t["attempts"].as_u64(), t["kind"].as_str()),
        (Some(1), Some("TASK"))
    );
    assert!(t["duration_ms"].as_f64().unwrap() >= 0.0);
    let summary = get(a, "/api/v0/tasks/summary").json();
    assert_eq!(summary["functions"][0]["function"], "say_hello");
    assert_eq!(summary["functions"][0]["FINISHED"], 1);
    let status = get(a, "/api/v0/status").json();
    assert_eq!(status["tasks"]["FINISHED"], 1);
    assert_eq!(status["jobs"]["SUCCEEDED"], 1);
    assert_eq!(status["cpus"]["total"], 2);
    assert!(status["memory"]["rss_bytes"].as_u64().unwrap() > 0);
    let nodes = get(a, "/api/v0/nodes").json();
    assert_eq!(nodes[0]["address"], a.to_string());
    assert_eq!(get(a, "/api/v0/config").json()["num_cpus"], 2);
    let jobs = get(a, "/api/jobs/").json();
    assert_eq!(jobs[0]["job_id"], id);
    let lines = get(a, "/api/v0/logs?q=Hello").json();
    assert_eq!(lines["total"], 1, "{lines}");
    assert_eq!(lines["lines"][0]["job_id"], id);

    let trace = get(a, "/api/v0/timeline").json();
    let e = trace
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "say_hello")
        .expect("an event for the task");
    assert_eq!(e["ph"], "X");
    assert!(e["dur"].as_u64().is_some() && e["ts"].as_u64().unwrap() > 0);

    let metrics = get(a, "/metrics");
    assert!(
        metrics
            .header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    for line in [
        "wray_tasks{state=\"FINISHED\"} 1",
        "wray_jobs{status=\"SUCCEEDED\"} 1",
        "wray_task_duration_seconds_count{function=\"say_hello\"} 1",
        "wray_task_duration_seconds_bucket{function=\"say_hello\",le=\"+Inf\"} 1",
        "wray_object_store_bytes ",
        "wray_queue_length 0",
    ] {
        assert!(
            metrics.body.contains(line),
            "no `{line}` in\n{}",
            metrics.body
        );
    }
}

#[test]
fn modules_are_uploaded_by_digest_and_run_from_json() {
    let n = serve(None);
    let a = n.node.addr();
    let bytes = std::fs::read(guest("hello")).unwrap();
    let r = http(a, "POST", "/api/modules", &[], &bytes);
    assert_eq!(r.status, 200, "{}", r.body);
    let digest = r.json()["digest"].as_str().unwrap().to_string();
    assert_eq!(digest, blake3::hash(&bytes).to_hex().to_string());
    let r = post(
        a,
        "/api/jobs/",
        &json!({"module": digest, "args": ["a"], "name": "hi"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let id = r.json()["job_id"].as_str().unwrap().to_string();
    let job = wait_job(a, &id, "SUCCEEDED");
    assert_eq!(
        (job["name"].as_str(), job["module"].as_str()),
        (Some("hi"), Some(&*digest))
    );

    let unknown = post(a, "/api/jobs/", &json!({"module": "ab".repeat(32)}));
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    assert!(unknown.error().contains("upload it first"));
    let bad = post(a, "/api/jobs/", &json!({"module": "../../etc/passwd"}));
    assert_eq!(bad.status, 400, "{}", bad.body);
    let extra = post(
        a,
        "/api/jobs/",
        &json!({"module": digest, "path": "/tmp/x.wasm"}),
    );
    assert_eq!(
        extra.status, 400,
        "unknown fields are refused: {}",
        extra.body
    );
}

#[test]
fn bad_input_to_every_endpoint_gets_a_clear_error() {
    let n = serve(None);
    let a = n.node.addr();
    let wasm = [("Content-Type", "application/wasm")];
    let r = http(a, "POST", "/api/jobs/", &wasm, b"junk");
    assert_eq!(r.status, 400);
    assert!(r.body.contains("not a WebAssembly module"), "{}", r.body);
    let lib = wat::parse_str("(module)").unwrap();
    let r = http(a, "POST", "/api/jobs/", &wasm, &lib);
    assert_eq!(r.status, 400);
    assert!(r.body.contains("no driver"), "{}", r.body);
    let r = http(a, "POST", "/api/modules", &[], b"");
    assert_eq!(r.status, 400);
    let r = http(
        a,
        "POST",
        "/api/jobs/",
        &[("Content-Type", "application/json")],
        b"{nope",
    );
    assert_eq!(r.status, 400);
    assert!(r.error().contains("JSON"));
    let json = [("Content-Type", "application/json")];
    let r = http(a, "POST", "/api/jobs/", &json, &vec![b' '; 100 << 10]);
    assert_eq!(r.status, 413, "{}", r.body);
    // A body announced past the limit is refused before it is read.
    let r = http(
        a,
        "POST",
        "/api/modules",
        &[("Content-Length", "300000000")],
        b"",
    );
    assert_eq!(r.status, 413, "{}", r.body);
    for path in [
        "/api/jobs/job-99",
        "/api/jobs/job-99/logs",
        "/api/jobs/nonsense",
    ] {
        assert_eq!(get(a, path).status, 404, "{path}");
    }
    assert_eq!(post(a, "/api/jobs/job-99/stop", &Value::Null).status, 404);
    assert_eq!(
        post(a, "/api/v0/actors/12345/kill", &Value::Null).status,
        404
    );
    assert_eq!(post(a, "/api/v0/actors/x/kill", &Value::Null).status, 404);
    assert_eq!(get(a, "/api/v0/nothing").status, 404);
    assert_eq!(get(a, "/api/v0/tasks?state=SLEEPING").status, 400);
    assert_eq!(get(a, "/api/v0/tasks?job=x").status, 400);
    // Still serving.
    let id = submit(a, "hello", &[]);
    wait_job(a, &id, "SUCCEEDED");
}

#[test]
fn a_running_job_stops_and_its_tasks_are_cancelled() {
    let n = serve(None);
    let a = n.node.addr();
    let id = submit(a, "testkit", &["forever"]);
    common::eventually("the job's tasks run", || {
        get(a, &format!("/api/v0/tasks?job={id}&state=RUNNING")).json()["total"] == 2
    });
    let r = post(a, &format!("/api/jobs/{id}/stop"), &Value::Null);
    assert_eq!(r.json()["stopped"], true, "{}", r.body);
    wait_job(a, &id, "STOPPED");
    // STOPPED at once; the end time once the driver has unwound.
    common::eventually("the stopped job has an end time", || {
        get(a, &format!("/api/jobs/{id}")).json()["end_time_ms"]
            .as_u64()
            .is_some()
    });
    common::eventually("the job's tasks are cancelled", || {
        let t = get(a, &format!("/api/jobs/{id}")).json()["tasks"].clone();
        t["RUNNING"] == 0 && t["PENDING"] == 0 && t["CANCELLED"] == 2
    });
    common::eventually("nothing of the job is left", || {
        n.rt.stats().tasks_unfinished == 0
    });
    assert_eq!(
        post(a, &format!("/api/jobs/{id}/stop"), &Value::Null).json()["stopped"],
        false
    );
    let logs = get(a, &format!("/api/jobs/{id}/logs")).json();
    assert!(
        logs["logs"]
            .as_str()
            .unwrap()
            .contains("running until stopped")
    );
    let id = submit(a, "hello", &[]);
    wait_job(a, &id, "SUCCEEDED");
}

/// As in Ray, a job waits PENDING while it cannot start: here every call
/// slot is taken. Stopped while pending, it never starts.
#[test]
fn a_job_is_pending_while_every_call_slot_is_taken() {
    let n = serve_with(common::builder().call_slots(2), None);
    let a = n.node.addr();
    // Its driver and its one task, asleep for ten minutes, take both
    // slots until the job is stopped.
    let busy = submit(a, "testkit", &["sleepers", "1"]);
    common::eventually("every call slot is taken", || {
        n.rt.stats().call_slots_free == 0
    });
    let waiting = submit(a, "hello", &[]);
    let stopped = submit(a, "hello", &[]);
    for id in [&waiting, &stopped] {
        assert_eq!(
            get(a, &format!("/api/jobs/{id}")).json()["status"],
            "PENDING"
        );
    }
    let status = get(a, "/api/v0/status").json();
    assert_eq!(status["jobs"]["PENDING"], 2, "{status}");
    let r = post(a, &format!("/api/jobs/{stopped}/stop"), &Value::Null);
    assert_eq!(r.json()["stopped"], true, "{}", r.body);
    let job = wait_job(a, &stopped, "STOPPED");
    common::eventually("the stopped job has an end time", || {
        get(a, &format!("/api/jobs/{stopped}")).json()["end_time_ms"]
            .as_u64()
            .is_some()
    });
    assert_eq!(job["tasks"]["FINISHED"], 0);
    // The busy job gives its slots back: the pending one runs.
    post(a, &format!("/api/jobs/{busy}/stop"), &Value::Null);
    wait_job(a, &waiting, "SUCCEEDED");
    let logs = get(a, &format!("/api/jobs/{waiting}/logs")).json();
    assert!(logs["logs"].as_str().unwrap().contains("hello"), "{logs}");
    let logs = get(a, &format!("/api/jobs/{stopped}/logs")).json();
    assert_eq!(logs["logs"], "", "the stopped job never ran");
    assert_eq!(
        get(a, &format!("/api/jobs/{stopped}")).json()["status"],
        "STOPPED"
    );
}

#[test]
fn only_ended_jobs_are_deleted_with_their_logs() {
    let n = serve(None);
    let a = n.node.addr();
    let delete = |id: &str| http(a, "DELETE", &format!("/api/jobs/{id}"), &[], b"");
    let running = submit(a, "testkit", &["forever"]);
    wait_job(a, &running, "RUNNING");
    let r = delete(&running);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.error().contains("has not ended"), "{}", r.body);
    let done = submit(a, "hello", &[]);
    wait_job(a, &done, "SUCCEEDED");
    assert!(
        get(a, &format!("/api/v0/logs?job={done}"))
            .body
            .contains("Hello, wray!")
    );
    let r = delete(&done);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["deleted"], true);
    assert_eq!(get(a, &format!("/api/jobs/{done}")).status, 404);
    assert_eq!(get(a, &format!("/api/jobs/{done}/logs")).status, 404);
    assert!(!get(a, "/api/jobs/").body.contains(&format!("\"{done}\"")));
    assert!(
        !get(a, &format!("/api/v0/logs?job={done}"))
            .body
            .contains("Hello, wray!")
    );
    assert_eq!(delete(&done).status, 404);
    assert_eq!(delete("job-x").status, 404);
    // The running job is untouched; once stopped and unwound, it goes too.
    assert_eq!(
        get(a, &format!("/api/jobs/{running}")).json()["status"],
        "RUNNING"
    );
    post(a, &format!("/api/jobs/{running}/stop"), &Value::Null);
    common::eventually("the stopped job is deleted once its driver unwound", || {
        delete(&running).status == 200
    });
    assert!(get(a, "/api/jobs/").json().as_array().unwrap().is_empty());
    let id = submit(a, "hello", &[]);
    wait_job(a, &id, "SUCCEEDED");
}

#[test]
fn actors_are_listed_and_killed_over_http() {
    let n = serve(None);
    let a = n.node.addr();
    let c =
        n.rt.actor(&n.m, "Counter")
            .arg(&1u64)
            .name("c1")
            .create()
            .unwrap();
    let r = n.rt.method(&c, "incr").arg(&1u64).submit().unwrap();
    assert_eq!(n.rt.get::<u64>(&r).unwrap(), 2);
    let list = get(a, "/api/v0/actors?name=c1").json();
    assert_eq!(list["total"], 1, "{list}");
    let actor = &list["actors"][0];
    assert_eq!(
        (actor["state"].as_str(), actor["calls"].as_u64()),
        (Some("ALIVE"), Some(1))
    );
    assert_eq!(actor["class"], "Counter");
    let id = actor["actor_id"].as_str().unwrap().to_string();
    let calls = get(a, &format!("/api/v0/tasks?actor={id}")).json();
    assert_eq!(calls["tasks"][0]["function"], "Counter.incr");
    assert_eq!(calls["tasks"][0]["kind"], "ACTOR_METHOD");
    let r = post(a, &format!("/api/v0/actors/{id}/kill"), &Value::Null);
    assert_eq!(r.json()["killed"], true, "{}", r.body);
    common::eventually("the actor is dead", || {
        get(a, "/api/v0/actors?name=c1").json()["actors"][0]["state"] == "DEAD"
    });
    let dead = get(a, "/api/v0/actors?state=DEAD").json();
    assert!(
        dead["actors"][0]["death_cause"]["message"]
            .as_str()
            .unwrap()
            .contains("killed")
    );
    assert_eq!(
        post(a, &format!("/api/v0/actors/{id}/kill"), &Value::Null).json()["killed"],
        false
    );
}

#[test]
fn hosts_origins_and_tokens_are_checked() {
    let n = serve(None);
    let a = n.node.addr();
    let r = http(
        a,
        "GET",
        "/api/v0/status",
        &[("Host", "evil.example:8265")],
        b"",
    );
    assert_eq!(r.status, 421, "DNS rebinding is refused");
    let r = http(
        a,
        "GET",
        "/api/v0/status",
        &[("Host", &format!("localhost:{}", a.port()))],
        b"",
    );
    assert_eq!(r.status, 200);
    let evil = [("Origin", "http://evil.example")];
    for method in ["POST", "DELETE", "PUT", "PATCH"] {
        let r = http(a, method, "/api/jobs/job-1/stop", &evil, b"");
        assert_eq!(r.status, 403, "{method} from another origin");
    }
    let own = format!("http://{a}");
    let r = http(a, "POST", "/api/jobs/job-1/stop", &[("Origin", &own)], b"");
    assert_eq!(r.status, 404, "the node's own origin passes the guard");
    let page = get(a, "/");
    assert!(
        page.header("content-security-policy")
            .unwrap()
            .contains("default-src 'self'")
    );
    assert_eq!(page.header("x-frame-options"), Some("DENY"));

    let secret = "s3cret-token";
    let n = serve(Some(secret));
    let a = n.node.addr();
    assert_eq!(get(a, "/api/v0/status").status, 401);
    let wrong = http(
        a,
        "GET",
        "/api/v0/status",
        &[("Authorization", "Bearer s3cret-tokem")],
        b"",
    );
    assert_eq!(wrong.status, 401);
    let right = format!("Bearer {secret}");
    assert_eq!(
        http(
            a,
            "GET",
            "/api/v0/status",
            &[("Authorization", &right)],
            b""
        )
        .status,
        200
    );
    let cookie = format!("wray_token={secret}");
    assert_eq!(
        http(a, "GET", "/metrics", &[("Cookie", &cookie)], b"").status,
        200
    );
    let login = get(a, &format!("/?token={secret}"));
    assert_eq!(login.status, 200);
    let set = login.header("set-cookie").unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    assert!(!get(a, "/api/v0/config").body.contains(secret));

    let open = Node::serve(
        &n.rt,
        Arc::new(LogStore::new(Arc::new(NullSink))),
        NodeOptions {
            host: "0.0.0.0".parse().unwrap(),
            port: 0,
            token: None,
            ..NodeOptions::default()
        },
    );
    let err = open
        .err()
        .expect("a node open to the network needs a token");
    assert!(err.to_string().contains("needs a token"), "{err}");
}

#[test]
fn lists_page_through_many_tasks() {
    let n = serve(None);
    let a = n.node.addr();
    let refs: Vec<_> = (0..20_000)
        .map(|i| n.rt.task(&n.m, "add").arg(&i).arg(&1i32).submit().unwrap())
        .collect();
    for r in &refs {
        n.rt.get_bytes(r).unwrap();
    }
    let all = get(a, "/api/v0/tasks?state=FINISHED&limit=10").json();
    assert_eq!(all["total"], 20_000);
    assert_eq!(all["tasks"].as_array().unwrap().len(), 10);
    let newest: u64 = all["tasks"][0]["task_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let page2 = get(a, "/api/v0/tasks?limit=10&offset=10").json();
    let tenth: u64 = page2["tasks"][0]["task_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(newest - tenth, 10, "newest first, then the next page");
    let big = get(a, "/api/v0/tasks?limit=1000000").json();
    assert_eq!(
        big["tasks"].as_array().unwrap().len(),
        10_000,
        "pages are capped"
    );
    assert_eq!(
        get(a, "/api/v0/tasks/summary").json()["functions"][0]["FINISHED"],
        20_000
    );
}

/// `wray` with the state directory `dir`.
fn wray_in(dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wray"));
    c.env("WRAY_STATE_DIR", dir)
        .env("WRAY_CACHE_DIR", common::cache_dir())
        .env_remove("WRAY_ADDRESS")
        .env_remove("WRAY_TOKEN")
        .current_dir(common::root());
    c
}

#[test]
fn the_cli_starts_a_node_runs_jobs_on_it_lists_and_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = wray_in(dir.path())
        .args(["start", "--port", "0", "--num-cpus", "2"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(node.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("http://") {
        line.clear();
        assert_ne!(err.read_line(&mut line).unwrap(), 0, "the node exited");
    }
    let url = line.split_whitespace().last().unwrap().to_string();
    let run = |args: &[&str]| {
        let out = wray_in(dir.path()).args(args).output().unwrap();
        let (o, e) = common::text(&out);
        assert!(out.status.success(), "wray {args:?}: {o}\n{e}");
        o
    };
    // A command expected to fail: its standard error.
    let fails = |args: &[&str]| {
        let out = wray_in(dir.path()).args(args).output().unwrap();
        assert!(!out.status.success(), "wray {args:?} succeeded");
        common::text(&out).1
    };
    let hello = guest("hello");
    let out = run(&["job", "submit", hello.to_str().unwrap(), "--follow"]);
    assert!(out.contains("Hello, wray!"), "{out}");
    assert!(!out.contains("\x1b[2K"), "no progress line off a terminal");
    let out = run(&["run", "--address", &url, guest("pi").to_str().unwrap()]);
    assert!(out.contains("pi ~= 3.14"), "{out}");
    let jobs = run(&["list", "jobs"]);
    assert!(
        jobs.contains("job-1") && jobs.contains("job-2") && jobs.contains("SUCCEEDED"),
        "{jobs}"
    );
    let tasks: Value =
        serde_json::from_str(&run(&["list", "tasks", "-f", "function=sample", "--json"])).unwrap();
    assert_eq!(tasks["total"], 64);
    let summary = run(&["summary", "tasks"]);
    assert!(
        summary.contains("sample") && summary.contains("64"),
        "{summary}"
    );
    let status = run(&["status"]);
    assert!(status.contains("finished 65"), "{status}");
    assert!(run(&["memory"]).contains("objects"));
    let trace = dir.path().join("trace.json");
    run(&["timeline", "-o", trace.to_str().unwrap()]);
    let events: Value = serde_json::from_slice(&std::fs::read(&trace).unwrap()).unwrap();
    assert_eq!(events.as_array().unwrap().len(), 65);
    let logs = run(&["job", "logs", "job-1"]);
    assert!(logs.contains("Hello, wray!"), "{logs}");
    let job_ids = || -> Vec<String> {
        let jobs: Value = serde_json::from_str(&run(&["job", "list", "--json"])).unwrap();
        jobs.as_array()
            .unwrap()
            .iter()
            .map(|j| j["job_id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(job_ids(), ["job-2", "job-1"]);
    // The table says when each started, as a date, and for how long.
    let table = run(&["job", "list"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header[3..5], ["STARTED", "DURATION_S"], "{table}");
    let year = table
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .nth(3)
        .unwrap();
    assert!(year.starts_with("20") && year.len() == 10, "{table}");
    assert!(run(&["job", "delete", "job-1"]).contains("deleted job-1"));
    assert_eq!(job_ids(), ["job-2"]);
    let e = fails(&["job", "delete", "job-1"]);
    assert!(e.contains("no job job-1"), "{e}");
    // A failing job's status is the command's.
    let testkit = guest("testkit");
    let e = fails(&[
        "job",
        "submit",
        testkit.to_str().unwrap(),
        "--follow",
        "--",
        "no-such-scenario",
    ]);
    assert!(e.contains("failed"), "{e}");
    run(&["stop"]);
    assert!(node.wait().unwrap().success());
    let e = fails(&["status"]);
    assert!(e.contains("no wray node answers"), "{e}");
}

#[test]
fn a_detached_node_open_to_the_network_needs_its_token() {
    let dir = tempfile::tempdir().unwrap();
    let out = wray_in(dir.path())
        .args(["start", "--detach", "--host", "0.0.0.0", "--port", "0"])
        .output()
        .unwrap();
    let (o, e) = common::text(&out);
    assert!(out.status.success(), "{o}\n{e}");
    let token = std::fs::read_to_string(dir.path().join("node.token")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("node.token"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let log = std::fs::read_to_string(dir.path().join("node.log")).unwrap();
    assert!(!o.contains(token.trim()) && !e.contains(token.trim()) && !log.contains(token.trim()));
    // The token file lets this machine's user in; a wrong token does not.
    let ok = wray_in(dir.path()).args(["status"]).output().unwrap();
    assert!(ok.status.success(), "{}", common::text(&ok).1);
    let bad = wray_in(dir.path())
        .args(["status"])
        .env("WRAY_TOKEN", "guess")
        .output()
        .unwrap();
    assert!(
        common::text(&bad).1.contains("401"),
        "{}",
        common::text(&bad).1
    );
    let stop = wray_in(dir.path()).args(["stop"]).output().unwrap();
    assert!(stop.status.success(), "{}", common::text(&stop).1);
}

/// Ids and filters a user types reach the node whole: a job id is one
/// path segment whatever it holds (`/`, `?`, `#`, `%`, a space), and a
/// filter's value keeps its `&`, `#`, `+` and spaces. The node names what
/// it was given in its refusals, so the message shows what arrived.
#[test]
fn the_cli_sends_ids_and_filters_as_typed() {
    let n = serve(None);
    let url = format!("http://{}", n.node.addr());
    let dir = tempfile::tempdir().unwrap();
    let fails = |args: &[&str]| {
        let out = wray_in(dir.path())
            .args(args)
            .args(["--address", &url])
            .output()
            .unwrap();
        assert!(!out.status.success(), "wray {args:?} succeeded");
        common::text(&out).1
    };
    for id in ["a/b?c #d%2F", "job-1/../2", ".."] {
        for cmd in ["status", "logs", "stop", "delete"] {
            let err = fails(&["job", cmd, id]);
            assert!(
                err.contains(&format!("404 Not Found: no job {id}")),
                "job {cmd} {id:?}: {err}"
            );
        }
    }
    let state = "a b&c=d#e+f?g/h%20";
    let err = fails(&["list", "tasks", "-f", &format!("state={state}")]);
    assert!(
        err.contains(&format!("unknown task state `{state}`")),
        "{err}"
    );
}
