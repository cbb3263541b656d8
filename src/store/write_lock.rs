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
