//! A guest's task spec (`task_submit`, `actor_create`), decoded into a
//! [`Submission`]: every object it names checked against what the guest
//! holds, and held for the call.

use crate::exec::request::{INLINE_PUT_MIN, Submission};
use crate::exec::state::InstanceState;
use crate::objects::arg::TaskArg;
use crate::objects::held::HeldRefs;
use wray_abi::wire::{self, TaskSpec};
use wray_abi::{ObjectId, Status};

/// Builds a submission from a guest's spec, holding every object it
/// names. Fails with the status to return to the guest.
pub(super) fn submission(
    spec: &TaskSpec<'_>,
    st: &mut InstanceState,
) -> Result<Submission, Status> {
    let env = st.env.clone();
    let mut held = HeldRefs::new(&env.objects);
    let mut args = Vec::with_capacity(spec.args.len());
    for arg in &spec.args {
        match *arg {
            wire::Arg::Value { bytes, refs } => {
                if bytes.len() > env.config.max_object_size {
                    return Err(Status::TooLarge);
                }
                let contained: Vec<ObjectId> = refs
                    .chunks_exact(ObjectId::LEN)
                    .map(|c| ObjectId::from_slice(c).expect("chunks have the id's length"))
                    .collect();
                for id in &contained {
                    if !st.refs.knows(id) || !held.retain(*id) {
                        return Err(Status::NotFound);
                    }
                }
                let blob = env.objects.blob(bytes, contained);
                if bytes.len() >= INLINE_PUT_MIN {
                    let id = env.objects.put(blob);
                    held.adopt(id);
                    args.push(TaskArg::Ref(id));
                } else {
                    args.push(TaskArg::Value(blob));
                }
            }
            wire::Arg::Ref(id) => {
                if !st.refs.knows(&id) || !held.retain(id) {
                    return Err(Status::NotFound);
                }
                args.push(TaskArg::Ref(id));
            }
        }
    }
    let function = match st.module.task(spec.function) {
        Some((name, _)) => name,
        None => spec.function.into(),
    };
    Ok(Submission {
        function,
        args,
        _held: held,
        num_returns: spec.num_returns,
        options: spec.options.clone(),
        parent: st.origin.task,
        depth: st.origin.depth + 1,
        job: st.origin.job,
        checked: false,
    })
}
