//! Fuzz targets for every parser a tenant or client controls. Each takes arbitrary bytes,
//! must never panic on them (the host never panics on input), and asserts an invariant
//! where one is cheap: an assertion that fails is a bug found, as a panic is.
//!
//! The crate in `fuzz/` runs them under libFuzzer; `cargo test` runs them over the seed
//! corpora in `fuzz/seeds/` and over generated inputs (docs/TESTING.md says how). Built
//! only for tests and with the `fuzzing` feature: nothing here is part of the service.

mod witness;

#[cfg(test)]
mod tests;

use std::path::Path;

use serde_json::Value;

use crate::event::EventJson;
use crate::pattern::{Dialect, Numbers, Pattern};
use crate::schedule::ScheduleExpr;
use crate::tenants::{RouteTemplate, TenantConfig};

pub use crate::workflow::fuzz::{asl_definition, intrinsic, json_path};

/// A target: bytes in, a panic when it finds a bug.
pub type Target = fn(&[u8]);

/// Every target by name: the `fuzz/` crate's binaries and the seed folders are named so.
pub const TARGETS: &[(&str, Target)] = &[
    ("tenant_toml", tenant_toml),
    ("asl_definition", asl_definition),
    ("pattern", pattern),
    ("schedule", schedule),
    ("event_json", event_json),
    ("json_path", json_path),
    ("intrinsic", intrinsic),
];

/// The tenant file's name as the service would have it: beside the examples, so a
/// workflow definition named relatively in a fuzzed file can load.
const TENANT_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/tenants/fuzz.toml");

/// Instants ticks are computed from: the epoch, 2026-12-05, both 2026 DST changes in
/// Europe and in the United States (UTC instants), a leap day, and the end of 2099.
const INSTANTS_MS: [i64; 8] = [
    0,
    1_796_428_800_000,
    1_774_746_000_000,
    1_792_890_000_000,
    1_772_953_200_000,
    1_793_512_800_000,
    1_709_208_000_000,
    4_102_444_799_000,
];

/// Tenant TOML through `TenantConfig::parse` (what the service and `orquesta check`
/// call). An accepted file's schedules tick consistently and each route's template
/// matches a path built from itself.
pub fn tenant_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(tenant) = TenantConfig::parse(Path::new(TENANT_FILE), text) else {
        return;
    };
    for (name, s) in &tenant.schedules {
        match s.parsed() {
            Ok(expr) => ticks_agree(&expr),
            Err(e) => panic!("schedule {name} was accepted, then refused: {e}"),
        }
    }
    for route in &tenant.routes {
        let template = match RouteTemplate::parse(&route.path) {
            Ok(t) => t,
            Err(e) => panic!("route {} was accepted, then refused: {e}", route.path),
        };
        let path = route_example(&route.path);
        assert!(
            template.matches(&path).is_some(),
            "route {} does not match {path}",
            route.path
        );
    }
}

/// A path a route template must match: each parameter replaced by a value.
fn route_example(template: &str) -> String {
    template
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| if s.starts_with('{') { "v" } else { s })
        .fold(String::new(), |path, s| path + "/" + s)
}

/// A filter policy or event pattern (JSON): `PATTERN`, or `[PATTERN, DOC, ...]` to match
/// documents too. A pattern that compiles matches a document built from its own values.
pub fn pattern(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let (pattern_json, docs) = match &value {
        Value::Array(items) if !items.is_empty() => (&items[0], &items[1..]),
        other => (other, &[][..]),
    };
    for dialect in [
        Dialect::EventBridge,
        Dialect::SnsAttributes,
        Dialect::SnsBody,
    ] {
        let Ok(compiled) = Pattern::parse(pattern_json, dialect) else {
            continue;
        };
        for doc in docs {
            compiled.matches(doc, Numbers::Json);
            compiled.matches(doc, Numbers::FromStrings);
        }
        if let Some(doc) = witness::document(pattern_json) {
            for numbers in [Numbers::Json, Numbers::FromStrings] {
                assert!(
                    compiled.matches(&doc, numbers),
                    "{pattern_json} does not match {doc} ({dialect:?}, {numbers:?})"
                );
            }
        }
    }
}

/// A schedule expression, then optionally a newline and a time zone. Ticks of an accepted
/// expression are consistent.
pub fn schedule(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (expression, zone) = match text.split_once('\n') {
        Some((e, z)) => (e, Some(z)),
        None => (text, None),
    };
    if let Ok(expr) = ScheduleExpr::parse(expression, zone) {
        ticks_agree(&expr);
    }
}

/// The scheduler's two questions agree: the next tick is later, the latest tick is not,
/// and a tick is the latest tick at its own instant (else hosts would skip or repeat it).
fn ticks_agree(expr: &ScheduleExpr) {
    for at in INSTANTS_MS {
        if let Some(next) = expr.next_after(at) {
            assert!(next > at, "{expr:?}: next tick {next} is not after {at}");
            assert_eq!(
                expr.latest_at_or_before(next),
                Some(next),
                "{expr:?}: tick {next} (after {at}) is not its own latest tick"
            );
        }
        if let Some(latest) = expr.latest_at_or_before(at) {
            assert!(latest <= at, "{expr:?}: latest tick {latest} is after {at}");
        }
    }
}

/// The JSON form of an event (`orquesta invoke --event`, a fixture's `event`), and a
/// result body. The CLI parses text and fixtures a JSON value: an event read one way
/// reads the same the other.
pub fn event_json(data: &[u8]) {
    crate::event::body_json(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(event) = EventJson::parse(text) else {
        return;
    };
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => panic!("an event parsed, but not as JSON: {e}"),
    };
    match EventJson::from_value(value) {
        Ok(again) => assert_eq!(format!("{event:?}"), format!("{again:?}")),
        Err(e) => panic!("an event parsed from text, not from its JSON value: {e}"),
    }
    event.into_event();
}
