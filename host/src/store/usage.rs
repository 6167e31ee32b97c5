//! Per-tenant storage quotas. What a tenant keeps is counted in the store, beside the
//! data: triggers update `storage_usage` in the transaction of every kv or blob-size
//! write, so the count never drifts from the rows it counts, whichever host wrote them.
//! A write that would grow the usage first locks the tenant's usage row (on PostgreSQL;
//! SQLite has one writer already) and checks it, so hosts sharing a database check one
//! after another and a quota holds exactly. Locks are taken item first, usage row last,
//! the order the triggers of writes that check nothing take them too.

use sqlx::AnyConnection;

use super::{Store, StoreError};
use crate::capabilities::CapError;
use crate::engine::limits::Limits;

/// How much of one kind of storage a tenant may keep; `None` is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub items: Option<u64>,
    pub bytes: Option<u64>,
}

impl Quota {
    /// For the host's own writes and `orquesta run`.
    pub const UNLIMITED: Quota = Quota {
        items: None,
        bytes: None,
    };

    pub fn kv(limits: &Limits) -> Self {
        Quota {
            items: Some(u64::from(limits.kv_items)),
            bytes: Some(u64::from(limits.kv_mb) << 20),
        }
    }

    pub fn blob(limits: &Limits) -> Self {
        Quota {
            items: None,
            bytes: Some(u64::from(limits.blob_mb) << 20),
        }
    }

    pub fn is_unlimited(&self) -> bool {
        self.items.is_none() && self.bytes.is_none()
    }
}

/// A kind of storage with a quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Kv,
    Blob,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Kv => "kv",
            Kind::Blob => "blob",
        }
    }

    /// The `[limits]` keys of its quota: items, then megabytes.
    fn limit_keys(self) -> (&'static str, &'static str) {
        match self {
            Kind::Kv => ("limits.kv_items", "limits.kv_mb"),
            Kind::Blob => ("", "limits.blob_mb"),
        }
    }
}

/// What a tenant keeps of one kind (or what a write adds to it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub items: i64,
    pub bytes: i64,
}

/// Refuses a write that adds `added` to `usage` past `quota`, saying which limit, what
/// is used and what the write adds. A write that adds neither items nor bytes passes
/// even over a quota lowered since: deletes and smaller overwrites free room.
pub fn admit(kind: Kind, quota: Quota, usage: Usage, added: Usage) -> Result<(), CapError> {
    let (items_key, bytes_key) = kind.limit_keys();
    let name = kind.as_str();
    let held = format!(
        "the tenant's {name} storage holds {} items, {} bytes",
        usage.items, usage.bytes
    );
    if let Some(max) = quota.items
        && added.items > 0
        && usage.items.saturating_add(added.items) > max as i64
    {
        return Err(CapError::Denied(format!(
            "{name} quota: {held}; {} more items would pass {items_key} = {max}; delete some to free room",
            added.items
        )));
    }
    if let Some(max) = quota.bytes
        && added.bytes > 0
        && usage.bytes.saturating_add(added.bytes) > max as i64
    {
        return Err(CapError::Denied(format!(
            "{name} quota: {held}; {} more bytes would pass {bytes_key} = {} ({max} bytes); delete some to free room",
            added.bytes,
            max >> 20
        )));
    }
    Ok(())
}

/// Locks the tenant's usage row of `kind` until the transaction on `conn` ends
/// (creating it if needed) and reads it.
pub(super) async fn lock(
    conn: &mut AnyConnection,
    tenant: &str,
    kind: Kind,
) -> Result<Usage, sqlx::Error> {
    let (items, bytes): (i64, i64) = sqlx::query_as(
        "INSERT INTO storage_usage (tenant, kind, items, bytes) VALUES ($1, $2, 0, 0)
         ON CONFLICT (tenant, kind) DO UPDATE SET items = storage_usage.items
         RETURNING items, bytes",
    )
    .bind(tenant)
    .bind(kind.as_str())
    .fetch_one(&mut *conn)
    .await?;
    Ok(Usage { items, bytes })
}

impl Store {
    /// What `tenant` keeps of `kind` now.
    pub async fn storage_usage(&self, tenant: &str, kind: Kind) -> Result<Usage, StoreError> {
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT items, bytes FROM storage_usage WHERE tenant = $1 AND kind = $2",
        )
        .bind(tenant)
        .bind(kind.as_str())
        .fetch_optional(&mut *self.reader().await?)
        .await?;
        Ok(row.map_or_else(Usage::default, |(items, bytes)| Usage { items, bytes }))
    }

    /// `FOR UPDATE` where the database locks rows (PostgreSQL); SQLite has one writer.
    pub(super) fn row_lock(&self) -> &'static str {
        match self.backend {
            super::Backend::Postgres => " FOR UPDATE",
            super::Backend::Sqlite => "",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(items: u64, bytes: u64) -> Quota {
        Quota {
            items: Some(items),
            bytes: Some(bytes),
        }
    }

    #[test]
    fn writes_that_add_nothing_pass_even_over_the_quota() {
        let over = Usage {
            items: 12,
            bytes: 900,
        };
        let q = quota(10, 500);
        let shrink = Usage {
            items: 0,
            bytes: -10,
        };
        assert!(admit(Kind::Kv, q, over, shrink).is_ok());
        assert!(admit(Kind::Kv, q, over, Usage::default()).is_ok());
        let err = admit(Kind::Kv, q, over, Usage { items: 0, bytes: 1 }).unwrap_err();
        assert!(err.to_string().contains("limits.kv_mb"), "{err}");
    }

    #[test]
    fn the_refusal_names_the_limit_the_usage_and_the_write() {
        let usage = Usage {
            items: 10,
            bytes: 100,
        };
        let err = admit(
            Kind::Kv,
            quota(10, 1 << 20),
            usage,
            Usage { items: 1, bytes: 5 },
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, CapError::Denied(_)));
        for part in [
            "kv quota",
            "holds 10 items, 100 bytes",
            "1 more items",
            "limits.kv_items = 10",
        ] {
            assert!(text.contains(part), "{part}: {text}");
        }
        let fits = Usage {
            items: 9,
            bytes: 100,
        };
        assert!(
            admit(
                Kind::Kv,
                quota(10, 1 << 20),
                fits,
                Usage { items: 1, bytes: 5 }
            )
            .is_ok()
        );
        let err = admit(
            Kind::Blob,
            Quota::blob(&Limits {
                blob_mb: 1,
                ..Limits::default()
            }),
            Usage {
                items: 3,
                bytes: 1 << 20,
            },
            Usage { items: 1, bytes: 1 },
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("limits.blob_mb = 1 (1048576 bytes)"),
            "{err}"
        );
    }
}
