//! What a tenant's own credential (scope `deploy`) may change in its tenant file: its
//! plugins' `config` and `source`, nothing else. The rest of the file is what the host's
//! operator granted the tenant (capabilities, databases and their URLs, secrets and where
//! they are read from, limits, routes and their auth, credentials, triggers, workflow
//! files): written by the tenant, it would let a tenant read the host's environment or
//! files, reach private addresses or raise its own limits. A changed `source` must also
//! name a plugin the tenant owns, which the admin route checks.

use std::collections::BTreeSet;

/// Why a tenant credential may not deploy a tenant file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelfDeployError {
    #[error("the file is not TOML: {0}")]
    NotToml(String),
    #[error(
        "a tenant credential may change only its plugins' `config` and `source`; `{0}` differs from the serving file: that needs the host admin token"
    )]
    Changed(String),
}

/// Compares the serving file `old` with `new`: on success, the plugin files (`source`
/// stems) `new` names that `old` did not, for the caller to check they are the tenant's.
pub fn check_change(old: &str, new: &str) -> Result<BTreeSet<String>, SelfDeployError> {
    let parse = |text: &str| {
        toml::from_str::<toml::Table>(text).map_err(|e| SelfDeployError::NotToml(e.to_string()))
    };
    let (mut old, mut new) = (parse(old)?, parse(new)?);
    let old_sources = take_allowed(&mut old);
    let new_sources = take_allowed(&mut new);
    if let Some(key) = first_difference(&old, &new, "") {
        return Err(SelfDeployError::Changed(key));
    }
    Ok(new_sources.difference(&old_sources).cloned().collect())
}

/// Removes every plugin's `config` and `source` from `doc`; answers the sources' stems.
fn take_allowed(doc: &mut toml::Table) -> BTreeSet<String> {
    let mut sources = BTreeSet::new();
    let plugins = doc.get_mut("plugins").and_then(|p| p.as_table_mut());
    for (_, plugin) in plugins.into_iter().flat_map(|p| p.iter_mut()) {
        let Some(plugin) = plugin.as_table_mut() else {
            continue;
        };
        plugin.remove("config");
        if let Some(source) = plugin.remove("source") {
            // Not a string: the load refuses it; seen here as a name nobody owns.
            let source = source.as_str().unwrap_or("\0").to_string();
            let stem = std::path::Path::new(&source)
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("\0")
                .to_string();
            // A source in another directory is another file than the catalog's.
            if source.contains('/') || source.contains('\\') {
                sources.insert(format!("\0{source}"));
            } else {
                sources.insert(stem);
            }
        }
    }
    sources
}

/// The dotted key of the first place `a` and `b` differ, if any.
fn first_difference(a: &toml::Table, b: &toml::Table, at: &str) -> Option<String> {
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for key in keys {
        let path = if at.is_empty() {
            key.clone()
        } else {
            format!("{at}.{key}")
        };
        match (a.get(key), b.get(key)) {
            (Some(toml::Value::Table(x)), Some(toml::Value::Table(y))) => {
                if let Some(found) = first_difference(x, y, &path) {
                    return Some(found);
                }
            }
            (x, y) if x != y => return Some(path),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVING: &str = r#"
[kv]
buckets = ["b"]

[plugins.api]
source = "acme-api.wasm"
config = { greeting = "hi" }
allow = { kv_buckets = ["b"] }

[[routes]]
method = "GET"
path = "/hi"
plugin = "api"
"#;

    #[test]
    fn config_and_source_may_change() {
        let new = SERVING
            .replace(r#"greeting = "hi""#, r#"greeting = "hola", extra = [1, 2]"#)
            .replace("acme-api.wasm", "acme-api-v2.wasm");
        let added = check_change(SERVING, &new).unwrap();
        assert_eq!(added, BTreeSet::from(["acme-api-v2".to_string()]));
        // Comments and layout are not changes.
        let reformatted = format!("# a comment\n{}", SERVING.replace("\n\n", "\n"));
        assert!(check_change(SERVING, &reformatted).unwrap().is_empty());
    }

    #[test]
    fn everything_else_needs_the_host_admin() {
        let cases = [
            (
                SERVING.replace(r#"kv_buckets = ["b"]"#, r#"kv_buckets = ["b", "c"]"#),
                "plugins.api.allow",
            ),
            (format!("{SERVING}\n[limits]\nmemory_mb = 4096\n"), "limits"),
            (
                SERVING.replace(
                    "[plugins.api]",
                    "[plugins.api]\nsecrets = { t = { env = \"ORQUESTA_ADMIN_TOKEN\" } }",
                ),
                "plugins.api.secrets",
            ),
            (
                format!("{SERVING}\n[plugins.other]\nsource = \"acme-api.wasm\"\n"),
                "plugins.other",
            ),
            (
                SERVING.replace(r#"path = "/hi""#, r#"path = "/admin""#),
                "routes",
            ),
            (
                format!(
                    "{SERVING}\n[[admin_credentials]]\nname = \"x\"\nhash = \"sha256:00\"\nscopes = [\"deploy\"]\n"
                ),
                "admin_credentials",
            ),
            (
                format!("{SERVING}\n[databases.d]\nurl = \"mysql://root@127.0.0.1/mysql\"\n"),
                "databases",
            ),
        ];
        for (new, key) in cases {
            let refused = check_change(SERVING, &new);
            assert!(
                matches!(&refused, Err(SelfDeployError::Changed(at)) if at.starts_with(key)),
                "{new}\n{refused:?}"
            );
        }
        assert!(matches!(
            check_change(SERVING, "not = [toml"),
            Err(SelfDeployError::NotToml(_))
        ));
    }

    #[test]
    fn a_source_outside_the_plugin_directory_is_nobodys() {
        let new = SERVING.replace("acme-api.wasm", "../other/acme-api.wasm");
        let added = check_change(SERVING, &new).unwrap();
        assert_eq!(added.len(), 1);
        assert!(added.iter().all(|s| s.starts_with('\0')));
    }
}
