//! SQLite's one writer at a time, in this process, with webhooks first.
//!
//! Queueing writers here, in order, is much faster than letting them collide and sleep in
//! SQLite's busy handler. The ingest thread ([`super::sqlite_ingest`]) holds requests whose
//! senders wait for their answer (and give up after 10 s), while every other writer is the
//! worker's or an operator's, so it goes first: a writer that gets the lock while the ingest
//! thread waits for it gives it up and queues again. The worker still gets its turns, between the
//! ingest thread's batches, when it has nothing waiting.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{Mutex, MutexGuard, Notify, OwnedMutexGuard};

#[derive(Default)]
pub(crate) struct WriteLock {
    mutex: Arc<Mutex<()>>,
    ingest_waiting: AtomicBool,
    ingest_served: Notify,
}

impl WriteLock {
    /// The ingest thread's turn (blocking: that thread is not async).
    pub(crate) fn ingest(&self) -> MutexGuard<'_, ()> {
        self.ingest_waiting.store(true, Ordering::SeqCst);
        let guard = self.mutex.blocking_lock();
        self.ingest_waiting.store(false, Ordering::SeqCst);
        self.ingest_served.notify_waiters();
        guard
    }

    /// A turn for anything but the ingest thread (a blocking thread of the store's own, for a
    /// moment: the WAL checkpoint's tail).
    pub(crate) fn blocking(&self) -> MutexGuard<'_, ()> {
        self.mutex.blocking_lock()
    }

    /// Every other writer's turn, after the ingest thread's when it waits.
    pub(crate) async fn other(&self) -> OwnedMutexGuard<()> {
        loop {
            let served = self.ingest_served.notified();
            tokio::pin!(served);
            served.as_mut().enable();
            if self.ingest_waiting.load(Ordering::SeqCst) {
                served.await;
                continue;
            }
            let guard = self.mutex.clone().lock_owned().await;
            if !self.ingest_waiting.load(Ordering::SeqCst) {
                return guard;
            }
            drop(guard);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    /// A writer already queued on the mutex when the ingest thread asks still lets it go first
    /// (a plain FIFO mutex would serve the queued writer).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_ingest_thread_goes_before_a_writer_queued_earlier() {
        let lock = Arc::new(WriteLock::default());
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let held = lock.other().await;

        let queued = tokio::spawn({
            let (lock, order) = (lock.clone(), order.clone());
            async move {
                let _guard = lock.other().await;
                order.lock().unwrap().push("worker");
            }
        });
        // The worker is now waiting on the mutex itself.
        tokio::time::sleep(Duration::from_millis(100)).await;

        let ingest = std::thread::spawn({
            let (lock, order) = (lock.clone(), order.clone());
            move || {
                let _guard = lock.ingest();
                order.lock().unwrap().push("ingest");
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        while !lock.ingest_waiting.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        drop(held);

        tokio::task::spawn_blocking(move || ingest.join().unwrap())
            .await
            .unwrap();
        queued.await.unwrap();
        assert_eq!(*order.lock().unwrap(), ["ingest", "worker"]);
    }
}
