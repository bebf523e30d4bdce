//! Regressions from an adversarial pass over wray (a careless user, a
//! hostile guest): one test per defect, named after what it caught.

use crate::common::{self, Collect, testkit};
use std::sync::Arc;
use std::time::Duration;
use wray_runtime::ErrorKind;

// ---- sleeps escaped timeouts, cancellation and job stops ----------------------

/// A sleep through WASI (`poll_oneoff`) lasts as long as asked, no less.
#[test]
fn a_short_sleep_in_wasi_sleeps_as_asked() {
    let (rt, m) = testkit();
    let r = rt.task(&m, "sleeps").arg(&20u64).submit().unwrap();
    assert!(rt.get::<u64>(&r).unwrap() >= 20);
}

/// A task asleep in `poll_oneoff` under a 100 ms timeout used to sleep on
/// for its whole 10 minutes (and only then time out).
#[test]
fn a_sleep_in_wasi_ends_at_the_task_timeout() {
    let (rt, m) = testkit();
    let r = rt
        .task(&m, "sleeps")
        .arg(&600_000u64)
        .timeout(Duration::from_millis(100))
        .submit()
        .unwrap();
    // A minute is far past the timeout and far short of the sleep.
    match rt.get_timeout::<u64>(&r, Some(Duration::from_secs(60))) {
        Err(wray_runtime::Error::Task(e)) => assert_eq!(e.kind(), ErrorKind::Timeout, "{e}"),
        other => panic!("the timeout did not end the sleep: {other:?}"),
    }
    common::still_serving(&rt, &m);
}

/// A sleeping task held its CPU slot, and cancelling it waited for the
/// sleep's end.
#[test]
fn a_sleeping_task_gives_its_cpu_back_and_is_cancelled_at_once() {
    let rt = common::builder().num_cpus(1).build().unwrap();
    let m = rt.load_file(common::guest("testkit")).unwrap();
    let sleeper = rt.task(&m, "sleeps").arg(&600_000u64).submit().unwrap();
    common::eventually("the sleeper runs", || rt.task_counts()[1] == 1);
    // The only CPU is free while it sleeps.
    let r = rt.task(&m, "add").arg(&1i32).arg(&2i32).submit().unwrap();
    assert_eq!(rt.get::<i32>(&r).unwrap(), 3);
    assert!(!common::is_ready(&rt, &sleeper), "still asleep");
    assert!(rt.cancel(&sleeper));
    let e = common::task_error(&rt, &sleeper);
    assert_eq!(e.kind(), ErrorKind::Cancelled, "{e}");
    common::still_serving(&rt, &m);
}

/// A stopped job whose tasks slept for 10 minutes left them running on
/// every CPU, so the next job stayed pending.
#[test]
fn stopping_a_job_ends_the_tasks_sleeping_in_it() {
    let out = Collect::default();
    let rt = common::builder()
        .output(Arc::new(out.clone()))
        .build()
        .unwrap();
    let m = rt.load_file(common::guest("testkit")).unwrap();
    let job = rt.start_job(&m, &["sleepers", "2"].map(String::from));
    common::eventually("both sleepers run", || {
        out.lines()
            .iter()
            .any(|(_, _, l)| l.contains("sleeping until stopped"))
            && rt.task_counts()[1] == 2
    });
    job.control().stop();
    common::eventually("the job ends", || job.is_finished());
    common::eventually("its sleeping tasks ended and gave their slots back", || {
        let s = rt.stats();
        s.tasks_unfinished == 0 && s.cpu_slots_free == rt.num_cpus()
    });
    common::still_serving(&rt, &m);
}

// ---- the host aborted when a program exited with many tasks queued ------------

/// A driver that returned with 10,000 tasks still queued made the host
/// abort (a stack overflow, one frame per queued task, at shutdown).
#[test]
fn a_driver_that_exits_with_100000_tasks_queued_exits_cleanly() {
    let out = common::wray(&[
        "run",
        "--num-cpus",
        "1",
        common::guest("testkit").to_str().unwrap(),
        "--",
        "leave-queued",
        "100000",
    ]);
    let (stdout, stderr) = common::text(&out);
    assert!(out.status.success(), "{:?}\n{stdout}\n{stderr}", out.status);
    assert!(stdout.contains("leaving 100000 tasks queued"), "{stdout}");
    assert!(!stderr.contains("overflow"), "{stderr}");
}

// ---- names with line feeds injected lines into /metrics --------------------

/// A module exporting `wray:task/a"} 1\nevil_injected_metric 666\n# x` put
/// a bare `evil_injected_metric 666` line into `/metrics`. Every line must
/// be a comment or a well-formed sample, and the names must come back
/// whole as label values.
#[test]
fn a_function_name_cannot_inject_lines_into_metrics() {
    let n = crate::node::serve(None);
    let evil = ["a\"} 1\nevil_injected_metric 666\n# x", "b\\\"\nevil_two 1"];
    let wasm = wat::parse_str(
        r#"(module
          (import "wray:host/v1" "task_return"
            (func $ret (param i32 i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (func $f (result i32)
            (drop (call $ret (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))
            (i32.const 0))
          (export "wray:task/a\"} 1\nevil_injected_metric 666\n# x" (func $f))
          (export "wray:task/b\\\"\nevil_two 1" (func $f)))"#,
    )
    .unwrap();
    let m = n.rt.load_bytes("evil", &wasm).unwrap();
    for f in evil {
        let r = n.rt.task(&m, f).submit().unwrap();
        n.rt.get_bytes(&r).unwrap();
    }
    let body = crate::node::get(n.node.addr(), "/metrics").body;
    let samples: Vec<Sample> = body
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| parse_sample(l).unwrap_or_else(|e| panic!("{e}: `{l}` in\n{body}")))
        .collect();
    for s in &samples {
        assert!(s.name.starts_with("wray_"), "{} in\n{body}", s.name);
    }
    for f in evil {
        let count = samples
            .iter()
            .find(|s| {
                s.name == "wray_task_duration_seconds_count"
                    && s.labels == [("function".to_string(), f.to_string())]
            })
            .unwrap_or_else(|| panic!("no count for {f:?} in\n{body}"));
        assert_eq!(count.value, 1.0);
    }
}

/// One sample of the Prometheus text format.
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

/// Parses `name{label="value",...} value`, label values unescaped (`\\`,
/// `\"`, `\n`, nothing else).
fn parse_sample(line: &str) -> Result<Sample, String> {
    let is_name = |c: char, first: bool| {
        c.is_ascii_alphabetic() || c == '_' || c == ':' || (!first && c.is_ascii_digit())
    };
    let mut chars = line.chars().peekable();
    let mut name = String::new();
    while let Some(&c) = chars.peek() {
        if !is_name(c, name.is_empty()) {
            break;
        }
        name.push(c);
        chars.next();
    }
    if name.is_empty() {
        return Err("no metric name".into());
    }
    let mut labels = Vec::new();
    if chars.peek() == Some(&'{') {
        chars.next();
        loop {
            let mut key = String::new();
            for c in chars.by_ref() {
                if c == '=' {
                    break;
                }
                if !is_name(c, key.is_empty()) {
                    return Err(format!("bad label name character {c:?}"));
                }
                key.push(c);
            }
            if chars.next() != Some('"') {
                return Err("a label value must be quoted".into());
            }
            let mut value = String::new();
            loop {
                match chars.next().ok_or("unterminated label value")? {
                    '"' => break,
                    '\\' => match chars.next() {
                        Some('\\') => value.push('\\'),
                        Some('"') => value.push('"'),
                        Some('n') => value.push('\n'),
                        other => return Err(format!("bad escape {other:?}")),
                    },
                    c => value.push(c),
                }
            }
            labels.push((key, value));
            match chars.next() {
                Some(',') => continue,
                Some('}') => break,
                other => return Err(format!("expected , or }} after a label, not {other:?}")),
            }
        }
    }
    if chars.next() != Some(' ') {
        return Err("no space before the value".into());
    }
    let rest: String = chars.collect();
    let value = match rest.as_str() {
        "+Inf" => f64::INFINITY,
        v => v.parse().map_err(|e| format!("bad value `{v}`: {e}"))?,
    };
    Ok(Sample {
        name,
        labels,
        value,
    })
}

// ---- spill directories: shared by two processes, outliving their owner --------

/// Two processes given one `--spill-dir` named their files alike
/// (`<digest>-<serial>`), so one's frees deleted the other's objects: the
/// first got 87 of 100 back as lost.
#[test]
fn two_runtimes_sharing_a_spill_dir_keep_their_own_objects() {
    let dir = tempfile::tempdir().unwrap();
    let build = || {
        common::builder()
            .object_store_memory(16 << 20)
            .spill_dir(Some(dir.path().to_path_buf()))
            .build()
            .unwrap()
    };
    // The same 40 values of 1 MiB in both.
    let values: Vec<Vec<u8>> = (0..40u8)
        .map(|i| (0..1 << 20).map(|j: u32| (j as u8) ^ i).collect())
        .collect();
    let (a, b) = (build(), build());
    let put_all = |rt: &wray_runtime::Runtime| -> Vec<_> {
        values.iter().map(|v| rt.put_bytes(v).unwrap()).collect()
    };
    let (ra, rb) = (put_all(&a), put_all(&b));
    assert!(a.stats().spilled_bytes > 0 && b.stats().spilled_bytes > 0);
    for (r, v) in rb.iter().zip(&values) {
        assert_eq!(&b.get_bytes(r).unwrap()[..], &v[..]);
    }
    drop(rb);
    drop(b);
    for (i, (r, v)) in ra.iter().zip(&values).enumerate() {
        let got = a.get_bytes(r).unwrap_or_else(|e| panic!("object {i}: {e}"));
        assert_eq!(&got[..], &v[..], "object {i}");
    }
}

/// The entries under a spill directory's parent.
fn entries(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// A child process, killed if the test ends before it does.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `wray run` with its program spilling, until a signal stops it.
fn spilling_run(dir: &std::path::Path) -> Reaped {
    use std::io::BufRead;
    let mut child = Reaped(
        std::process::Command::new(env!("CARGO_BIN_EXE_wray"))
            .args(["run", "--object-store-memory", "16MiB", "--spill-dir"])
            .arg(dir)
            .arg(common::guest("testkit"))
            .args(["--", "spill", "40", "hold"])
            .env("WRAY_CACHE_DIR", common::cache_dir())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let line = std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.contains("holding until stopped"));
    assert!(line.is_some(), "the program spilled and holds");
    child
}

/// Ctrl-C during a spilling run left its spill directory (139 MB).
#[test]
fn an_interrupted_run_removes_its_spill_files() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let dir = tempfile::tempdir().unwrap();
        let mut child = spilling_run(dir.path());
        assert_eq!(entries(dir.path()).len(), 1, "its own spill directory");
        // SAFETY: signals our own child.
        unsafe { libc::kill(child.0.id() as i32, signal) };
        let status = child.0.wait().unwrap();
        assert_eq!(status.code(), Some(128 + signal), "{status:?}");
        assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));
    }
}

/// A run killed with SIGKILL left its files (and a `.tmp`) for ever: the
/// next runtime given that directory removes them, and nothing else.
#[test]
fn spill_files_of_a_killed_process_are_removed_by_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let mine = dir.path().join("user-file");
    std::fs::write(&mine, b"not wray's").unwrap();
    let mut child = spilling_run(dir.path());
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    assert_eq!(
        entries(dir.path()).len(),
        2,
        "the dead run's directory is left"
    );
    let _rt = common::builder()
        .spill_dir(Some(dir.path().to_path_buf()))
        .build()
        .unwrap();
    common::eventually("the dead run's spill directory is removed", || {
        entries(dir.path()) == ["user-file"]
    });
    assert_eq!(std::fs::read(&mine).unwrap(), b"not wray's");
}

// ---- the CLI read files without limit ------------------------------------------

/// `wray run /dev/zero` grew to 4.1 GB in 6 s, and `wray job submit
/// /dev/zero` to 1.3 GB; a 200 MB file of zeros was read whole before its
/// header was checked.
#[test]
fn the_cli_checks_a_modules_header_and_size_before_reading_it_whole() {
    for args in [
        &["run", "/dev/zero"][..],
        &[
            "job",
            "submit",
            "--address",
            "http://127.0.0.1:9",
            "/dev/zero",
        ][..],
    ] {
        let out = common::wray(args);
        let (_, stderr) = common::text(&out);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            stderr.contains("not a WebAssembly module"),
            "{args:?}: {stderr}"
        );
    }
    // A valid header on a file past the limit: refused by its size.
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.wasm");
    let f = std::fs::File::create(&big).unwrap();
    std::io::Write::write_all(&mut &f, b"\0asm\x01\0\0\0").unwrap();
    f.set_len(wray_runtime::MAX_MODULE_SIZE as u64 + 1).unwrap();
    let out = common::wray(&["run", big.to_str().unwrap()]);
    let (_, stderr) = common::text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("largest module wray loads"), "{stderr}");
}

// ---- flags that cannot work were accepted ----------------------------------

/// `--object-store-memory 0` failed later, as a panic inside the driver;
/// `--task-timeout 0` was taken; `--memory-limit 5GiB` silently became
/// 4 GiB; `--spill-dir /etc/passwd` made every put wait 10 s to fail.
#[test]
fn flags_that_cannot_work_are_refused_up_front() {
    let hello = common::guest("hello");
    let file = tempfile::NamedTempFile::new().unwrap();
    for (flag, value, says) in [
        (
            "--object-store-memory",
            "0",
            "object_store_memory must be at least",
        ),
        ("--task-timeout", "0s", "task_timeout must be longer than 0"),
        (
            "--memory-limit",
            "5GiB",
            "memory_limit can be at most 4 GiB",
        ),
        (
            "--spill-dir",
            file.path().to_str().unwrap(),
            "spill directory",
        ),
    ] {
        let out = common::wray(&["run", flag, value, hello.to_str().unwrap()]);
        let (stdout, stderr) = common::text(&out);
        assert!(!out.status.success(), "{flag} {value} was accepted");
        assert!(stderr.contains(says), "{flag} {value}: {stderr}");
        assert!(!stdout.contains("Hello"), "{flag} {value}: the program ran");
    }
}

// ---- minor: messages and the HTTP API's edges ------------------------------------

/// Trap messages said "wasm trap: wasm trap: ...".
#[test]
fn a_trap_message_names_the_trap_once() {
    let (rt, m) = testkit();
    let r = rt.task(&m, "traps").submit().unwrap();
    let e = common::task_error(&rt, &r);
    assert_eq!(e.kind(), ErrorKind::Trap, "{e}");
    assert_eq!(e.message().matches("wasm trap").count(), 1, "{e}");
}

/// A POST with no `Origin` and a `text/plain` body (which a page elsewhere
/// may send without asking the browser first) was parsed as JSON.
#[test]
fn a_json_endpoint_reads_only_a_declared_json_body() {
    let n = crate::node::serve(None);
    let a = n.node.addr();
    let body = br#"{"module": "00", "args": []}"#;
    for ct in ["text/plain", "application/x-www-form-urlencoded", ""] {
        let headers: &[(&str, &str)] = if ct.is_empty() {
            &[]
        } else {
            &[("Content-Type", ct)]
        };
        let r = crate::node::http(a, "POST", "/api/jobs", headers, body);
        assert_eq!(r.status, 415, "{ct}: {}", r.body);
        assert!(
            r.json()["error"]
                .as_str()
                .unwrap()
                .contains("application/json")
        );
    }
    // Declared JSON is read (and this digest is refused as malformed).
    let r = crate::node::http(
        a,
        "POST",
        "/api/jobs",
        &[("Content-Type", "application/json; charset=utf-8")],
        body,
    );
    assert_eq!(r.status, 400, "{}", r.body);
}

/// A chunked upload past the limit got a plain-text 413, unlike every
/// other error.
#[test]
fn a_chunked_upload_past_the_limit_gets_a_json_error() {
    use std::io::{Read, Write};
    let n = crate::node::serve(None);
    let a = n.node.addr();
    let mut s = std::net::TcpStream::connect(a).unwrap();
    write!(
        s,
        "POST /api/modules HTTP/1.1\r\nHost: {a}\r\nConnection: close\r\n\
         Content-Type: application/wasm\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .unwrap();
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..(wray_runtime::MAX_MODULE_SIZE >> 20) + 2 {
        // The server stops reading once the limit is passed.
        if write!(s, "{:x}\r\n", chunk.len()).is_err()
            || s.write_all(&chunk).is_err()
            || s.write_all(b"\r\n").is_err()
        {
            break;
        }
    }
    let _ = s.write_all(b"0\r\n\r\n");
    let mut raw = String::new();
    let _ = s.read_to_string(&mut raw);
    assert!(raw.starts_with("HTTP/1.1 413"), "{raw}");
    assert!(
        raw.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{raw}"
    );
    assert!(raw.contains(r#""error""#), "{raw}");
}

// ---- a chain deeper than the call slots hung for ever ---------------------------

/// A task recursively submitting and getting a child 1,500 deep (1,000
/// call slots), or 10 deep with `--call-slots 4`, hung silently, holding
/// every call slot of the node.
#[test]
fn a_chain_deeper_than_half_the_call_slots_fails_its_deepest_task() {
    let (rt, m) = testkit(); // 64 call slots: at most 32 deep.
    let r = rt.task(&m, "dive").arg(&100u32).submit().unwrap();
    // Each parent passes its child's failure up, as text. (A minute turns
    // the old hang into a failure.)
    let e = match rt.get_bytes_timeout(&r, Some(Duration::from_secs(60))) {
        Err(wray_runtime::Error::Task(e)) => e.to_string(),
        other => panic!("expected the chain to fail, got {other:?}"),
    };
    assert!(
        e.contains("call depth exceeded in dive: nested 33 deep, past the limit of 32"),
        "{e}"
    );
    assert!(e.contains("--call-slots"), "{e}");
    // Within the limit it runs; and every slot came back.
    let r = rt.task(&m, "dive").arg(&31u32).submit().unwrap();
    assert_eq!(rt.get::<u32>(&r).unwrap(), 31);
    common::still_serving(&rt, &m);
    assert_eq!(rt.stats().call_slots_free, 64);
}

#[test]
fn a_chain_too_deep_for_the_call_slots_flag_fails_clearly_under_the_cli() {
    let out = common::wray(&[
        "run",
        "--call-slots",
        "4",
        common::guest("testkit").to_str().unwrap(),
        "--",
        "nested",
        "10",
    ]);
    let (_, stderr) = common::text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("call depth exceeded"), "{stderr}");
}

// ---- a node's memory and disk grew without bound --------------------------------

/// A tiny valid module, distinct for each `n`.
fn tiny_module(n: u32) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module (memory (export "memory") 1)
             (func (export "wray:task/f") (result i32) (i32.const {n})))"#
    ))
    .unwrap()
}

/// The `.cwasm` files under a code cache.
fn cached_code(cache: &std::path::Path) -> usize {
    std::fs::read_dir(cache.join("code"))
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|d| std::fs::read_dir(d.path()).into_iter().flatten().flatten())
        .filter(|f| f.path().extension().is_some_and(|e| e == "cwasm"))
        .count()
}

/// 300 distinct modules uploaded took a node from 18 MB to 701 MB, never
/// given back: compiled modules stayed loaded for ever.
#[test]
fn modules_nothing_uses_are_dropped_from_memory_past_a_limit() {
    let cache = tempfile::tempdir().unwrap();
    let rt = common::builder()
        .cache_dir(Some(cache.path().to_path_buf()))
        .idle_modules(4)
        .build()
        .unwrap();
    // One module stays held: it is never dropped.
    let held = rt.load_bytes("held", &tiny_module(1000)).unwrap();
    for n in 0..20 {
        rt.load_bytes("m", &tiny_module(n)).unwrap();
    }
    let s = rt.stats();
    // Four idle ones, the held one, and the last one loaded (the caller
    // held it when the cache was trimmed).
    assert_eq!(s.modules_loaded, 6);
    assert_eq!(s.modules_compiled, 21);
    // The held one is still in memory: loading it again reads nothing.
    let again = rt.load_bytes("held", &tiny_module(1000)).unwrap();
    drop(again);
    let after = rt.stats();
    assert_eq!(after.modules_from_disk_cache, s.modules_from_disk_cache);
    // A dropped one loads again, from the disk cache.
    rt.load_bytes("m", &tiny_module(0)).unwrap();
    let last = rt.stats();
    assert_eq!(last.modules_compiled, 21);
    assert_eq!(last.modules_from_disk_cache, s.modules_from_disk_cache + 1);
    drop(held);
}

/// The compiled-code cache on disk was never evicted (300 MB for 300
/// modules).
#[test]
fn the_code_cache_on_disk_keeps_to_its_size() {
    for (cap, left) in [(1u64, 1usize), (1 << 30, 10)] {
        let cache = tempfile::tempdir().unwrap();
        let rt = common::builder()
            .cache_dir(Some(cache.path().to_path_buf()))
            .code_cache_size(cap)
            .build()
            .unwrap();
        for n in 0..10 {
            rt.load_bytes("m", &tiny_module(n)).unwrap();
        }
        assert_eq!(cached_code(cache.path()), left, "cap {cap}");
    }
}

/// Eight concurrent 250 MB uploads held 2.8 GB at once: each body was
/// read whole as it came.
#[test]
fn module_uploads_are_read_a_few_at_a_time() {
    use std::io::{Read, Write};
    use wray_runtime::node::{LogStore, Node, NodeOptions};
    let logs = Arc::new(LogStore::new(Arc::new(wray_runtime::NullSink)));
    let rt = common::builder().output(logs.clone()).build().unwrap();
    let node = Node::serve(
        &rt,
        logs,
        NodeOptions {
            port: 0,
            max_uploads: 1,
            ..NodeOptions::default()
        },
    )
    .unwrap();
    let a = node.addr();
    let uploads = |what: &str| -> u64 {
        crate::node::get(a, "/api/v0/status").json()["uploads"][what]
            .as_u64()
            .unwrap()
    };
    let start = |len: usize| {
        let mut s = std::net::TcpStream::connect(a).unwrap();
        write!(
            s,
            "POST /api/modules HTTP/1.1\r\nHost: {a}\r\nConnection: close\r\n\
             Content-Type: application/wasm\r\nContent-Length: {len}\r\n\r\n"
        )
        .unwrap();
        s
    };
    // The first upload sends half its body and holds the only turn.
    let mut first = start(1 << 20);
    first.write_all(&vec![0u8; 1 << 19]).unwrap();
    common::eventually("the first upload is being read", || uploads("reading") == 1);
    // The second waits for its turn before a byte is read.
    let wasm = tiny_module(7);
    let mut second = start(wasm.len());
    second.write_all(&wasm).unwrap();
    common::eventually("the second upload waits", || uploads("waiting") == 1);
    // The first one's client goes away: the second is read and answered.
    drop(first);
    let mut answer = String::new();
    second.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#""digest""#), "{answer}");
    common::eventually("no upload is left", || {
        uploads("reading") == 0 && uploads("waiting") == 0
    });
}
