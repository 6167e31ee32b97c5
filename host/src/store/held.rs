//! SQLite connections held open for the life of their owner and lent to one caller at a
//! time: the store's readers and each tenant SQLite database. sqlx's pool costs every
//! statement on SQLite round trips to the connection's thread besides the statement's
//! own: a ping when a connection is taken (unless turned off) and another, always, when
//! it is given back, from a task spawned for it. Measured on the appointments flow, whose
//! messages each make a few reads and tenant statements. (The store's writer is one held
//! connection already, `store::Writer::Held`.)

use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::{Mutex, OwnedMappedMutexGuard, OwnedMutexGuard, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Opens one more connection.
pub(crate) type Connect<C> =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<C, sqlx::Error>> + Send>> + Send + Sync>;

/// A count of connection failures that only grows.
pub(crate) type Failures = Arc<dyn Fn() -> u64 + Send + Sync>;

/// Up to `size` connections, opened when first needed.
pub(crate) struct Held<C> {
    slots: Arc<[Arc<Mutex<Slot<C>>>]>,
    /// One per slot: a caller holding one is sure to find a free slot.
    turns: Arc<Semaphore>,
    connect: Connect<C>,
    /// A count of connection failures that only grows; a connection opened before it
    /// last moved is opened again when next lent (a connection whose file failed under
    /// it would otherwise fail every statement until a restart).
    failures: Failures,
}

struct Slot<C> {
    conn: Option<C>,
    /// `failures()` when `conn` was opened.
    opened_at: u64,
    /// When it was last lent.
    lent_at: Instant,
}

impl<C: Send + 'static> Held<C> {
    /// With `idle`, a connection not lent for that long is closed (checked a few times
    /// per `idle`, until the `Held` is dropped): an idle tenant database keeps no
    /// thread, file or page cache, as sqlx's pool closed its idle connections.
    pub(crate) fn new(
        size: usize,
        connect: Connect<C>,
        failures: Failures,
        idle: Option<Duration>,
    ) -> Self {
        let size = size.max(1);
        let slots: Arc<[Arc<Mutex<Slot<C>>>]> = (0..size)
            .map(|_| {
                Arc::new(Mutex::new(Slot {
                    conn: None,
                    opened_at: 0,
                    lent_at: Instant::now(),
                }))
            })
            .collect();
        if let (Some(idle), Ok(runtime)) = (idle, tokio::runtime::Handle::try_current()) {
            runtime.spawn(close_idle(Arc::downgrade(&slots), idle));
        }
        Held {
            slots,
            turns: Arc::new(Semaphore::new(size)),
            connect,
            failures,
        }
    }

    /// A connection, once one is free; opened first if the slot has none (or had one
    /// from before a failure).
    pub(crate) async fn take(&self) -> Result<Lent<C>, sqlx::Error> {
        let turn = self
            .turns
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        // At most `slots.len()` turns are out, each holding at most one slot.
        let mut slot = self
            .slots
            .iter()
            .find_map(|s| s.clone().try_lock_owned().ok())
            .ok_or(sqlx::Error::PoolTimedOut)?;
        let failures = (self.failures)();
        if slot.conn.is_some() && slot.opened_at != failures {
            // Opened before a failure: it may be the one that failed.
            slot.conn = None;
        }
        slot.lent_at = Instant::now();
        if slot.conn.is_none() {
            slot.conn = Some((self.connect)().await?);
            slot.opened_at = failures;
        }
        let conn = OwnedMutexGuard::try_map(slot, |s| s.conn.as_mut())
            .map_err(|_| sqlx::Error::PoolTimedOut)?;
        Ok(Lent { conn, _turn: turn })
    }
}

/// Closes the connections of `slots` not lent for `idle`, until they are dropped.
async fn close_idle<C>(slots: Weak<[Arc<Mutex<Slot<C>>>]>, idle: Duration) {
    let mut every = tokio::time::interval(idle / 4);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(slots) = slots.upgrade() else {
            return;
        };
        for slot in slots.iter() {
            // One lent now is in use: not idle.
            if let Ok(mut slot) = slot.try_lock()
                && slot.lent_at.elapsed() >= idle
            {
                slot.conn = None;
            }
        }
    }
}

/// A connection lent by [`Held::take`], given back when dropped.
pub(crate) struct Lent<C> {
    // Declared first, so dropped first: the slot is free before its turn is.
    conn: OwnedMappedMutexGuard<Slot<C>, C>,
    _turn: OwnedSemaphorePermit,
}

impl<C> Deref for Lent<C> {
    type Target = C;

    fn deref(&self) -> &C {
        &self.conn
    }
}

impl<C> DerefMut for Lent<C> {
    fn deref_mut(&mut self) -> &mut C {
        &mut self.conn
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    static FAILURES: AtomicU64 = AtomicU64::new(0);
    static OPENED: AtomicU64 = AtomicU64::new(0);

    fn held(size: usize) -> Held<u64> {
        Held::new(
            size,
            Arc::new(|| Box::pin(async { Ok(OPENED.fetch_add(1, Ordering::SeqCst)) })),
            Arc::new(|| FAILURES.load(Ordering::SeqCst)),
            None,
        )
    }

    #[tokio::test]
    async fn connections_are_opened_once_lent_one_at_a_time_and_reopened_after_a_failure() {
        let pool = held(2);
        let a = pool.take().await.unwrap();
        let b = pool.take().await.unwrap();
        assert_ne!(*a, *b);
        // A third caller waits for one to be given back.
        let waiting = tokio::time::timeout(Duration::from_millis(50), pool.take());
        assert!(waiting.await.is_err());
        let first = *a;
        drop(a);
        let again = pool.take().await.unwrap();
        assert_eq!(
            *again, first,
            "the connection given back is lent again, not reopened"
        );
        let second = *b;
        drop((again, b));
        FAILURES.fetch_add(1, Ordering::SeqCst);
        let after = pool.take().await.unwrap();
        assert!(
            *after != first && *after != second,
            "a connection from before a failure is opened again"
        );
    }

    #[tokio::test]
    async fn a_connection_not_lent_for_the_idle_time_is_closed() {
        // Margins of seconds either side: the suite runs on a loaded machine. No
        // failures counted (the other test moves `FAILURES`, which would reopen it).
        let pool: Held<u64> = Held::new(
            1,
            Arc::new(|| Box::pin(async { Ok(OPENED.fetch_add(1, Ordering::SeqCst)) })),
            Arc::new(|| 0),
            Some(Duration::from_secs(2)),
        );
        let first = *pool.take().await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            *pool.take().await.unwrap(),
            first,
            "in use within the idle time"
        );
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_ne!(
            *pool.take().await.unwrap(),
            first,
            "closed once idle, then reopened"
        );
    }
}
