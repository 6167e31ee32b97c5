//! The backend of a capability this host does not provide: every call answers
//! `unavailable`, so a plugin can handle the absence instead of failing to load. Each
//! capability's module implements its backend trait for [`Unavailable`].

use super::CapError;

pub struct Unavailable;

/// `unavailable`, naming what is missing.
pub(super) fn answer<T>(what: &str) -> Result<T, CapError> {
    Err(CapError::Unavailable(format!(
        "{what} is not configured on this host"
    )))
}
