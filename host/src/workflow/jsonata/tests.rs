//! The evaluator as states use it: `$states`, variables, the cloud's functions, the
//! errors, and its bounds under hostile expressions.

use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use super::{Env, Tmpl, check_syntax, evaluate};
use crate::workflow::errors::QUERY_EVALUATION_ERROR;

fn vars() -> Map<String, Value> {
    match json!({"customerName": "María", "count": 7, "items": [1, 2, 3]}) {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn eval(field: Value) -> Result<Value, (String, String)> {
    let vars = vars();
    let env = Env {
        states: json!({
            "input": {"title": "Doctor", "n": [3, 1, 2], "price": 10.5, "nested": {"a": {"b": "deep"}}},
            "context": {"Execution": {"Name": "run-1"}, "State": {"Name": "S"}},
            "result": {"Payload": {"ok": true}}
        }),
        vars: Some(&vars),
    };
    let t = Tmpl::parse(&field, "States.S.Output").map_err(|e| ("load".into(), e.to_string()))?;
    evaluate(&t, &env, "Output").map_err(|e| (e.error, e.cause))
}

#[test]
fn fields_evaluate_as_the_developer_guide_shows() {
    // (field, expected): examples of "Transforming data with JSONata" and the JSONata
    // documentation, with $states and the variables above.
    let table = [
        (
            json!({"static": "Hello", "title": "{% $states.input.title %}", "name": "{% $customerName %}", "not-evaluated": "$customerName"}),
            json!({"static": "Hello", "title": "Doctor", "name": "María", "not-evaluated": "$customerName"}),
        ),
        (json!("{% $states.input.n %}"), json!([3, 1, 2])),
        (json!("{% $sum($states.input.n) %}"), json!(6)),
        (json!("{% $length($states.input.title) %}"), json!(6)),
        (json!("{% $sort($states.input.n) %}"), json!([1, 2, 3])),
        (json!("{% $states.input.price * 2 %}"), json!(21)),
        (json!("{% $states.input.price / 4 %}"), json!(2.625)),
        (
            json!("{% 'Hello ' & $customerName %}"),
            json!("Hello María"),
        ),
        (
            json!("{% $uppercase($states.input.title) %}"),
            json!("DOCTOR"),
        ),
        (json!("{% $states.input.nested.a.b %}"), json!("deep")),
        (
            json!("{% $states.context.Execution.Name %}"),
            json!("run-1"),
        ),
        (json!("{% $states.result.Payload.ok %}"), json!(true)),
        (json!("{% $states.input.n[0] %}"), json!(3)),
        (json!("{% $states.input.n[$ > 1] %}"), json!([3, 2])),
        (json!("{% $items.($ * 10) %}"), json!([10, 20, 30])),
        (
            json!("{% $states.input.price > 20 ? 'big' : 'small' %}"),
            json!("small"),
        ),
        (json!("{% $exists($states.input.missing) %}"), json!(false)),
        (
            json!("{% {'a': 1, 'b': [true, null]} %}"),
            json!({"a": 1, "b": [true, null]}),
        ),
        (json!("{% ($x := 2; $y := 3; $x * $y) %}"), json!(6)),
        (
            json!("{% $map([1,2], function($v){ $v + 1 }) %}"),
            json!([2, 3]),
        ),
        (json!("{% $string(5) %}"), json!("5")),
        (
            json!("{% $merge([{'a': 1}, {'b': 2}]) %}"),
            json!({"a": 1, "b": 2}),
        ),
        // A variable named as a built-in function reads the variable, as in the cloud.
        (json!("{% $count %}"), json!(7)),
        // Not wholly `{% %}`: a literal string.
        (json!(" {% 1 %}"), json!(" {% 1 %}")),
        (json!("{% 1 %} "), json!("{% 1 %} ")),
        (
            json!([1, "{% 1 + 1 %}", {"k": "{% 3 %}"}]),
            json!([1, 2, {"k": 3}]),
        ),
        // The cloud's functions.
        (
            json!("{% $partition([1,2,3,4,5,6,7,8,9], 3) %}"),
            json!([[1, 2, 3], [4, 5, 6], [7, 8, 9]]),
        ),
        (
            json!("{% $partition([1,2,3,4], 3) %}"),
            json!([[1, 2, 3], [4]]),
        ),
        (json!("{% $range(0, 10, 2) %}"), json!([0, 2, 4, 6, 8, 10])),
        (json!("{% $range(3, 1, -1) %}"), json!([3, 2, 1])),
        (
            json!("{% $hash('input data', 'SHA-1') %}"),
            json!("aaff4a450a104cd177d28d18d74485e8cae074b7"),
        ),
        (
            json!("{% $parse('{\"a\": [1, {\"b\": null}]}') %}"),
            json!({"a": [1, {"b": null}]}),
        ),
        (json!("{% $random(42) = $random(42) %}"), json!(true)),
        (json!("{% $random() >= 0 and $random() < 1 %}"), json!(true)),
        (json!("{% $length($uuid()) %}"), json!(36)),
    ];
    for (field, expected) in table {
        assert_eq!(eval(field.clone()), Ok(expected), "{field}");
    }
}

#[test]
fn failures_are_query_evaluation_errors() {
    // (field, words the cause holds)
    let table = [
        (
            json!("{% $states.input.missing %}"),
            "returned nothing (undefined)",
        ),
        (json!({"a": "{% $nope %}"}), "'Output/a' returned nothing"),
        (json!("{% $error('boom') %}"), "boom"),
        (json!("{% 1 + 'a' %}"), "T2002"),
        (json!("{% function($x){$x} %}"), "returned a function"),
        (json!("{% $range(0, 5000, 1) %}"), "more than 1000 items"),
        (json!("{% $range(0, 5, 0) %}"), "step must not be 0"),
        (
            json!("{% $partition([1], 0) %}"),
            "chunk size must be positive",
        ),
        (json!("{% $hash('x', 'SHA-3') %}"), "SHA-3"),
        (json!("{% $parse('{nope') %}"), "not JSON"),
        (json!("{% 1/0 %}"), "which JSON cannot hold"),
    ];
    for (field, words) in table {
        match eval(field.clone()) {
            Err((error, cause)) => {
                assert_eq!(error, QUERY_EVALUATION_ERROR, "{field}: {cause}");
                assert!(cause.contains(words), "{field}: {cause}");
                // The state is named where the error ends it (`StateError::in_state`).
                assert!(cause.starts_with("The JSONata expression '"), "{cause}");
            }
            Ok(v) => panic!("{field} gave {v}"),
        }
    }
}

#[test]
fn syntax_is_checked_at_load() {
    for good in [
        "$states.input.a",
        "$x ? 1 : 2",
        "( $a := 1; $a )",
        "/* note */ 1",
    ] {
        assert_eq!(check_syntax(good), Ok(()), "{good}");
    }
    for bad in ["", "  ", "1 +", "$states.input[", "'open", "(1", "{'a': }"] {
        assert!(check_syntax(bad).is_err(), "{bad:?} parsed");
    }
    let huge = format!("{}1", "1 + ".repeat(5000));
    assert!(
        check_syntax(&huge)
            .unwrap_err()
            .contains("over the limit of 16384"),
        "a huge expression is refused"
    );
}

/// Asserts `field` fails quickly with a cause holding one of `words`, the host unharmed.
fn bounded(field: Value, words: &[&str]) {
    let started = Instant::now();
    match eval(field.clone()) {
        Err((error, cause)) => {
            assert_eq!(error, QUERY_EVALUATION_ERROR, "{field}: {cause}");
            assert!(words.iter().any(|w| cause.contains(w)), "{field}: {cause}");
        }
        Ok(v) => panic!("{field} gave {}", crate::workflow::payload::in_cause(&v)),
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{field} took {:?}",
        started.elapsed()
    );
}

/// The limits' words in a cause.
const DEPTH: &str = "U1001";
const MEMORY: &str = "MiB an evaluation may allocate";
const TOO_BIG: &str = "would be over the limit of 16777216 bytes";

#[test]
fn attack_endless_recursion_ends_in_a_limit() {
    // The evaluator turns a call in tail position into a loop, which grows its arena.
    bounded(
        json!("{% ($f := function($x){ $f($x) }; $f(1)) %}"),
        &[DEPTH, MEMORY],
    );
    bounded(
        json!("{% ($f := function($x){ $x + $f($x + 1) }; $f(1)) %}"),
        &[DEPTH],
    );
    bounded(
        json!("{% ($f := function($x){ $x > 0 ? $f($x) : 0 }; $f(1)) %}"),
        &[DEPTH, MEMORY, "time limit"],
    );
}

#[test]
fn attack_huge_ranges_are_refused() {
    bounded(json!("{% [1..100000000] %}"), &["D2014"]);
    bounded(
        json!("{% $range(1, 100000000, 1) %}"),
        &["more than 1000 items"],
    );
    bounded(
        json!("{% $count([1..10000000].($ * 2)) %}"),
        &[MEMORY, "time limit"],
    );
}

#[test]
fn attack_huge_strings_are_refused() {
    // Doubling a string: past the arena's limit.
    bounded(
        json!("{% $reduce([1..40], function($acc, $v){ $acc & $acc }, 'xxxxxxxx') %}"),
        &[MEMORY],
    );
    // Built-ins asked for more than the limit before they start.
    bounded(json!("{% $length($pad('', 1e12, 'x')) %}"), &[TOO_BIG]);
    bounded(json!("{% $length($pad('', -1e12)) %}"), &[TOO_BIG]);
    bounded(
        json!("{% ($s := $pad('', 100000, 'x'); $length($join([1..1000].($s)))) %}"),
        &[TOO_BIG],
    );
    bounded(
        json!("{% ($s := $pad('', 100000, 'x'); $length($string([1..1000].($s)))) %}"),
        &[TOO_BIG],
    );
    bounded(
        json!("{% ($s := $pad('', 100000, 'x'); $length($replace($s, 'x', $s))) %}"),
        &[TOO_BIG],
    );
    // `&` stringifies an array: the (patched) serialiser stops at its limit.
    bounded(
        json!("{% ($s := $pad('', 100000, 'x'); $length('' & [1..100000].($s))) %}"),
        &[
            "the value's text is over the limit of 16777216 bytes",
            MEMORY,
        ],
    );
    // Under the limits, the guarded built-ins work as before.
    assert_eq!(eval(json!("{% $pad('ab', 4, '-') %}")), Ok(json!("ab--")));
    assert_eq!(eval(json!("{% $pad('ab', -4) %}")), Ok(json!("  ab")));
    assert_eq!(
        eval(json!("{% $join(['a', 'b'], ',') %}")),
        Ok(json!("a,b"))
    );
    assert_eq!(
        eval(json!("{% $string({'a': [1]}) %}")),
        Ok(json!("{\"a\":[1]}"))
    );
    assert_eq!(
        eval(json!("{% $replace('a-b-c', '-', '+') %}")),
        Ok(json!("a+b+c"))
    );
}

#[test]
fn attack_huge_results_stop_at_the_payload_limit() {
    // One string many times over in the result: stopped as it is copied out.
    bounded(
        json!("{% ($s := $pad('', 100000, 'x'); [1..1000].($s)) %}"),
        &["over the limit of 262144 bytes"],
    );
    // Nesting deeper than JSON may.
    bounded(
        json!("{% $reduce([1..200], function($acc, $v){ {'a': $acc} }, {}) %}"),
        &["nested deeper than 128"],
    );
}

/// An evaluation blocks its caller for up to the time limit; the async workers it is
/// called from must go on serving meanwhile. With one worker, a task evaluating
/// expressions back to back would otherwise starve every other task of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn attack_evaluations_do_not_hold_the_async_workers() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let ticks = Arc::new(AtomicUsize::new(0));
    let counted = ticks.clone();
    let ticker = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(5)).await;
            counted.fetch_add(1, Ordering::Relaxed);
        }
    });
    let busy = tokio::spawn(async {
        let started = Instant::now();
        let mut runs = 0;
        while started.elapsed() < Duration::from_millis(600) {
            let answer = eval(json!("{% $sum([1..20000]) %}"));
            assert_eq!(answer, Ok(json!(200010000)));
            runs += 1;
        }
        runs
    });
    let before = ticks.load(Ordering::Relaxed);
    let runs = busy.await.expect("the evaluating task");
    let during = ticks.load(Ordering::Relaxed) - before;
    ticker.abort();
    assert!(runs > 0);
    // 600 ms of 5 ms sleeps: 120 at best; a starved ticker gets none.
    assert!(during >= 30, "the other task ran {during} times in 600 ms");
}
