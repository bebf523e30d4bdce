//! Named actors across a cluster: the name `n` is the key
//! `/wray/names/<n>` of the membership's metadata, created only if absent
//! (one etcd transaction per named actor, none per call) under the lease
//! of the node that made the actor, so it goes when that node does. Its
//! value names the actor, whose calls then go to that node (the actor's
//! id carries its node's number). A node looks a name up in its own
//! registry first, and asks the cluster only when it is not there.

use super::{Membership, NAMES_PREFIX};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use wray_abi::ActorId;

/// What a name's key holds.
#[derive(Serialize, Deserialize)]
struct NameRecord {
    /// The actor's id, in hex.
    actor: String,
    /// Its type.
    #[serde(rename = "type")]
    type_name: String,
}

fn key(name: &str) -> String {
    format!("{NAMES_PREFIX}{name}")
}

fn record(actor: ActorId, type_name: &str) -> Vec<u8> {
    serde_json::to_vec(&NameRecord {
        actor: actor.to_string(),
        type_name: type_name.to_string(),
    })
    .expect("a name record serializes")
}

fn parse(bytes: &[u8]) -> Option<(ActorId, Arc<str>)> {
    let r: NameRecord = serde_json::from_slice(bytes).ok()?;
    Some((ActorId::parse(&r.actor)?, r.type_name.into()))
}

/// Claims `name` for `actor` across the cluster. A claim this node made
/// for an actor of its own that is no longer `alive` (its release was
/// lost) is taken over.
pub(super) async fn claim(
    membership: &dyn Membership,
    node: u32,
    name: &str,
    actor: ActorId,
    type_name: &str,
    alive: impl Fn(&ActorId) -> bool,
) -> Result<(), String> {
    let failed =
        |e: anyhow::Error| format!("cannot register the name `{name}` in the cluster: {e:#}");
    let value = record(actor, type_name);
    for _ in 0..2 {
        let Some(held) = membership
            .claim(key(name), value.clone())
            .await
            .map_err(failed)?
        else {
            return Ok(());
        };
        match parse(&held) {
            Some((owner, _)) if owner.node() == node && !alive(&owner) => {
                membership.release(key(name), held).await.map_err(failed)?;
            }
            Some((owner, _)) => {
                return Err(format!(
                    "the name `{name}` is already taken by actor {owner:?} (on node {})",
                    owner.node()
                ));
            }
            // It went meanwhile (an empty value): try again.
            None if held.is_empty() => {}
            None => {
                return Err(format!(
                    "the name `{name}` is taken by an unreadable record"
                ));
            }
        }
    }
    Err(format!("the name `{name}` is contended; try again"))
}

/// The actor holding `name` across the cluster, if one does.
pub(super) async fn find(membership: &dyn Membership, name: &str) -> Option<(ActorId, Arc<str>)> {
    match membership.read(key(name)).await {
        Ok(v) => parse(&v?),
        Err(e) => {
            eprintln!("wray: looking up the actor named `{name}`: {e:#}");
            None
        }
    }
}

/// Gives up `name`, if `actor` still holds it.
pub(super) async fn release(
    membership: &dyn Membership,
    name: &str,
    actor: ActorId,
    type_name: &str,
) {
    if let Err(e) = membership
        .release(key(name), record(actor, type_name))
        .await
    {
        eprintln!("wray: releasing the actor name `{name}`: {e:#}");
    }
}
