//! The WASI functions wray implements itself, over wasmtime-wasi's.
//!
//! `poll_oneoff` is how a WASI guest sleeps (`std::thread::sleep`, C's
//! `nanosleep`, any timer). wasmtime-wasi's version awaits the sleep inside
//! the host call, where epoch interruption cannot reach: a task sleeping
//! there ran past its `--task-timeout`, and a stopped job or a cancelled
//! task kept its CPU slot until the sleep ended. This one sleeps through
//! [`wait_released`], like `get`: the CPU slot is given back meanwhile,
//! and the sleep ends (trapping the guest) when the call's deadline passes
//! or it is cancelled.
//!
//! A guest has no files, sockets or stdin here (stdin is closed; stdout and
//! stderr are captures that never block), so the subscriptions that matter
//! are clocks; fd subscriptions on 0, 1 and 2 are ready at once and any
//! other descriptor is `EBADF`, as in wasmtime-wasi for a sandboxed guest.
//! Layouts and codes are those of `wasi_snapshot_preview1`.

use super::wait::{Waited, wait_released};
use crate::exec::guest::Guest;
use crate::exec::state::InstanceState;
use std::time::{Duration, Instant, SystemTime};
use wasmtime::{Caller, Linker};

const MODULE: &str = "wasi_snapshot_preview1";
const POLL_ONEOFF: &str = "poll_oneoff";

/// `subscription`: userdata u64 @0, tag u8 @8, the union from @16.
const SUBSCRIPTION_SIZE: u64 = 48;
/// `event`: userdata u64 @0, errno u16 @8, type u8 @10, nbytes u64 @16,
/// flags u16 @24.
const EVENT_SIZE: u64 = 32;

const EVENTTYPE_CLOCK: u8 = 0;
const EVENTTYPE_FD_READ: u8 = 1;
const EVENTTYPE_FD_WRITE: u8 = 2;
const CLOCK_REALTIME: u32 = 0;
const CLOCK_MONOTONIC: u32 = 1;
const SUBCLOCK_ABSTIME: u16 = 1;
const EVENTRWFLAGS_HANGUP: u16 = 1;

/// The most subscriptions one call may make.
const MAX_SUBSCRIPTIONS: u32 = 4096;

const ERRNO_SUCCESS: u16 = 0;
const ERRNO_BADF: u16 = 8;
const ERRNO_FAULT: i32 = 21;
const ERRNO_INVAL: i32 = 28;

/// Registers wray's `poll_oneoff` in place of wasmtime-wasi's (which
/// [`add_to_linker`](super::add_to_linker) registered first).
pub(crate) fn add_to_linker(linker: &mut Linker<InstanceState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker.func_wrap_async(
        MODULE,
        POLL_ONEOFF,
        |mut caller: Caller<'_, InstanceState>, (subs, events, n, out_n): (u32, u32, u32, u32)| {
            Box::new(async move { poll_oneoff(&mut caller, subs, events, n, out_n).await })
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// What one subscription waits for.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Wants {
    /// A clock: ready at this instant.
    Clock(Instant),
    /// A descriptor: ready now, with this errno and these flags.
    Fd { kind: u8, errno: u16, flags: u16 },
}

/// One subscription, as read from guest memory.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Subscription {
    userdata: u64,
    wants: Wants,
}

/// Reads one 48-byte subscription; `Err` is the errno for the whole call.
fn parse(
    b: &[u8],
    now: Instant,
    monotonic_base: Instant,
    wall: impl Fn() -> Duration,
) -> Result<Subscription, i32> {
    let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"));
    let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"));
    let userdata = u64_at(0);
    let wants = match b[8] {
        EVENTTYPE_CLOCK => {
            let (id, timeout) = (u32_at(16), Duration::from_nanos(u64_at(24)));
            let absolute = u16::from_le_bytes([b[40], b[41]]) & SUBCLOCK_ABSTIME != 0;
            let at = match (id, absolute) {
                (CLOCK_REALTIME | CLOCK_MONOTONIC, false) => now.checked_add(timeout),
                (CLOCK_MONOTONIC, true) => monotonic_base.checked_add(timeout),
                (CLOCK_REALTIME, true) => now.checked_add(timeout.saturating_sub(wall())),
                _ => return Err(ERRNO_INVAL),
            };
            // Too far to represent: as good as never.
            Wants::Clock(at.unwrap_or(now + Duration::from_secs(100 * 365 * 86_400)))
        }
        kind @ (EVENTTYPE_FD_READ | EVENTTYPE_FD_WRITE) => match (kind, u32_at(16)) {
            // Stdin is closed: a read finds its end at once.
            (EVENTTYPE_FD_READ, 0) => Wants::Fd {
                kind,
                errno: ERRNO_SUCCESS,
                flags: EVENTRWFLAGS_HANGUP,
            },
            // Stdout and stderr are captures, always ready.
            (EVENTTYPE_FD_WRITE, 1 | 2) => Wants::Fd {
                kind,
                errno: ERRNO_SUCCESS,
                flags: 0,
            },
            _ => Wants::Fd {
                kind,
                errno: ERRNO_BADF,
                flags: 0,
            },
        },
        _ => return Err(ERRNO_INVAL),
    };
    Ok(Subscription { userdata, wants })
}

/// The 32-byte event for a subscription that is ready.
fn event(s: &Subscription) -> [u8; EVENT_SIZE as usize] {
    let mut e = [0u8; EVENT_SIZE as usize];
    e[..8].copy_from_slice(&s.userdata.to_le_bytes());
    match s.wants {
        Wants::Clock(_) => e[10] = EVENTTYPE_CLOCK,
        Wants::Fd { kind, errno, flags } => {
            e[8..10].copy_from_slice(&errno.to_le_bytes());
            e[10] = kind;
            e[24..26].copy_from_slice(&flags.to_le_bytes());
        }
    }
    e
}

/// `poll_oneoff(subs, events, n, out_n) -> errno`: waits until at least one
/// of `n` subscriptions is ready, writes an event for each ready one and
/// their count.
async fn poll_oneoff(
    caller: &mut Caller<'_, InstanceState>,
    subs_ptr: u32,
    events_ptr: u32,
    n: u32,
    out_n: u32,
) -> wasmtime::Result<i32> {
    if n == 0 || n > MAX_SUBSCRIPTIONS {
        // WASI preview 1 has no way to sleep for ever; and the host does
        // not size a table by a guest's count unchecked.
        return Ok(ERRNO_INVAL);
    }
    let subs = {
        let (g, st) = Guest::of(caller, POLL_ONEOFF)?;
        let base = st.monotonic_base();
        let in_bounds = g.check(subs_ptr, u64::from(n) * SUBSCRIPTION_SIZE).is_ok()
            && g.check(events_ptr, u64::from(n) * EVENT_SIZE).is_ok()
            && g.check(out_n, 4).is_ok();
        if !in_bounds {
            return Ok(ERRNO_FAULT);
        }
        let bytes = g.bytes(subs_ptr, n * SUBSCRIPTION_SIZE as u32)?; // n is capped: no overflow
        let now = Instant::now();
        let wall = || {
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
        };
        let parsed: Result<Vec<_>, i32> = bytes
            .chunks_exact(SUBSCRIPTION_SIZE as usize)
            .map(|b| parse(b, now, base, wall))
            .collect();
        match parsed {
            Ok(subs) => subs,
            Err(errno) => return Ok(errno),
        }
    };
    let fd_ready = subs.iter().any(|s| matches!(s.wants, Wants::Fd { .. }));
    if !fd_ready {
        let first = subs
            .iter()
            .filter_map(|s| match s.wants {
                Wants::Clock(at) => Some(at),
                Wants::Fd { .. } => None,
            })
            .min()
            .expect("n > 0 and no descriptors: a clock");
        let left = first.saturating_duration_since(Instant::now());
        if !left.is_zero() {
            // Ends early, with a trap, at the call's deadline or its
            // cancellation.
            let slept = wait_released(caller, Some(left), std::future::pending::<()>()).await?;
            debug_assert!(matches!(slept, Waited::TimedOut));
        }
    }
    let now = Instant::now();
    let (mut g, _) = Guest::of(caller, POLL_ONEOFF)?;
    let mut written = 0u32;
    for s in &subs {
        let ready = match s.wants {
            Wants::Clock(at) => at <= now,
            Wants::Fd { .. } => true,
        };
        if ready {
            g.write(events_ptr + written * EVENT_SIZE as u32, &event(s))?;
            written += 1;
        }
    }
    g.write_u32(out_n, written)?;
    Ok(i32::from(ERRNO_SUCCESS))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(userdata: u64, tag: u8, id_or_fd: u32, timeout: u64, flags: u16) -> [u8; 48] {
        let mut b = [0u8; 48];
        b[..8].copy_from_slice(&userdata.to_le_bytes());
        b[8] = tag;
        b[16..20].copy_from_slice(&id_or_fd.to_le_bytes());
        b[24..32].copy_from_slice(&timeout.to_le_bytes());
        b[40..42].copy_from_slice(&flags.to_le_bytes());
        b
    }

    #[test]
    fn clocks_relative_and_absolute_become_instants() {
        let now = Instant::now();
        let base = now - Duration::from_secs(10);
        let wall = || Duration::from_secs(1_000);
        let rel = parse(&sub(7, 0, CLOCK_MONOTONIC, 5_000, 0), now, base, wall).unwrap();
        assert_eq!(rel.userdata, 7);
        assert_eq!(rel.wants, Wants::Clock(now + Duration::from_micros(5)));
        // Monotonic, absolute: counted from the guest's clock base.
        let abs = parse(
            &sub(1, 0, CLOCK_MONOTONIC, 12_000_000_000, 1),
            now,
            base,
            wall,
        );
        assert_eq!(
            abs.unwrap().wants,
            Wants::Clock(base + Duration::from_secs(12))
        );
        // Realtime, absolute: from the wall clock; one in the past is now.
        let abs = parse(
            &sub(1, 0, CLOCK_REALTIME, 1_003_000_000_000, 1),
            now,
            base,
            wall,
        );
        assert_eq!(
            abs.unwrap().wants,
            Wants::Clock(now + Duration::from_secs(3))
        );
        let past = parse(&sub(1, 0, CLOCK_REALTIME, 5, 1), now, base, wall);
        assert_eq!(past.unwrap().wants, Wants::Clock(now));
        // CPU-time clocks are refused, as wasmtime-wasi refuses them.
        assert_eq!(
            parse(&sub(1, 0, 2, 5, 0), now, base, wall),
            Err(ERRNO_INVAL)
        );
        // An unknown tag is refused.
        assert_eq!(
            parse(&sub(1, 9, 0, 0, 0), now, base, wall),
            Err(ERRNO_INVAL)
        );
    }

    #[test]
    fn descriptors_are_ready_at_once_or_bad() {
        let now = Instant::now();
        let wall = || Duration::ZERO;
        let fd = |tag, fd| parse(&sub(3, tag, fd, 0, 0), now, now, wall).unwrap().wants;
        let ready = |kind, errno, flags| Wants::Fd { kind, errno, flags };
        let (read, write) = (EVENTTYPE_FD_READ, EVENTTYPE_FD_WRITE);
        assert_eq!(fd(read, 0), ready(read, ERRNO_SUCCESS, EVENTRWFLAGS_HANGUP));
        assert_eq!(fd(write, 2), ready(write, ERRNO_SUCCESS, 0));
        assert_eq!(fd(read, 1), ready(read, ERRNO_BADF, 0));
        assert_eq!(fd(write, 7), ready(write, ERRNO_BADF, 0));
        let e = event(&parse(&sub(3, EVENTTYPE_FD_READ, 0, 0, 0), now, now, wall).unwrap());
        assert_eq!(u64::from_le_bytes(e[..8].try_into().unwrap()), 3);
        assert_eq!((e[10], e[24]), (EVENTTYPE_FD_READ, 1));
    }
}
