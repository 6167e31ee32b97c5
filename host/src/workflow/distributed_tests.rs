//! The distributed Map's bucket fields, from the developer guide's pages "ItemReader",
//! "ItemBatcher" and "ResultWriter": what loads and what is refused, and runs on the
//! store with scripted tasks over a tenant's blobs (another tenant's are never
//! reached).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use super::definition::Machine;
use super::definition_error::Problem;
use super::executor::{Executor, ExecutorOptions};
use super::scripted::{Attempt, ScriptedTasks};
use crate::bindings::blob::ObjectPage;
use crate::capabilities::CapError;
use crate::capabilities::blob::{BlobBucket, Blobs, ObjectInfo};
use crate::store::testing::{Stores, each_store, store_test, tenant};
use crate::store::usage::Quota;
use crate::store::workflow::ExecutionRow;
use crate::store::{BlobBackend, FsBlobs, Store, TenantBlobs};

/// A distributed Map state with `fields` added, its item processor one Task `Work`.
fn map(fields: Value) -> Value {
    let mut state = json!({"Type": "Map", "End": true,
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "Work", "States": {"Work": {"Type": "Task", "Resource": "p", "End": true}}}});
    for (k, v) in fields.as_object().cloned().unwrap_or_default() {
        state[k] = v;
    }
    json!({"StartAt": "Each", "States": {"Each": state}})
}

fn csv_reader(key: &str) -> Value {
    json!({"Resource": "arn:aws:states:::s3:getObject",
        "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"},
        "Parameters": {"Bucket": "in", "Key": key}})
}

fn writer() -> Value {
    json!({"Resource": "arn:aws:states:::s3:putObject",
        "Parameters": {"Bucket": "out", "Prefix": "runs"}})
}

/// [`writer`] with a `WriterConfig`.
fn with_config(config: Value) -> Value {
    let mut w = writer();
    w["WriterConfig"] = config;
    w
}

#[test]
fn load_accepts_the_developer_guides_fields_and_refuses_the_rest() {
    let get = "arn:aws:states:::s3:getObject";
    let accepted = [
        json!({"ItemReader": csv_reader("a.csv")}),
        json!({"ItemReader": {"Resource": get, "ReaderConfig": {"InputType": "JSON", "MaxItems": 10},
            "Parameters": {"Bucket.$": "$.bucket", "Key.$": "$.key"}}}),
        json!({"ItemReader": {"Resource": get, "ReaderConfig": {"InputType": "JSONL", "MaxItemsPath": "$.n"},
            "Parameters": {"Bucket": "in", "Key": "a.jsonl"}}}),
        json!({"ItemReader": {"Resource": get, "ReaderConfig": {"InputType": "CSV",
            "CSVHeaderLocation": "GIVEN", "CSVHeaders": ["a", "b"], "CSVDelimiter": "SEMICOLON"},
            "Parameters": {"Bucket": "in", "Key": "a.csv"}}}),
        json!({"ItemReader": {"Resource": "arn:aws:states:::s3:listObjectsV2",
            "Parameters": {"Bucket": "in", "Prefix": "daily/"}}}),
        json!({"ItemReader": {"Resource": get, "ReaderConfig": {"InputType": "PARQUET", "MaxItems": 5},
            "Parameters": {"Bucket": "in", "Key": "a.parquet"}}}),
        json!({"ItemBatcher": {"MaxItemsPerBatch": 100, "BatchInput": {"run.$": "$.run"}}}),
        json!({"ItemBatcher": {"MaxInputBytesPerBatchPath": "$.bytes"}}),
        json!({"ItemBatcher": {"MaxItemsPerBatchPath": "$.n", "MaxInputBytesPerBatch": 262144}}),
        json!({"ResultWriter": writer()}),
        json!({"ResultWriter": {"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket.$": "$.out"}}}),
        json!({"ItemReader": csv_reader("a.csv"), "ItemBatcher": {"MaxItemsPerBatch": 10},
            "ResultWriter": writer(), "ToleratedFailurePercentage": 5, "Label": "rows"}),
        // "Required field combinations": WriterConfig alone, or with Resource and
        // Parameters; each field of it may be left out.
        json!({"ResultWriter": {"WriterConfig": {"Transformation": "FLATTEN", "OutputType": "JSON"}}}),
        json!({"ResultWriter": {"WriterConfig": {"OutputType": "JSONL"}}}),
        json!({"ResultWriter": {"WriterConfig": {}}}),
        json!({"ResultWriter": with_config(json!({"Transformation": "COMPACT", "OutputType": "JSONL"}))}),
        json!({"ResultWriter": with_config(json!({"Transformation": "NONE"}))}),
    ];
    for fields in accepted {
        Machine::parse(&map(fields.clone())).unwrap_or_else(|e| panic!("{fields}: {e}"));
    }
    let at = |f: &str| format!("States.Each.{f}");
    let refused: Vec<(Value, String, Problem)> = vec![
        (
            json!({"ItemReader": {"Resource": "arn:aws:states:::s3:getObjectX",
            "ReaderConfig": {"InputType": "JSON"}, "Parameters": {"Bucket": "in", "Key": "k"}}}),
            at("ItemReader.Resource"),
            Problem::UnknownResource(
                "arn:aws:states:::s3:getObjectX".into(),
                "arn:aws:states:::s3:getObject, arn:aws:states:::s3:listObjectsV2",
            ),
        ),
        (
            json!({"ItemReader": {"Resource": get, "Parameters": {"Bucket": "in", "Key": "k"}}}),
            at("ItemReader.ReaderConfig.InputType"),
            Problem::Required,
        ),
        (
            json!({"ItemReader": {"Resource": get, "ReaderConfig": {"InputType": "MANIFEST"},
            "Parameters": {"Bucket": "in", "Key": "k"}}}),
            at("ItemReader.ReaderConfig.InputType"),
            Problem::UnknownInputType("MANIFEST".into()),
        ),
        (
            json!({"ItemReader": {"Resource": get, "ReaderConfig": {"InputType": "PARQUET", "CSVDelimiter": "PIPE"},
            "Parameters": {"Bucket": "in", "Key": "k"}}}),
            at("ItemReader.ReaderConfig.CSVDelimiter"),
            Problem::CsvOnly,
        ),
        (
            json!({"ItemReader": {"Resource": get, "ReaderConfig": {"InputType": "JSON"},
            "Parameters": {"Bucket": "in"}}}),
            at("ItemReader.Parameters"),
            Problem::NeedsParameter("Key"),
        ),
        (
            json!({"ItemReader": {"Resource": get, "ReaderConfig": {"InputType": "JSON"},
            "Parameters": {"Key": "k"}}}),
            at("ItemReader.Parameters"),
            Problem::NeedsParameter("Bucket"),
        ),
        (
            json!({"ItemReader": {"Resource": get, "ReaderConfig": {"InputType": "JSON"},
            "Parameters": {"Bucket": "in", "Key": "k", "VersionId": "v1"}}}),
            at("ItemReader.Parameters.VersionId"),
            Problem::NotSupported("blob buckets keep no object versions"),
        ),
        (
            json!({"ItemReader": {"Resource": get, "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "GIVEN"},
            "Parameters": {"Bucket": "in", "Key": "k"}}}),
            at("ItemReader.ReaderConfig.CSVHeaders"),
            Problem::CsvHeaders,
        ),
        (
            json!({"ItemReader": {"Resource": get, "ReaderConfig": {"InputType": "CSV", "CSVDelimiter": "DASH"},
            "Parameters": {"Bucket": "in", "Key": "k"}}}),
            at("ItemReader.ReaderConfig.CSVDelimiter"),
            Problem::CsvDelimiter("DASH".into()),
        ),
        (
            json!({"ItemReader": {"Resource": get, "ReaderConfig": {"InputType": "JSON", "CSVDelimiter": "PIPE"},
            "Parameters": {"Bucket": "in", "Key": "k"}}}),
            at("ItemReader.ReaderConfig.CSVDelimiter"),
            Problem::CsvOnly,
        ),
        (
            json!({"ItemReader": {"Resource": get, "ReaderConfig": {"InputType": "JSON", "MaxItems": 1, "MaxItemsPath": "$.n"},
            "Parameters": {"Bucket": "in", "Key": "k"}}}),
            at("ItemReader.ReaderConfig.MaxItems"),
            Problem::GivenWith("MaxItemsPath"),
        ),
        (
            json!({"ItemReader": {"Resource": get, "ReaderConfig": {"InputType": "JSON", "MaxItems": 100_000_001u64},
            "Parameters": {"Bucket": "in", "Key": "k"}}}),
            at("ItemReader.ReaderConfig.MaxItems"),
            Problem::AtMost(100_000_000),
        ),
        (
            json!({"ItemReader": {"Resource": "arn:aws:states:::s3:listObjectsV2", "Parameters": {"Bucket": "in", "Key": "k"}}}),
            at("ItemReader.Parameters"),
            Problem::UnknownParameter("Key".into(), "Bucket, Prefix"),
        ),
        (
            json!({"ItemReader": csv_reader("k"), "ItemsPath": "$.items"}),
            at("ItemsPath"),
            Problem::NotSupported("the ItemReader gives the items"),
        ),
        (
            json!({"ItemBatcher": {"BatchInput": {}}}),
            at("ItemBatcher"),
            Problem::BatcherNeedsMax,
        ),
        (
            json!({"ItemBatcher": {"MaxInputBytesPerBatch": 262145}}),
            at("ItemBatcher.MaxInputBytesPerBatch"),
            Problem::AtMost(262144),
        ),
        (
            json!({"ItemBatcher": {"MaxItemsPerBatch": 0}}),
            at("ItemBatcher.MaxItemsPerBatch"),
            Problem::NotPositive,
        ),
        (
            json!({"ItemBatcher": {"MaxItemsPerBatch": 1, "Extra": 1}}),
            at("ItemBatcher"),
            Problem::UnknownField("Extra".into()),
        ),
        (
            json!({"ResultWriter": {"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Prefix": "p"}}}),
            at("ResultWriter.Parameters"),
            Problem::NeedsParameter("Bucket"),
        ),
        (
            json!({"ResultWriter": {}}),
            at("ResultWriter"),
            Problem::ResultWriterFields("Parameters"),
        ),
        (
            json!({"ResultWriter": {"Parameters": {"Bucket": "b"}, "WriterConfig": {}}}),
            at("ResultWriter.Resource"),
            Problem::Required,
        ),
        (
            json!({"ResultWriter": {"Resource": "arn:aws:states:::s3:putObject", "WriterConfig": {}}}),
            at("ResultWriter.Parameters"),
            Problem::Required,
        ),
        (
            json!({"ResultWriter": {"WriterConfig": "FLATTEN"}}),
            at("ResultWriter.WriterConfig"),
            Problem::NotObject,
        ),
        (
            json!({"ResultWriter": with_config(json!({"Transformation": "SQUASH"}))}),
            at("ResultWriter.WriterConfig.Transformation"),
            Problem::NotOneOf("SQUASH".into(), "NONE, COMPACT or FLATTEN"),
        ),
        (
            json!({"ResultWriter": {"WriterConfig": {"Transformation": "compact"}}}),
            at("ResultWriter.WriterConfig.Transformation"),
            Problem::NotOneOf("compact".into(), "NONE, COMPACT or FLATTEN"),
        ),
        (
            json!({"ResultWriter": {"WriterConfig": {"OutputType": "CSV"}}}),
            at("ResultWriter.WriterConfig.OutputType"),
            Problem::NotOneOf("CSV".into(), "JSON or JSONL"),
        ),
        (
            json!({"ResultWriter": {"WriterConfig": {"OutputType": 1}}}),
            at("ResultWriter.WriterConfig.OutputType"),
            Problem::NotString,
        ),
        (
            json!({"ResultWriter": {"WriterConfig": {"Transformation": "NONE", "Compression": "GZIP"}}}),
            at("ResultWriter.WriterConfig"),
            Problem::UnknownField("Compression".into()),
        ),
        (
            json!({"ResultWriter": {"Resource": "arn:aws:states:::s3:getObject", "Parameters": {"Bucket": "b"}}}),
            at("ResultWriter.Resource"),
            Problem::UnknownResource(
                "arn:aws:states:::s3:getObject".into(),
                "arn:aws:states:::s3:putObject",
            ),
        ),
    ];
    for (fields, place, problem) in refused {
        let err = Machine::parse(&map(fields.clone())).expect_err(&fields.to_string());
        assert_eq!(
            (err.at.as_str(), &err.problem),
            (place.as_str(), &problem),
            "{fields}"
        );
    }
    // An inline Map refuses all three, as the cloud does.
    for field in ["ItemReader", "ItemBatcher", "ResultWriter"] {
        let mut def = map(json!({}));
        def["States"]["Each"]["ItemProcessor"]["ProcessorConfig"] = json!({"Mode": "INLINE"});
        def["States"]["Each"][field] = json!({});
        let err = Machine::parse(&def).unwrap_err();
        assert_eq!(err.problem, Problem::DistributedField, "{field}");
    }
}

struct Fixture {
    store: Store,
    tenant: String,
    blobs: Arc<TenantBlobs>,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn new(store: Store, quota_bytes: Option<u64>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Arc::new(TenantBlobs {
            backend: BlobBackend::Files(FsBlobs::new(dir.path().to_path_buf())),
            store: store.clone(),
            quota: Quota {
                items: None,
                bytes: quota_bytes,
            },
        });
        Fixture {
            store,
            tenant: tenant("dmap"),
            blobs,
            _dir: dir,
        }
    }

    /// The files under the blobs, written and read around the index (as another
    /// host's tenant would have them).
    fn files(&self) -> &FsBlobs {
        match &self.blobs.backend {
            BlobBackend::Files(files) => files,
            _ => unreachable!("the fixture's blobs are files"),
        }
    }

    fn at(&self, bucket: &str) -> BlobBucket {
        BlobBucket {
            tenant: self.tenant.clone(),
            bucket: bucket.into(),
        }
    }

    async fn put(&self, bucket: &str, key: &str, data: &[u8]) {
        self.files().put(&self.at(bucket), key, data).await.unwrap();
    }

    async fn raw(&self, bucket: &str, key: &str) -> Option<String> {
        let data = self.files().get(&self.at(bucket), key).await.unwrap()?;
        Some(String::from_utf8(data).unwrap())
    }

    async fn get(&self, bucket: &str, key: &str) -> Option<Value> {
        let data = self.files().get(&self.at(bucket), key).await.unwrap()?;
        Some(serde_json::from_slice(&data).unwrap())
    }

    async fn run(
        &self,
        definition: Value,
        input: Value,
        work: Vec<Attempt>,
    ) -> (ExecutionRow, Arc<ScriptedTasks>) {
        self.run_on(self.blobs.clone(), definition, input, work)
            .await
    }

    async fn run_on(
        &self,
        blobs: Arc<dyn Blobs>,
        definition: Value,
        input: Value,
        work: Vec<Attempt>,
    ) -> (ExecutionRow, Arc<ScriptedTasks>) {
        let tasks = Arc::new(ScriptedTasks::new().with_blobs(blobs));
        tasks.script("Work", work);
        let exec = Executor::new(
            self.store.clone(),
            tasks.clone(),
            ExecutorOptions {
                concurrency: 8,
                skip_waits: true,
                tenant: Some(self.tenant.clone()),
            },
        );
        let started = exec
            .start(&self.tenant, "flow", &definition, input, None)
            .await
            .unwrap();
        let row = exec
            .run_to_end(&self.tenant, &started.id, Duration::from_secs(120))
            .await
            .unwrap();
        (row, tasks)
    }
}

fn echo() -> Vec<Attempt> {
    vec![Attempt {
        repeat: true,
        ..Attempt::ok(json!("done"))
    }]
}

fn output(row: &ExecutionRow) -> Value {
    serde_json::from_str(row.output.as_deref().unwrap_or("null")).unwrap()
}

fn error(row: &ExecutionRow) -> (String, String) {
    (
        row.error.clone().unwrap_or_default(),
        row.cause.clone().unwrap_or_default(),
    )
}

store_test!(an_item_reader_gives_each_format_as_the_cloud_does);
async fn an_item_reader_gives_each_format_as_the_cloud_does(stores: Stores) {
    each_store(stores, |s| async move {
        let f = Fixture::new(s, None);
        f.put("in", "rows.csv", b"sku,qty\nA-1,3\nB-2,5\n").await;
        f.put("in", "rows.jsonl", b"{\"sku\":\"A-1\"}\n{\"sku\":\"B-2\"}\n{\"sku\":\"C-3\"}\n").await;
        f.put("in", "rows.json", b"[1, 2, 3, 4]").await;
        f.put("in", "daily/b.csv", b"x").await;
        f.put("in", "daily/a.csv", b"xyz").await;
        f.put("in", "other/c.csv", b"x").await;
        let get = "arn:aws:states:::s3:getObject";
        let reader = |input_type: &str, key: &str, extra: Value| {
            let mut config = json!({"InputType": input_type});
            for (k, v) in extra.as_object().cloned().unwrap_or_default() {
                config[k] = v;
            }
            json!({"Resource": get, "ReaderConfig": config, "Parameters": {"Bucket": "in", "Key.$": key}})
        };
        // (reader, the inputs the children got)
        let cases = vec![
            (csv_reader("rows.csv"), vec![json!({"sku": "A-1", "qty": "3"}), json!({"sku": "B-2", "qty": "5"})]),
            (reader("JSONL", "$.key", json!({"MaxItems": 2})), vec![json!({"sku": "A-1"}), json!({"sku": "B-2"})]),
            (reader("JSON", "$.json", json!({"MaxItemsPath": "$.n"})), vec![json!(1), json!(2), json!(3)]),
            (reader("CSV", "$.csv", json!({"CSVHeaderLocation": "GIVEN", "CSVHeaders": ["a", "b"]})),
             vec![json!({"a": "sku", "b": "qty"}), json!({"a": "A-1", "b": "3"}), json!({"a": "B-2", "b": "5"})]),
        ];
        let input = json!({"key": "rows.jsonl", "json": "rows.json", "csv": "rows.csv", "n": 3});
        for (item_reader, want) in cases {
            let (row, tasks) = f.run(map(json!({"ItemReader": item_reader.clone()})), input.clone(), echo()).await;
            assert_eq!(row.status, "SUCCEEDED", "{item_reader}: {:?}", error(&row));
            let mut got: Vec<Value> = tasks.calls().into_iter().map(|c| c.input).collect();
            got.sort_by_key(|v| v.to_string());
            let mut sorted = want.clone();
            sorted.sort_by_key(|v| v.to_string());
            assert_eq!(got, sorted, "{item_reader}");
            assert_eq!(output(&row), json!(vec!["done"; want.len()]));
        }
        // A listing: the objects under the prefix, in key order, with the cloud's fields.
        let listing = json!({"Resource": "arn:aws:states:::s3:listObjectsV2",
            "Parameters": {"Bucket": "in", "Prefix": "daily/"}});
        let def = map(json!({"ItemReader": listing, "MaxConcurrency": 1}));
        let (row, tasks) = f.run(def, json!({}), echo()).await;
        assert_eq!(row.status, "SUCCEEDED", "{:?}", error(&row));
        let calls: Vec<Value> = tasks.calls().into_iter().map(|c| c.input).collect();
        assert_eq!(calls.len(), 2);
        assert_eq!((calls[0]["Key"].clone(), calls[0]["Size"].clone()), (json!("daily/a.csv"), json!(3)));
        assert_eq!(calls[1]["Key"], "daily/b.csv");
        for c in &calls {
            assert_eq!(c["StorageClass"], "STANDARD");
            assert!(c["Etag"].as_str().is_some_and(|e| e.len() == 34), "{c}");
            assert!(c["LastModified"].as_i64().is_some_and(|t| t > 1_600_000_000), "{c}");
        }
    })
    .await;
}

store_test!(items_are_selected_then_batched_with_batch_input);
async fn items_are_selected_then_batched_with_batch_input(stores: Stores) {
    each_store(stores, |s| async move {
        let f = Fixture::new(s, None);
        let rows: String = (0..7).map(|i| format!("{{\"n\":{i}}}\n")).collect();
        f.put("in", "rows.jsonl", rows.as_bytes()).await;
        let def = map(json!({
            "ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
                "ReaderConfig": {"InputType": "JSONL"}, "Parameters": {"Bucket": "in", "Key": "rows.jsonl"}},
            "ItemSelector": {"n.$": "$$.Map.Item.Value.n", "i.$": "$$.Map.Item.Index"},
            "ItemBatcher": {"MaxItemsPerBatchPath": "$.per", "BatchInput": {"run.$": "$.run"}},
            "MaxConcurrency": 2,
        }));
        let (row, tasks) = f.run(def, json!({"per": 3, "run": "r-1"}), echo()).await;
        assert_eq!(row.status, "SUCCEEDED", "{:?}", error(&row));
        let mut got: Vec<Value> = tasks.calls().into_iter().map(|c| c.input).collect();
        got.sort_by_key(|v| v["Items"][0]["i"].as_u64());
        assert_eq!(got, vec![
            json!({"BatchInput": {"run": "r-1"}, "Items": [{"n": 0, "i": 0}, {"n": 1, "i": 1}, {"n": 2, "i": 2}]}),
            json!({"BatchInput": {"run": "r-1"}, "Items": [{"n": 3, "i": 3}, {"n": 4, "i": 4}, {"n": 5, "i": 5}]}),
            json!({"BatchInput": {"run": "r-1"}, "Items": [{"n": 6, "i": 6}]}),
        ]);
        // By bytes: {"Items":[]} is 12 bytes, each {"n":N} 7 and a comma.
        let def = map(json!({"ItemsPath": "$.items", "ItemBatcher": {"MaxInputBytesPerBatch": 28}}));
        let items: Vec<Value> = (0..5).map(|n| json!({"n": n})).collect();
        let (row, tasks) = f.run(def, json!({"items": items}), echo()).await;
        assert_eq!(row.status, "SUCCEEDED", "{:?}", error(&row));
        let sizes: Vec<usize> = tasks.calls().iter().map(|c| c.input["Items"].as_array().unwrap().len()).collect();
        assert_eq!(sizes.iter().sum::<usize>(), 5);
        assert!(sizes.iter().all(|n| *n == 2 || *n == 1), "{sizes:?}");
        for c in tasks.calls() {
            assert!(c.input.to_string().len() <= 28, "{}", c.input);
        }
    })
    .await;
}

store_test!(a_result_writer_writes_the_clouds_layout_and_returns_where);
async fn a_result_writer_writes_the_clouds_layout_and_returns_where(stores: Stores) {
    each_store(stores, |s| async move {
        let f = Fixture::new(s, None);
        f.put("in", "rows.csv", b"id\n1\n2\n3\n").await;
        let def = map(
            json!({"ItemReader": csv_reader("rows.csv"), "ResultWriter": writer(),
            "ToleratedFailureCount": 1, "MaxConcurrency": 1, "Label": "rows"}),
        );
        let work = vec![
            Attempt::ok(json!({"ok": 1})),
            Attempt::throw("Bad", "row 2"),
            Attempt::ok(json!({"ok": 3})),
        ];
        let (row, _) = f.run(def.clone(), json!({}), work).await;
        assert_eq!(row.status, "SUCCEEDED", "{:?}", error(&row));
        let out = output(&row);
        let key = out["ResultWriterDetails"]["Key"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(out["ResultWriterDetails"]["Bucket"], "out");
        let map_run = key
            .strip_prefix("runs/")
            .and_then(|k| k.strip_suffix("/manifest.json"))
            .unwrap();
        assert_eq!(
            out["MapRunArn"],
            json!(format!(
                "arn:orquesta:states::{}:mapRun:flow/rows:{map_run}",
                f.tenant
            ))
        );
        let manifest = f.get("out", &key).await.unwrap();
        assert_eq!(manifest["DestinationBucket"], "out");
        assert_eq!(manifest["MapRunArn"], out["MapRunArn"]);
        assert_eq!(manifest["ResultFiles"]["PENDING"], json!([]));
        let file = |status: &str| {
            manifest["ResultFiles"][status][0]["Key"]
                .as_str()
                .unwrap()
                .to_string()
        };
        assert_eq!(
            file("SUCCEEDED"),
            format!("runs/{map_run}/SUCCEEDED_0.json")
        );
        let succeeded = f.get("out", &file("SUCCEEDED")).await.unwrap();
        let succeeded = succeeded.as_array().unwrap();
        assert_eq!(succeeded.len(), 2);
        assert_eq!(succeeded[0]["Status"], "SUCCEEDED");
        assert_eq!(succeeded[0]["Input"], json!(json!({"id": "1"}).to_string()));
        assert_eq!(succeeded[0]["Output"], json!(json!({"ok": 1}).to_string()));
        assert!(
            succeeded[0]["ExecutionArn"]
                .as_str()
                .unwrap()
                .contains(":execution:flow/rows:")
        );
        let failed = f.get("out", &file("FAILED")).await.unwrap();
        assert_eq!(failed[0]["Status"], "FAILED");
        assert_eq!(
            (failed[0]["Error"].clone(), failed[0]["Cause"].clone()),
            (json!("Bad"), json!("row 2"))
        );
        let size = manifest["ResultFiles"]["FAILED"][0]["Size"]
            .as_u64()
            .unwrap();
        assert_eq!(size as usize, failed.to_string().len());
        // Past the tolerated failures: the run fails, its results (and the items never
        // started) are written all the same.
        let work = vec![Attempt::throw("Bad", "1"), Attempt::throw("Bad", "2")];
        let (row, _) = f.run(def, json!({}), work).await;
        assert_eq!(error(&row).0, "States.ExceedToleratedFailureThreshold");
        let runs = f
            .files()
            .list(&f.at("out"), "runs/", None, 100)
            .await
            .unwrap()
            .keys;
        let pending_file = runs
            .iter()
            .find(|k| k.ends_with("PENDING_0.json"))
            .expect("a PENDING file");
        let pending = f.get("out", pending_file).await.unwrap();
        assert_eq!(
            pending,
            json!([{"Input": "{\"id\":\"3\"}", "InputDetails": {"Included": true},
            "StateMachineArn": format!("arn:orquesta:states::{}:stateMachine:flow/rows", f.tenant),
            "Status": "PENDING"}])
        );
        // Without ResultWriter, the result is the array, as today.
        let def = map(json!({"ItemReader": csv_reader("rows.csv")}));
        let (row, _) = f.run(def, json!({}), echo()).await;
        assert_eq!(output(&row), json!(["done", "done", "done"]));
    })
    .await;
}

store_test!(reading_and_writing_failures_are_the_clouds_errors);
async fn reading_and_writing_failures_are_the_clouds_errors(stores: Stores) {
    each_store(stores, |s| async move {
        let f = Fixture::new(s.clone(), None);
        f.put("in", "bad.csv", b"a,b\n1\n").await;
        f.put("in", "bad.json", b"{\"not\": \"an array\"}").await;
        let get = "arn:aws:states:::s3:getObject";
        let json_reader = |key: &str| {
            json!({"Resource": get, "ReaderConfig": {"InputType": "JSON"},
            "Parameters": {"Bucket": "in", "Key": key}})
        };
        let cases = vec![
            (
                map(json!({"ItemReader": csv_reader("missing.csv")})),
                "States.ItemReaderFailed",
                "no object `missing.csv`",
            ),
            (
                map(json!({"ItemReader": csv_reader("bad.csv")})),
                "States.ItemReaderFailed",
                "has 1 fields, the header 2",
            ),
            (
                map(json!({"ItemReader": json_reader("bad.json")})),
                "States.ItemReaderFailed",
                "not a JSON array",
            ),
            (
                map(json!({"ItemReader": json_reader("a//b")})),
                "States.ItemReaderFailed",
                "empty segment",
            ),
            (
                map(
                    json!({"ItemReader": {"Resource": get, "ReaderConfig": {"InputType": "JSON"},
                "Parameters": {"Bucket.$": "$.nothing", "Key": "k"}}}),
                ),
                "States.Runtime",
                "",
            ),
        ];
        for (def, want, cause) in cases {
            let (row, tasks) = f.run(def.clone(), json!({}), echo()).await;
            assert_eq!(row.status, "FAILED", "{def}");
            assert_eq!(error(&row).0, want, "{def}");
            assert!(error(&row).1.contains(cause), "{def}: {:?}", error(&row));
            assert!(tasks.calls().is_empty());
        }
        // Caught by name, as the cloud's are.
        let mut def = map(json!({"ItemReader": csv_reader("missing.csv"),
            "Catch": [{"ErrorEquals": ["States.ItemReaderFailed"], "Next": "Done"}]}));
        def["States"]["Each"].as_object_mut().unwrap().remove("End");
        def["States"]["Each"]["Next"] = json!("Done");
        def["States"]["Done"] = json!({"Type": "Succeed"});
        let (row, _) = f.run(def, json!({}), echo()).await;
        assert_eq!(row.status, "SUCCEEDED", "{:?}", error(&row));
        // Writing past the tenant's blob quota: States.ResultWriterFailed.
        let small = Fixture::new(s, Some(400));
        small.put("in", "rows.csv", b"id\n1\n2\n").await;
        let def = map(json!({"ItemReader": csv_reader("rows.csv"), "ResultWriter": writer()}));
        let (row, _) = small.run(def, json!({}), echo()).await;
        assert_eq!(
            error(&row).0,
            "States.ResultWriterFailed",
            "{:?}",
            error(&row)
        );
    })
    .await;
}

store_test!(a_bucket_or_key_reaches_nothing_outside_the_executing_tenant);
/// Attack: a definition naming another tenant's bucket, or climbing out with `../`,
/// finds nothing; what it writes stays in its own tenant's buckets.
async fn a_bucket_or_key_reaches_nothing_outside_the_executing_tenant(stores: Stores) {
    each_store(stores, |s| async move {
        let f = Fixture::new(s, None);
        let victim = BlobBucket {
            tenant: tenant("victim"),
            bucket: "in".into(),
        };
        f.files().put(&victim, "secret.csv", b"a\nsecret\n").await.unwrap();
        let get = "arn:aws:states:::s3:getObject";
        let v = &victim.tenant;
        let attempts = [
            ("in", "secret.csv".to_string()),
            ("in", format!("../../{v}/in/secret.csv")),
            ("in", format!("../{v}/in/secret.csv")),
            ("..", format!("{v}/in/secret.csv")),
            (v.as_str(), "in/secret.csv".to_string()),
            ("in/../..", format!("{v}/in/secret.csv")),
        ];
        for (bucket, key) in attempts {
            let def = map(json!({"ItemReader": {"Resource": get,
                "ReaderConfig": {"InputType": "CSV"}, "Parameters": {"Bucket": bucket, "Key": key}}}));
            let (row, tasks) = f.run(def, json!({}), echo()).await;
            assert_eq!(error(&row).0, "States.ItemReaderFailed", "{bucket} {key}: {:?}", error(&row));
            assert!(tasks.calls().is_empty(), "{bucket} {key}: read another tenant's rows");
        }
        // A listing of the same bucket name sees only the tenant's own objects.
        let def = map(json!({"ItemReader": {"Resource": "arn:aws:states:::s3:listObjectsV2",
            "Parameters": {"Bucket": "in"}}}));
        let (row, tasks) = f.run(def, json!({}), echo()).await;
        assert_eq!(output(&row), json!([]), "{:?}", error(&row));
        assert!(tasks.calls().is_empty());
        // A writer's `../` prefix stays inside the executing tenant's bucket.
        f.put("in", "one.csv", b"a\n1\n").await;
        let def = map(json!({"ItemReader": csv_reader("one.csv"), "ResultWriter": {
            "Resource": "arn:aws:states:::s3:putObject",
            "Parameters": {"Bucket": "in", "Prefix": format!("../../{v}/in")}}}));
        let (row, _) = f.run(def, json!({}), echo()).await;
        assert_eq!(row.status, "SUCCEEDED", "{:?}", error(&row));
        let theirs = f.files().list(&victim, "", None, 100).await.unwrap().keys;
        assert_eq!(theirs, ["secret.csv"]);
        let key = output(&row)["ResultWriterDetails"]["Key"].as_str().unwrap().to_string();
        assert!(f.get("in", &key).await.is_some(), "written in the tenant's own bucket");
    })
    .await;
}

store_test!(fifty_thousand_rows_run_in_batches_and_too_many_children_are_refused);
/// A Siesa-sized export: 50,000 CSV rows read once, batched into 50 children of 1,000
/// rows, 5 at a time. Unbatched, they would be more child executions than a run starts.
async fn fifty_thousand_rows_run_in_batches_and_too_many_children_are_refused(stores: Stores) {
    each_store(stores, |s| async move {
        let f = Fixture::new(s, None);
        let mut csv = String::from("sku,qty,bodega\n");
        for i in 0..50_000 {
            csv.push_str(&format!("SKU-{i},{},BOG\n", i % 9));
        }
        f.put("in", "export.csv", csv.as_bytes()).await;
        let def = map(json!({"ItemReader": csv_reader("export.csv"),
            "ItemBatcher": {"MaxItemsPerBatch": 1000}, "MaxConcurrency": 5, "ResultWriter": writer()}));
        let (row, tasks) = f.run(def, json!({}), echo()).await;
        assert_eq!(row.status, "SUCCEEDED", "{:?}", error(&row));
        let calls = tasks.calls();
        assert_eq!(calls.len(), 50);
        let rows: usize = calls.iter().map(|c| c.input["Items"].as_array().unwrap().len()).sum();
        assert_eq!(rows, 50_000);
        let key = output(&row)["ResultWriterDetails"]["Key"].as_str().unwrap().to_string();
        let manifest = f.get("out", &key).await.unwrap();
        let first = manifest["ResultFiles"]["SUCCEEDED"][0]["Key"].as_str().unwrap().to_string();
        let entries: usize = {
            let mut n = 0;
            for file in manifest["ResultFiles"]["SUCCEEDED"].as_array().unwrap() {
                n += f.get("out", file["Key"].as_str().unwrap()).await.unwrap().as_array().unwrap().len();
            }
            n
        };
        assert_eq!(entries, 50, "{first}");
        // Unbatched: 50,000 children are over the bound, refused before any starts.
        let def = map(json!({"ItemReader": csv_reader("export.csv")}));
        let (row, tasks) = f.run(def, json!({}), echo()).await;
        assert_eq!(error(&row).0, "States.ItemReaderFailed");
        assert!(error(&row).1.contains("batch them with ItemBatcher"), "{:?}", error(&row));
        assert!(tasks.calls().is_empty());
    })
    .await;
}

/// The tenant's blobs, counting the objects read.
struct CountingReads {
    inner: Arc<TenantBlobs>,
    gets: AtomicUsize,
}

#[async_trait::async_trait]
impl Blobs for CountingReads {
    async fn get(&self, at: &BlobBucket, key: &str) -> Result<Option<Vec<u8>>, CapError> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.inner.get(at, key).await
    }
    async fn head(&self, at: &BlobBucket, key: &str) -> Result<Option<ObjectInfo>, CapError> {
        self.inner.head(at, key).await
    }
    async fn put(&self, at: &BlobBucket, key: &str, data: &[u8]) -> Result<(), CapError> {
        self.inner.put(at, key, data).await
    }
    async fn delete(&self, at: &BlobBucket, key: &str) -> Result<bool, CapError> {
        self.inner.delete(at, key).await
    }
    async fn list(
        &self,
        at: &BlobBucket,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<ObjectPage, CapError> {
        self.inner.list(at, prefix, cursor, limit).await
    }
}

store_test!(a_map_run_reads_its_object_once_whatever_its_rounds);
/// `MaxConcurrency` 1 over 12 rows is 12 rounds of spawning: the object is read once,
/// when the state starts, not once a round.
async fn a_map_run_reads_its_object_once_whatever_its_rounds(stores: Stores) {
    each_store(stores, |s| async move {
        let f = Fixture::new(s, None);
        let rows: String = (0..12).map(|i| format!("{i}\n")).collect();
        f.put("in", "rows.csv", format!("n\n{rows}").as_bytes())
            .await;
        let counting = Arc::new(CountingReads {
            inner: f.blobs.clone(),
            gets: AtomicUsize::new(0),
        });
        let def = map(json!({"ItemReader": csv_reader("rows.csv"), "MaxConcurrency": 1}));
        let (row, tasks) = f.run_on(counting.clone(), def, json!({}), echo()).await;
        assert_eq!(row.status, "SUCCEEDED", "{:?}", error(&row));
        assert_eq!(tasks.calls().len(), 12);
        assert_eq!(counting.gets.load(Ordering::SeqCst), 1);
    })
    .await;
}

store_test!(writer_config_shapes_the_results_as_the_developer_guide_shows);
/// The developer guide's "ResultWriter": `Transformation` `NONE` keeps each child's
/// execution record, `COMPACT` its output, `FLATTEN` its output with an array's
/// elements spliced in; a failed child keeps its whole record whatever the
/// transformation; `OutputType` `JSONL` writes one entry per line. Without `Resource`
/// and `Parameters` nothing is written and the shaped results are the state's result.
async fn writer_config_shapes_the_results_as_the_developer_guide_shows(stores: Stores) {
    each_store(stores, |s| async move {
        let f = Fixture::new(s, None);
        // Three children (batches of two items), one at a time so each takes the next
        // scripted result: an array, an object, an array.
        let work = || {
            vec![
                Attempt::ok(json!([1, 2])),
                Attempt::ok(json!({"x": 3})),
                Attempt::ok(json!([4])),
            ]
        };
        let base = |writer: Value| {
            map(
                json!({"ItemsPath": "$.items", "ItemBatcher": {"MaxItemsPerBatch": 2},
                "MaxConcurrency": 1, "ResultWriter": writer}),
            )
        };
        let input = json!({"items": ["a", "b", "c", "d", "e"]});
        let compact = json!([[1, 2], {"x": 3}, [4]]);
        let flat = json!([1, 2, {"x": 3}, 4]);
        // (WriterConfig, the SUCCEEDED file's text as the entries it holds)
        let exported = [
            (
                json!({"Transformation": "COMPACT", "OutputType": "JSON"}),
                compact.to_string(),
            ),
            (json!({"Transformation": "FLATTEN"}), flat.to_string()),
            (
                json!({"Transformation": "COMPACT", "OutputType": "JSONL"}),
                "[1,2]\n{\"x\":3}\n[4]\n".to_string(),
            ),
            (
                json!({"Transformation": "FLATTEN", "OutputType": "JSONL"}),
                "1\n2\n{\"x\":3}\n4\n".to_string(),
            ),
        ];
        for (config, want) in exported {
            let (row, _) = f
                .run(base(with_config(config.clone())), input.clone(), work())
                .await;
            assert_eq!(row.status, "SUCCEEDED", "{config}: {:?}", error(&row));
            let out = output(&row);
            assert_eq!(out["ResultWriterDetails"]["Bucket"], "out", "{config}");
            let manifest_key = out["ResultWriterDetails"]["Key"]
                .as_str()
                .unwrap()
                .to_string();
            let manifest = f.get("out", &manifest_key).await.unwrap();
            let files = manifest["ResultFiles"]["SUCCEEDED"]
                .as_array()
                .unwrap()
                .clone();
            assert_eq!(files.len(), 1, "{config}");
            let key = files[0]["Key"].as_str().unwrap();
            assert!(key.ends_with("/SUCCEEDED_0.json"), "{key}");
            let text = f.raw("out", key).await.unwrap();
            assert_eq!(text, want, "{config}");
            assert_eq!(files[0]["Size"], json!(text.len()), "{config}");
            assert_eq!(manifest["ResultFiles"]["FAILED"], json!([]), "{config}");
        }
        // NONE with JSONL: each line a whole execution record, its output a string.
        let (row, _) = f
            .run(
                base(with_config(
                    json!({"Transformation": "NONE", "OutputType": "JSONL"}),
                )),
                input.clone(),
                work(),
            )
            .await;
        let manifest = f
            .get(
                "out",
                output(&row)["ResultWriterDetails"]["Key"].as_str().unwrap(),
            )
            .await
            .unwrap();
        let text = f
            .raw(
                "out",
                manifest["ResultFiles"]["SUCCEEDED"][0]["Key"]
                    .as_str()
                    .unwrap(),
            )
            .await
            .unwrap();
        let records: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(records.len(), 3);
        assert_eq!(records[0]["Output"], json!("[1,2]"));
        assert_eq!(
            records[1]["Input"],
            json!(json!({"Items": ["c", "d"]}).to_string())
        );
        assert!(
            records
                .iter()
                .all(|r| r["Status"] == "SUCCEEDED" && r["ExecutionArn"].is_string())
        );
        // A tolerated failure: its record is kept whole in FAILED, whatever the
        // transformation; the succeeded children are compacted.
        let def = {
            let mut d = base(with_config(json!({"Transformation": "COMPACT"})));
            d["States"]["Each"]["ToleratedFailureCount"] = json!(1);
            d
        };
        let failing = vec![
            Attempt::ok(json!([1, 2])),
            Attempt::throw("Bad", "batch 2"),
            Attempt::ok(json!([4])),
        ];
        let (row, _) = f.run(def, input.clone(), failing).await;
        assert_eq!(row.status, "SUCCEEDED", "{:?}", error(&row));
        let manifest = f
            .get(
                "out",
                output(&row)["ResultWriterDetails"]["Key"].as_str().unwrap(),
            )
            .await
            .unwrap();
        let succeeded = f
            .get(
                "out",
                manifest["ResultFiles"]["SUCCEEDED"][0]["Key"]
                    .as_str()
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(succeeded, json!([[1, 2], [4]]));
        let failed = f
            .get(
                "out",
                manifest["ResultFiles"]["FAILED"][0]["Key"]
                    .as_str()
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(failed.as_array().unwrap().len(), 1);
        assert_eq!(
            (
                failed[0]["Status"].clone(),
                failed[0]["Error"].clone(),
                failed[0]["Cause"].clone()
            ),
            (json!("FAILED"), json!("Bad"), json!("batch 2"))
        );
        assert!(failed[0].get("Output").is_none(), "{failed}");

        // Only WriterConfig: nothing written, the shaped results are the state's result.
        let before = f
            .files()
            .list(&f.at("out"), "", None, 1000)
            .await
            .unwrap()
            .keys
            .len();
        let preview = [
            (
                json!({"Transformation": "FLATTEN", "OutputType": "JSON"}),
                flat.clone(),
            ),
            (json!({"Transformation": "COMPACT"}), compact.clone()),
            // JSONL shapes files; the state's result stays a JSON array.
            (
                json!({"Transformation": "FLATTEN", "OutputType": "JSONL"}),
                flat.clone(),
            ),
            // No Transformation and nothing written: the usual result (COMPACT).
            (json!({}), compact.clone()),
        ];
        for (config, want) in preview {
            let (row, _) = f
                .run(
                    base(json!({"WriterConfig": config.clone()})),
                    input.clone(),
                    work(),
                )
                .await;
            assert_eq!(row.status, "SUCCEEDED", "{config}: {:?}", error(&row));
            assert_eq!(output(&row), want, "{config}");
        }
        let (row, _) = f
            .run(
                base(json!({"WriterConfig": {"Transformation": "NONE"}})),
                input.clone(),
                work(),
            )
            .await;
        let records = output(&row);
        assert_eq!(records.as_array().unwrap().len(), 3);
        assert_eq!(records[2]["Output"], json!("[4]"));
        assert_eq!(records[2]["Status"], "SUCCEEDED");
        // A tolerated failure among shaped results: its record, in item order.
        let def = {
            let mut d = base(json!({"WriterConfig": {"Transformation": "FLATTEN"}}));
            d["States"]["Each"]["ToleratedFailureCount"] = json!(1);
            d
        };
        let failing = vec![
            Attempt::ok(json!([1, 2])),
            Attempt::throw("Bad", "batch 2"),
            Attempt::ok(json!([4])),
        ];
        let (row, _) = f.run(def, input.clone(), failing).await;
        let out = output(&row);
        assert_eq!(out.as_array().unwrap().len(), 4, "{out}");
        assert_eq!(
            (out[0].clone(), out[1].clone(), out[3].clone()),
            (json!(1), json!(2), json!(4))
        );
        assert_eq!(
            (out[2]["Status"].clone(), out[2]["Error"].clone()),
            (json!("FAILED"), json!("Bad"))
        );
        let after = f
            .files()
            .list(&f.at("out"), "", None, 1000)
            .await
            .unwrap()
            .keys
            .len();
        assert_eq!(before, after, "a WriterConfig alone writes nothing");
    })
    .await;
}

/// [`map`] in a JSONata state machine.
fn jsonata_map(fields: Value) -> Value {
    let mut def = map(fields);
    def["QueryLanguage"] = json!("JSONata");
    def
}

#[test]
fn a_jsonata_map_takes_the_bucket_fields_as_arguments() {
    let get = "arn:aws:states:::s3:getObject";
    let put = "arn:aws:states:::s3:putObject";
    let accepted = [
        json!({"ItemReader": {"Resource": get, "ReaderConfig": {"InputType": "CSV", "MaxItems": "{% $states.input.n %}"},
            "Arguments": {"Bucket": "{% $states.input.bucket %}", "Key": "{% $states.input.key %}"}}}),
        json!({"ItemReader": {"Resource": "arn:aws:states:::s3:listObjectsV2",
            "Arguments": {"Bucket": "in", "Prefix": "{% $states.input.day & '/' %}"}}}),
        // The whole Arguments one expression: its names are checked when it runs.
        json!({"ItemReader": {"Resource": get, "ReaderConfig": {"InputType": "JSON"},
            "Arguments": "{% $states.input.where %}"}}),
        json!({"ItemBatcher": {"MaxItemsPerBatch": "{% $states.input.per %}",
            "MaxInputBytesPerBatch": 1024, "BatchInput": {"run": "{% $states.input.run %}"}}}),
        json!({"ItemBatcher": {"MaxItemsPerBatch": 2, "BatchInput": "{% {'run': $states.input.run} %}"}}),
        json!({"ResultWriter": {"Resource": put, "Arguments": {"Bucket": "{% $states.input.out %}", "Prefix": "runs"},
            "WriterConfig": {"Transformation": "FLATTEN", "OutputType": "JSONL"}}}),
        json!({"ResultWriter": {"WriterConfig": {"Transformation": "COMPACT"}}}),
    ];
    for fields in accepted {
        Machine::parse(&jsonata_map(fields.clone())).unwrap_or_else(|e| panic!("{fields}: {e}"));
    }
    let at = |f: &str| format!("States.Each.{f}");
    let field = |name: &str, instead: &'static str| Problem::JsonPathField(name.into(), instead);
    let refused: Vec<(Value, String, Problem)> = vec![
        (
            json!({"ItemReader": {"Resource": get, "ReaderConfig": {"InputType": "JSON"},
                "Parameters": {"Bucket": "in", "Key": "k"}}}),
            at("ItemReader.Parameters"),
            field("Parameters", "`Arguments`"),
        ),
        (
            json!({"ItemReader": {"Resource": get, "ReaderConfig": {"InputType": "JSON"}}}),
            at("ItemReader.Arguments"),
            Problem::Required,
        ),
        (
            json!({"ItemReader": {"Resource": get, "ReaderConfig": {"InputType": "JSON"},
                "Arguments": {"Key": "{% $states.input.key %}"}}}),
            at("ItemReader.Arguments"),
            Problem::NeedsParameter("Bucket"),
        ),
        (
            json!({"ItemReader": {"Resource": get, "ReaderConfig": {"InputType": "JSON"},
                "Arguments": {"Bucket": "in", "Key": "{% $states.input. %}"}}}),
            at("ItemReader.Arguments.Key"),
            Problem::Jsonata("$states.input.".into(), String::new()),
        ),
        (
            json!({"ItemReader": {"Resource": get, "ReaderConfig": {"InputType": "JSON", "MaxItemsPath": "$.n"},
                "Arguments": {"Bucket": "in", "Key": "k"}}}),
            at("ItemReader.ReaderConfig.MaxItemsPath"),
            field("MaxItemsPath", "`MaxItems` with an expression"),
        ),
        (
            json!({"ItemReader": {"Resource": get, "ReaderConfig": {"InputType": "JSON", "MaxItems": "ten"},
                "Arguments": {"Bucket": "in", "Key": "k"}}}),
            at("ItemReader.ReaderConfig.MaxItems"),
            Problem::NotValueOrExpression("a non-negative integer"),
        ),
        (
            json!({"ItemReader": {"Resource": get, "ReaderConfig": {"InputType": "JSON"},
                "Arguments": {"Bucket": "in", "Key": "k"}}, "Items": "{% $states.input.l %}"}),
            at("Items"),
            Problem::NotSupported("the ItemReader gives the items"),
        ),
        (
            json!({"ItemBatcher": {"MaxItemsPerBatchPath": "$.n"}}),
            at("ItemBatcher.MaxItemsPerBatchPath"),
            field(
                "MaxItemsPerBatchPath",
                "`MaxItemsPerBatch` with an expression",
            ),
        ),
        (
            json!({"ItemBatcher": {"MaxItemsPerBatch": 2, "BatchInput": [1]}}),
            at("ItemBatcher.BatchInput"),
            Problem::NotObject,
        ),
        (
            json!({"ResultWriter": {"Resource": put, "Parameters": {"Bucket": "out"}}}),
            at("ResultWriter.Parameters"),
            field("Parameters", "`Arguments`"),
        ),
        (
            json!({"ResultWriter": {}}),
            at("ResultWriter"),
            Problem::ResultWriterFields("Arguments"),
        ),
        (
            json!({"ResultWriter": {"Resource": put, "Arguments": {"Bucket": "out", "Key": "k"}}}),
            at("ResultWriter.Arguments"),
            Problem::UnknownParameter("Key".into(), "Bucket, Prefix"),
        ),
    ];
    for (fields, place, problem) in refused {
        let err = Machine::parse(&jsonata_map(fields.clone())).expect_err(&fields.to_string());
        assert_eq!(err.at, place, "{fields}");
        match (&problem, &err.problem) {
            (Problem::Jsonata(expr, _), Problem::Jsonata(got, why)) => {
                assert_eq!(expr, got);
                assert!(!why.is_empty());
            }
            _ => assert_eq!(err.problem, problem, "{fields}"),
        }
    }
}

store_test!(a_jsonata_distributed_map_reads_batches_and_writes_by_expressions);
async fn a_jsonata_distributed_map_reads_batches_and_writes_by_expressions(stores: Stores) {
    each_store(stores, |s| async move {
        let f = Fixture::new(s, None);
        f.put("in", "day/rows.csv", b"n\n1\n2\n3\n4\n5\n").await;
        let def = jsonata_map(json!({
            "ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
                "ReaderConfig": {"InputType": "CSV", "MaxItems": "{% $states.input.take %}"},
                "Arguments": {"Bucket": "{% $states.input.from %}", "Key": "{% $states.input.day & '/rows.csv' %}"}},
            "ItemSelector": {"n": "{% $number($states.context.Map.Item.Value.n) %}"},
            "ItemBatcher": {"MaxItemsPerBatch": "{% $states.input.per %}",
                "BatchInput": {"run": "{% $states.input.run %}"}},
            "MaxConcurrency": 1,
            "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject",
                "Arguments": {"Bucket": "{% $states.input.to %}", "Prefix": "{% 'runs/' & $states.input.run %}"},
                "WriterConfig": {"Transformation": "COMPACT"}},
        }));
        let input = json!({"from": "in", "to": "out", "day": "day", "take": 4, "per": 3, "run": "r-7"});
        let (row, tasks) = f.run(def, input, echo()).await;
        assert_eq!(row.status, "SUCCEEDED", "{:?}", error(&row));
        let got: Vec<Value> = tasks.calls().into_iter().map(|c| c.input).collect();
        assert_eq!(got, vec![
            json!({"BatchInput": {"run": "r-7"}, "Items": [{"n": 1}, {"n": 2}, {"n": 3}]}),
            json!({"BatchInput": {"run": "r-7"}, "Items": [{"n": 4}]}),
        ]);
        let out = output(&row);
        let key = out["ResultWriterDetails"]["Key"].as_str().unwrap().to_string();
        assert!(key.starts_with("runs/r-7/") && key.ends_with("/manifest.json"), "{key}");
        let manifest = f.get("out", &key).await.unwrap();
        let succeeded = f.get("out", manifest["ResultFiles"]["SUCCEEDED"][0]["Key"].as_str().unwrap()).await.unwrap();
        assert_eq!(succeeded, json!(["done", "done"]));
        // An expression giving what a field cannot take: the cloud's errors.
        let cases = [
            (json!({"ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
                "ReaderConfig": {"InputType": "CSV"}, "Arguments": {"Bucket": "in", "Key": "{% $states.input.nothing %}"}}}),
                "States.QueryEvaluationError", "'ItemReader/Arguments/Key'"),
            (json!({"ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
                "ReaderConfig": {"InputType": "CSV", "MaxItems": "{% 'many' %}"}, "Arguments": {"Bucket": "in", "Key": "day/rows.csv"}}}),
                "States.QueryEvaluationError", "expected a non-negative integer"),
            (json!({"ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
                "ReaderConfig": {"InputType": "CSV"}, "Arguments": {"Bucket": "in", "Key": "{% 42 %}"}}}),
                "States.ItemReaderFailed", "not a string"),
            (json!({"ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
                "ReaderConfig": {"InputType": "CSV"}, "Arguments": "{% {'Bucket': 'in', 'Key': 'day/rows.csv', 'VersionId': 'v1'} %}"}}),
                "States.ItemReaderFailed", "\"VersionId\""),
            (json!({"Items": [1, 2], "ItemBatcher": {"MaxItemsPerBatch": "{% -1 %}"}}),
                "States.QueryEvaluationError", "the field 'MaxItemsPerBatch'"),
            (json!({"Items": [1, 2], "ItemBatcher": {"MaxItemsPerBatch": 1, "BatchInput": "{% 'text' %}"}}),
                "States.QueryEvaluationError", "expected an object"),
        ];
        for (fields, want, cause) in cases {
            let (row, tasks) = f.run(jsonata_map(fields.clone()), json!({}), echo()).await;
            assert_eq!(error(&row).0, want, "{fields}: {:?}", error(&row));
            assert!(error(&row).1.contains(cause), "{fields}: {:?}", error(&row));
            assert!(tasks.calls().is_empty(), "{fields}");
        }
    })
    .await;
}

store_test!(a_jsonata_bucket_expression_reaches_nothing_outside_the_executing_tenant);
/// Attack: the literal attempts of
/// `a_bucket_or_key_reaches_nothing_outside_the_executing_tenant`, given as
/// expressions resolved at run time (from the input, as a caller could shape it), are
/// refused alike; a `../` prefix written by expression stays in the tenant's bucket.
async fn a_jsonata_bucket_expression_reaches_nothing_outside_the_executing_tenant(stores: Stores) {
    each_store(stores, |s| async move {
        let f = Fixture::new(s, None);
        let victim = BlobBucket {
            tenant: tenant("victim"),
            bucket: "in".into(),
        };
        f.files().put(&victim, "secret.csv", b"a\nsecret\n").await.unwrap();
        let v = &victim.tenant;
        let attempts = [
            ("in", "secret.csv".to_string()),
            ("in", format!("../../{v}/in/secret.csv")),
            ("in", format!("../{v}/in/secret.csv")),
            ("..", format!("{v}/in/secret.csv")),
            (v.as_str(), "in/secret.csv".to_string()),
            ("in/../..", format!("{v}/in/secret.csv")),
        ];
        let reader = jsonata_map(json!({"ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
            "ReaderConfig": {"InputType": "CSV"},
            "Arguments": {"Bucket": "{% $states.input.b %}", "Key": "{% $states.input.k %}"}}}));
        let whole = jsonata_map(json!({"ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
            "ReaderConfig": {"InputType": "CSV"}, "Arguments": "{% {'Bucket': $states.input.b, 'Key': $states.input.k} %}"}}));
        for (bucket, key) in &attempts {
            for def in [&reader, &whole] {
                let (row, tasks) = f.run(def.clone(), json!({"b": bucket, "k": key}), echo()).await;
                assert_eq!(error(&row).0, "States.ItemReaderFailed", "{bucket} {key}: {:?}", error(&row));
                assert!(tasks.calls().is_empty(), "{bucket} {key}: read another tenant's rows");
            }
        }
        // A listing by expression sees only the tenant's own objects.
        let def = jsonata_map(json!({"ItemReader": {"Resource": "arn:aws:states:::s3:listObjectsV2",
            "Arguments": {"Bucket": "{% $states.input.b %}"}}}));
        let (row, tasks) = f.run(def, json!({"b": "in"}), echo()).await;
        assert_eq!(output(&row), json!([]), "{:?}", error(&row));
        assert!(tasks.calls().is_empty());
        // A writer's `../` prefix by expression stays inside the tenant's bucket; a
        // bucket naming another tenant is refused.
        f.put("in", "one.csv", b"a\n1\n").await;
        let def = jsonata_map(json!({"ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
                "ReaderConfig": {"InputType": "CSV"}, "Arguments": {"Bucket": "in", "Key": "one.csv"}},
            "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject",
                "Arguments": {"Bucket": "{% $states.input.b %}", "Prefix": "{% $states.input.p %}"}}}));
        let (row, _) = f.run(def.clone(), json!({"b": "in", "p": format!("../../{v}/in")}), echo()).await;
        assert_eq!(row.status, "SUCCEEDED", "{:?}", error(&row));
        let theirs = f.files().list(&victim, "", None, 100).await.unwrap().keys;
        assert_eq!(theirs, ["secret.csv"]);
        let key = output(&row)["ResultWriterDetails"]["Key"].as_str().unwrap().to_string();
        assert!(f.get("in", &key).await.is_some(), "written in the tenant's own bucket");
        for bucket in ["..", "in/../..", v.as_str()] {
            let (row, _) = f.run(def.clone(), json!({"b": bucket, "p": ""}), echo()).await;
            if bucket == v.as_str() {
                // A bucket of that name, if it is one, is the executing tenant's own.
                assert!(
                    row.status == "SUCCEEDED" || error(&row).0 == "States.ResultWriterFailed",
                    "{:?}",
                    error(&row)
                );
            } else {
                assert_eq!(error(&row).0, "States.ResultWriterFailed", "{bucket}: {:?}", error(&row));
            }
            assert_eq!(f.files().list(&victim, "", None, 100).await.unwrap().keys, ["secret.csv"], "{bucket}");
        }
    })
    .await;
}

/// A Parquet file of three rows, one column of each common type (the third row's
/// optional columns null), pages compressed with `compression`; its columns but the
/// boolean dictionary-encoded (the writer's default).
fn parquet_file(compression: parquet::basic::Compression) -> Vec<u8> {
    parquet_file_as(
        compression,
        parquet::file::properties::WriterVersion::PARQUET_1_0,
    )
}

/// [`parquet_file`] written as `version`: `PARQUET_2_0` writes data pages V2, whose
/// levels are stored uncompressed before the compressed values.
fn parquet_file_as(
    compression: parquet::basic::Compression,
    version: parquet::file::properties::WriterVersion,
) -> Vec<u8> {
    use parquet::data_type::{BoolType, ByteArrayType, DoubleType, Int32Type, Int64Type};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::parser::parse_message_type;
    let schema = parse_message_type(
        "message item {
            required int64 id;
            optional binary name (STRING);
            required boolean active;
            required double score;
            optional int32 price (DECIMAL(9,2));
            optional int64 at (TIMESTAMP(MILLIS,true));
            optional int32 day (DATE);
        }",
    )
    .unwrap();
    let props = WriterProperties::builder()
        .set_compression(compression)
        .set_writer_version(version)
        .build();
    let mut out = Vec::new();
    let mut writer =
        SerializedFileWriter::new(&mut out, Arc::new(schema), Arc::new(props)).unwrap();
    let mut group = writer.next_row_group().unwrap();
    let some = [1i16, 1, 0];
    let mut column = 0;
    while let Some(mut c) = group.next_column().unwrap() {
        match column {
            0 => c.typed::<Int64Type>().write_batch(&[1, 2, 3], None, None),
            1 => c.typed::<ByteArrayType>().write_batch(
                &["Ada".into(), "José".into()],
                Some(&some),
                None,
            ),
            2 => c
                .typed::<BoolType>()
                .write_batch(&[true, false, true], None, None),
            3 => c
                .typed::<DoubleType>()
                .write_batch(&[1.5, -2.25, 0.0], None, None),
            4 => c
                .typed::<Int32Type>()
                .write_batch(&[1230, -5], Some(&some), None),
            5 => c
                .typed::<Int64Type>()
                .write_batch(&[1_796_564_700_123, 0], Some(&some), None),
            _ => c
                .typed::<Int32Type>()
                .write_batch(&[20_793, -1], Some(&some), None),
        }
        .unwrap();
        c.close().unwrap();
        column += 1;
    }
    group.close().unwrap();
    writer.close().unwrap();
    out
}

/// A Parquet file of its schema and no rows.
fn empty_parquet_file() -> Vec<u8> {
    let schema =
        parquet::schema::parser::parse_message_type("message item { required int64 id; }").unwrap();
    let mut out = Vec::new();
    let writer = parquet::file::writer::SerializedFileWriter::new(
        &mut out,
        Arc::new(schema),
        Arc::new(parquet::file::properties::WriterProperties::builder().build()),
    )
    .unwrap();
    writer.close().unwrap();
    out
}

/// A file framed as Parquet around `footer` (the thrift of its metadata).
fn framed(footer: &[u8]) -> Vec<u8> {
    let mut out = b"PAR1".to_vec();
    out.extend_from_slice(footer);
    out.extend_from_slice(&(footer.len() as u32).to_le_bytes());
    out.extend_from_slice(b"PAR1");
    out
}

fn parquet_reader(key: &str, config: Value) -> Value {
    let mut reader = json!({"Resource": "arn:aws:states:::s3:getObject",
        "ReaderConfig": {"InputType": "PARQUET"}, "Parameters": {"Bucket": "in", "Key": key}});
    for (k, v) in config.as_object().cloned().unwrap_or_default() {
        reader["ReaderConfig"][k] = v;
    }
    reader
}

/// The items of [`parquet_file`]'s rows.
fn parquet_file_rows() -> Vec<Value> {
    vec![
        json!({"id": 1, "name": "Ada", "active": true, "score": 1.5, "price": "12.30",
            "at": "2026-12-06T13:45:00.123Z", "day": "2026-12-06"}),
        json!({"id": 2, "name": "José", "active": false, "score": -2.25, "price": "-0.05",
            "at": "1970-01-01T00:00:00.000Z", "day": "1969-12-31"}),
        json!({"id": 3, "name": null, "active": true, "score": 0.0, "price": null, "at": null, "day": null}),
    ]
}

/// Runs each reader over the fixture's blobs and checks it gives `want`'s items.
async fn reads(f: &Fixture, ok: Vec<(Value, Vec<Value>)>) {
    for (reader, want) in ok {
        let def = map(json!({"ItemReader": reader.clone(), "MaxConcurrency": 1}));
        let (row, tasks) = f.run(def, json!({"n": 1}), echo()).await;
        assert_eq!(row.status, "SUCCEEDED", "{reader}: {:?}", error(&row));
        let got: Vec<Value> = tasks.calls().into_iter().map(|c| c.input).collect();
        assert_eq!(got, want, "{reader}");
        assert_eq!(output(&row), json!(vec!["done"; want.len()]), "{reader}");
    }
}

/// Runs a Parquet reader over each key and checks it fails `States.ItemReaderFailed`
/// with the cause (naming the object), before any child starts.
async fn refuses(f: &Fixture, refused: &[(&str, &str)]) {
    for (key, cause) in refused {
        let def = map(json!({"ItemReader": parquet_reader(key, json!({}))}));
        let (row, tasks) = f.run(def, json!({}), echo()).await;
        assert_eq!(
            error(&row).0,
            "States.ItemReaderFailed",
            "{key}: {:?}",
            error(&row)
        );
        assert!(error(&row).1.contains(cause), "{key}: {:?}", error(&row));
        assert!(
            error(&row).1.contains(key),
            "{key}: the cause names the object: {:?}",
            error(&row)
        );
        assert!(tasks.calls().is_empty(), "{key}");
    }
}

/// A copy of `snappy` (a [`parquet_file`]) whose `id` column's metadata names another
/// codec (the thrift enum, zigzag-encoded: path ["id"], then the codec 1 -> `codec`).
fn with_codec(snappy: &[u8], codec: u8) -> Vec<u8> {
    let mut file = snappy.to_vec();
    let at = file
        .windows(6)
        .position(|w| w == b"\x18\x02id\x15\x02")
        .expect("the id column's codec");
    file[at + 5] = codec << 1;
    file
}

store_test!(a_parquet_item_reader_gives_each_row_as_a_typed_item);
/// `InputType: PARQUET`: each row an object of its columns, typed (docs/WORKFLOWS.md),
/// uncompressed, Snappy, GZIP or ZSTD; `MaxItems` stops reading; an empty file has no items;
/// a truncated, corrupt or non-Parquet object, a codec this host lacks and a file past
/// the bounds are `States.ItemReaderFailed` with the reason, before any child starts.
async fn a_parquet_item_reader_gives_each_row_as_a_typed_item(stores: Stores) {
    use parquet::basic::Compression;
    each_store(stores, |s| async move {
        let f = Fixture::new(s, None);
        let plain = parquet_file(Compression::UNCOMPRESSED);
        let snappy = parquet_file(Compression::SNAPPY);
        assert_ne!(plain, snappy);
        f.put("in", "plain.parquet", &plain).await;
        f.put("in", "snappy.parquet", &snappy).await;
        f.put("in", "empty.parquet", &empty_parquet_file()).await;
        f.put("in", "truncated.parquet", &plain[..plain.len() - 30]).await;
        // The footer's thrift overwritten: framed as Parquet, its metadata garbage.
        let mut corrupt = plain.clone();
        let footer_len = u32::from_le_bytes(plain[plain.len() - 8..plain.len() - 4].try_into().unwrap()) as usize;
        let footer_at = plain.len() - 8 - footer_len;
        for b in &mut corrupt[footer_at..footer_at + footer_len / 2] {
            *b = 0xff;
        }
        f.put("in", "corrupt.parquet", &corrupt).await;
        // A page's bytes cut out of the middle: the chunks' offsets point past the pages.
        let mut short = plain[..20].to_vec();
        short.extend_from_slice(&plain[40..]);
        f.put("in", "short.parquet", &short).await;
        f.put("in", "rows.csv", b"id\n1\n").await;
        // Codecs this host has not built in (nor the writer): a Snappy file whose `id`
        // column's metadata says LZO (3), BROTLI (4), LZ4 (5), LZ4_RAW (7).
        for (codec, key) in [(3, "lzo"), (4, "brotli"), (5, "lz4"), (7, "lz4-raw")] {
            f.put("in", &format!("{key}.parquet"), &with_codec(&snappy, codec)).await;
        }
        // Attack: a footer declaring 2^31 row groups in a few bytes (the crate would
        // reserve room for them all); a schema nested 10,000 deep (the crate recurses).
        f.put("in", "huge-list.parquet", &framed(&[0x15, 0x02, 0x39, 0xfc, 0xff, 0xff, 0xff, 0xff, 0x07, 0x00])).await;
        let mut deep = vec![0x29, 0xfc, 0x90, 0x4e];
        for _ in 0..10_000 {
            deep.extend_from_slice(&[0x55, 0x02, 0x00]); // {5: num_children 1}
        }
        deep.push(0x00);
        f.put("in", "deep.parquet", &framed(&deep)).await;
        let rows = parquet_file_rows();
        let ok: Vec<(Value, Vec<Value>)> = vec![
            (parquet_reader("plain.parquet", json!({})), rows.clone()),
            (parquet_reader("snappy.parquet", json!({})), rows.clone()),
            (parquet_reader("snappy.parquet", json!({"MaxItems": 2})), rows[..2].to_vec()),
            (parquet_reader("plain.parquet", json!({"MaxItemsPath": "$.n"})), rows[..1].to_vec()),
            (parquet_reader("empty.parquet", json!({})), vec![]),
        ];
        reads(&f, ok).await;
        let refused = [
            ("truncated.parquet", "not a Parquet file"),
            ("corrupt.parquet", "the Parquet footer is corrupt"),
            ("short.parquet", "corrupt"),
            ("rows.csv", "not a Parquet file (no PAR1 magic"),
            ("missing.parquet", "no object `missing.parquet`"),
            ("lzo.parquet", "column `id` is LZO-compressed; this host reads uncompressed, SNAPPY, GZIP and ZSTD Parquet"),
            ("brotli.parquet", "column `id` is BROTLI-compressed; this host reads uncompressed, SNAPPY, GZIP and ZSTD"),
            ("lz4.parquet", "column `id` is LZ4-compressed; this host reads uncompressed, SNAPPY, GZIP and ZSTD"),
            ("lz4-raw.parquet", "column `id` is LZ4_RAW-compressed; this host reads uncompressed, SNAPPY, GZIP and"),
            ("huge-list.parquet", "more elements than bytes follow"),
            ("deep.parquet", "nests over 32 levels"),
        ];
        refuses(&f, &refused).await;
    })
    .await;
}

/// A Parquet file of one row, one column `blob` of `len` incompressible bytes, in one
/// data page (no dictionary, no statistics) compressed with `compression`.
fn parquet_blob_file(compression: parquet::basic::Compression, len: usize) -> Vec<u8> {
    use parquet::data_type::ByteArrayType;
    use parquet::file::properties::{EnabledStatistics, WriterProperties};
    let schema =
        parquet::schema::parser::parse_message_type("message item { required binary blob; }")
            .unwrap();
    let props = WriterProperties::builder()
        .set_compression(compression)
        .set_dictionary_enabled(false)
        .set_statistics_enabled(EnabledStatistics::None)
        .build();
    // xorshift: bytes no codec shrinks, so the page's compressed bytes are as long.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let noise: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let mut out = Vec::new();
    let mut writer = parquet::file::writer::SerializedFileWriter::new(
        &mut out,
        Arc::new(schema),
        Arc::new(props),
    )
    .unwrap();
    let mut group = writer.next_row_group().unwrap();
    let mut c = group.next_column().unwrap().unwrap();
    c.typed::<ByteArrayType>()
        .write_batch(&[noise.into()], None, None)
        .unwrap();
    c.close().unwrap();
    group.close().unwrap();
    writer.close().unwrap();
    out
}

/// A Parquet file (data pages V2) of 30 rows of a column `s`, every third null, the
/// rest a few repeated strings, not dictionary-encoded: its values compress, so its
/// pages are compressed (a V2 page whose codec would not shrink it is stored as it is,
/// as the small pages of [`parquet_file`] are).
fn parquet_levels_file(compression: parquet::basic::Compression) -> (Vec<u8>, Vec<Value>) {
    use parquet::data_type::ByteArrayType;
    use parquet::file::properties::{WriterProperties, WriterVersion};
    let schema =
        parquet::schema::parser::parse_message_type("message item { optional binary s (STRING); }")
            .unwrap();
    let props = WriterProperties::builder()
        .set_compression(compression)
        .set_writer_version(WriterVersion::PARQUET_2_0)
        .set_dictionary_enabled(false)
        .build();
    let rows: Vec<Option<String>> = (0..30)
        .map(|i| (i % 3 != 0).then(|| format!("{} {}", i % 7, "abcdefgh".repeat(8))))
        .collect();
    let values: Vec<parquet::data_type::ByteArray> =
        rows.iter().flatten().map(|v| v.as_str().into()).collect();
    let levels: Vec<i16> = rows.iter().map(|r| i16::from(r.is_some())).collect();
    let mut out = Vec::new();
    let mut writer = parquet::file::writer::SerializedFileWriter::new(
        &mut out,
        Arc::new(schema),
        Arc::new(props),
    )
    .unwrap();
    let mut group = writer.next_row_group().unwrap();
    let mut c = group.next_column().unwrap().unwrap();
    c.typed::<ByteArrayType>()
        .write_batch(&values, Some(&levels), None)
        .unwrap();
    c.close().unwrap();
    group.close().unwrap();
    writer.close().unwrap();
    (out, rows.into_iter().map(|s| json!({"s": s})).collect())
}

/// Where the first gzip stream in `file` (the page of a [`parquet_blob_file`]) starts,
/// and its length.
fn gzip_page(file: &[u8]) -> (usize, usize) {
    use std::io::Read;
    let at = file
        .windows(3)
        .position(|w| w == [0x1f, 0x8b, 0x08])
        .expect("a gzip stream");
    let mut rest = &file[at..];
    let before = rest.len();
    flate2::bufread::GzDecoder::new(&mut rest)
        .read_to_end(&mut Vec::new())
        .unwrap();
    (at, before - rest.len())
}

/// A gzip stream of exactly `len` bytes that expands to `mib` MiB of zeros: as many
/// gzip members of 1 MiB each (a reader of gzip reads every member), the first one's
/// header padded with a comment to the length.
fn gzip_bomb(len: usize, mib: usize) -> Vec<u8> {
    use std::io::Write;
    let zeros = vec![0u8; 1024 * 1024];
    let member = |comment: Option<Vec<u8>>| {
        let mut builder = flate2::GzBuilder::new();
        if let Some(comment) = comment {
            builder = builder.comment(comment);
        }
        let mut w = builder.write(Vec::new(), flate2::Compression::best());
        w.write_all(&zeros).unwrap();
        w.finish().unwrap()
    };
    let rest: Vec<u8> = (1..mib).flat_map(|_| member(None)).collect();
    let unpadded = member(Some(Vec::new())).len() + rest.len();
    assert!(
        unpadded <= len,
        "a bomb of {unpadded} bytes does not fit {len}"
    );
    let mut bomb = member(Some(vec![b'x'; len - unpadded]));
    bomb.extend(rest);
    assert_eq!(bomb.len(), len);
    bomb
}

/// A zstd stream of exactly `len` bytes that expands to `mib` MiB of zeros: one frame
/// (of RLE blocks, some 4 bytes for 128 KiB), then a skippable frame padding it.
fn zstd_bomb(len: usize, mib: usize) -> Vec<u8> {
    let mut bomb = zstd::bulk::compress(&vec![0u8; mib * 1024 * 1024], 3).unwrap();
    let pad = len - bomb.len() - 8;
    bomb.extend_from_slice(&[0x50, 0x2a, 0x4d, 0x18]);
    bomb.extend_from_slice(&u32::try_from(pad).unwrap().to_le_bytes());
    bomb.resize(len, 0);
    bomb
}

/// Where the first zstd frame in `file` (the page of a [`parquet_blob_file`]) starts,
/// and its length.
fn zstd_page(file: &[u8]) -> (usize, usize) {
    let at = file
        .windows(4)
        .position(|w| w == [0x28, 0xb5, 0x2f, 0xfd])
        .expect("a zstd frame");
    (
        at,
        zstd::zstd_safe::find_frame_compressed_size(&file[at..]).unwrap(),
    )
}

store_test!(a_parquet_reader_reads_gzip_and_zstd_pages_and_refuses_decompression_bombs);
/// GZIP and ZSTD pages read as the cloud reads them, to the same rows as uncompressed
/// ones: dictionary pages, data pages V1 and V2 (whose levels are stored
/// uncompressed). Attack: a page whose compressed bytes expand past the size its
/// header declares (a tenant's decompression bomb: 100 KiB declared, 64 MiB inside)
/// is refused before the crate decompresses it (the crate would decompress all 64
/// MiB, then see the mismatch: the cause here is this host's), and so is a corrupt
/// stream.
async fn a_parquet_reader_reads_gzip_and_zstd_pages_and_refuses_decompression_bombs(
    stores: Stores,
) {
    use parquet::basic::Compression;
    use parquet::column::page::Page;
    use parquet::file::properties::WriterVersion;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    each_store(stores, |s| async move {
        let f = Fixture::new(s, None);
        let codecs = [
            ("gzip", Compression::GZIP(Default::default())),
            ("zstd", Compression::ZSTD(Default::default())),
        ];
        for (name, codec) in codecs {
            let v1 = parquet_file(codec);
            let v2 = parquet_file_as(codec, WriterVersion::PARQUET_2_0);
            let (levels, levels_rows) = parquet_levels_file(codec);
            // The files hold what the test means: the codec; a dictionary page before
            // each data page of the `name` column; data pages V2 in `v2`; and in
            // `levels`, V2 pages with definition levels and compressed values.
            let kinds = |file: &[u8]| {
                let reader = SerializedFileReader::new(bytes::Bytes::from(file.to_vec())).unwrap();
                let group = reader.get_row_group(0).unwrap();
                assert_eq!(group.metadata().column(0).compression(), codec);
                let mut pages = group.get_column_page_reader(group.num_columns().min(2) - 1).unwrap();
                let mut kinds = Vec::new();
                while let Some(page) = pages.get_next_page().unwrap() {
                    kinds.push(match page {
                        Page::DictionaryPage { .. } => "dictionary",
                        Page::DataPage { .. } => "v1",
                        Page::DataPageV2 { def_levels_byte_len, is_compressed, .. } => {
                            assert!(def_levels_byte_len > 0);
                            if is_compressed { "v2 compressed" } else { "v2" }
                        }
                    });
                }
                kinds
            };
            assert_eq!(kinds(&v1), ["dictionary", "v1"], "{name}");
            assert_eq!(kinds(&v2), ["dictionary", "v2"], "{name}");
            assert_eq!(kinds(&levels), ["v2 compressed"], "{name}");
            f.put("in", &format!("{name}.parquet"), &v1).await;
            f.put("in", &format!("{name}-v2.parquet"), &v2).await;
            f.put("in", &format!("{name}-levels.parquet"), &levels).await;
            let blob = parquet_blob_file(codec, 100 * 1024);
            f.put("in", &format!("{name}-blob.parquet"), &blob).await;
            // Attack: the blob's page (100 KiB declared) with its compressed bytes a
            // bomb of the same length expanding to 64 MiB.
            let (at, len) = if name == "gzip" { gzip_page(&blob) } else { zstd_page(&blob) };
            let mut bomb = blob.clone();
            let inside = if name == "gzip" { gzip_bomb(len, 64) } else { zstd_bomb(len, 64) };
            bomb[at..at + len].copy_from_slice(&inside);
            f.put("in", &format!("{name}-bomb.parquet"), &bomb).await;
            // The page's stream corrupt: gzip's deflate data of block type 3, zstd's
            // frame header with its reserved bit set (neither exists).
            let mut corrupt = blob.clone();
            if name == "gzip" {
                corrupt[at + 10] = 0xff;
            } else {
                corrupt[at + 4] |= 0x08;
            }
            f.put("in", &format!("{name}-corrupt.parquet"), &corrupt).await;
            let rows = parquet_file_rows();
            let reader = |key: &str, config| parquet_reader(&format!("{name}{key}.parquet"), config);
            let ok = vec![
                (reader("", json!({})), rows.clone()),
                (reader("-v2", json!({})), rows.clone()),
                (reader("-levels", json!({})), levels_rows),
                (reader("", json!({"MaxItems": 2})), rows[..2].to_vec()),
            ];
            reads(&f, ok).await;
            // The blob file reads (so the bomb's is the only change refused).
            let def = map(json!({"ItemReader": reader("-blob", json!({}))}));
            let (row, tasks) = f.run(def, json!({}), echo()).await;
            assert_eq!(row.status, "SUCCEEDED", "{name}: {:?}", error(&row));
            assert_eq!(tasks.calls().len(), 1, "{name}");
            let does_not = format!("column `blob` is corrupt: the page at byte 0 of its chunk does not decompress as {}", name.to_uppercase());
            refuses(&f, &[
                (&format!("{name}-bomb.parquet"), "column `blob` is corrupt: the page at byte 0 of its chunk decompresses to more than the 102404 bytes its header declares"),
                (&format!("{name}-corrupt.parquet"), &does_not),
            ])
            .await;
        }
    })
    .await;
}

store_test!(a_parquet_file_past_the_item_bound_is_refused_unless_max_items_stops_first);
/// More rows than a Map reads: refused from the rows the footer declares, before one
/// is decoded; with `MaxItems` under the bound only those rows are read.
async fn a_parquet_file_past_the_item_bound_is_refused_unless_max_items_stops_first(
    stores: Stores,
) {
    use parquet::data_type::Int64Type;
    each_store(stores, |s| async move {
        let f = Fixture::new(s, None);
        let schema =
            parquet::schema::parser::parse_message_type("message item { required int64 n; }")
                .unwrap();
        let mut out = Vec::new();
        let props = parquet::file::properties::WriterProperties::builder()
            .set_compression(parquet::basic::Compression::SNAPPY)
            .build();
        let mut writer = parquet::file::writer::SerializedFileWriter::new(
            &mut out,
            Arc::new(schema),
            Arc::new(props),
        )
        .unwrap();
        let many: Vec<i64> = (0..100_001).collect();
        let mut group = writer.next_row_group().unwrap();
        let mut c = group.next_column().unwrap().unwrap();
        c.typed::<Int64Type>()
            .write_batch(&many, None, None)
            .unwrap();
        c.close().unwrap();
        group.close().unwrap();
        writer.close().unwrap();
        f.put("in", "many.parquet", &out).await;
        let def = map(json!({"ItemReader": parquet_reader("many.parquet", json!({}))}));
        let (row, tasks) = f.run(def, json!({}), echo()).await;
        assert_eq!(error(&row).0, "States.ItemReaderFailed");
        assert!(
            error(&row).1.contains("more than 100000 items"),
            "{:?}",
            error(&row)
        );
        assert!(tasks.calls().is_empty());
        let def =
            map(json!({"ItemReader": parquet_reader("many.parquet", json!({"MaxItems": 3}))}));
        let (row, tasks) = f.run(def, json!({}), echo()).await;
        assert_eq!(row.status, "SUCCEEDED", "{:?}", error(&row));
        let mut got: Vec<Value> = tasks.calls().into_iter().map(|c| c.input).collect();
        got.sort_by_key(|v| v["n"].as_i64());
        assert_eq!(got, vec![json!({"n": 0}), json!({"n": 1}), json!({"n": 2})]);
    })
    .await;
}

store_test!(a_parquet_reader_reaches_nothing_outside_the_executing_tenant);
/// Attack: as for the other readers, a Parquet reader naming another tenant's bucket
/// or climbing out with `../` reads nothing of theirs.
async fn a_parquet_reader_reaches_nothing_outside_the_executing_tenant(stores: Stores) {
    each_store(stores, |s| async move {
        let f = Fixture::new(s, None);
        let victim = BlobBucket {
            tenant: tenant("victim"),
            bucket: "in".into(),
        };
        let file = parquet_file(parquet::basic::Compression::SNAPPY);
        f.files().put(&victim, "secret.parquet", &file).await.unwrap();
        let v = &victim.tenant;
        let attempts = [
            ("in", "secret.parquet".to_string()),
            ("in", format!("../../{v}/in/secret.parquet")),
            ("in", format!("../{v}/in/secret.parquet")),
            ("..", format!("{v}/in/secret.parquet")),
            (v.as_str(), "in/secret.parquet".to_string()),
            ("in/../..", format!("{v}/in/secret.parquet")),
        ];
        for (bucket, key) in attempts {
            let def = map(json!({"ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
                "ReaderConfig": {"InputType": "PARQUET"}, "Parameters": {"Bucket": bucket, "Key": key}}}));
            let (row, tasks) = f.run(def, json!({}), echo()).await;
            assert_eq!(error(&row).0, "States.ItemReaderFailed", "{bucket} {key}: {:?}", error(&row));
            assert!(tasks.calls().is_empty(), "{bucket} {key}: read another tenant's rows");
        }
        // The same file in the tenant's own bucket is read.
        f.put("in", "secret.parquet", &file).await;
        let def = map(json!({"ItemReader": parquet_reader("secret.parquet", json!({}))}));
        let (row, tasks) = f.run(def, json!({}), echo()).await;
        assert_eq!(row.status, "SUCCEEDED", "{:?}", error(&row));
        assert_eq!(tasks.calls().len(), 3);
    })
    .await;
}
