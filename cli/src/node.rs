//! `wray start`, `wray stop`: a long-running node.

use crate::RuntimeArgs;
use crate::client::{Client, node_file, state_dir, token_file};
use anyhow::{Context, bail};
use clap::Args;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wray_runtime::NullSink;
use wray_runtime::cluster::tls::TlsFiles;
use wray_runtime::node::types::NodeEntry;
use wray_runtime::node::{LogStore, Node, NodeOptions, new_token};

#[derive(Args)]
pub struct StartArgs {
    /// The address to listen on. Anything but a loopback address requires
    /// a token of its clients: `$WRAY_TOKEN` if set, else a fresh one the
    /// node writes to its state directory (mode 0600).
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// The port of the dashboard and the API (0: any free port).
    #[arg(long, default_value_t = 8265)]
    port: u16,
    /// Run in the background; `wray stop` ends it.
    #[arg(long)]
    detach: bool,
    /// Memory for all jobs' logs together, e.g. `64MiB`; past it the logs
    /// of ended jobs are dropped, oldest first.
    #[arg(long, value_name = "SIZE", value_parser = crate::units::parse_size, default_value = "256MiB")]
    log_memory: u64,
    /// How many module uploads the node reads at once; others wait.
    #[arg(long, value_name = "N", default_value_t = 2)]
    max_uploads: usize,
    /// Join the cluster whose etcd answers here (`http://host:2379`;
    /// repeatable, or comma-separated, for several etcd members).
    #[arg(long, value_name = "URL", value_delimiter = ',')]
    etcd: Vec<String>,
    /// Start a cluster to try: run a one-member etcd too (its data in the
    /// state directory), and join it. Other nodes join with `--etcd` and
    /// the URL this prints. For a trial: that etcd has no authentication.
    #[arg(long, conflicts_with = "etcd")]
    head: bool,
    /// With --head: the port of its etcd (0: any free port).
    #[arg(long, value_name = "PORT", default_value_t = 2379, requires = "head")]
    etcd_port: u16,
    /// With --etcd: seconds without renewing its lease after which the
    /// cluster counts this node dead (it then stops itself).
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    lease_ttl: u64,
    /// With --etcd: the port other nodes call this one at, on --host (0:
    /// any free port).
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    rpc_port: u16,
    /// With --etcd and a wildcard --host (`0.0.0.0`): the address other
    /// nodes reach this one at (default: that of the interface this
    /// machine reaches etcd through). Ray's `--node-ip-address`.
    #[arg(long, value_name = "ADDR")]
    node_ip: Option<std::net::IpAddr>,
    /// With --etcd: talk to other nodes over mutual TLS, with this node's
    /// certificate (PEM, signed by the cluster's CA, naming `wray-node`);
    /// needs --tls-key and --tls-ca. See docs/cluster.md.
    #[arg(long, value_name = "FILE", requires_all = ["tls_key", "tls_ca"])]
    tls_cert: Option<std::path::PathBuf>,
    /// With --tls-cert: this node's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// With --tls-cert: the cluster's CA certificate (PEM): only nodes
    /// with a certificate it signed are served or called.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_ca: Option<std::path::PathBuf>,
    /// With --etcd of `https://` URLs: the CA certificate (PEM) that
    /// signed etcd's certificate.
    #[arg(long, value_name = "FILE", requires = "etcd")]
    etcd_ca: Option<std::path::PathBuf>,
    /// With --etcd-ca: this node's client certificate for etcd (PEM), if
    /// etcd requires one (`--client-cert-auth`); needs --etcd-key.
    #[arg(long, value_name = "FILE", requires_all = ["etcd_ca", "etcd_key"])]
    etcd_cert: Option<std::path::PathBuf>,
    /// With --etcd-cert: its private key (PEM).
    #[arg(long, value_name = "FILE", requires = "etcd_cert")]
    etcd_key: Option<std::path::PathBuf>,
    #[command(flatten)]
    runtime: RuntimeArgs,
}

pub fn start(mut args: StartArgs) -> anyhow::Result<ExitCode> {
    if args.detach {
        return detach();
    }
    let began = Instant::now();
    let dir = state_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
    if let Some(pid) = running_pid() {
        bail!(
            "a wray node (pid {pid}) is already running from {}; `wray stop` ends it",
            dir.display()
        );
    }
    // A trial cluster's etcd: this node's child, stopped with it.
    let _etcd = if args.head {
        let data = dir.join("etcd");
        let etcd = crate::etcd::Etcd::start(
            args.host,
            args.etcd_port,
            &data,
            Some(&dir.join("etcd.log")),
        )?;
        eprintln!(
            "etcd started for this cluster at {} (data in {}); other nodes join with `wray start \
             --etcd {}`",
            etcd.url,
            data.display(),
            etcd.url
        );
        args.etcd = vec![etcd.url.clone()];
        Some(etcd)
    } else {
        None
    };
    let logs = Arc::new(
        LogStore::new(Arc::new(NullSink))
            .with_total_limit(usize::try_from(args.log_memory).unwrap_or(usize::MAX)),
    );
    let etcd_tls = match &args.etcd_ca {
        Some(ca) => {
            let identity = args.etcd_cert.as_deref().zip(args.etcd_key.as_deref());
            Some(wray_runtime::cluster::etcd::EtcdTls::read(ca, identity)?)
        }
        None => None,
    };
    // In a cluster, ids carry a node number the cluster hands out.
    let mut builder = args.runtime.builder();
    if !args.etcd.is_empty() {
        let number = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(wray_runtime::cluster::etcd::allocate_node_number(
                &args.etcd,
                etcd_tls.as_ref(),
            ))?;
        builder = builder.node_id(number);
    }
    let rt = builder.output(logs.clone()).build()?;
    // Off loopback, clients present a token: `$WRAY_TOKEN` if set (so a
    // deployment can hand the same one to the node and its clients),
    // else a fresh one.
    let token = (!args.host.is_loopback()).then(|| {
        std::env::var("WRAY_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
            .unwrap_or_else(new_token)
    });
    if let Some(t) = &token {
        write_private(&token_file(), t)?;
    } else {
        let _ = std::fs::remove_file(token_file());
    }
    let node = Node::serve(
        &rt,
        logs,
        NodeOptions {
            host: args.host,
            port: args.port,
            token,
            max_uploads: args.max_uploads,
            etcd: args.etcd.clone(),
            lease_ttl: args.lease_ttl,
            rpc_port: args.rpc_port,
            node_ip: args.node_ip,
            cluster_token: std::env::var("WRAY_CLUSTER_TOKEN")
                .ok()
                .filter(|t| !t.is_empty()),
            cluster_tls: match (&args.tls_cert, &args.tls_key, &args.tls_ca) {
                (Some(cert), Some(key), Some(ca)) => Some(TlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                    ca: ca.clone(),
                }),
                _ => None,
            },
            etcd_tls,
        },
    )?;
    let url = node.url();
    write_private(
        &node_file(),
        &serde_json::json!({"pid": std::process::id(), "url": url}).to_string(),
    )?;
    eprintln!(
        "wray node started in {} ms\ndashboard and API: {url}",
        began.elapsed().as_millis()
    );
    if !args.host.is_loopback() {
        eprintln!(
            "clients need the token in {} (or $WRAY_TOKEN)",
            token_file().display()
        );
    }
    if !args.etcd.is_empty() {
        eprintln!(
            "joined the cluster at {} as node {}",
            args.etcd.join(","),
            node.node_id()
        );
    }
    let stop = match std::env::var_os("WRAY_STATE_DIR") {
        Some(dir) => format!("WRAY_STATE_DIR={} wray stop", dir.to_string_lossy()),
        None => "wray stop".into(),
    };
    eprintln!("stop it with `{stop}` (or Ctrl-C in its terminal)");
    // A node whose lease ran out is dead to the cluster: it stops.
    let lost = rt.block_on(async {
        tokio::select! {
            s = crate::stop_signal() => s.map(|_| false),
            () = node.membership_lost() => Ok(true),
        }
    })?;
    if lost {
        eprintln!("wray: this node lost its cluster membership (its lease ran out); stopping");
        drop(node);
        let _ = std::fs::remove_file(node_file());
        return Ok(ExitCode::FAILURE);
    }
    // Stopped: the other nodes drop it now, not when its lease runs out.
    rt.block_on(node.leave());
    drop(node);
    let _ = std::fs::remove_file(node_file());
    let _ = std::fs::remove_file(token_file());
    eprintln!("wray node stopped");
    Ok(ExitCode::SUCCESS)
}

/// Starts this same command in the background, in a session of its own,
/// and waits until it serves.
fn detach() -> anyhow::Result<ExitCode> {
    let dir = state_dir();
    std::fs::create_dir_all(&dir)?;
    let log = dir.join("node.log");
    let out = std::fs::File::create(&log)?;
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--detach")
        .collect();
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(&args)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    // SAFETY: setsid is async-signal-safe and touches no memory of ours.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn().context("cannot start the node")?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait()? {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            bail!("the node exited ({status}):\n{text}");
        }
        if let Some(pid) = running_pid()
            && pid == child.id()
            && Client::new(None)
                .get::<Vec<NodeEntry>>("/api/v0/nodes")
                .is_ok()
        {
            println!(
                "wray node running (pid {pid}): {}",
                Client::new(None).base()
            );
            println!("log: {}", log.display());
            return Ok(ExitCode::SUCCESS);
        }
        if Instant::now() > deadline {
            bail!(
                "the node did not start serving in 20 s; see {}",
                log.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The pid of the node this machine's state directory names, if it runs.
fn running_pid() -> Option<u32> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(node_file()).ok()?).ok()?;
    let pid = u32::try_from(v["pid"].as_u64()?).ok()?;
    alive(pid).then_some(pid)
}

/// Whether process `pid` runs (exists and is not a zombie).
fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    if unsafe { libc::kill(pid as i32, 0) } != 0 {
        return false;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The state follows the command name, which is in parentheses.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .is_none_or(|state| state != "Z")
}

pub fn stop() -> anyhow::Result<ExitCode> {
    let Some(pid) = running_pid() else {
        let _ = std::fs::remove_file(node_file());
        eprintln!("no wray node is running");
        return Ok(ExitCode::FAILURE);
    };
    // SAFETY: sends SIGTERM to the node's pid, which it handles.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) {
        if Instant::now() > deadline {
            bail!("the node (pid {pid}) did not stop within 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = std::fs::remove_file(node_file());
    eprintln!("wray node (pid {pid}) stopped");
    Ok(ExitCode::SUCCESS)
}

/// Writes `text` to `path`, readable by this user only.
fn write_private(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(text.as_bytes())?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    Ok(())
}
