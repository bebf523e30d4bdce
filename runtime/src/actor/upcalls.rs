//! The host functions' way up ([`Upcalls`]), served by the actor layer,
//! which holds the task layer too.

use crate::actor::actors;
use crate::actor::registry::{Actors, Creation};
use crate::exec::env::Upcalls;
use crate::exec::module::Module;
use crate::exec::request::Submission;
use crate::task::{run, table};
use std::sync::Arc;
use wray_abi::{ActorId, ObjectId};

impl Upcalls for Actors {
    fn submit_task(self: Arc<Self>, module: Module, sub: Submission) -> Vec<ObjectId> {
        run::submit_task(&self.tasks, module, sub)
    }

    fn call_actor(self: Arc<Self>, actor: ActorId, method: &str, sub: Submission) -> Vec<ObjectId> {
        actors::call(&self, actor, method, sub)
    }

    fn create_actor(
        self: Arc<Self>,
        module: Module,
        type_name: String,
        sub: Submission,
    ) -> ActorId {
        let job = sub.job;
        actors::create(
            &self,
            Creation {
                module,
                type_name,
                sub,
                job,
                placed_for: None,
            },
        )
    }

    fn actor_named(&self, id: &ActorId) -> Option<futures_util::future::BoxFuture<'static, ()>> {
        actors::name_settled(self, id)
    }

    fn lookup_actor(&self, name: &str) -> Option<(ActorId, Arc<str>)> {
        let a = self.registry.lookup(name)?;
        Some((a.id, a.type_name.clone()))
    }

    fn kill_actor(&self, id: &ActorId, allow_restart: bool) -> bool {
        actors::kill(self, id, allow_restart)
    }

    fn cancel(&self, id: &ObjectId, recursive: bool) -> bool {
        table::cancel(&self.tasks, id, recursive)
    }
}
