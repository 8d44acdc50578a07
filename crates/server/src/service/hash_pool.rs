//! A bounded pool of OS threads for password hashing, so that logins under
//! load queue (or are refused) instead of starving everything else.
//!
//! An Argon2id hash takes tens of milliseconds of one core. On tokio's
//! runtime threads it would stall every other request; on tokio's
//! `spawn_blocking` pool (512 threads by default) a burst of logins would
//! take all cores and delay the SQLite and file work that pool exists for.
//! This pool has its own `max(1, cores − 1)` threads, leaving a core for the
//! runtime, and a bounded queue: when it is full, [`HashPool::run`] answers
//! [`PoolError::Busy`] at once, and the caller answers 503 with Retry-After
//! rather than let latency grow without bound.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// Queued jobs allowed per thread by [`HashPool::default_for_machine`]:
/// at ~30 ms a hash, 64 deep is about two seconds of waiting, the most a
/// login should take before "try again later" is the better answer.
pub const DEFAULT_QUEUE_PER_THREAD: usize = 64;

/// Why a job did not produce its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// The queue is full: answer 503 with Retry-After.
    #[error("the password hashing queue is full; retry shortly")]
    Busy,
    /// The job panicked (the worker thread survives and goes on).
    #[error("a password hashing job failed")]
    Panicked,
}

type Job = Box<dyn FnOnce() + Send + 'static>;

/// The pool. Clones share the same threads and queue; the threads end when
/// the last clone is dropped and the queue is drained.
#[derive(Clone)]
pub struct HashPool {
    sender: SyncSender<Job>,
    /// Jobs accepted and not yet taken by a worker.
    queued: Arc<AtomicUsize>,
    threads: usize,
    capacity: usize,
}

impl std::fmt::Debug for HashPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashPool")
            .field("threads", &self.threads)
            .field("capacity", &self.capacity)
            .field("queued", &self.queued())
            .finish()
    }
}

impl HashPool {
    /// A pool of `threads` workers (at least 1) and room for `queue` waiting
    /// jobs (at least 1).
    pub fn new(threads: usize, queue: usize) -> Self {
        let threads = threads.max(1);
        let capacity = queue.max(1);
        let (sender, receiver) = sync_channel::<Job>(capacity);
        let receiver = Arc::new(Mutex::new(receiver));
        let queued = Arc::new(AtomicUsize::new(0));
        for i in 0..threads {
            let receiver = Arc::clone(&receiver);
            let queued = Arc::clone(&queued);
            std::thread::Builder::new()
                .name(format!("tessera-hash-{i}"))
                .spawn(move || worker(&receiver, &queued))
                .expect("the OS refused to start a hashing thread");
        }
        Self {
            sender,
            queued,
            threads,
            capacity,
        }
    }

    /// `max(1, cores − 1)` threads and [`DEFAULT_QUEUE_PER_THREAD`] queued
    /// jobs per thread.
    pub fn default_for_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let threads = cores.saturating_sub(1).max(1);
        Self::new(threads, DEFAULT_QUEUE_PER_THREAD * threads)
    }

    /// Runs `job` on a pool thread and waits (asynchronously) for its
    /// result. Never blocks the calling thread: a full queue is
    /// [`PoolError::Busy`] at once. If the caller stops waiting before the
    /// job starts, the job is skipped.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PoolError> {
        let (answer, result) = oneshot::channel();
        let wrapped: Job = Box::new(move || {
            if answer.is_closed() {
                return;
            }
            let outcome = catch_unwind(AssertUnwindSafe(job)).map_err(|_| PoolError::Panicked);
            // The caller may have given up meanwhile; nothing to do then.
            let _ = answer.send(outcome);
        });
        // Counted before the send so a worker's decrement never comes first.
        self.queued.fetch_add(1, Ordering::SeqCst);
        if let Err(e) = self.sender.try_send(wrapped) {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(match e {
                TrySendError::Full(_) => PoolError::Busy,
                // Workers only stop when every sender is gone, and we hold one.
                TrySendError::Disconnected(_) => PoolError::Panicked,
            });
        }
        // A dropped answer means the job was lost with its thread.
        result.await.unwrap_or(Err(PoolError::Panicked))
    }

    /// Jobs waiting for a thread (for metrics).
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::SeqCst)
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// How many jobs may wait before [`PoolError::Busy`].
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

/// One worker: takes jobs until every sender is dropped. Jobs catch their
/// own panics, so a panic never ends the thread.
fn worker(receiver: &Mutex<Receiver<Job>>, queued: &AtomicUsize) {
    loop {
        // The lock is held only while waiting for the next job, never while
        // running one; a poisoned lock still guards a usable receiver.
        let next = receiver
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .recv();
        let Ok(job) = next else { return };
        queued.fetch_sub(1, Ordering::SeqCst);
        job();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    async fn results_come_back() {
        let pool = HashPool::new(2, 4);
        let jobs = (0..8u64).map(|i| {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(move || i * i).await })
        });
        let mut got = Vec::new();
        for job in jobs {
            got.push(job.await.unwrap().unwrap());
        }
        assert_eq!(got, [0, 1, 4, 9, 16, 25, 36, 49]);
        assert_eq!(pool.queued(), 0);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn results_come_back_current_thread() {
        results_come_back().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn results_come_back_multi_thread() {
        results_come_back().await;
    }

    /// One thread, room for one waiting job: with the thread held and one job
    /// waiting, the next is refused at once, and the runtime (even a
    /// single-threaded one) goes on.
    async fn full_queue_is_busy_at_once() {
        let pool = HashPool::new(1, 1);
        let (started_tx, started) = mpsc::channel();
        let (release, release_rx) = mpsc::channel::<()>();
        let holder = tokio::spawn({
            let pool = pool.clone();
            async move {
                pool.run(move || {
                    started_tx.send(()).unwrap();
                    release_rx.recv().unwrap();
                    "held"
                })
                .await
            }
        });
        // The worker has taken the first job once it says so.
        while started.try_recv().is_err() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let waiting = tokio::spawn({
            let pool = pool.clone();
            async move { pool.run(|| "waited").await }
        });
        let deadline = Instant::now() + Duration::from_secs(5);
        while pool.queued() < 1 {
            assert!(Instant::now() < deadline, "second job never queued");
            tokio::task::yield_now().await;
        }
        let start = Instant::now();
        assert_eq!(pool.run(|| "refused").await, Err(PoolError::Busy));
        assert!(start.elapsed() < Duration::from_millis(100));
        assert_eq!(pool.queued(), 1);
        release.send(()).unwrap();
        assert_eq!(holder.await.unwrap(), Ok("held"));
        assert_eq!(waiting.await.unwrap(), Ok("waited"));
        assert_eq!(pool.queued(), 0);
        assert_eq!(pool.run(|| "again").await, Ok("again"));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn full_queue_is_busy_at_once_current_thread() {
        full_queue_is_busy_at_once().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn full_queue_is_busy_at_once_multi_thread() {
        full_queue_is_busy_at_once().await;
    }

    async fn a_panicking_job_does_not_kill_its_thread() {
        let pool = HashPool::new(1, 4);
        let panicked = pool.run(|| -> u32 { panic!("job failed on purpose") });
        assert_eq!(panicked.await, Err(PoolError::Panicked));
        // The only thread is still there to run the next job.
        assert_eq!(pool.run(|| 7).await, Ok(7));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_panicking_job_does_not_kill_its_thread_current_thread() {
        a_panicking_job_does_not_kill_its_thread().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_job_does_not_kill_its_thread_multi_thread() {
        a_panicking_job_does_not_kill_its_thread().await;
    }

    #[test]
    fn sizes_are_at_least_one() {
        let pool = HashPool::new(0, 0);
        assert_eq!((pool.threads(), pool.capacity()), (1, 1));
        let pool = HashPool::default_for_machine();
        assert!(pool.threads() >= 1);
        assert_eq!(pool.capacity(), DEFAULT_QUEUE_PER_THREAD * pool.threads());
    }

    /// The pool's reason to exist: a real Argon2id hash runs on it.
    #[tokio::test(flavor = "current_thread")]
    async fn hashes_a_password() {
        use tessera_core::password::{hash_password, verify_password, HashParams, Verified};
        let pool = HashPool::new(1, 2);
        let stored = pool
            .run(|| hash_password("correct horse battery staple", &HashParams::DEFAULT))
            .await
            .unwrap();
        let verified = pool
            .run(move || {
                verify_password(
                    "correct horse battery staple",
                    &stored,
                    &HashParams::DEFAULT,
                )
            })
            .await
            .unwrap();
        assert_eq!(
            verified,
            Ok(Verified::Match {
                needs_rehash: false
            })
        );
    }
}
