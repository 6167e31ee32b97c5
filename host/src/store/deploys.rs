//! Deploys through the store: the plugins and tenant files the admin API deployed, for
//! every host of the store to apply (`app::deploys`). One row per name holds the
//! content's SHA-256 (NULL: deleted); the content is kept once per hash, in chunks.

use sha2::{Digest as _, Sha256};

use super::{Store, StoreError};

/// A chunk of a deployed artifact: small enough that a row is never a problem for either
/// database or its driver, large enough that a 40 MiB component is 40 rows.
const CHUNK: usize = 1 << 20;

/// What a deployment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DeployKind {
    /// A component, served as `plugin_dir/NAME.wasm`.
    Plugin,
    /// A tenant file, served as `tenant_dir/NAME.toml`.
    Tenant,
}

impl DeployKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DeployKind::Plugin => "plugin",
            DeployKind::Tenant => "tenant",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "plugin" => Some(DeployKind::Plugin),
            "tenant" => Some(DeployKind::Tenant),
            _ => None,
        }
    }
}

/// One name's latest deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    pub kind: DeployKind,
    pub name: String,
    /// SHA-256 of the content, hex; `None` when the name was deleted.
    pub hash: Option<String>,
    /// Who deployed it: `host-admin`, or `tenant T credential C`.
    pub deployed_by: String,
    /// Milliseconds since the Unix epoch.
    pub deployed_at: i64,
}

/// The SHA-256 of `bytes`, hex: the name of an artifact.
pub fn artifact_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Store {
    /// Records `content` (or, `None`, a deletion) as the deployment of `kind` `name`;
    /// answers the content's hash. Artifacts no deployment names any more are dropped in
    /// the same transaction.
    pub async fn deploy_put(
        &self,
        kind: DeployKind,
        name: &str,
        content: Option<&[u8]>,
        deployed_by: &str,
        now: i64,
    ) -> Result<Option<String>, StoreError> {
        let hash = content.map(artifact_hash);
        use sqlx::Connection as _;
        let mut conn = self.writer().await?;
        let mut tx = conn.begin().await?;
        if let (Some(hash), Some(content)) = (&hash, content) {
            // Chunks of one hash are the same bytes whoever wrote them, so a conflict
            // (the same content deployed twice, or by two hosts at once) is no change.
            for (seq, chunk) in content.chunks(CHUNK).enumerate() {
                sqlx::query(
                    "INSERT INTO deploy_artifacts (hash, seq, data) VALUES ($1, $2, $3)
                     ON CONFLICT (hash, seq) DO NOTHING",
                )
                .bind(hash)
                .bind(i64::try_from(seq).unwrap_or(i64::MAX))
                .bind(chunk)
                .execute(&mut *tx)
                .await?;
            }
        }
        sqlx::query(
            "INSERT INTO deployments (kind, name, hash, deployed_by, deployed_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (kind, name) DO UPDATE SET hash = excluded.hash,
               deployed_by = excluded.deployed_by, deployed_at = excluded.deployed_at",
        )
        .bind(kind.as_str())
        .bind(name)
        .bind(hash.as_deref())
        .bind(deployed_by)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM deploy_artifacts WHERE hash NOT IN
               (SELECT hash FROM deployments WHERE hash IS NOT NULL)",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(hash)
    }

    /// Every name's latest deployment, plugins first (tenants name plugins).
    pub async fn deploy_list(&self) -> Result<Vec<Deployment>, StoreError> {
        let rows: Vec<(String, String, Option<String>, String, i64)> = sqlx::query_as(
            "SELECT kind, name, hash, deployed_by, deployed_at FROM deployments
             ORDER BY kind, name",
        )
        .fetch_all(&mut *self.reader().await?)
        .await?;
        let mut list: Vec<Deployment> = rows
            .into_iter()
            .filter_map(|(kind, name, hash, deployed_by, deployed_at)| {
                let Some(kind) = DeployKind::parse(&kind) else {
                    // A kind a newer host wrote: not this host's to apply.
                    tracing::debug!(%kind, %name, "a deployment of an unknown kind skipped");
                    return None;
                };
                Some(Deployment {
                    kind,
                    name,
                    hash,
                    deployed_by,
                    deployed_at,
                })
            })
            .collect();
        list.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
        Ok(list)
    }

    /// The content of the artifact `hash`, checked against its hash; `None` when it is
    /// not (or no longer: replaced meanwhile) in the store, or its bytes do not match.
    pub async fn deploy_artifact(&self, hash: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let chunks: Vec<(Vec<u8>,)> =
            sqlx::query_as("SELECT data FROM deploy_artifacts WHERE hash = $1 ORDER BY seq")
                .bind(hash)
                .fetch_all(&mut *self.reader().await?)
                .await?;
        if chunks.is_empty() {
            return Ok(None);
        }
        let content: Vec<u8> = chunks.into_iter().flat_map(|(c,)| c).collect();
        if artifact_hash(&content) != hash {
            // Read while a concurrent replacement dropped some chunks, or damaged.
            tracing::warn!(%hash, "a deployed artifact's bytes do not match its hash; skipped");
            return Ok(None);
        }
        Ok(Some(content))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{Stores, each_store, store_test, tenant};

    /// Removes the rows this test writes (those of earlier runs too): every host of the
    /// shared test database would apply them.
    async fn forget(store: &Store) {
        let mut conn = store.writer().await.unwrap();
        sqlx::query("DELETE FROM deployments WHERE name LIKE 'deploy-test-%'")
            .execute(&mut *conn)
            .await
            .unwrap();
        sqlx::query(
            "DELETE FROM deploy_artifacts WHERE hash NOT IN
               (SELECT hash FROM deployments WHERE hash IS NOT NULL)",
        )
        .execute(&mut *conn)
        .await
        .unwrap();
    }

    async fn deployments_put_list_and_replace(stores: Stores) {
        each_store(stores, async |store| {
            forget(&store).await;
            let name = tenant("deploy-test");
            let big: Vec<u8> = (0..CHUNK * 2 + 17).map(|i| (i % 251) as u8).collect();
            let hash = store
                .deploy_put(DeployKind::Plugin, &name, Some(&big), "host-admin", 1)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(hash, artifact_hash(&big));
            assert_eq!(store.deploy_artifact(&hash).await.unwrap(), Some(big));
            let text = b"[plugins]\n".to_vec();
            let tenant_hash = store
                .deploy_put(DeployKind::Tenant, &name, Some(&text), "t", 2)
                .await
                .unwrap()
                .unwrap();
            let mine = |list: Vec<Deployment>| -> Vec<Deployment> {
                list.into_iter().filter(|d| d.name == name).collect()
            };
            let listed = mine(store.deploy_list().await.unwrap());
            assert_eq!(listed.len(), 2);
            assert_eq!(listed[0].kind, DeployKind::Plugin);
            assert_eq!(listed[1].hash.as_deref(), Some(tenant_hash.as_str()));
            assert_eq!(listed[1].deployed_by, "t");

            // A new version replaces the old, whose bytes go with it.
            let small = b"v2".to_vec();
            let new_hash = store
                .deploy_put(DeployKind::Plugin, &name, Some(&small), "host-admin", 3)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(store.deploy_artifact(&hash).await.unwrap(), None);
            assert_eq!(store.deploy_artifact(&new_hash).await.unwrap(), Some(small));
            // The same content twice is one artifact.
            store
                .deploy_put(DeployKind::Plugin, &name, Some(b"v2"), "host-admin", 4)
                .await
                .unwrap();
            assert_eq!(
                store.deploy_artifact(&new_hash).await.unwrap(),
                Some(b"v2".to_vec())
            );

            // A deletion is kept, without content.
            store
                .deploy_put(DeployKind::Tenant, &name, None, "host-admin", 5)
                .await
                .unwrap();
            let listed = mine(store.deploy_list().await.unwrap());
            assert_eq!(listed[1].hash, None);
            assert_eq!(store.deploy_artifact(&tenant_hash).await.unwrap(), None);
            forget(&store).await;
        })
        .await;
    }
    store_test!(deployments_put_list_and_replace);
}
