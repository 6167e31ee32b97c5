//! Fake third-party APIs.
