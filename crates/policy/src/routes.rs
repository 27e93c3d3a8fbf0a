//! The route catalogue's data: every route Flink's REST server registers, with the operation
//! it performs. Maintained against the real distribution by `tests/route_catalogue.rs`.
//!
//! Each route is classified by what its handler does, not by its method: a comment marks every
//! classification the method and path do not make obvious.

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

/// The template of the Web UI's static-file handler (`WebContentHandlerSpecification`), which
/// Flink registers as `GET /:*` and which serves every GET that no route in [`ROUTES`] matches.
/// It is a fallback, not a route: it is not in [`ROUTES`], and what it serves is
/// [`Operation::UiStatic`].
pub const UI_STATIC_TEMPLATE: &str = "/:*";

const fn route(method: Method, template: &'static str, operation: Operation) -> Route {
    Route {
        method,
        template,
        operation,
    }
}

use Method::{Delete, Get, Patch, Post, Put};
use Operation::*;

/// Every route of Flink 2.3's REST server (without the `/v1` prefix, which every route also has),
/// except the static-file fallback [`UI_STATIC_TEMPLATE`].
///
/// Routes registered only when a feature is enabled (the profiler with `rest.profiling.enabled`)
/// are listed too: the catalogue must classify them whatever the cluster's configuration.
// One route per line, long or not: the table stays scannable and each change is one line.
#[rustfmt::skip]
pub static ROUTES: &[Route] = &[
    // --- Cluster ---
    route(Get, "/overview", ClusterRead),
    // The dashboard's settings (refresh interval, version, enabled features), not the cluster
    // configuration.
    route(Get, "/config", ClusterRead),
    route(Delete, "/cluster", ClusterShutdown),
    route(Get, "/jobmanager/config", ClusterConfig),
    route(Get, "/jobmanager/environment", ClusterConfig),
    route(Get, "/jobmanager/metrics", ClusterRead),
    route(Get, "/jobmanager/log", LogsRead),
    route(Get, "/jobmanager/stdout", LogsRead),
    // Lists the files in the JobManager's log directory.
    route(Get, "/jobmanager/logs", LogsRead),
    route(Get, "/jobmanager/logs/:filename", LogsRead),
    route(Get, "/jobmanager/thread-dump", LogsRead),
    route(Post, "/jobmanager/profiler", Profile),
    // Lists the profiler's result files.
    route(Get, "/jobmanager/profiler", Profile),
    route(Get, "/jobmanager/profiler/:filename", Profile),
    route(Get, "/taskmanagers", ClusterRead),
    route(Get, "/taskmanagers/metrics", ClusterRead),
    route(Get, "/taskmanagers/:taskmanagerid", ClusterRead),
    route(Get, "/taskmanagers/:taskmanagerid/metrics", ClusterRead),
    route(Get, "/taskmanagers/:taskmanagerid/log", LogsRead),
    route(Get, "/taskmanagers/:taskmanagerid/stdout", LogsRead),
    route(Get, "/taskmanagers/:taskmanagerid/logs", LogsRead),
    route(Get, "/taskmanagers/:taskmanagerid/logs/:filename", LogsRead),
    route(Get, "/taskmanagers/:taskmanagerid/thread-dump", LogsRead),
    route(Post, "/taskmanagers/:taskmanagerid/profiler", Profile),
    route(Get, "/taskmanagers/:taskmanagerid/profiler", Profile),
    route(Get, "/taskmanagers/:taskmanagerid/profiler/:filename", Profile),
    // --- Jars (web submission) ---
    route(Get, "/jars", JarsRead),
    route(Post, "/jars/upload", JarsUpload),
    route(Delete, "/jars/:jarid", JarsDelete),
    // Both plan routes run the jar's main() on the JobManager to build the plan.
    route(Get, "/jars/:jarid/plan", JarsRun),
    route(Post, "/jars/:jarid/plan", JarsRun),
    route(Post, "/jars/:jarid/run", JarsRun),
    // Runs the jar's main() as an application on the JobManager.
    route(Post, "/jars/:jarid/run-application", JarsRun),
    // --- Jobs ---
    route(Get, "/jobs", JobsRead),
    // Submits a serialized job graph (the CLI's path).
    route(Post, "/jobs", JobsSubmit),
    route(Get, "/jobs/overview", JobsRead),
    // Aggregates metrics across the jobs named in the query (all jobs without one).
    route(Get, "/jobs/metrics", JobsRead),
    route(Get, "/jobs/:jobid", JobsRead),
    // Terminates the job (`?mode=cancel`).
    route(Patch, "/jobs/:jobid", JobsCancel),
    // A GET that cancels the job: kept for YARN's proxy, which forwards only GET.
    route(Get, "/jobs/:jobid/yarn-cancel", JobsCancel),
    // A GET that stops the job; Flink 2.x rejects its "stop" mode, but it remains a termination
    // route.
    route(Get, "/jobs/:jobid/yarn-stop", JobsCancel),
    // Stop-with-savepoint: takes a savepoint, then ends the job.
    route(Post, "/jobs/:jobid/stop", JobsCancel),
    // Sets when the job's client heartbeat expires; once the dispatcher checks heartbeats (any
    // job submitted attached), an expired timestamp cancels the job.
    route(Patch, "/jobs/:jobid/clientHeartbeat", JobsCancel),
    // Delivers a Java-serialized request, deserialized on the JobManager with the job's
    // classloader, to an operator coordinator (how `collect()` fetches results): trusted like
    // submitting code. Closest operation; a dedicated one is proposed.
    route(Post, "/jobs/:jobid/coordinators/:operatorUid", JobsSubmit),
    route(Get, "/jobs/:jobid/status", JobsRead),
    route(Get, "/jobs/:jobid/config", JobsConfig),
    // The whole cluster configuration and JVM environment, reached through a job.
    route(Get, "/jobs/:jobid/jobmanager/config", ClusterConfig),
    route(Get, "/jobs/:jobid/jobmanager/environment", ClusterConfig),
    // Returns only the URL of the Web UI's log page, not logs.
    route(Get, "/jobs/:jobid/jobmanager/log-url", JobsRead),
    route(Get, "/jobs/:jobid/taskmanagers/:taskmanagerid/log-url", JobsRead),
    route(Get, "/jobs/:jobid/accumulators", JobsRead),
    route(Get, "/jobs/:jobid/exceptions", JobsRead),
    route(Get, "/jobs/:jobid/execution-result", JobsRead),
    route(Get, "/jobs/:jobid/metrics", JobsRead),
    // The plan of the submitted job graph (unlike the jar plan, runs nothing).
    route(Get, "/jobs/:jobid/plan", JobsRead),
    // --- Checkpoints and savepoints ---
    route(Get, "/jobs/:jobid/checkpoints", JobsRead),
    // Triggers a checkpoint; the job keeps running.
    route(Post, "/jobs/:jobid/checkpoints", JobsSavepoint),
    // Status of a triggered checkpoint.
    route(Get, "/jobs/:jobid/checkpoints/:triggerid", JobsRead),
    route(Get, "/jobs/:jobid/checkpoints/config", JobsRead),
    route(Get, "/jobs/:jobid/checkpoints/details/:checkpointid", JobsRead),
    route(Get, "/jobs/:jobid/checkpoints/details/:checkpointid/subtasks/:vertexid", JobsRead),
    // With `"cancel-job": true` in its body it also cancels the job: the gateway classifies that
    // body as jobs.cancel separately.
    route(Post, "/jobs/:jobid/savepoints", JobsSavepoint),
    // Status of a triggered savepoint or stop-with-savepoint.
    route(Get, "/jobs/:jobid/savepoints/:triggerid", JobsRead),
    // Deletes a savepoint's state.
    route(Post, "/savepoint-disposal", SavepointsDispose),
    // Status of a disposal.
    route(Get, "/savepoint-disposal/:triggerid", JobsRead),
    // --- Rescaling ---
    // Changes the parallelism the adaptive scheduler gives the job's vertices.
    route(Put, "/jobs/:jobid/resource-requirements", JobsRescale),
    route(Get, "/jobs/:jobid/resource-requirements", JobsRead),
    // Legacy rescaling; Flink answers that the feature is disabled, but it is a rescale.
    route(Patch, "/jobs/:jobid/rescaling", JobsRescale),
    // Status of a legacy rescaling.
    route(Get, "/jobs/:jobid/rescaling/:triggerid", JobsRead),
    // The adaptive scheduler's rescale history and settings (read only).
    route(Get, "/jobs/:jobid/rescales/config", JobsRead),
    route(Get, "/jobs/:jobid/rescales/details/:rescaleuuid", JobsRead),
    route(Get, "/jobs/:jobid/rescales/history", JobsRead),
    route(Get, "/jobs/:jobid/rescales/overview", JobsRead),
    route(Get, "/jobs/:jobid/rescales/summary", JobsRead),
    // --- Vertices and subtasks ---
    route(Get, "/jobs/:jobid/vertices/:vertexid", JobsRead),
    route(Get, "/jobs/:jobid/vertices/:vertexid/accumulators", JobsRead),
    // Computed from back-pressure metrics in Flink 2.x; no sampling.
    route(Get, "/jobs/:jobid/vertices/:vertexid/backpressure", JobsRead),
    // Samples the stack traces of the vertex's running tasks (when `rest.flamegraph.enabled`):
    // a sampling profiler that reveals code and costs CPU on the TaskManagers.
    route(Get, "/jobs/:jobid/vertices/:vertexid/flamegraph", Profile),
    route(Get, "/jobs/:jobid/vertices/:vertexid/jm-operator-metrics", JobsRead),
    route(Get, "/jobs/:jobid/vertices/:vertexid/metrics", JobsRead),
    route(Get, "/jobs/:jobid/vertices/:vertexid/subtasks/:subtaskindex", JobsRead),
    route(Get, "/jobs/:jobid/vertices/:vertexid/subtasks/:subtaskindex/attempts/:attempt", JobsRead),
    route(Get, "/jobs/:jobid/vertices/:vertexid/subtasks/:subtaskindex/attempts/:attempt/accumulators", JobsRead),
    route(Get, "/jobs/:jobid/vertices/:vertexid/subtasks/:subtaskindex/metrics", JobsRead),
    route(Get, "/jobs/:jobid/vertices/:vertexid/subtasks/accumulators", JobsRead),
    route(Get, "/jobs/:jobid/vertices/:vertexid/subtasks/metrics", JobsRead),
    route(Get, "/jobs/:jobid/vertices/:vertexid/subtasktimes", JobsRead),
    route(Get, "/jobs/:jobid/vertices/:vertexid/taskmanagers", JobsRead),
    route(Get, "/jobs/:jobid/vertices/:vertexid/watermarks", JobsRead),
    // --- Applications (Flink 2.x) ---
    route(Get, "/applications/overview", ApplicationsRead),
    route(Get, "/applications/:applicationid", ApplicationsRead),
    route(Post, "/applications/:applicationid/cancel", ApplicationsCancel),
    route(Get, "/applications/:applicationid/exceptions", ApplicationsRead),
    // The whole cluster configuration, reached through an application.
    route(Get, "/applications/:applicationid/jobmanager/config", ClusterConfig),
    // --- Cluster data sets ---
    route(Get, "/datasets", DatasetsRead),
    // Triggers the asynchronous deletion of a data set.
    route(Delete, "/datasets/:datasetid", DatasetsDelete),
    // Status of a deletion.
    route(Get, "/datasets/delete/:triggerid", DatasetsRead),
];
