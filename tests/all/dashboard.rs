//! The dashboard in a real browser (headless Chromium over the DevTools
//! protocol): every page loads without errors, a job submitted while the
//! page is open appears live with its tasks, the delete button deletes it
//! once it has ended, and the kill button kills.
//! Screenshots of each page are saved under `target/dashboard-screenshots/`.

use crate::browser::{Browser, Page};
use crate::common;
use crate::node::{self, get, serve};
use std::path::PathBuf;
use std::time::Duration;

/// How long a page may take to show what it should: a bound that catches a
/// page that never does, generous because the browser shares two cores
/// with the rest of the suite.
const WAIT: Duration = Duration::from_secs(60);

fn shots() -> PathBuf {
    common::root().join("target/dashboard-screenshots")
}

/// Waits until page `name`'s section has rendered its first data.
fn loaded(page: &Page, name: &str) {
    page.wait_for(
        &format!("document.querySelector('#page-{name}[data-loaded=\"true\"]') !== null"),
        WAIT,
    )
    .unwrap_or_else(|e| panic!("page {name} never loaded: {e}"));
}

#[test]
fn every_page_loads_jobs_appear_live_and_delete_and_kill_work() {
    let n = serve(None);
    let a = n.node.addr();
    let url = format!("http://{a}");
    let c =
        n.rt.actor(&n.m, "Counter")
            .arg(&0u64)
            .name("victim")
            .create()
            .unwrap();
    let r = n.rt.method(&c, "incr").arg(&1u64).submit().unwrap();
    n.rt.get_bytes(&r).unwrap();

    let browser = Browser::launch().expect("the browser tests need Chromium");
    let page = browser.new_page().unwrap();
    for (name, route) in [
        ("overview", ""),
        ("tasks", "tasks"),
        ("objects", "objects"),
        ("logs", "logs"),
        ("config", "config"),
    ] {
        page.goto(&format!("{url}/#/{route}")).unwrap();
        loaded(&page, name);
        page.screenshot(&shots().join(format!("{name}.png")))
            .unwrap();
    }
    let rate = page
        .eval("document.querySelector('#ov-cpu') !== null")
        .unwrap();
    assert_eq!(rate, true, "the overview shows the CPUs");
    page.goto(&format!("{url}/#/")).unwrap();
    loaded(&page, "overview");
    page.wait_for(
        "document.querySelectorAll('#ov-nodes tr').length === 1 \
         && /\\d \\/ \\d/.test(document.querySelector('#ov-nodes tr td:nth-child(3)').textContent)",
        WAIT,
    )
    .expect("the overview lists this node with its CPUs in use");

    // A job submitted while the jobs page is open appears without a reload,
    // and its page shows its tasks.
    page.goto(&format!("{url}/#/jobs")).unwrap();
    loaded(&page, "jobs");
    let id = node::submit(a, "pi", &[]);
    page.wait_for(
        &format!("document.querySelector('tr[data-job-id=\"{id}\"]') !== null"),
        WAIT,
    )
    .expect("the new job appears on the open page");
    node::wait_job(a, &id, "SUCCEEDED");
    page.screenshot(&shots().join("jobs.png")).unwrap();
    page.click(&format!("tr[data-job-id=\"{id}\"]")).unwrap();
    loaded(&page, "job");
    page.wait_for(
        "document.querySelectorAll('#job-tasks tr[data-task-id]').length === 64",
        WAIT,
    )
    .expect("the job's 64 tasks are listed");
    page.wait_for(
        "document.querySelector('#job-status').textContent.trim() === 'SUCCEEDED'",
        WAIT,
    )
    .unwrap();
    page.wait_for(
        "document.querySelector('#job-logs').textContent.includes('pi ~=')",
        WAIT,
    )
    .expect("the job's output is shown");
    page.screenshot(&shots().join("job.png")).unwrap();

    // Delete the ended job with its button (two clicks: arm, confirm): the
    // page goes back to the jobs list, without the job.
    let delete = "document.querySelector('#job-delete')";
    page.wait_for(&format!("!{delete}.hidden"), WAIT)
        .expect("an ended job offers its delete button");
    page.click("#job-delete").unwrap();
    assert_eq!(
        page.eval(&format!("{delete}.textContent")).unwrap(),
        "Confirm delete",
        "the first click only arms the button"
    );
    assert_eq!(get(a, &format!("/api/jobs/{id}")).status, 200);
    page.click("#job-delete").unwrap();
    page.wait_for("location.hash === '#/jobs'", WAIT)
        .expect("the page goes back to the jobs list");
    loaded(&page, "jobs");
    page.wait_for(
        &format!("document.querySelector('tr[data-job-id=\"{id}\"]') === null"),
        WAIT,
    )
    .expect("the deleted job is no longer listed");
    assert_eq!(get(a, &format!("/api/jobs/{id}")).status, 404);

    // Kill the actor with its button (two clicks: arm, confirm).
    let actors = get(a, "/api/v0/actors?name=victim").json();
    let actor = actors["actors"][0]["actor_id"]
        .as_str()
        .unwrap()
        .to_string();
    page.goto(&format!("{url}/#/actors")).unwrap();
    loaded(&page, "actors");
    let row = format!("tr[data-actor-id=\"{actor}\"]");
    let state = format!("document.querySelector('{row} td.state').textContent.trim()");
    assert_eq!(page.eval(&state).unwrap(), "ALIVE");
    page.screenshot(&shots().join("actors.png")).unwrap();
    page.click(&format!("{row} button.kill")).unwrap();
    page.click(&format!("{row} button.kill")).unwrap();
    page.wait_for(&format!("{state} === 'DEAD'"), WAIT)
        .expect("the killed actor shows as dead");
    page.screenshot(&shots().join("actors-killed.png")).unwrap();
    let after = get(a, "/api/v0/actors?name=victim").json();
    assert_eq!(after["actors"][0]["state"], "DEAD");
    assert!(
        page.console_errors().is_empty(),
        "the browser console: {:?}",
        page.console_errors()
    );
}
