//! A distributed Map's bucket fields as the cloud has them, checked at load:
//! `ItemReader` (items from an object of the tenant's blob buckets, or from a listing of
//! one), `ItemBatcher` (items in batches, one child execution per batch) and
//! `ResultWriter` (the children's results written to a bucket). A bucket here is one of
//! the executing tenant's own blob buckets: another tenant's are never named.

use serde_json::Value;

use super::definition_error::{DefinitionError, Problem};
use super::fields::{Fields, Limit};
use super::template::Template;

/// The cloud's `Resource` of an `ItemReader` reading one object.
pub const GET_OBJECT: &str = "arn:aws:states:::s3:getObject";
/// The cloud's `Resource` of an `ItemReader` listing a bucket's objects.
pub const LIST_OBJECTS: &str = "arn:aws:states:::s3:listObjectsV2";
/// The cloud's `Resource` of a `ResultWriter`.
pub const PUT_OBJECT: &str = "arn:aws:states:::s3:putObject";

/// The most items a `MaxItems` may ask for, as in the cloud.
const MAX_ITEMS_FIELD: u64 = 100_000_000;
/// The most bytes a batch may hold, as in the cloud: a child's input is at most 256 KiB.
pub const MAX_BATCH_BYTES: u64 = 256 * 1024;

#[derive(Debug, Clone)]
pub struct ItemReader {
    pub source: Source,
    /// `Bucket` and `Key` (an object) or `Prefix` (a listing), read against the state's
    /// input after `InputPath`.
    pub parameters: Template,
    /// `ReaderConfig.MaxItems(Path)`: at most this many items are read (0: all).
    pub max_items: Option<Limit<u64>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// `s3:getObject`: the items are in one object.
    Object(InputType),
    /// `s3:listObjectsV2`: the items are the objects under a prefix.
    Listing,
}

#[derive(Debug, Clone, PartialEq)]
pub enum InputType {
    /// A JSON array.
    Json,
    /// One JSON value per line.
    Jsonl,
    /// Rows of strings under a header.
    Csv { header: CsvHeader, delimiter: u8 },
}

#[derive(Debug, Clone, PartialEq)]
pub enum CsvHeader {
    FirstRow,
    Given(Vec<String>),
}

#[derive(Debug, Clone)]
pub struct ItemBatcher {
    pub max_items: Option<Limit<u64>>,
    pub max_bytes: Option<Limit<u64>>,
    /// `BatchInput`, read against the state's input after `InputPath`: each child gets
    /// it beside its `Items`.
    pub batch_input: Option<Template>,
}

#[derive(Debug, Clone)]
pub struct ResultWriter {
    /// `Bucket` and `Prefix`, read against the state's input after `InputPath`.
    pub parameters: Template,
}

/// The names a template's object gives (without `.$`), or a refusal.
fn parameter_names(
    template: &Template,
    allowed: &[&str],
    hint: &'static str,
    at: &str,
) -> Result<(), DefinitionError> {
    let Template::Object(fields) = template else {
        return Err(DefinitionError::new(at, Problem::NotObject));
    };
    for (name, _) in fields {
        if name == "VersionId" {
            return Err(DefinitionError::new(
                format!("{at}.VersionId"),
                Problem::NotSupported("blob buckets keep no object versions"),
            ));
        }
        if !allowed.contains(&name.as_str()) {
            return Err(DefinitionError::new(
                at,
                Problem::UnknownParameter(name.clone(), hint),
            ));
        }
    }
    if !fields.iter().any(|(n, _)| n == "Bucket") {
        return Err(DefinitionError::new(at, Problem::NeedsParameter("Bucket")));
    }
    Ok(())
}

/// A Map's `ItemReader`.
pub(super) fn item_reader(value: &Value, at: &str) -> Result<ItemReader, DefinitionError> {
    let mut f = Fields::new(value, at)?;
    let resource = f.required("Resource")?;
    let listing = match resource.as_str() {
        GET_OBJECT => false,
        LIST_OBJECTS => true,
        other => {
            return Err(f.refuse(
                "Resource",
                Problem::UnknownResource(
                    other.to_string(),
                    "arn:aws:states:::s3:getObject, arn:aws:states:::s3:listObjectsV2",
                ),
            ));
        }
    };
    let parameters = f
        .template("Parameters")?
        .ok_or_else(|| f.refuse("Parameters", Problem::Required))?;
    let here = f.here("Parameters");
    if listing {
        parameter_names(&parameters, &["Bucket", "Prefix"], "Bucket, Prefix", &here)?;
    } else {
        parameter_names(&parameters, &["Bucket", "Key"], "Bucket, Key", &here)?;
        if !matches!(&parameters, Template::Object(p) if p.iter().any(|(n, _)| n == "Key")) {
            return Err(DefinitionError::new(here, Problem::NeedsParameter("Key")));
        }
    }
    let (input_type, max_items) = match f.get("ReaderConfig") {
        None => (None, None),
        Some(config) => reader_config(config, &f.here("ReaderConfig"), listing)?,
    };
    let source = if listing {
        Source::Listing
    } else {
        Source::Object(input_type.ok_or_else(|| {
            DefinitionError::new(f.here("ReaderConfig.InputType"), Problem::Required)
        })?)
    };
    f.finish()?;
    Ok(ItemReader {
        source,
        parameters,
        max_items,
    })
}

type ReaderConfig = (Option<InputType>, Option<Limit<u64>>);

fn reader_config(value: &Value, at: &str, listing: bool) -> Result<ReaderConfig, DefinitionError> {
    let mut f = Fields::new(value, at)?;
    let max_items = f.count("MaxItems", "MaxItemsPath")?;
    if let Some(Limit::Fixed(n)) = max_items
        && n > MAX_ITEMS_FIELD
    {
        return Err(f.refuse("MaxItems", Problem::AtMost(MAX_ITEMS_FIELD)));
    }
    let input_type = f.string("InputType")?;
    let location = f.string("CSVHeaderLocation")?;
    let delimiter = f.string("CSVDelimiter")?;
    let headers = f.get("CSVHeaders");
    let input_type = match input_type.as_deref() {
        None => None,
        // A listing's items are its objects: the cloud takes no InputType for it.
        Some(_) if listing => {
            return Err(f.refuse(
                "InputType",
                Problem::NotSupported("a listing's items are its objects"),
            ));
        }
        Some("JSON") => Some(InputType::Json),
        Some("JSONL") => Some(InputType::Jsonl),
        Some("CSV") => {
            let header = match (location.as_deref(), headers) {
                (None | Some("FIRST_ROW"), None) => CsvHeader::FirstRow,
                (Some("GIVEN"), Some(Value::Array(names))) if !names.is_empty() => {
                    CsvHeader::Given(
                        names
                            .iter()
                            .map(|n| n.as_str().map(str::to_string))
                            .collect::<Option<_>>()
                            .ok_or_else(|| f.refuse("CSVHeaders", Problem::NotString))?,
                    )
                }
                (Some("GIVEN"), Some(_)) => {
                    return Err(f.refuse("CSVHeaders", Problem::NotNonEmptyArray));
                }
                (Some("FIRST_ROW" | "GIVEN"), _) => {
                    return Err(f.refuse("CSVHeaders", Problem::CsvHeaders));
                }
                (Some(other), _) => {
                    return Err(f.refuse(
                        "CSVHeaderLocation",
                        Problem::CsvHeaderLocation(other.to_string()),
                    ));
                }
                (None, Some(_)) => return Err(f.refuse("CSVHeaders", Problem::CsvHeaders)),
            };
            let delimiter = match delimiter.as_deref() {
                None | Some("COMMA") => b',',
                Some("PIPE") => b'|',
                Some("SEMICOLON") => b';',
                Some("SPACE") => b' ',
                Some("TAB") => b'\t',
                Some(other) => {
                    return Err(f.refuse("CSVDelimiter", Problem::CsvDelimiter(other.to_string())));
                }
            };
            Some(InputType::Csv { header, delimiter })
        }
        Some(other) => {
            return Err(f.refuse("InputType", Problem::UnknownInputType(other.to_string())));
        }
    };
    if !matches!(input_type, Some(InputType::Csv { .. })) {
        for (field, given) in [
            ("CSVHeaderLocation", location.is_some()),
            ("CSVDelimiter", delimiter.is_some()),
            ("CSVHeaders", headers.is_some()),
        ] {
            if given {
                return Err(DefinitionError::new(
                    format!("{at}.{field}"),
                    Problem::CsvOnly,
                ));
            }
        }
    }
    f.finish()?;
    Ok((input_type, max_items))
}

/// A Map's `ItemBatcher`.
pub(super) fn item_batcher(value: &Value, at: &str) -> Result<ItemBatcher, DefinitionError> {
    let mut f = Fields::new(value, at)?;
    let max_items = f.count("MaxItemsPerBatch", "MaxItemsPerBatchPath")?;
    let max_bytes = f.count("MaxInputBytesPerBatch", "MaxInputBytesPerBatchPath")?;
    if let Some(Limit::Fixed(n)) = max_bytes
        && n > MAX_BATCH_BYTES
    {
        return Err(f.refuse("MaxInputBytesPerBatch", Problem::AtMost(MAX_BATCH_BYTES)));
    }
    for (field, n) in [
        ("MaxItemsPerBatch", &max_items),
        ("MaxInputBytesPerBatch", &max_bytes),
    ] {
        if let Some(Limit::Fixed(0)) = n {
            return Err(f.refuse(field, Problem::NotPositive));
        }
    }
    if max_items.is_none() && max_bytes.is_none() {
        return Err(DefinitionError::new(at, Problem::BatcherNeedsMax));
    }
    let batch_input = f.template("BatchInput")?;
    if let Some(t) = &batch_input
        && !matches!(t, Template::Object(_))
    {
        return Err(f.refuse("BatchInput", Problem::NotObject));
    }
    f.finish()?;
    Ok(ItemBatcher {
        max_items,
        max_bytes,
        batch_input,
    })
}

/// A Map's `ResultWriter`.
pub(super) fn result_writer(value: &Value, at: &str) -> Result<ResultWriter, DefinitionError> {
    let mut f = Fields::new(value, at)?;
    if f.map.contains_key("WriterConfig") {
        return Err(f.refuse(
            "WriterConfig",
            Problem::NotSupported("results are written as the cloud writes them without it"),
        ));
    }
    let resource = f.required("Resource")?;
    if resource != PUT_OBJECT {
        return Err(f.refuse(
            "Resource",
            Problem::UnknownResource(resource, "arn:aws:states:::s3:putObject"),
        ));
    }
    let parameters = f
        .template("Parameters")?
        .ok_or_else(|| f.refuse("Parameters", Problem::Required))?;
    parameter_names(
        &parameters,
        &["Bucket", "Prefix"],
        "Bucket, Prefix",
        &f.here("Parameters"),
    )?;
    f.finish()?;
    Ok(ResultWriter { parameters })
}
