//! The deployment artifacts under deploy/: the host config the image and the systemd unit
//! ship, and the tenant files in the Kubernetes ConfigMap, checked by `orquesta check` as
//! the service would load them; the image's plugin list against the files the tenants
//! name. (The manifests' schemas are checked by .ci/run with kubernetes-validate.)

use std::path::PathBuf;

use orquesta_tests::{plugin, run_orquesta_env, workspace};

fn deploy(path: &str) -> PathBuf {
    workspace().join("deploy").join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(deploy(path)).unwrap_or_else(|e| panic!("deploy/{path}: {e}"))
}

/// The ConfigMap's `NAME.toml: |` blocks, as (NAME.toml, text).
fn configmap_tenant_files() -> Vec<(String, String)> {
    let text = read("kubernetes/tenants.configmap.yaml");
    let mut files: Vec<(String, String)> = Vec::new();
    let mut in_data = false;
    for line in text.lines() {
        if line == "data:" {
            in_data = true;
            continue;
        }
        if !in_data {
            continue;
        }
        if let Some(name) = line.strip_prefix("  ").and_then(|l| l.strip_suffix(": |")) {
            files.push((name.to_string(), String::new()));
        } else if let Some((_, body)) = files.last_mut() {
            body.push_str(line.strip_prefix("    ").unwrap_or(line.trim()));
            body.push('\n');
        }
    }
    files
}

#[test]
fn the_shipped_host_config_and_tenant_files_pass_check() {
    let files = configmap_tenant_files();
    assert!(!files.is_empty(), "no tenant files found in the ConfigMap");
    let dir = tempfile::tempdir().expect("temp dir");
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).expect("plugin dir");
    std::fs::copy(plugin("hello"), plugins.join("hello.wasm")).expect("copy hello");
    let config = deploy("orquesta.toml");
    let config = config.to_str().expect("utf-8 path");
    for (name, body) in &files {
        let file = dir.path().join(name);
        std::fs::write(&file, body).expect("write tenant file");
        let file = file.to_str().expect("utf-8 path");
        // The host config is read and checked as `serve` reads it.
        let (code, stdout, stderr) = run_orquesta_env(
            dir.path(),
            &["check", "--config", config, "--skip-environment", file],
            None,
            &[],
        );
        assert_eq!(code, 0, "{name} with deploy/orquesta.toml: {stderr}");
        assert!(stdout.starts_with("ok: "), "{stdout}");
        // Its plugins compile and its secrets resolve, as on a replica.
        let (code, _, stderr) = run_orquesta_env(
            dir.path(),
            &[
                "check",
                "--plugin-dir",
                plugins.to_str().expect("utf-8"),
                file,
            ],
            None,
            &[],
        );
        assert_eq!(code, 0, "{name}: {stderr}");
    }
}

/// Every plugin a shipped tenant file names is one the image builds.
#[test]
fn the_image_builds_every_plugin_the_shipped_tenants_name() {
    let dockerfile = read("Dockerfile");
    let built: Vec<String> = dockerfile
        .split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[0] == "-p" && w[1] != "orquesta")
        .map(|w| format!("{}.wasm", w[1].replace('-', "_")))
        .collect();
    assert!(
        built.len() >= 2,
        "no plugins found in the Dockerfile: {built:?}"
    );
    for (name, body) in configmap_tenant_files() {
        for line in body.lines() {
            if let Some(source) = line.strip_prefix("source = ") {
                let source = source.trim_matches('"');
                assert!(
                    built.iter().any(|b| b == source),
                    "{name} names {source}, which deploy/Dockerfile does not build ({built:?})"
                );
            }
        }
    }
}
