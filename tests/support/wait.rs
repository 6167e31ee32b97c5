//! Waiting on a condition with a deadline instead of sleeping a fixed time: a wait ends
//! as soon as what it waits for has happened, and on a loaded machine it waits longer
//! rather than failing, up to a deadline whose failure says what never happened.

use std::time::{Duration, Instant};

/// How often a condition is polled: often enough that a wait ends soon after it holds,
/// seldom enough not to load the server it asks.
const POLL: Duration = Duration::from_millis(10);

/// Polls `probe` until it gives `Some`, and returns that; panics after `limit` saying
/// `what` was awaited.
pub async fn wait_for<T>(
    what: &str,
    limit: Duration,
    mut probe: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Polls `check` until it holds; panics after `limit` saying `what` was awaited.
pub async fn wait_until(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> bool) {
    wait_for(what, limit, async || check().await.then_some(())).await
}

/// Polls `check` for all of `period` (a negative wait: nothing may happen in it), and
/// panics as soon as it fails, saying `what` should have held.
pub async fn holds_for(what: &str, period: Duration, mut check: impl AsyncFnMut() -> bool) {
    let end = Instant::now() + period;
    loop {
        assert!(check().await, "{what} stopped holding within {period:?}");
        if Instant::now() >= end {
            return;
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn a_wait_ends_when_the_condition_holds() {
        let polls = AtomicU32::new(0);
        let started = Instant::now();
        let n = wait_for("the third poll", Duration::from_secs(5), || async {
            let n = polls.fetch_add(1, Ordering::Relaxed) + 1;
            (n == 3).then_some(n)
        })
        .await;
        assert_eq!(n, 3);
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test]
    #[should_panic(expected = "waiting for never")]
    async fn a_wait_past_its_deadline_says_what_it_waited_for() {
        wait_until("never", Duration::from_millis(50), || async { false }).await;
    }

    #[tokio::test]
    #[should_panic(expected = "quiet stopped holding")]
    async fn a_negative_wait_fails_at_the_first_wrong_arrival() {
        let polls = AtomicU32::new(0);
        holds_for("quiet", Duration::from_secs(60), || async {
            polls.fetch_add(1, Ordering::Relaxed) < 2
        })
        .await;
    }
}
