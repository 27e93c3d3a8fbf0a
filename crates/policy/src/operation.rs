use std::fmt;
use std::str::FromStr;

/// What a Flink REST request *does*, whatever its method suggests.
///
/// The names are stable: they appear in policies, audit lines and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Operation {
    /// The Web UI's static files (HTML, JS, CSS, images).
    UiStatic,
    /// Cluster overview, TaskManager lists and metrics, the dashboard's own `/config`.
    ClusterRead,
    /// The whole cluster configuration and JVM environment (`/jobmanager/config`,
    /// `/jobmanager/environment` and their per-job twins): may hold secrets.
    ClusterConfig,
    /// Shutting the cluster down (`DELETE /cluster`).
    ClusterShutdown,
    /// Log files, stdout and thread dumps of JobManager and TaskManagers.
    LogsRead,
    /// Starting the profiler on a JobManager or TaskManager, and reading its results.
    Profile,
    /// Job lists, job details, vertices, checkpoint statistics, metrics, exceptions, plans of
    /// submitted jobs, status of asynchronous operations.
    JobsRead,
    /// A job's user configuration (`/jobs/:jobid/config`): job parameters may hold secrets.
    JobsConfig,
    /// Submitting a job graph (`POST /jobs`, the CLI's path).
    JobsSubmit,
    /// Cancelling or stopping a job, including `GET /jobs/:jobid/yarn-cancel` and savepoints
    /// that cancel the job.
    JobsCancel,
    /// Triggering savepoints and checkpoints that leave the job running.
    JobsSavepoint,
    /// Changing a job's parallelism or resource requirements.
    JobsRescale,
    /// Disposing of a savepoint (`POST /savepoint-disposal`): deletes state.
    SavepointsDispose,
    /// Listing uploaded jars.
    JarsRead,
    /// Uploading a jar.
    JarsUpload,
    /// Running an uploaded jar's `main()` on the JobManager: `run`, and `plan`, which runs it
    /// too.
    JarsRun,
    /// Deleting an uploaded jar.
    JarsDelete,
    /// Reading cluster data sets.
    DatasetsRead,
    /// Deleting cluster data sets.
    DatasetsDelete,
    /// Reading applications (Flink 2.x application overview and details).
    ApplicationsRead,
    /// Cancelling an application.
    ApplicationsCancel,
    /// Seeing secrets in responses (config values, JVM options, program arguments, logs)
    /// unredacted. Not a route: principals without it get filtered responses.
    SecretsRead,
    /// Acting as another user or group (`Impersonate-User`, `Impersonate-Group`).
    Impersonate,
    /// Creating signed links (pre-authenticated URLs) through the gateway's signing endpoint.
    LinksSign,
}

impl Operation {
    /// Every operation, in a stable order.
    pub const ALL: &'static [Operation] = &[
        Operation::UiStatic,
        Operation::ClusterRead,
        Operation::ClusterConfig,
        Operation::ClusterShutdown,
        Operation::LogsRead,
        Operation::Profile,
        Operation::JobsRead,
        Operation::JobsConfig,
        Operation::JobsSubmit,
        Operation::JobsCancel,
        Operation::JobsSavepoint,
        Operation::JobsRescale,
        Operation::SavepointsDispose,
        Operation::JarsRead,
        Operation::JarsUpload,
        Operation::JarsRun,
        Operation::JarsDelete,
        Operation::DatasetsRead,
        Operation::DatasetsDelete,
        Operation::ApplicationsRead,
        Operation::ApplicationsCancel,
        Operation::SecretsRead,
        Operation::Impersonate,
        Operation::LinksSign,
    ];

    /// The stable name used in policies, audit lines and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Operation::UiStatic => "ui.static",
            Operation::ClusterRead => "cluster.read",
            Operation::ClusterConfig => "cluster.config",
            Operation::ClusterShutdown => "cluster.shutdown",
            Operation::LogsRead => "logs.read",
            Operation::Profile => "cluster.profile",
            Operation::JobsRead => "jobs.read",
            Operation::JobsConfig => "jobs.config",
            Operation::JobsSubmit => "jobs.submit",
            Operation::JobsCancel => "jobs.cancel",
            Operation::JobsSavepoint => "jobs.savepoint",
            Operation::JobsRescale => "jobs.rescale",
            Operation::SavepointsDispose => "savepoints.dispose",
            Operation::JarsRead => "jars.read",
            Operation::JarsUpload => "jars.upload",
            Operation::JarsRun => "jars.run",
            Operation::JarsDelete => "jars.delete",
            Operation::DatasetsRead => "datasets.read",
            Operation::DatasetsDelete => "datasets.delete",
            Operation::ApplicationsRead => "applications.read",
            Operation::ApplicationsCancel => "applications.cancel",
            Operation::SecretsRead => "secrets.read",
            Operation::Impersonate => "impersonate",
            Operation::LinksSign => "links.sign",
        }
    }

    /// Operations no route performs: what a principal may see (secrets unredacted) or be
    /// (someone else), or make (signed links).
    pub fn is_principal_level(self) -> bool {
        matches!(
            self,
            Operation::SecretsRead | Operation::Impersonate | Operation::LinksSign
        )
    }

    /// Operations that create a resource the creator then owns.
    pub fn creates(self) -> bool {
        matches!(self, Operation::JarsUpload | Operation::JobsSubmit)
    }

    /// Operations on one job, jar or application, which `:own` / `:group` scopes apply to
    /// (and the creating operations, whose results their creator owns).
    pub fn is_scopable(self) -> bool {
        self.creates()
            || matches!(
                self,
                Operation::JobsRead
                    | Operation::JobsConfig
                    | Operation::JobsCancel
                    | Operation::JobsSavepoint
                    | Operation::JobsRescale
                    | Operation::JarsRead
                    | Operation::JarsRun
                    | Operation::JarsDelete
                    | Operation::ApplicationsRead
                    | Operation::ApplicationsCancel
            )
    }

    /// Whether the operation changes the cluster, its jobs or their state.
    pub fn is_write(self) -> bool {
        !matches!(
            self,
            Operation::UiStatic
                | Operation::ClusterRead
                | Operation::ClusterConfig
                | Operation::LogsRead
                | Operation::JobsRead
                | Operation::JobsConfig
                | Operation::JarsRead
                | Operation::DatasetsRead
                | Operation::ApplicationsRead
                | Operation::SecretsRead
        )
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not an operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown operation `{0}`")]
pub struct UnknownOperation(pub String);

impl FromStr for Operation {
    type Err = UnknownOperation;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Operation::ALL
            .iter()
            .copied()
            .find(|o| o.name() == s)
            .ok_or_else(|| UnknownOperation(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        let mut names: Vec<&str> = Operation::ALL.iter().map(|o| o.name()).collect();
        for op in Operation::ALL {
            assert_eq!(op.name().parse::<Operation>(), Ok(*op));
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Operation::ALL.len());
    }
}
