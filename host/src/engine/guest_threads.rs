//! Where guest code runs. An invocation starts on the thread that took its trigger (no
//! hand-off for the usual plugin that answers in microseconds) and, once it has run
//! through `EngineLimits::inline_ticks` epoch ticks, moves to the guest threads: a runtime of their
//! own, at a lower OS priority than the threads that poll the network, on which it
//! runs only while it holds a turn (`Turns`). Run time is counted in epoch ticks the
//! guest's code ran through, not wall time: a guest delayed by the host (waiting for a
//! turn, or its thread preempted) has not run long. So a spinning guest holds an I/O thread
//! for at most about one epoch tick past its inline time, and then competes only with
//! other guests, tenant by tenant. A plugin whose last invocation ran that long starts
//! its next one on the guest threads directly (`PluginContext::runs_long`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use wasmtime::UpdateDeadline;

use super::turns::{Turn, Turns};

/// The guest threads' runtime. Shut down without waiting when the engine goes.
pub struct GuestThreads {
    runtime: Option<tokio::runtime::Runtime>,
    pub turns: Arc<Turns>,
}

impl GuestThreads {
    /// `threads` workers (0: one per core but one, at least one) at nice value `nice`.
    pub fn start(threads: usize, nice: i32) -> std::io::Result<Self> {
        let threads = match threads {
            0 => {
                std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
            }
            n => n,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("orquesta-guest")
            .enable_all()
            .on_thread_start(move || lower_priority(nice))
            .build()?;
        Ok(GuestThreads {
            runtime: Some(runtime),
            turns: Turns::new(threads),
        })
    }

    /// Runs `work` on the guest threads in the background (the host's own upkeep).
    pub fn spawn(&self, work: impl Future<Output = ()> + Send + 'static) {
        if let Some(runtime) = &self.runtime {
            runtime.spawn(work);
        }
    }

    /// Runs `work` to its end on the guest threads, taking turns as `tenant`; `None`
    /// if it passed `deadline`.
    pub async fn finish<T: Send + 'static>(
        &self,
        work: Pin<Box<dyn Future<Output = T> + Send>>,
        slice: Arc<Slice>,
        tenant: &str,
        deadline: Instant,
    ) -> Result<Option<T>, String> {
        let Some(runtime) = &self.runtime else {
            return Err("the guest threads are shut down".into());
        };
        slice.moved();
        let on_turns = OnTurns {
            work,
            slice,
            turns: self.turns.clone(),
            tenant: Arc::from(tenant),
            turn: None,
            waiting: None,
        };
        let task = runtime.spawn(async move {
            tokio::time::timeout_at(deadline.into(), on_turns)
                .await
                .ok()
        });
        let mut task = AbortOnDrop(task);
        (&mut task.0)
            .await
            .map_err(|e| format!("the guest task failed: {e}"))
    }
}

impl Drop for GuestThreads {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // Dropping a runtime waits for its threads, which async code must not do.
            runtime.shutdown_background();
        }
    }
}

/// Dropping the caller's future (a client gone) cancels the invocation, as it did
/// when the guest ran on the caller's task.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Where an invocation is, for its epoch callback.
pub struct Slice {
    /// Ticks the guest's code ran through so far, and how many it may run inline.
    ticks: AtomicU32,
    inline: u32,
    place: AtomicU8,
    /// Set by the epoch callback on the guest threads: the next `Pending` is a yield,
    /// not a wait on a host call.
    yielded: AtomicBool,
    /// When the invocation was last polled (nanoseconds since `created`), and the epoch
    /// tick: a deadline that passed while the guest was not running is not run time.
    created: Instant,
    resumed_ns: AtomicU64,
    tick_ns: u64,
}

const INLINE: u8 = 0;
const MOVING: u8 = 1;
const MOVED: u8 = 2;

impl Slice {
    pub fn new(inline_ticks: u32, tick: Duration) -> Arc<Self> {
        Arc::new(Slice {
            ticks: AtomicU32::new(0),
            inline: inline_ticks,
            place: AtomicU8::new(INLINE),
            yielded: AtomicBool::new(false),
            created: Instant::now(),
            resumed_ns: AtomicU64::new(0),
            tick_ns: u64::try_from(tick.as_nanos()).unwrap_or(u64::MAX),
        })
    }

    /// The invocation is about to be polled: its guest code may run from now on.
    pub fn resume(&self) {
        self.resumed_ns.store(self.elapsed_ns(), Ordering::Relaxed);
    }

    fn elapsed_ns(&self) -> u64 {
        u64::try_from(self.created.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// At an epoch tick: yield (to the runtime's I/O and timers first, as
    /// `tokio::task::yield_now` does), asking to move once past the inline time.
    pub fn tick(&self) -> UpdateDeadline {
        // The deadline passed while the guest was not running (it had yielded, waited
        // for a turn or for a host call), so the first check after a resume, microseconds
        // in, finds it: not run time. Counting it sent plugins that answer in
        // microseconds to the guest threads under load, and yielding again at once left a
        // delayed guest yielding on every resume. A tenth of a tick tells the two apart
        // (a real tick lands anywhere in the tick after a resume).
        let running = self
            .elapsed_ns()
            .saturating_sub(self.resumed_ns.load(Ordering::Relaxed));
        if running < self.tick_ns / 10 {
            return UpdateDeadline::Continue(1);
        }
        let ticks = self.ticks.fetch_add(1, Ordering::Relaxed) + 1;
        match self.place.load(Ordering::Relaxed) {
            INLINE if ticks >= self.inline => self.place.store(MOVING, Ordering::Relaxed),
            MOVED => self.yielded.store(true, Ordering::Relaxed),
            _ => {}
        }
        UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now()))
    }

    /// Whether the guest ran through its inline ticks: a plugin that does is started
    /// on the guest threads next time.
    pub fn ran_long(&self) -> bool {
        self.ticks.load(Ordering::Relaxed) >= self.inline
    }

    /// Whether the invocation, having just yielded, should move to the guest threads.
    pub fn wants_to_move(&self) -> bool {
        self.place.load(Ordering::Relaxed) == MOVING
    }

    fn moved(&self) {
        self.place.store(MOVED, Ordering::Relaxed);
    }
}

/// Polls the invocation only while holding a turn. At a tick the turn passes on if
/// anyone waits; while the guest waits on a host call, it holds none.
struct OnTurns<T> {
    work: Pin<Box<dyn Future<Output = T> + Send>>,
    slice: Arc<Slice>,
    turns: Arc<Turns>,
    tenant: Arc<str>,
    turn: Option<Turn>,
    waiting: Option<Pin<Box<dyn Future<Output = Turn> + Send>>>,
}

impl<T> Future for OnTurns<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let this = &mut *self;
        loop {
            if this.turn.is_none() {
                let waiting = this
                    .waiting
                    .get_or_insert_with(|| Box::pin(this.turns.clone().take(this.tenant.clone())));
                match waiting.as_mut().poll(cx) {
                    Poll::Ready(turn) => {
                        this.turn = Some(turn);
                        this.waiting = None;
                    }
                    Poll::Pending => return Poll::Pending,
                }
            }
            this.slice.resume();
            if let Poll::Ready(out) = this.work.as_mut().poll(cx) {
                this.turn = None;
                return Poll::Ready(out);
            }
            let yielded = this.slice.yielded.swap(false, Ordering::Relaxed);
            if yielded && !this.turns.contended() {
                return Poll::Pending;
            }
            // Waiting on a host call, or others wait: pass the turn on. After a yield,
            // queue again at once (the yield has already asked to be polled again).
            this.turn = None;
            if !yielded {
                return Poll::Pending;
            }
        }
    }
}

/// Lowers the calling thread's scheduling priority (Linux's nice value is per thread).
fn lower_priority(nice: i32) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `gettid` and `setpriority` take plain integers and change only this
        // thread's scheduling.
        let result = unsafe {
            let tid = libc::gettid();
            libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice)
        };
        if result != 0 {
            tracing::warn!(nice, error = %std::io::Error::last_os_error(),
                "cannot lower the guest threads' priority");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: Duration = Duration::from_millis(5);

    /// A deadline that passed while the guest was not running neither counts nor yields:
    /// a plugin delayed under load is not sent to the guest threads for it.
    #[test]
    fn a_tick_right_after_a_resume_is_not_run_time() {
        let slice = Slice::new(2, TICK);
        std::thread::sleep(TICK * 2);
        slice.resume();
        assert!(matches!(slice.tick(), UpdateDeadline::Continue(1)));
        assert!(matches!(slice.tick(), UpdateDeadline::Continue(1)));
        assert!(!slice.ran_long());
        assert!(!slice.wants_to_move());
    }

    #[test]
    fn ticks_while_running_count_and_move_the_guest() {
        let slice = Slice::new(2, TICK);
        slice.resume();
        std::thread::sleep(TICK);
        assert!(matches!(slice.tick(), UpdateDeadline::YieldCustom(1, _)));
        assert!(!slice.wants_to_move());
        std::thread::sleep(TICK);
        assert!(matches!(slice.tick(), UpdateDeadline::YieldCustom(1, _)));
        assert!(slice.ran_long());
        assert!(slice.wants_to_move());
    }
}
