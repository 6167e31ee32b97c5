//! `[blobs]` in the host config: where this host keeps blob bytes.
//!
//! ```toml
//! [blobs]
//! backend = "s3"                       # "files", "store" or "s3"
//! url = "s3://orquesta/blobs?endpoint=http://127.0.0.1:9000&region=us-east-1"
//! access_key_id = { env = "ORQUESTA_S3_ACCESS_KEY_ID" }
//! secret_access_key = { file = "/run/secrets/s3-secret" }
//! ```
//!
//! Without a `backend`: `s3` when a `url` is given, else `store` on PostgreSQL (hosts on
//! one database share their blobs with nothing more to set) and `files` on SQLite.

use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use super::{BlobBackend, FsBlobs, S3Blobs};
use crate::capabilities::secrets::{SecretError, SecretRef};
use crate::store::{Backend, Store};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlobBackendKind {
    /// `DATA_DIR/blobs/TENANT/BUCKET/KEY` on this host's disk.
    Files,
    /// Chunks in the host's store (SQLite or PostgreSQL).
    Store,
    /// An S3-compatible bucket.
    S3,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BlobsConfig {
    pub backend: Option<BlobBackendKind>,
    /// `s3://BUCKET[/PREFIX]?endpoint=URL&region=REGION`.
    pub url: Option<String>,
    /// Without them, the standard `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`
    /// variables (and the instance's role) are used.
    pub access_key_id: Option<SecretRef>,
    pub secret_access_key: Option<SecretRef>,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum BlobsConfigError {
    #[error("blobs.url: {0}")]
    Url(String),
    #[error("blobs.url is only for backend = \"s3\"")]
    UrlNotS3,
    #[error("blobs.backend = \"s3\" needs blobs.url (s3://BUCKET?endpoint=...&region=...)")]
    NoUrl,
    #[error("blobs: give both access_key_id and secret_access_key, or neither")]
    HalfCredentials,
    #[error("blobs.{0}: {1}")]
    Secret(&'static str, SecretError),
    #[error("blobs: cannot open the S3 bucket: {0}")]
    S3(String),
}

/// What an `s3://` URL says.
#[derive(Debug, PartialEq, Eq)]
struct S3Url {
    bucket: String,
    prefix: Vec<String>,
    endpoint: Option<String>,
    region: Option<String>,
}

fn parse_s3_url(text: &str) -> Result<S3Url, BlobsConfigError> {
    let bad = |m: &str| BlobsConfigError::Url(m.to_string());
    let url = url::Url::parse(text).map_err(|e| bad(&e.to_string()))?;
    if url.scheme() != "s3" {
        return Err(bad("use s3://BUCKET[/PREFIX]?endpoint=URL&region=REGION"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "credentials do not go in the URL: use access_key_id and secret_access_key",
        ));
    }
    let bucket = url
        .host_str()
        .filter(|b| !b.is_empty())
        .ok_or_else(|| bad("no bucket (s3://BUCKET)"))?
        .to_string();
    let prefix = url
        .path_segments()
        .map(|s| s.filter(|p| !p.is_empty()).map(str::to_string).collect())
        .unwrap_or_default();
    let (mut endpoint, mut region) = (None, None);
    for (name, value) in url.query_pairs() {
        match &*name {
            "endpoint" => endpoint = Some(value.into_owned()),
            "region" => region = Some(value.into_owned()),
            other => {
                return Err(bad(&format!(
                    "unknown parameter `{other}` (endpoint, region)"
                )));
            }
        }
    }
    if let Some(endpoint) = &endpoint
        && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
    {
        return Err(bad("endpoint must be an http:// or https:// URL"));
    }
    Ok(S3Url {
        bucket,
        prefix,
        endpoint,
        region,
    })
}

impl BlobsConfig {
    /// Resolves relative secret files against the config's folder.
    pub fn resolve_paths(&mut self, base: &Path) {
        for secret in [&mut self.access_key_id, &mut self.secret_access_key]
            .into_iter()
            .flatten()
        {
            if let Some(file) = secret.file.as_mut()
                && file.is_relative()
            {
                *file = base.join(&*file);
            }
        }
    }

    /// What can be checked without the store or the network.
    pub fn validate(&self) -> Result<(), BlobsConfigError> {
        match (self.kind(None), &self.url) {
            (Some(BlobBackendKind::S3), None) => return Err(BlobsConfigError::NoUrl),
            (Some(BlobBackendKind::S3), Some(url)) => {
                parse_s3_url(url)?;
            }
            (_, Some(_)) => return Err(BlobsConfigError::UrlNotS3),
            _ => {}
        }
        match (&self.access_key_id, &self.secret_access_key) {
            (Some(id), Some(secret)) => {
                id.validate()
                    .map_err(|e| BlobsConfigError::Secret("access_key_id", e))?;
                secret
                    .validate()
                    .map_err(|e| BlobsConfigError::Secret("secret_access_key", e))?;
            }
            (None, None) => {}
            _ => return Err(BlobsConfigError::HalfCredentials),
        }
        Ok(())
    }

    /// The backend this config picks on `store` (`None`: not known yet).
    fn kind(&self, store: Option<Backend>) -> Option<BlobBackendKind> {
        if let Some(kind) = self.backend {
            return Some(kind);
        }
        if self.url.is_some() {
            return Some(BlobBackendKind::S3);
        }
        match store? {
            Backend::Postgres => Some(BlobBackendKind::Store),
            Backend::Sqlite => Some(BlobBackendKind::Files),
        }
    }

    /// The backend for a host on `store` with its data in `data_dir`.
    pub fn open(&self, store: &Store, data_dir: &Path) -> Result<BlobBackend, BlobsConfigError> {
        self.validate()?;
        Ok(match self.kind(Some(store.backend())) {
            Some(BlobBackendKind::Store) => BlobBackend::Store,
            Some(BlobBackendKind::S3) => BlobBackend::S3(self.open_s3()?),
            Some(BlobBackendKind::Files) | None => {
                BlobBackend::Files(FsBlobs::new(data_dir.join("blobs")))
            }
        })
    }

    fn open_s3(&self) -> Result<S3Blobs, BlobsConfigError> {
        let text = self.url.as_deref().ok_or(BlobsConfigError::NoUrl)?;
        let url = parse_s3_url(text)?;
        let mut builder = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(&url.bucket)
            // Path-style requests (`ENDPOINT/BUCKET/KEY`), which every S3-compatible
            // server answers; virtual hosts need DNS per bucket.
            .with_virtual_hosted_style_request(false);
        if let Some(region) = &url.region {
            builder = builder.with_region(region);
        }
        if let Some(endpoint) = &url.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        if let (Some(id), Some(secret)) = (&self.access_key_id, &self.secret_access_key) {
            let id = id
                .resolve()
                .map_err(|e| BlobsConfigError::Secret("access_key_id", e))?;
            let secret = secret
                .resolve()
                .map_err(|e| BlobsConfigError::Secret("secret_access_key", e))?;
            builder = builder
                .with_access_key_id(id.expose())
                .with_secret_access_key(secret.expose());
        }
        // The builder's errors name the setting at fault, not the values of secrets.
        let client = builder
            .build()
            .map_err(|e| BlobsConfigError::S3(e.to_string()))?;
        let described = match &url.endpoint {
            Some(endpoint) => format!("s3://{} at {endpoint}", url.bucket),
            None => format!("s3://{}", url.bucket),
        };
        Ok(S3Blobs::new(Arc::new(client), url.prefix, described))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls_name_a_bucket_an_endpoint_and_a_region_and_nothing_else() {
        let url =
            parse_s3_url("s3://files/host-a/blobs?endpoint=http://127.0.0.1:9000&region=eu-west-1")
                .unwrap();
        assert_eq!(
            url,
            S3Url {
                bucket: "files".into(),
                prefix: vec!["host-a".into(), "blobs".into()],
                endpoint: Some("http://127.0.0.1:9000".into()),
                region: Some("eu-west-1".into()),
            }
        );
        for bad in [
            "http://files",
            "s3://",
            "s3://files?secret=x",
            "s3://key:secret@files",
            "s3://files?endpoint=file:///etc",
        ] {
            assert!(
                matches!(parse_s3_url(bad), Err(BlobsConfigError::Url(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_backend_follows_the_store_unless_set() {
        let none = BlobsConfig::default();
        assert_eq!(
            none.kind(Some(Backend::Postgres)),
            Some(BlobBackendKind::Store)
        );
        assert_eq!(
            none.kind(Some(Backend::Sqlite)),
            Some(BlobBackendKind::Files)
        );
        let files = BlobsConfig {
            backend: Some(BlobBackendKind::Files),
            ..BlobsConfig::default()
        };
        assert_eq!(
            files.kind(Some(Backend::Postgres)),
            Some(BlobBackendKind::Files)
        );
        let s3 = BlobsConfig {
            url: Some("s3://b?region=us-east-1".into()),
            ..BlobsConfig::default()
        };
        assert_eq!(s3.kind(Some(Backend::Sqlite)), Some(BlobBackendKind::S3));
        assert_eq!(
            BlobsConfig {
                backend: Some(BlobBackendKind::S3),
                ..BlobsConfig::default()
            }
            .validate(),
            Err(BlobsConfigError::NoUrl)
        );
        assert_eq!(
            BlobsConfig {
                backend: Some(BlobBackendKind::Store),
                url: Some("s3://b".into()),
                ..BlobsConfig::default()
            }
            .validate(),
            Err(BlobsConfigError::UrlNotS3)
        );
        assert_eq!(
            BlobsConfig {
                url: Some("s3://b".into()),
                access_key_id: Some(SecretRef {
                    env: Some("X".into()),
                    file: None
                }),
                ..BlobsConfig::default()
            }
            .validate(),
            Err(BlobsConfigError::HalfCredentials)
        );
    }

    /// Neither the backend's description nor a failure to build it shows a secret.
    #[test]
    fn credentials_never_show() {
        let secret = "sEcReT-value-123";
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, secret).unwrap();
        let from_file = || {
            Some(SecretRef {
                env: None,
                file: Some(file.clone()),
            })
        };
        let config = BlobsConfig {
            url: Some("s3://b?endpoint=http://127.0.0.1:1&region=us-east-1".into()),
            access_key_id: from_file(),
            secret_access_key: from_file(),
            ..BlobsConfig::default()
        };
        let s3 = config.open_s3().unwrap();
        let shown = format!("{s3:?} {config:?}");
        assert!(!shown.contains(secret), "{shown}");
    }
}
