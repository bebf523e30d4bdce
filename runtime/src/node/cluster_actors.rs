//! A cluster's actors: each node records the actors it made, wherever
//! they live, under `/wray/actors/<node>:<number>` of the cluster's
//! metadata, so that they outlive it: when a node leaves, the head marks
//! its actors dead and every node still lists them, as Ray's GCS actor
//! table keeps the actors of a dead node.
//!
//! A record follows its actor's life (its state, node, restarts and cause
//! of death), looked at every [`RECORD_EVERY`], and goes when the node
//! forgets the actor (its graveyard is bounded). Calls served are not
//! recorded: a live node is asked for its actors as they are now, and
//! the records stand in only for nodes that left or do not answer.

use super::types::{ActorEntry, ActorStatus, ErrorInfo};
use crate::cluster::{ACTORS_PREFIX, DEPARTED_PREFIX, MAX_WRITES, Member, Membership};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use wray_abi::ErrorKind;

/// How often a node looks for changes of its actors to record.
const RECORD_EVERY: Duration = Duration::from_millis(500);

/// Most records kept of the actors of nodes that left (the oldest go
/// first); a live node keeps as many as its graveyard remembers.
const KEEP_DEPARTED: usize = 10_000;

/// This node's side of the cluster's actors.
pub(crate) struct ClusterActors {
    membership: Arc<dyn Membership>,
    /// How many of its actors' records are written as they are now.
    recorded: Arc<AtomicU64>,
}

/// What a record says that changes during an actor's life.
#[derive(Clone, PartialEq, Eq)]
struct Seen {
    state: ActorStatus,
    restarts: u32,
    node_id: String,
}

impl Seen {
    fn of(e: &ActorEntry) -> Seen {
        Seen {
            state: e.state,
            restarts: e.restarts,
            node_id: e.node_id.clone(),
        }
    }
}

impl ClusterActors {
    /// Records node `node_id`'s actors, as `actors` lists them (until it
    /// says `None`: the node is gone), in the cluster's metadata, from a
    /// task on `handle`.
    pub fn start(
        membership: Arc<dyn Membership>,
        actors: impl Fn() -> Option<Vec<ActorEntry>> + Send + 'static,
        node_id: String,
        handle: &tokio::runtime::Handle,
    ) -> ClusterActors {
        let recorded = Arc::new(AtomicU64::new(0));
        handle.spawn(record(
            Arc::downgrade(&membership),
            actors,
            node_id,
            recorded.clone(),
        ));
        ClusterActors {
            membership,
            recorded,
        }
    }

    /// How many of this node's actors are recorded as they are now.
    pub fn recorded(&self) -> u64 {
        self.recorded.load(Ordering::Relaxed)
    }

    /// The recorded actors of the nodes that left and of `unanswered`
    /// (live nodes that did not answer), each named `<node>:<number>`,
    /// newest node first.
    pub async fn others(
        &self,
        unanswered: impl Iterator<Item = &String>,
    ) -> anyhow::Result<Vec<ActorEntry>> {
        let m = &self.membership;
        let mut nodes: BTreeSet<String> = unanswered.cloned().collect();
        nodes.extend(
            m.list(DEPARTED_PREFIX.to_string())
                .await?
                .into_iter()
                .map(|(id, _)| id),
        );
        let mut all: Vec<((u64, u64), ActorEntry)> = Vec::new();
        for node in nodes {
            let records = m.list(format!("{ACTORS_PREFIX}{node}:")).await?;
            all.extend(records.into_iter().filter_map(|(seq, v)| {
                let order = (node.parse().unwrap_or(0), seq.parse().ok()?);
                let mut e: ActorEntry = serde_json::from_slice(&v).ok()?;
                e.actor_id = format!("{node}:{seq}");
                Some((order, e))
            }));
        }
        all.sort_by_key(|(order, _)| std::cmp::Reverse(*order));
        Ok(all.into_iter().map(|(_, e)| e).collect())
    }
}

fn key(node: &str, seq: &str) -> String {
    format!("{ACTORS_PREFIX}{node}:{seq}")
}

/// A record's key (without the prefix) split into its node and number.
fn parse_key(key: &str) -> Option<(&str, u64)> {
    let (owner, seq) = key.split_once(':')?;
    Some((owner, seq.parse().ok()?))
}

/// Writes the records of node `node`'s `actors` as they change, and removes
/// those of actors it forgot, every [`RECORD_EVERY`], while the node lives:
/// a round's writes in transactions of up to [`MAX_WRITES`], so a node
/// making many actors costs etcd a few requests a round, not one per
/// actor. What it could not write it tries again on the next round.
async fn record(
    m: Weak<dyn Membership>,
    actors: impl Fn() -> Option<Vec<ActorEntry>>,
    node: String,
    recorded: Arc<AtomicU64>,
) {
    let mut written: HashMap<String, Seen> = HashMap::new();
    let mut failing = false;
    loop {
        tokio::time::sleep(RECORD_EVERY).await;
        let (Some(m), Some(now)) = (m.upgrade(), actors()) else {
            return;
        };
        let live: BTreeSet<&str> = now.iter().map(|e| e.actor_id.as_str()).collect();
        // (actor, its entry now: none once forgotten)
        let mut changes: Vec<(String, Option<&ActorEntry>)> = now
            .iter()
            .filter(|e| written.get(&e.actor_id) != Some(&Seen::of(e)))
            .map(|e| (e.actor_id.clone(), Some(e)))
            .collect();
        changes.extend(
            written
                .keys()
                .filter(|id| !live.contains(id.as_str()))
                .map(|id| (id.clone(), None)),
        );
        let mut result = Ok(());
        for batch in changes.chunks(MAX_WRITES) {
            let writes = batch
                .iter()
                .map(|(id, e)| {
                    let value =
                        e.map(|e| serde_json::to_vec(e).expect("an actor's entry serializes"));
                    (key(&node, id), value)
                })
                .collect();
            result = m.write_all(writes).await;
            if result.is_err() {
                break;
            }
            for (id, e) in batch {
                match e {
                    Some(e) => written.insert(id.clone(), Seen::of(e)),
                    None => written.remove(id),
                };
            }
        }
        recorded.store(
            now.iter()
                .filter(|e| written.get(&e.actor_id) == Some(&Seen::of(e)))
                .count() as u64,
            Ordering::Relaxed,
        );
        match result {
            Err(e) if !failing => {
                eprintln!("wray: cannot record this node's actors in the cluster: {e:#}");
                failing = true;
            }
            Err(_) => {}
            Ok(()) => failing = false,
        }
    }
}

/// On the head, once the members are `live`: marks dead the recorded
/// actors of nodes that left, names those nodes under [`DEPARTED_PREFIX`],
/// and keeps the latest [`KEEP_DEPARTED`] of their records.
pub(super) async fn mark_orphans(m: &dyn Membership, live: &[Member]) -> anyhow::Result<()> {
    let records = m.list(ACTORS_PREFIX.to_string()).await?;
    let named: BTreeSet<String> = m
        .list(DEPARTED_PREFIX.to_string())
        .await?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    // (node, number, key, node's id) of the records of nodes that left
    let mut departed: Vec<(u64, u64, String, String)> = Vec::new();
    for (k, v) in records {
        let Some((owner, seq)) = parse_key(&k) else {
            continue;
        };
        if live.iter().any(|(id, _)| id == owner) {
            continue;
        }
        departed.push((
            owner.parse().unwrap_or(0),
            seq,
            k.clone(),
            owner.to_string(),
        ));
        let Ok(mut e) = serde_json::from_slice::<ActorEntry>(&v) else {
            continue;
        };
        if e.state == ActorStatus::Dead {
            continue;
        }
        e.state = ActorStatus::Dead;
        e.death_cause = Some(ErrorInfo {
            kind: ErrorKind::ActorDied.name().to_string(),
            function: e.class.clone(),
            message: format!("its node {owner} left the cluster"),
            chain: Vec::new(),
        });
        let new = serde_json::to_vec(&e).expect("an actor's entry serializes");
        m.replace(format!("{ACTORS_PREFIX}{k}"), v, new).await?;
    }
    departed.sort();
    let over = departed.len().saturating_sub(KEEP_DEPARTED);
    let dropped: Vec<(String, Option<Vec<u8>>)> = departed
        .drain(..over)
        .map(|(_, _, k, _)| (format!("{ACTORS_PREFIX}{k}"), None))
        .collect();
    for batch in dropped.chunks(MAX_WRITES) {
        m.write_all(batch.to_vec()).await?;
    }
    // The nodes that left with records kept, named; the others not.
    let kept: BTreeSet<String> = departed.into_iter().map(|(_, _, _, id)| id).collect();
    for node in kept.difference(&named) {
        m.put(format!("{DEPARTED_PREFIX}{node}"), Vec::new())
            .await?;
    }
    for node in named.difference(&kept) {
        m.delete(format!("{DEPARTED_PREFIX}{node}")).await?;
    }
    Ok(())
}
