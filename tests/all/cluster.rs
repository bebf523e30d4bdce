//! A cluster on this machine: etcd and node processes on 127.0.0.1, each
//! on a free port, torn down at the end (as Ray's `cluster_utils`). Needs
//! `etcd` (Debian's `etcd-server`, which `make setup` installs).

use crate::common;
use crate::node::{self, get};
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};

/// The nodes' lease, in seconds: how long a dead node lingers. A live
/// node renews it three times per period from a thread of its own, so only
/// a machine stalled that long would lose one.
const LEASE_TTL: u64 = 5;

/// A free port on 127.0.0.1 (the listener is closed, the port left free).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A single-member etcd, its data in a directory of its own.
struct Etcd {
    /// Where nodes reach it.
    url: String,
    /// Where it answers without TLS (for the test's own requests).
    plain: SocketAddr,
    _proc: Proc,
    _dir: tempfile::TempDir,
}

fn etcd() -> Etcd {
    etcd_at("127.0.0.1")
}

/// An etcd serving on `host`.
fn etcd_at(host: &str) -> Etcd {
    etcd_of(host, None)
}

/// An etcd serving on `host`, to nodes over TLS with `certs` (its
/// certificate signed by their CA; a client certificate required) if
/// given.
fn etcd_of(host: &str, certs: Option<&Certs>) -> Etcd {
    // A port found free may be taken by another test's etcd before this
    // one binds it: then this one exits, and the one answering there is
    // not ours (its member name says so). Try other ports.
    for _ in 0..10 {
        if let Some(etcd) = try_etcd(host, certs) {
            return etcd;
        }
    }
    panic!("no etcd of this test's own started");
}

/// An etcd on `host`, on ports found free, once it answers as itself;
/// `None` if another one answers there.
fn try_etcd(host: &str, certs: Option<&Certs>) -> Option<Etcd> {
    let dir = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap();
    let name = dir
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_string();
    let (client, peer) = (free_port(), free_port());
    let plain_url = format!("http://{host}:{client}");
    let peer_url = format!("http://{host}:{peer}");
    let mut etcd = Command::new("etcd");
    // With TLS: nodes on another port, over TLS; the test's own requests
    // on `client`, plain.
    let (url, listen) = match certs {
        Some(certs) => {
            let tls = format!("https://{host}:{}", free_port());
            let f = |name: &str| certs.dir.path().join(name);
            etcd.arg("--cert-file").arg(f("etcd.crt"));
            etcd.arg("--key-file").arg(f("etcd.key"));
            etcd.arg("--trusted-ca-file").arg(f("ca.crt"));
            etcd.arg("--client-cert-auth");
            (tls.clone(), format!("{tls},{plain_url}"))
        }
        None => (plain_url.clone(), plain_url),
    };
    let child = etcd
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--name", &name])
        .args([
            "--listen-client-urls",
            &listen,
            "--advertise-client-urls",
            &url,
        ])
        .args(["--listen-peer-urls", &peer_url])
        .args(["--initial-advertise-peer-urls", &peer_url])
        .args(["--initial-cluster", &format!("{name}={peer_url}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("etcd starts (install Debian's etcd-server: `make setup` does)");
    let mut proc = Proc(child);
    let addr: SocketAddr = format!("{host}:{client}").parse().unwrap();
    // Whether the etcd answering there is this one (nobody answering yet:
    // not yet).
    let ours = || {
        std::net::TcpStream::connect(addr).is_ok() && {
            let r = node::post(addr, "/v3/cluster/member/list", &serde_json::json!({}));
            r.status == 200 && r.body.contains(&format!("\"name\":\"{name}\""))
        }
    };
    let mut answered = false;
    common::eventually("etcd answers as itself, or ends", || {
        answered = ours();
        answered || proc.0.try_wait().unwrap().is_some()
    });
    answered.then_some(Etcd {
        url,
        plain: addr,
        _proc: proc,
        _dir: dir,
    })
}

/// A `wray start` process in the cluster; its API's address, once it
/// serves.
struct ClusterNode {
    proc: Proc,
    addr: SocketAddr,
    id: String,
    stderr: BufReader<std::process::ChildStderr>,
    /// What it printed until it joined.
    said: Vec<String>,
    _state: tempfile::TempDir,
}

fn start_node(etcd: &str, ttl: u64) -> ClusterNode {
    start_node_with(etcd, ttl, "")
}

/// A node whose calls to other nodes carry `token` (none if empty).
fn start_node_with(etcd: &str, ttl: u64, token: &str) -> ClusterNode {
    spawn_node(&["--etcd", etcd], ttl, token)
}

/// A node whose record says it has custom `resources` (JSON).
fn start_node_having(etcd: &str, ttl: u64, resources: &str) -> ClusterNode {
    spawn_node(&["--etcd", etcd, "--resources", resources], ttl, "")
}

/// `wray start` with `args` (how it joins a cluster), a state directory of
/// its own and one CPU slot, once it joined.
fn spawn_node(args: &[&str], ttl: u64, token: &str) -> ClusterNode {
    spawn_node_in(None, false, args, ttl, token)
}

/// [`spawn_node`], in network namespace `netns` if one is named; its API
/// wants [`API_TOKEN`] if `api_token`.
fn spawn_node_in(
    netns: Option<&str>,
    api_token: bool,
    args: &[&str],
    ttl: u64,
    token: &str,
) -> ClusterNode {
    let state = tempfile::tempdir().unwrap();
    let wray = env!("CARGO_BIN_EXE_wray");
    let mut command = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, wray]);
            c
        }
        None => Command::new(wray),
    };
    if api_token {
        command.env("WRAY_TOKEN", API_TOKEN);
    }
    let mut child = command
        .args(["start", "--port", "0", "--num-cpus", "1"])
        .args(args)
        .args(["--lease-ttl", &ttl.to_string()])
        .env("WRAY_CLUSTER_TOKEN", token)
        .env("WRAY_STATE_DIR", state.path())
        .env("WRAY_CACHE_DIR", common::cache_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let (mut addr, mut id, mut said) = (None, None, Vec::new());
    let mut line = String::new();
    while id.is_none() {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "the node ended before joining: {line}"
        );
        if let Some(url) = line.trim().strip_prefix("dashboard and API: http://") {
            addr = Some(url.parse().unwrap());
        }
        if let Some(rest) = line.trim().strip_prefix("joined the cluster at ") {
            id = rest.split(" as node ").nth(1).map(str::to_string);
        }
        said.push(line.clone());
    }
    ClusterNode {
        proc: Proc(child),
        addr: addr.expect("the node printed its address"),
        id: id.unwrap(),
        stderr,
        said,
        _state: state,
    }
}

/// The ids of the nodes `via` lists.
fn listed(via: SocketAddr) -> Vec<String> {
    let r = get(via, "/api/v0/nodes");
    assert_eq!(r.status, 200, "{}", r.body);
    let mut ids: Vec<String> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["node_id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

#[test]
fn nodes_join_through_etcd_and_a_dead_or_hung_node_leaves() {
    let etcd = etcd();
    // Started at once: they race for node numbers.
    let mut nodes: Vec<ClusterNode> = std::thread::scope(|s| {
        let starting: Vec<_> = (0..3)
            .map(|_| s.spawn(|| start_node(&etcd.url, LEASE_TTL)))
            .collect();
        starting.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all: Vec<String> = nodes.iter().map(|n| n.id.clone()).collect();
    all.sort();
    // Each has a node number of its own (its ids carry it), from 1.
    let mut numbers: Vec<u32> = all.iter().map(|id| id.parse().unwrap()).collect();
    numbers.sort_unstable();
    numbers.dedup();
    assert_eq!(numbers.len(), 3, "{all:?}");
    assert!(numbers[0] >= 1, "{all:?}");
    // Every node lists every node.
    for n in &nodes {
        assert_eq!(listed(n.addr), all);
    }
    // A node stopped (SIGTERM, as `wray stop` sends) leaves at once, not
    // when its lease runs out (600 s here).
    let mut stopped = start_node(&etcd.url, 600);
    let a = nodes[0].addr;
    common::eventually("the new node is listed", || listed(a).contains(&stopped.id));
    let pid = stopped.proc.0.id() as i32;
    // SAFETY: signalling a child process of this test.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    assert_eq!(stopped.proc.0.wait().unwrap().code(), Some(0));
    common::eventually("the stopped node leaves", || {
        !listed(a).contains(&stopped.id)
    });
    // A node killed outright leaves when its lease runs out.
    let killed = nodes.pop().unwrap();
    let killed_id = killed.id.clone();
    drop(killed);
    common::eventually("the killed node leaves", || !listed(a).contains(&killed_id));
    // A node that hangs (SIGSTOP) past its lease is dead to the others,
    // and stops itself once it runs again.
    let hung = nodes.pop().unwrap();
    let pid = hung.proc.0.id() as i32;
    // SAFETY: signalling a child process of this test.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    common::eventually("the hung node leaves", || !listed(a).contains(&hung.id));
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
    let mut hung = hung;
    let status = hung.proc.0.wait().unwrap();
    assert_eq!(status.code(), Some(1));
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut hung.stderr, &mut rest).unwrap();
    assert!(rest.contains("lost its cluster membership"), "{rest}");
    assert_eq!(listed(a), vec![nodes[0].id.clone()]);
}

#[test]
fn a_node_that_cannot_reach_etcd_does_not_start() {
    let state = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}", free_port());
    let out = Command::new(env!("CARGO_BIN_EXE_wray"))
        .args(["start", "--port", "0", "--etcd", &url])
        .env("WRAY_STATE_DIR", state.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot reach etcd at {url}")),
        "{stderr}"
    );
}

/// The id of the head `via` lists, if any, and how many nodes claim it.
fn head(via: SocketAddr) -> (Option<String>, usize) {
    let nodes = get(via, "/api/v0/nodes").json();
    let heads: Vec<String> = nodes
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["is_head"] == true)
        .map(|n| n["node_id"].as_str().unwrap().to_string())
        .collect();
    (heads.first().cloned(), heads.len())
}

#[test]
fn one_node_is_head_and_a_standby_takes_over_when_it_dies() {
    let etcd = etcd();
    let mut nodes: Vec<ClusterNode> = (0..2).map(|_| start_node(&etcd.url, LEASE_TTL)).collect();
    let mut elected = None;
    common::eventually("a head is elected", || {
        let (h, claims) = head(nodes[0].addr);
        assert!(claims <= 1, "two heads");
        elected = h;
        elected.is_some()
    });
    let old = elected.unwrap();
    let at = nodes.iter().position(|n| n.id == old).unwrap();
    // Only the head is ready as the head (a readiness probe's answer).
    for n in &nodes {
        let r = get(n.addr, "/api/v0/head");
        let want = if n.id == old { 200 } else { 503 };
        assert_eq!(r.status, want, "{} {}", n.id, r.body);
    }
    drop(nodes.remove(at));
    let standby = &nodes[0];
    common::eventually("the standby takes over", || {
        head(standby.addr).0.as_deref() == Some(standby.id.as_str())
    });
    assert_eq!(get(standby.addr, "/api/v0/head").status, 200);
}

/// The jobs node `via` lists: (job id, node, status), newest first.
fn jobs(via: SocketAddr) -> Vec<(String, String, String)> {
    let listed = get(via, "/api/jobs/");
    assert_eq!(listed.status, 200, "{}", listed.body);
    let field = |j: &serde_json::Value, k: &str| j[k].as_str().unwrap().to_string();
    listed
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|j| (field(j, "job_id"), field(j, "node_id"), field(j, "status")))
        .collect()
}

/// Node `via`'s answer to `method path`.
fn ask(via: SocketAddr, method: &str, path: &str) -> node::Resp {
    node::http(via, method, path, &[], b"")
}

#[test]
fn every_node_lists_the_clusters_jobs_and_answers_for_a_job_on_another() {
    let etcd = etcd();
    let mut nodes: Vec<ClusterNode> = (0..2).map(|_| start_node(&etcd.url, LEASE_TTL)).collect();
    let (a, b) = (nodes[0].addr, nodes[1].addr);
    let (a_id, b_id) = (nodes[0].id.clone(), nodes[1].id.clone());
    // Job numbers are the cluster's: a job on each node, each its own.
    let on_a = node::submit(a, "testkit", &["hello"]);
    let on_b = node::submit(b, "testkit", &["hello"]);
    assert_ne!(on_a, on_b);
    succeeded(a, &on_a, "driver says hi");
    succeeded(b, &on_b, "driver says hi");
    // Each node lists both (newest first), its node named, as written.
    for via in [a, b] {
        common::eventually("both jobs are listed as ended", || {
            jobs(via)
                == vec![
                    (on_b.clone(), b_id.clone(), "SUCCEEDED".to_string()),
                    (on_a.clone(), a_id.clone(), "SUCCEEDED".to_string()),
                ]
        });
    }
    // A's answers for b's job are b's: its details and its logs.
    let detail = get(a, &format!("/api/jobs/{on_b}")).json();
    assert_eq!(detail["node_id"], b_id.as_str(), "{detail}");
    assert_eq!(detail["tasks"]["FINISHED"], 1, "{detail}");
    let logs = |via| get(via, &format!("/api/jobs/{on_b}/logs?offset=7")).json();
    assert_eq!(logs(a), logs(b));
    assert!(logs(a)["logs"].as_str().unwrap().contains("2 + 3 = 5"));
    // A job on b stopped and deleted through a.
    let forever = node::submit(b, "testkit", &["forever"]);
    common::eventually("it runs", || {
        jobs(a).contains(&(forever.clone(), b_id.clone(), "RUNNING".into()))
    });
    let r = ask(a, "DELETE", &format!("/api/jobs/{forever}"));
    assert_eq!(r.status, 400, "a running job is not deleted: {}", r.body);
    let r = ask(a, "POST", &format!("/api/jobs/{forever}/stop"));
    assert_eq!((r.status, r.json()["stopped"].clone()), (200, true.into()));
    assert_eq!(node::wait_job_end(b, &forever)["status"], "STOPPED");
    assert_eq!(
        ask(a, "DELETE", &format!("/api/jobs/{forever}")).status,
        200
    );
    for via in [a, b] {
        assert!(!jobs(via).iter().any(|j| j.0 == forever), "deleted");
        assert_eq!(get(via, &format!("/api/jobs/{forever}")).status, 404);
    }
    // A job whose node dies: the head marks it failed, and its actors
    // dead; what b alone knew (its logs) went with b; its record can be
    // deleted. Its 200 actors' records go to etcd in two transactions.
    let lost = node::submit(b, "testkit", &["forever", "actor", "200"]);
    common::eventually("it runs", || {
        jobs(a).contains(&(lost.clone(), b_id.clone(), "RUNNING".into()))
    });
    let counter = |via| {
        let listed = get(via, &format!("/api/v0/actors?job={lost}&limit=1000")).json();
        let of_job = listed["actors"].as_array().unwrap().clone().into_iter();
        of_job
            .map(|x| {
                (
                    x["actor_id"].as_str().unwrap().to_string(),
                    x["state"].clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    let alive =
        |c: Vec<(String, serde_json::Value)>| c.iter().filter(|(_, s)| s == "ALIVE").count();
    common::eventually("b records its actors, which a lists", || {
        get(b, "/api/v0/status").json()["cluster"]["actor_records"] == 200
            && alive(counter(b)) == 200
    });
    let on_a = counter(a);
    assert_eq!(alive(on_a.clone()), 200, "{on_a:?}");
    let prefix = format!("{b_id}:");
    assert!(
        on_a.iter().all(|(id, _)| id.starts_with(&prefix)),
        "{on_a:?}"
    );
    let b_node = nodes.remove(1);
    drop(b_node);
    common::eventually("the head marks it failed", || {
        jobs(a).contains(&(lost.clone(), b_id.clone(), "FAILED".into()))
    });
    // Listed from its record, once b is no longer asked.
    let mut listed = serde_json::Value::Null;
    common::eventually("its actors are listed dead", || {
        listed = get(a, &format!("/api/v0/actors?job={lost}&state=dead")).json();
        listed.get("unanswered").is_none() && listed["total"] == 200
    });
    let actor = &listed["actors"][0];
    assert!(
        actor["actor_id"].as_str().unwrap().starts_with(&prefix),
        "{listed}"
    );
    assert_eq!(actor["node_id"], b_id.as_str(), "{listed}");
    assert_eq!(actor["death_cause"]["kind"], "actor died", "{listed}");
    let why = format!("its node {b_id} left the cluster");
    assert_eq!(actor["death_cause"]["message"], why.as_str(), "{listed}");
    let detail = get(a, &format!("/api/jobs/{lost}")).json();
    assert!(
        detail["message"]
            .as_str()
            .unwrap()
            .contains("left the cluster"),
        "{detail}"
    );
    assert_eq!(get(a, &format!("/api/jobs/{lost}/logs")).status, 410);
    assert_eq!(ask(a, "DELETE", &format!("/api/jobs/{lost}")).status, 200);
    assert_eq!(get(a, &format!("/api/jobs/{lost}")).status, 404);
    // The jobs of the living are untouched.
    assert!(jobs(a).contains(&(on_b, b_id, "SUCCEEDED".into())));
}

/// The other nodes `via` places calls on, and its calls and loans out.
fn cluster_view(via: SocketAddr) -> (Vec<String>, u64, u64) {
    let s = get(via, "/api/v0/status").json();
    let c = &s["cluster"];
    let mut peers: Vec<String> = c["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    peers.sort();
    (
        peers,
        c["calls_out"].as_u64().unwrap(),
        c["lent"].as_u64().unwrap(),
    )
}

/// Waits for job `job` on node `via` to end; checks that it succeeded,
/// printing `said`.
fn succeeded(via: SocketAddr, job: &str, said: &str) {
    let done = node::wait_job_end(via, job);
    let logs = get(via, &format!("/api/jobs/{job}/logs")).json();
    assert_eq!(done["status"], "SUCCEEDED", "{done} {logs}");
    assert!(logs["logs"].as_str().unwrap().contains(said), "{logs}");
}

/// How many calls of `function` node `via` ran (or placed), by state.
fn ran(via: SocketAddr, function: &str) -> Vec<String> {
    get(via, &format!("/api/v0/tasks?function={function}")).json()["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["state"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn calls_run_on_the_node_they_are_placed_on_with_large_values_pulled_across() {
    let etcd = etcd();
    let nodes: Vec<ClusterNode> = (0..2).map(|_| start_node(&etcd.url, LEASE_TTL)).collect();
    runs_the_cluster_scenario(&nodes[0], &nodes[1]);
}

/// Runs the `cluster` scenario on `a` with `b`: calls and actors placed
/// on b, large values pulled both ways, named actors found across; checks
/// where everything ran and that nothing is left in flight or lent.
fn runs_the_cluster_scenario(a: &ClusterNode, b: &ClusterNode) {
    common::eventually("each node places calls on the other", || {
        cluster_view(a.addr).0 == vec![b.id.clone()] && cluster_view(b.addr).0 == vec![a.id.clone()]
    });
    let job = node::submit(a.addr, "testkit", &["cluster", &b.id, &a.id]);
    succeeded(a.addr, &job, "cluster: ok");
    // The pinned calls ran on the other node (and its nested ones there);
    // the unpinned calls of a large object stayed with it.
    for f in ["add", "bump_bytes", "push_all"] {
        assert_eq!(ran(b.addr, f), vec!["FINISHED"], "{f} on node {}", b.id);
    }
    assert_eq!(ran(b.addr, "fails"), vec!["FAILED"]);
    // a's own listing says which node each of its calls ran on.
    let ran_on = |f: &str| -> Vec<Option<String>> {
        get(a.addr, &format!("/api/v0/tasks?function={f}")).json()["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["node_id"].as_str().map(str::to_string))
            .collect()
    };
    assert_eq!(ran_on("bump_bytes"), vec![Some(b.id.clone())]);
    // The calls of the large object ran here or on b, which took it for
    // the pinned call and kept it: b pulled it once, whatever ran there.
    let len = ran_on("len");
    assert_eq!(len.len(), 9, "{len:?}");
    assert!(
        len.iter().all(|n| n.is_none() || *n == Some(b.id.clone())),
        "{len:?}"
    );
    let there = len.iter().filter(|n| n.is_some()).count();
    assert!(there >= 1, "{len:?}");
    assert_eq!(ran(b.addr, "len").len(), there);
    // (And once the large object a reference passed there names.)
    assert_eq!(copies_on(b.addr).0, 2, "b pulled the large object once");
    assert!(
        !ran(b.addr, "chain").is_empty(),
        "the head of the chain ran there"
    );
    // The calls the chain made there are listed under the program's job,
    // on b too; the head, placed there by a, under the job standing for
    // it there (a lists it under the program's job).
    let chain = get(b.addr, "/api/v0/tasks?function=chain").json();
    let jobs: Vec<(bool, &str)> = chain["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["parent_id"].is_string(), t["job_id"].as_str().unwrap()))
        .collect();
    let nested: Vec<&str> = jobs.iter().filter(|j| j.0).map(|j| j.1).collect();
    assert!(!nested.is_empty(), "{chain}");
    assert!(nested.iter().all(|j| *j == job), "{chain}");
    let of_job = get(b.addr, &format!("/api/v0/tasks?function=chain&job={job}")).json();
    assert_eq!(
        of_job["total"].as_u64(),
        Some(nested.len() as u64),
        "{of_job}"
    );
    // The whole chain, from a: each call once, under the program's job.
    let whole = format!("/api/v0/tasks?scope=cluster&function=chain&job={job}");
    assert_eq!(
        get(a.addr, &whole).json()["total"],
        6,
        "chain(5) is 6 calls"
    );
    // The actors pinned there live there, and every node lists every
    // node's actors, naming where each lives: the killed one of a's dead
    // after its restart there, the named one alive (its name registered
    // on a, whose driver ended: it lives on). Each node names its own
    // actors by number, the others' as `<node>:<number>`.
    let counters = |via: &ClusterNode| -> Vec<(String, String, u64)> {
        let mut c: Vec<_> = actors_on(via.addr)
            .into_iter()
            .filter(|x| x["class"] == "Counter" && x["node_id"] == b.id.as_str())
            .map(|x| {
                let s = |k: &str| x[k].as_str().unwrap().to_string();
                let id = s("actor_id");
                let id = match id.contains(':') {
                    true => id,
                    false => format!("{}:{id}", via.id),
                };
                (id, s("state"), x["restarts"].as_u64().unwrap())
            })
            .collect();
        c.sort();
        c
    };
    let on_a = counters(a);
    let of_a = |c: &&(String, String, u64)| c.0.starts_with(&format!("{}:", a.id));
    let states: Vec<(&str, u64)> = on_a
        .iter()
        .filter(of_a)
        .map(|c| (c.1.as_str(), c.2))
        .collect();
    assert!(states.contains(&("DEAD", 1)), "{on_a:?}");
    assert!(states.contains(&("ALIVE", 0)), "{on_a:?}");
    assert_eq!(counters(b), on_a, "both nodes list the same actors");
    // a's live actor there, killed through b by the name b gives it.
    let (alive, _, _) = on_a
        .iter()
        .filter(of_a)
        .find(|c| c.1 == "ALIVE")
        .unwrap()
        .clone();
    let killed = node::http(
        b.addr,
        "POST",
        &format!("/api/v0/actors/{alive}/kill"),
        &[],
        b"",
    );
    assert_eq!(killed.status, 200, "{}", killed.body);
    assert_eq!(killed.json()["killed"], true);
    common::eventually("it is dead everywhere", || {
        [a, b]
            .iter()
            .all(|n| counters(n).iter().any(|c| c.0 == alive && c.1 == "DEAD"))
    });
    let none = node::http(b.addr, "POST", "/api/v0/actors/999:1/kill", &[], b"");
    assert_eq!(none.status, 404, "{}", none.body);
    // Spread calls ran on both nodes: 12 in all, dealt in turn.
    let (here, there) = (ran(a.addr, "double").len(), ran(b.addr, "double").len());
    assert_eq!(here, 12, "the driver's node records every call it placed");
    assert_eq!(there, 6, "half of them ran on the other node");
    // Every node's calls, listed from either node: each call once, by the
    // node that placed it, naming where it ran.
    let everywhere = |via: SocketAddr, f: &str| -> (u64, Vec<String>) {
        let listed = get(via, &format!("/api/v0/tasks?scope=cluster&function={f}")).json();
        assert!(listed.get("unanswered").is_none(), "{listed}");
        let mut nodes: Vec<String> = listed["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["node_id"].as_str().unwrap().to_string())
            .collect();
        nodes.sort();
        (listed["total"].as_u64().unwrap(), nodes)
    };
    let mut half: Vec<String> = [&a.id, &b.id]
        .iter()
        .flat_map(|n| vec![n.to_string(); 6])
        .collect();
    half.sort();
    assert_eq!(everywhere(a.addr, "double"), (12, half.clone()));
    assert_eq!(everywhere(b.addr, "double"), (12, half));
    let all = |via| get(via, "/api/v0/tasks?scope=cluster&limit=1").json()["total"].clone();
    assert_eq!(all(a.addr), all(b.addr), "the same calls, from either node");
    // And summed up by function, the same way.
    let summed = |via| {
        let s = get(via, "/api/v0/tasks/summary?scope=cluster").json();
        assert_eq!(s["total"], all(via), "{s}");
        let fs = s["functions"].as_array().unwrap().clone();
        fs.into_iter().find(|f| f["function"] == "double").unwrap()["FINISHED"].clone()
    };
    assert_eq!((summed(a.addr), summed(b.addr)), (12.into(), 12.into()));
    // Calls of a's actors made on b through a handle are listed once, by
    // a, under the actor's class: 200 pushes from a task there to an
    // actor here, 200 from here to an actor there.
    let s = get(b.addr, "/api/v0/tasks/summary?scope=cluster").json();
    let fs = s["functions"].as_array().unwrap();
    let names: Vec<&str> = fs.iter().map(|f| f["function"].as_str().unwrap()).collect();
    assert!(!names.iter().any(|f| f.starts_with("?.")), "{names:?}");
    let pushes = fs.iter().find(|f| f["function"] == "Counter.push").unwrap();
    assert_eq!(pushes["FINISHED"], 400, "{s}");
    // `wray status` shows the cluster.
    let out = Command::new(env!("CARGO_BIN_EXE_wray"))
        .args(["status", "--address", &a.addr.to_string()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("cluster:       2 nodes, head"), "{text}");
    assert!(
        text.contains("(every node's)"),
        "jobs are the cluster's: {text}"
    );
    assert!(text.contains(&format!("on {}", b.id)), "{text}");
    // `wray list tasks` lists every node's calls, naming where each ran.
    let out = Command::new(env!("CARGO_BIN_EXE_wray"))
        .args(["list", "tasks", "--address", &a.addr.to_string()])
        .args(["-f", "function=double"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    let nodes: Vec<&str> = listed
        .lines()
        .filter(|l| l.contains("double"))
        .map(|l| l.split_whitespace().nth(7).unwrap())
        .collect();
    let on_b = nodes.iter().filter(|n| **n == b.id).count();
    assert_eq!((nodes.len(), on_b), (12, 6), "{listed}");
    // `wray summary tasks` adds up every node's calls, through b too.
    let out = Command::new(env!("CARGO_BIN_EXE_wray"))
        .args(["summary", "tasks", "--address", &b.addr.to_string()])
        .output()
        .unwrap();
    let summary = String::from_utf8_lossy(&out.stdout);
    let double: Vec<&str> = summary
        .lines()
        .find(|l| l.split_whitespace().next() == Some("double"))
        .unwrap_or_else(|| panic!("{summary}"))
        .split_whitespace()
        .collect();
    assert_eq!(double[3], "12", "FINISHED: {summary}");
    // Nothing is left in flight or lent, on either node, and the other
    // node holds no object for calls (not even one killed mid-call).
    for n in [a, b] {
        common::eventually("calls and loans end", || {
            let (_, out, lent) = cluster_view(n.addr);
            out == 0 && lent == 0
        });
    }
    common::eventually("the other node holds no object", || {
        get(b.addr, "/api/v0/status").json()["object_store"]["objects"] == 0
    });
}

#[test]
fn an_actor_whose_node_dies_restarts_on_another() {
    let etcd = etcd();
    let a = start_node(&etcd.url, LEASE_TTL);
    let gpus: Vec<ClusterNode> = (0..2)
        .map(|_| start_node_having(&etcd.url, LEASE_TTL, r#"{"gpu": 1}"#))
        .collect();
    common::eventually("a places calls on both", || {
        cluster_view(a.addr).0.len() == 2
    });
    let job = node::submit(a.addr, "testkit", &["actor_survive", "30", "200"]);
    let alive_on = |n: &ClusterNode| {
        actors_on(a.addr)
            .iter()
            .any(|x| x["state"] == "ALIVE" && x["node_id"] == n.id.as_str())
    };
    let mut host = None;
    common::eventually("the actor lives on a GPU node", || {
        host = gpus.iter().position(alive_on);
        host.is_some()
    });
    let (mut gpus, host) = (gpus, host.unwrap());
    let mut victim = gpus.remove(host);
    victim.proc.0.kill().unwrap();
    succeeded(a.addr, &job, "actor survive: 30 ok");
    // It restarted once, on the other GPU node.
    let actors = actors_on(a.addr);
    assert_eq!(actors.len(), 1, "{actors:?}");
    assert_eq!(actors[0]["restarts"], 1, "{actors:?}");
    assert_eq!(actors[0]["node_id"], gpus[0].id.as_str(), "{actors:?}");
}

#[test]
fn a_kill_allowing_restart_sends_the_calls_out_again_to_the_restarted_actor() {
    let etcd = etcd();
    let a = start_node(&etcd.url, LEASE_TTL);
    let b = start_node(&etcd.url, LEASE_TTL);
    common::eventually("a places calls on b", || {
        cluster_view(a.addr).0 == vec![b.id.clone()]
    });
    let job = node::submit(a.addr, "testkit", &["actor_restart", &b.id]);
    // Its first call spins there: it opened its gate (a ran the `open`
    // it sent), so its retry returns. Four more are out behind it.
    common::eventually("the first call spins on b", || {
        ran(b.addr, "Counter.first_spins") == vec!["RUNNING"]
            && ran(a.addr, "Gate.open") == vec!["FINISHED"]
    });
    let actor = actors_on(a.addr)
        .into_iter()
        .find(|x| x["class"] == "Counter")
        .unwrap();
    let id = actor["actor_id"].as_str().unwrap();
    let r = node::http(
        a.addr,
        "POST",
        &format!("/api/v0/actors/{id}/kill?no_restart=false"),
        &[],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    succeeded(a.addr, &job, "actor restart: ok");
    let actor = actors_on(a.addr)
        .into_iter()
        .find(|x| x["class"] == "Counter")
        .unwrap();
    assert_eq!(actor["restarts"], 1, "{actor}");
    // Each call out was sent again once, saying why.
    let calls = get(a.addr, "/api/v0/tasks?function=Counter.first_spins").json();
    let first = &calls["tasks"][0];
    assert_eq!(first["attempts"], 2, "{calls}");
    let why = first["retried_error"].to_string();
    assert!(why.contains("killed before the call was answered"), "{why}");
}

/// The actors node `via` lists (every node's, in a cluster).
fn actors_on(via: SocketAddr) -> Vec<serde_json::Value> {
    let listed = get(via, "/api/v0/actors").json();
    listed["actors"].as_array().unwrap().clone()
}

#[test]
fn a_cancelled_call_stops_there_and_actors_of_a_dead_node_end() {
    let etcd = etcd();
    let mut a = start_node(&etcd.url, LEASE_TTL);
    let b = start_node(&etcd.url, LEASE_TTL);
    common::eventually("a places calls on b", || {
        cluster_view(a.addr).0 == vec![b.id.clone()]
    });
    let job = node::submit(a.addr, "testkit", &["cluster_orphans", &b.id]);
    succeeded(a.addr, &job, "cluster orphans: ok");
    // The two-minute call was cancelled there too (or never started).
    common::eventually("the cancelled call stops there", || {
        ran(b.addr, "busy").iter().all(|s| s == "CANCELLED")
    });
    let alive = |n: SocketAddr| {
        get(n, "/api/v0/actors?state=ALIVE").json()["actors"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(alive(b.addr), 1, "the named actor lives there");
    // a lists every node with the load it told when asked, b's over RPC
    // (nothing runs now; the memory is that node's own process's). A node
    // that does not answer within a second is listed without a load: on
    // a slow machine, ask again.
    let mut nodes = serde_json::Value::Null;
    common::eventually("every node tells its load", || {
        nodes = get(a.addr, "/api/v0/nodes").json();
        nodes
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["load"].is_object())
    });
    let mut rss = Vec::new();
    for n in nodes.as_array().unwrap() {
        let load = &n["load"];
        assert_eq!(load["cpus_in_use"], 0, "{nodes}");
        assert_eq!(load["running"], 0, "{nodes}");
        rss.push(load["rss_bytes"].as_u64().unwrap());
    }
    assert!(rss.len() == 2 && rss.iter().all(|&r| r > 0), "{nodes}");
    // Its node gone, nobody can call it: it ends.
    a.proc.0.kill().unwrap();
    common::eventually("the actor of the dead node ends", || alive(b.addr) == 0);
}

/// Starts `survive 30 300` on `nodes[0]` (30 calls of 300 ms spread over
/// the nodes), does `harm` to the last node once it runs one of them, and
/// checks that the job still gets every result right, that calls were
/// retried, and that nothing stays in flight or lent.
fn a_job_survives(harm: impl FnOnce(&mut ClusterNode)) {
    let etcd = etcd();
    let mut nodes: Vec<ClusterNode> = (0..3).map(|_| start_node(&etcd.url, LEASE_TTL)).collect();
    for n in &nodes {
        common::eventually("the nodes see each other", || {
            cluster_view(n.addr).0.len() == 2
        });
    }
    let a = nodes[0].addr;
    let job = node::submit(a, "testkit", &["survive", "30", "300"]);
    let victim = nodes.last_mut().unwrap();
    common::eventually("the victim runs a call", || {
        ran(victim.addr, "busy").iter().any(|s| s == "RUNNING")
    });
    harm(victim);
    survived(a, &job, &[]);
    common::eventually("the lost node is dropped", || cluster_view(a).0.len() == 1);
}

/// Checks that `survive 30 300` (job `job` on node `a`, asked with
/// `headers`) got every result right after losing a node under it: its
/// calls there retried, nothing left in flight or lent.
fn survived(a: SocketAddr, job: &str, headers: &[(&str, &str)]) {
    let get = |path: &str| node::get_as(a, path, headers);
    let done = node::wait_job_end_as(a, job, headers);
    let logs = get(&format!("/api/jobs/{job}/logs")).json();
    assert_eq!(done["status"], "SUCCEEDED", "{done} {logs}");
    assert!(
        logs["logs"].as_str().unwrap().contains("survive: 30 ok"),
        "{logs}"
    );
    let tasks = get("/api/v0/tasks?function=busy").json()["tasks"].clone();
    let tasks = tasks.as_array().unwrap();
    assert_eq!(tasks.len(), 30);
    assert!(tasks.iter().all(|t| t["state"] == "FINISHED"), "{tasks:?}");
    let retried: Vec<_> = tasks
        .iter()
        .filter(|t| t["attempts"].as_u64().unwrap() > 1)
        .collect();
    assert!(
        !retried.is_empty(),
        "the calls on the lost node were retried"
    );
    // Each says why its attempt there failed.
    for t in retried {
        assert_eq!(t["retried_error"]["kind"], "worker failure", "{t}");
        assert!(t["error"].is_null(), "{t}");
    }
    common::eventually("calls and loans end", || {
        let c = get("/api/v0/status").json()["cluster"].clone();
        c["calls_out"] == 0 && c["lent"] == 0
    });
}

#[test]
fn a_job_gets_every_result_when_a_node_is_killed_under_it() {
    a_job_survives(|victim| {
        victim.proc.0.kill().unwrap();
        victim.proc.0.wait().unwrap();
    });
}

#[test]
fn a_job_gets_every_result_when_a_node_hangs_under_it() {
    a_job_survives(|victim| {
        let pid = victim.proc.0.id() as i32;
        // SAFETY: signalling a child process of this test (it is killed
        // when the harness drops it).
        assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    });
}

/// What node `via` pulled, served and keeps: (pulled, served, copies).
fn copies_on(via: SocketAddr) -> (u64, u64, u64) {
    let c = get(via, "/api/v0/status").json()["cluster"].clone();
    let n = |k: &str| c[k].as_u64().unwrap();
    (n("pulled"), n("served"), n("copies"))
}

#[test]
fn a_large_object_is_pulled_once_per_node_then_from_a_node_that_has_it() {
    let etcd = etcd();
    let nodes: Vec<ClusterNode> = (0..3).map(|_| start_node(&etcd.url, LEASE_TTL)).collect();
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    for n in &nodes {
        common::eventually("the nodes see each other", || {
            cluster_view(n.addr).0.len() == 2
        });
    }
    // Five calls on b, one after another, then three on c, each taking
    // the same 6 MiB object made on a.
    let job = node::submit(a.addr, "testkit", &["copies", &b.id, "5", &c.id, "3"]);
    succeeded(a.addr, &job, "copies: ok");
    // b pulled it once, from a, and kept it; c pulled it once, from b.
    assert_eq!(copies_on(b.addr), (1, 1, 1), "b");
    assert_eq!(copies_on(c.addr), (1, 0, 1), "c");
    assert_eq!(copies_on(a.addr).1, 1, "a served b's pull only");
    assert_eq!(ran(b.addr, "len").len(), 5);
    assert_eq!(ran(c.addr, "len").len(), 3);
}

/// A cluster's CA and a node certificate it signed (naming `wray-node`),
/// made with `openssl`.
struct Certs {
    dir: tempfile::TempDir,
}

impl Certs {
    fn new() -> Certs {
        let dir = tempfile::tempdir().unwrap();
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .expect("openssl (Debian's `openssl`; `make setup` installs it)");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        openssl(
            &[
                &["req", "-x509"],
                &ec[..],
                &["-keyout", "ca.key", "-out", "ca.crt"],
            ]
            .concat()
            .iter()
            .copied()
            .chain(["-days", "2", "-subj", "/CN=wray test CA"])
            .collect::<Vec<_>>(),
        );
        // A key and a certificate the CA signed: `<name>.key`, `<name>.crt`.
        let signed = |name: &str, subject: &str, ext: &str| {
            let (key, csr, crt) = (
                format!("{name}.key"),
                format!("{name}.csr"),
                format!("{name}.crt"),
            );
            let req = [&["req"], &ec[..], &["-keyout", &key, "-out", &csr]].concat();
            openssl(&[&req[..], &["-subj", subject]].concat());
            let ext_file = format!("{name}.ext");
            std::fs::write(dir.path().join(&ext_file), ext).unwrap();
            openssl(&[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &crt,
                "-days",
                "2",
                "-extfile",
                &ext_file,
            ]);
        };
        signed(
            "node",
            "/CN=wray-node",
            "subjectAltName=DNS:wray-node\nextendedKeyUsage=serverAuth,clientAuth\n",
        );
        // etcd's own, for its TLS clients (named by its address).
        signed(
            "etcd",
            "/CN=etcd",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        );
        Certs { dir }
    }

    /// `wray start`'s flags to reach an etcd that has this CA's
    /// certificate, with this node certificate as its client's.
    fn etcd_flags(&self) -> Vec<String> {
        self.files([
            ("--etcd-ca", "ca.crt"),
            ("--etcd-cert", "node.crt"),
            ("--etcd-key", "node.key"),
        ])
    }

    /// `wray start`'s TLS flags for a node with this certificate.
    fn flags(&self) -> Vec<String> {
        self.files([
            ("--tls-cert", "node.crt"),
            ("--tls-key", "node.key"),
            ("--tls-ca", "ca.crt"),
        ])
    }

    /// Each flag, then the path of its file.
    fn files(&self, flags: [(&str, &str); 3]) -> Vec<String> {
        let path = |name: &str| self.dir.path().join(name).to_string_lossy().into_owned();
        flags
            .iter()
            .flat_map(|(flag, name)| [flag.to_string(), path(name)])
            .collect()
    }
}

/// A node joining through `etcd` that talks to the others over TLS.
fn start_tls_node(etcd: &str, certs: &Certs) -> ClusterNode {
    let mut args = vec!["--etcd".to_string(), etcd.to_string()];
    args.extend(certs.flags());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    spawn_node(&args, LEASE_TTL, "")
}

#[test]
fn nodes_reach_an_etcd_over_tls_and_a_node_without_its_ca_does_not_start() {
    let certs = Certs::new();
    let etcd = etcd_of("127.0.0.1", Some(&certs));
    let mut args = vec!["--etcd".to_string(), etcd.url.clone()];
    args.extend(certs.etcd_flags());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let a = spawn_node(&args, LEASE_TTL, "");
    let b = spawn_node(&args, LEASE_TTL, "");
    common::eventually("a places calls on b", || {
        cluster_view(a.addr).0 == vec![b.id.clone()]
    });
    let job = node::submit(a.addr, "testkit", &["cluster", &b.id, &a.id]);
    succeeded(a.addr, &job, "cluster: ok");
    // Through etcd: b lists a's job.
    assert!(
        jobs(b.addr).iter().any(|j| j.0 == job),
        "{:?}",
        jobs(b.addr)
    );
    // Without etcd's CA, or without a client certificate, or over plain
    // HTTP: no node number, no start.
    let no_ca = refused(&["--etcd", &etcd.url]);
    assert!(no_ca.contains("needs --etcd-ca"), "{no_ca}");
    let ca = args[3];
    let no_cert = refused(&["--etcd", &etcd.url, "--etcd-ca", ca]);
    assert!(
        no_cert.contains("give --etcd-cert and --etcd-key"),
        "{no_cert}"
    );
    let other = Certs::new();
    let mut wrong = vec!["--etcd".to_string(), etcd.url.clone()];
    wrong.extend(other.etcd_flags());
    let wrong: Vec<&str> = wrong.iter().map(String::as_str).collect();
    let said = refused(&wrong);
    assert!(said.contains("cannot reach etcd"), "{said}");
    assert_eq!(listed(a.addr).len(), 2, "none of them joined");
}

#[test]
fn nodes_over_tls_run_everything_and_refuse_a_node_of_another_ca() {
    let etcd = etcd();
    let (ours, theirs) = (Certs::new(), Certs::new());
    let a = start_tls_node(&etcd.url, &ours);
    let b = start_tls_node(&etcd.url, &ours);
    runs_the_cluster_scenario(&a, &b);
    // A node whose certificate another CA signed is in the member list
    // (etcd lets it in) but neither served nor served by the others.
    let c = start_tls_node(&etcd.url, &theirs);
    common::eventually("a sees c", || cluster_view(a.addr).0.contains(&c.id));
    // Its actors cannot be asked for: the cluster's list says so.
    let listed = get(a.addr, "/api/v0/actors").json();
    let why = listed["unanswered"][c.id.as_str()]
        .as_str()
        .unwrap_or_default();
    assert!(why.contains("certificate"), "{listed}");
    assert!(
        listed["unanswered"].get(b.id.as_str()).is_none(),
        "{listed}"
    );
    let before = ran(a.addr, "add").len();
    let job = node::submit(c.addr, "testkit", &["cluster", &a.id]);
    let done = node::wait_job_end(c.addr, &job);
    assert_eq!(done["status"], "FAILED", "{done}");
    assert!(
        done["message"].as_str().unwrap().contains("certificate"),
        "{done}"
    );
    assert_eq!(ran(a.addr, "add").len(), before, "nothing of c's ran on a");
    // A node without TLS does not join a cluster with it, says why, and
    // is gone from the member list when it exits (it revoked its lease
    // rather than let it run out).
    let said = refused(&["--port", "0", "--etcd", &etcd.url]);
    assert!(
        said.contains("does not talk TLS") && said.contains("--tls-cert"),
        "{said}"
    );
    let nodes = get(a.addr, "/api/v0/nodes").json();
    assert_eq!(nodes.as_array().unwrap().len(), 3, "a, b and c: {nodes}");
}

/// `wray start` with `args` (and a state directory of its own), which
/// must refuse to start: what it said.
fn refused(args: &[&str]) -> String {
    let state = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_wray"))
        .arg("start")
        .args(args)
        .env("WRAY_STATE_DIR", state.path())
        .env_remove("WRAY_CLUSTER_TOKEN")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{said}");
    said
}

#[test]
fn nodes_serve_only_nodes_with_their_cluster_token() {
    let etcd = etcd();
    let a = start_node_with(&etcd.url, LEASE_TTL, "one secret");
    let b = start_node_with(&etcd.url, LEASE_TTL, "another");
    common::eventually("the nodes see each other", || {
        cluster_view(a.addr).0 == vec![b.id.clone()]
    });
    let job = node::submit(a.addr, "testkit", &["cluster", &b.id]);
    let done = node::wait_job_end(a.addr, &job);
    let logs = get(a.addr, &format!("/api/jobs/{job}/logs")).json();
    assert_eq!(done["status"], "FAILED", "{logs}");
    let said = format!("{done} {logs}");
    assert!(said.contains("cluster token"), "{said}");
    assert!(
        ran(b.addr, "add").is_empty(),
        "nothing ran on the other node"
    );
}

#[test]
fn a_cluster_node_on_a_network_address_needs_a_cluster_token() {
    let etcd = etcd();
    let said = refused(&["--host", "0.0.0.0", "--port", "0", "--etcd", &etcd.url]);
    assert!(said.contains("needs a cluster token"), "{said}");
}

#[test]
fn a_node_with_unusable_tls_files_does_not_start_and_says_why() {
    let etcd = etcd();
    let certs = Certs::new();
    let file = |name: &str| certs.dir.path().join(name).to_string_lossy().into_owned();
    let start = |cert: &str, key: &str, ca: &str| {
        refused(&[
            "--port",
            "0",
            "--etcd",
            &etcd.url,
            "--tls-cert",
            cert,
            "--tls-key",
            key,
            "--tls-ca",
            ca,
        ])
    };
    let (cert, key, ca) = (file("node.crt"), file("node.key"), file("ca.crt"));
    let said = start(&file("missing.crt"), &key, &ca);
    assert!(said.contains("cannot read the node certificate"), "{said}");
    let said = start(&key, &key, &ca);
    assert!(said.contains("holds no PEM certificate"), "{said}");
    let said = start(&cert, &file("ca.key"), &ca);
    assert!(said.contains("the node certificate and key"), "{said}");
    let said = start(&cert, &key, &file("node.key"));
    assert!(said.contains("CA certificate"), "{said}");
}

#[test]
fn a_node_alone_runs_what_is_pinned_to_it_and_refuses_other_nodes() {
    let (rt, m) = common::testkit();
    common::scenario(&rt, &m, &["pinned_alone"]);
}

#[test]
fn a_head_started_with_its_own_etcd_takes_other_nodes_in() {
    let head = spawn_node(&["--head", "--etcd-port", "0"], LEASE_TTL, "");
    let url = head
        .said
        .iter()
        .find_map(|l| l.split("join with `wray start --etcd ").nth(1))
        .and_then(|rest| rest.split('`').next())
        .expect("it printed etcd's URL")
        .to_string();
    let addr = head.addr;
    let other = start_node(&url, LEASE_TTL);
    common::eventually("the head lists both nodes", || listed(addr).len() == 2);
    assert_eq!(listed(other.addr).len(), 2);
    // Its etcd stops with it.
    drop(head);
    let etcd_addr: SocketAddr = url.trim_start_matches("http://").parse().unwrap();
    common::eventually("the head's etcd stops", || {
        std::net::TcpStream::connect(etcd_addr).is_err()
    });
}

#[test]
fn a_call_of_a_linked_module_runs_on_another_node() {
    let etcd = etcd();
    let nodes: Vec<ClusterNode> = (0..2).map(|_| start_node(&etcd.url, LEASE_TTL)).collect();
    let (a, b) = (&nodes[0], &nodes[1]);
    common::eventually("a places calls on b", || {
        cluster_view(a.addr).0 == vec![b.id.clone()]
    });
    let c_math = format!("c_math={}", common::guest("c_math").display());
    let testkit = common::guest("testkit").display().to_string();
    let address = format!("http://{}", a.addr);
    let out = common::wray(&[
        "job",
        "submit",
        "--address",
        &address,
        "--follow",
        "--module",
        &c_math,
        &testkit,
        "--",
        "cluster_cross",
        &b.id,
    ]);
    let (stdout, stderr) = common::text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("cluster cross: ok"), "{stdout}");
    assert!(stderr.contains("submitted job-"), "names the job: {stderr}");
    // The C module's add ran there: called from here, and from a task
    // that ran there (the job's links travelled with it).
    assert_eq!(ran(b.addr, "add"), vec!["FINISHED"; 2]);
    assert_eq!(ran(b.addr, "add_via_c"), vec!["FINISHED"]);
    // What that task printed there is in the job's output here, naming
    // the node it ran on.
    let line = stdout
        .lines()
        .find(|l| l.contains("c_math says 2 + 40 = 42"))
        .unwrap_or_else(|| panic!("the line printed there: {stdout}"));
    assert!(
        line.starts_with("(add_via_c task=") && line.contains(&format!(" node={})", b.id)),
        "{line}"
    );
}

#[test]
fn a_module_uploaded_to_one_node_runs_by_digest_on_any() {
    let etcd = etcd();
    let mut nodes: Vec<ClusterNode> = (0..3).map(|_| start_node(&etcd.url, LEASE_TTL)).collect();
    for n in &nodes {
        common::eventually("the nodes see each other", || {
            cluster_view(n.addr).0.len() == 2
        });
    }
    let (a, b, c) = (nodes[0].addr, nodes[1].addr, nodes[2].addr);
    let upload = |name: &str| {
        let bytes = std::fs::read(common::guest(name)).unwrap();
        let r = node::http(a, "POST", "/api/modules", &[], &bytes);
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["digest"].as_str().unwrap().to_string()
    };
    let (testkit, c_math) = (upload("testkit"), upload("c_math"));
    // A job submitted to b by digest, linking another module: both
    // uploaded to a only (as through a load balancer).
    let body =
        serde_json::json!({"module": testkit, "args": ["hello"], "links": {"c_math": c_math}});
    let r = node::post(b, "/api/jobs/", &body);
    assert_eq!(r.status, 200, "{}", r.body);
    let job = r.json()["job_id"].as_str().unwrap().to_string();
    succeeded(b, &job, "driver says hi");
    assert_eq!(
        get(b, &format!("/api/jobs/{job}")).json()["node_id"],
        nodes[1].id.as_str()
    );
    // A call over HTTP on b of a module uploaded to a.
    let add = |via, x: i64| {
        let body = serde_json::json!({"module": c_math, "function": "add", "args": [x, 2]});
        let r = node::post(via, "/api/tasks?wait=600", &body);
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["result"].clone()
    };
    assert_eq!(add(b, 40), 42);
    // With a gone, c gets the module from b, which took it.
    drop(nodes.remove(0));
    common::eventually("c sees a leave", || {
        cluster_view(c).0 == vec![nodes[0].id.clone()]
    });
    assert_eq!(add(c, 1), 3);
    // A digest no node has.
    let r = node::post(
        c,
        "/api/jobs/",
        &serde_json::json!({"module": "ab".repeat(32)}),
    );
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(
        r.error().contains("on this node or its cluster"),
        "{}",
        r.body
    );
}

/// etcd's answer to `POST /v3/kv/<op>` with `body`, through its JSON
/// gateway (keys and values in base64).
fn etcd_kv(etcd: &Etcd, op: &str, body: serde_json::Value) -> serde_json::Value {
    let r = node::post(etcd.plain, &format!("/v3/kv/{op}"), &body);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

#[test]
fn a_node_refuses_calls_meant_for_a_node_whose_address_it_took() {
    use base64::prelude::{BASE64_STANDARD, Engine};
    let etcd = etcd();
    let (a, b) = (
        start_node(&etcd.url, LEASE_TTL),
        start_node(&etcd.url, LEASE_TTL),
    );
    common::eventually("a places calls on b", || {
        cluster_view(a.addr).0 == vec![b.id.clone()]
    });
    // Node 99 as a's view will have it: at b's address (as when a node
    // that left is replaced there before the others learn it left).
    let key = |id: &str| BASE64_STANDARD.encode(format!("/wray/nodes/{id}"));
    let got = etcd_kv(&etcd, "range", serde_json::json!({"key": key(&b.id)}));
    let record = got["kvs"][0]["value"].as_str().unwrap().to_string();
    etcd_kv(
        &etcd,
        "put",
        serde_json::json!({"key": key("99"), "value": record}),
    );
    common::eventually("a sees node 99", || cluster_view(a.addr).0.len() == 2);
    let job = node::submit(a.addr, "testkit", &["pinned_to", "99"]);
    let why = format!("this is node {}, not node 99", b.id);
    succeeded(a.addr, &job, &why);
    assert!(ran(b.addr, "add").is_empty(), "b ran nothing meant for 99");
}

#[test]
fn calls_needing_a_resource_run_on_the_node_that_has_it() {
    let etcd = etcd();
    let a = start_node(&etcd.url, LEASE_TTL);
    let b = start_node_having(&etcd.url, LEASE_TTL, r#"{"gpu": 2}"#);
    common::eventually("a places calls on b", || {
        cluster_view(a.addr).0 == vec![b.id.clone()]
    });
    let job = node::submit(a.addr, "testkit", &["cluster_resources"]);
    succeeded(a.addr, &job, "cluster resources: ok");
    assert_eq!(
        ran(b.addr, "add"),
        vec!["FINISHED"; 4],
        "every GPU call ran on b"
    );
    let actors = actors_on(a.addr);
    assert_eq!(
        actors
            .iter()
            .filter(|x| x["node_id"] == b.id.as_str())
            .count(),
        1,
        "the actor needing a GPU lives on b: {actors:?}"
    );
    // b lists its GPUs, free again; `wray list nodes` shows them.
    let status = get(b.addr, "/api/v0/status").json();
    assert_eq!(status["resources"]["gpu"]["total"], 2.0, "{status}");
    common::eventually("b's GPUs are free again", || {
        get(b.addr, "/api/v0/status").json()["resources"]["gpu"]["available"] == 2.0
    });
    let out = common::wray(&["list", "nodes", "--address", &a.addr.to_string()]);
    let (stdout, stderr) = common::text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("gpu=2"), "{stdout}");
}

#[test]
fn a_node_on_a_wildcard_address_names_a_reachable_one_and_answers_probes() {
    let etcd = etcd();
    let a = spawn_node(
        &["--etcd", &etcd.url, "--host", "0.0.0.0"],
        LEASE_TTL,
        "secret",
    );
    let b = start_node_with(&etcd.url, LEASE_TTL, "secret");
    // Its record names the interface the others reach it on, not 0.0.0.0.
    let nodes = get(b.addr, "/api/v0/nodes").json();
    let record = nodes
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node_id"] == a.id.as_str())
        .unwrap_or_else(|| panic!("a is listed: {nodes}"))
        .clone();
    for key in ["rpc_address", "address"] {
        let at = record[key].as_str().unwrap();
        assert!(at.starts_with("127.0.0.1:"), "{key}: {record}");
    }
    // And calls reach it there.
    common::eventually("b places calls on a", || {
        cluster_view(b.addr).0 == vec![a.id.clone()]
    });
    let job = node::submit(b.addr, "testkit", &["cluster", &a.id, &b.id]);
    succeeded(b.addr, &job, "cluster: ok");
    // Its API wants its token, but a readiness probe needs none to learn
    // whether it leads (and learns nothing else).
    let probe = get(a.addr, "/api/v0/head");
    assert!(probe.status == 200 || probe.status == 503, "{}", probe.body);
    let head = probe.json();
    assert_eq!(head, serde_json::json!({ "head": probe.status == 200 }));
    assert_eq!(get(a.addr, "/api/v0/nodes").status, 401);
}

/// The API token of the nodes of the partition test (open to a network).
const API_TOKEN: &str = "partition-test-token";
/// The header that presents it.
const BEARER: (&str, &str) = ("Authorization", "Bearer partition-test-token");

/// A network namespace joined to this one by a veth pair: this side
/// `host_ip`, the other `ns_ip`. Deleted when dropped.
struct Netns {
    name: String,
    host_if: String,
    ns_if: String,
    host_ip: String,
    ns_ip: String,
}

/// Runs `ip` with `args`; whether it succeeded.
fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Netns {
    /// A namespace of this test process's own, or `None` where it cannot
    /// be made (not root, no `ip netns`).
    fn new() -> Option<Netns> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return None;
        }
        let pid = std::process::id();
        let subnet = pid % 250 + 1;
        let net = Netns {
            name: format!("wray-part-{pid}"),
            host_if: format!("wrp{}a", pid % 100_000),
            ns_if: format!("wrp{}b", pid % 100_000),
            host_ip: format!("10.231.{subnet}.1"),
            ns_ip: format!("10.231.{subnet}.2"),
        };
        let ns = |args: &[&str]| {
            let mut all = vec!["netns", "exec", &net.name, "ip"];
            all.extend_from_slice(args);
            ip(&all)
        };
        let made = ip(&["netns", "add", &net.name])
            && ip(&[
                "link",
                "add",
                &net.host_if,
                "type",
                "veth",
                "peer",
                "name",
                &net.ns_if,
            ])
            && ip(&["link", "set", &net.ns_if, "netns", &net.name])
            && ip(&[
                "addr",
                "add",
                &format!("{}/30", net.host_ip),
                "dev",
                &net.host_if,
            ])
            && ip(&["link", "set", &net.host_if, "up"])
            && ns(&[
                "addr",
                "add",
                &format!("{}/30", net.ns_ip),
                "dev",
                &net.ns_if,
            ])
            && ns(&["link", "set", &net.ns_if, "up"])
            && ns(&["link", "set", "lo", "up"]);
        made.then_some(net) // (if not, dropping `net` cleans up)
    }

    /// Cuts the namespace off: its end of the link goes down.
    fn cut(&self) {
        let down = ip(&[
            "netns",
            "exec",
            &self.name,
            "ip",
            "link",
            "set",
            &self.ns_if,
            "down",
        ]);
        assert!(down, "the link goes down");
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        ip(&["link", "del", &self.host_if]);
        ip(&["netns", "del", &self.name]);
    }
}

/// A node cut off by a network partition (its namespace's link down) is
/// dropped by the others within its lease, stops itself, and a job that
/// had calls on it still gets every result right. Needs root (`ip
/// netns`); skipped with a message otherwise.
#[test]
fn a_partitioned_node_is_dropped_and_stops_itself_and_its_calls_run_elsewhere() {
    let Some(net) = Netns::new() else {
        eprintln!("skipped: a network partition needs root and `ip netns`");
        return;
    };
    let etcd = etcd_at(&net.host_ip);
    let on = |netns: Option<&str>, ip: &str| {
        let args = ["--etcd", &etcd.url, "--host", ip];
        spawn_node_in(netns, true, &args, LEASE_TTL, "secret")
    };
    let a = on(None, &net.host_ip);
    let b = on(None, &net.host_ip);
    let mut cut = on(Some(&net.name), &net.ns_ip);
    let get = |via: SocketAddr, path: &str| node::get_as(via, path, &[BEARER]);
    let peers = |via: SocketAddr| get(via, "/api/v0/status").json()["cluster"]["peers"].clone();
    common::eventually("a places calls on both others", || {
        peers(a.addr).as_array().unwrap().len() == 2
    });
    // Every call takes 300 ms; once the far node runs one, cut it off.
    let job = node::submit_as(a.addr, "testkit", &["survive", "30", "300"], &[BEARER]);
    common::eventually("the far node runs a call", || {
        let tasks = get(cut.addr, "/api/v0/tasks?function=busy").json();
        tasks["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["state"] == "RUNNING")
    });
    net.cut();
    survived(a.addr, &job, &[BEARER]);
    // The others drop it; it learns it lost its membership and stops.
    for n in [a.addr, b.addr] {
        common::eventually("the cut-off node is dropped", || {
            peers(n).as_array().unwrap().len() == 1
        });
    }
    let mut status = None;
    common::eventually("the cut-off node stops itself", || {
        status = cut.proc.0.try_wait().unwrap();
        status.is_some()
    });
    assert_eq!(status.unwrap().code(), Some(1));
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut cut.stderr, &mut rest).unwrap();
    assert!(rest.contains("lost its cluster membership"), "{rest}");
}
