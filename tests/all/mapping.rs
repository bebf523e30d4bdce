//! Large objects mapped into guests rather than copied: views of them, the
//! memory a mapping takes and gives back, and the pool hazard (a slot's next
//! instance must find zeros where an object was mapped, however the
//! instance that mapped it ended).

use crate::common::{self, testkit};
use std::sync::Arc;
use std::time::Duration;
use wray_runtime::{ErrorKind, ObjectRef, Runtime};

/// A large value: `mb` megabytes of `fill`, as an archived `Vec<u8>`.
fn large(rt: &Runtime, mb: usize, fill: u8) -> ObjectRef {
    rt.put(&vec![fill; mb << 20]).unwrap()
}

/// Runs `view_then` on `r` ending as `how`, within `timeout` if given, and
/// returns its result.
fn view_then(
    rt: &Runtime,
    m: &wray_runtime::Module,
    r: &ObjectRef,
    how: u32,
    timeout: Option<Duration>,
) -> ObjectRef {
    let mut call = rt
        .task(m, "view_then")
        .arg_ref(r)
        .arg(&0xABu8)
        .arg(&how)
        .max_retries(0);
    if let Some(t) = timeout {
        call = call.timeout(t);
    }
    call.submit().unwrap()
}

/// Whether a fresh instance finds zeros at `at`, `len` bytes.
fn zeros_at(rt: &Runtime, m: &wray_runtime::Module, at: u32, len: u32) -> bool {
    let r = rt.task(m, "zeros_at").arg(&at).arg(&len).submit().unwrap();
    rt.get::<bool>(&r).unwrap()
}

/// However an instance that had an object mapped ends (it returns, panics,
/// traps, times out or is cancelled), the instances that reuse its pool
/// slot find zeros where the object was. One CPU and the smallest pool (two
/// slots) make the next task land in a slot an earlier one used; removing
/// the restore in `host::mapping` makes this test fail.
#[test]
fn the_next_instance_in_a_slot_sees_zeros_where_an_object_was_mapped() {
    let out = common::Collect::default();
    let rt = common::builder()
        .num_cpus(1)
        .call_slots(2)
        .output(Arc::new(out.clone()))
        .build()
        .unwrap();
    let m = rt.load_file(common::guest("testkit")).unwrap();
    // How many times `view_then` has said it read its view: each ending
    // below is checked to come after the mapping, not before it.
    let mapped = || {
        out.lines()
            .iter()
            .filter(|(_, _, l)| l.contains("read the view at"))
            .count()
    };
    let r = large(&rt, 8, 0xAB);
    let at = rt.get::<u32>(&view_then(&rt, &m, &r, 0, None)).unwrap();
    let len = 8 << 20;
    assert!(at > 0);
    for how in [0, 1, 2, 3, 4] {
        let before = mapped();
        let done = match how {
            3 => {
                // Timed out while it computes with the view mapped: if the
                // limit passed before the mapping, try a longer one.
                let mut limit = Duration::from_millis(300);
                loop {
                    let g = view_then(&rt, &m, &r, 3, Some(limit));
                    let e = common::task_error(&rt, &g);
                    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
                    if mapped() > before {
                        break g;
                    }
                    limit *= 2;
                    assert!(limit < Duration::from_secs(120), "never mapped in time");
                }
            }
            4 => {
                // Cancelled while it computes with the view mapped.
                let g = view_then(&rt, &m, &r, 3, None);
                common::eventually("the view is read", || mapped() > before);
                rt.cancel(&g);
                g
            }
            _ => view_then(&rt, &m, &r, how, None),
        };
        match rt.get::<u32>(&done) {
            Ok(got) => assert_eq!((how, got), (0, at), "maps where it did before"),
            Err(e) => assert!(how > 0, "ending {how}: {e}"),
        }
        assert!(mapped() > before, "ending {how} came after the mapping");
        for _ in 0..2 {
            assert!(zeros_at(&rt, &m, at, len), "ending {how}: old bytes seen");
        }
    }
    common::still_serving(&rt, &m);
}

/// The same for actors: an actor killed while it holds a view leaves zeros
/// where the view was, for the actors that reuse its pool slot (one actor
/// slot makes them reuse it).
#[test]
fn an_actor_killed_with_a_view_leaves_zeros_for_the_next_one() {
    let rt = common::builder().actor_slots(1).build().unwrap();
    let m = rt.load_file(common::guest("testkit")).unwrap();
    let r = large(&rt, 8, 0xAB);
    let call = |a: &wray_runtime::ActorRef, method: &str| rt.method(a, method);
    for round in 0..3 {
        let a = rt.actor(&m, "Viewer").create().unwrap();
        let kept = call(&a, "keep").arg_ref(&r).submit().unwrap();
        rt.get_bytes(&kept).unwrap();
        let at = rt.get::<u32>(&call(&a, "at").submit().unwrap()).unwrap();
        assert!(rt.kill(&a, false));
        let next = rt.actor(&m, "Viewer").create().unwrap();
        let zeros = call(&next, "zeros_at")
            .arg(&at)
            .arg(&(8u32 << 20))
            .submit()
            .unwrap();
        assert!(
            rt.get::<bool>(&zeros).unwrap(),
            "round {round}: old bytes seen"
        );
        assert!(rt.kill(&next, false));
    }
    common::still_serving(&rt, &m);
}

/// A view, dropped, gives its region back as zeros, and the next view
/// reuses the region; reading an object many times does not grow memory
/// by the object each time.
#[test]
fn unmapped_regions_are_zeroed_and_reused() {
    let (rt, m) = testkit();
    let r = large(&rt, 4, 0x5A);
    let got = rt
        .task(&m, "view_drop_view")
        .arg_ref_unresolved(&r)
        .submit()
        .unwrap();
    assert_eq!(rt.get::<(bool, bool)>(&got).unwrap(), (true, true));
    let pages = |r: ObjectRef| rt.get::<u32>(&r).unwrap() as u64 * 65536;
    let base = pages(rt.task(&m, "memory_pages").submit().unwrap());
    let r = rt
        .task(&m, "read_many")
        .arg_ref_unresolved(&r)
        .arg(&20u32)
        .submit()
        .unwrap();
    let (total, end) = rt.get::<(u64, u32)>(&r).unwrap();
    assert_eq!(total, 20 * 2 * (4 << 20));
    let grown = u64::from(end) * 65536 - base;
    assert!(
        grown < 4 * (4 << 20),
        "reading a 4 MiB object 40 times grew memory by {grown} bytes"
    );
}

/// An actor keeps a view across calls; the object stays readable through
/// it after every reference to it is dropped, until the actor ends.
#[test]
fn an_actor_holds_a_view_across_calls_and_past_the_objects_release() {
    let (rt, m) = testkit();
    let r = large(&rt, 4, 3);
    let a = rt.actor(&m, "Viewer").create().unwrap();
    let kept = rt.method(&a, "keep").arg_ref(&r).submit().unwrap();
    rt.get_bytes(&kept).unwrap();
    let sum = |rt: &Runtime| {
        let s = rt.method(&a, "sum").submit().unwrap();
        rt.get::<u64>(&s).unwrap()
    };
    let want = 3 * (4u64 << 20);
    assert_eq!(sum(&rt), want);
    drop(r);
    drop(kept);
    common::eventually("the object is released", || rt.stats().objects == 0);
    assert_eq!(sum(&rt), want, "still readable");
    assert!(rt.kill(&a, false));
    common::still_serving(&rt, &m);
}

/// A spilled object is viewed from its spill file, with every byte right.
#[test]
fn a_spilled_object_is_viewed() {
    let dir = tempfile::tempdir().unwrap();
    let (rt, m) = common::capped(12, Some(dir.path()));
    let first = large(&rt, 8, 0xAB);
    let _second = large(&rt, 8, 0xCD);
    common::eventually("the first object is spilled", || {
        rt.stats().spilled_bytes > 0
    });
    let at = view_then(&rt, &m, &first, 0, None);
    assert!(rt.get::<u32>(&at).is_ok(), "every byte read back");
}

/// Ten actors reading the same object through views add about one copy of
/// it to the process's memory (proportional set size), not ten.
#[test]
fn ten_readers_of_one_object_share_its_pages() {
    if !common::alone("mapping::ten_readers_of_one_object_share_its_pages") {
        return;
    }
    let (rt, m) = testkit();
    let mb = 64u64;
    let r = large(&rt, mb as usize, 1);
    let before = pss_kib();
    let actors: Vec<_> = (0..10)
        .map(|_| rt.actor(&m, "Viewer").create().unwrap())
        .collect();
    let sums: Vec<_> = actors
        .iter()
        .map(|a| {
            drop(rt.method(a, "keep").arg_ref(&r).submit().unwrap());
            rt.method(a, "sum").submit().unwrap()
        })
        .collect();
    for s in &sums {
        assert_eq!(rt.get::<u64>(s).unwrap(), mb << 20);
    }
    let grown_mb = (pss_kib().saturating_sub(before)) / 1024;
    println!("ten readers of {mb} MB added {grown_mb} MB");
    assert!(
        grown_mb < 2 * mb,
        "ten readers of {mb} MB added {grown_mb} MB: copies, not shared pages"
    );
}

/// A view of an object that is not a valid archive is a typed error of the
/// reading call, mapped or not.
#[test]
fn a_large_malformed_object_is_an_invalid_argument_of_its_reader() {
    let (rt, m) = testkit();
    // 1 MiB of 0xff: its root claims an offset far outside the bytes.
    let r = rt.put_bytes(&vec![0xff; 1 << 20]).unwrap();
    let got = rt.task(&m, "view_sum").arg_ref(&r).submit().unwrap();
    let e = common::task_error(&rt, &got);
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    common::still_serving(&rt, &m);
}

/// This process's proportional set size in KiB: a page mapped in several
/// places counts once in all.
fn pss_kib() -> u64 {
    let text = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap();
    let line = text.lines().find(|l| l.starts_with("Pss:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}
