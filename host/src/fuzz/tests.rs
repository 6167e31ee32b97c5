//! The fuzz targets under `cargo test`: every seed in `fuzz/seeds/` (inputs that once
//! crashed a target are kept there as regressions), then a few hundred generated inputs
//! per target, shaped like the parser's language so most reach past the first check.

use std::path::PathBuf;

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Value, json};

use super::{TARGETS, witness};

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/seeds")
        .join(target);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("a seed entry").path();
            let data = std::fs::read(&path).expect("a readable seed");
            (path.display().to_string(), data)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_seed_runs_without_panic() {
    for (name, target) in TARGETS {
        let seeds = seeds(name);
        assert!(seeds.len() >= 5, "{name}: only {} seeds", seeds.len());
        for (file, data) in seeds {
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(outcome.is_ok(), "{name}: {file} panicked");
        }
    }
}

#[test]
fn the_witness_matches_each_condition_by_its_own_value() {
    let cases = [
        (
            json!({"a": ["x", "y"], "b": [5]}),
            json!({"a": "x", "b": 5}),
        ),
        (
            json!({"a": [{"prefix": "ab"}], "b": {"c": [{"exists": false}], "d": [{"wildcard": "p*q"}]}}),
            json!({"a": "ab", "b": {"d": "pq"}}),
        ),
        (
            json!({"n": [{"numeric": [">", 0, "<=", 5]}], "$or": [{"n": [7]}, {"m": [null]}]}),
            json!({"n": [2e-5, 7]}),
        ),
        (
            json!({"a": [{"exists": false}], "$or": [{"a": ["x"]}, {"b": [true]}]}),
            json!({"b": true}),
        ),
    ];
    for (pattern, want) in cases {
        let doc = witness::document(&pattern);
        assert_eq!(doc.as_ref(), Some(&want), "{pattern}");
        super::pattern(pattern.to_string().as_bytes());
    }
    // No certain witness: the target checks nothing more than the absence of a panic.
    let unsure = json!({"a": [{"anything-but": "x"}]});
    assert_eq!(witness::document(&unsure), None);
    let empty_range = json!({"n": [{"numeric": [">", 1, "<", 1.0000000000000002]}]});
    assert_eq!(witness::document(&empty_range), None);
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn text() -> impl Strategy<Value = String> {
    select(vec![
        "", "a", "ab", "Ab", "ab*", "*", "a*b", "é", "5", " 5", "1e3", "x\0y", "\\", "'", "\"",
        "{}", "$", "States.", "..",
    ])
    .prop_map(str::to_string)
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        (-10i64..10).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        select(vec![
            0.5,
            -1.5,
            -0.0,
            1e300,
            -1e300,
            5e-324,
            f64::MAX,
            f64::MIN,
            9.007_199_254_740_993e15,
        ])
        .prop_map(Value::from),
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        text().prop_map(Value::String),
    ]
}

/// JSON whose objects use `keys`, so documents and patterns name the same fields.
fn json_with(keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 24, 4, move |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            btree_map(select(keys), inner, 0..4).prop_map(object),
        ]
    })
}

fn object<K: ToString>(fields: impl IntoIterator<Item = (K, Value)>) -> Value {
    Value::Object(
        fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect::<Map<_, _>>(),
    )
}

/// `"a.b"` spells a path through `"a"`, in patterns and documents alike.
const FIELDS: &[&str] = &["a", "b", "c", "a.b"];

fn condition() -> impl Strategy<Value = Value> {
    let op = || select(vec!["=", "<", "<=", ">", ">=", "!="]);
    let operator = select(vec![
        "prefix",
        "suffix",
        "equals-ignore-case",
        "wildcard",
        "exists",
        "anything-but",
        "numeric",
        "cidr",
        "bogus",
    ]);
    prop_oneof![
        scalar(),
        (operator, scalar()).prop_map(|(k, v)| json!({ k: v })),
        (op(), number()).prop_map(|(o, n)| json!({"numeric": [o, n]})),
        (op(), number(), op(), number()).prop_map(|(a, x, b, y)| json!({"numeric": [a, x, b, y]})),
        vec(prop_oneof![text().prop_map(Value::String), number()], 1..3)
            .prop_map(|v| json!({"anything-but": v})),
        text().prop_map(|t| json!({"anything-but": {"prefix": t}})),
        (
            select(vec!["suffix", "equals-ignore-case", "wildcard"]),
            text()
        )
            .prop_map(|(op, t)| json!({"anything-but": { op: [t] }})),
        (select(vec!["prefix", "suffix"]), text())
            .prop_map(|(op, t)| json!({ op: {"equals-ignore-case": t} })),
        (any::<[u8; 4]>(), 0u8..40).prop_map(
            |(a, bits)| json!({"cidr": format!("{}/{bits}", std::net::Ipv4Addr::from(a))})
        ),
        (any::<u128>(), 0u8..140).prop_map(
            |(a, bits)| json!({"cidr": format!("{}/{bits}", std::net::Ipv6Addr::from(a))})
        ),
    ]
}

fn pattern() -> impl Strategy<Value = Value> {
    let conditions = || vec(condition(), 1..4).prop_map(Value::Array);
    btree_map(select(FIELDS), conditions(), 0..3)
        .prop_map(object)
        .prop_recursive(3, 16, 3, move |inner| {
            (
                btree_map(
                    select(FIELDS),
                    prop_oneof![conditions(), inner.clone()],
                    0..3,
                ),
                proptest::option::of(vec(inner, 1..3)),
            )
                .prop_map(|(fields, any_of)| {
                    let mut p = object(fields);
                    if let (Some(alternatives), Value::Object(map)) = (any_of, &mut p) {
                        map.insert("$or".into(), Value::Array(alternatives));
                    }
                    p
                })
        })
}

fn cron_field() -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec![
            "*", "?", "L", "LW", "W", "MON-FRI", "SUN", "JAN-MAR", "5L", "2#1", "7#5", "15W", "1W",
            "31W", "30W", "0/15", "*/5", "*/100", "1,2,3", "FRI-MON", "L-3", "2,L",
        ])
        .prop_map(str::to_string),
        (0u32..100).prop_map(|n| n.to_string()),
        (0u32..100, 0u32..100).prop_map(|(a, b)| format!("{a}-{b}")),
        (0u32..100, 0u32..100).prop_map(|(a, b)| format!("{a}/{b}")),
        (1u32..10, 0u32..7).prop_map(|(a, b)| format!("{a}#{b}")),
        (1960u32..2300).prop_map(|y| y.to_string()),
        (1960u32..2300, 1960u32..2300).prop_map(|(a, b)| format!("{a}-{b}")),
        (1960u32..2300, 1u32..100).prop_map(|(a, b)| format!("{a}/{b}")),
    ]
}

fn schedule_text() -> impl Strategy<Value = String> {
    let cron = (vec(cron_field(), 6), any::<Option<bool>>()).prop_map(|(mut f, day)| {
        match day {
            Some(true) => f[2] = "?".into(),
            Some(false) => f[4] = "?".into(),
            None => {}
        }
        format!("cron({})", f.join(" "))
    });
    let rate = (
        select(vec![
            0i64,
            1,
            2,
            5,
            60,
            1_000_000,
            100_000_000_000,
            i64::MAX,
            -1,
        ]),
        select(vec![
            "second", "seconds", "minute", "minutes", "hour", "hours", "day", "days", "weeks",
        ]),
    )
        .prop_map(|(n, unit)| format!("rate({n} {unit})"));
    let zone = select(vec![
        "",
        "\nUTC",
        "\nAmerica/Lima",
        "\nEurope/Madrid",
        "\nAmerica/New_York",
        "\nAustralia/Lord_Howe",
        "\nPacific/Chatham",
        "\nAsia/Kathmandu",
        "\nMars/Olympus",
    ]);
    (prop_oneof![cron, rate], zone).prop_map(|(e, z)| format!("{e}{z}"))
}

fn path_text() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        select(vec!["a", "b", "list", "weird key", "é", "0", "*"]).prop_map(|n| format!(".{n}")),
        (0usize..4).prop_map(|i| format!("[{i}]")),
        select(vec!["a", "b", "it's", "a\\'b", "x]y", "a','b", ""])
            .prop_map(|n| format!("['{n}']")),
        select(vec!["a", "b\\\"c"]).prop_map(|n| format!("[\"{n}\"]")),
        select(vec![
            "[*]",
            "..a",
            "[0:1]",
            "[-1]",
            "[?@.k > 1]",
            "[ 1 ]",
            "[01]",
            "[+1]",
            "[ 'a' ]",
            "[",
        ])
        .prop_map(str::to_string),
    ];
    (select(vec!["$", "$$", "$ ", "a"]), vec(segment, 0..4))
        .prop_map(|(root, segments)| root.to_string() + &segments.concat())
}

const PATH_FIELDS: &[&str] = &["a", "b", "list", "weird key", "it's", "0", "k"];

fn call_text() -> impl Strategy<Value = String> {
    let literal = select(vec![
        "1",
        "-3",
        "0",
        "9223372036854775807",
        "-9223372036854775808",
        "18446744073709551615",
        "1.5",
        "1e400",
        "2.0",
        "true",
        "false",
        "null",
        "'text'",
        "''",
        "'a,b'",
        "'{} and {}'",
        "'\\''",
        "'\\{\\}'",
        "'SHA-256'",
        "'MD5'",
        "'{\"a\":1}'",
        "'dGV4dA=='",
        "'",
        "bogus",
        "$",
        "$.a",
        "$.list",
        "$.k",
        "$$.Execution.Id",
        "$.list[0]",
        "$[",
        "$.list[?@.k > 1]",
    ])
    .prop_map(str::to_string);
    let name = || {
        select(vec![
            "States.Format",
            "States.StringToJson",
            "States.JsonToString",
            "States.Array",
            "States.ArrayPartition",
            "States.ArrayContains",
            "States.ArrayRange",
            "States.ArrayGetItem",
            "States.ArrayLength",
            "States.ArrayUnique",
            "States.Base64Encode",
            "States.Base64Decode",
            "States.Hash",
            "States.JsonMerge",
            "States.MathRandom",
            "States.MathAdd",
            "States.StringSplit",
            "States.UUID",
            "States.Bogus",
        ])
    };
    let call = |args: Vec<String>, f: &str| format!("{f}({})", args.join(", "));
    (name(), vec(literal.clone(), 0..4))
        .prop_map(move |(f, args)| call(args, f))
        .prop_recursive(3, 12, 3, move |inner| {
            (name(), vec(prop_oneof![literal.clone(), inner], 0..4))
                .prop_map(move |(f, args)| call(args, f))
        })
}

fn event_text() -> impl Strategy<Value = String> {
    let field = select(vec![
        "method",
        "path",
        "params",
        "query",
        "headers",
        "body",
        "identity",
        "queue",
        "messages",
        "topic",
        "id",
        "subject",
        "attributes",
        "bus",
        "source",
        "detail_type",
        "detail",
        "time",
        "schedule",
        "scheduled_at",
        "input",
        "execution_id",
        "state",
        "context",
        "bogus",
    ]);
    let kind = select(vec![
        "http", "queue", "topic", "bus", "schedule", "task", "Http", "bogus",
    ]);
    let value = json_with(&["subject", "body", "id", "k", "receive_count"]);
    (kind, btree_map(field, value, 0..6)).prop_map(|(kind, fields)| {
        let mut event = object(fields);
        if let Value::Object(map) = &mut event {
            map.insert("type".into(), kind.into());
        }
        event.to_string()
    })
}

/// An edit of a JSON document: replace or remove the node a number picks.
#[derive(Debug, Clone)]
enum Edit {
    Remove(usize),
    Replace(usize, Value),
}

fn pointers(doc: &Value, at: String, out: &mut Vec<String>) {
    match doc {
        Value::Object(map) => {
            for (k, v) in map {
                let here = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(here.clone());
                pointers(v, here, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let here = format!("{at}/{i}");
                out.push(here.clone());
                pointers(v, here, out);
            }
        }
        _ => {}
    }
}

fn apply(mut doc: Value, edits: &[Edit]) -> Value {
    for edit in edits {
        let mut all = Vec::new();
        pointers(&doc, String::new(), &mut all);
        if all.is_empty() {
            break;
        }
        let (Edit::Remove(pick) | Edit::Replace(pick, _)) = edit;
        let at = &all[pick % all.len()];
        match edit {
            Edit::Replace(_, v) => {
                if let Some(node) = doc.pointer_mut(at) {
                    *node = v.clone();
                }
            }
            Edit::Remove(_) => {
                let (parent, last) = at.rsplit_once('/').expect("a pointer has a slash");
                match doc.pointer_mut(parent) {
                    Some(Value::Object(map)) => {
                        map.remove(&last.replace("~1", "/").replace("~0", "~"));
                    }
                    Some(Value::Array(items)) => {
                        if let Ok(i) = last.parse::<usize>() {
                            items.remove(i);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    doc
}

fn asl_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        json_with(&["Type", "Next", "End", "Variable", "StringEquals", "Default"]),
        select(vec![
            "$",
            "$.a",
            "$$.Map.Item.Value",
            "States.Format('{}', $.a)",
            "States.MathAdd($.n, 9223372036854775807)",
            "Pass",
            "Task",
            "Choice",
            "Wait",
            "Succeed",
            "Fail",
            "Parallel",
            "Map",
            "Done",
            "Prepare",
        ])
        .prop_map(Value::from),
    ]
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    vec(
        prop_oneof![
            any::<usize>().prop_map(Edit::Remove),
            (any::<usize>(), asl_value()).prop_map(|(i, v)| Edit::Replace(i, v)),
        ],
        1..4,
    )
}

/// A line edit of a TOML file: drop or repeat a line, or give a key another value.
#[derive(Debug, Clone)]
enum LineEdit {
    Drop(usize),
    Repeat(usize),
    Set(usize, &'static str),
}

fn line_edits() -> impl Strategy<Value = Vec<LineEdit>> {
    let value = select(vec![
        "0",
        "-1",
        "4294967296",
        "1.5",
        "true",
        "\"\"",
        "\"x\"",
        "\"../..\"",
        "\"*\"",
        "[]",
        "[\"*\"]",
        "{}",
        "{ env = \"ORQUESTA_FUZZ_UNSET\" }",
        "\"cron(0 8 30 2 ? *)\"",
        "\"cron(0 8 ? * MON *)\"",
        "\"rate(1 minute)\"",
        "\"/{p+}\"",
        "\"/a/{id}/b\"",
        "\"/{a}/{b+}/c\"",
        "{ prefix = [\"x\"] }",
        "\"ANY\"",
    ]);
    vec(
        prop_oneof![
            any::<usize>().prop_map(LineEdit::Drop),
            any::<usize>().prop_map(LineEdit::Repeat),
            (any::<usize>(), value).prop_map(|(i, v)| LineEdit::Set(i, v)),
        ],
        1..4,
    )
}

fn edit_lines(text: &str, edits: &[LineEdit]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for edit in edits {
        if lines.is_empty() {
            break;
        }
        let (LineEdit::Drop(i) | LineEdit::Repeat(i) | LineEdit::Set(i, _)) = edit;
        let i = i % lines.len();
        match edit {
            LineEdit::Drop(_) => {
                lines.remove(i);
            }
            LineEdit::Repeat(_) => lines.insert(i, lines[i].clone()),
            LineEdit::Set(_, value) => {
                if let Some((key, _)) = lines[i].split_once('=') {
                    lines[i] = format!("{key}= {value}");
                }
            }
        }
    }
    lines.join("\n")
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn patterns(p in pattern(), docs in vec(json_with(FIELDS), 0..3)) {
        let input = std::iter::once(p).chain(docs).collect::<Vec<_>>();
        super::pattern(Value::Array(input).to_string().as_bytes());
    }

    #[test]
    fn schedules(text in schedule_text()) {
        super::schedule(text.as_bytes());
    }

    #[test]
    fn json_paths(path in path_text(), doc in json_with(PATH_FIELDS)) {
        super::json_path(format!("{path}\n{doc}").as_bytes());
    }

    #[test]
    fn intrinsics(call in call_text(), doc in json_with(PATH_FIELDS)) {
        super::intrinsic(format!("{call}\n{doc}").as_bytes());
    }

    #[test]
    fn events(text in event_text()) {
        super::event_json(text.as_bytes());
    }

    #[test]
    fn definitions(seed in any::<usize>(), edits in edits()) {
        let seeds = seeds("asl_definition");
        let (_, data) = &seeds[seed % seeds.len()];
        let doc: Value = serde_json::from_slice(data).expect("a JSON seed");
        super::asl_definition(apply(doc, &edits).to_string().as_bytes());
    }

    #[test]
    fn tenant_files(seed in any::<usize>(), edits in line_edits()) {
        let seeds = seeds("tenant_toml");
        let (_, data) = &seeds[seed % seeds.len()];
        let text = String::from_utf8_lossy(data);
        super::tenant_toml(edit_lines(&text, &edits).as_bytes());
    }
}

/// Found by the asl_definition fuzz target: without serde_json's `float_roundtrip`,
/// the integer below (past u64, so a float) was read as 2.22222222222e59 and that text
/// read back as 2.2222222222200003e59.
#[test]
fn numbers_read_back_from_their_json_text_unchanged() {
    for text in [
        "222222222222000000000000000000000000000012285882333461537677",
        "222222222221111111111111111111",
        "2.22222222222e59",
        "0.1",
        "5e-324",
    ] {
        let value: Value = serde_json::from_str(text).expect("a number");
        let again: Value = serde_json::from_str(&value.to_string()).expect("a number");
        assert_eq!(again, value, "{text}");
    }
}
