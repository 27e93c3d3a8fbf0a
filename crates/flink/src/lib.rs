//! What flinkguard knows about Flink itself: versions and their configuration formats,
//! distributions installed from PyPI, and Flink processes.
#![forbid(unsafe_code)]
// Tests may panic on unexpected errors; library code may not.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod version;

pub use version::{ConfigFormat, FlinkVersion, ParseVersionError, shipped_java_options};

mod dist;
mod error;
pub mod java;
mod net;
pub mod process;

pub use dist::{FlinkDist, InstallProgress, cache_root};
pub use error::FlinkError;
pub use java::{JavaInfo, JdkTools, require_java, require_javac};
pub use net::{free_port, free_ports};
pub use process::{
    ClusterOverview, FlinkProcess, FlinkProcessSpec, FlinkStartError, LikelyCause, Role,
    StopOutcome, spawn, wait_ready, wait_ready_with,
};
