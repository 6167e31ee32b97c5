//! The host registry: every `orquesta serve` process writes a heartbeat row (its id, the
//! address it advertises, its version, what it serves, its invocations in flight) every
//! `heartbeat_ms`, so any host of a shared store can list them all. A host whose last
//! heartbeat is older than [`GONE_AFTER_BEATS`] of its own intervals is listed as gone (a
//! host stopped cleanly says so itself); both are kept for [`KEEP_MS`], then pruned.
//! Times are the writing host's clock, as leases already are: hosts sharing a store must
//! keep their clocks in step (NTP).

use serde::{Deserialize, Serialize};

use super::{Store, StoreError};

/// Heartbeats a host may miss before it is listed as gone: one late beat (a slow store, a
/// pause) is not a host gone, three in a row is.
pub const GONE_AFTER_BEATS: i64 = 3;
/// How long a gone or stopped host stays listed: a day, so the hosts an incident took
/// down can still be seen the morning after. Each start of a process is a row of its
/// own, so rolling restarts leave rows that go away after this.
pub const KEEP_MS: i64 = 24 * 3600 * 1000;

/// One heartbeat of this host.
#[derive(Debug, Clone)]
pub struct HostBeat {
    /// A UUID made when the process started.
    pub id: String,
    /// Where others reach it (`advertise` in its config).
    pub address: String,
    pub version: String,
    /// Milliseconds since the Unix epoch.
    pub started_at: i64,
    /// Its heartbeat interval: the others judge it gone by its own.
    pub heartbeat_ms: u64,
    /// Invocations running on it now.
    pub in_flight: u64,
    /// What it serves, as JSON (`[ServedTenant]`); `None`: unchanged since its last
    /// beat, so the list (a row per tenant, for a host of a thousand) is not rewritten
    /// every few seconds.
    pub tenants: Option<String>,
}

/// A tenant a host serves, and the components its plugins run there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ServedTenant {
    #[schema(example = "acme")]
    pub name: String,
    pub plugins: Vec<ServedPlugin>,
}

/// A plugin of a served tenant and the version of its component on that host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ServedPlugin {
    /// The plugin's name in the tenant file.
    #[schema(example = "orders")]
    pub name: String,
    /// The component it runs (the catalog's name).
    #[schema(example = "hello")]
    pub component: String,
    /// SHA-256 of the component serving there; absent while it is not deployed.
    #[schema(example = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")]
    pub hash: Option<String>,
}

/// Whether a listed host is serving.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(example = "up")]
pub enum HostState {
    /// Heartbeating.
    Up,
    /// Shut down cleanly.
    Stopped,
    /// No heartbeat for [`GONE_AFTER_BEATS`] of its intervals: killed, or cut off from
    /// the store. Its leases (queue batches, workflow executions) pass to the other
    /// hosts as they expire, as they always do.
    Gone,
}

/// A host as the admin API lists it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ListedHost {
    #[schema(example = "0b6f9a8e-2d4c-4a53-9d43-1b8f0f5e7c21")]
    pub id: String,
    /// Where it is reached (its `advertise` setting, by default its listen address).
    #[schema(example = "http://10.0.3.17:8080")]
    pub address: String,
    #[schema(example = "0.1.0")]
    pub version: String,
    pub state: HostState,
    /// Milliseconds since the Unix epoch.
    #[schema(example = 1_795_305_600_000_i64)]
    pub started_at: i64,
    /// Its last heartbeat, milliseconds since the Unix epoch.
    #[schema(example = 1_795_305_655_000_i64)]
    pub heartbeat_at: i64,
    /// Its heartbeat interval.
    #[schema(example = 5000)]
    pub heartbeat_ms: u64,
    /// When it shut down cleanly.
    pub stopped_at: Option<i64>,
    /// Invocations running on it at its last heartbeat.
    #[schema(example = 3)]
    pub in_flight: u64,
    /// The tenants it serves (served, for a gone or stopped host) and their plugins'
    /// components.
    pub tenants: Vec<ServedTenant>,
}

type HostRow = (
    String,
    String,
    String,
    i64,
    i64,
    i64,
    Option<i64>,
    i64,
    String,
);

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Store {
    /// Records `beat` at `now`. With its tenants it writes the whole row; without, it
    /// updates the heartbeat alone and answers `false` when the host has no row (pruned
    /// while it was cut off for longer than [`KEEP_MS`]): write it whole then.
    pub async fn host_beat(&self, beat: &HostBeat, now: i64) -> Result<bool, StoreError> {
        let heartbeat_ms = to_i64(beat.heartbeat_ms);
        let in_flight = to_i64(beat.in_flight);
        let Some(tenants) = &beat.tenants else {
            let updated = sqlx::query(
                "UPDATE hosts SET heartbeat_at = $2, heartbeat_ms = $3, in_flight = $4,
                   stopped_at = NULL
                 WHERE id = $1",
            )
            .bind(&beat.id)
            .bind(now)
            .bind(heartbeat_ms)
            .bind(in_flight)
            .execute(&mut *self.writer().await?)
            .await?;
            return Ok(updated.rows_affected() > 0);
        };
        sqlx::query(
            "INSERT INTO hosts (id, address, version, started_at, heartbeat_at, heartbeat_ms,
               stopped_at, in_flight, tenants)
             VALUES ($1, $2, $3, $4, $5, $6, NULL, $7, $8)
             ON CONFLICT (id) DO UPDATE SET address = excluded.address,
               version = excluded.version, heartbeat_at = excluded.heartbeat_at,
               heartbeat_ms = excluded.heartbeat_ms, stopped_at = NULL,
               in_flight = excluded.in_flight, tenants = excluded.tenants",
        )
        .bind(&beat.id)
        .bind(&beat.address)
        .bind(&beat.version)
        .bind(beat.started_at)
        .bind(now)
        .bind(heartbeat_ms)
        .bind(in_flight)
        .bind(tenants)
        .execute(&mut *self.writer().await?)
        .await?;
        Ok(true)
    }

    /// The host `id` shut down cleanly at `now`: listed as stopped, not gone.
    pub async fn host_stopped(&self, id: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE hosts SET stopped_at = $2, heartbeat_at = $2, in_flight = 0 WHERE id = $1",
        )
        .bind(id)
        .bind(now)
        .execute(&mut *self.writer().await?)
        .await?;
        Ok(())
    }

    /// Every host of the store, judged at `now`, oldest start first.
    pub async fn host_list(&self, now: i64) -> Result<Vec<ListedHost>, StoreError> {
        let rows: Vec<HostRow> = sqlx::query_as(
            "SELECT id, address, version, started_at, heartbeat_at, heartbeat_ms, stopped_at,
               in_flight, tenants
             FROM hosts ORDER BY started_at, id",
        )
        .fetch_all(&mut *self.reader().await?)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let (heartbeat_at, heartbeat_ms, stopped_at) = (r.4, r.5, r.6);
                let state = if stopped_at.is_some() {
                    HostState::Stopped
                } else if now.saturating_sub(heartbeat_at)
                    > heartbeat_ms.saturating_mul(GONE_AFTER_BEATS)
                {
                    HostState::Gone
                } else {
                    HostState::Up
                };
                let tenants = serde_json::from_str(&r.8).unwrap_or_else(|e| {
                    tracing::warn!(host = %r.0, error = %e, "a host's tenant list is not readable");
                    Vec::new()
                });
                ListedHost {
                    id: r.0,
                    address: r.1,
                    version: r.2,
                    state,
                    started_at: r.3,
                    heartbeat_at,
                    heartbeat_ms: u64::try_from(heartbeat_ms).unwrap_or(0),
                    stopped_at,
                    in_flight: u64::try_from(r.7).unwrap_or(0),
                    tenants,
                }
            })
            .collect())
    }

    /// Deletes the hosts whose last heartbeat (or stop) is before `before_ms`; how many.
    pub async fn host_prune(&self, before_ms: i64) -> Result<u64, StoreError> {
        let pruned = sqlx::query("DELETE FROM hosts WHERE heartbeat_at < $1")
            .bind(before_ms)
            .execute(&mut *self.writer().await?)
            .await?;
        Ok(pruned.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{Stores, each_store, store_test};

    fn beat(id: &str, started_at: i64, tenants: Option<&[ServedTenant]>) -> HostBeat {
        HostBeat {
            id: id.to_string(),
            address: format!("http://{id}:8080"),
            version: "1.2.3".into(),
            started_at,
            heartbeat_ms: 1000,
            in_flight: 2,
            tenants: tenants.map(|t| serde_json::to_string(t).unwrap()),
        }
    }

    fn served(name: &str, hash: Option<&str>) -> ServedTenant {
        ServedTenant {
            name: name.into(),
            plugins: vec![ServedPlugin {
                name: "orders".into(),
                component: "hello".into(),
                hash: hash.map(String::from),
            }],
        }
    }

    /// The hosts this test wrote, found among those others (other tests, other runs on
    /// the shared PostgreSQL database) wrote.
    async fn ours(s: &Store, ids: &[&str], now: i64) -> Vec<ListedHost> {
        let all = s.host_list(now).await.unwrap();
        all.into_iter()
            .filter(|h| ids.contains(&h.id.as_str()))
            .collect()
    }

    store_test!(hosts_heartbeat_are_listed_gone_stopped_and_pruned);
    async fn hosts_heartbeat_are_listed_gone_stopped_and_pruned(stores: Stores) {
        each_store(stores, |s| async move {
            let a = uuid::Uuid::new_v4().to_string();
            let b = uuid::Uuid::new_v4().to_string();
            let c = uuid::Uuid::new_v4().to_string();
            let ids = [a.as_str(), b.as_str(), c.as_str()];
            // Far in the past, so other tests' and runs' rows (written at the real time)
            // are not pruned by this one, nor this one's by them.
            let t0 = 1_000_000_000;
            let tenants = [served("acme", Some("abc")), served("globex", None)];
            assert!(
                s.host_beat(&beat(&a, t0, Some(&tenants)), t0)
                    .await
                    .unwrap()
            );
            assert!(s.host_beat(&beat(&b, t0 + 1, Some(&[])), t0).await.unwrap());
            assert!(s.host_beat(&beat(&c, t0 + 2, Some(&[])), t0).await.unwrap());

            let listed = ours(&s, &ids, t0 + 500).await;
            assert_eq!(listed.len(), 3);
            let first = &listed[0];
            assert_eq!(first.id, a, "oldest start first");
            assert_eq!(first.state, HostState::Up);
            assert_eq!(first.address, format!("http://{a}:8080"));
            assert_eq!((first.version.as_str(), first.started_at), ("1.2.3", t0));
            assert_eq!((first.heartbeat_at, first.heartbeat_ms), (t0, 1000));
            assert_eq!((first.in_flight, first.stopped_at), (2, None));
            assert_eq!(first.tenants, tenants);

            // A beat without tenants keeps the list and moves the heartbeat.
            let mut later = beat(&a, t0, None);
            later.in_flight = 7;
            assert!(s.host_beat(&later, t0 + 2500).await.unwrap());
            // b stops cleanly; c beats no more.
            s.host_stopped(&b, t0 + 2600).await.unwrap();
            // Past three of c's intervals: gone. a beat 1.5 intervals ago: up.
            let now = t0 + 4000;
            let listed = ours(&s, &ids, now).await;
            let state = |id: &str| listed.iter().find(|h| h.id == id).unwrap().clone();
            let a_now = state(&a);
            assert_eq!(a_now.state, HostState::Up);
            assert_eq!((a_now.heartbeat_at, a_now.in_flight), (t0 + 2500, 7));
            assert_eq!(a_now.tenants, tenants, "kept when the beat names none");
            let b_now = state(&b);
            assert_eq!(b_now.state, HostState::Stopped);
            assert_eq!((b_now.stopped_at, b_now.in_flight), (Some(t0 + 2600), 0));
            assert_eq!(state(&c).state, HostState::Gone);
            // Exactly three intervals is not yet gone.
            let at_bound = ours(&s, &ids, t0 + 3000).await;
            assert!(at_bound.iter().all(|h| h.state != HostState::Gone));

            // A host that heartbeats again after it was gone is up again (and a stopped
            // one that beats is not stopped: a beat says it serves).
            assert!(s.host_beat(&beat(&c, t0 + 2, None), now).await.unwrap());
            assert_eq!(state_of(&s, &c, now).await, HostState::Up);

            // Pruned once their last beat is older than the bound: b (stopped at
            // t0+2600) and a (t0+2500) go, c (t0+4000) stays.
            assert!(s.host_prune(t0 + 3000).await.unwrap() >= 2);
            let left = ours(&s, &ids, now).await;
            assert_eq!(left.len(), 1);
            assert_eq!(left[0].id, c);

            // A host whose row was pruned while it was cut off learns it on its next
            // short beat, and writes itself whole again.
            assert!(!s.host_beat(&beat(&a, t0, None), now).await.unwrap());
            assert!(ours(&s, &[a.as_str()], now).await.is_empty());
            assert!(
                s.host_beat(&beat(&a, t0, Some(&tenants)), now)
                    .await
                    .unwrap()
            );
            assert_eq!(ours(&s, &[a.as_str()], now).await[0].tenants, tenants);
            s.host_prune(now + 1).await.unwrap();
            assert!(ours(&s, &ids, now).await.is_empty());
        })
        .await;
    }

    async fn state_of(s: &Store, id: &str, now: i64) -> HostState {
        ours(s, &[id], now).await[0].state
    }

    store_test!(an_unreadable_tenant_list_lists_none);
    /// A row whose tenant list cannot be read is still listed, with no tenants.
    async fn an_unreadable_tenant_list_lists_none(stores: Stores) {
        each_store(stores, |s| async move {
            let id = uuid::Uuid::new_v4().to_string();
            // In the past, so the hosts of other runs prune it.
            let now = 2_000_000_000;
            let mut b = beat(&id, now, None);
            b.tenants = Some("not json".into());
            assert!(s.host_beat(&b, now).await.unwrap());
            let listed = ours(&s, &[id.as_str()], now).await;
            assert_eq!(listed.len(), 1);
            assert!(listed[0].tenants.is_empty());
            assert_eq!(listed[0].state, HostState::Up);
            s.host_stopped(&id, now).await.unwrap();
        })
        .await;
    }
}
