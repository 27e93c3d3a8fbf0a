//! The route catalogue: method + normalized path → the Flink operation a request performs.

use std::collections::BTreeMap;

use crate::routes::{ROUTES, Route};
use crate::{Method, Operation, RequestTarget};

/// File types the Web UI serves; an unmatched GET for one of these (or for `/`) is `ui.static`.
/// Anything else that matches no route is denied rather than handed to Flink's static-file
/// handler, which receives every unmatched GET.
const STATIC_EXTENSIONS: &[&str] = &[
    "html", "js", "mjs", "css", "map", "ico", "png", "svg", "jpg", "gif", "woff", "woff2", "ttf",
    "eot", "txt",
];

/// What a request does, as decided from its method and path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    /// The operation.
    pub operation: Operation,
    /// The route template that matched (`/jobs/:jobid/yarn-cancel`), `None` for static files.
    pub route: Option<&'static str>,
    /// Path parameters by name (`jobid` → `4f2a...`).
    pub params: Vec<(&'static str, String)>,
}

impl Classification {
    /// The value of a path parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The job the request is about, if its route names one.
    pub fn job_id(&self) -> Option<&str> {
        self.param("jobid")
    }

    /// Whether the body decides the operation ([`Classification::refine_with_body`] must run
    /// before the decision).
    pub fn depends_on_body(&self) -> bool {
        matches!(
            self.route,
            Some(
                "/jobs/:jobid/savepoints"
                    | "/jobs/:jobid/stop"
                    | "/jars/:jarid/run"
                    | "/jars/:jarid/run-application"
            )
        )
    }

    /// Paths the caller chose for Flink to write to or read state from: a savepoint's
    /// `target-directory`, a stop's `targetDirectory`, a run's `savepointPath` (body or query).
    /// A body that is not a JSON object yields nothing here (Flink refuses it too).
    pub fn caller_chosen_paths(&self, body: &[u8], target: &crate::RequestTarget) -> Vec<String> {
        let fields: &[&str] = match self.route {
            Some("/jobs/:jobid/savepoints") => &["target-directory"],
            Some("/jobs/:jobid/stop") => &["targetDirectory"],
            Some("/jars/:jarid/run" | "/jars/:jarid/run-application") => &["savepointPath"],
            _ => return Vec::new(),
        };
        let mut paths: Vec<String> = fields
            .iter()
            .filter_map(|f| target.query_param(f))
            .map(str::to_owned)
            .collect();
        if let Ok(Members(members)) = serde_json::from_slice::<Members>(body) {
            for (name, value) in members {
                if fields.contains(&name.as_str()) {
                    match value {
                        serde_json::Value::Null => {}
                        serde_json::Value::String(s) => paths.push(s),
                        // Not a path Flink would use as is; refuse rather than guess.
                        other => paths.push(other.to_string()),
                    }
                }
            }
        }
        paths
    }

    /// Applies rules where the body changes a route's effect: a savepoint request cancels the
    /// job unless its body clearly says it does not. Flink's Jackson coerces `1`, `"TRUE"` and
    /// friends to `true`, and takes the last of duplicated keys; rather than imitate every
    /// coercion, anything but an explicit false (or no `cancel-job` at all) counts as a cancel,
    /// including bodies that are not a JSON object (Flink refuses those anyway).
    pub fn refine_with_body(&mut self, body: &[u8]) {
        if self.route == Some("/jobs/:jobid/savepoints") && body_may_cancel_job(body) {
            self.operation = Operation::JobsCancel;
        }
    }
}

/// Every member of a JSON object, duplicates included.
struct Members(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Members;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Members, A::Error> {
                let mut members = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    members.push(entry);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

fn body_may_cancel_job(body: &[u8]) -> bool {
    if body.iter().all(u8::is_ascii_whitespace) {
        // No body: Flink's default is not to cancel.
        return false;
    }
    let Ok(Members(members)) = serde_json::from_slice::<Members>(body) else {
        return true;
    };
    members
        .iter()
        .filter(|(name, _)| name == "cancel-job")
        .any(|(_, value)| !explicitly_false(value))
}

fn explicitly_false(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Null | serde_json::Value::Bool(false) => true,
        serde_json::Value::String(s) => s.eq_ignore_ascii_case("false"),
        serde_json::Value::Number(n) => n.as_f64() == Some(0.0),
        _ => false,
    }
}

/// No route matches: the request is denied (404 in Flink's error shape).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no Flink REST route matches {method:?} {path}")]
pub struct UnknownRoute {
    /// The method.
    pub method: Method,
    /// The path.
    pub path: String,
}

#[derive(Debug)]
enum Segment {
    Literal(&'static str),
    Param(&'static str),
}

#[derive(Debug)]
struct CompiledRoute {
    route: &'static Route,
    segments: Vec<Segment>,
}

/// Every Flink REST route, compiled for matching.
#[derive(Debug)]
pub struct RouteCatalogue {
    /// By method and number of segments: a request is matched only against the templates of
    /// its own shape (a handful), not against all of Flink's routes.
    by_shape: BTreeMap<(Method, usize), Vec<CompiledRoute>>,
}

impl Default for RouteCatalogue {
    fn default() -> Self {
        Self::new()
    }
}

/// Longest route template, in segments: a template's literal positions fit in a `u64`.
const MAX_SEGMENTS: usize = 64;

impl RouteCatalogue {
    /// The catalogue of Flink 2.3's routes.
    pub fn new() -> RouteCatalogue {
        Self::from_routes(ROUTES)
    }

    fn from_routes(routes: &'static [Route]) -> RouteCatalogue {
        let routes = routes
            .iter()
            .map(|route| CompiledRoute {
                route,
                segments: route
                    .template
                    .split('/')
                    .filter(|s| !s.is_empty())
                    .map(|s| match s.strip_prefix(':') {
                        Some(name) => Segment::Param(name),
                        None => Segment::Literal(s),
                    })
                    .collect(),
            })
            .collect::<Vec<CompiledRoute>>();
        assert!(
            routes.iter().all(|r| r.segments.len() <= MAX_SEGMENTS),
            "a route template has more than {MAX_SEGMENTS} segments"
        );
        let mut by_shape: BTreeMap<(Method, usize), Vec<CompiledRoute>> = BTreeMap::new();
        for compiled in routes {
            by_shape
                .entry((compiled.route.method, compiled.segments.len()))
                .or_default()
                .push(compiled);
        }
        RouteCatalogue { by_shape }
    }

    /// Classifies a request. Routes are also served under `/v1`. Where several templates
    /// match, the one with a literal segment earliest wins (`/jobs/overview` over
    /// `/jobs/:jobid`), as in Flink's router.
    pub fn classify(
        &self,
        method: Method,
        target: &RequestTarget,
    ) -> Result<Classification, UnknownRoute> {
        let all = target.segments();
        let segments = match all.first() {
            Some(first) if first == "v1" && all.len() > 1 => &all[1..],
            _ => all,
        };
        // Among matching templates (all as long as the path), the one whose literal segments
        // come earliest wins: as bits, first segment highest, that is the larger number.
        let mut best: Option<(&CompiledRoute, u64)> = None;
        let candidates = self.by_shape.get(&(method, segments.len()));
        for candidate in candidates.into_iter().flatten() {
            let mut literals = 0u64;
            let matches = candidate.segments.iter().zip(segments).enumerate().all(
                |(position, (pattern, actual))| match pattern {
                    Segment::Literal(l) => {
                        literals |= 1 << (MAX_SEGMENTS - 1 - position);
                        l == actual
                    }
                    Segment::Param(_) => true,
                },
            );
            if matches && best.is_none_or(|(_, most)| literals > most) {
                best = Some((candidate, literals));
            }
        }
        if let Some((compiled, _)) = best {
            let params = compiled
                .segments
                .iter()
                .zip(segments)
                .filter_map(|(pattern, actual)| match pattern {
                    Segment::Param(name) => Some((*name, actual.clone())),
                    Segment::Literal(_) => None,
                })
                .collect();
            return Ok(Classification {
                operation: compiled.route.operation,
                route: Some(compiled.route.template),
                params,
            });
        }
        if method == Method::Get && is_static_file(all) {
            return Ok(Classification {
                operation: Operation::UiStatic,
                route: None,
                params: Vec::new(),
            });
        }
        Err(UnknownRoute {
            method,
            path: target.path().to_owned(),
        })
    }
}

fn is_static_file(segments: &[String]) -> bool {
    match segments.last() {
        None => true,
        Some(last) => last.rsplit_once('.').is_some_and(|(stem, ext)| {
            !stem.is_empty() && STATIC_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str())
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    static TEST_ROUTES: &[Route] = &[
        Route {
            method: Method::Get,
            template: "/jobs/overview",
            operation: Operation::JobsRead,
        },
        Route {
            method: Method::Get,
            template: "/jobs/:jobid",
            operation: Operation::JobsRead,
        },
        Route {
            method: Method::Get,
            template: "/jobs/:jobid/yarn-cancel",
            operation: Operation::JobsCancel,
        },
        Route {
            method: Method::Post,
            template: "/jobs/:jobid/savepoints",
            operation: Operation::JobsSavepoint,
        },
        Route {
            method: Method::Get,
            template: "/jars/:jarid/plan",
            operation: Operation::JarsRun,
        },
    ];

    fn classify(method: Method, raw: &str) -> Result<Classification, UnknownRoute> {
        RouteCatalogue::from_routes(TEST_ROUTES)
            .classify(method, &RequestTarget::parse(raw).unwrap())
    }

    #[test]
    fn literal_segments_win_and_v1_is_the_same_route() {
        let c = classify(Method::Get, "/jobs/overview").unwrap();
        assert_eq!(c.route, Some("/jobs/overview"));
        let c = classify(Method::Get, "/v1/jobs/4f2a").unwrap();
        assert_eq!((c.route, c.job_id()), (Some("/jobs/:jobid"), Some("4f2a")));
        let c = classify(Method::Get, "/v1/jobs/4f2a/yarn-cancel").unwrap();
        assert_eq!(c.operation, Operation::JobsCancel);
        assert_eq!(
            classify(Method::Get, "/jars/x.jar/plan").unwrap().operation,
            Operation::JarsRun
        );
    }

    #[test]
    fn method_matters_and_unknown_routes_are_denied() {
        assert!(classify(Method::Delete, "/jobs/overview").is_err());
        assert!(classify(Method::Post, "/jobs/4f2a/nothing").is_err());
        assert!(classify(Method::Get, "/jobs/4f2a/nothing").is_err());
        assert!(classify(Method::Get, "/etc/passwd").is_err());
    }

    #[test]
    fn static_files_only_for_gets_of_asset_types() {
        assert_eq!(
            classify(Method::Get, "/").unwrap().operation,
            Operation::UiStatic
        );
        assert_eq!(
            classify(Method::Get, "/assets/main.4f2a.js")
                .unwrap()
                .operation,
            Operation::UiStatic
        );
        assert!(classify(Method::Post, "/index.html").is_err());
        assert!(classify(Method::Get, "/.js").is_err());
        assert!(classify(Method::Get, "/jobmanager/secrets").is_err());
    }

    #[test]
    fn savepoint_that_cancels_is_a_cancel() {
        let mut c = classify(Method::Post, "/jobs/4f2a/savepoints").unwrap();
        assert!(c.depends_on_body());
        c.refine_with_body(br#"{"target-directory": "s3://x", "cancel-job": false}"#);
        assert_eq!(c.operation, Operation::JobsSavepoint);
        for body in [
            &b""[..],
            br#"{}"#,
            br#"{"cancel-job": null}"#,
            br#"{"cancel-job": "False"}"#,
        ] {
            let mut c = classify(Method::Post, "/jobs/4f2a/savepoints").unwrap();
            c.refine_with_body(body);
            assert_eq!(
                c.operation,
                Operation::JobsSavepoint,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        // Whatever Jackson might read as true, and whatever we cannot read, is a cancel.
        for body in [
            &br#"{"cancel-job": true}"#[..],
            br#"{"cancel-job": "TRUE"}"#,
            br#"{"cancel-job": 1}"#,
            br#"{"cancel-job": false, "cancel-job": true}"#,
            br#"{"cancel\u002djob": true}"#,
            br#"{"cancel-job": true"#,
            br#"[{"cancel-job": true}]"#,
        ] {
            let mut c = classify(Method::Post, "/jobs/4f2a/savepoints").unwrap();
            c.refine_with_body(body);
            assert_eq!(c.operation, Operation::JobsCancel);
        }
    }
}
