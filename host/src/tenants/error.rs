//! Why a config file was refused, and where: `file:line: reason` on one line. The
//! reasons a tenant file is refused for once it parses are [`TenantError`]'s variants, so
//! callers and tests tell them apart without reading the text.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use thiserror::Error;

use crate::capabilities::secrets::SecretError;
use crate::capabilities::{CapError, SectionError};
use crate::engine::limits::LimitError;

pub use super::routes::{RouteError, TemplateError};
pub use super::targets::{NotOneTarget, PatternRefused};

/// A config file's refusal: its `Display` is one line, `file:line: reason` (no line when
/// the reason is about the file as a whole). `E` is what the file's own checks find.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("{}{}: {reason}", file.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ConfigError<E = TenantError> {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub reason: Reason<E>,
}

/// What was wrong with a config file.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum Reason<E> {
    /// The file could not be read (the I/O error's text).
    #[error("cannot read: {0}")]
    Unreadable(String),
    /// The TOML or its schema (an unknown key, a wrong type), as the parser words it.
    #[error("{0}")]
    Syntax(String),
    /// What the file's own checks found once it parsed (boxed: a refusal is rare, and
    /// the `Result` of every load carries its size).
    #[error("{0}")]
    Invalid(Box<E>),
}

impl<E> ConfigError<E> {
    /// A refusal found after parsing, about `file` as a whole.
    pub fn new(file: &Path, reason: E) -> Self {
        Self::at(file, None, reason)
    }

    /// A refusal found after parsing, at `line` (see [`line_of_key`](super::line_of_key)).
    pub fn at(file: &Path, line: Option<usize>, reason: E) -> Self {
        ConfigError {
            file: file.to_path_buf(),
            line,
            reason: Reason::Invalid(Box::new(reason)),
        }
    }

    /// The refusal with its own reason turned into another type's.
    pub fn map<F>(self, f: impl FnOnce(E) -> F) -> ConfigError<F> {
        ConfigError {
            file: self.file,
            line: self.line,
            reason: match self.reason {
                Reason::Unreadable(e) => Reason::Unreadable(e),
                Reason::Syntax(e) => Reason::Syntax(e),
                Reason::Invalid(e) => Reason::Invalid(Box::new(f(*e))),
            },
        }
    }

    /// The checks' own reason, if that is what refused the file.
    pub fn invalid(&self) -> Option<&E> {
        match &self.reason {
            Reason::Invalid(e) => Some(e),
            _ => None,
        }
    }
}

/// Reads a config file's text. (`E` is the caller's reason type: `?` does not infer it,
/// so callers name it, `read::<TenantError>(path)?`.)
pub fn read<E>(file: &Path) -> Result<String, ConfigError<E>> {
    std::fs::read_to_string(file).map_err(|e| ConfigError {
        file: file.to_path_buf(),
        line: None,
        reason: Reason::Unreadable(e.to_string()),
    })
}

/// Parses a config file's TOML strictly; a refusal names the line the parser stopped at.
pub fn parse_toml<T: DeserializeOwned, E>(file: &Path, text: &str) -> Result<T, ConfigError<E>> {
    toml::from_str(text).map_err(|e| ConfigError {
        file: file.to_path_buf(),
        line: e.span().map(|s| super::lines::line_of(text, s.start)),
        reason: Reason::Syntax(e.message().trim().to_string()),
    })
}

/// Why a tenant file that parses cannot be loaded. `at` is the setting, as the message
/// names it (`queues.jobs`, `topics.news.subscriptions[0]: queue`).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TenantError {
    #[error(transparent)]
    Limits(#[from] LimitError),
    /// A capability's own section (`[kv]`, `[databases.NAME]`).
    #[error(transparent)]
    Section(#[from] SectionError),
    #[error(transparent)]
    Route(#[from] RouteError),
    /// A name that cannot be one (`check_name`).
    #[error("{at}: {source}")]
    Name { at: String, source: CapError },
    #[error("{at}: {source}")]
    Secret { at: String, source: SecretError },
    #[error("{at}: {what} must be {lo}-{hi}, got {got}")]
    OutOfRange {
        at: String,
        what: &'static str,
        got: u32,
        lo: u32,
        hi: u32,
    },
    /// A reference to something the tenant does not declare. `at` is what the message
    /// says before the name (`queues.jobs: consumer.plugin`, `plugins.a.allow.hosts:`).
    #[error("{at} `{name}` is not one of the tenant's {section}")]
    Undeclared {
        at: String,
        name: String,
        section: &'static str,
    },
    /// A FIFO queue where only a standard one may be.
    #[error("{at} `{queue}` is FIFO; {why}")]
    Fifo {
        at: String,
        queue: String,
        why: &'static str,
    },
    #[error("{at}: webhook `{url}` is not an http(s) URL")]
    Webhook { at: String, url: String },
    /// A setting that does not fit with the others, for the reason given.
    #[error("{at}: {rule}")]
    Rule { at: String, rule: &'static str },
    #[error("{at}: {source}")]
    Target { at: String, source: NotOneTarget },
    #[error("{at}.{source}")]
    Pattern { at: String, source: PatternRefused },
    /// A part of the setting that its own parser refused (a pattern, a retry policy):
    /// `error` names the key within it.
    #[error("{at}.{error}")]
    Within { at: String, error: String },
    #[error("schedules.{name}.expression: {error}")]
    Schedule {
        name: String,
        error: crate::schedule::ScheduleError,
    },
    #[error("workflows.{name}: {error}")]
    Workflow {
        name: String,
        /// Boxed: a definition error is large next to the other refusals.
        error: Box<crate::workflow::DefinitionError>,
    },
    /// A workflow's definition file could not be read (the I/O error's text).
    #[error("workflows.{name}.definition: cannot read {}: {error}", file.display())]
    DefinitionUnreadable {
        name: String,
        file: PathBuf,
        error: String,
    },
    #[error("workflows.{name}.definition: {} is not JSON: {error}", file.display())]
    DefinitionNotJson {
        name: String,
        file: PathBuf,
        error: String,
    },
}

impl TenantError {
    /// A fixed rule broken at `at`.
    pub(super) fn rule(at: impl Into<String>, rule: &'static str) -> Self {
        TenantError::Rule {
            at: at.into(),
            rule,
        }
    }

    /// `at` refers to `name`, which is not one of the tenant's `section`.
    pub(super) fn undeclared(
        at: impl Into<String>,
        name: impl Into<String>,
        section: &'static str,
    ) -> Self {
        TenantError::Undeclared {
            at: at.into(),
            name: name.into(),
            section,
        }
    }

    /// `name` at `at` is not a valid name.
    pub(super) fn name(at: impl Into<String>) -> impl FnOnce(CapError) -> Self {
        let at = at.into();
        move |source| TenantError::Name { at, source }
    }

    /// A target setting `at` that is not one target.
    pub(super) fn target(at: &str) -> impl FnOnce(NotOneTarget) -> Self + '_ {
        move |source| TenantError::Target {
            at: at.to_string(),
            source,
        }
    }

    /// A pattern or filter policy of the setting `at` that is not one.
    pub(super) fn pattern(at: &str) -> impl FnOnce(PatternRefused) -> Self + '_ {
        move |source| TenantError::Pattern {
            at: at.to_string(),
            source,
        }
    }

    /// A nested parser's error, under `at`.
    pub(super) fn within(at: &str) -> impl FnOnce(String) -> Self + '_ {
        move |error| TenantError::Within {
            at: at.to_string(),
            error,
        }
    }
}
