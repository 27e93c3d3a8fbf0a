//! What a Flink REST request does, and who may do it.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod catalogue;
mod operation;
mod policy;
pub mod routes;
mod target;

pub use catalogue::{Classification, RouteCatalogue, UnknownRoute};
pub use operation::{Operation, UnknownOperation};
pub use policy::{
    AuthMethod, Binding, Decision, Grant, Owner, Policy, PolicyConfig, PolicyError, Principal,
    Scope, Subject, Visibility, builtin_roles,
};
pub use target::{MAX_SEGMENTS, MAX_TARGET_LEN, RequestTarget, TargetError};

impl std::str::FromStr for Method {
    type Err = String;

    /// Parses an HTTP method name; HEAD is treated as GET, as Flink's router does.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "GET" | "HEAD" => Ok(Method::Get),
            "POST" => Ok(Method::Post),
            "PUT" => Ok(Method::Put),
            "PATCH" => Ok(Method::Patch),
            "DELETE" => Ok(Method::Delete),
            other => Err(format!("method `{other}` is not used by Flink's REST API")),
        }
    }
}

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
