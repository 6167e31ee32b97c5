//! Warm instances, opt-in per plugin (`[plugins.NAME.warm]`): an instance that answered
//! without a trap serves the next invocations of the same plugin of the same tenant, one
//! at a time, as a warm Lambda environment does. Its module globals survive between
//! them (the seeds' token caches work as written), which is the point: an interpreter
//! image (Python, JavaScript) costs milliseconds to instantiate and microseconds to call.
//!
//! An instance is never shared across tenants or plugins: its pool belongs to one
//! plugin's context, and a context to one tenant. It is discarded after a trap, a
//! timeout or a memory refusal (its state may be broken), after `max_uses` invocations,
//! after `idle` without one, when the plugin's component changes, and when its tenant is
//! reloaded or removed (`WarmPool::close`). Idle instances keep their pool slots, so
//! those they may hold host-wide are capped (`Registry`); past the cap the least recently
//! used one anywhere gives its slots up.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::Store;
use wasmtime::component::Instance;

use super::Invocation;
use super::output::CapturedOutput;

/// How one plugin's warm instances are kept (the tenant file's `[plugins.NAME.warm]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WarmSettings {
    /// Idle instances kept at most; more in flight at once run on fresh ones.
    pub instances: u32,
    /// Invocations one instance serves before it is discarded.
    pub max_uses: u32,
    /// How long an instance is kept without an invocation.
    pub idle: Duration,
}

/// An instance between its invocations, with what it holds.
pub(super) struct Warm {
    pub store: Store<Invocation>,
    pub instance: Instance,
    /// The component it is an instance of: a redeployed plugin's old instances go.
    pub hash: String,
    /// Invocations it has served.
    pub uses: u32,
    pub stdout: CapturedOutput,
    pub stderr: CapturedOutput,
    /// Its pool slots, held as long as the instance lives.
    pub slots: OwnedSemaphorePermit,
    pub slot_count: u32,
}

struct Idle {
    warm: Warm,
    since: Instant,
    /// Its share of the slots idle instances may hold host-wide.
    _held: OwnedSemaphorePermit,
}

/// One plugin's idle instances.
pub struct WarmPool {
    settings: WarmSettings,
    idle: Mutex<VecDeque<Idle>>,
    closed: AtomicBool,
    registered: AtomicBool,
}

impl WarmPool {
    pub fn new(settings: WarmSettings) -> Arc<Self> {
        Arc::new(WarmPool {
            settings,
            idle: Mutex::default(),
            closed: AtomicBool::new(false),
            registered: AtomicBool::new(false),
        })
    }

    pub fn settings(&self) -> WarmSettings {
        self.settings
    }

    /// Idle instances now.
    pub fn idle(&self) -> usize {
        self.lock().len()
    }

    /// Discards every idle instance and keeps none from now on: the tenant's config this
    /// pool was made for no longer serves. (An idle instance's store holds the plugin's
    /// context, which holds this pool: closing also ends that cycle.)
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        let drained: Vec<Idle> = self.lock().drain(..).collect();
        drop(drained);
    }

    /// The most recently used idle instance of component `hash`, if one is fresh enough;
    /// stale ones met on the way are discarded.
    pub(super) fn take(&self, hash: &str) -> Option<Warm> {
        let now = Instant::now();
        let mut stale = Vec::new();
        let found = {
            let mut idle = self.lock();
            loop {
                match idle.pop_back() {
                    None => break None,
                    Some(i) if i.warm.hash == hash && now < i.since + self.settings.idle => {
                        break Some(i.warm);
                    }
                    Some(i) => stale.push(i),
                }
            }
        };
        // Dropping a store frees its slots; outside the lock.
        drop(stale);
        found
    }

    /// Keeps `warm`, which has just served an invocation without a fault, for the next
    /// one, unless it has served its uses, the pool is closed or full of newer ones, or
    /// no host-wide share is left even after the least recently used one gives its up.
    pub(super) fn put(self: &Arc<Self>, warm: Warm, registry: &Arc<Registry>) {
        if warm.uses >= self.settings.max_uses || self.closed.load(Ordering::Relaxed) {
            return;
        }
        if !self.registered.swap(true, Ordering::Relaxed) {
            registry.register(self);
        }
        let Some(held) = registry.hold(warm.slot_count) else {
            return;
        };
        let evicted = {
            let mut idle = self.lock();
            let evicted = if idle.len() >= self.settings.instances as usize {
                idle.pop_front()
            } else {
                None
            };
            idle.push_back(Idle {
                warm,
                since: Instant::now(),
                _held: held,
            });
            evicted
        };
        drop(evicted);
    }

    /// Discards the instances idle past the pool's `idle`.
    fn sweep(&self, now: Instant) {
        let expired: Vec<Idle> = {
            let mut idle = self.lock();
            let keep = idle
                .iter()
                .position(|i| now < i.since + self.settings.idle)
                .unwrap_or(idle.len());
            // Oldest first: the expired ones are a prefix.
            idle.drain(..keep).collect()
        };
        drop(expired);
    }

    /// When its least recently used idle instance went idle.
    fn oldest(&self) -> Option<Instant> {
        self.lock().front().map(|i| i.since)
    }

    fn evict_oldest(&self) -> bool {
        let evicted = self.lock().pop_front();
        evicted.is_some()
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Idle>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The engine's warm pools, for the sweep, and the pool slots idle instances may hold
/// host-wide: a quarter of the pool (`EngineLimits::warm_slots`), so fresh invocations
/// always find most of it, however many warm plugins tenants configure.
pub(super) struct Registry {
    held: Arc<Semaphore>,
    /// `held`'s permits in all.
    capacity: u32,
    pools: Mutex<Vec<Weak<WarmPool>>>,
}

impl Registry {
    pub fn new(slots: u32) -> Arc<Self> {
        Arc::new(Registry {
            held: Arc::new(Semaphore::new(slots as usize)),
            capacity: slots,
            pools: Mutex::default(),
        })
    }

    fn register(&self, pool: &Arc<WarmPool>) {
        let mut pools = self.lock();
        pools.retain(|p| p.strong_count() > 0);
        pools.push(Arc::downgrade(pool));
    }

    /// A share of `slots` for an instance going idle; when none is left, the least
    /// recently used idle instance host-wide gives its up first (so one tenant's many
    /// warm plugins cannot keep every other tenant's instances cold).
    fn hold(&self, slots: u32) -> Option<OwnedSemaphorePermit> {
        // An instance larger than the whole share is never kept: evicting every other
        // idle instance would not make room for it.
        if slots > self.capacity {
            return None;
        }
        for _ in 0..8 {
            if let Ok(held) = self.held.clone().try_acquire_many_owned(slots) {
                return Some(held);
            }
            let oldest = self
                .live()
                .into_iter()
                .filter_map(|p| p.oldest().map(|since| (since, p)))
                .min_by_key(|(since, _)| *since);
            match oldest {
                Some((_, pool)) if pool.evict_oldest() => {}
                _ => return None,
            }
        }
        None
    }

    fn live(&self) -> Vec<Arc<WarmPool>> {
        self.lock().iter().filter_map(Weak::upgrade).collect()
    }

    /// Discards every instance idle too long, in every pool.
    pub fn sweep(&self) {
        let now = Instant::now();
        for pool in self.live() {
            pool.sweep(now);
        }
        self.lock().retain(|p| p.strong_count() > 0);
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Weak<WarmPool>>> {
        self.pools.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// How often idle instances past their time are looked for: an instance lives at most
/// this much past its `idle`.
pub(super) const SWEEP_EVERY: Duration = Duration::from_secs(1);
