//! Turns on the guest threads, shared fairly between tenants: a guest running there
//! holds a turn, there are as many turns as threads, and a freed turn goes to the
//! tenants waiting in round robin (each tenant's own waiters first come, first served).
//! A tenant with 32 spinning invocations therefore gets one turn in each round, like a
//! tenant with one: it cannot take every guest thread while another tenant waits.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;

pub struct Turns {
    state: Mutex<State>,
    /// Waiters queued: read without the lock by holders deciding whether to pass on.
    waiting: AtomicUsize,
}

#[derive(Default)]
struct State {
    free: usize,
    /// Each tenant's waiters, in arrival order.
    queues: HashMap<Arc<str>, VecDeque<oneshot::Sender<Turn>>>,
    /// Tenants with waiters, in the order their next turn comes.
    ring: VecDeque<Arc<str>>,
}

/// A turn; dropping it passes it on.
pub struct Turn {
    turns: Option<Arc<Turns>>,
}

impl Drop for Turn {
    fn drop(&mut self) {
        if let Some(turns) = self.turns.take() {
            turns.release();
        }
    }
}

impl Turns {
    pub fn new(count: usize) -> Arc<Self> {
        Arc::new(Turns {
            state: Mutex::new(State {
                free: count.max(1),
                ..State::default()
            }),
            waiting: AtomicUsize::new(0),
        })
    }

    /// Whether anyone waits for a turn.
    pub fn contended(&self) -> bool {
        self.waiting.load(Ordering::Relaxed) > 0
    }

    /// A turn for `tenant`, at once if one is free and nobody waits, else in its turn.
    pub async fn take(self: Arc<Self>, tenant: Arc<str>) -> Turn {
        let waiting = {
            let mut state = self.lock();
            if state.free > 0 && state.ring.is_empty() {
                state.free -= 1;
                return Turn {
                    turns: Some(self.clone()),
                };
            }
            let (tx, rx) = oneshot::channel();
            let state = &mut *state;
            let queue = state.queues.entry(tenant.clone()).or_default();
            if queue.is_empty() {
                state.ring.push_back(tenant);
            }
            queue.push_back(tx);
            self.waiting.fetch_add(1, Ordering::Relaxed);
            rx
        };
        // A sender is dropped unsent only when its receiver was gone, so this does
        // not fail; if it did, running without a turn is the harmless way out.
        waiting.await.unwrap_or(Turn { turns: None })
    }

    /// Hands a freed turn to the next tenant in the ring, or keeps it free.
    fn release(self: Arc<Self>) {
        let mut guard = self.lock();
        let state = &mut *guard;
        while let Some(tenant) = state.ring.pop_front() {
            let Some(queue) = state.queues.get_mut(&tenant) else {
                continue;
            };
            let next = queue.pop_front();
            if queue.is_empty() {
                state.queues.remove(&tenant);
            } else {
                state.ring.push_back(tenant);
            }
            let Some(next) = next else { continue };
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            let turn = Turn {
                turns: Some(self.clone()),
            };
            match next.send(turn) {
                Ok(()) => return,
                // The waiter gave up (its invocation ended): disarm, try the next.
                Err(mut turn) => turn.turns = None,
            }
        }
        state.free += 1;
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every change leaves the state whole, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn tenant(name: &str) -> Arc<str> {
        Arc::from(name)
    }

    #[tokio::test]
    async fn a_freed_turn_goes_to_the_next_tenant_not_the_busiest() {
        let turns = Turns::new(1);
        let held = turns.clone().take(tenant("a")).await;
        // Tenant a queues three waiters before b queues one.
        let (tx, mut order) = tokio::sync::mpsc::unbounded_channel();
        let mut waiters = Vec::new();
        for name in ["a", "a", "a", "b"] {
            let (turns, tx) = (turns.clone(), tx.clone());
            waiters.push(tokio::spawn(async move {
                let turn = turns.take(tenant(name)).await;
                tx.send(name).unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
                drop(turn);
            }));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(turns.contended());
        drop(held);
        for w in waiters {
            w.await.unwrap();
        }
        let mut got = Vec::new();
        while let Ok(name) = order.try_recv() {
            got.push(name);
        }
        assert_eq!(got, ["a", "b", "a", "a"]);
        assert!(!turns.contended());
    }

    #[tokio::test]
    async fn a_waiter_that_gave_up_does_not_lose_the_turn() {
        let turns = Turns::new(1);
        let held = turns.clone().take(tenant("a")).await;
        let gave_up = tokio::spawn(turns.clone().take(tenant("b")));
        tokio::time::sleep(Duration::from_millis(5)).await;
        gave_up.abort();
        let _ = gave_up.await;
        drop(held);
        let again = tokio::time::timeout(Duration::from_secs(1), turns.clone().take(tenant("c")));
        assert!(again.await.is_ok(), "the turn was lost");
    }
}
