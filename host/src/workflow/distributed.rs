//! A distributed Map's bucket fields as the cloud has them, checked at load:
//! `ItemReader` (items from an object of the tenant's blob buckets, or from a listing of
//! one), `ItemBatcher` (items in batches, one child execution per batch) and
//! `ResultWriter` (the children's results written to a bucket, shaped by its
//! `WriterConfig`, or only shaped). A bucket here is one of the executing tenant's own
//! blob buckets: another tenant's are never named. In a JSONata state the bucket fields
//! are `Arguments` whose values may be `{% %}` expressions, and the counts may be
//! expressions too.

use serde_json::Value;

use super::definition_error::{DefinitionError, Problem};
use super::fields::{Fields, Limit};
use super::jsonata::Tmpl;
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

/// A bucket field's `Parameters` (JSONPath) or `Arguments` (JSONata), or an
/// `ItemBatcher`'s `BatchInput`.
#[derive(Debug, Clone)]
pub enum Args {
    /// `.$` fields read the state's input after `InputPath` and the context object.
    Path(Template),
    /// `{% %}` expressions read `$states.input`, `$states.context` and the variables.
    Jsonata(Tmpl),
}

#[derive(Debug, Clone)]
pub struct ItemReader {
    pub source: Source,
    /// `Bucket` and `Key` (an object) or `Prefix` (a listing).
    pub parameters: Args,
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
    /// An Apache Parquet file: each row an object of its typed columns.
    Parquet,
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
    /// `BatchInput`: each child gets it beside its `Items`.
    pub batch_input: Option<Args>,
}

#[derive(Debug, Clone)]
pub struct ResultWriter {
    /// `Bucket` and `Prefix` (with `Resource`): where the results are written. Without
    /// them (only `WriterConfig`), the shaped results are the state's result.
    pub export: Option<Args>,
    pub transformation: Transformation,
    pub output_type: OutputType,
}

/// `WriterConfig.Transformation`: what each succeeded child contributes. A failed
/// child's record is kept whole whatever the transformation, as in the cloud.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transformation {
    /// The child's execution record (ARN, input, output as a string, status, dates).
    None,
    /// The child's output.
    Compact,
    /// The child's output, an array's elements spliced in one level (a batch's
    /// outputs as one list).
    Flatten,
}

/// `WriterConfig.OutputType`: how a result file holds its entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputType {
    /// One JSON array.
    Json,
    /// One JSON value per line.
    Jsonl,
}

/// The names an `Arguments` may give at run time, for a refusal there (an
/// `Arguments` that is one expression is checked when it is evaluated).
pub const READER_OBJECT_NAMES: &[&str] = &["Bucket", "Key"];
pub const READER_LISTING_NAMES: &[&str] = &["Bucket", "Prefix"];
pub const WRITER_NAMES: &[&str] = &["Bucket", "Prefix"];

/// The cloud's name of the bucket fields: `Parameters` (JSONPath), `Arguments`
/// (JSONata).
fn args_field(jsonata: bool) -> &'static str {
    if jsonata { "Arguments" } else { "Parameters" }
}

/// A bucket field (`Parameters` or `Arguments`), if given.
fn args(f: &mut Fields, jsonata: bool) -> Result<Option<Args>, DefinitionError> {
    let key = args_field(jsonata);
    // A JSONata state names `Parameters` `Arguments` (a JSONPath state's `Arguments` is
    // an unknown field).
    if jsonata && f.map.contains_key("Parameters") {
        return Err(f.refuse(
            "Parameters",
            Problem::JsonPathField("Parameters".into(), "`Arguments`"),
        ));
    }
    let here = f.here(key);
    Ok(if jsonata {
        f.get(key)
            .map(|v| Tmpl::parse(v, &here))
            .transpose()?
            .map(Args::Jsonata)
    } else {
        f.template(key)?.map(Args::Path)
    })
}

/// The names a template's object gives (without `.$`), or a refusal. A JSONata
/// `Arguments` written as one expression gives its names when it runs.
fn parameter_names(
    template: &Args,
    allowed: &[&str],
    hint: &'static str,
    at: &str,
) -> Result<(), DefinitionError> {
    let names: Vec<&String> = match template {
        Args::Path(Template::Object(fields)) => fields.iter().map(|(n, _)| n).collect(),
        Args::Jsonata(Tmpl::Object(fields)) => fields.iter().map(|(n, _)| n).collect(),
        Args::Jsonata(Tmpl::Expr(_)) => return Ok(()),
        _ => return Err(DefinitionError::new(at, Problem::NotObject)),
    };
    for name in names.iter().copied() {
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
    if !names.iter().any(|n| *n == "Bucket") {
        return Err(DefinitionError::new(at, Problem::NeedsParameter("Bucket")));
    }
    Ok(())
}

/// Whether a bucket field's object names `name` (one expression: it may).
fn names(template: &Args, name: &str) -> bool {
    match template {
        Args::Path(Template::Object(p)) => p.iter().any(|(n, _)| n == name),
        Args::Jsonata(Tmpl::Object(p)) => p.iter().any(|(n, _)| n == name),
        Args::Jsonata(Tmpl::Expr(_)) => true,
        _ => false,
    }
}

/// A Map's `ItemReader` (`jsonata`: of a JSONata state).
pub(super) fn item_reader(
    value: &Value,
    at: &str,
    jsonata: bool,
) -> Result<ItemReader, DefinitionError> {
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
    let key = args_field(jsonata);
    let parameters = args(&mut f, jsonata)?.ok_or_else(|| f.refuse(key, Problem::Required))?;
    let here = f.here(key);
    if listing {
        parameter_names(&parameters, READER_LISTING_NAMES, "Bucket, Prefix", &here)?;
    } else {
        parameter_names(&parameters, READER_OBJECT_NAMES, "Bucket, Key", &here)?;
        if !names(&parameters, "Key") {
            return Err(DefinitionError::new(here, Problem::NeedsParameter("Key")));
        }
    }
    let (input_type, max_items) = match f.get("ReaderConfig") {
        None => (None, None),
        Some(config) => reader_config(config, &f.here("ReaderConfig"), listing, jsonata)?,
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

fn reader_config(
    value: &Value,
    at: &str,
    listing: bool,
    jsonata: bool,
) -> Result<ReaderConfig, DefinitionError> {
    let mut f = Fields::new(value, at)?;
    let max_items = if jsonata {
        f.count_or_expression("MaxItems", "MaxItemsPath", "`MaxItems` with an expression")?
    } else {
        f.count("MaxItems", "MaxItemsPath")?
    };
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
        Some("PARQUET") => Some(InputType::Parquet),
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

/// A Map's `ItemBatcher` (`jsonata`: of a JSONata state).
pub(super) fn item_batcher(
    value: &Value,
    at: &str,
    jsonata: bool,
) -> Result<ItemBatcher, DefinitionError> {
    let mut f = Fields::new(value, at)?;
    let (max_items, max_bytes) = if jsonata {
        (
            f.count_or_expression(
                "MaxItemsPerBatch",
                "MaxItemsPerBatchPath",
                "`MaxItemsPerBatch` with an expression",
            )?,
            f.count_or_expression(
                "MaxInputBytesPerBatch",
                "MaxInputBytesPerBatchPath",
                "`MaxInputBytesPerBatch` with an expression",
            )?,
        )
    } else {
        (
            f.count("MaxItemsPerBatch", "MaxItemsPerBatchPath")?,
            f.count("MaxInputBytesPerBatch", "MaxInputBytesPerBatchPath")?,
        )
    };
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
    let batch_input = if jsonata {
        let here = f.here("BatchInput");
        f.get("BatchInput")
            .map(|v| Tmpl::parse(v, &here))
            .transpose()?
            .map(Args::Jsonata)
    } else {
        f.template("BatchInput")?.map(Args::Path)
    };
    // An object, or (JSONata) an expression giving one when the state runs.
    if let Some(t) = &batch_input
        && !matches!(
            t,
            Args::Path(Template::Object(_)) | Args::Jsonata(Tmpl::Object(_) | Tmpl::Expr(_))
        )
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

/// A Map's `ResultWriter` (`jsonata`: of a JSONata state): `Resource` with its bucket
/// field, `WriterConfig`, or all three, as the developer guide's "Required field
/// combinations" has it.
pub(super) fn result_writer(
    value: &Value,
    at: &str,
    jsonata: bool,
) -> Result<ResultWriter, DefinitionError> {
    let mut f = Fields::new(value, at)?;
    let key = args_field(jsonata);
    let resource = f.string("Resource")?;
    let export = args(&mut f, jsonata)?;
    let config = f.get("WriterConfig");
    let export = match (resource, export) {
        (Some(resource), _) if resource != PUT_OBJECT => {
            return Err(f.refuse(
                "Resource",
                Problem::UnknownResource(resource, "arn:aws:states:::s3:putObject"),
            ));
        }
        (Some(_), Some(export)) => {
            parameter_names(&export, WRITER_NAMES, "Bucket, Prefix", &f.here(key))?;
            Some(export)
        }
        (Some(_), None) => return Err(f.refuse(key, Problem::Required)),
        (None, Some(_)) => return Err(f.refuse("Resource", Problem::Required)),
        (None, None) if config.is_none() => {
            return Err(DefinitionError::new(at, Problem::ResultWriterFields(key)));
        }
        (None, None) => None,
    };
    let (transformation, output_type) = match config {
        Some(c) => writer_config(c, &f.here("WriterConfig"), export.is_some())?,
        None => (Transformation::None, OutputType::Json),
    };
    f.finish()?;
    Ok(ResultWriter {
        export,
        transformation,
        output_type,
    })
}

/// `WriterConfig`: `Transformation` (absent: `NONE` when the results are written,
/// `COMPACT`, the state's usual result, when they are not) and `OutputType` (absent:
/// `JSON`).
fn writer_config(
    value: &Value,
    at: &str,
    export: bool,
) -> Result<(Transformation, OutputType), DefinitionError> {
    let mut f = Fields::new(value, at)?;
    let transformation = match f.string("Transformation")?.as_deref() {
        None if export => Transformation::None,
        None => Transformation::Compact,
        Some("NONE") => Transformation::None,
        Some("COMPACT") => Transformation::Compact,
        Some("FLATTEN") => Transformation::Flatten,
        Some(other) => {
            return Err(f.refuse(
                "Transformation",
                Problem::NotOneOf(other.to_string(), "NONE, COMPACT or FLATTEN"),
            ));
        }
    };
    let output_type = match f.string("OutputType")?.as_deref() {
        None | Some("JSON") => OutputType::Json,
        Some("JSONL") => OutputType::Jsonl,
        Some(other) => {
            return Err(f.refuse(
                "OutputType",
                Problem::NotOneOf(other.to_string(), "JSON or JSONL"),
            ));
        }
    };
    f.finish()?;
    Ok((transformation, output_type))
}
