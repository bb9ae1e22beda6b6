//! dsconv's own thread pool (std only): the calling thread takes part, each thread claims
//! the items of its own share of a job from an atomic counter, then helps with what is left
//! of the others' shares, and workers spin briefly after each job, then sleep on a
//! condition variable, so an idle process uses no CPU.
//!
//! - The process-wide pool ([`Pool::global`]) has `DSCONV_THREADS` threads if that variable
//!   holds a positive integer, else [`std::thread::available_parallelism`]. Its workers are
//!   started at its first parallel job: with one thread (or no parallel job) dsconv starts
//!   no thread at all.
//! - [`Pool::install`] runs a closure with another pool as the current one for the calling
//!   thread (every layer call inside it runs on that pool).
//! - A job whose pool is busy with another caller's job runs on the caller's thread alone,
//!   and so does a job started from inside a pool worker: no call waits behind another's
//!   work, and nothing deadlocks.
//!
//! Which items a thread runs never changes what they compute: callers split work into items
//! whose results do not depend on the thread that runs them (dsconv's fused tiles), so
//! every thread count gives bit-identical outputs.

use std::cell::Cell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;

/// The environment variable that sets the number of threads of the process-wide pool.
pub const THREADS_ENV: &str = "DSCONV_THREADS";

/// How many times an idle worker polls for the next job before it sleeps (about 20-50 µs).
const SPINS: u32 = 20_000;

/// A job as the workers see it: the item function with its lifetime erased, and the number
/// of items. Only dereferenced while the dispatching call waits for it (see `Pool::run`).
#[derive(Clone, Copy)]
struct Job {
    f: *const (dyn Fn(usize) + Sync),
    items: usize,
}

// SAFETY: the pointee is `Sync`, and `Pool::run` keeps it alive until no worker can reach it.
unsafe impl Send for Job {}

struct Shared {
    /// The current job, `None` between jobs. A worker joins a job only under this lock.
    job: Mutex<Option<(u64, Job)>>,
    /// Incremented for every job; workers watch it.
    epoch: AtomicU64,
    /// Per thread (the caller is 0, worker `i` is `i`), the next item of its own share of
    /// the job: thread `t` owns items `t * items / threads .. (t + 1) * items / threads`,
    /// takes them in order, then helps the others from the front of what is left of
    /// theirs. The same thread thus tends to get the same part of every layer's output
    /// (a chain's next layer finds its input in that core's cache), and a slow thread's
    /// items still go to whoever is free.
    next: Vec<AtomicUsize>,
    /// Workers inside the current job.
    active: AtomicUsize,
    /// A worker's item panicked.
    panicked: AtomicBool,
    /// Sleeping workers wait here for the epoch to move (or shutdown).
    sleep: Mutex<()>,
    /// Workers asleep or about to sleep (counted under `sleep`): a job wakes them only if
    /// there are any, so a dispatch to spinning workers makes no system call.
    sleepers: AtomicUsize,
    wake: Condvar,
    shutdown: AtomicBool,
}

/// A pool of `threads - 1` workers plus the calling thread (or, with the `rayon` feature,
/// `Pool::rayon()`: the rayon pool of the calling context).
pub struct Pool {
    threads: usize,
    /// Jobs go to rayon instead of this pool's own workers.
    #[cfg(feature = "rayon")]
    rayon: bool,
    shared: Arc<Shared>,
    workers: OnceLock<Vec<JoinHandle<()>>>,
    /// Set while a caller's job runs on the workers ([`Dispatch`] clears it).
    busy: AtomicBool,
}

/// A job's hold on its pool's workers ([`Pool::try_dispatch`]), released on drop.
struct Dispatch<'a>(&'a AtomicBool);

impl Drop for Dispatch<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// A worker's presence in a job, counted in `active` and uncounted on drop: even if the
/// worker's thread unwinds, the caller waiting for `active` to reach 0 is not left waiting.
struct Inside<'a>(&'a AtomicUsize);

impl Drop for Inside<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The process-wide pool ([`Pool::global`], [`Pool::set_global`]).
static GLOBAL: OnceLock<Pool> = OnceLock::new();

thread_local! {
    /// Set on the pool's worker threads: a job they start runs inline.
    static IN_WORKER: Cell<bool> = const { Cell::new(false) };
    /// The pool `Pool::install` made current on this thread.
    static CURRENT: Cell<Option<*const Pool>> = const { Cell::new(None) };
}

impl Pool {
    /// A pool of `threads` threads (the caller and `threads - 1` workers, started at its first
    /// parallel job); 0 counts as 1.
    pub fn new(threads: usize) -> Pool {
        Pool {
            threads: threads.max(1),
            shared: Arc::new(Shared {
                job: Mutex::new(None),
                epoch: AtomicU64::new(0),
                next: (0..threads.max(1)).map(|_| AtomicUsize::new(0)).collect(),
                active: AtomicUsize::new(0),
                panicked: AtomicBool::new(false),
                sleep: Mutex::new(()),
                sleepers: AtomicUsize::new(0),
                wake: Condvar::new(),
                shutdown: AtomicBool::new(false),
            }),
            workers: OnceLock::new(),
            busy: AtomicBool::new(false),
            #[cfg(feature = "rayon")]
            rayon: false,
        }
    }

    /// A pool that runs dsconv's work items on rayon (cargo feature `rayon`): on the rayon
    /// pool the call is made from (the one a `ThreadPool::install` closure runs on, else
    /// rayon's global pool), as a parallel iterator over the items. It starts no thread of
    /// its own. Use it for one call with [`install`](Self::install), or for every call with
    /// [`set_global`](Self::set_global). The items are sized for the rayon pool's thread
    /// count, and the outputs are the same bits as on dsconv's own pool.
    #[cfg(feature = "rayon")]
    pub fn rayon() -> Pool {
        let mut pool = Pool::new(1);
        pool.rayon = true;
        pool
    }

    /// Makes `pool` the process-wide pool, the one calls use outside any
    /// [`install`](Self::install) (for example `Pool::set_global(Pool::rayon())`). Only
    /// before the first call that uses the global pool: afterwards the pool is given back as
    /// `Err`.
    pub fn set_global(pool: Pool) -> Result<(), Pool> {
        GLOBAL.set(pool)
    }

    /// The process-wide pool: `DSCONV_THREADS` threads, or the cores available to the
    /// process ([`std::thread::available_parallelism`]) when the variable is unset or not a
    /// positive integer.
    pub fn global() -> &'static Pool {
        GLOBAL.get_or_init(|| Pool::new(threads_from_env()))
    }

    /// The pool layer calls on this thread use: the one [`install`](Self::install)ed, else
    /// the global one.
    pub fn current<R>(f: impl FnOnce(&Pool) -> R) -> R {
        match CURRENT.with(Cell::get) {
            // SAFETY: `install` sets the pointer only for the duration of its closure, during
            // which the pool it borrows is alive.
            Some(pool) => f(unsafe { &*pool }),
            None => f(Pool::global()),
        }
    }

    /// The number of threads (the caller included; for `Pool::rayon()`, the current rayon
    /// pool's).
    pub fn threads(&self) -> usize {
        #[cfg(feature = "rayon")]
        if self.rayon {
            return rayon::current_num_threads();
        }
        self.threads
    }

    /// The threads a job started here and now would run on: 1 on a pool worker, inside an
    /// item of a job this thread dispatched on this pool, or while the pool runs another
    /// job (any such job runs inline), else [`threads`](Self::threads). Layer calls size
    /// their work items for it ([`SplitRule::split`](crate::SplitRule::split)), so a call
    /// that finds the pool busy runs on the calling thread in the plan's own tiles. The
    /// pool can be taken between this answer and the job: that job then runs inline on the
    /// items sized for the whole pool (the same bits either way).
    pub fn job_threads(&self) -> usize {
        #[cfg(feature = "rayon")]
        if self.rayon {
            return self.threads();
        }
        // `busy` covers a job started from an item of this pool's own job, on any thread.
        if IN_WORKER.with(Cell::get) || self.busy.load(Ordering::Relaxed) {
            1
        } else {
            self.threads
        }
    }

    /// The right to run a job on the workers, if no other job holds it: cleared when the
    /// job ends, a panicking one included (that job waited for its workers, and every
    /// dispatch resets the pool's state), so a panic does not leave the pool running every
    /// later job inline.
    fn try_dispatch(&self) -> Option<Dispatch<'_>> {
        self.busy
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| Dispatch(&self.busy))
    }

    /// Whether the pool's worker threads have been started.
    pub fn started(&self) -> bool {
        self.workers.get().is_some()
    }

    /// Runs `f` with this pool as the calling thread's current pool: every layer call inside
    /// `f` (on this thread) runs its parallel work here.
    pub fn install<R>(&self, f: impl FnOnce() -> R) -> R {
        struct Restore(Option<*const Pool>);
        impl Drop for Restore {
            fn drop(&mut self) {
                CURRENT.with(|c| c.set(self.0));
            }
        }
        let _restore = Restore(CURRENT.with(|c| c.replace(Some(self as *const Pool))));
        f()
    }

    /// Runs `f(i)` for every `i` in `0..items`, on this pool's threads and the caller's;
    /// returns when all have run. Inline, in order, when the pool has one thread, there is
    /// at most one item, the caller is one of the pool's workers, or the pool is busy with
    /// another caller's job. A panic in `f` is raised again here. On `Pool::rayon()`
    /// (feature `rayon`), a parallel iterator on the current rayon pool.
    pub fn run(&self, items: usize, f: &(dyn Fn(usize) + Sync)) {
        let inline = || (0..items).for_each(f);
        #[cfg(feature = "rayon")]
        if self.rayon {
            use rayon::prelude::*;
            // rayon has its own answer to nesting and busy pools: work stealing.
            return if items <= 1 {
                inline()
            } else {
                (0..items).into_par_iter().for_each(f)
            };
        }
        if self.threads == 1 || items <= 1 || IN_WORKER.with(Cell::get) {
            return inline();
        }
        let Some(_dispatch) = self.try_dispatch() else {
            return inline();
        };
        let shared = &*self.shared;
        self.workers.get_or_init(|| self.spawn());
        for (t, next) in shared.next.iter().enumerate() {
            next.store(share(t, items, self.threads).0, Ordering::Relaxed);
        }
        shared.panicked.store(false, Ordering::Relaxed);
        // SAFETY (lifetime erasure): the job is taken down below, and this call returns only
        // once no worker is inside it, so no worker calls `f` after it returns.
        let job = Job {
            f: unsafe {
                std::mem::transmute::<&(dyn Fn(usize) + Sync), &'static (dyn Fn(usize) + Sync)>(f)
            },
            items,
        };
        let epoch = shared.epoch.load(Ordering::Relaxed) + 1;
        *lock(&shared.job) = Some((epoch, job));
        // SeqCst store, then SeqCst load of `sleepers`; a worker going to sleep counts itself
        // (SeqCst), then loads the epoch: one of the two sees the other's write, so a worker
        // either sees this job or is counted and woken.
        shared.epoch.store(epoch, Ordering::SeqCst);
        if shared.sleepers.load(Ordering::SeqCst) > 0 {
            let _sleep = lock(&shared.sleep);
            shared.wake.notify_all();
        }
        let mine = catch_unwind(AssertUnwindSafe(|| claim(shared, f, items, 0)));
        // No worker joins from now on; wait for those inside to finish their items.
        *lock(&shared.job) = None;
        while shared.active.load(Ordering::Acquire) != 0 {
            std::hint::spin_loop();
        }
        if let Err(payload) = mine {
            resume_unwind(payload);
        }
        if shared.panicked.load(Ordering::Relaxed) {
            panic!("a dsconv pool worker panicked");
        }
    }

    fn spawn(&self) -> Vec<JoinHandle<()>> {
        (1..self.threads)
            .map(|i| {
                let shared = Arc::clone(&self.shared);
                std::thread::Builder::new()
                    .name(format!("dsconv-{i}"))
                    .spawn(move || worker(&shared, i))
                    .expect("spawning a dsconv worker thread")
            })
            .collect()
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::Release);
        {
            let _sleep = lock(&self.shared.sleep);
            self.shared.wake.notify_all();
        }
        if let Some(workers) = self.workers.take() {
            for w in workers {
                let _ = w.join();
            }
        }
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("threads", &self.threads)
            .field("started", &self.started())
            .finish()
    }
}

/// The global pool's thread count: `DSCONV_THREADS` if it is a positive integer, else the
/// available parallelism.
pub fn threads_from_env() -> usize {
    std::env::var(THREADS_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Thread `t`'s own items of a job of `items` on `threads` threads.
pub(crate) fn share(t: usize, items: usize, threads: usize) -> (usize, usize) {
    (t * items / threads, (t + 1) * items / threads)
}

/// The first item of the share that holds item `i` (of `items` on `threads` threads).
pub(crate) fn share_start(i: usize, items: usize, threads: usize) -> usize {
    (0..threads)
        .map(|t| share(t, items, threads))
        .find(|&(lo, hi)| lo <= i && i < hi)
        .map_or(0, |(lo, _)| lo)
}

/// Claims and runs items until none is left: thread `me`'s own share first, then what is
/// left of the others', in turn. Each share's counter hands out each of its items once.
fn claim(shared: &Shared, f: &(dyn Fn(usize) + Sync), items: usize, me: usize) {
    let threads = shared.next.len();
    for t in (me..threads).chain(0..me) {
        let end = share(t, items, threads).1;
        loop {
            let i = shared.next[t].fetch_add(1, Ordering::Relaxed);
            if i >= end {
                break;
            }
            f(i);
        }
    }
}

fn worker(shared: &Shared, me: usize) {
    IN_WORKER.with(|w| w.set(true));
    let mut seen = 0u64;
    loop {
        // Wait for a new epoch: spin a little, then sleep.
        let mut spins = 0;
        loop {
            if shared.shutdown.load(Ordering::Acquire) {
                return;
            }
            if shared.epoch.load(Ordering::Acquire) != seen {
                break;
            }
            if spins < SPINS {
                spins += 1;
                std::hint::spin_loop();
                continue;
            }
            let mut guard = lock(&shared.sleep);
            shared.sleepers.fetch_add(1, Ordering::SeqCst);
            while shared.epoch.load(Ordering::SeqCst) == seen
                && !shared.shutdown.load(Ordering::Acquire)
            {
                guard = shared.wake.wait(guard).unwrap_or_else(|e| e.into_inner());
            }
            shared.sleepers.fetch_sub(1, Ordering::SeqCst);
        }
        seen = shared.epoch.load(Ordering::Acquire);
        // Join the job if it is still up (under the lock, so the caller cannot take it down
        // between the check and `active`).
        let job = {
            let current = lock(&shared.job);
            match *current {
                Some((epoch, job)) if epoch == seen => {
                    shared.active.fetch_add(1, Ordering::AcqRel);
                    Some(job)
                }
                _ => None,
            }
        };
        if let Some(job) = job {
            let _inside = Inside(&shared.active);
            // SAFETY: the caller keeps `f` alive until `active` is back to 0.
            let f = unsafe { &*job.f };
            if catch_unwind(AssertUnwindSafe(|| claim(shared, f, job.items, me))).is_err() {
                shared.panicked.store(true, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    #[test]
    fn every_item_runs_once() {
        let pool = Pool::new(3);
        for items in [0, 1, 2, 7, 100, 1000] {
            let counts: Vec<AtomicU32> = (0..items).map(|_| AtomicU32::new(0)).collect();
            pool.run(items, &|i| {
                counts[i].fetch_add(1, Ordering::Relaxed);
            });
            assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1));
        }
    }

    #[test]
    fn one_thread_starts_none() {
        let pool = Pool::new(1);
        let sum = AtomicUsize::new(0);
        pool.run(10, &|i| {
            sum.fetch_add(i, Ordering::Relaxed);
        });
        assert_eq!(sum.load(Ordering::Relaxed), 45);
        assert!(!pool.started());
    }

    #[test]
    fn nested_jobs_run_inline() {
        let pool = Pool::new(2);
        let total = AtomicUsize::new(0);
        pool.run(4, &|_| {
            pool.run(3, &|_| {
                total.fetch_add(1, Ordering::Relaxed);
            });
        });
        assert_eq!(total.load(Ordering::Relaxed), 12);
    }

    #[test]
    fn job_threads_is_one_where_a_job_would_run_inline() {
        let (pool, other) = (Pool::new(3), Pool::new(2));
        assert_eq!(pool.job_threads(), 3);
        let seen = Mutex::new(Vec::new());
        pool.run(30, &|_| {
            // On the caller (dispatching) or a worker, a job on this pool runs inline; on
            // the caller, another pool still dispatches.
            let on_worker = IN_WORKER.with(Cell::get);
            let theirs = if on_worker { 1 } else { 2 };
            seen.lock()
                .unwrap()
                .push((pool.job_threads(), other.job_threads() == theirs));
        });
        let seen = seen.into_inner().unwrap();
        assert!(
            seen.iter().all(|&(mine, other)| mine == 1 && other),
            "{seen:?}"
        );
        assert_eq!(pool.job_threads(), 3);
        assert_eq!(Pool::new(1).job_threads(), 1);
    }

    #[test]
    fn install_makes_a_pool_current() {
        let pool = Pool::new(2);
        let threads = pool.install(|| Pool::current(|p| p.threads()));
        assert_eq!(threads, 2);
        assert!(std::ptr::eq(
            Pool::current(|p| p as *const Pool),
            Pool::global() as *const Pool
        ));
    }

    #[test]
    fn a_panicking_item_panics_the_caller() {
        let pool = Pool::new(2);
        let r = catch_unwind(AssertUnwindSafe(|| {
            pool.run(50, &|i| assert!(i != 37, "item 37"));
        }));
        assert!(r.is_err());
        // The pool still works, on both threads: item 1 (the worker's share) marks that a
        // worker ran it; item 0 waits for that mark (up to 10 s). The caller cannot take
        // item 1 while it waits in item 0, so only a worker can set the mark.
        assert_eq!(pool.job_threads(), 2);
        let (marked, seen) = (AtomicBool::new(false), AtomicBool::new(false));
        pool.run(2, &|i| {
            if i == 1 {
                if IN_WORKER.with(Cell::get) {
                    marked.store(true, Ordering::Release);
                }
                return;
            }
            let start = std::time::Instant::now();
            while !marked.load(Ordering::Acquire)
                && start.elapsed() < std::time::Duration::from_secs(10)
            {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            seen.store(marked.load(Ordering::Acquire), Ordering::Relaxed);
        });
        assert!(seen.load(Ordering::Relaxed), "no worker ran item 1");
    }

    #[test]
    fn a_busy_pool_gives_a_job_one_thread() {
        let pool = Pool::new(2);
        let (inside, outside) = (Mutex::new(Vec::new()), std::sync::Barrier::new(2));
        std::thread::scope(|s| {
            // Another thread asks while this one's job holds the pool: 1, and its job runs
            // inline, all of it on that thread.
            let other = s.spawn(|| {
                outside.wait();
                let threads = pool.job_threads();
                let here = std::thread::current().id();
                let ids = Mutex::new(Vec::new());
                pool.run(4, &|_| {
                    ids.lock().unwrap().push(std::thread::current().id())
                });
                outside.wait();
                let ids = ids.into_inner().unwrap();
                (threads, ids.len() == 4 && ids.iter().all(|&id| id == here))
            });
            // Whichever thread runs item 0 holds the job open while the other asks.
            pool.run(2, &|i| {
                if i == 0 {
                    outside.wait();
                    outside.wait();
                }
                inside.lock().unwrap().push(i);
            });
            assert_eq!(other.join().unwrap(), (1, true));
        });
        assert_eq!(inside.into_inner().unwrap().len(), 2);
        assert_eq!(pool.job_threads(), 2);
    }
}
