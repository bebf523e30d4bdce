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

#[test]
fn put_once() {
    let out = run("put_once", &[]);
    assert!(
        out.contains("passed by value:") && out.contains("put once, by ref:"),
        "{out}"
    );
}

#[test]
fn nested() {
    assert!(run("nested", &[]).contains("sorted 2000000 numbers"));
}

#[test]
fn demo() {
    let out = run("demo", &[]);
    assert!(out.contains("wray demo"), "{out}");
}
