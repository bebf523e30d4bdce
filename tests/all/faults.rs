//! Fault tolerance: retries, cancellation, spilling and a full store,
//! lineage, object churn, a fuzzer over the host ABI, and chaos.
//!
//! Faults are injected with `Runtime::chaos_fail_random_task` (fails the
//! current attempt of a task as a crashed worker would) and
//! `Runtime::chaos_crash_random_actor` (crashes an actor's instance).

use crate::common::{self, Collect, testkit};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use wray_runtime::{Error, ErrorKind, ObjectRef, Runtime};

const MIB: usize = 1 << 20;

/// A step of the splitmix64 generator: the tests' randomness is seeded, so
/// a failure can be replayed.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Runs `body` while a second thread injects faults, one every `every` at
/// most: into a random task, or (with `actors`) every third time into a
/// random actor. The thread stops when `body` returns, or once `limit`
/// faults have hit something; `body` sees the count of hits so far, so it
/// can keep its workload going until enough faults have landed (a verdict
/// must rest on the faults counted, never on how many a timer happened to
/// fit into a run). Returns `body`'s result and how many faults hit.
fn under_faults<R: Send>(
    rt: &Runtime,
    every: Duration,
    actors: bool,
    limit: Option<usize>,
    body: impl FnOnce(&AtomicUsize) -> R + Send,
) -> (R, usize) {
    let stop = AtomicBool::new(false);
    let hits = AtomicUsize::new(0);
    let limit = limit.unwrap_or(usize::MAX);
    let out = std::thread::scope(|s| {
        s.spawn(|| {
            let mut state = 0x5eed;
            while !stop.load(Ordering::Relaxed) && hits.load(Ordering::Relaxed) < limit {
                let r = splitmix(&mut state);
                let hit = if actors && r.is_multiple_of(3) {
                    rt.chaos_crash_random_actor(r >> 2)
                } else {
                    rt.chaos_fail_random_task(r >> 2)
                };
                hits.fetch_add(usize::from(hit), Ordering::Relaxed);
                std::thread::sleep(every);
            }
        });
        // Stop the killer even when `body` panics, or the scope never ends.
        struct Stop<'a>(&'a AtomicBool);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let _stop = Stop(&stop);
        body(&hits)
    });
    // Counted once the injector has stopped: a fault that hit just as the
    // body ended is counted too (the body may have seen its effect first).
    (out, hits.load(Ordering::Relaxed))
}

/// Waits until every task has ended and every slot and object is back.
fn settled(rt: &Runtime, call_slots: usize, actor_slots: usize) {
    common::eventually("the runtime is back at its baseline", || {
        let s = rt.stats();
        s.tasks_unfinished == 0
            && s.actors == 0
            && s.objects == 0
            && s.object_bytes == 0
            && s.spilled_bytes == 0
            && s.cpu_slots_free == rt.num_cpus()
            && s.call_slots_free == call_slots
            && s.actor_slots_free == actor_slots
    });
}

// ---- retries -----------------------------------------------------------------

#[test]
fn a_worker_failure_is_retried_and_the_attempts_are_counted() {
    let (rt, m) = testkit();
    // One fault, while the task waits on a shut gate: the second attempt
    // succeeds once the gate opens.
    let gate = common::gate(&rt, &m);
    let r = rt
        .task(&m, "gated")
        .arg(&gate.id().0)
        .arg(&300u64)
        .max_retries(1)
        .submit()
        .unwrap();
    common::eventually("the fault hits the task", || rt.chaos_fail_random_task(0));
    common::open(&rt, &gate);
    assert_eq!(rt.get::<u64>(&r).unwrap(), 300);
    // A fault in every attempt (its gate never opens, so each attempt waits
    // until one hits it): it fails after 1 + max_retries attempts.
    let shut = common::gate(&rt, &m);
    let (e, hits) = under_faults(&rt, Duration::from_millis(10), false, None, |_| {
        let r = rt
            .task(&m, "gated")
            .arg(&shut.id().0)
            .arg(&300u64)
            .max_retries(2)
            .submit()
            .unwrap();
        common::task_error(&rt, &r)
    });
    assert_eq!(e.kind(), ErrorKind::WorkerFailure, "{e}");
    assert_eq!(e.record().attempts, 3, "{e}");
    assert!(hits >= 3, "{hits} faults hit");
    assert!(e.to_string().contains("after 3 attempts"), "{e}");
    common::still_serving(&rt, &m);
}

/// `#[wray::remote(max_retries = 0)]` sets a function's default; options on
/// the call override it; other functions keep the runtime's default of 3.
#[test]
fn retry_limits_come_from_the_attribute_the_call_and_the_runtime() {
    let (rt, m) = testkit();
    let ((), _) = under_faults(&rt, Duration::from_millis(10), false, None, |_| {
        common::scenario(&rt, &m, &["retries"]);
    });
    common::still_serving(&rt, &m);
}

// ---- cancellation --------------------------------------------------------------

#[test]
fn a_cancelled_queued_task_never_runs() {
    let out = Collect::default();
    let rt = common::builder()
        .num_cpus(1)
        .output(Arc::new(out.clone()))
        .build()
        .unwrap();
    let m = rt.load_file(common::guest("testkit")).unwrap();
    // The only CPU never frees while `forever` runs, so the second task
    // waits in the queue until the test ends the first.
    let blocker = rt.task(&m, "forever").submit().unwrap();
    let queued = rt
        .task(&m, "chatty")
        .arg(&1u32)
        .arg(&false)
        .submit()
        .unwrap();
    assert!(rt.cancel(&queued), "a queued task can be cancelled");
    let e = common::task_error(&rt, &queued);
    assert_eq!(e.kind(), ErrorKind::Cancelled, "{e}");
    assert!(e.message().contains("before it ran"), "{e}");
    assert!(
        !common::is_ready(&rt, &blocker),
        "the other task is untouched"
    );
    assert!(rt.cancel(&blocker));
    common::still_serving(&rt, &m);
    assert!(
        out.lines()
            .iter()
            .all(|(_, _, line)| !line.contains("out 0")),
        "the cancelled task printed: {:?}",
        out.lines()
    );
}

#[test]
fn a_cancelled_queued_task_fails_at_once_not_when_its_turn_comes() {
    let rt = common::builder().num_cpus(1).build().unwrap();
    let m = rt.load_file(common::guest("testkit")).unwrap();
    // The only CPU never frees while `forever` runs; 1,000 tasks queue
    // behind it, and the last one is cancelled.
    let blocker = rt.task(&m, "forever").submit().unwrap();
    let queued: Vec<_> = (0..1_000)
        .map(|i: i32| rt.task(&m, "add").arg(&i).arg(&1i32).submit().unwrap())
        .collect();
    let last = queued.last().unwrap();
    assert!(rt.cancel(last));
    let (ready, _) = rt
        .wait(std::slice::from_ref(last), 1, Some(Duration::from_secs(60)))
        .unwrap();
    assert_eq!(
        ready.len(),
        1,
        "the cancelled task failed while the CPU was busy"
    );
    let e = common::task_error(&rt, last);
    assert_eq!(e.kind(), ErrorKind::Cancelled, "{e}");
    // The rest still run, in order, once the blocker is cancelled too.
    assert!(rt.cancel(&blocker));
    for (i, r) in queued[..999].iter().enumerate() {
        assert_eq!(rt.get::<i32>(r).unwrap(), i as i32 + 1);
    }
    common::still_serving(&rt, &m);
}

#[test]
fn a_cancelled_running_task_is_interrupted_and_not_retried() {
    let (rt, m) = testkit();
    let r = rt
        .task(&m, "forever")
        .max_retries(5)
        .retry_exceptions(true)
        .submit()
        .unwrap();
    common::eventually("the task runs", || {
        rt.stats().cpu_slots_free < rt.num_cpus()
    });
    assert!(rt.cancel(&r));
    let e = common::task_error(&rt, &r);
    assert_eq!(e.kind(), ErrorKind::Cancelled, "{e}");
    assert_eq!(e.record().attempts, 1, "cancelled tasks are not retried");
    common::still_serving(&rt, &m);
}

#[test]
fn cancelling_a_finished_task_leaves_its_result() {
    let (rt, m) = testkit();
    let r = rt.task(&m, "add").arg(&1i32).arg(&2i32).submit().unwrap();
    assert_eq!(rt.get::<i32>(&r).unwrap(), 3);
    assert!(!rt.cancel(&r), "nothing left to cancel");
    assert_eq!(rt.get::<i32>(&r).unwrap(), 3);
    let put = rt.put(&7u32).unwrap();
    assert!(!rt.cancel(&put), "objects from put have no task");
    assert_eq!(rt.get::<u32>(&put).unwrap(), 7);
}

/// From a guest: cancelling a parent cancels the child it waits for; a
/// finished task is left alone.
#[test]
fn guest_cancel_is_recursive() {
    let (rt, m) = testkit();
    common::scenario(&rt, &m, &["cancel"]);
    common::still_serving(&rt, &m);
}

// ---- the object store's limit --------------------------------------------------

/// `n` distinct objects of one MiB each.
fn distinct(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let mut state = i as u64;
            (0..MIB / 8)
                .flat_map(|_| splitmix(&mut state).to_le_bytes())
                .collect()
        })
        .collect()
}

/// The spill files under `dir`.
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let entries = |d: &Path| -> Vec<std::path::PathBuf> {
        match std::fs::read_dir(d) {
            Ok(d) => d.map(|e| e.unwrap().path()).collect(),
            Err(_) => Vec::new(),
        }
    };
    // The runtime spills into a directory of its own inside `dir`, with its
    // lock file beside the spilled objects.
    entries(dir)
        .iter()
        .filter(|d| d.is_dir())
        .flat_map(|d| entries(d))
        .filter(|f| f.file_name().is_some_and(|n| n != "lock"))
        .collect()
}

#[test]
fn three_times_the_cap_spills_and_every_byte_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let (rt, m) = common::capped(16, Some(dir.path()));
    let values = distinct(48);
    let refs: Vec<ObjectRef> = values.iter().map(|v| rt.put_bytes(v).unwrap()).collect();
    let stats = rt.stats();
    assert!(stats.object_bytes <= (16 * MIB) as u64, "{stats:?}");
    assert!(stats.spilled_bytes >= (32 * MIB) as u64, "{stats:?}");
    assert!(!files(dir.path()).is_empty(), "spill files exist");
    for (r, v) in refs.iter().zip(&values) {
        let back = rt.get_bytes(r).unwrap();
        assert_eq!(blake3::hash(&back), blake3::hash(v), "object {}", r.id());
    }
    drop(refs);
    // The same from a guest: puts, task results and arguments.
    common::scenario(&rt, &m, &["spill", "48"]);
    settled(&rt, 64, 256);
    assert!(files(dir.path()).is_empty(), "freed objects leave no files");
}

#[test]
fn a_full_store_without_spilling_fails_at_once_and_keeps_serving() {
    let (rt, m) = common::capped(8, None);
    let values = distinct(12);
    let first = rt.put_bytes(&values[0]).unwrap();
    let mut kept = vec![first];
    let err = loop {
        match rt.put_bytes(&values[kept.len()]) {
            Ok(r) => kept.push(r),
            Err(e) => break e,
        }
    };
    assert_eq!(kept.len(), 8, "eight 1 MiB objects fit in 8 MiB");
    assert!(matches!(err, Error::ObjectStoreFull(_)), "{err:?}");
    assert!(err.to_string().contains("spilling is off"), "{err}");
    // A guest meets the same limit as a typed error, with the host's
    // reason: 1 MiB is free, its result needs 2.
    kept.pop();
    let r = rt.task(&m, "giant").arg(&2u32).submit().unwrap();
    let e = common::task_error(&rt, &r);
    assert_eq!(e.kind(), ErrorKind::ObjectStoreFull, "{e}");
    assert!(e.message().contains("spilling is off"), "{e}");
    // Freeing makes room again.
    kept.clear();
    let again = rt.put_bytes(&values[11]).unwrap();
    assert_eq!(rt.get_bytes(&again).unwrap().len(), MIB);
    drop(again);
    common::still_serving(&rt, &m);
}

#[test]
fn a_guest_that_drops_its_references_can_fill_the_store_again_at_once() {
    // Spilling is off, so a put that does not fit fails at once: each round
    // passes only if the objects of the round before are freed by the time
    // the guest needs their room. 256 of 32 KiB (8 MiB): released in
    // batches on another thread. 100 of 64 KiB (6.25 MiB): too few for a
    // batch, released at the guest's next call.
    let (rt, m) = common::capped(12, None);
    common::scenario(&rt, &m, &["churn", "16", "256", "32"]);
    common::scenario(&rt, &m, &["churn", "6", "100", "64"]);
    // A job's releases are done when it is.
    let s = rt.stats();
    assert_eq!((s.objects, s.object_bytes), (0, 0), "{s:?}");
    common::still_serving(&rt, &m);
}

/// A guest that drops a few references and then computes, calling no host
/// function, has them released within a tick or two, not at its end.
#[test]
fn references_dropped_before_a_long_computation_are_released_during_it() {
    let out = Collect::default();
    let rt = common::builder()
        .object_store_memory(64 * MIB as u64)
        .output(Arc::new(out.clone()))
        .build()
        .unwrap();
    let m = rt.load_file(common::guest("testkit")).unwrap();
    // Ten objects of 1 MiB, too few for a batch, then computing until the
    // job is stopped: whatever the machine's speed, the driver is still
    // computing when its references must be gone.
    let job = rt.start_job(
        &m,
        &["churn", "1", "10", "1024", "forever"].map(String::from),
    );
    common::eventually("the driver dropped its references and computes", || {
        out.lines()
            .iter()
            .any(|(_, _, line)| line.contains("computing until stopped"))
    });
    common::eventually("the dropped objects are released", || {
        let s = rt.stats();
        (s.objects, s.object_bytes) == (0, 0)
    });
    assert!(!job.is_finished(), "the driver is still computing");
    job.control().stop();
    common::eventually("the stopped driver ends", || job.is_finished());
    common::still_serving(&rt, &m);
}

#[test]
fn a_spill_dir_that_cannot_be_made_is_refused_up_front() {
    let file = tempfile::NamedTempFile::new().unwrap();
    for dir in [file.path().to_path_buf(), file.path().join("spill")] {
        let err = common::builder()
            .spill_dir(Some(dir.clone()))
            .build()
            .err()
            .unwrap_or_else(|| panic!("{} was accepted", dir.display()));
        assert!(matches!(err, Error::Config(_)), "{err:?}");
        assert!(err.to_string().contains("spill directory"), "{err}");
    }
}

#[test]
fn a_spill_dir_that_cannot_be_written_fails_after_the_wait() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("spill");
    let (rt, m) = common::capped(8, Some(&dir));
    // The directory turns into a file after the runtime started.
    std::fs::remove_dir(&dir).unwrap();
    std::fs::write(&dir, b"").unwrap();
    let values = distinct(12);
    let mut kept = Vec::new();
    let err = loop {
        match rt.put_bytes(&values[kept.len()]) {
            Ok(r) => kept.push(r),
            Err(e) => break e,
        }
    };
    assert!(matches!(err, Error::ObjectStoreFull(_)), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("spilling to") && msg.contains("failed"),
        "{msg}"
    );
    kept.clear();
    common::still_serving(&rt, &m);
}

/// Objects under 4 KiB never spill: past the cap, a store of them fails
/// with a reason that says so, and writes no file.
#[test]
fn small_objects_stay_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let (rt, m) = common::capped(1, Some(dir.path()));
    let mut kept = Vec::new();
    let err = loop {
        let value: Vec<u8> = (kept.len() as u32)
            .to_le_bytes()
            .into_iter()
            .cycle()
            .take(2048)
            .collect();
        match rt.put_bytes(&value) {
            Ok(r) => kept.push(r),
            Err(e) => break e,
        }
    };
    assert!(matches!(err, Error::ObjectStoreFull(_)), "{err:?}");
    assert!(err.to_string().contains("under 4 KiB"), "{err}");
    assert!(
        kept.len() >= 400,
        "{} objects of 2 KiB fit in 1 MiB",
        kept.len()
    );
    assert_eq!(rt.stats().spilled_bytes, 0);
    assert!(files(dir.path()).is_empty(), "nothing was spilled");
    kept.clear();
    common::still_serving(&rt, &m);
}

// ---- lineage -------------------------------------------------------------------

/// A result too small to spill is never lost, so it keeps no lineage: the
/// task that made it, and the arguments that task was given, are freed
/// when it ends, not when the result is.
#[test]
fn a_small_result_does_not_keep_its_tasks_arguments() {
    let (rt, m) = testkit();
    // 60 KiB: passed inline, a blob of the task's own.
    let arg: Vec<u8> = (0..60 << 10).map(|i| (i % 251) as u8).collect();
    let r = rt.task(&m, "len").arg(&arg).submit().unwrap();
    assert_eq!(rt.get::<u64>(&r).unwrap(), arg.len() as u64);
    common::eventually("the argument is freed", || {
        rt.stats().object_bytes < 4 << 10
    });
    // A large result keeps its task, arguments included.
    let big = rt.task(&m, "bump_bytes").arg(&arg).submit().unwrap();
    assert_eq!(rt.get::<Vec<u8>>(&big).unwrap().len(), arg.len());
    let held = rt.stats().object_bytes;
    assert!(
        held >= 2 * (60 << 10),
        "the result and the argument: {held}"
    );
    drop((r, big));
    common::still_serving(&rt, &m);
}

/// Pushes `r`'s bytes out of memory by putting `n` MiB more, then deletes
/// every spill file: whatever was spilled is lost.
fn lose_spilled(rt: &Runtime, dir: &Path, n: usize) -> Vec<ObjectRef> {
    let filler: Vec<ObjectRef> = distinct(n)
        .iter()
        .map(|v| rt.put_bytes(v).unwrap())
        .collect();
    assert!(rt.stats().spilled_bytes > 0, "something spilled");
    for f in files(dir) {
        std::fs::remove_file(f).unwrap();
    }
    filler
}

#[test]
fn lost_task_results_are_made_again_through_their_lineage() {
    let dir = tempfile::tempdir().unwrap();
    let (rt, m) = common::capped(16, Some(dir.path()));
    // b is made from a: losing both needs a recursive recomputation.
    let a = rt.task(&m, "giant").arg(&6u32).submit().unwrap();
    let b = rt.task(&m, "bump_bytes").arg_ref(&a).submit().unwrap();
    assert_eq!(rt.get::<Vec<u8>>(&b).unwrap().len(), 6 * MIB);
    // (Not one of the filler's values: equal bytes are one object.)
    let put = rt.put_bytes(&[9u8; MIB]).unwrap();
    let filler = lose_spilled(&rt, dir.path(), 20);
    assert_eq!(rt.get::<Vec<u8>>(&b).unwrap(), vec![4u8; 6 * MIB]);
    assert_eq!(rt.get::<Vec<u8>>(&a).unwrap(), vec![3u8; 6 * MIB]);
    // Objects from put have no lineage: their loss is an error that says so.
    match rt.get_bytes(&put) {
        Err(Error::Task(e)) => {
            assert_eq!(e.kind(), ErrorKind::ObjectLost, "{e}");
            assert!(e.message().contains("put"), "{e}");
        }
        other => panic!("a lost put must be an error, got {other:?}"),
    }
    drop((a, b, put, filler));
    common::still_serving(&rt, &m);
}

#[test]
fn tasks_that_read_the_clock_are_recomputed_only_when_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let (rt, m) = common::capped(16, Some(dir.path()));
    let refused = rt.task(&m, "stamped").arg(&5u32).submit().unwrap();
    let allowed = rt
        .task(&m, "stamped")
        .arg(&6u32)
        .allow_recompute(true)
        .submit()
        .unwrap();
    rt.get_bytes(&refused).unwrap();
    rt.get_bytes(&allowed).unwrap();
    let filler = lose_spilled(&rt, dir.path(), 20);
    match rt.get_bytes(&refused) {
        Err(Error::Task(e)) => {
            assert_eq!(e.kind(), ErrorKind::ObjectLost, "{e}");
            let cause = e.cause().expect("the refusal is the cause");
            assert!(cause.message().contains("allow_recompute"), "{e}");
        }
        other => panic!("expected the loss to be refused, got {other:?}"),
    }
    assert_eq!(rt.get::<Vec<u8>>(&allowed).unwrap(), vec![5u8; 6 * MIB]);
    drop((refused, allowed, filler));
    common::still_serving(&rt, &m);
}

// ---- lifetime --------------------------------------------------------------------

/// A driver that puts and drops a million distinct 1 KiB objects ends where
/// it began.
#[test]
fn a_million_dropped_objects_leave_memory_where_it_was() {
    if !common::alone("faults::a_million_dropped_objects_leave_memory_where_it_was") {
        return;
    }
    let (rt, m) = testkit();
    common::scenario(&rt, &m, &["churn", "20000"]);
    let before = common::rss_kib();
    common::scenario(&rt, &m, &["churn", "1000000"]);
    let after = common::rss_kib();
    let s = rt.stats();
    assert_eq!((s.objects, s.object_bytes), (0, 0), "{s:?}");
    // A leak of the objects alone would be a GB.
    assert!(
        after < before + 32 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
}

// ---- the host ABI under random input --------------------------------------------

/// Records for `tests/wat/abi_fuzz.wat`: an operation byte and five
/// parameters each. Most records are plausible (small handles, pointers
/// inside the guest's memory, short lengths), so a run gets deep into the
/// host's state; one in `wild_one_in` is wild (lengths near overflow,
/// pointers at and past the memory's end, any bits; 0: none is).
fn fuzz_input(state: &mut u64, records: usize, wild_one_in: u64) -> Vec<u8> {
    const MEMORY: u32 = 2 * 65_536;
    let mut out = Vec::with_capacity(records * 24);
    for _ in 0..records {
        let r = splitmix(state);
        let wild = wild_one_in > 0 && r.is_multiple_of(wild_one_in);
        out.extend_from_slice(&[(r >> 8) as u8, 0, 0, 0]);
        for _ in 0..5 {
            let r = splitmix(state);
            let x = (r >> 8) as u32;
            let v: u32 = match (wild, r % 4) {
                (false, 0) => x % 16,                                // a handle
                (false, 1) => 65_536 + x % (MEMORY - 65_536 - 1024), // a pointer
                (false, 2) => x % 256,                               // a length
                (false, _) => 0,
                (true, 0) => u32::MAX - x % 16, // near overflow
                (true, 1) => MEMORY - x % 64,   // the memory's end
                (true, 2) => x | 0x8000_0000,   // negative as i32
                (true, _) => x,
            };
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out
}

#[test]
fn random_calls_to_every_host_function_never_harm_the_host() {
    let rt = common::builder()
        .task_timeout(Some(Duration::from_secs(5)))
        .build()
        .unwrap();
    let fuzz = rt.load_bytes("abi_fuzz", &common::wat("abi_fuzz")).unwrap();
    // Large enough to be mapped, not copied (the second argument).
    let large = rt.put_bytes(&vec![0x5A; 1 << 20]).unwrap();
    let mut state = 0xf022;
    let mut kinds = std::collections::BTreeMap::new();
    let mut mapped = 0;
    for run in 0..300 {
        let input = fuzz_input(&mut state, 48, if run % 2 == 0 { 0 } else { 8 });
        let r = rt
            .task(&fuzz, "fuzz")
            .arg_bytes(&input)
            .arg_ref(&large)
            .submit()
            .unwrap();
        let kind = match rt.get_bytes(&r) {
            Ok(b) => {
                if let Ok(count) = <[u8; 4]>::try_from(&b[..]) {
                    mapped += u32::from_le_bytes(count);
                }
                "ok".to_string()
            }
            Err(Error::Task(e)) => e.kind().name().to_string(),
            Err(other) => panic!("a fuzzed task must end in a value or a task error: {other:?}"),
        };
        *kinds.entry(kind).or_insert(0) += 1;
    }
    // Wild inputs break the ABI; some plausible ones run to the end.
    assert!(kinds.contains_key("ABI violation"), "outcomes: {kinds:?}");
    assert!(kinds.len() > 1, "outcomes: {kinds:?}");
    assert!(mapped > 0, "no run mapped its large argument: {kinds:?}");
    drop(large);
    settled(&rt, 64, 256);
    let m = rt.load_file(common::guest("testkit")).unwrap();
    common::still_serving(&rt, &m);
}

// ---- chaos -------------------------------------------------------------------------

/// Nested tasks and an actor with unlimited restarts and redelivery, while
/// a killer fails random task attempts and crashes the actor: successes are
/// right, failures are typed, the actor's calls show no gap, and the
/// runtime ends at its baseline.
#[test]
fn chaos_loses_nothing_and_leaks_nothing() {
    if !common::alone("faults::chaos_loses_nothing_and_leaks_nothing") {
        return;
    }
    // Each round injects exactly this many faults: the workload runs again
    // until they have all landed, so a machine twice as fast or as slow
    // sees the same chaos.
    const FAULTS: usize = 40;
    const MAX_RUNS: usize = 200;
    let (rt, m) = testkit();
    let round = || {
        let (runs, hits) =
            under_faults(&rt, Duration::from_millis(3), true, Some(FAULTS), |hits| {
                let mut runs = 0;
                while hits.load(Ordering::Relaxed) < FAULTS {
                    assert!(
                        runs < MAX_RUNS,
                        "only {} faults hit in {runs} runs of the workload",
                        hits.load(Ordering::Relaxed)
                    );
                    common::scenario(&rt, &m, &["chaos"]);
                    runs += 1;
                }
                runs
            });
        assert_eq!(hits, FAULTS, "after {runs} runs");
        settled(&rt, 64, 256);
    };
    round();
    let before = common::rss_kib();
    round();
    let after = common::rss_kib();
    assert!(
        after < before + 32 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
    common::still_serving(&rt, &m);
}
