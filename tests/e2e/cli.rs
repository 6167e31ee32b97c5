//! The `orquesta` binary: `invoke`, `test` and `check`, and a clear one-line error for
//! every kind of bad input.

use std::path::Path;

use orquesta_tests::{plugin, run_orquesta, run_orquesta_env, workspace};
use serde_json::Value;

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

fn write(dir: &Path, name: &str, content: impl AsRef<[u8]>) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).expect("written");
    path.to_string_lossy().into_owned()
}

/// The refusal: exit 2 and exactly one line on stderr.
fn refused(args: &[&str], dir: &Path) -> String {
    let (code, stdout, stderr) = run_orquesta(dir, args, None);
    assert_eq!(code, 2, "stdout: {stdout}\nstderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "not one line: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    stderr
}

#[test]
fn invoke_prints_the_result_and_keeps_kv_between_runs() {
    let dir = tempdir();
    let hello = plugin("hello");
    let tenant = workspace().join("examples/hello/tenant.toml");
    let event = workspace().join("examples/hello/event.json");
    let args = [
        "invoke",
        hello.to_str().unwrap(),
        "--event",
        event.to_str().unwrap(),
        "--config",
        tenant.to_str().unwrap(),
    ];
    let env = [("HELLO_CLIENT_SECRET", "demo-secret")];
    let (code, stdout, stderr) = run_orquesta_env(dir.path(), &args, None, &env);
    assert_eq!(code, 0, "{stderr}");
    let out: Value = serde_json::from_str(&stdout).expect("JSON on stdout");
    assert_eq!(out["body"]["message"], "Hola, Ana!");
    assert_eq!(out["body"]["count"], 1);
    let (_, stdout, _) = run_orquesta_env(dir.path(), &args, None, &env);
    let out: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(out["body"]["count"], 2, "the embedded store keeps kv");
    assert!(dir.path().join(".orquesta/orquesta.db").exists());
    let cached = std::fs::read_dir(dir.path().join(".orquesta/cache"))
        .unwrap()
        .count();
    assert_eq!(cached, 1, "one compiled artifact, reused by the second run");
}

#[test]
fn invoke_reads_the_event_from_stdin() {
    let dir = tempdir();
    let hello = plugin("hello");
    let event = r#"{"type": "task", "input": {"name": "Eva"}}"#;
    let (code, stdout, stderr) = run_orquesta(
        dir.path(),
        &["invoke", hello.to_str().unwrap(), "--event", "-"],
        Some(event),
    );
    assert_eq!(code, 0, "{stderr}");
    let out: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(out["message"], "Hello, Eva!");
}

#[test]
fn a_failed_invocation_exits_1_with_the_typed_error() {
    let dir = tempdir();
    let hostile = plugin("hostile");
    let event = r#"{"type": "task", "input": {"attack": "panic"}}"#;
    let (code, stdout, stderr) = run_orquesta(
        dir.path(),
        &["invoke", hostile.to_str().unwrap(), "--event", "-"],
        Some(event),
    );
    assert_eq!(code, 1);
    assert!(stdout.is_empty());
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: trap: panicked at plugins/hostile/src/lib.rs")
            && last.contains("on purpose"),
        "{stderr}"
    );
}

#[test]
fn a_file_that_is_not_wasm_is_refused() {
    let dir = tempdir();
    let file = write(dir.path(), "notes.wasm", "just some text");
    let err = refused(&["invoke", &file, "--event", "-"], dir.path());
    assert!(err.contains("not-wasm"), "{err}");
}

#[test]
fn a_core_module_is_refused() {
    let dir = tempdir();
    let file = write(dir.path(), "core.wasm", wat::parse_str("(module)").unwrap());
    let err = refused(&["invoke", &file, "--event", "-"], dir.path());
    assert!(
        err.contains("core-module") && err.contains("wasm32-wasip2"),
        "{err}"
    );
}

#[test]
fn a_broken_component_is_refused() {
    let dir = tempdir();
    let mut bytes = wat::parse_str("(component)").unwrap();
    bytes.extend_from_slice(b"\x01\xff\xff garbage");
    let file = write(dir.path(), "broken.wasm", bytes);
    let err = refused(&["invoke", &file, "--event", "-"], dir.path());
    assert!(err.contains("invalid-component"), "{err}");
}

#[test]
fn a_component_for_another_world_is_refused() {
    let dir = tempdir();
    // Exports nothing.
    let empty = write(
        dir.path(),
        "empty.wasm",
        wat::parse_str("(component)").unwrap(),
    );
    let err = refused(&["invoke", &empty, "--event", "-"], dir.path());
    assert!(
        err.contains("wrong-world") && err.contains("orquesta:plugin/handler"),
        "{err}"
    );
    // Imports an interface the host does not provide.
    let other = wat::parse_str(r#"(component (import "wasi:http/outgoing-handler@0.2.0" (instance (export "handle" (func)))))"#).unwrap();
    let other = write(dir.path(), "other.wasm", other);
    let err = refused(&["invoke", &other, "--event", "-"], dir.path());
    assert!(
        err.contains("wrong-world") && err.contains("wasi:http/outgoing-handler"),
        "{err}"
    );
    // Exports the handler interface, but `handle` takes no event: refused when loaded,
    // since invocations call it unchecked.
    let mismatched = wat::parse_str(
        r#"(component
            (core module $m (func (export "h")))
            (core instance $i (instantiate $m))
            (func $h (canon lift (core func $i "h")))
            (instance $handler (export "handle" (func $h)))
            (export "orquesta:plugin/handler@0.1.0" (instance $handler)))"#,
    )
    .unwrap();
    let mismatched = write(dir.path(), "mismatched.wasm", mismatched);
    let err = refused(&["invoke", &mismatched, "--event", "-"], dir.path());
    assert!(
        err.contains("wrong-world") && err.contains("type-checking `handle`"),
        "{err}"
    );
}

#[test]
fn malformed_event_json_is_refused() {
    let dir = tempdir();
    let hello = plugin("hello");
    let hello = hello.to_str().unwrap();
    for (event, expect) in [
        ("{\"type\": \"task\", ", "EOF while parsing"),
        (
            "{\"type\": \"carrier-pigeon\"}",
            "unknown variant `carrier-pigeon`",
        ),
        (
            "{\"type\": \"task\", \"inptu\": {}}",
            "unknown field `inptu`",
        ),
    ] {
        let file = write(dir.path(), "event.json", event);
        let err = refused(&["invoke", hello, "--event", &file], dir.path());
        assert!(
            err.contains("invalid-event") && err.contains(expect),
            "{event}: {err}"
        );
    }
}

#[test]
fn a_config_with_unknown_keys_is_refused_with_file_and_line() {
    let dir = tempdir();
    let config = write(
        dir.path(),
        "acme.toml",
        "[plugins.hello]\nsource = \"hello.wasm\"\ngreting = \"typo\"\n",
    );
    let err = refused(&["check", &config], dir.path());
    assert!(
        err.contains("acme.toml:3: unknown field `greting`"),
        "{err}"
    );
    let hello = plugin("hello");
    let err = refused(
        &[
            "invoke",
            hello.to_str().unwrap(),
            "--event",
            "-",
            "--config",
            &config,
        ],
        dir.path(),
    );
    assert!(err.contains("unknown field `greting`"), "{err}");
}

#[test]
fn check_accepts_the_example_tenant() {
    let tenant = workspace().join("examples/hello/tenant.toml");
    let tenant = tenant.to_str().unwrap();
    // As the service loads it: its secret set, its plugin in the plugin directory.
    let plugins = plugin("hello")
        .parent()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let (code, stdout, stderr) = run_orquesta_env(
        workspace(),
        &["check", tenant, "--plugin-dir", &plugins],
        None,
        &[("HELLO_CLIENT_SECRET", "s3cret")],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("1 plugin(s): hello"), "{stdout}");
    let (code, _, stderr) =
        run_orquesta(workspace(), &["check", tenant, "--skip-environment"], None);
    assert_eq!(code, 0, "without the environment: {stderr}");
}

/// `check` compiles each component as the service does: a file that is present but
/// would be refused when served (not wasm, cut short) fails `check` too.
#[test]
fn check_refuses_a_component_the_service_would_refuse() {
    let dir = tempdir();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let hello = std::fs::read(plugin("hello")).unwrap();
    std::fs::write(plugins.join("good.wasm"), &hello).unwrap();
    std::fs::write(plugins.join("cut.wasm"), &hello[..hello.len() / 2]).unwrap();
    std::fs::write(plugins.join("text.wasm"), b"not a component").unwrap();
    let plugin_dir = plugins.to_str().unwrap();
    for (source, accepted) in [("good", true), ("cut", false), ("text", false)] {
        let config = write(
            dir.path(),
            "acme.toml",
            format!("[plugins.p]\nsource = \"{source}.wasm\"\n"),
        );
        let (code, stdout, stderr) = run_orquesta(
            dir.path(),
            &["check", &config, "--plugin-dir", plugin_dir],
            None,
        );
        if accepted {
            assert_eq!(code, 0, "{source}: {stderr}");
            assert!(stdout.contains("1 plugin(s): p"), "{stdout}");
        } else {
            assert_ne!(code, 0, "{source} passed check: {stdout}");
            assert!(
                stderr.contains(&format!(
                    "plugin `p` ({plugin_dir}/{source}.wasm) would be refused"
                )),
                "{source}: {stderr}"
            );
        }
        // Without the environment the component is not compiled: only the file is read.
        let (code, _, stderr) =
            run_orquesta(dir.path(), &["check", &config, "--skip-environment"], None);
        assert_eq!(code, 0, "{source} with --skip-environment: {stderr}");
    }
}

#[test]
fn a_missing_secret_is_refused_before_running() {
    let dir = tempdir();
    let config = write(
        dir.path(),
        "acme.toml",
        "[plugins.hello]\nsource = \"hello.wasm\"\nsecrets = { token = { env = \"ORQUESTA_TEST_UNSET_VAR\" } }\n",
    );
    let hello = plugin("hello");
    let err = refused(
        &[
            "invoke",
            hello.to_str().unwrap(),
            "--event",
            "-",
            "--config",
            &config,
        ],
        dir.path(),
    );
    assert!(err.contains("ORQUESTA_TEST_UNSET_VAR is not set"), "{err}");
}

#[test]
fn orquesta_test_passes_the_examples_and_reports_failures_honestly() {
    let hello = plugin("hello");
    let fixtures = workspace().join("examples/hello/fixtures.toml");
    let (code, stdout, stderr) = run_orquesta(
        workspace(),
        &["test", hello.to_str().unwrap(), fixtures.to_str().unwrap()],
        None,
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.lines().any(|l| l == "4 passed, 0 failed"),
        "{stdout}"
    );

    let dir = tempdir();
    let failing = write(
        dir.path(),
        "failing.toml",
        r#"
[[case]]
name = "right"
event = { type = "task", input = { name = "Ana" } }
expect = { output = { message = "Hello, Ana!" }, match = "subset" }

[[case]]
name = "wrong on purpose"
event = { type = "task", input = { name = "Ana" } }
expect = { output = { message = "Goodbye, Ana!" }, match = "subset" }

[[case]]
name = "expects an error that does not come"
event = { type = "task", input = { name = "Ana" } }
expect = { error = "timeout" }
"#,
    );
    let (code, stdout, _) = run_orquesta(
        dir.path(),
        &["test", hello.to_str().unwrap(), &failing],
        None,
    );
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("ok     right"), "{stdout}");
    assert!(stdout.contains("FAILED wrong on purpose"), "{stdout}");
    assert!(
        stdout.contains("expected: {\"message\":\"Goodbye, Ana!\"}"),
        "{stdout}"
    );
    assert!(
        stdout.contains("actual:   {\"count\":1,\"message\":\"Hello, Ana!\"}"),
        "{stdout}"
    );
    assert!(
        stdout.contains("FAILED expects an error that does not come"),
        "{stdout}"
    );
    assert!(
        stdout.lines().any(|l| l == "1 passed, 2 failed"),
        "{stdout}"
    );
}

#[test]
fn a_fixture_file_with_unknown_keys_is_refused() {
    let dir = tempdir();
    let bad = write(
        dir.path(),
        "bad.toml",
        "[[case]]\nname = \"x\"\nevent = {}\nexpekt = {}\n",
    );
    let hello = plugin("hello");
    let err = refused(&["test", hello.to_str().unwrap(), &bad], dir.path());
    assert!(err.contains("bad.toml:4: unknown field `expekt`"), "{err}");
}

#[test]
fn orquesta_test_runs_workflow_fixtures_and_refuses_bad_definitions() {
    let definition = workspace().join("examples/workflows/welcome.asl.json");
    let fixtures = workspace().join("examples/workflows/welcome.fixtures.toml");
    let (code, stdout, stderr) = run_orquesta(
        workspace(),
        &[
            "test",
            definition.to_str().unwrap(),
            fixtures.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.lines().any(|l| l == "5 passed, 0 failed"),
        "{stdout}"
    );

    let dir = tempdir();
    let failing = write(
        dir.path(),
        "failing.toml",
        r#"
[[case]]
name = "the wrong path"
input = { name = "Ana", pause_seconds = 1 }
[case.tasks]
Greet = [{ return = { message = "Hi" } }]
GreetAgain = [{ return = { message = "Hi again", count = 2 } }]
[case.expect]
path = ["Check", "Greet", "Summary"]
"#,
    );
    let (code, stdout, _) = run_orquesta(
        dir.path(),
        &["test", definition.to_str().unwrap(), &failing],
        None,
    );
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("FAILED the wrong path"), "{stdout}");
    assert!(
        stdout.contains("actual:   Check -> Greet -> Pause -> GreetAgain -> Summary"),
        "{stdout}"
    );

    let broken = write(
        dir.path(),
        "broken.asl.json",
        r#"{"StartAt": "A", "States": {"A": {"Type": "Pass"}}}"#,
    );
    let err = refused(&["test", &broken, fixtures.to_str().unwrap()], dir.path());
    assert!(
        err.contains("broken.asl.json") && err.contains("A"),
        "{err}"
    );
    let not_json = write(dir.path(), "not.asl.json", "{");
    let err = refused(&["test", &not_json, fixtures.to_str().unwrap()], dir.path());
    assert!(err.contains("is not JSON"), "{err}");
    let bad_fixture = write(
        dir.path(),
        "bad.toml",
        "[[case]]\nname = \"x\"\n[case.tasks]\nGreet = [{ retrun = 1 }]\n",
    );
    let err = refused(
        &["test", definition.to_str().unwrap(), &bad_fixture],
        dir.path(),
    );
    assert!(
        err.contains("bad.toml:4") && err.contains("retrun"),
        "{err}"
    );
}

/// Every plugin fixture file under `examples/` passes against its plugin: each file's
/// first line names the plugin it tests.
#[test]
fn every_example_fixture_file_passes() {
    let mut files = Vec::new();
    for dir in std::fs::read_dir(workspace().join("examples")).unwrap() {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&dir).unwrap() {
            let file = file.unwrap().path();
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            if name.ends_with("fixtures.toml") {
                files.push(file);
            }
        }
    }
    files.sort();
    let mut ran = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        // `orquesta test target/wasm32-wasip2/release/NAME.wasm ...` or a workflow's
        // `orquesta test examples/.../NAME.asl.json ...` in the header comment.
        let Some(target) = text
            .lines()
            .take_while(|l| l.starts_with('#'))
            .find_map(|l| l.split_whitespace().skip_while(|w| *w != "test").nth(1))
        else {
            panic!("{}: the header does not say what it tests", file.display());
        };
        let target = match target.strip_prefix("target/wasm32-wasip2/release/") {
            Some(wasm) => plugin(wasm.trim_end_matches(".wasm")),
            None => workspace().join(target),
        };
        let (code, stdout, stderr) = run_orquesta(
            workspace(),
            &["test", target.to_str().unwrap(), file.to_str().unwrap()],
            None,
        );
        assert_eq!(code, 0, "{}:\n{stdout}{stderr}", file.display());
        assert!(
            stdout
                .lines()
                .last()
                .is_some_and(|l| l.ends_with(" passed, 0 failed")),
            "{}: {stdout}",
            file.display()
        );
        ran += 1;
    }
    assert!(ran >= 6, "only {ran} fixture files found: {files:?}");
}

#[test]
fn blob_put_stores_a_file_where_the_service_reads_blobs() {
    let dir = tempdir();
    let config = write(dir.path(), "host.toml", "data_dir = \"data\"\n");
    let file = write(dir.path(), "map.json", "{\"v\":1}");
    let args = |extra: &[&str]| {
        let mut a = vec![
            "blob-put",
            "--config",
            config.as_str(),
            "acme",
            "siesa-config",
            "maps/field-mappings.json",
            file.as_str(),
        ];
        a.extend_from_slice(extra);
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let run = |a: Vec<String>| {
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        run_orquesta(dir.path(), &refs, None)
    };
    let (code, stdout, stderr) = run(args(&[]));
    assert_eq!(code, 0, "{stdout}{stderr}");
    let stored = dir
        .path()
        .join("data/blobs/acme/siesa-config/maps/field-mappings.json");
    assert_eq!(std::fs::read_to_string(&stored).unwrap(), "{\"v\":1}");
    // --if-absent keeps what is there.
    std::fs::write(&file, "{\"v\":2}").unwrap();
    let (code, stdout, _) = run(args(&["--if-absent"]));
    assert_eq!(code, 0);
    assert!(stdout.starts_with("kept"), "{stdout}");
    assert_eq!(std::fs::read_to_string(&stored).unwrap(), "{\"v\":1}");
    let err = refused(
        &["blob-put", "--config", &config, "acme", "b", "a//b", &file],
        dir.path(),
    );
    assert!(err.contains("empty segment"), "{err}");
    let err = refused(
        &["blob-put", "--config", &config, "acme", "../up", "k", &file],
        dir.path(),
    );
    assert!(err.contains("blob bucket name"), "{err}");
}

/// `orquesta test-pattern`: the admin API's test offline. Exit 0 on a match, 1 on none,
/// 2 on a refused pattern or event, with the reason on one line.
#[test]
fn test_pattern_tests_patterns_and_policies_offline() {
    let dir = tempdir();
    let event = write(
        dir.path(),
        "event.json",
        r#"{"version": "0", "id": "1", "detail-type": "AppointmentConfirmed", "source": "appointments",
            "account": "acme", "time": "2026-12-05T10:00:00Z", "region": "local", "resources": [],
            "detail": {"status": "completed"}}"#,
    );
    let pattern = write(
        dir.path(),
        "pattern.json",
        r#"{"detail": {"status": [{"prefix": {"equals-ignore-case": "COMP"}}]}}"#,
    );
    let (code, stdout, stderr) =
        run_orquesta(dir.path(), &["test-pattern", &pattern, &event], None);
    assert_eq!((code, stdout.trim()), (0, r#"{"result":true}"#), "{stderr}");
    let (code, stdout, _) = run_orquesta(
        dir.path(),
        &[
            "test-pattern",
            r#"{"detail.status": ["cancelled"]}"#,
            &event,
        ],
        None,
    );
    assert_eq!((code, stdout.trim()), (1, r#"{"result":false}"#));
    // From standard input, and a policy on attributes.
    let (code, stdout, stderr) = run_orquesta(
        dir.path(),
        &[
            "test-pattern",
            "--kind",
            "filter-policy",
            r#"{"country": ["PE"]}"#,
            "-",
        ],
        Some(r#"{"country": "[\"CL\", \"PE\"]"}"#),
    );
    assert_eq!((code, stdout.trim()), (0, r#"{"result":true}"#), "{stderr}");
    let err = refused(
        &["test-pattern", r#"{"a": [{"wildcard": "x**"}]}"#, &event],
        dir.path(),
    );
    assert!(
        err.contains(
            "Event pattern is not valid. Reason: .a: Consecutive wildcard characters at pos 1"
        ),
        "{err}"
    );
    let err = refused(
        &[
            "test-pattern",
            "--kind",
            "filter-policy",
            r#"{"a": [{"anything-but": {"suffix": "x"}}]}"#,
            "{}",
        ],
        dir.path(),
    );
    assert!(err.contains("Invalid parameter: FilterPolicy"), "{err}");
    let err = refused(
        &["test-pattern", r#"{"a": ["x"]}"#, r#"{"a": "x"}"#],
        dir.path(),
    );
    assert!(err.contains("Parameter Event is not valid"), "{err}");
    let err = refused(&["test-pattern", "missing.json", &event], dir.path());
    assert!(
        err.contains("cannot read the pattern file missing.json"),
        "{err}"
    );
    let err = refused(&["test-pattern", "{broken", &event], dir.path());
    assert!(err.contains("the pattern is not JSON"), "{err}");
}
