//! A single-member etcd this process starts and stops: for `wray start
//! --head` (a cluster to try on one machine) and `wray bench --cluster`.

use anyhow::{Context, bail};
use std::net::{IpAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running etcd, stopped when dropped.
pub struct Etcd {
    child: Child,
    /// Its client URL (`http://host:port`).
    pub url: String,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port on `host` that is free now (0 asks the kernel for one).
pub fn free_port(host: IpAddr) -> anyhow::Result<u16> {
    Ok(TcpListener::bind((host, 0))?.local_addr()?.port())
}

impl Etcd {
    /// Starts etcd with its data in `data`, serving clients on
    /// `host:port` (a free port if 0), its output in `log` (discarded if
    /// `None`); returns once it accepts connections.
    pub fn start(host: IpAddr, port: u16, data: &Path, log: Option<&Path>) -> anyhow::Result<Etcd> {
        let port = if port == 0 { free_port(host)? } else { port };
        let peer = free_port(IpAddr::from([127, 0, 0, 1]))?;
        let shown = match host {
            IpAddr::V6(ip) => format!("[{ip}]"),
            IpAddr::V4(ip) if ip.is_unspecified() => "127.0.0.1".into(),
            IpAddr::V4(ip) => ip.to_string(),
        };
        let listen = match host {
            IpAddr::V6(ip) => format!("http://[{ip}]:{port}"),
            IpAddr::V4(ip) => format!("http://{ip}:{port}"),
        };
        let url = format!("http://{shown}:{port}");
        let (out, err) = match log {
            Some(p) => {
                let f = std::fs::File::create(p)
                    .with_context(|| format!("cannot create {}", p.display()))?;
                (Stdio::from(f.try_clone()?), Stdio::from(f))
            }
            None => (Stdio::null(), Stdio::null()),
        };
        let mut cmd = Command::new("etcd");
        // It dies with this process, even one killed outright (which runs
        // no destructor): a trial etcd must not outlive its node.
        // SAFETY: prctl is async-signal-safe and touches no memory of ours.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = cmd
            .arg("--data-dir")
            .arg(data)
            .args([
                "--listen-client-urls",
                &listen,
                "--advertise-client-urls",
                &url,
            ])
            .args(["--listen-peer-urls", &format!("http://127.0.0.1:{peer}")])
            .args([
                "--initial-advertise-peer-urls",
                &format!("http://127.0.0.1:{peer}"),
            ])
            .args([
                "--initial-cluster",
                &format!("default=http://127.0.0.1:{peer}"),
            ])
            .stdout(out)
            .stderr(err)
            .spawn()
            .context("cannot start etcd (install Debian's etcd-server: `make setup` does)")?;
        let mut etcd = Etcd { child, url };
        let deadline = Instant::now() + Duration::from_secs(20);
        let addr = (
            if host.is_unspecified() {
                IpAddr::from([127, 0, 0, 1])
            } else {
                host
            },
            port,
        );
        while std::net::TcpStream::connect(addr).is_err() {
            if let Some(status) = etcd.child.try_wait()? {
                bail!(
                    "etcd exited ({status}) before it served{}",
                    log.map(|p| format!("; see {}", p.display()))
                        .unwrap_or_default()
                );
            }
            if Instant::now() > deadline {
                bail!("etcd did not serve within 20 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(etcd)
    }
}
