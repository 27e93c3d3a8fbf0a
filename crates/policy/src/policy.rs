//! Who may do what: roles (sets of operations) bound to users and groups. Default deny.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;

use crate::Operation;

/// How a principal proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMethod {
    /// A client certificate verified against the configured client CAs.
    Mtls,
    /// A bearer JWT from an identity provider.
    Jwt,
    /// A service token minted by `flinkguard token issue`.
    ServiceToken,
    /// Identity headers from a trusted proxy.
    TrustedProxy,
    /// Kerberos (SPNEGO).
    Kerberos,
    /// Nobody: anonymous access, when enabled.
    Anonymous,
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuthMethod::Mtls => "mtls",
            AuthMethod::Jwt => "jwt",
            AuthMethod::ServiceToken => "service-token",
            AuthMethod::TrustedProxy => "trusted-proxy",
            AuthMethod::Kerberos => "kerberos",
            AuthMethod::Anonymous => "anonymous",
        })
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user (certificate CN, token subject, ...).
    pub user: String,
    /// The groups (certificate O attributes, token groups claim, ...).
    pub groups: Vec<String>,
    /// How the caller authenticated.
    pub method: AuthMethod,
    /// The TCP peer.
    pub peer: Option<SocketAddr>,
}

/// The outcome of authorization; every one is audited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed by `role`, bound to the principal by `via`.
    Allow {
        /// The role that grants the operation.
        role: String,
        /// How the role is bound (`user alice`, `group team-a`, `anonymous`).
        via: String,
    },
    /// Denied, with the reason.
    Deny {
        /// Why, for the audit line and the 403 body.
        reason: String,
    },
}

impl Decision {
    /// Whether the request may proceed.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }
}

/// The `policy:` section of flinkguard.yaml.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Custom roles, by name, as lists of operation names. Built-in roles cannot be redefined.
    #[serde(default)]
    pub roles: BTreeMap<String, Vec<String>>,
    /// Who gets which role.
    #[serde(default)]
    pub bindings: Vec<Binding>,
    /// The role of callers who present no credentials at all. Unset (the default): they get
    /// 401. Bindings never apply to anonymous callers, whatever name they claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anonymous_role: Option<String>,
}

/// Binds a role to users and groups.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Binding {
    /// The role granted.
    pub role: String,
    /// Users (exact names).
    #[serde(default)]
    pub users: Vec<String>,
    /// Groups (exact names).
    #[serde(default)]
    pub groups: Vec<String>,
}

/// A policy that cannot be used, naming the role or binding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A role lists a name that is not an operation.
    #[error("policy.roles.{role}: `{operation}` is not an operation (known: {known})")]
    UnknownOperation {
        /// The role.
        role: String,
        /// The bad name.
        operation: String,
        /// The valid names.
        known: String,
    },
    /// A custom role reuses a built-in name.
    #[error(
        "policy.roles.{0}: `{0}` is a built-in role and cannot be redefined; choose another name"
    )]
    BuiltinRedefined(String),
    /// A binding names a role that does not exist.
    #[error(
        "policy.bindings[{index}]: role `{role}` is not defined (built-in: viewer, operator, developer, admin)"
    )]
    UnknownRole {
        /// The binding's position.
        index: usize,
        /// The missing role.
        role: String,
    },
    /// `anonymous_role` names a role that does not exist.
    #[error(
        "policy.anonymous_role: role `{0}` is not defined (built-in: viewer, operator, developer, admin)"
    )]
    UnknownAnonymousRole(String),
    /// A binding with neither users nor groups grants nothing and is probably a mistake.
    #[error("policy.bindings[{0}]: list at least one user or group")]
    EmptyBinding(usize),
}

/// The built-in roles, from least to most powerful.
pub fn builtin_roles() -> Vec<(&'static str, BTreeSet<Operation>)> {
    use Operation::*;
    let viewer: BTreeSet<Operation> = [
        UiStatic,
        ClusterRead,
        JobsRead,
        JarsRead,
        DatasetsRead,
        ApplicationsRead,
    ]
    .into();
    let mut operator = viewer.clone();
    operator.extend([
        JobsCancel,
        JobsSavepoint,
        JobsRescale,
        LogsRead,
        ApplicationsCancel,
    ]);
    let mut developer = operator.clone();
    developer.extend([JarsUpload, JarsRun, JarsDelete, JobsSubmit, JobsConfig]);
    let admin: BTreeSet<Operation> = Operation::ALL.iter().copied().collect();
    vec![
        ("viewer", viewer),
        ("operator", operator),
        ("developer", developer),
        ("admin", admin),
    ]
}

/// A checked policy, ready to decide.
#[derive(Debug, Clone)]
pub struct Policy {
    roles: BTreeMap<String, BTreeSet<Operation>>,
    bindings: Vec<Binding>,
    anonymous_role: Option<String>,
}

impl Policy {
    /// Checks a policy configuration: every operation and role must exist.
    pub fn new(config: &PolicyConfig) -> Result<Policy, PolicyError> {
        let mut roles: BTreeMap<String, BTreeSet<Operation>> = builtin_roles()
            .into_iter()
            .map(|(n, ops)| (n.to_owned(), ops))
            .collect();
        for (name, operations) in &config.roles {
            if roles.contains_key(name) {
                return Err(PolicyError::BuiltinRedefined(name.clone()));
            }
            let mut set = BTreeSet::new();
            for op in operations {
                set.insert(op.parse::<Operation>().map_err(|_| {
                    PolicyError::UnknownOperation {
                        role: name.clone(),
                        operation: op.clone(),
                        known: Operation::ALL
                            .iter()
                            .map(|o| o.name())
                            .collect::<Vec<_>>()
                            .join(", "),
                    }
                })?);
            }
            roles.insert(name.clone(), set);
        }
        for (index, binding) in config.bindings.iter().enumerate() {
            if !roles.contains_key(&binding.role) {
                return Err(PolicyError::UnknownRole {
                    index,
                    role: binding.role.clone(),
                });
            }
            if binding.users.is_empty() && binding.groups.is_empty() {
                return Err(PolicyError::EmptyBinding(index));
            }
        }
        if let Some(role) = config
            .anonymous_role
            .as_ref()
            .filter(|r| !roles.contains_key(*r))
        {
            return Err(PolicyError::UnknownAnonymousRole(role.clone()));
        }
        Ok(Policy {
            roles,
            bindings: config.bindings.clone(),
            anonymous_role: config.anonymous_role.clone(),
        })
    }

    /// Decides whether `principal` may perform `operation`. Default deny; the first binding
    /// (in file order) whose role grants the operation allows it.
    pub fn decide(&self, principal: &Principal, operation: Operation) -> Decision {
        if principal.method == AuthMethod::Anonymous {
            return self.decide_anonymous(operation);
        }
        let mut bound_roles = Vec::new();
        for binding in &self.bindings {
            let via = if binding.users.contains(&principal.user) {
                format!("user {}", principal.user)
            } else if let Some(g) = principal.groups.iter().find(|g| binding.groups.contains(g)) {
                format!("group {g}")
            } else {
                continue;
            };
            if self
                .roles
                .get(&binding.role)
                .is_some_and(|ops| ops.contains(&operation))
            {
                return Decision::Allow {
                    role: binding.role.clone(),
                    via,
                };
            }
            bound_roles.push(binding.role.as_str());
        }
        let reason = if bound_roles.is_empty() {
            format!("{} {} has no role", principal.method, principal.user)
        } else {
            bound_roles.dedup();
            format!(
                "{operation} is not granted to {} by role(s) {}",
                principal.user,
                bound_roles.join(", ")
            )
        };
        Decision::Deny { reason }
    }

    /// Whether callers without credentials are let in (with [`Policy::anonymous_role`]).
    pub fn anonymous_role(&self) -> Option<&str> {
        self.anonymous_role.as_deref()
    }

    fn decide_anonymous(&self, operation: Operation) -> Decision {
        let Some(role) = &self.anonymous_role else {
            return Decision::Deny {
                reason: "anonymous access is off (policy.anonymous_role)".into(),
            };
        };
        if self
            .roles
            .get(role)
            .is_some_and(|ops| ops.contains(&operation))
        {
            Decision::Allow {
                role: role.clone(),
                via: "anonymous".into(),
            }
        } else {
            Decision::Deny {
                reason: format!("{operation} is not granted to anonymous callers by role {role}"),
            }
        }
    }

    /// The operations of a role.
    pub fn role(&self, name: &str) -> Option<&BTreeSet<Operation>> {
        self.roles.get(name)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn principal(user: &str, groups: &[&str]) -> Principal {
        Principal {
            user: user.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            method: AuthMethod::Mtls,
            peer: None,
        }
    }

    fn policy() -> Policy {
        Policy::new(&PolicyConfig {
            roles: [(
                "auditor".to_owned(),
                vec!["logs.read".to_owned(), "cluster.config".to_owned()],
            )]
            .into(),
            bindings: vec![
                Binding {
                    role: "viewer".into(),
                    users: vec![],
                    groups: vec!["analysts".into()],
                },
                Binding {
                    role: "developer".into(),
                    users: vec!["dev".into()],
                    groups: vec![],
                },
                Binding {
                    role: "auditor".into(),
                    users: vec![],
                    groups: vec!["audit".into()],
                },
            ],
            anonymous_role: None,
        })
        .unwrap()
    }

    #[test]
    fn default_deny_and_roles_by_user_or_group() {
        let p = policy();
        assert!(
            !p.decide(&principal("stranger", &[]), Operation::JobsRead)
                .is_allowed()
        );
        let viewer = principal("ann", &["analysts"]);
        assert_eq!(
            p.decide(&viewer, Operation::JobsRead),
            Decision::Allow {
                role: "viewer".into(),
                via: "group analysts".into()
            }
        );
        let denied = p.decide(&viewer, Operation::JarsUpload);
        assert!(
            matches!(&denied, Decision::Deny { reason } if reason.contains("viewer")),
            "{denied:?}"
        );
        assert!(
            p.decide(&principal("dev", &[]), Operation::JarsRun)
                .is_allowed()
        );
        assert!(
            !p.decide(&principal("dev", &[]), Operation::ClusterShutdown)
                .is_allowed()
        );
        assert!(
            p.decide(&principal("x", &["audit"]), Operation::ClusterConfig)
                .is_allowed()
        );
    }

    #[test]
    fn anonymous_callers_get_only_the_anonymous_role_never_bindings() {
        // A binding for the user `dev` must not apply to an anonymous caller named `dev`.
        let anonymous = Principal {
            method: AuthMethod::Anonymous,
            ..principal("dev", &["audit"])
        };
        let off = policy();
        assert!(matches!(
            off.decide(&anonymous, Operation::JobsRead),
            Decision::Deny { reason } if reason.contains("policy.anonymous_role")
        ));
        let mut config = PolicyConfig {
            anonymous_role: Some("viewer".into()),
            ..PolicyConfig::default()
        };
        let on = Policy::new(&config).unwrap();
        assert_eq!(on.anonymous_role(), Some("viewer"));
        assert_eq!(
            on.decide(&anonymous, Operation::JobsRead),
            Decision::Allow {
                role: "viewer".into(),
                via: "anonymous".into()
            }
        );
        assert!(!on.decide(&anonymous, Operation::JarsRun).is_allowed());
        assert!(!on.decide(&anonymous, Operation::ClusterConfig).is_allowed());
        config.anonymous_role = Some("nobody".into());
        assert_eq!(
            Policy::new(&config).unwrap_err(),
            PolicyError::UnknownAnonymousRole("nobody".into())
        );
    }

    #[test]
    fn roles_nest_and_admin_has_everything() {
        let roles = builtin_roles();
        for pair in roles.windows(2) {
            assert!(
                pair[0].1.is_subset(&pair[1].1),
                "{} ⊄ {}",
                pair[0].0,
                pair[1].0
            );
        }
        let viewer = &roles[0].1;
        assert!(
            viewer.iter().all(|op| !op.is_write()),
            "viewer must only read"
        );
        assert!(
            !viewer.contains(&Operation::ClusterConfig) && !viewer.contains(&Operation::LogsRead)
        );
        assert_eq!(roles[3].1.len(), Operation::ALL.len());
    }

    #[test]
    fn bad_policies_name_the_role_or_binding() {
        let bad_op = PolicyConfig {
            roles: [("x".to_owned(), vec!["jobs.nuke".to_owned()])].into(),
            bindings: vec![],
            anonymous_role: None,
        };
        assert!(
            Policy::new(&bad_op)
                .unwrap_err()
                .to_string()
                .contains("policy.roles.x: `jobs.nuke`")
        );
        let redefined = PolicyConfig {
            roles: [("admin".to_owned(), vec![])].into(),
            bindings: vec![],
            anonymous_role: None,
        };
        assert!(matches!(
            Policy::new(&redefined),
            Err(PolicyError::BuiltinRedefined(_))
        ));
        let missing = PolicyConfig {
            roles: BTreeMap::new(),
            bindings: vec![Binding {
                role: "root".into(),
                users: vec!["a".into()],
                groups: vec![],
            }],
            anonymous_role: None,
        };
        assert!(
            Policy::new(&missing)
                .unwrap_err()
                .to_string()
                .contains("policy.bindings[0]: role `root`")
        );
        let empty = PolicyConfig {
            roles: BTreeMap::new(),
            bindings: vec![Binding {
                role: "viewer".into(),
                users: vec![],
                groups: vec![],
            }],
            anonymous_role: None,
        };
        assert_eq!(
            Policy::new(&empty).unwrap_err(),
            PolicyError::EmptyBinding(0)
        );
    }
}
