//! Why a caller was refused: the error every check of who may call a source gives.

use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The client address is not in the source's allowlist (403).
    #[error("source address {0} is not allowed")]
    Forbidden(IpAddr),
    /// A credential is missing or wrong (401).
    #[error("{0}")]
    Unauthorized(String),
}
