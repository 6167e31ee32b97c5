//! Wakes a queue's idle consumers on this host when a message is sent to it here. One
//! `Notify` per queue: with one for the whole host, every send woke every idle consumer
//! of every tenant's queues, and each then claimed from its own queue for nothing, a
//! statement on the store's single SQLite writer (on the appointments flow, several
//! empty claims for each message sent).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;

/// The queues of this host's consumers, by tenant and queue name.
#[derive(Default)]
pub struct QueueWakes {
    queues: Mutex<HashMap<String, HashMap<String, Arc<Notify>>>>,
}

impl QueueWakes {
    /// What `tenant`'s consumers of `queue` wait on. An entry stays once made (a queue
    /// removed keeps a few bytes until the host restarts); only consumers make them.
    pub fn of(&self, tenant: &str, queue: &str) -> Arc<Notify> {
        let mut queues = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
        queues
            .entry(tenant.to_string())
            .or_default()
            .entry(queue.to_string())
            .or_default()
            .clone()
    }

    /// A message was sent to `tenant`'s `queue` on this host.
    pub fn wake(&self, tenant: &str, queue: &str) {
        let queues = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(notify) = queues.get(tenant).and_then(|q| q.get(queue)) {
            notify.notify_waiters();
        }
    }

    /// Messages may have reached any of `tenant`'s queues (a redrive).
    pub fn wake_tenant(&self, tenant: &str) {
        let queues = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
        for notify in queues.get(tenant).into_iter().flat_map(HashMap::values) {
            notify.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn woken(notified: tokio::sync::futures::Notified<'_>) -> bool {
        tokio::time::timeout(Duration::from_millis(50), notified)
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn a_send_wakes_its_own_queues_consumers_only() {
        let wakes = QueueWakes::default();
        let (pe, cl, other) = (
            wakes.of("a", "pe"),
            wakes.of("a", "cl"),
            wakes.of("b", "pe"),
        );
        let (pe_w, cl_w, other_w) = (pe.notified(), cl.notified(), other.notified());
        wakes.wake("a", "pe");
        assert!(woken(pe_w).await);
        assert!(!woken(cl_w).await, "another queue's consumer woke");
        assert!(!woken(other_w).await, "another tenant's consumer woke");
        // A queue nobody consumes here: nothing to wake, nothing made.
        wakes.wake("a", "unconsumed");
        assert!(!wakes.queues.lock().unwrap()["a"].contains_key("unconsumed"));
        let (pe_w, cl_w, other_w) = (pe.notified(), cl.notified(), other.notified());
        wakes.wake_tenant("a");
        assert!(woken(pe_w).await && woken(cl_w).await);
        assert!(!woken(other_w).await);
    }
}
