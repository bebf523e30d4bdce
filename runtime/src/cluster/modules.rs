//! Modules as the cluster's: a node that has a module through its API (an
//! upload, a job submitted with its bytes, or one fetched from another
//! node) records itself as a holder under `/wray/modules/<digest>/<node>`
//! (the module's name and size; one etcd write per module and node,
//! under the node's lease, so it goes with the node). A node asked for a
//! module by digest that it does not have (a job or an HTTP call of a
//! module uploaded to another node, as behind a load balancer) fetches it
//! from a live holder over `Module`, checks it against its digest and
//! compiles it (once, on its disk cache).

use super::MODULES_PREFIX;
use super::place::Cluster;
use crate::exec::module::Module;
use serde::{Deserialize, Serialize};
use wray_abi::ObjectId;

/// What a holder's key says of the module.
#[derive(Serialize, Deserialize)]
struct Holding {
    name: String,
    size: u64,
}

impl Cluster {
    /// Records in the cluster that this node has `module` (once per
    /// module; resolves once written, so another node finds it next).
    pub async fn hold_module(&self, module: &Module) {
        if !self.held_modules.insert(module.id()) {
            return;
        }
        let key = format!("{MODULES_PREFIX}{}/{}", module.id(), self.membership.id());
        let value = serde_json::to_vec(&Holding {
            name: module.name().to_string(),
            size: module.bytes().len() as u64,
        })
        .expect("a module's holding serializes");
        if let Err(e) = self.membership.claim(key, value).await {
            eprintln!(
                "wray: cannot record module {} in the cluster: {e:#}",
                module.name()
            );
            self.held_modules.remove(&module.id());
        }
    }

    /// The module with digest `id` from a live node of the cluster that
    /// has it, fetched and compiled here; `None` if no node has it.
    pub async fn find_module(&self, id: ObjectId) -> Result<Option<Module>, String> {
        let holders = self
            .membership
            .list(format!("{MODULES_PREFIX}{id}/"))
            .await
            .map_err(|e| format!("cannot look for module {id} in the cluster: {e:#}"))?;
        let mut failed = None;
        for (node, value) in holders {
            let Some(peer) = self.live(&node).await else {
                continue; // This node (whose copy is gone), or one that left.
            };
            let name = serde_json::from_slice::<Holding>(&value)
                .map_or_else(|_| id.to_string(), |h| h.name);
            match self.shared.module(id, &name, &peer.address).await {
                Ok(m) => {
                    self.hold_module(&m).await;
                    return Ok(Some(m));
                }
                Err(e) => failed = Some(e),
            }
        }
        failed.map_or(Ok(None), Err)
    }
}
