//! `orquesta deploy`: plugins and tenant files to a running host through its admin API,
//! as `PUT /admin/v1/plugins/NAME` and `PUT /admin/v1/tenants/NAME` (or, with a tenant's
//! credential, the tenant's own plugin route). The host records them in its store, so
//! every host sharing it serves them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{EXIT_BAD_INPUT, EXIT_FAILED, refuse};

/// What to deploy where.
pub struct DeployArgs {
    pub files: Vec<PathBuf>,
    pub delete_tenants: Vec<String>,
    pub url: String,
    pub token: String,
    pub tenant: Option<String>,
}

/// One thing to send.
enum Item {
    Plugin { name: String, file: PathBuf },
    Tenant { name: String, file: PathBuf },
}

/// Plugins first (the tenant files name them), each named by its file's stem.
fn items(files: &[PathBuf]) -> Result<Vec<Item>, String> {
    let mut plugins = Vec::new();
    let mut tenants = Vec::new();
    for file in files {
        let stem = file
            .file_stem()
            .and_then(|s| s.to_str())
            .ok_or_else(|| format!("{}: no file name", file.display()))?
            .to_string();
        match file.extension().and_then(|e| e.to_str()) {
            Some("wasm") => plugins.push(Item::Plugin {
                name: stem,
                file: file.clone(),
            }),
            Some("toml") => tenants.push(Item::Tenant {
                name: stem,
                file: file.clone(),
            }),
            _ => {
                return Err(format!(
                    "{}: deploy takes plugin components (.wasm) and tenant files (.toml)",
                    file.display()
                ));
            }
        }
    }
    plugins.extend(tenants);
    Ok(plugins)
}

pub async fn deploy(args: DeployArgs) -> ExitCode {
    if args.files.is_empty() && args.delete_tenants.is_empty() {
        return refuse(
            "nothing to deploy: name .wasm or .toml files, or --delete-tenant",
            EXIT_BAD_INPUT,
        );
    }
    let items = match items(&args.files) {
        Ok(i) => i,
        Err(e) => return refuse(e, EXIT_BAD_INPUT),
    };
    let base = format!("{}/admin/v1", args.url.trim_end_matches('/'));
    let client = match reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(300))
        .build()
    {
        Ok(c) => c,
        Err(e) => return refuse(format!("cannot make an HTTP client: {e}"), EXIT_FAILED),
    };
    for item in &items {
        let (what, name, file, url) = match item {
            Item::Plugin { name, file } => {
                let url = match &args.tenant {
                    Some(tenant) => format!("{base}/tenants/{tenant}/plugins/{name}"),
                    None => format!("{base}/plugins/{name}"),
                };
                ("plugin", name, file, url)
            }
            Item::Tenant { name, file } => ("tenant", name, file, format!("{base}/tenants/{name}")),
        };
        let body = match std::fs::read(file) {
            Ok(b) => b,
            Err(e) => {
                return refuse(
                    format!("cannot read {}: {e}", file.display()),
                    EXIT_BAD_INPUT,
                );
            }
        };
        let sent = client.put(&url).bearer_auth(&args.token).body(body).send();
        match answer(sent.await).await {
            Ok(json) => {
                let hash = json["hash"].as_str().unwrap_or("");
                if let Some(error) = json["error"].as_str() {
                    return refuse(
                        format!(
                            "{what} {name} was recorded but did not load on {}: {error}",
                            args.url
                        ),
                        EXIT_FAILED,
                    );
                }
                println!("deployed {what} {name} (sha256 {hash}) from {}", show(file));
            }
            Err((code, e)) => return refuse(format!("{what} {name} ({}): {e}", show(file)), code),
        }
    }
    for name in &args.delete_tenants {
        let sent = client
            .delete(format!("{base}/tenants/{name}"))
            .bearer_auth(&args.token)
            .send();
        match answer(sent.await).await {
            Ok(_) => println!("deleted tenant {name}"),
            Err((code, e)) => return refuse(format!("tenant {name}: {e}"), code),
        }
    }
    ExitCode::SUCCESS
}

fn show(file: &Path) -> String {
    file.display().to_string()
}

/// The host's JSON answer, or the exit code and why: a refusal of the input (4xx) is
/// the input's fault, anything else a failure.
async fn answer(
    sent: Result<reqwest::Response, reqwest::Error>,
) -> Result<serde_json::Value, (u8, String)> {
    let response = sent.map_err(|e| (EXIT_FAILED, format!("cannot reach the host: {e}")))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| (EXIT_FAILED, format!("the host's answer was cut: {e}")))?;
    let json: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    if status.is_success() {
        return Ok(json);
    }
    let detail = json["detail"].as_str().map(str::to_string).unwrap_or(text);
    let code = if status.is_client_error() {
        EXIT_BAD_INPUT
    } else {
        EXIT_FAILED
    };
    Err((code, format!("{status}: {detail}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugins_go_before_tenants_and_other_files_are_refused() {
        let files = [PathBuf::from("t/acme.toml"), PathBuf::from("p/hello.wasm")];
        let order: Vec<String> = items(&files)
            .unwrap()
            .iter()
            .map(|i| match i {
                Item::Plugin { name, .. } => format!("plugin {name}"),
                Item::Tenant { name, .. } => format!("tenant {name}"),
            })
            .collect();
        assert_eq!(order, ["plugin hello", "tenant acme"]);
        assert!(items(&[PathBuf::from("notes.txt")]).is_err());
    }
}
