//! The object store through the host API: content addressing, waiting,
//! reference counting.

use crate::common::{self, testkit};
use std::time::Duration;
use wray_runtime::{Error, ErrorKind};

#[test]
fn put_get_round_trips_and_addresses_by_content() {
    let rt = common::runtime();
    let a = rt.put(&vec![1u32, 2, 3]).unwrap();
    assert_eq!(rt.get::<Vec<u32>>(&a).unwrap(), [1, 2, 3]);
    let b = rt.put(&vec![1u32, 2, 3]).unwrap();
    assert_eq!(a.id(), b.id(), "same bytes, same id");
    let bytes = rt.get_bytes(&a).unwrap();
    assert_eq!(
        a.id().0,
        *blake3::hash(&bytes).as_bytes(),
        "the id is the digest"
    );
    let c = rt.put(&vec![1u32, 2, 4]).unwrap();
    assert_ne!(a.id(), c.id());
}

#[test]
fn decoding_as_the_wrong_type_is_an_error() {
    let rt = common::runtime();
    let r = rt.put(&7u8).unwrap();
    assert!(matches!(rt.get::<String>(&r), Err(Error::Decode { .. })));
}

#[test]
fn dropped_objects_are_freed() {
    let rt = common::runtime();
    let before = rt.stats();
    let refs: Vec<_> = (0..10_000u64)
        .map(|i| rt.put(&vec![i; 16]).unwrap())
        .collect();
    assert_eq!(rt.stats().objects, before.objects + 10_000);
    let copy = refs[7].clone();
    drop(refs);
    let after = rt.stats();
    assert_eq!(
        after.objects,
        before.objects + 1,
        "the clone keeps its object"
    );
    drop(copy);
    let after = rt.stats();
    assert_eq!(after.objects, before.objects);
    assert_eq!(after.object_bytes, before.object_bytes);
}

/// Stats are read from async code too, on any tokio runtime (this one has
/// one thread and no timer): `stats` waits for the reaper thread as it
/// does outside (no `block_on`, which would panic here), and `stats_async`
/// without blocking.
#[test]
fn stats_are_read_from_async_code_too() {
    let (rt, m) = testkit();
    let before = rt.stats();
    let refs: Vec<_> = (0..1_000u64).map(|i| rt.put(&i).unwrap()).collect();
    let other = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (during, after, settled) = other.block_on(async {
        let during = rt.stats();
        drop(refs);
        let after = rt.stats_async().await;
        // A task whose guest drops 10,000 references at its end: they go
        // to the reaper in batches, which `stats` waits for.
        let r = rt
            .task(&m, "puts_and_drops")
            .arg(&10_000u32)
            .submit_async()
            .await
            .unwrap();
        rt.get_bytes_async(&r, None).await.unwrap();
        drop(r);
        (during, after, rt.stats())
    });
    assert_eq!(during.objects, before.objects + 1_000);
    assert_eq!(after.objects, before.objects);
    assert_eq!(after.object_bytes, before.object_bytes);
    assert_eq!(settled.objects, before.objects, "{settled:?}");
}

/// The host API's async forms work from another tokio runtime (one
/// without timers, even), where the blocking forms could not be called.
#[test]
fn puts_waits_and_kills_work_from_async_code() {
    let (rt, m) = testkit();
    let other = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    other.block_on(async {
        let r = rt.put_bytes_async(b"from async").await.unwrap();
        let slow = common::gate(&rt, &m);
        let pending = common::gated(&rt, &m, &slow, 1);
        let (ready, rest) = rt
            .wait_async(
                &[r.clone(), pending.clone()],
                1,
                Some(Duration::from_millis(10)),
            )
            .await
            .unwrap();
        let ids = |v: Vec<wray_runtime::ObjectRef>| v.iter().map(|r| r.id()).collect::<Vec<_>>();
        assert_eq!(ids(ready), [r.id()]);
        assert_eq!(ids(rest), [pending.id()]);
        let (ready, _) = rt
            .wait_async(std::slice::from_ref(&pending), 1, Some(Duration::ZERO))
            .await
            .unwrap();
        assert!(ready.is_empty(), "a zero timeout only looks");
        assert!(rt.kill_async(&slow, false).await, "the gate is killed");
        assert!(rt.actor_info(&slow).is_none(), "and gone when kill returns");
        assert_eq!(&*rt.get_bytes_async(&r, None).await.unwrap(), b"from async");
    });
    common::still_serving(&rt, &m);
}

/// A call whose argument does not fit in the store is built without
/// blocking; submitting it from async code waits for the spill that makes
/// room, without blocking the caller's runtime either.
#[test]
fn a_call_waits_for_room_for_its_argument_in_async_code() {
    let dir = tempfile::tempdir().unwrap();
    let (rt, m) = common::capped(12, Some(dir.path()));
    let held: Vec<_> = (0..2u8)
        .map(|i| rt.put_bytes(&vec![i; 5 << 20]).unwrap())
        .collect();
    let other = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let r = other.block_on(async {
        // 8 MiB by value, with 10 of 12 MiB taken: built at once, stored
        // once the store has spilled.
        let arg = vec![7u8; 8 << 20];
        let call = rt.task(&m, "len").arg(&arg);
        call.submit_async().await.unwrap()
    });
    assert_eq!(rt.get::<u64>(&r).unwrap(), 8 << 20);
    assert!(rt.stats().spilled_bytes > 0, "room was made by spilling");
    drop(held);
}

#[test]
fn a_driver_leaves_no_objects_behind() {
    let (rt, m) = testkit();
    for scenario in ["put-get", "many", "get-many", "wait"] {
        assert_eq!(
            rt.run_driver(&m, &[scenario.into()]).unwrap(),
            0,
            "{scenario}"
        );
    }
    let stats = rt.stats();
    assert_eq!(stats.objects, 0, "{stats:?}");
    assert_eq!(stats.object_bytes, 0, "{stats:?}");
    assert_eq!(stats.tasks_unfinished, 0, "{stats:?}");
}

/// A large argument passed by value is put as an object: the caller's
/// memory holds the value once, not also its encoding and the call's spec;
/// the task's argument buffer is the size of the arguments.
#[test]
fn a_large_argument_by_value_is_not_copied_in_the_callers_memory() {
    let rt = common::builder().memory_limit(80 << 20).build().unwrap();
    let m = rt.load_file(common::guest("testkit")).unwrap();
    common::scenario(&rt, &m, &["big-arg"]);
    common::still_serving(&rt, &m);
}

#[test]
fn large_objects_keep_every_byte() {
    let rt = common::runtime();
    let big: Vec<u8> = (0..20_000_000u32).map(|i| (i % 251) as u8).collect();
    let r = rt.put(&big).unwrap();
    assert_eq!(rt.get::<Vec<u8>>(&r).unwrap(), big);
}

#[test]
fn wait_on_the_host_splits_ready_from_pending() {
    let (rt, m) = testkit();
    let gate = common::gate(&rt, &m);
    let slow = common::gated(&rt, &m, &gate, 300);
    let done = rt.put(&1u8).unwrap();
    let refs = [slow.clone(), done.clone()];
    let (ready, rest) = rt.wait(&refs, 1, Some(Duration::ZERO)).unwrap();
    assert_eq!(
        ready.iter().map(|r| r.id()).collect::<Vec<_>>(),
        [done.id()]
    );
    assert_eq!(rest.iter().map(|r| r.id()).collect::<Vec<_>>(), [slow.id()]);
    let (ready, rest) = rt.wait(&refs, 2, Some(Duration::from_millis(10))).unwrap();
    assert_eq!((ready.len(), rest.len()), (1, 1));
    common::open(&rt, &gate);
    let (ready, rest) = rt.wait(&refs, 2, None).unwrap();
    assert_eq!((ready.len(), rest.len()), (2, 0));
    assert!(matches!(
        rt.wait(&refs, 3, None),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn the_object_size_limit_applies_to_puts() {
    let rt = common::builder().max_object_size(1000).build().unwrap();
    assert!(matches!(
        rt.put_bytes(&[0; 1001]),
        Err(Error::InvalidArgument(_))
    ));
    assert!(rt.put_bytes(&[0; 1000]).is_ok());
}

/// Views read an object in place: from `get_view` and as parameters, of a
/// small and a large vector and of a struct.
#[test]
fn views_read_objects_in_place() {
    let (rt, m) = testkit();
    common::scenario(&rt, &m, &["views"]);
}

/// A view of bytes that are not an archived `T` is a typed error of the
/// reading task, never a host fault.
#[test]
fn a_view_of_a_malformed_object_is_an_invalid_argument() {
    let (rt, m) = testkit();
    // Three bytes cannot hold an archived Vec<f64> (its root is 8 bytes).
    let r = rt
        .task(&m, "view_sum")
        .arg_bytes(&[1, 2, 3])
        .submit()
        .unwrap();
    let e = common::task_error(&rt, &r);
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    assert!(e.message().contains("argument `v`"), "{e}");
    // A root pointing past the end of the bytes.
    let r = rt
        .task(&m, "view_sum")
        .arg_bytes(&[0xff, 0xff, 0, 0, 9, 0, 0, 0])
        .submit()
        .unwrap();
    assert_eq!(
        common::task_error(&rt, &r).kind(),
        ErrorKind::InvalidArgument
    );
    common::still_serving(&rt, &m);
}
