//! [`Membership`] on etcd: a lease, a key under it, and a thread of its own
//! that keeps the lease alive, so a busy node is not declared dead.

use super::{BoxFuture, HEAD_KEY, Member, Membership, NODES_PREFIX};
use anyhow::{Context, anyhow};
use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, GetOptions, Identity,
    LeaseKeepAliveStream, LeaseKeeper, PutOptions, TlsOptions, Txn, TxnOp, WatchOptions,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::timeout_at;

/// How long a call to etcd may take before it counts as failed.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// The key holding the next node number to hand out.
const NEXT_NODE_KEY: &str = "/wray/next-node";

/// The context of a failure to talk to etcd at all.
fn unreachable(endpoints: &[String], tls: Option<&EtcdTls>) -> String {
    let hint = match tls {
        None if endpoints.iter().any(|e| e.starts_with("https://")) => {
            " (an etcd on https:// needs --etcd-ca, the certificate of the CA that signed etcd's)"
        }
        Some(t) if !t.identified => {
            " (if etcd asks for client certificates, --client-cert-auth, give --etcd-cert and --etcd-key)"
        }
        _ => "",
    };
    format!("cannot reach etcd at {}{hint}", endpoints.join(","))
}

/// How a node talks TLS to etcd (its endpoints then `https://` URLs): the
/// CA that signed etcd's certificate, and this node's client certificate
/// if etcd asks for one (`--client-cert-auth`).
#[derive(Clone, Debug)]
pub struct EtcdTls {
    options: TlsOptions,
    /// Whether it has a client certificate.
    identified: bool,
}

impl EtcdTls {
    /// Reads the CA certificate `ca` and, if given, this node's
    /// certificate and key (`identity`), all PEM files.
    pub fn read(
        ca: &std::path::Path,
        identity: Option<(&std::path::Path, &std::path::Path)>,
    ) -> anyhow::Result<EtcdTls> {
        let read = |p: &std::path::Path| {
            std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))
        };
        let mut tls = TlsOptions::new().ca_certificate(Certificate::from_pem(read(ca)?));
        if let Some((cert, key)) = identity {
            tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
        }
        Ok(EtcdTls {
            options: tls,
            identified: identity.is_some(),
        })
    }
}

fn connect_options(tls: Option<&EtcdTls>) -> ConnectOptions {
    let options = ConnectOptions::new()
        .with_connect_timeout(CALL_TIMEOUT)
        .with_timeout(CALL_TIMEOUT);
    match tls {
        Some(t) => options.with_tls(t.options.clone()),
        None => options,
    }
}

/// A node number no other node of the cluster at `endpoints` was given,
/// from 1 (0 is a node alone): the task, actor and object ids a node makes
/// carry it, so they are unique across the cluster. Numbers are never
/// reused; a compare-and-swap on one key hands them out.
pub async fn allocate_node_number(
    endpoints: &[String],
    tls: Option<&EtcdTls>,
) -> anyhow::Result<u32> {
    let mut client = Client::connect(endpoints, Some(connect_options(tls)))
        .await
        .with_context(|| unreachable(endpoints, tls))?;
    let n = take_number(&mut client, NEXT_NODE_KEY)
        .await
        .with_context(|| unreachable(endpoints, tls))?;
    u32::try_from(n).map_err(|_| anyhow!("the cluster has handed out every node number"))
}

/// Takes the next number (from 1) of the counter `key`, by
/// compare-and-swap: racing callers each get one of their own.
async fn take_number(client: &mut Client, key: &str) -> anyhow::Result<u64> {
    loop {
        let current = client.get(key, None).await?;
        let (number, guard) = match current.kvs().first() {
            None => (1u64, Compare::create_revision(key, CompareOp::Equal, 0)),
            Some(kv) => {
                let n: u64 = kv
                    .value_str()
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| anyhow!("etcd's {key} is not a number"))?;
                (
                    n,
                    Compare::mod_revision(key, CompareOp::Equal, kv.mod_revision()),
                )
            }
        };
        let next = number
            .checked_add(1)
            .ok_or_else(|| anyhow!("etcd's {key} has run out of numbers"))?;
        let txn = Txn::new()
            .when([guard])
            .and_then([TxnOp::put(key, next.to_string(), None)]);
        if client.txn(txn).await?.succeeded() {
            return Ok(number);
        }
        // Another caller took it first: read again.
    }
}

/// A node registered in etcd.
pub struct EtcdMembership {
    id: String,
    client: Client,
    /// The lease its keys live under.
    lease: i64,
    /// Set, and `lost_notify` notified, when the lease is gone.
    lost: Arc<AtomicBool>,
    /// Set while this node holds the head key.
    head: Arc<AtomicBool>,
    lost_notify: Arc<Notify>,
    /// Tells the keep-alive thread to revoke the lease and end.
    stop: Arc<AtomicBool>,
    /// Counts changes of the member list (see `watch_members`).
    changes: tokio::sync::watch::Receiver<u64>,
    /// The task watching the member list.
    watcher: tokio::task::JoinHandle<()>,
}

/// Counts the changes etcd reports under the nodes' prefix, for as long as
/// the membership lives; after a broken watch it counts one (the list may
/// have changed meanwhile) and watches again.
async fn watch_members(mut client: Client, changes: tokio::sync::watch::Sender<u64>) {
    let bump = || changes.send_modify(|n| *n += 1);
    loop {
        let watching = client
            .watch(NODES_PREFIX, Some(WatchOptions::new().with_prefix()))
            .await;
        if let Ok(mut stream) = watching {
            while let Ok(Some(r)) = stream.message().await {
                if !r.events().is_empty() || r.canceled() {
                    bump();
                }
                if r.canceled() {
                    break;
                }
            }
        }
        bump();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

impl EtcdMembership {
    /// Joins the cluster whose etcd answers at `endpoints` (over `tls`,
    /// if given): registers `record` as node `id` under a lease of `ttl`
    /// seconds, kept alive from a thread of its own.
    pub async fn join(
        endpoints: &[String],
        tls: Option<&EtcdTls>,
        id: &str,
        record: Vec<u8>,
        ttl: i64,
    ) -> anyhow::Result<EtcdMembership> {
        let options = connect_options(tls);
        let mut client = Client::connect(endpoints, Some(options.clone()))
            .await
            .with_context(|| unreachable(endpoints, tls))?;
        // The connection is made on first use: here.
        let lease = client
            .lease_grant(ttl, None)
            .await
            .with_context(|| unreachable(endpoints, tls))?
            .id();
        let key = format!("{NODES_PREFIX}{id}");
        client
            .put(key, record, Some(PutOptions::new().with_lease(lease)))
            .await
            .context("etcd refused this node's key")?;
        let (lost, lost_notify, stop, head) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(Notify::new()),
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let keeper = Keeper {
            endpoints: endpoints.to_vec(),
            id: id.to_string(),
            lease,
            ttl,
            lost: lost.clone(),
            lost_notify: lost_notify.clone(),
            stop: stop.clone(),
            head: head.clone(),
        };
        std::thread::Builder::new()
            .name("wray-lease".into())
            .spawn(move || keeper.run(options))
            .context("cannot start the lease thread")?;
        let (count, changes) = tokio::sync::watch::channel(0u64);
        let watcher = tokio::spawn(watch_members(client.clone(), count));
        Ok(EtcdMembership {
            changes,
            watcher,
            id: id.to_string(),
            client,
            lease,
            lost,
            head,
            lost_notify,
            stop,
        })
    }
}

impl Drop for EtcdMembership {
    fn drop(&mut self) {
        // The keeper revokes the lease: the node leaves at once rather than
        // when the lease runs out.
        self.stop.store(true, Ordering::Release);
        self.watcher.abort();
    }
}

impl Membership for EtcdMembership {
    fn id(&self) -> &str {
        &self.id
    }

    fn members(&self) -> BoxFuture<'_, anyhow::Result<Vec<Member>>> {
        Box::pin(async move {
            self.list(NODES_PREFIX.to_string())
                .await
                .context("cannot list the cluster's nodes in etcd")
        })
    }

    fn head(&self) -> BoxFuture<'_, anyhow::Result<Option<String>>> {
        let mut client = self.client.clone();
        Box::pin(async move {
            let r = client
                .get(HEAD_KEY, None)
                .await
                .context("cannot read the cluster's head in etcd")?;
            Ok(r.kvs()
                .first()
                .and_then(|kv| kv.value_str().ok())
                .map(str::to_string))
        })
    }

    fn claim(&self, key: String, value: Vec<u8>) -> BoxFuture<'_, anyhow::Result<Option<Vec<u8>>>> {
        let mut client = self.client.clone();
        let lease = self.lease;
        Box::pin(async move {
            let txn = Txn::new()
                .when([Compare::create_revision(key.as_str(), CompareOp::Equal, 0)])
                .and_then([TxnOp::put(
                    key.as_str(),
                    value,
                    Some(PutOptions::new().with_lease(lease)),
                )])
                .or_else([TxnOp::get(key.as_str(), None)]);
            let r = client
                .txn(txn)
                .await
                .with_context(|| format!("cannot claim {key} in etcd"))?;
            if r.succeeded() {
                return Ok(None);
            }
            // Taken: the holder's value (or, if it went meanwhile, empty).
            let holder = r.op_responses().into_iter().find_map(|op| match op {
                etcd_client::TxnOpResponse::Get(g) => g.kvs().first().map(|kv| kv.value().to_vec()),
                _ => None,
            });
            Ok(Some(holder.unwrap_or_default()))
        })
    }

    fn read(&self, key: String) -> BoxFuture<'_, anyhow::Result<Option<Vec<u8>>>> {
        let mut client = self.client.clone();
        Box::pin(async move {
            let r = client
                .get(key.as_str(), None)
                .await
                .with_context(|| format!("cannot read {key} in etcd"))?;
            Ok(r.kvs().first().map(|kv| kv.value().to_vec()))
        })
    }

    fn release(&self, key: String, value: Vec<u8>) -> BoxFuture<'_, anyhow::Result<()>> {
        let mut client = self.client.clone();
        Box::pin(async move {
            let txn = Txn::new()
                .when([Compare::value(key.as_str(), CompareOp::Equal, value)])
                .and_then([TxnOp::delete(key.as_str(), None)]);
            client
                .txn(txn)
                .await
                .with_context(|| format!("cannot release {key} in etcd"))?;
            Ok(())
        })
    }

    fn count(&self, key: String) -> BoxFuture<'_, anyhow::Result<u64>> {
        let mut client = self.client.clone();
        Box::pin(async move {
            take_number(&mut client, &key)
                .await
                .with_context(|| format!("cannot count {key} in etcd"))
        })
    }

    fn put(&self, key: String, value: Vec<u8>) -> BoxFuture<'_, anyhow::Result<()>> {
        let mut client = self.client.clone();
        Box::pin(async move {
            client
                .put(key.as_str(), value, None)
                .await
                .with_context(|| format!("cannot write {key} in etcd"))?;
            Ok(())
        })
    }

    fn write_all(
        &self,
        writes: Vec<(String, Option<Vec<u8>>)>,
    ) -> BoxFuture<'_, anyhow::Result<()>> {
        let mut client = self.client.clone();
        Box::pin(async move {
            let n = writes.len();
            let ops: Vec<TxnOp> = writes
                .into_iter()
                .map(|(key, value)| match value {
                    Some(v) => TxnOp::put(key, v, None),
                    None => TxnOp::delete(key, None),
                })
                .collect();
            client
                .txn(Txn::new().and_then(ops))
                .await
                .with_context(|| format!("cannot write {n} keys in etcd"))?;
            Ok(())
        })
    }

    fn replace(
        &self,
        key: String,
        old: Vec<u8>,
        new: Vec<u8>,
    ) -> BoxFuture<'_, anyhow::Result<bool>> {
        let mut client = self.client.clone();
        Box::pin(async move {
            let txn = Txn::new()
                .when([Compare::value(key.as_str(), CompareOp::Equal, old)])
                .and_then([TxnOp::put(key.as_str(), new, None)]);
            Ok(client
                .txn(txn)
                .await
                .with_context(|| format!("cannot write {key} in etcd"))?
                .succeeded())
        })
    }

    fn delete(&self, key: String) -> BoxFuture<'_, anyhow::Result<()>> {
        let mut client = self.client.clone();
        Box::pin(async move {
            client
                .delete(key.as_str(), None)
                .await
                .with_context(|| format!("cannot delete {key} in etcd"))?;
            Ok(())
        })
    }

    fn list(&self, prefix: String) -> BoxFuture<'_, anyhow::Result<Vec<Member>>> {
        let mut client = self.client.clone();
        Box::pin(async move {
            let r = client
                .get(prefix.as_str(), Some(GetOptions::new().with_prefix()))
                .await
                .with_context(|| format!("cannot list {prefix} in etcd"))?;
            r.kvs()
                .iter()
                .map(|kv| {
                    let key = kv
                        .key_str()
                        .map_err(|e| anyhow!("a key under {prefix}: {e}"))?;
                    let key = key.strip_prefix(prefix.as_str()).unwrap_or(key).to_string();
                    Ok((key, kv.value().to_vec()))
                })
                .collect()
        })
    }

    fn member_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.clone()
    }

    fn leads(&self) -> bool {
        self.head.load(Ordering::Acquire) && !self.lost.load(Ordering::Acquire)
    }

    fn leave(&self) -> BoxFuture<'_, ()> {
        let mut client = self.client.clone();
        Box::pin(async move {
            let _ = tokio::time::timeout(CALL_TIMEOUT, client.lease_revoke(self.lease)).await;
        })
    }

    fn lost(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            loop {
                let notified = self.lost_notify.notified();
                if self.lost.load(Ordering::Acquire) {
                    return;
                }
                notified.await;
            }
        })
    }
}

/// Keeps a lease alive, on its own thread and tokio runtime.
struct Keeper {
    endpoints: Vec<String>,
    /// This node's id, which it writes to the head key when it wins.
    id: String,
    lease: i64,
    ttl: i64,
    lost: Arc<AtomicBool>,
    lost_notify: Arc<Notify>,
    stop: Arc<AtomicBool>,
    /// Set once this node holds the head key.
    head: Arc<AtomicBool>,
}

impl Keeper {
    fn run(self, options: ConnectOptions) {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(_) => return self.give_up(),
        };
        rt.block_on(async {
            // Renew three times per time to live; a lease etcd no longer
            // knows (it expired while this node could not reach etcd) ends
            // the membership.
            let period = Duration::from_millis((self.ttl.max(1) as u64 * 1000) / 3);
            let deadline =
                |since: tokio::time::Instant| since + Duration::from_secs(self.ttl.max(1) as u64);
            let mut renewed = tokio::time::Instant::now();
            let mut conn: Option<Conn> = None;
            // Once head, always head: the key lives as long as the lease.
            while !self.stop.load(Ordering::Acquire) {
                // No step may outlast the lease: cut off by a partition, a
                // connection hangs (no reset comes) rather than fail.
                let until = deadline(renewed);
                if conn.is_none() {
                    let open = Conn::open(&self.endpoints, options.clone(), self.lease);
                    conn = timeout_at(until, open).await.ok().and_then(Result::ok);
                }
                if let Some(c) = conn.as_mut() {
                    match timeout_at(until, c.renew()).await {
                        Ok(Ok(ttl)) if ttl > 0 => {
                            renewed = tokio::time::Instant::now();
                            // Stand for head: the key is created only if
                            // absent, under this node's lease, so it goes
                            // when its holder dies and the next round of a
                            // standby takes it.
                            if !self.head.load(Ordering::Acquire) {
                                let stand = campaign(&mut c.client, &self.id, self.lease);
                                match timeout_at(until, stand).await {
                                    Ok(Ok(won)) => self.head.store(won, Ordering::Release),
                                    _ => conn = None,
                                }
                            }
                        }
                        Ok(Ok(_)) => return self.give_up(),
                        Ok(Err(_)) | Err(_) => conn = None,
                    }
                }
                if tokio::time::Instant::now() >= deadline(renewed) {
                    return self.give_up();
                }
                tokio::time::sleep(period).await;
            }
            if let Some(c) = conn.as_mut() {
                let _ = c.client.lease_revoke(self.lease).await;
            }
        });
    }

    fn give_up(&self) {
        self.head.store(false, Ordering::Release);
        self.lost.store(true, Ordering::Release);
        self.lost_notify.notify_waiters();
    }
}

/// Takes the head key if nobody holds it; whether this node now does.
async fn campaign(client: &mut Client, id: &str, lease: i64) -> anyhow::Result<bool> {
    let txn = Txn::new()
        .when([Compare::create_revision(HEAD_KEY, CompareOp::Equal, 0)])
        .and_then([TxnOp::put(
            HEAD_KEY,
            id,
            Some(PutOptions::new().with_lease(lease)),
        )]);
    Ok(client.txn(txn).await?.succeeded())
}

/// The keeper's connection: a client and one keep-alive stream, kept
/// across renewals.
struct Conn {
    client: Client,
    keeper: LeaseKeeper,
    stream: LeaseKeepAliveStream,
}

impl Conn {
    async fn open(
        endpoints: &[String],
        options: ConnectOptions,
        lease: i64,
    ) -> anyhow::Result<Conn> {
        let mut client = Client::connect(endpoints, Some(options)).await?;
        let (keeper, stream) = client.lease_keep_alive(lease).await?;
        Ok(Conn {
            client,
            keeper,
            stream,
        })
    }

    /// One keep-alive round trip; the lease's remaining time to live (0:
    /// etcd no longer has it).
    async fn renew(&mut self) -> anyhow::Result<i64> {
        self.keeper.keep_alive().await?;
        match self.stream.message().await? {
            Some(r) => Ok(r.ttl()),
            None => Err(anyhow!("etcd closed the keep-alive stream")),
        }
    }
}
