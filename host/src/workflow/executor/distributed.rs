//! A distributed Map on the executing tenant's blobs: its `ItemReader` reading items
//! from an object or a listing, and its `ResultWriter` writing the children's results
//! in the cloud's layout. Every bucket named is the executing tenant's: the tenant is
//! the execution's, never a parameter, and keys go through the blob store's checks
//! (a `../` is a key like any other, inside the bucket).

use std::sync::Arc;

use md5::Digest as _;
use serde_json::{Value, json};

use crate::capabilities::blob::{BlobBucket, Blobs, check_key};
use crate::capabilities::check_name;
use crate::engine::limits::capability::{BLOB_OBJECT_BYTES, BLOB_PAGE};
use crate::store::workflow::{ExecutionRow, SUCCEEDED};
use crate::workflow::definition::{Kind, State};
use crate::workflow::distributed::{ItemReader, Source};
use crate::workflow::errors::{ITEM_READER_FAILED, RESULT_WRITER_FAILED, StateError};
use crate::workflow::items::{self, Bounds};
use crate::workflow::payload;

use super::children::read_count;
use super::cursor::Cursor;
use super::{Executor, MAX_MAP_ITEMS, iso};

/// Result files are cut at this size (the cloud cuts at 5 GB; a blob here is at most
/// 64 MiB, and a file is built in memory before it is written).
const RESULT_FILE_BYTES: usize = 8 << 20;

fn reader_failed(cause: String) -> StateError {
    StateError::new(ITEM_READER_FAILED, cause)
}

fn writer_failed(cause: String) -> StateError {
    StateError::new(RESULT_WRITER_FAILED, cause)
}

/// A string parameter (`Bucket`, `Key`, `Prefix`) of a resolved `Parameters`.
fn parameter<'a>(
    params: &'a Value,
    name: &str,
    fail: fn(String) -> StateError,
) -> Result<Option<&'a str>, StateError> {
    match params.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(fail(format!("the parameter {name} is {v}, not a string"))),
    }
}

impl Executor {
    /// The executing tenant's blobs, or why there are none.
    fn tenant_blobs(
        &self,
        tenant: &str,
        fail: fn(String) -> StateError,
    ) -> Result<Arc<dyn Blobs>, StateError> {
        self.runner
            .blobs(tenant)
            .ok_or_else(|| fail(format!("tenant `{tenant}` has no blob store on this host")))
    }

    /// The bucket of the executing tenant a `Bucket` parameter names.
    fn bucket(
        tenant: &str,
        params: &Value,
        fail: fn(String) -> StateError,
    ) -> Result<BlobBucket, StateError> {
        let bucket = parameter(params, "Bucket", fail)?
            .ok_or_else(|| fail("the parameter Bucket is missing".into()))?;
        check_name("blob bucket", bucket).map_err(|e| fail(e.to_string()))?;
        Ok(BlobBucket {
            tenant: tenant.to_string(),
            bucket: bucket.to_string(),
        })
    }

    /// A Map's items from its `ItemReader`, read against the state's input after
    /// `InputPath`: at most `MaxItems`, and never past [`MAX_MAP_ITEMS`].
    pub(super) async fn read_items(
        &self,
        tenant: &str,
        reader: &ItemReader,
        input: &Value,
        context: &Value,
    ) -> Result<Vec<Value>, StateError> {
        let params = payload::resolve(&reader.parameters, input, context)?;
        let take = reader
            .max_items
            .as_ref()
            .map(|l| read_count(l, input, context, "MaxItemsPath"))
            .transpose()?
            .filter(|n| *n > 0)
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
        let at = Self::bucket(tenant, &params, reader_failed)?;
        let blobs = self.tenant_blobs(tenant, reader_failed)?;
        match &reader.source {
            Source::Object(input_type) => {
                let key = parameter(&params, "Key", reader_failed)?
                    .ok_or_else(|| reader_failed("the parameter Key is missing".into()))?;
                check_key(key).map_err(|e| reader_failed(e.to_string()))?;
                let missing = || {
                    reader_failed(format!(
                        "no object `{key}` in bucket `{}` (S3: NoSuchKey)",
                        at.bucket
                    ))
                };
                let info = blobs
                    .head(&at, key)
                    .await
                    .map_err(|e| reader_failed(e.to_string()))?
                    .ok_or_else(missing)?;
                if info.size > BLOB_OBJECT_BYTES as u64 {
                    return Err(reader_failed(format!(
                        "object `{key}` is {} bytes, over the {BLOB_OBJECT_BYTES} bytes of a blob",
                        info.size
                    )));
                }
                let data = blobs
                    .get(&at, key)
                    .await
                    .map_err(|e| reader_failed(e.to_string()))?
                    .ok_or_else(missing)?;
                let bounds = Bounds {
                    take,
                    bound: MAX_MAP_ITEMS,
                };
                // Decoding up to a blob's 64 MiB is CPU work: off the async workers.
                let input_type = input_type.clone();
                tokio::task::spawn_blocking(move || items::decode(&data, &input_type, bounds))
                    .await
                    .map_err(|e| reader_failed(format!("reading stopped: {e}")))?
                    .map_err(|e| reader_failed(format!("object `{key}`: {e}")))
            }
            Source::Listing => {
                let prefix = parameter(&params, "Prefix", reader_failed)?.unwrap_or_default();
                let mut items = Vec::new();
                let mut cursor: Option<String> = None;
                loop {
                    let page = blobs
                        .list(&at, prefix, cursor.as_deref(), BLOB_PAGE)
                        .await
                        .map_err(|e| reader_failed(e.to_string()))?;
                    for key in page.keys {
                        if take.is_some_and(|t| items.len() >= t) {
                            return Ok(items);
                        }
                        if items.len() >= MAX_MAP_ITEMS {
                            return Err(reader_failed(format!(
                                "the listing has more than {MAX_MAP_ITEMS} objects, the most a Map reads; set ReaderConfig.MaxItems or a narrower Prefix"
                            )));
                        }
                        // An object deleted since the listing is left out.
                        if let Some(info) = blobs
                            .head(&at, &key)
                            .await
                            .map_err(|e| reader_failed(e.to_string()))?
                        {
                            items.push(listed(&key, info.size, info.modified_ms));
                        }
                    }
                    match page.cursor {
                        Some(next) => cursor = Some(next),
                        None => return Ok(items),
                    }
                }
            }
        }
    }

    /// Writes a Map run's results as the cloud's `ResultWriter` does, under
    /// `PREFIX/MAP-RUN-ID/`: `SUCCEEDED_n.json`, `FAILED_n.json` (failed, timed out and
    /// aborted children), `PENDING_n.json` (items never started) and `manifest.json`
    /// listing them; the state's result is the cloud's `{"MapRunArn",
    /// "ResultWriterDetails": {"Bucket", "Key"}}`.
    pub(super) async fn write_results(
        &self,
        row: &ExecutionRow,
        cursor: &Cursor,
        state: &State,
        map_run: &str,
        children: &[ExecutionRow],
        pending: &[Value],
    ) -> Result<Value, StateError> {
        let Kind::Map {
            writer: Some(writer),
            label,
            ..
        } = &state.kind
        else {
            return Err(writer_failed("the state has no ResultWriter".to_string()));
        };
        let context = self.context(row, cursor);
        let input = payload::input_path(state, &cursor.input)?;
        let params = payload::resolve(&writer.parameters, &input, &context)?;
        let at = Self::bucket(&row.tenant, &params, writer_failed)?;
        let prefix = parameter(&params, "Prefix", writer_failed)?
            .unwrap_or_default()
            .trim_end_matches('/');
        let folder = if prefix.is_empty() {
            map_run.to_string()
        } else {
            format!("{prefix}/{map_run}")
        };
        check_key(&format!("{folder}/manifest.json")).map_err(|e| writer_failed(e.to_string()))?;
        let blobs = self.tenant_blobs(&row.tenant, writer_failed)?;
        let name = label.as_deref().unwrap_or(&cursor.state);
        let arn = |kind: &str, rest: &str| {
            format!(
                "arn:orquesta:states::{}:{kind}:{}/{name}{rest}",
                row.tenant, row.workflow
            )
        };
        let map_run_arn = arn("mapRun", &format!(":{map_run}"));
        let state_machine_arn = arn("stateMachine", "");
        let entry = |c: &ExecutionRow| {
            let redrives = serde_json::from_str::<Value>(&c.context)
                .ok()
                .and_then(|x| x["Execution"]["RedriveCount"].as_u64())
                .unwrap_or(0);
            let mut e = json!({
                "ExecutionArn": arn("execution", &format!(":{}", c.name)),
                "Input": c.input,
                "InputDetails": { "Included": true },
                "Name": c.name,
                "RedriveCount": redrives,
                "StartDate": iso(c.started_at),
                "StateMachineArn": state_machine_arn,
                "Status": c.status,
                "StopDate": c.stopped_at.map(iso),
            });
            if c.status == SUCCEEDED {
                e["Output"] = json!(c.output.clone().unwrap_or_else(|| "null".into()));
                e["OutputDetails"] = json!({ "Included": true });
                e["RedriveStatus"] = json!("NOT_REDRIVABLE");
            } else {
                e["Error"] = json!(c.error);
                e["Cause"] = json!(c.cause);
                e["RedriveStatus"] = json!("REDRIVABLE");
            }
            e
        };
        let succeeded: Vec<Value> = children
            .iter()
            .filter(|c| c.status == SUCCEEDED)
            .map(entry)
            .collect();
        let failed: Vec<Value> = children
            .iter()
            .filter(|c| c.status != SUCCEEDED)
            .map(entry)
            .collect();
        let pending: Vec<Value> = pending
            .iter()
            .map(|input| {
                json!({
                    "Input": input.to_string(),
                    "InputDetails": { "Included": true },
                    "StateMachineArn": state_machine_arn,
                    "Status": "PENDING",
                })
            })
            .collect();
        let mut files = serde_json::Map::new();
        for (status, entries) in [
            ("FAILED", failed),
            ("PENDING", pending),
            ("SUCCEEDED", succeeded),
        ] {
            let mut written = Vec::new();
            for (n, text) in result_files(&entries).into_iter().enumerate() {
                let key = format!("{folder}/{status}_{n}.json");
                blobs
                    .put(&at, &key, text.as_bytes())
                    .await
                    .map_err(|e| writer_failed(format!("writing `{key}`: {e}")))?;
                written.push(json!({ "Key": key, "Size": text.len() }));
            }
            files.insert(status.to_string(), Value::Array(written));
        }
        let manifest_key = format!("{folder}/manifest.json");
        let manifest = json!({
            "DestinationBucket": at.bucket,
            "MapRunArn": map_run_arn,
            "ResultFiles": files,
        });
        blobs
            .put(&at, &manifest_key, manifest.to_string().as_bytes())
            .await
            .map_err(|e| writer_failed(format!("writing `{manifest_key}`: {e}")))?;
        Ok(json!({
            "MapRunArn": map_run_arn,
            "ResultWriterDetails": { "Bucket": at.bucket, "Key": manifest_key },
        }))
    }
}

/// An object of a listing, as the cloud's `listObjectsV2` reader gives it. The `Etag`
/// is the store's: it changes when the object is written, but it is not the content's
/// MD5 (reading every object listed to hash it would cost what the listing saves).
fn listed(key: &str, size: u64, modified_ms: i64) -> Value {
    let tag = md5::Md5::digest(format!("{key}\n{size}\n{modified_ms}").as_bytes());
    json!({
        "Etag": format!("\"{}\"", hex::encode(tag)),
        "Key": key,
        "LastModified": modified_ms / 1000,
        "Size": size,
        "StorageClass": "STANDARD",
    })
}

/// Entries as JSON arrays, each file at most [`RESULT_FILE_BYTES`] (an entry is never
/// cut; none is near it: an input and an output are 256 KiB each at most). No entries,
/// no files.
fn result_files(entries: &[Value]) -> Vec<String> {
    let mut files = Vec::new();
    let mut current = String::new();
    for e in entries {
        let text = e.to_string();
        if !current.is_empty() && current.len() + text.len() + 2 > RESULT_FILE_BYTES {
            current.push(']');
            files.push(std::mem::take(&mut current));
        }
        current.push(if current.is_empty() { '[' } else { ',' });
        current.push_str(&text);
    }
    if !current.is_empty() {
        current.push(']');
        files.push(current);
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_files_are_json_arrays_cut_by_size() {
        assert!(result_files(&[]).is_empty());
        let small = result_files(&[json!({"a": 1}), json!(2)]);
        assert_eq!(small, vec![r#"[{"a":1},2]"#.to_string()]);
        let big = json!("x".repeat(RESULT_FILE_BYTES / 3));
        let files = result_files(&[big.clone(), big.clone(), big.clone(), big]);
        assert_eq!(files.len(), 2);
        for f in &files {
            assert!(f.len() <= RESULT_FILE_BYTES);
            assert_eq!(serde_json::from_str::<Vec<Value>>(f).unwrap().len(), 2);
        }
    }

    #[test]
    fn a_listed_object_has_the_clouds_fields() {
        let item = listed("in/a.csv", 12, 1_700_000_000_123);
        assert_eq!(item["Key"], "in/a.csv");
        assert_eq!(item["Size"], 12);
        assert_eq!(item["LastModified"], 1_700_000_000);
        assert_eq!(item["StorageClass"], "STANDARD");
        let etag = item["Etag"].as_str().unwrap();
        assert!(etag.starts_with('"') && etag.ends_with('"') && etag.len() == 34);
        assert_ne!(
            listed("in/a.csv", 12, 1_700_000_001_000)["Etag"],
            item["Etag"]
        );
    }
}
