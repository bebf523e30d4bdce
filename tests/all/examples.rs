//! Every example runs, through the CLI a newcomer types.

use crate::common::{guest, text, wray};

fn run(example: &str, args: &[&str]) -> String {
    let path = guest(example);
    let mut argv = vec!["run", path.to_str().unwrap()];
    if !args.is_empty() {
        argv.push("--");
        argv.extend_from_slice(args);
    }
    let out = wray(&argv);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{example}: {stderr}");
    stdout
}

#[test]
fn hello() {
    assert!(run("hello", &[]).contains("Hello, wray!"));
}

#[test]
fn pi() {
    let out = run("pi", &["8", "100000"]);
    assert!(out.starts_with("pi ~= 3.1"), "{out}");
}

#[test]
fn batch_get() {
    let out = run("batch_get", &[]);
    assert!(
        out.contains("get after each remote:") && out.contains("get once, at the end:"),
        "{out}"
    );
}

/// The seed's lesson holds: putting the array once and passing the
/// reference beats passing it by value (which puts it again per call), and
/// the tasks read the real array. The by-value run does strictly more work
/// (ten puts against one), so the order does not depend on the machine.
#[test]
fn put_once() {
    let out = run("put_once", &[]);
    let seconds = |label: &str| -> f64 {
        out.lines()
            .find_map(|l| l.strip_prefix(label))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no `{label}` line in {out}"))
    };
    let (by_value, put_once) = (seconds("by value:"), seconds("put once:"));
    assert!(put_once < by_value, "{out}");
    assert!(
        out.contains("a task summed 1000000 numbers in place: 2999997"),
        "{out}"
    );
}

/// The memo example run twice with one memo directory: the first run
/// computes each grid point once (its repeats are hits), the second
/// computes nothing. Counted by the memo's hits and misses, never timed.
#[test]
fn memo_second_run_does_no_pure_work() {
    let dir = tempfile::tempdir().unwrap();
    let path = guest("memo");
    let argv = [
        "run",
        "--memo-dir",
        dir.path().to_str().unwrap(),
        path.to_str().unwrap(),
        "--",
        "2",
        "3",
        "1000000",
    ];
    let run = || {
        let out = wray(&argv);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{stdout}\n{stderr}");
        assert!(
            stdout.contains("pass 3:") && stdout.contains("total:"),
            "{stdout}"
        );
        let checksum = stdout
            .lines()
            .find(|l| l.starts_with("checksum:"))
            .unwrap_or_else(|| panic!("no checksum: {stdout}"))
            .to_string();
        (checksum, stderr)
    };
    let (first_sum, first) = run();
    assert!(
        first.contains("wray: memo: 8 hits, 4 misses, 4 stored"),
        "{first}"
    );
    let (second_sum, second) = run();
    assert!(
        second.contains("wray: memo: 12 hits, 0 misses, 0 stored"),
        "{second}"
    );
    assert_eq!(first_sum, second_sum, "the same values");
}

#[test]
fn nested() {
    assert!(run("nested", &[]).contains("sorted 2000000 numbers"));
}

#[test]
fn counter() {
    let out = run("counter", &[]);
    assert!(out.contains("running totals: [1, 3, 6, 10, 15]"), "{out}");
    assert!(
        out.contains("after 4 tasks bumped it twice each: 23"),
        "{out}"
    );
    assert!(out.contains("after kill: actor died"), "{out}");
}

#[test]
fn param_server() {
    let out = run("param_server", &[]);
    assert!(out.contains("200 updates applied"), "{out}");
}

#[test]
fn actor_pool() {
    let out = run("actor_pool", &[]);
    assert!(out.contains("items per actor: [30, 30, 30, 30]"), "{out}");
}

#[test]
fn demo() {
    let out = run("demo", &[]);
    assert!(out.contains("wray demo"), "{out}");
}
