//! The route catalogue against the real Flink distribution: every route Flink 2.3 registers is in
//! `ROUTES` and nothing else is, and the routes whose method misleads are classified by what they
//! do.
// Tests: a failed step should fail the test loudly.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use flinkguard_policy::routes::{ROUTES, Route, UI_STATIC_TEMPLATE};
use flinkguard_policy::{Method, Operation};
use flinkguard_testkit::TestDist;
use flinkguard_testkit::routes::flink_routes;

fn method_name(method: Method) -> &'static str {
    match method {
        Method::Get => "GET",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Patch => "PATCH",
        Method::Delete => "DELETE",
    }
}

fn find(method: Method, template: &str) -> Route {
    *ROUTES
        .iter()
        .find(|r| r.method == method && r.template == template)
        .unwrap_or_else(|| panic!("ROUTES lacks {} {template}", method_name(method)))
}

#[test]
fn catalogue_matches_flink_2_3() {
    let dist = TestDist::default_version();
    let listed = flink_routes(&dist);
    let classes: BTreeMap<(String, String), String> = listed
        .into_iter()
        .map(|(method, template, class)| ((method, template), class))
        .collect();

    let fallback = ("GET".to_owned(), UI_STATIC_TEMPLATE.to_owned());
    assert!(
        classes.contains_key(&fallback),
        "Flink {} no longer registers its static-file fallback as GET {UI_STATIC_TEMPLATE}: \
         update UI_STATIC_TEMPLATE and the gateway's fallback",
        dist.version
    );
    let flink: BTreeSet<(String, String)> = classes
        .keys()
        .filter(|k| **k != fallback)
        .cloned()
        .collect();
    let ours: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (method_name(r.method).to_owned(), r.template.to_owned()))
        .collect();

    let missing: Vec<String> = flink
        .difference(&ours)
        .map(|key| format!("  {} {}  ({})", key.0, key.1, classes[key]))
        .collect();
    let extra: Vec<String> = ours
        .difference(&flink)
        .map(|(method, template)| format!("  {method} {template}"))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "ROUTES differs from the routes of Flink {}.\n\
         Flink routes missing from ROUTES (classify each by what its handler does):\n{}\n\
         ROUTES entries Flink does not have:\n{}",
        dist.version,
        missing.join("\n"),
        extra.join("\n"),
    );
    assert_eq!(ROUTES.len(), flink.len());
}

#[test]
fn no_route_appears_twice() {
    let mut seen = BTreeSet::new();
    for route in ROUTES {
        assert!(
            seen.insert((route.method, route.template)),
            "{} {} appears twice in ROUTES",
            method_name(route.method),
            route.template
        );
    }
}

#[test]
fn templates_are_written_as_flink_writes_them() {
    for route in ROUTES {
        let t = route.template;
        assert!(t.starts_with('/'), "{t}: must start with /");
        assert!(t == "/" || !t.ends_with('/'), "{t}: trailing slash");
        assert!(!t.starts_with("/v1/"), "{t}: write templates without /v1");
        assert_ne!(
            t, UI_STATIC_TEMPLATE,
            "the static-file fallback is not a route"
        );
        for segment in t.split('/').skip(1) {
            assert!(!segment.is_empty(), "{t}: empty segment");
            if let Some(name) = segment.strip_prefix(':') {
                assert!(
                    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric()),
                    "{t}: parameter `{segment}` is not `:name`"
                );
            }
        }
    }
}

/// Whether a request path could match both templates (same length, every segment equal or a
/// parameter on either side).
fn overlap(a: &str, b: &str) -> bool {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.split('/').collect(), b.split('/').collect());
    a.len() == b.len()
        && a.iter()
            .zip(&b)
            .all(|(x, y)| x == y || x.starts_with(':') || y.starts_with(':'))
}

#[test]
fn overlapping_templates_agree_on_the_operation() {
    // `/jobs/overview` also matches `/jobs/:jobid`: whichever the classifier picks, the operation
    // must be the same, so the decision never depends on tie-breaking.
    for (i, a) in ROUTES.iter().enumerate() {
        for b in &ROUTES[i + 1..] {
            if a.method == b.method && overlap(a.template, b.template) {
                assert_eq!(
                    a.operation,
                    b.operation,
                    "{} {} and {} overlap but are classified differently",
                    method_name(a.method),
                    a.template,
                    b.template
                );
            }
        }
    }
}

#[test]
fn routes_whose_method_misleads_are_classified_by_what_they_do() {
    use Method::*;
    use Operation::*;
    let expected = [
        (Get, "/jobs/:jobid/yarn-cancel", JobsCancel),
        (Get, "/jobs/:jobid/yarn-stop", JobsCancel),
        (Patch, "/jobs/:jobid", JobsCancel),
        (Post, "/jobs/:jobid/stop", JobsCancel),
        (Patch, "/jobs/:jobid/clientHeartbeat", JobsCancel),
        (Get, "/jars/:jarid/plan", JarsRun),
        (Post, "/jars/:jarid/plan", JarsRun),
        (Post, "/jars/:jarid/run", JarsRun),
        (Post, "/jars/:jarid/run-application", JarsRun),
        (Post, "/jars/upload", JarsUpload),
        (Delete, "/jars/:jarid", JarsDelete),
        (Post, "/jobs", JobsSubmit),
        (Post, "/jobs/:jobid/coordinators/:operatorUid", JobsSubmit),
        (Post, "/jobs/:jobid/savepoints", JobsSavepoint),
        (Post, "/jobs/:jobid/checkpoints", JobsSavepoint),
        (Get, "/jobs/:jobid/savepoints/:triggerid", JobsRead),
        (Get, "/jobs/:jobid/checkpoints/:triggerid", JobsRead),
        (Post, "/savepoint-disposal", SavepointsDispose),
        (Get, "/savepoint-disposal/:triggerid", JobsRead),
        (Put, "/jobs/:jobid/resource-requirements", JobsRescale),
        (Patch, "/jobs/:jobid/rescaling", JobsRescale),
        (Delete, "/cluster", ClusterShutdown),
        (Get, "/config", ClusterRead),
        (Get, "/jobmanager/config", ClusterConfig),
        (Get, "/jobmanager/environment", ClusterConfig),
        (Get, "/jobs/:jobid/jobmanager/config", ClusterConfig),
        (Get, "/jobs/:jobid/jobmanager/environment", ClusterConfig),
        (
            Get,
            "/applications/:applicationid/jobmanager/config",
            ClusterConfig,
        ),
        (Get, "/jobs/:jobid/config", JobsConfig),
        (Get, "/jobmanager/log", LogsRead),
        (Get, "/jobmanager/stdout", LogsRead),
        (Get, "/jobmanager/logs/:filename", LogsRead),
        (Get, "/jobmanager/thread-dump", LogsRead),
        (Get, "/taskmanagers/:taskmanagerid/log", LogsRead),
        (Get, "/taskmanagers/:taskmanagerid/stdout", LogsRead),
        (Get, "/taskmanagers/:taskmanagerid/logs/:filename", LogsRead),
        (Get, "/taskmanagers/:taskmanagerid/thread-dump", LogsRead),
        (Post, "/jobmanager/profiler", Profile),
        (Post, "/taskmanagers/:taskmanagerid/profiler", Profile),
        (Get, "/jobs/:jobid/vertices/:vertexid/flamegraph", Profile),
        (
            Post,
            "/applications/:applicationid/cancel",
            ApplicationsCancel,
        ),
        (Delete, "/datasets/:datasetid", DatasetsDelete),
    ];
    for (method, template, operation) in expected {
        let route = find(method, template);
        assert_eq!(
            route.operation,
            operation,
            "{} {template}",
            method_name(method)
        );
    }
}

#[test]
fn every_route_that_is_not_a_get_changes_something() {
    // Flink has no non-GET read routes; a write classified as a read would let readers change
    // the cluster.
    for route in ROUTES {
        if route.method != Method::Get {
            assert!(
                route.operation.is_write(),
                "{} {} is classified as the read {}",
                method_name(route.method),
                route.template,
                route.operation
            );
        }
    }
}

#[test]
fn every_operation_is_reachable_through_a_route() {
    let used: BTreeSet<Operation> = ROUTES.iter().map(|r| r.operation).collect();
    for op in Operation::ALL {
        if op.is_principal_level() {
            // Not performed by a route: what a principal may see or be.
            assert!(!used.contains(op), "a route performs {op}");
        } else if *op == Operation::UiStatic {
            // The static-file fallback, not a route.
            assert!(
                !used.contains(op),
                "no route serves the Web UI's static files"
            );
        } else {
            assert!(used.contains(op), "no route performs {op}");
        }
    }
}
