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
use std::sync::Arc;

use tokio::sync::{Mutex, OwnedMappedMutexGuard, OwnedMutexGuard, OwnedSemaphorePermit, Semaphore};

/// Opens one more connection.
pub(crate) type Connect<C> =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<C, sqlx::Error>> + Send>> + Send + Sync>;

/// Up to `size` connections, opened when first needed.
pub(crate) struct Held<C> {
    slots: Box<[Arc<Mutex<Slot<C>>>]>,
    /// One per slot: a caller holding one is sure to find a free slot.
    turns: Arc<Semaphore>,
    connect: Connect<C>,
    /// A count of connection failures that only grows; a connection opened before it
    /// last moved is opened again when next lent (a connection whose file failed under
    /// it would otherwise fail every statement until a restart).
    failures: fn() -> u64,
}

struct Slot<C> {
    conn: Option<C>,
    /// `failures()` when `conn` was opened.
    opened_at: u64,
}

impl<C: Send + 'static> Held<C> {
    pub(crate) fn new(size: usize, connect: Connect<C>, failures: fn() -> u64) -> Self {
        let size = size.max(1);
        Held {
            slots: (0..size)
                .map(|_| {
                    Arc::new(Mutex::new(Slot {
                        conn: None,
                        opened_at: 0,
                    }))
                })
                .collect(),
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
            // It failed already: whatever closing it says changes nothing.
            slot.conn = None;
        }
        if slot.conn.is_none() {
            slot.conn = Some((self.connect)().await?);
            slot.opened_at = failures;
        }
        let conn = OwnedMutexGuard::try_map(slot, |s| s.conn.as_mut())
            .map_err(|_| sqlx::Error::PoolTimedOut)?;
        Ok(Lent { conn, _turn: turn })
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
            || FAILURES.load(Ordering::SeqCst),
        )
    }

    #[tokio::test]
    async fn connections_are_opened_once_lent_one_at_a_time_and_reopened_after_a_failure() {
        let pool = held(2);
        let a = pool.take().await.unwrap();
        let b = pool.take().await.unwrap();
        assert_ne!(*a, *b);
        // A third caller waits for one to be given back.
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(50), pool.take());
        assert!(waiting.await.is_err());
        let first = *a;
        drop(a);
        let again = pool.take().await.unwrap();
        assert_eq!(
            *again, first,
            "the connection given back is lent again, not reopened"
        );
        drop((again, b));
        let opened = OPENED.load(Ordering::SeqCst);
        FAILURES.fetch_add(1, Ordering::SeqCst);
        let after = pool.take().await.unwrap();
        assert_eq!(
            *after, opened,
            "a connection from before a failure is opened again"
        );
    }
}
