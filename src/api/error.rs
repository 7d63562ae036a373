//! Why a request is refused before it reaches the engine (HTTP 400): a
//! body that cannot be read or is not JSON, and Docker's JSON or query
//! fields that do not have the shape the engine's request needs.

use super::http::HttpError;
use crate::image::reference::ReferenceError;

#[derive(Debug, thiserror::Error)]
pub enum BadRequest {
    #[error(transparent)]
    Body(#[from] HttpError),
    #[error("Content-Type specified ({0}) must be 'application/json'")]
    ContentType(String),
    #[error("invalid JSON body: {0}")]
    Json(#[source] serde_json::Error),
    /// A field the request cannot do without (its message as Docker's
    /// client would read it).
    #[error("{0}")]
    Missing(&'static str),
    #[error("{field}: the value of {key} is not a string")]
    NotString { field: String, key: String },
    #[error("{field}: not an object of strings")]
    NotStrings { field: String },
    /// A query parameter holding JSON (`buildargs`, `labels`).
    #[error("invalid {name} {text:?}: {source}")]
    QueryJson {
        name: String,
        text: String,
        source: serde_json::Error,
    },
    #[error("invalid {name} {text:?}: not an object")]
    QueryNotObject { name: String, text: String },
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error("X-Registry-Auth is not base64: {0}")]
    AuthBase64(#[source] base64::DecodeError),
    #[error("X-Registry-Auth is not JSON: {0}")]
    AuthJson(#[source] serde_json::Error),
    #[error("X-Registry-Auth: auth is not base64: {0}")]
    AuthPairBase64(#[source] base64::DecodeError),
    #[error("one IPAM config (one IPv4 subnet) per network is supported")]
    ManyIpamConfigs,
}
