//! A distributed Map on the executing tenant's blobs: its `ItemReader` reading items
//! from an object or a listing, and its `ResultWriter` writing the children's results
//! in the cloud's layout, shaped by its `WriterConfig`. Every bucket named is the executing tenant's: the tenant is
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
use crate::workflow::distributed::{
    Args, ItemReader, OutputType, READER_LISTING_NAMES, READER_OBJECT_NAMES, ResultWriter, Source,
    Transformation, WRITER_NAMES,
};
use crate::workflow::errors::{ITEM_READER_FAILED, RESULT_WRITER_FAILED, StateError};
use crate::workflow::items::{self, Bounds};
use crate::workflow::{jsonata, payload};

use super::cursor::Cursor;
use super::limits::read_count;
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

/// A bucket field (`Parameters` / `Arguments`) or `BatchInput` resolved against the
/// state's input (after `InputPath`; a JSONata state's `$states.input`). `field` names
/// it in a JSONata error's cause.
pub(super) fn resolve_args(
    args: &Args,
    input: &Value,
    context: &Value,
    field: &str,
) -> Result<Value, StateError> {
    match args {
        Args::Path(t) => payload::resolve(t, input, context),
        Args::Jsonata(t) => {
            let states = super::jsonata::states(context, input, None);
            jsonata::evaluate(t, &super::jsonata::env(context, states), field)
        }
    }
}

/// A resolved bucket field: an object of the names `allowed`. A JSONata `Arguments`
/// written as one expression is checked here, as a literal one is at load.
fn bucket_args(
    params: Value,
    allowed: &[&str],
    field: &str,
    fail: fn(String) -> StateError,
) -> Result<Value, StateError> {
    let Value::Object(fields) = &params else {
        return Err(fail(format!(
            "{field} is {}, not an object",
            payload::in_cause(&params)
        )));
    };
    if let Some(name) = fields.keys().find(|n| !allowed.contains(&n.as_str())) {
        return Err(fail(format!(
            "{field} names {name:?}, not one of {}",
            allowed.join(", ")
        )));
    }
    Ok(params)
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
        let (field, allowed) = match (&reader.parameters, &reader.source) {
            (Args::Path(_), _) => ("ItemReader.Parameters", READER_OBJECT_NAMES),
            (Args::Jsonata(_), Source::Object(_)) => ("ItemReader/Arguments", READER_OBJECT_NAMES),
            (Args::Jsonata(_), Source::Listing) => ("ItemReader/Arguments", READER_LISTING_NAMES),
        };
        let params = resolve_args(&reader.parameters, input, context, field)?;
        // A JSONPath `Parameters` was checked at load; a JSONata one may be an
        // expression.
        let params = match &reader.parameters {
            Args::Path(_) => params,
            Args::Jsonata(_) => bucket_args(params, allowed, field, reader_failed)?,
        };
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
    /// "ResultWriterDetails": {"Bucket", "Key"}}`. `WriterConfig` shapes the succeeded
    /// children's entries (`Transformation`) and each file (`OutputType`).
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
        let Some(export) = &writer.export else {
            return Err(writer_failed(
                "the ResultWriter names no bucket".to_string(),
            ));
        };
        let context = self.context(row, cursor);
        let input = payload::input_path(state, &cursor.input)?;
        let field = match export {
            Args::Path(_) => "ResultWriter.Parameters",
            Args::Jsonata(_) => "ResultWriter/Arguments",
        };
        let params = resolve_args(export, &input, &context, field)?;
        let params = match export {
            Args::Path(_) => params,
            Args::Jsonata(_) => bucket_args(params, WRITER_NAMES, field, writer_failed)?,
        };
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
        let records = Records {
            row,
            name: label.as_deref().unwrap_or(&cursor.state),
        };
        let map_run_arn = records.arn("mapRun", &format!(":{map_run}"));
        let succeeded = succeeded_entries(
            &records,
            children.iter().filter(|c| c.status == SUCCEEDED),
            writer.transformation,
        );
        let failed: Vec<Value> = children
            .iter()
            .filter(|c| c.status != SUCCEEDED)
            .map(|c| records.child(c))
            .collect();
        let pending: Vec<Value> = pending
            .iter()
            .map(|input| {
                json!({
                    "Input": input.to_string(),
                    "InputDetails": { "Included": true },
                    "StateMachineArn": records.state_machine(),
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
            for (n, text) in result_files(&entries, writer.output_type)
                .into_iter()
                .enumerate()
            {
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

/// A `ResultWriter` with only `WriterConfig`: the state's result is the children's
/// results in item order, shaped by its `Transformation` (a failed child's, if
/// tolerated, is its whole record, as in the cloud).
pub(super) fn shaped_results(
    row: &ExecutionRow,
    state_name: &str,
    writer: &ResultWriter,
    label: Option<&str>,
    children: &[ExecutionRow],
) -> Vec<Value> {
    let records = Records {
        row,
        name: label.unwrap_or(state_name),
    };
    let mut out = Vec::with_capacity(children.len());
    for c in children {
        if c.status == SUCCEEDED {
            out.extend(succeeded_entries(
                &records,
                std::iter::once(c),
                writer.transformation,
            ));
        } else {
            out.push(records.child(c));
        }
    }
    out
}

/// The succeeded children's entries: their records (`NONE`), outputs (`COMPACT`), or
/// outputs with an array's elements spliced in (`FLATTEN`).
fn succeeded_entries<'c>(
    records: &Records,
    children: impl Iterator<Item = &'c ExecutionRow>,
    transformation: Transformation,
) -> Vec<Value> {
    let output = |c: &ExecutionRow| {
        c.output
            .as_deref()
            .and_then(|o| serde_json::from_str(o).ok())
            .unwrap_or(Value::Null)
    };
    let mut out = Vec::new();
    for c in children {
        match transformation {
            Transformation::None => out.push(records.child(c)),
            Transformation::Compact => out.push(output(c)),
            Transformation::Flatten => match output(c) {
                Value::Array(items) => out.extend(items),
                other => out.push(other),
            },
        }
    }
    out
}

/// The cloud's records of a Map run's children, with ARNs in orquesta's form.
struct Records<'a> {
    row: &'a ExecutionRow,
    /// The Map's `Label`, or its state's name.
    name: &'a str,
}

impl Records<'_> {
    fn arn(&self, kind: &str, rest: &str) -> String {
        format!(
            "arn:orquesta:states::{}:{kind}:{}/{}{rest}",
            self.row.tenant, self.row.workflow, self.name
        )
    }

    fn state_machine(&self) -> String {
        self.arn("stateMachine", "")
    }

    /// A child's execution record (`Transformation` `NONE`): its output as a string.
    fn child(&self, c: &ExecutionRow) -> Value {
        let redrives = serde_json::from_str::<Value>(&c.context)
            .ok()
            .and_then(|x| x["Execution"]["RedriveCount"].as_u64())
            .unwrap_or(0);
        let mut e = json!({
            "ExecutionArn": self.arn("execution", &format!(":{}", c.name)),
            "Input": c.input,
            "InputDetails": { "Included": true },
            "Name": c.name,
            "RedriveCount": redrives,
            "StartDate": iso(c.started_at),
            "StateMachineArn": self.state_machine(),
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

/// Entries as JSON arrays (`JSON`) or one per line (`JSONL`), each file at most
/// [`RESULT_FILE_BYTES`] (an entry is never cut; none is near it: an input and an
/// output are 256 KiB each at most). No entries, no files.
fn result_files(entries: &[Value], output_type: OutputType) -> Vec<String> {
    let (open, between, close) = match output_type {
        OutputType::Json => ("[", ",", "]"),
        OutputType::Jsonl => ("", "\n", "\n"),
    };
    let mut files = Vec::new();
    let mut current: Option<String> = None;
    for e in entries {
        let text = e.to_string();
        if let Some(file) = &current
            && file.len() + text.len() + between.len() + close.len() > RESULT_FILE_BYTES
        {
            files.push(format!("{file}{close}"));
            current = None;
        }
        match &mut current {
            None => current = Some(format!("{open}{text}")),
            Some(file) => {
                file.push_str(between);
                file.push_str(&text);
            }
        }
    }
    if let Some(file) = current {
        files.push(format!("{file}{close}"));
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_files_are_json_arrays_or_lines_cut_by_size() {
        for t in [OutputType::Json, OutputType::Jsonl] {
            assert!(result_files(&[], t).is_empty());
        }
        let small = [json!({"a": 1}), json!(2)];
        assert_eq!(
            result_files(&small, OutputType::Json),
            vec![r#"[{"a":1},2]"#.to_string()]
        );
        assert_eq!(
            result_files(&small, OutputType::Jsonl),
            vec!["{\"a\":1}\n2\n".to_string()]
        );
        let big = json!("x".repeat(RESULT_FILE_BYTES / 3));
        let four = [big.clone(), big.clone(), big.clone(), big];
        let files = result_files(&four, OutputType::Json);
        assert_eq!(files.len(), 2);
        for f in &files {
            assert!(f.len() <= RESULT_FILE_BYTES);
            assert_eq!(serde_json::from_str::<Vec<Value>>(f).unwrap().len(), 2);
        }
        let files = result_files(&four, OutputType::Jsonl);
        assert_eq!(files.len(), 2);
        for f in &files {
            assert!(f.len() <= RESULT_FILE_BYTES && f.ends_with('\n'));
            let lines: Vec<Value> = f
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            assert_eq!(lines.len(), 2);
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
