//! What a Flink REST request does, and who may do it.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod operation;
pub mod routes;

pub use operation::{Operation, UnknownOperation};

/// HTTP methods Flink's REST API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    /// GET (and HEAD, which Flink's router treats as GET).
    Get,
    /// POST.
    Post,
    /// PUT.
    Put,
    /// PATCH.
    Patch,
    /// DELETE.
    Delete,
}
