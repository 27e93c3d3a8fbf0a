//! Rendering Flink's configuration.
//!
//! [`security_settings`] computes the security part of a Flink configuration from
//! `flinkguard.yaml` and the PKI; [`render`] writes it as a new file and [`merge`] folds it
//! into a user's existing file, in Flink 2.x's nested `config.yaml` or Flink 1.x's flat
//! `flink-conf.yaml`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod flink_conf;

pub use flink_conf::{
    FlinkSettings, LocalClusterDirs, RenderError, SettingValue, choose_format, cipher_suites,
    client_settings, local_cluster_settings, merge, protocols, render, security_settings,
};
