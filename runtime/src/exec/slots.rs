//! CPU slots and call slots, granted in order by one dispatcher.
//!
//! A guest computes only while it holds a **CPU slot** (`num_cpus` of
//! them), and a call is in progress only while it holds a **call slot** (a
//! fiber stack; `call_slots` of them). A call keeps its call slot while it
//! waits in `get`, but gives its CPU slot back.
//!
//! # Queues and order
//!
//! Three lines, served in this order:
//!
//! 1. *resume*: calls returning from a wait, needing only a CPU slot. They
//!    already hold an instance and a fiber stack; finishing them frees both.
//! 2. *nested starts*: tasks submitted by tasks, deepest first (in order of
//!    joining within a depth). Starting the children of blocked parents
//!    before new siblings keeps the calls in flight near `CPUs x depth`
//!    instead of the width of the task tree, so trees far wider than the
//!    call slots complete.
//! 3. *top-level starts*: tasks submitted by a driver or the host, in order
//!    of joining. A task joins when it is submitted with its arguments ready,
//!    so tasks start in submission order whatever order tokio polls them in.
//!
//! Granting both slots together, from one lock, is what keeps the two from
//! deadlocking: nobody ever holds one slot while queueing for the other.
//!
//! A waiter is either a [`Ticket`] (someone awaits its grant) or a start
//! queued as data ([`Slots::start`]): a function run with the grant, outside
//! the lock. Tasks ready when submitted queue that way, so thousands of
//! queued tasks cost a small record each, not a parked future.
//!
//! # The top-level share
//!
//! Calls without a parent task (submitted by a driver or the host) may hold
//! at most three quarters of the call slots; the rest is kept for nested
//! calls, so a wide fan-out of parents blocked in `get` cannot take every
//! slot their children need. A nested call is never queued behind a
//! top-level call that is waiting only for that share.
//!
//! # Invariant
//!
//! Every slot is free (counted in `State`), owned by exactly one
//! [`CpuSlot`]/[`CallSlot`], or granted to exactly one [`Ticket`] not yet
//! redeemed; a ticket dropped after its grant returns it.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::oneshot;

/// What a waiter needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Need {
    cpu: bool,
    call: bool,
    top_level: bool,
}

impl Need {
    /// A task's start: a CPU slot and a call slot, the call slot counted in
    /// the top-level share unless the task was submitted by a task.
    pub fn task(nested: bool) -> Need {
        Need {
            cpu: true,
            call: true,
            top_level: !nested,
        }
    }

    /// A driver: a call slot only (drivers hold no CPU slot).
    pub const DRIVER: Need = Need {
        cpu: false,
        call: true,
        top_level: false,
    };

    /// An actor's call (or constructor): a CPU slot only, as every actor
    /// keeps its own fiber stack.
    pub const ACTOR: Need = Need {
        cpu: true,
        call: false,
        top_level: false,
    };

    /// A call resuming after a wait: a CPU slot, at the front of the line.
    pub const RESUME: Need = Need {
        cpu: true,
        call: false,
        top_level: false,
    };

    fn cpu(self) -> bool {
        self.cpu
    }
    fn call(self) -> bool {
        self.call
    }
    fn top_level(self) -> bool {
        self.top_level
    }
}

/// The CPU and call slots of a runtime.
pub(crate) struct Slots {
    state: Mutex<State>,
}

struct State {
    cpu_free: usize,
    calls_free: usize,
    top_level_free: usize,
    resume: VecDeque<oneshot::Sender<()>>,
    start_nested: BinaryHeap<Waiter>,
    start_top_level: VecDeque<Waiter>,
    next_seq: u64,
}

/// A granted start, with the slots it was granted from.
type Started = (Arc<Slots>, Need, StartFn);

thread_local! {
    /// Starts granted on this thread while it runs starts (see
    /// [`Slots::run_starts`]); `None` when it runs none.
    static STARTING: RefCell<Option<Vec<Started>>> = const { RefCell::new(None) };
}

/// What a call queued as data runs once its slots are granted; it hands
/// the grant back if it no longer wants it (the call was cancelled and
/// started another way).
pub(crate) type StartFn = Box<dyn FnOnce(Grant) -> Option<Grant> + Send>;

/// How a waiter learns of its grant.
enum OnGrant {
    /// A ticket's holder is woken.
    Wake(oneshot::Sender<()>),
    /// A start queued as data runs (after the lock is released).
    Start(StartFn),
}

/// A call waiting to start.
struct Waiter {
    depth: u32,
    seq: u64,
    need: Need,
    on_grant: OnGrant,
}

impl Waiter {
    /// Deeper first, then earlier first.
    fn key(&self) -> (u32, Reverse<u64>) {
        (self.depth, Reverse(self.seq))
    }
}

impl PartialEq for Waiter {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Waiter {}

impl PartialOrd for Waiter {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Waiter {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

impl State {
    fn can_grant(&self, need: Need) -> bool {
        (!need.cpu() || self.cpu_free > 0)
            && (!need.call() || self.calls_free > 0)
            && (!need.top_level() || self.top_level_free > 0)
    }

    fn take(&mut self, need: Need) {
        if need.cpu() {
            self.cpu_free -= 1;
        }
        if need.call() {
            self.calls_free -= 1;
        }
        if need.top_level() {
            self.top_level_free -= 1;
        }
    }

    /// Whether anybody waits.
    fn queued(&self) -> bool {
        !self.resume.is_empty() || !self.start_nested.is_empty() || !self.start_top_level.is_empty()
    }

    /// Queues a start, in its line.
    fn push(&mut self, need: Need, depth: u32, on_grant: OnGrant) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let w = Waiter {
            depth,
            seq,
            need,
            on_grant,
        };
        if need.top_level() {
            self.start_top_level.push_back(w);
        } else {
            self.start_nested.push(w);
        }
    }

    fn give_back(&mut self, cpu: bool, call: bool, top_level: bool) {
        self.cpu_free += usize::from(cpu);
        self.calls_free += usize::from(call);
        self.top_level_free += usize::from(top_level);
    }

    /// Serves waiters while slots allow; starts queued as data are added to
    /// `starts`, to run once the lock is released.
    fn dispatch(&mut self, starts: &mut Vec<(Need, StartFn)>) {
        loop {
            if self.cpu_free > 0
                && let Some(tx) = self.resume.pop_front()
            {
                self.take(Need::RESUME);
                if tx.send(()).is_err() {
                    self.give_back(true, false, false);
                }
                continue;
            }
            let waiter = if self
                .start_nested
                .peek()
                .is_some_and(|w| self.can_grant(w.need))
            {
                self.start_nested.pop()
            } else if self
                .start_top_level
                .front()
                .is_some_and(|w| self.can_grant(w.need))
            {
                self.start_top_level.pop_front()
            } else {
                None
            };
            let Some(w) = waiter else { return };
            self.take(w.need);
            match w.on_grant {
                OnGrant::Wake(tx) => {
                    if tx.send(()).is_err() {
                        self.give_back(w.need.cpu(), w.need.call(), w.need.top_level());
                    }
                }
                OnGrant::Start(f) => starts.push((w.need, f)),
            }
        }
    }
}

impl Slots {
    pub fn new(cpus: usize, calls: usize) -> Arc<Slots> {
        Arc::new(Slots {
            state: Mutex::new(State {
                cpu_free: cpus,
                calls_free: calls,
                top_level_free: (calls * 3 / 4).max(1),
                resume: VecDeque::new(),
                start_nested: BinaryHeap::new(),
                start_top_level: VecDeque::new(),
                next_seq: 0,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// CPU slots not in use.
    pub fn cpus_free(&self) -> usize {
        self.lock().cpu_free
    }

    /// Call slots not in use.
    pub fn calls_free(&self) -> usize {
        self.lock().calls_free
    }

    /// CPU slots free, call slots free, and callers waiting in line.
    #[cfg(any(feature = "node", test))] // read by the node only
    pub fn free(&self) -> (usize, usize, usize) {
        let s = self.lock();
        let waiting = s.resume.len() + s.start_nested.len() + s.start_top_level.len();
        (s.cpu_free, s.calls_free, waiting)
    }

    /// Takes a place in line now; the ticket yields the slots when its turn
    /// comes. `depth` orders nested starts (a task submitted by a task
    /// submitted by the driver has depth 2).
    pub fn enqueue(self: &Arc<Self>, need: Need, depth: u32) -> Ticket {
        self.enqueue_in(need, depth, false)
    }

    /// Takes a place at the front of the line, for a call resuming after a
    /// wait (it needs a CPU slot only).
    pub fn resume(self: &Arc<Self>) -> Ticket {
        self.enqueue_in(Need::RESUME, 0, true)
    }

    /// Queues a start that needs `need` as data: `start` runs with the
    /// grant when its turn comes (at once, here, if it is its turn now),
    /// never while the slots are locked.
    pub fn start(self: &Arc<Self>, need: Need, depth: u32, start: StartFn) {
        let mut starts = Vec::new();
        {
            let mut s = self.lock();
            if s.can_grant(need) && !s.queued() {
                s.take(need);
                starts.push((need, start));
            } else {
                s.push(need, depth, OnGrant::Start(start));
                s.dispatch(&mut starts);
            }
        }
        self.run_starts(starts);
    }

    fn enqueue_in(self: &Arc<Self>, need: Need, depth: u32, resume: bool) -> Ticket {
        let mut starts = Vec::new();
        let state = {
            let mut s = self.lock();
            if s.can_grant(need) && (resume || !s.queued()) {
                s.take(need);
                TicketState::Granted
            } else {
                let (tx, rx) = oneshot::channel();
                if resume {
                    s.resume.push_back(tx);
                } else {
                    s.push(need, depth, OnGrant::Wake(tx));
                }
                // A nested call may be servable past top-level calls
                // waiting for their share.
                s.dispatch(&mut starts);
                TicketState::Waiting(rx)
            }
        };
        self.run_starts(starts);
        Ticket {
            slots: self.clone(),
            need,
            state,
        }
    }

    fn release(self: &Arc<Self>, cpu: bool, call: bool, top_level: bool) {
        let mut starts = Vec::new();
        {
            let mut s = self.lock();
            s.give_back(cpu, call, top_level);
            s.dispatch(&mut starts);
        }
        self.run_starts(starts);
    }

    /// Runs the starts a dispatch granted (the lock released).
    ///
    /// A start can give its slots back before it returns: it hands the
    /// grant back, or it drops it (a task spawned on a tokio runtime that
    /// is shutting down is dropped at once). Giving back dispatches again,
    /// which grants the next start, which may give back again: one level
    /// of stack per queued start if each ran inside the last. So only the
    /// outermost call on a thread runs starts; starts granted while it
    /// runs one are queued for it ([`STARTING`]) and run by its loop, and
    /// the stack stays flat however long the line.
    fn run_starts(self: &Arc<Self>, starts: Vec<(Need, StartFn)>) {
        if starts.is_empty() {
            return;
        }
        let mut starts = Some(starts);
        let outermost = STARTING.with_borrow_mut(|q| match q {
            Some(q) => {
                let nested = starts.take().expect("not taken yet");
                q.extend(nested.into_iter().map(|(n, f)| (self.clone(), n, f)));
                false
            }
            None => {
                *q = Some(Vec::new());
                true
            }
        });
        let Some(starts) = starts.filter(|_| outermost) else {
            return;
        };
        // Ends this thread's turn as the runner, even if a start panics.
        struct Done;
        impl Drop for Done {
            fn drop(&mut self) {
                STARTING.with_borrow_mut(|q| *q = None);
            }
        }
        let _done = Done;
        // A grant handed back is released by its drop, which queues what
        // that release grants.
        for (need, start) in starts {
            drop(start(self.grant_of(need)));
        }
        loop {
            let queued = STARTING
                .with_borrow_mut(|q| std::mem::take(q.as_mut().expect("this thread runs starts")));
            if queued.is_empty() {
                return;
            }
            for (slots, need, start) in queued {
                drop(start(slots.grant_of(need)));
            }
        }
    }

    /// The slots of `need`, already taken from the free counts.
    fn grant_of(self: &Arc<Self>, need: Need) -> Grant {
        Grant {
            cpu: need.cpu().then(|| CpuSlot {
                slots: self.clone(),
            }),
            call: need.call().then(|| CallSlot {
                slots: self.clone(),
                top_level: need.top_level(),
            }),
        }
    }
}

/// A place in line.
pub(crate) struct Ticket {
    slots: Arc<Slots>,
    need: Need,
    state: TicketState,
}

enum TicketState {
    Granted,
    Waiting(oneshot::Receiver<()>),
    Redeemed,
}

impl Ticket {
    /// Waits for the grant.
    pub async fn grant(mut self) -> Grant {
        if let TicketState::Waiting(rx) = &mut self.state {
            // Senders stay queued until they are sent on: never dropped
            // unsent while we hold the receiver.
            rx.await.expect("queued tickets are always served");
        }
        self.state = TicketState::Redeemed;
        self.slots.grant_of(self.need)
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let granted = match std::mem::replace(&mut self.state, TicketState::Redeemed) {
            TicketState::Granted => true,
            // The grant may have arrived as we gave up: pass it on.
            TicketState::Waiting(mut rx) => {
                rx.close();
                rx.try_recv().is_ok()
            }
            TicketState::Redeemed => false,
        };
        if granted {
            let n = self.need;
            self.slots.release(n.cpu(), n.call(), n.top_level());
        }
    }
}

/// What a ticket grants.
pub(crate) struct Grant {
    /// The CPU slot, unless the need was [`Need::DRIVER`].
    pub cpu: Option<CpuSlot>,
    /// The call slot, if the need included one.
    pub call: Option<CallSlot>,
}

/// One CPU slot, released when dropped.
pub(crate) struct CpuSlot {
    slots: Arc<Slots>,
}

impl Drop for CpuSlot {
    fn drop(&mut self) {
        self.slots.release(true, false, false);
    }
}

/// One call slot, released when dropped.
pub(crate) struct CallSlot {
    slots: Arc<Slots>,
    top_level: bool,
}

impl Drop for CallSlot {
    fn drop(&mut self) {
        self.slots.release(false, true, self.top_level);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn order_of(
        slots: &Arc<Slots>,
        tickets: Vec<(&'static str, Ticket)>,
    ) -> Vec<&'static str> {
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut handles = Vec::new();
        for (name, t) in tickets {
            let order = order.clone();
            handles.push(tokio::spawn(async move {
                let g = t.grant().await;
                order.lock().unwrap().push(name);
                drop(g);
            }));
        }
        tokio::task::yield_now().await;
        let _ = slots;
        for h in handles {
            h.await.unwrap();
        }
        order.lock().unwrap().clone()
    }

    /// At shutdown every queued start is spawned on a closed tokio
    /// runtime, which drops it and its grant at once; a cancelled start
    /// hands its grant back. Each give-back grants the next start: run
    /// inside the last, 100,000 of them overflowed the stack and aborted
    /// the host.
    #[test]
    fn a_long_line_of_starts_giving_their_slots_back_keeps_the_stack_flat() {
        const N: usize = 100_000;
        let small_stack = std::thread::Builder::new().stack_size(256 << 10);
        let ran = small_stack
            .spawn(|| {
                let slots = Slots::new(1, 10);
                let held = Arc::new(Mutex::new(None));
                let keep = held.clone();
                slots.start(
                    Need::task(false),
                    0,
                    Box::new(move |g| {
                        *keep.lock().unwrap() = Some(g);
                        None
                    }),
                );
                let ran = Arc::new(std::sync::atomic::AtomicUsize::new(0));
                for i in 0..N {
                    let ran = ran.clone();
                    slots.start(
                        Need::task(i % 2 == 0),
                        0,
                        Box::new(move |g| {
                            ran.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            // A third hand the grant back; the rest drop it.
                            if i % 3 == 0 {
                                Some(g)
                            } else {
                                drop(g);
                                None
                            }
                        }),
                    );
                }
                assert_eq!(slots.free(), (0, 9, N), "the line waits for the slot");
                drop(held.lock().unwrap().take());
                assert_eq!(slots.free(), (1, 10, 0), "every slot is back");
                ran.load(std::sync::atomic::Ordering::Relaxed)
            })
            .unwrap()
            .join()
            .expect("no stack overflow");
        assert_eq!(ran, N);
    }

    #[tokio::test]
    async fn starts_go_in_order_and_resumes_first() {
        let slots = Slots::new(1, 10);
        let first = slots.enqueue(Need::task(false), 0).grant().await;
        let a = slots.enqueue(Need::task(false), 0);
        let b = slots.enqueue(Need::task(false), 0);
        let n1 = slots.enqueue(Need::task(true), 1);
        let n2 = slots.enqueue(Need::task(true), 2);
        let n1b = slots.enqueue(Need::task(true), 1);
        let r = slots.resume();
        let pending = tokio::spawn({
            let slots = slots.clone();
            let tickets = vec![
                ("b", b),
                ("n1b", n1b),
                ("a", a),
                ("r", r),
                ("n1", n1),
                ("n2", n2),
            ];
            async move { order_of(&slots, tickets).await }
        });
        tokio::task::yield_now().await;
        drop(first);
        assert_eq!(pending.await.unwrap(), ["r", "n2", "n1", "n1b", "a", "b"]);
        assert_eq!((slots.cpus_free(), slots.calls_free()), (1, 10));
    }

    #[tokio::test]
    async fn nested_calls_pass_top_level_ones_stuck_on_their_share() {
        // 4 call slots: 3 for top-level calls, 1 kept for nested ones.
        let slots = Slots::new(8, 4);
        let held: Vec<Grant> =
            futures_all((0..3).map(|_| slots.enqueue(Need::task(false), 0).grant())).await;
        let blocked = slots.enqueue(Need::task(false), 0);
        let nested = slots.enqueue(Need::task(true), 1).grant().await;
        assert_eq!(slots.calls_free(), 0);
        drop(nested);
        drop(held);
        blocked.grant().await;
        assert_eq!(slots.calls_free(), 4);
    }

    #[tokio::test]
    async fn abandoned_tickets_return_their_grant() {
        let slots = Slots::new(1, 1);
        let held = slots.enqueue(Need::task(true), 1).grant().await;
        let waiting = slots.enqueue(Need::task(true), 1);
        drop(held); // granted to `waiting`
        drop(waiting); // given up: the slots come back
        assert_eq!((slots.cpus_free(), slots.calls_free()), (1, 1));
        drop(slots.enqueue(Need::DRIVER, 0)); // granted at once, never redeemed
        assert_eq!(slots.calls_free(), 1);
    }

    #[tokio::test]
    async fn starts_queued_as_data_run_in_line_and_hand_back_unwanted_grants() {
        let slots = Slots::new(1, 10);
        let order = Arc::new(Mutex::new(Vec::new()));
        let held: Arc<Mutex<Vec<Grant>>> = Arc::default();
        // Runs at once: the slots are free.
        let start = |name: &'static str, keep: bool| -> StartFn {
            let (order, held) = (order.clone(), held.clone());
            Box::new(move |g: Grant| {
                order.lock().unwrap().push(name);
                if !keep {
                    return Some(g); // as a cancelled start does
                }
                held.lock().unwrap().push(g);
                None
            })
        };
        slots.start(Need::task(false), 0, start("first", true));
        assert_eq!(slots.cpus_free(), 0);
        let ticket = slots.enqueue(Need::task(false), 0);
        // 10,000 starts that hand their grant back: passed on in a loop
        // (recursion would overflow the stack).
        for _ in 0..10_000 {
            slots.start(Need::task(false), 0, start("unwanted", false));
        }
        slots.start(Need::task(false), 0, start("last", true));
        assert_eq!(order.lock().unwrap().len(), 1);
        // The ticket came first: it gets the slot, and the starts wait.
        held.lock().unwrap().clear();
        let g = ticket.grant().await;
        assert_eq!(order.lock().unwrap().len(), 1);
        drop(g);
        let order = order.lock().unwrap().clone();
        assert_eq!(order.len(), 10_002);
        assert_eq!(
            (order[0], order[1], order[10_001]),
            ("first", "unwanted", "last")
        );
        assert_eq!(slots.cpus_free(), 0, "`last` holds the slot");
        held.lock().unwrap().clear();
        assert_eq!((slots.cpus_free(), slots.calls_free()), (1, 10));
    }

    async fn futures_all<F: Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
        let mut out = Vec::new();
        for f in futs {
            out.push(f.await);
        }
        out
    }
}
