//! The `wray` command line.

use crate::common::{guest, text, wat, wray};

#[test]
fn help_lists_every_subcommand_and_flag() {
    let (out, _) = text(&wray(&["--help"]));
    for word in ["run", "bench", "Usage"] {
        assert!(out.contains(word), "{out}");
    }
    let (out, _) = text(&wray(&["run", "--help"]));
    for word in [
        "--num-cpus",
        "--memory-limit",
        "--task-timeout",
        "--call-slots",
        "--actor-slots",
        "--no-cache",
        "[ARGS]...",
    ] {
        assert!(out.contains(word), "{word}: {out}");
    }
    let (out, _) = text(&wray(&["bench", "--help"]));
    for word in ["--json", "--runs", "--only", "--quick", "--samples"] {
        assert!(out.contains(word), "{word}: {out}");
    }
}

#[test]
fn run_streams_driver_and_task_output() {
    let out = wray(&["run", guest("hello").to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("Hello, wray!\n"), "{stdout}");
    assert!(
        stdout.contains("(say_hello task="),
        "task lines are prefixed: {stdout}"
    );
    assert!(stdout.contains(") saying hello to wray\n"), "{stdout}");
}

#[test]
fn run_passes_arguments_and_returns_the_drivers_status() {
    let kit = guest("testkit");
    let kit = kit.to_str().unwrap();
    let out = wray(&["run", kit, "--", "args", "a b", "c"]);
    assert_eq!(text(&out).0, "args: a b,c\n");
    let out = wray(&["run", kit, "--", "exit"]);
    assert_eq!(out.status.code(), Some(7));
    let out = wray(&["run", kit, "--", "fail"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).1.contains("the driver gives up"),
        "{}",
        text(&out).1
    );
    let out = wray(&["run", kit, "--", "panic"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("the driver panics") && stderr.contains("wasm backtrace"),
        "{stderr}"
    );
}

#[test]
fn run_nests_ten_deep_on_one_cpu() {
    let out = wray(&[
        "run",
        "--num-cpus",
        "1",
        guest("testkit").to_str().unwrap(),
        "--",
        "nested",
        "10",
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("nested ok: chain 10, tree 127"), "{stdout}");
}

#[test]
fn run_executes_a_plain_wasi_command() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cmd.wasm");
    let m = wat::parse_str(
        r#"(module
          (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
          (memory (export "memory") 1)
          (data (i32.const 100) "hi from _start\n")
          (func (export "_start")
            (i32.store (i32.const 0) (i32.const 100))
            (i32.store (i32.const 4) (i32.const 15))
            (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
            (call $exit (i32.const 3))))"#,
    )
    .unwrap();
    std::fs::write(&path, m).unwrap();
    let out = wray(&["run", path.to_str().unwrap()]);
    assert_eq!(text(&out).0, "hi from _start\n");
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn run_reports_bad_input_clearly() {
    let out = wray(&["run", "no/such/file.wasm"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("cannot read no/such/file.wasm"), "{stderr}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.wasm");
    std::fs::write(&path, b"junk").unwrap();
    let (_, stderr) = text(&wray(&["run", path.to_str().unwrap()]));
    assert!(
        stderr.contains("invalid module `junk`: not a WebAssembly module"),
        "{stderr}"
    );

    let (_, stderr) = text(&wray(&["run", "--memory-limit", "lots", "x.wasm"]));
    assert!(stderr.contains("not a size"), "{stderr}");
    let out = wray(&["run", "--num-cpus", "0", guest("hello").to_str().unwrap()]);
    assert!(
        text(&out).1.contains("num_cpus must be at least 1"),
        "{}",
        text(&out).1
    );
}

#[test]
fn run_applies_limits_from_flags() {
    let path = std::env::temp_dir().join(format!("wray-limits-{}.wasm", std::process::id()));
    std::fs::write(&path, wat("abi_add")).unwrap();
    let out = wray(&[
        "run",
        "--memory-limit",
        "64KiB",
        "--task-timeout",
        "5s",
        path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out).1);
    let _ = std::fs::remove_file(path);
}

/// The store's flags: a 16 MiB store spills a 48 MiB working set to the
/// given directory; without spilling the same program fails with the
/// store's error.
#[test]
fn run_spills_past_the_object_store_flag() {
    let dir = tempfile::tempdir().unwrap();
    let spill = dir.path().join("spill");
    let testkit = guest("testkit");
    let out = wray(&[
        "run",
        "--object-store-memory",
        "16MiB",
        "--spill-dir",
        spill.to_str().unwrap(),
        testkit.to_str().unwrap(),
        "--",
        "spill",
        "48",
    ]);
    assert!(out.status.success(), "{}", text(&out).1);
    assert!(spill.is_dir(), "the spill directory was used");
    let out = wray(&[
        "run",
        "--object-store-memory",
        "16MiB",
        "--no-spill",
        testkit.to_str().unwrap(),
        "--",
        "spill",
        "48",
    ]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("the object store is full"), "{stderr}");
}

/// `--dashboard` serves the node's API while the program runs.
#[test]
fn run_with_a_dashboard_prints_its_url() {
    let hello = guest("hello");
    let out = wray(&["run", "--dashboard", "--port", "0", hello.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("dashboard at http://127.0.0.1:"),
        "{stderr}"
    );
    assert!(stdout.contains("Hello, wray!"), "{stdout}");
}

#[test]
fn bench_quick_prints_a_table_and_json() {
    let out = wray(&["bench", "--quick", "--runs", "2", "--json", "--samples"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let last = stdout.lines().last().unwrap();
    let json: serde_json::Value = serde_json::from_str(last).unwrap();
    for key in [
        "tasks_sync_per_s",
        "tasks_async_per_s",
        "tasks_nested_per_s",
        "instance_calls_per_s",
        "put_small_per_s",
        "get_small_per_s",
        "put_gb_per_s",
        "get_gb_per_s",
        "run_hello_ms",
        "cores",
    ] {
        assert!(
            json[key].as_f64().is_some_and(|v| v > 0.0),
            "{key} in {last}"
        );
    }
    assert!(stdout.contains("tasks_async_per_s"), "the table: {stdout}");
    // --samples: each row is followed by its runs, two here.
    let runs = stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("runs: "));
    assert!(
        runs.clone().count() >= 9 && runs.clone().all(|l| l.matches(", ").count() == 1),
        "every row's two runs: {stdout}"
    );
}

#[test]
fn custom_resources_limit_what_runs_at_once_and_bad_ones_are_refused() {
    let kit = guest("testkit");
    let kit = kit.to_str().unwrap();
    let out = wray(&[
        "run",
        "--resources",
        r#"{"gpu": 1}"#,
        kit,
        "--",
        "resources",
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("resources: ok"), "{stdout}");
    for (bad, why) in [
        ("gpu=1", "expected a JSON object of names to amounts"),
        (r#"{"gpu": -1}"#, "is not an amount between 0 and"),
        (r#"{"CPU": 4}"#, "`CPU` is not a custom resource"),
    ] {
        let out = wray(&["run", "--resources", bad, kit, "--", "hello"]);
        let (_, stderr) = text(&out);
        assert!(!out.status.success(), "{bad} was taken");
        assert!(stderr.contains(why), "{bad}: {stderr}");
    }
}

#[test]
fn the_kubernetes_manifests_use_only_flags_wray_start_has() {
    let (help, _) = text(&wray(&["start", "--help"]));
    let manifest =
        std::fs::read_to_string(crate::common::root().join("deploy/kubernetes/wray.yaml"))
            .expect("deploy/kubernetes/wray.yaml");
    let flags: Vec<&str> = manifest
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- --"))
        .map(|f| f.split('=').next().unwrap())
        .collect();
    assert!(flags.len() >= 5, "{flags:?}");
    for f in flags {
        assert!(
            help.contains(&format!("--{f}")),
            "`wray start` has no --{f}"
        );
    }
    assert!(manifest.contains("path: /api/v0/head"), "the head's probe");
}
