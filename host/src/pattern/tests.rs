//! Table-driven cases, written from the EventBridge "event patterns" / "content
//! filtering" / "comparison operators" pages and the SNS "subscription filter policies"
//! pages (their examples become rows: pattern, document, whether it matches; invalid
//! patterns with the refusal).

use super::*;

fn parse_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("bad JSON in a test row {text}: {e}"))
}

/// Rows of (pattern, document, expected) under one dialect and number reading.
fn table(dialect: Dialect, numbers: Numbers, rows: &[(&str, &str, bool)]) {
    for (i, (pattern, doc, want)) in rows.iter().enumerate() {
        let p = Pattern::parse(&parse_json(pattern), dialect)
            .unwrap_or_else(|e| panic!("row {i}: {pattern} refused: {e}"));
        assert_eq!(
            p.matches(&parse_json(doc), numbers),
            *want,
            "row {i}: {pattern} on {doc}"
        );
    }
}

fn eventbridge(rows: &[(&str, &str, bool)]) {
    table(Dialect::EventBridge, Numbers::Json, rows);
}

/// Rows of (pattern, path, part of the reason) that `dialect` refuses.
fn refused(dialect: Dialect, rows: &[(&str, &str, &str)]) {
    for (pattern, path, reason) in rows {
        let e = Pattern::parse(&parse_json(pattern), dialect)
            .err()
            .unwrap_or_else(|| panic!("{pattern} was accepted under {dialect:?}"));
        assert_eq!(e.path, *path, "{pattern}: {e}");
        assert!(e.reason.contains(reason), "{pattern}: {e}");
    }
}

fn accepted(dialect: Dialect, rows: &[&str]) {
    for pattern in rows {
        if let Err(e) = Pattern::parse(&parse_json(pattern), dialect) {
            panic!("{pattern} refused under {dialect:?}: {e}");
        }
    }
}

/// The EC2 event of EventBridge's "event patterns" page.
const EC2: &str = r#"{"version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
  "detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2",
  "account": "111122223333", "time": "2017-12-22T18:43:48Z", "region": "us-west-1",
  "resources": ["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"],
  "detail": {"instance-id": "i-1234567890abcdef0", "state": "terminated"}}"#;

#[test]
fn exact_values_and_arrays() {
    eventbridge(&[
        (
            r#"{"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"], "detail": {"state": ["terminated"]}}"#,
            EC2,
            true,
        ),
        (
            r#"{"source": ["aws.ec2"], "detail": {"state": ["running"]}}"#,
            EC2,
            false,
        ),
        (
            r#"{"detail": {"state": ["initializing", "terminated"]}}"#,
            EC2,
            true,
        ),
        // Arrays page: the pattern matches when the pattern's and the event's arrays meet.
        (
            r#"{"resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f", "arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"]}"#,
            EC2,
            true,
        ),
        (r#"{"resources": ["arn:other"]}"#, EC2, false),
        (r#"{"country": ["PE"]}"#, r#"{}"#, false),
        (r#"{"n": [5]}"#, r#"{"n": 5.0}"#, true),
        (r#"{"n": [5]}"#, r#"{"n": "5"}"#, false),
        (r#"{"ok": [true]}"#, r#"{"ok": true}"#, true),
        (r#"{"ok": [true]}"#, r#"{"ok": "true"}"#, false),
        // Null and empty values page: null matches null, "" matches "".
        (
            r#"{"responseElements": [null]}"#,
            r#"{"responseElements": null}"#,
            true,
        ),
        (r#"{"responseElements": [null]}"#, r#"{}"#, false),
        (r#"{"LastName": [""]}"#, r#"{"LastName": ""}"#, true),
        (r#"{"LastName": [""]}"#, r#"{"LastName": "x"}"#, false),
        // A condition on an object field: objects are not leaf values.
        (r#"{"detail": ["x"]}"#, r#"{"detail": {"a": "x"}}"#, false),
        // Nested arrays are flattened.
        (r#"{"a": [3]}"#, r#"{"a": [[1, 2], [3]]}"#, true),
        (r#"{"a": [4]}"#, r#"{"a": [[1, 2], [3]]}"#, false),
        (
            r#"{"items": {"sku": [{"prefix": "A"}]}}"#,
            r#"{"items": [{"sku": "B1"}, {"sku": "A2"}]}"#,
            true,
        ),
        // One array element must satisfy a whole nested pattern.
        (
            r#"{"items": {"sku": ["A"], "n": [2]}}"#,
            r#"{"items": [{"sku": "A", "n": 1}, {"sku": "B", "n": 2}]}"#,
            false,
        ),
    ]);
}

#[test]
fn dotted_keys_are_nested_fields() {
    eventbridge(&[
        (r#"{"detail.state": ["terminated"]}"#, EC2, true),
        (r#"{"detail.state": ["running"]}"#, EC2, false),
        (
            r#"{"detail": {"state": ["ok"]}}"#,
            r#"{"detail.state": "ok"}"#,
            true,
        ),
        (
            r#"{"detail.state": ["ok"]}"#,
            r#"{"detail.state": "ok"}"#,
            true,
        ),
        (r#"{"a.b.c": ["x"]}"#, r#"{"a": {"b.c": "x"}}"#, true),
        (r#"{"a.b.c": ["x"]}"#, r#"{"a.b": {"c": "y"}}"#, false),
        // Both spellings in one pattern: both must hold.
        (
            r#"{"a.b": ["x"], "a": {"c": ["y"]}}"#,
            r#"{"a": {"b": "x", "c": "y"}}"#,
            true,
        ),
        (
            r#"{"a.b": ["x"], "a": {"c": ["y"]}}"#,
            r#"{"a": {"b": "x", "c": "z"}}"#,
            false,
        ),
        // Both spellings in one event: either value may match.
        (
            r#"{"a.b": ["2"]}"#,
            r#"{"a": {"b": "1"}, "a.b": "2"}"#,
            true,
        ),
        (
            r#"{"a": {"b": [{"exists": false}]}}"#,
            r#"{"a.b": "1"}"#,
            false,
        ),
    ]);
}

#[test]
fn prefix_suffix_and_ignore_case() {
    eventbridge(&[
        (
            r#"{"time": [{"prefix": "2017-10-02"}]}"#,
            r#"{"time": "2017-10-02T18:43:48Z"}"#,
            true,
        ),
        (r#"{"time": [{"prefix": "2017-10-02"}]}"#, EC2, false),
        (r#"{"s": [{"prefix": "1"}]}"#, r#"{"s": 12}"#, false),
        (
            r#"{"FileName": [{"suffix": ".png"}]}"#,
            r#"{"FileName": "a.png"}"#,
            true,
        ),
        (
            r#"{"FileName": [{"suffix": ".png"}]}"#,
            r#"{"FileName": "a.PNG"}"#,
            false,
        ),
        (
            r#"{"detail": {"service": [{"prefix": {"equals-ignore-case": "EventB"}}]}}"#,
            r#"{"detail": {"service": "eventbridge"}}"#,
            true,
        ),
        (
            r#"{"detail": {"service": [{"prefix": {"equals-ignore-case": "EventB"}}]}}"#,
            r#"{"detail": {"service": "EVENTBRIDGE"}}"#,
            true,
        ),
        (
            r#"{"detail": {"service": [{"prefix": {"equals-ignore-case": "EventB"}}]}}"#,
            r#"{"detail": {"service": "Bridge"}}"#,
            false,
        ),
        (
            r#"{"detail": {"FileName": [{"suffix": {"equals-ignore-case": ".png"}}]}}"#,
            r#"{"detail": {"FileName": "photo.PNG"}}"#,
            true,
        ),
        (
            r#"{"detail": {"FileName": [{"suffix": {"equals-ignore-case": ".png"}}]}}"#,
            r#"{"detail": {"FileName": "photo.jpg"}}"#,
            false,
        ),
        (
            r#"{"Name": [{"equals-ignore-case": "alice"}]}"#,
            r#"{"Name": "ALICE"}"#,
            true,
        ),
        (
            r#"{"Name": [{"equals-ignore-case": "alice"}]}"#,
            r#"{"Name": "Alicia"}"#,
            false,
        ),
        (
            r#"{"Name": [{"equals-ignore-case": "émile"}]}"#,
            r#"{"Name": "ÉMILE"}"#,
            true,
        ),
    ]);
}

#[test]
fn anything_but_every_form() {
    eventbridge(&[
        (
            r#"{"detail": {"state": [{"anything-but": "initializing"}]}}"#,
            EC2,
            true,
        ),
        (
            r#"{"detail": {"state": [{"anything-but": "terminated"}]}}"#,
            EC2,
            false,
        ),
        (
            r#"{"x-limit": [{"anything-but": 123}]}"#,
            r#"{"x-limit": 124}"#,
            true,
        ),
        (
            r#"{"x-limit": [{"anything-but": 123}]}"#,
            r#"{"x-limit": 123}"#,
            false,
        ),
        (
            r#"{"state": [{"anything-but": ["stopped", "overloaded"]}]}"#,
            r#"{"state": "overloaded"}"#,
            false,
        ),
        (
            r#"{"state": [{"anything-but": ["stopped", "overloaded"]}]}"#,
            r#"{"state": "running"}"#,
            true,
        ),
        (
            r#"{"x": [{"anything-but": [100, 200, 300]}]}"#,
            r#"{"x": 200}"#,
            false,
        ),
        (
            r#"{"x": [{"anything-but": [100, 200, 300]}]}"#,
            r#"{"x": 201}"#,
            true,
        ),
        (
            r#"{"state": [{"anything-but": {"prefix": "init"}}]}"#,
            r#"{"state": "initializing"}"#,
            false,
        ),
        (
            r#"{"state": [{"anything-but": {"prefix": "init"}}]}"#,
            r#"{"state": "running"}"#,
            true,
        ),
        (
            r#"{"Region": [{"anything-but": {"prefix": ["us-", "eu-"]}}]}"#,
            r#"{"Region": "eu-west-1"}"#,
            false,
        ),
        (
            r#"{"Region": [{"anything-but": {"prefix": ["us-", "eu-"]}}]}"#,
            r#"{"Region": "ap-south-1"}"#,
            true,
        ),
        (
            r#"{"FileName": [{"anything-but": {"suffix": ".png"}}]}"#,
            r#"{"FileName": "a.png"}"#,
            false,
        ),
        (
            r#"{"FileName": [{"anything-but": {"suffix": ".png"}}]}"#,
            r#"{"FileName": "a.txt"}"#,
            true,
        ),
        (
            r#"{"FileName": [{"anything-but": {"suffix": [".png", ".jpg"]}}]}"#,
            r#"{"FileName": "a.jpg"}"#,
            false,
        ),
        (
            r#"{"state": [{"anything-but": {"equals-ignore-case": "initializing"}}]}"#,
            r#"{"state": "INITIALIZING"}"#,
            false,
        ),
        (
            r#"{"state": [{"anything-but": {"equals-ignore-case": ["initializing", "stopped"]}}]}"#,
            r#"{"state": "Stopped"}"#,
            false,
        ),
        (
            r#"{"state": [{"anything-but": {"equals-ignore-case": "initializing"}}]}"#,
            r#"{"state": "running"}"#,
            true,
        ),
        (
            r#"{"FilePath": [{"anything-but": {"wildcard": "*/lib/*"}}]}"#,
            r#"{"FilePath": "/usr/lib/x.so"}"#,
            false,
        ),
        (
            r#"{"FilePath": [{"anything-but": {"wildcard": "*/lib/*"}}]}"#,
            r#"{"FilePath": "/usr/bin/x"}"#,
            true,
        ),
        (
            r#"{"FilePath": [{"anything-but": {"wildcard": ["*/lib/*", "*/bin/*"]}}]}"#,
            r#"{"FilePath": "/usr/bin/x"}"#,
            false,
        ),
        // Absent fields and objects hold no value other than the excluded ones.
        (r#"{"s": [{"anything-but": "x"}]}"#, r#"{}"#, false),
        (
            r#"{"s": [{"anything-but": "x"}]}"#,
            r#"{"s": {"t": "y"}}"#,
            false,
        ),
        // An array matches when any element is not excluded.
        (
            r#"{"s": [{"anything-but": ["a", "b"]}]}"#,
            r#"{"s": ["a", "c"]}"#,
            true,
        ),
        (
            r#"{"s": [{"anything-but": ["a", "b"]}]}"#,
            r#"{"s": ["a", "b"]}"#,
            false,
        ),
    ]);
}

#[test]
fn numeric_every_form() {
    let rows = [
        (
            r#"{"c": [{"numeric": [">", 0, "<=", 5]}]}"#,
            r#"{"c": 5}"#,
            true,
        ),
        (
            r#"{"c": [{"numeric": [">", 0, "<=", 5]}]}"#,
            r#"{"c": 0}"#,
            false,
        ),
        (
            r#"{"c": [{"numeric": [">=", 0, "<", 5]}]}"#,
            r#"{"c": 0}"#,
            true,
        ),
        (
            r#"{"c": [{"numeric": [">=", 0, "<", 5]}]}"#,
            r#"{"c": 5}"#,
            false,
        ),
        (r#"{"d": [{"numeric": ["<", 10]}]}"#, r#"{"d": -3}"#, true),
        (r#"{"d": [{"numeric": ["<=", 10]}]}"#, r#"{"d": 10}"#, true),
        (r#"{"d": [{"numeric": [">", 10]}]}"#, r#"{"d": 10}"#, false),
        (r#"{"d": [{"numeric": [">=", 10]}]}"#, r#"{"d": 10}"#, true),
        (
            r#"{"x": [{"numeric": ["=", 3.018e2]}]}"#,
            r#"{"x": 301.8}"#,
            true,
        ),
        (
            r#"{"x": [{"numeric": ["=", 3.018e2]}]}"#,
            r#"{"x": 301.9}"#,
            false,
        ),
        // Numeric matching works with JSON numbers only.
        (r#"{"d": [{"numeric": ["<", 10]}]}"#, r#"{"d": "3"}"#, false),
        (
            r#"{"d": [{"numeric": ["<", 10]}]}"#,
            r#"{"d": [20, 3]}"#,
            true,
        ),
        (r#"{"d": [{"numeric": ["<", 10]}]}"#, r#"{}"#, false),
    ];
    eventbridge(&rows);
    table(Dialect::SnsBody, Numbers::Json, &rows);
    // SNS attributes are strings: numbers are read from them ("Number" attributes).
    table(
        Dialect::SnsAttributes,
        Numbers::FromStrings,
        &[
            (
                r#"{"price_usd": [{"numeric": [">=", 100]}]}"#,
                r#"{"price_usd": "210.75"}"#,
                true,
            ),
            (
                r#"{"price_usd": [{"numeric": [">=", 100]}]}"#,
                r#"{"price_usd": "99"}"#,
                false,
            ),
            (
                r#"{"price_usd": [{"numeric": [">", 0, "<=", 150]}]}"#,
                r#"{"price_usd": "150"}"#,
                true,
            ),
            (
                r#"{"price_usd": [{"numeric": ["=", 301.5]}]}"#,
                r#"{"price_usd": "301.50"}"#,
                true,
            ),
            (r#"{"p": [100]}"#, r#"{"p": "100"}"#, true),
            (r#"{"p": [100]}"#, r#"{"p": "1e2"}"#, true),
            (
                r#"{"p": [{"numeric": ["<", 10]}]}"#,
                r#"{"p": "ten"}"#,
                false,
            ),
        ],
    );
}

/// Numbers compare to six decimal places in event patterns and five in filter policies,
/// as the clouds document their precision: closer values are equal, in ranges, exact
/// values and anything-but alike.
#[test]
fn numbers_compare_to_the_dialects_decimal_places() {
    eventbridge(&[
        (r#"{"n": [5]}"#, r#"{"n": 5.0000001}"#, true),
        (r#"{"n": [5]}"#, r#"{"n": 5.000001}"#, false),
        (
            r#"{"n": [{"numeric": ["=", 0.1234564]}]}"#,
            r#"{"n": 0.123456}"#,
            true,
        ),
        (
            r#"{"n": [{"numeric": [">", 10]}]}"#,
            r#"{"n": 10.0000004}"#,
            false,
        ),
        (
            r#"{"n": [{"numeric": [">", 10]}]}"#,
            r#"{"n": 10.000001}"#,
            true,
        ),
        (
            r#"{"n": [{"anything-but": [7]}]}"#,
            r#"{"n": 7.0000002}"#,
            false,
        ),
        (
            r#"{"n": [{"numeric": ["<=", 5000000000]}]}"#,
            r#"{"n": 4999999999.9999996}"#,
            true,
        ),
    ]);
    let sns = [
        (r#"{"n": [5]}"#, r#"{"n": 5.000001}"#, true),
        (r#"{"n": [5]}"#, r#"{"n": 5.00001}"#, false),
        (
            r#"{"n": [{"numeric": ["<", 1]}]}"#,
            r#"{"n": 0.999999}"#,
            false,
        ),
    ];
    table(Dialect::SnsBody, Numbers::Json, &sns);
    table(
        Dialect::SnsAttributes,
        Numbers::FromStrings,
        &[(r#"{"n": [5]}"#, r#"{"n": "5.000001"}"#, true)],
    );
}

#[test]
fn exists_matches_leaf_values_only() {
    eventbridge(&[
        (
            r#"{"detail": {"c-count": [{"exists": true}]}}"#,
            r#"{"detail": {"c-count": 5}}"#,
            true,
        ),
        (
            r#"{"detail": {"c-count": [{"exists": true}]}}"#,
            r#"{"detail": {"c-count": null}}"#,
            true,
        ),
        (
            r#"{"detail": {"c-count": [{"exists": true}]}}"#,
            r#"{"detail": {"c-count": [1]}}"#,
            true,
        ),
        (
            r#"{"detail": {"c-count": [{"exists": true}]}}"#,
            r#"{"detail": {}}"#,
            false,
        ),
        // Not leaves: an object, an empty array, an array of objects.
        (
            r#"{"detail": {"c-count": [{"exists": true}]}}"#,
            r#"{"detail": {"c-count": {"c1": 100}}}"#,
            false,
        ),
        (
            r#"{"detail": {"c-count": [{"exists": true}]}}"#,
            r#"{"detail": {"c-count": []}}"#,
            false,
        ),
        (
            r#"{"detail": {"c-count": [{"exists": true}]}}"#,
            r#"{"detail": {"c-count": [{"c1": 1}]}}"#,
            false,
        ),
        // The content-filtering page's two `exists: false` examples both match.
        (
            r#"{"detail": {"c-count": [{"exists": false}]}}"#,
            r#"{"detail-type": ["EC2 Instance State-change Notification"], "detail": {"state": ["initializing", "running"]}}"#,
            true,
        ),
        (
            r#"{"detail": {"c-count": [{"exists": false}]}}"#,
            r#"{"detail": {"state": ["initializing", "running"], "c-count": {"c1": 100}}}"#,
            true,
        ),
        (
            r#"{"detail": {"c-count": [{"exists": false}]}}"#,
            r#"{"detail": {"c-count": 1}}"#,
            false,
        ),
        (r#"{"d": {"a": [{"exists": false}]}}"#, r#"{}"#, true),
    ]);
}

#[test]
fn cidr_ipv4_and_ipv6() {
    let rows = [
        (
            r#"{"ip": [{"cidr": "10.0.0.0/24"}]}"#,
            r#"{"ip": "10.0.0.0"}"#,
            true,
        ),
        (
            r#"{"ip": [{"cidr": "10.0.0.0/24"}]}"#,
            r#"{"ip": "10.0.0.255"}"#,
            true,
        ),
        (
            r#"{"ip": [{"cidr": "10.0.0.0/24"}]}"#,
            r#"{"ip": "10.1.1.0"}"#,
            false,
        ),
        (
            r#"{"ip": [{"cidr": "10.0.0.0/24"}]}"#,
            r#"{"ip": "not an address"}"#,
            false,
        ),
        (
            r#"{"ip": [{"cidr": "10.0.0.0/24"}]}"#,
            r#"{"ip": "::ffff:10.0.0.1"}"#,
            false,
        ),
        (
            r#"{"ip": [{"cidr": "0.0.0.0/0"}]}"#,
            r#"{"ip": "192.168.1.1"}"#,
            true,
        ),
        (
            r#"{"ip": [{"cidr": "192.168.1.7/32"}]}"#,
            r#"{"ip": "192.168.1.7"}"#,
            true,
        ),
        (
            r#"{"ip": [{"cidr": "2001:db8::/32"}]}"#,
            r#"{"ip": "2001:db8:1::5"}"#,
            true,
        ),
        (
            r#"{"ip": [{"cidr": "2001:db8::/32"}]}"#,
            r#"{"ip": "2001:db9::5"}"#,
            false,
        ),
        (
            r#"{"ip": [{"cidr": "2001:db8::/32"}]}"#,
            r#"{"ip": "10.0.0.1"}"#,
            false,
        ),
    ];
    eventbridge(&rows);
    table(Dialect::SnsAttributes, Numbers::FromStrings, &rows);
}

#[test]
fn wildcards() {
    eventbridge(&[
        (
            r#"{"source": [{"wildcard": "Simple*Service"}]}"#,
            r#"{"source": "SimpleQueueService"}"#,
            true,
        ),
        (
            r#"{"source": [{"wildcard": "Simple*Service"}]}"#,
            r#"{"source": "SimpleService"}"#,
            true,
        ),
        (
            r#"{"source": [{"wildcard": "Simple*Service"}]}"#,
            r#"{"source": "ASimpleService"}"#,
            false,
        ),
        (
            r#"{"EventBusArn": [{"wildcard": "arn:aws:events:us-east-1:*:event-bus/*"}]}"#,
            r#"{"EventBusArn": "arn:aws:events:us-east-1:123456789012:event-bus/orders"}"#,
            true,
        ),
        (
            r#"{"k": [{"wildcard": "dir/*.png"}]}"#,
            r#"{"k": "dir/a/b.png"}"#,
            true,
        ),
        (
            r#"{"k": [{"wildcard": "dir/*.png"}]}"#,
            r#"{"k": "dir/a.jpg"}"#,
            false,
        ),
        (
            r#"{"k": [{"wildcard": "a*b*c"}]}"#,
            r#"{"k": "acb"}"#,
            false,
        ),
        (r#"{"k": [{"wildcard": "*"}]}"#, r#"{"k": ""}"#, true),
        (r#"{"k": [{"wildcard": "*"}]}"#, r#"{"k": 5}"#, false),
        // Escapes: `\*` is a star, `\\` a backslash.
        (r#"{"k": [{"wildcard": "a\\*b"}]}"#, r#"{"k": "a*b"}"#, true),
        (
            r#"{"k": [{"wildcard": "a\\*b"}]}"#,
            r#"{"k": "axb"}"#,
            false,
        ),
        (
            r#"{"k": [{"wildcard": "a\\\\*"}]}"#,
            r#"{"k": "a\\bc"}"#,
            true,
        ),
        (
            r#"{"k": [{"wildcard": "a\\\\*"}]}"#,
            r#"{"k": "abc"}"#,
            false,
        ),
    ]);
}

#[test]
fn or_alternatives() {
    let pattern = r#"{"source": ["aws.cloudwatch"], "$or": [{"metricName": ["CPUUtilization", "ReadLatency"]}, {"namespace": ["AWS/EC2", "AWS/ES"]}]}"#;
    let nested = r#"{"source": ["aws.cloudwatch"], "$or": [{"metricName": ["CPUUtilization"]}, {"metricType": ["MetricType"], "namespace": ["AWS/EC2"], "$or": [{"metricId": [1234]}, {"spaceId": [1000]}]}, {"scope": ["Service"]}]}"#;
    let rows = [
        (
            pattern,
            r#"{"source": "aws.cloudwatch", "metricName": "ReadLatency"}"#,
            true,
        ),
        (
            pattern,
            r#"{"source": "aws.cloudwatch", "namespace": "AWS/ES"}"#,
            true,
        ),
        (
            pattern,
            r#"{"source": "aws.cloudwatch", "namespace": "AWS/S3"}"#,
            false,
        ),
        (
            pattern,
            r#"{"source": "aws.ec2", "metricName": "ReadLatency"}"#,
            false,
        ),
        (
            nested,
            r#"{"source": "aws.cloudwatch", "metricType": "MetricType", "namespace": "AWS/EC2", "spaceId": 1000}"#,
            true,
        ),
        (
            nested,
            r#"{"source": "aws.cloudwatch", "metricType": "MetricType", "namespace": "AWS/EC2", "spaceId": 1}"#,
            false,
        ),
        (
            nested,
            r#"{"source": "aws.cloudwatch", "scope": "Service"}"#,
            true,
        ),
    ];
    eventbridge(&rows);
    table(Dialect::SnsBody, Numbers::Json, &rows[..4]);
}

#[test]
fn sns_string_arrays_match_element_by_element() {
    let doc = |attrs: &[(&str, &str)]| {
        attributes_document(
            &attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>(),
        )
    };
    let interests = Pattern::parse(
        &parse_json(r#"{"customer_interests": ["rugby", "tennis"]}"#),
        Dialect::SnsAttributes,
    )
    .expect("the documentation's policy");
    for (attributes, want) in [
        (vec![("customer_interests", "rugby")], true),
        (vec![("customer_interests", r#"["rugby", "tennis"]"#)], true),
        (
            vec![("customer_interests", r#"["soccer", "rugby", "hockey"]"#)],
            true,
        ),
        (vec![("customer_interests", "baseball")], false),
        (vec![("customer_interests", r#"["baseball"]"#)], false),
        (vec![("other", "rugby")], false),
    ] {
        assert_eq!(
            interests.matches(&doc(&attributes), Numbers::FromStrings),
            want,
            "{attributes:?}"
        );
    }
    let anything_but = Pattern::parse(
        &parse_json(r#"{"customer_interests": [{"anything-but": ["rugby", "tennis"]}]}"#),
        Dialect::SnsAttributes,
    )
    .expect("the documentation's policy");
    for (value, want) in [
        ("baseball", true),
        (r#"["rugby", "baseball"]"#, true),
        ("rugby", false),
        (r#"["rugby", "tennis"]"#, false),
    ] {
        assert_eq!(
            anything_but.matches(&doc(&[("customer_interests", value)]), Numbers::FromStrings),
            want,
            "{value}"
        );
    }
    // Numbers in a String.Array compare as numbers; text that only looks like an array
    // stays a string.
    let numeric = Pattern::parse(
        &parse_json(r#"{"n": [{"numeric": [">", 5]}]}"#),
        Dialect::SnsAttributes,
    )
    .expect("valid");
    assert!(numeric.matches(&doc(&[("n", "[1, 9]")]), Numbers::FromStrings));
    assert!(!numeric.matches(&doc(&[("n", "[1, 2]")]), Numbers::FromStrings));
    let text = Pattern::parse(
        &parse_json(r#"{"t": ["[not json"]}"#),
        Dialect::SnsAttributes,
    )
    .expect("valid");
    assert!(text.matches(&doc(&[("t", "[not json")]), Numbers::FromStrings));
}

#[test]
fn valid_patterns_are_accepted() {
    accepted(
        Dialect::EventBridge,
        &[
            r#"{"FilePath": [{"anything-but": {"wildcard": "*/lib/*"}}]}"#,
            r#"{"state": [{"anything-but": {"equals-ignore-case": ["a", "b"]}}]}"#,
            r#"{"Region": [{"anything-but": {"prefix": ["us-", "eu-"]}}]}"#,
            r#"{"FileName": [{"anything-but": {"suffix": [".png"]}}]}"#,
            r#"{"ip": [{"cidr": "10.0.0.0/8"}, {"cidr": "fe80::/10"}]}"#,
            r#"{"s": [{"prefix": {"equals-ignore-case": "x"}}, {"suffix": {"equals-ignore-case": "y"}}]}"#,
            r#"{"a": {"b": {"c": {"d": {"e": {"f": {"g": ["deep"]}}}}}}}"#,
            r#"{"k": [{"wildcard": "*a*a*a*"}]}"#,
            r#"{"FileName": [{"wildcard": "/Users/*/dir/dir/doc.txt"}]}"#,
            r#"{"x": [{"numeric": ["=", 5000000000]}]}"#,
        ],
    );
    accepted(
        Dialect::SnsAttributes,
        &[
            r#"{"a": ["1"], "b": ["2"], "c": ["3"], "d": ["4"], "e": ["5"]}"#,
            r#"{"source_ip": [{"cidr": "10.0.0.0/24"}]}"#,
            r#"{"event": [{"anything-but": {"prefix": "order-"}}]}"#,
            r#"{"a": [1, 2, 3, 4, 5], "b": [1, 2, 3, 4, 5], "c": [1, 2, 3, 4, 5, 6]}"#,
            r#"{"$or": [{"a": ["1"], "b": ["2"]}, {"c": ["3"], "d": ["4"], "e": ["5"]}]}"#,
        ],
    );
    accepted(
        Dialect::SnsBody,
        &[r#"{"store": {"address": {"city": ["Lima"]}}}"#],
    );
}

#[test]
fn invalid_patterns_are_refused_with_their_path() {
    refused(
        Dialect::EventBridge,
        &[
            ("\"x\"", "", "a pattern is a JSON object"),
            (
                r#"{"source": "aws.ec2"}"#,
                ".source",
                "\"source\" must be an object or an array",
            ),
            (r#"{"a": 5}"#, ".a", "must be an object or an array"),
            (r#"{"a": []}"#, ".a", "Empty arrays are not allowed"),
            (r#"{"a": {}}"#, ".a", "Empty objects are not allowed"),
            (r#"{"a": [{}]}"#, ".a", "Empty objects are not allowed"),
            (
                r#"{"a": [{"regex": "x"}]}"#,
                ".a",
                "Unrecognized match type regex",
            ),
            (
                r#"{"a": [{"prefix": 1}]}"#,
                ".a",
                "prefix match pattern must be a string",
            ),
            (
                r#"{"a": [{"prefix": {"numeric": 1}}]}"#,
                ".a",
                "Unsupported prefix pattern",
            ),
            (
                r#"{"a": [{"prefix": "x", "suffix": "y"}]}"#,
                ".a",
                "Only one key allowed",
            ),
            (
                r#"{"a": [{"exists": "yes"}]}"#,
                ".a",
                "either true or false",
            ),
            (
                r#"{"a": [{"numeric": ">"}]}"#,
                ".a",
                "numeric must be an array",
            ),
            (
                r#"{"a": [{"numeric": [">", "x"]}]}"#,
                ".a",
                "must be a number",
            ),
            (
                r#"{"a": [{"numeric": ["!=", 1]}]}"#,
                ".a",
                "Unrecognized numeric range operator",
            ),
            (
                r#"{"a": [{"numeric": ["<", 5, ">", 1]}]}"#,
                ".a",
                "lower bound",
            ),
            (
                r#"{"a": [{"numeric": [">", 5, "<", 1]}]}"#,
                ".a",
                "lower bound",
            ),
            (
                r#"{"a": [{"numeric": ["=", 1, "<", 5]}]}"#,
                ".a",
                "lower bound",
            ),
            (
                r#"{"a": [{"numeric": [">", 1, "<", 5, "=", 3]}]}"#,
                ".a",
                "numeric takes",
            ),
            (
                r#"{"a": [{"numeric": [">", 5.0e10]}]}"#,
                ".a",
                "out of range",
            ),
            (r#"{"a": [{"anything-but": []}]}"#, ".a", "Empty arrays"),
            (
                r#"{"a": [{"anything-but": ["x", 1]}]}"#,
                ".a",
                "only all strings or all numbers",
            ),
            (
                r#"{"a": [{"anything-but": [null]}]}"#,
                ".a",
                "only all strings or all numbers",
            ),
            (
                r#"{"a": [{"anything-but": true}]}"#,
                ".a",
                "must be an array or single string/number",
            ),
            (
                r#"{"a": [{"anything-but": {"numeric": [">", 1]}}]}"#,
                ".a",
                "Unsupported anything-but pattern: numeric",
            ),
            (
                r#"{"a": [{"anything-but": {"prefix": ""}}]}"#,
                ".a",
                "cannot be empty",
            ),
            (
                r#"{"a": [{"anything-but": {"suffix": ""}}]}"#,
                ".a",
                "cannot be empty",
            ),
            (
                r#"{"a": [{"anything-but": {"prefix": ["x", ""]}}]}"#,
                ".a",
                "cannot be empty",
            ),
            (
                r#"{"a": [{"anything-but": {"prefix": []}}]}"#,
                ".a",
                "Empty arrays",
            ),
            (
                r#"{"a": [{"anything-but": {"prefix": 1}}]}"#,
                ".a",
                "a string or an array of strings",
            ),
            (
                r#"{"a": [{"wildcard": "a**b"}]}"#,
                ".a",
                "Consecutive wildcard characters at pos 1",
            ),
            (
                r#"{"a": [{"anything-but": {"wildcard": "**"}}]}"#,
                ".a",
                "Consecutive wildcard characters",
            ),
            (
                r#"{"a": [{"wildcard": "a\\b"}]}"#,
                ".a",
                "Invalid escape character at pos 1",
            ),
            (
                r#"{"a": [{"wildcard": 5}]}"#,
                ".a",
                "wildcard match pattern must be a string",
            ),
            (r#"{"a": [{"cidr": "10.0.0.0"}]}"#, ".a", "one '/' required"),
            (
                r#"{"a": [{"cidr": "10.0.0.0/33"}]}"#,
                ".a",
                "mask bits out of range",
            ),
            (r#"{"a": [{"cidr": "10.0.0/8"}]}"#, ".a", "Nonsensical CIDR"),
            (
                r#"{"a": [{"cidr": "::/129"}]}"#,
                ".a",
                "mask bits out of range",
            ),
            (r#"{"$or": [{"a": ["x"]}]}"#, ".$or", "at least two"),
            (r#"{"$or": {"a": ["x"]}}"#, ".$or", "array of patterns"),
            (
                r#"{"a": [["x"]]}"#,
                ".a",
                "Match value must be String, number, true, false, or null",
            ),
            (
                r#"{"d": {"$or": [{"a": ["x"]}, {}]}}"#,
                ".d.$or[1]",
                "Empty objects",
            ),
        ],
    );
}

#[test]
fn wildcards_the_cloud_calls_too_complex_are_refused() {
    refused(
        Dialect::EventBridge,
        &[
            (
                r#"{"k": [{"wildcard": "*a*a*a*a*a*a*"}]}"#,
                ".k",
                "Rule is too complex",
            ),
            // The documentation's example of what to avoid.
            (
                r#"{"EventBusArn": [{"wildcard": "*:*:*:*:*:*:event-bus/*"}]}"#,
                ".EventBusArn",
                "Rule is too complex",
            ),
            // A field's wildcards count together, in `$or` alternatives too.
            (
                r#"{"$or": [{"k": [{"wildcard": "*a*a*a*"}]}, {"k": [{"anything-but": {"wildcard": "*a*a*a*"}}]}]}"#,
                ".k",
                "Rule is too complex",
            ),
            // A field's wildcards count together, however the field is spelled.
            (
                r#"{"d": {"k": [{"wildcard": "*a*a*a*"}]}, "d.k": [{"wildcard": "*a*a*a*"}]}"#,
                ".d.k",
                "Rule is too complex",
            ),
        ],
    );
    // Each alone is fine.
    accepted(
        Dialect::EventBridge,
        &[r#"{"d": {"k": [{"wildcard": "*a*a*a*"}]}, "e": [{"wildcard": "*a*a*a*"}]}"#],
    );
    assert_eq!(field_key(".d.$or[0].k.$or[12].j"), ".d.k.j");
    assert_eq!(field_key(".$or[x].k"), ".$or[x].k");
    // The measure: "*a*a*a*" read with "aaa" matches 7 of its prefixes at once.
    let w = Wildcard::parse("*a*a*a*").expect("valid");
    assert_eq!(wildcard::complexity(&[&w], 100), Some(7));
    let plain = Wildcard::parse("arn:aws:events:us-east-1:*:event-bus/*").expect("valid");
    assert!(wildcard::complexity(&[&plain], WILDCARD_MAX_COMPLEXITY).is_some());
}

#[test]
fn sns_limits_and_operators() {
    refused(
        Dialect::SnsAttributes,
        &[
            (
                r#"{"a": ["1"], "b": ["2"], "c": ["3"], "d": ["4"], "e": ["5"], "f": ["6"]}"#,
                "",
                "more than 5 keys",
            ),
            (
                r#"{"$or": [{"a": ["1"], "b": ["2"], "c": ["3"], "g": ["7"]}, {"d": ["4"]}], "e": ["5"], "f": ["6"]}"#,
                "",
                "more than 5 keys",
            ),
            (
                r#"{"a": [1, 2, 3, 4, 5, 6], "b": [1, 2, 3, 4, 5], "c": [1, 2, 3, 4, 5, 6]}"#,
                "",
                "180 combinations",
            ),
            (r#"{"store": {"city": ["Lima"]}}"#, ".store", "cannot nest"),
            (
                r#"{"k": [{"wildcard": "a*"}]}"#,
                ".k",
                "Unrecognized match type wildcard",
            ),
            (
                r#"{"k": [{"anything-but": {"suffix": "x"}}]}"#,
                ".k",
                "Unsupported anything-but pattern: suffix",
            ),
            (
                r#"{"k": [{"anything-but": {"prefix": ""}}]}"#,
                ".k",
                "cannot be empty",
            ),
            (
                r#"{"k": ["x"], "n": [{"numeric": [">", 2.0e9]}]}"#,
                ".n",
                "out of range",
            ),
            (r#"{"k": "x"}"#, ".k", "must be an object or an array"),
        ],
    );
    let many: Vec<String> = (0..200).map(|i| i.to_string()).collect();
    let policy = format!("{{\"a\": [{}]}}", many.join(","));
    refused(
        Dialect::SnsBody,
        &[(policy.as_str(), "", "200 combinations")],
    );
    // EventBridge counts no combinations: the same list is a valid event pattern.
    accepted(Dialect::EventBridge, &[policy.as_str()]);
}

#[test]
fn size_limits() {
    let long = "x".repeat(EVENTBRIDGE_MAX_CHARS);
    refused(
        Dialect::EventBridge,
        &[(
            format!("{{\"a\": [\"{long}\"]}}").as_str(),
            "",
            "at most 2048",
        )],
    );
    let huge = "x".repeat(SNS_MAX_BYTES);
    refused(
        Dialect::SnsBody,
        &[(
            format!("{{\"a\": [\"{huge}\"]}}").as_str(),
            "",
            "at most 256 KB",
        )],
    );
}
