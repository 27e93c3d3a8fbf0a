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
    /// A signed link (pre-authenticated URL) for exactly one request.
    SignedLink,
}

impl AuthMethod {
    /// The method's name in audit lines and reasons (`mtls`, `jwt`, ...).
    pub fn name(self) -> &'static str {
        match self {
            AuthMethod::Mtls => "mtls",
            AuthMethod::Jwt => "jwt",
            AuthMethod::ServiceToken => "service-token",
            AuthMethod::TrustedProxy => "trusted-proxy",
            AuthMethod::Kerberos => "kerberos",
            AuthMethod::Anonymous => "anonymous",
            AuthMethod::SignedLink => "signed-link",
        }
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
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

/// How a role is bound to a principal, as the audit line says it (`user alice`, `group
/// team-a`, `anonymous`); text only for the binding that decides.
#[derive(Debug, Clone, Copy)]
enum BoundBy<'a> {
    User(&'a str),
    Group(&'a str),
    Anonymous,
}

impl BoundBy<'_> {
    /// Concatenated, not `format!`ted, which costs several times more: this runs on every
    /// allowed request.
    fn text(self, suffix: &str) -> String {
        let (kind, name) = match self {
            BoundBy::User(user) => ("user ", user),
            BoundBy::Group(group) => ("group ", group),
            BoundBy::Anonymous => ("anonymous", ""),
        };
        [kind, name, suffix].concat()
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
    /// Per role: the prefixes caller-chosen paths (savepoint `target-directory`, a run's
    /// `savepointPath`) must start with, e.g. `team-dev: [s3://savepoints/team-a/]`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub paths: BTreeMap<String, Vec<String>>,
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
    /// A grant's suffix is neither `:own` nor `:group`.
    #[error(
        "policy.roles.{role}: `{grant}` has the scope `{scope}`; use `:own` or `:group`, or none for every resource"
    )]
    UnknownScope {
        /// The role.
        role: String,
        /// The grant as written.
        grant: String,
        /// The bad suffix.
        scope: String,
    },
    /// A scope on an operation that is not about one job, jar or application.
    #[error(
        "policy.roles.{role}: `{grant}` cannot be scoped: it is not about one job, jar or application"
    )]
    UnscopableOperation {
        /// The role.
        role: String,
        /// The grant as written.
        grant: String,
    },
    /// `paths` names a role that does not exist.
    #[error("policy.paths.{0}: role `{0}` is not defined")]
    UnknownPathsRole(String),
    /// A path prefix that would not restrict anything reliably.
    #[error(
        "policy.paths.{role}: `{prefix}` must be absolute (`/savepoints/team-a/` or `s3://bucket/team-a/`), end with `/` and have no `..`"
    )]
    BadPathPrefix {
        /// The role.
        role: String,
        /// The prefix.
        prefix: String,
    },
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

/// How far a grant reaches: every resource, or only those the principal (or one of its
/// groups) owns. Written as a suffix in a role: `jobs.cancel:own`, `jobs.read:group`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Every resource, and resources nobody owns.
    All,
    /// Resources whose owner is the principal.
    Own,
    /// Resources whose owner shared a group with the principal when submitting.
    Group,
}

/// One operation a role grants, with its scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Grant {
    /// The operation.
    pub operation: Operation,
    /// How far it reaches.
    pub scope: Scope,
}

impl Grant {
    fn all(operation: Operation) -> Grant {
        Grant {
            operation,
            scope: Scope::All,
        }
    }
}

/// Who owns a job, jar or application: recorded by the gateway when it was submitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// The submitting user.
    pub user: String,
    /// The submitting user's groups at the time.
    pub groups: Vec<String>,
}

/// What an operation is performed on, for scoped grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject<'a> {
    /// The cluster as a whole (or a new resource being created): only unscoped grants apply,
    /// except that creating (`jars.upload`, `jobs.submit`) is allowed by a scoped grant too —
    /// the result belongs to its creator.
    Cluster,
    /// One job, jar or application, with its owner; `None`: nobody (it was not submitted
    /// through the gateway), so only unscoped grants apply.
    Resource(Option<&'a Owner>),
}

/// A checked policy, ready to decide.
#[derive(Debug, Clone)]
pub struct Policy {
    roles: BTreeMap<String, BTreeSet<Grant>>,
    bindings: Vec<Binding>,
    anonymous_role: Option<String>,
    /// Per role: prefixes caller-chosen paths (savepoint target directories) must lie in.
    paths: BTreeMap<String, Vec<String>>,
}

impl Policy {
    /// Checks a policy configuration: every operation and role must exist.
    pub fn new(config: &PolicyConfig) -> Result<Policy, PolicyError> {
        let mut roles: BTreeMap<String, BTreeSet<Grant>> = builtin_roles()
            .into_iter()
            .map(|(n, ops)| (n.to_owned(), ops.into_iter().map(Grant::all).collect()))
            .collect();
        for (name, grants) in &config.roles {
            if roles.contains_key(name) {
                return Err(PolicyError::BuiltinRedefined(name.clone()));
            }
            let mut set = BTreeSet::new();
            for text in grants {
                set.insert(parse_grant(name, text)?);
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
        for (role, prefixes) in &config.paths {
            if !roles.contains_key(role) {
                return Err(PolicyError::UnknownPathsRole(role.clone()));
            }
            if let Some(bad) = prefixes.iter().find(|p| !usable_prefix(p)) {
                return Err(PolicyError::BadPathPrefix {
                    role: role.clone(),
                    prefix: bad.clone(),
                });
            }
        }
        Ok(Policy {
            roles,
            bindings: config.bindings.clone(),
            anonymous_role: config.anonymous_role.clone(),
            paths: config.paths.clone(),
        })
    }

    /// The roles that apply to a principal, with how each is bound, in file order. An
    /// iterator, not a vector: every request walks it, usually to its first role.
    fn bound_roles<'p, 'q>(
        &'p self,
        principal: &'q Principal,
    ) -> impl Iterator<Item = (&'p str, BoundBy<'q>)> + Clone {
        // Bindings never apply to anonymous callers, whatever name they claim.
        let (anonymous_role, bindings) = if principal.method == AuthMethod::Anonymous {
            (self.anonymous_role.as_deref(), &[][..])
        } else {
            (None, &self.bindings[..])
        };
        let anonymous_role = anonymous_role.map(|r| (r, BoundBy::Anonymous));
        let bound = bindings.iter().filter_map(move |binding| {
            let by = if binding.users.contains(&principal.user) {
                BoundBy::User(&principal.user)
            } else {
                let group = principal
                    .groups
                    .iter()
                    .find(|g| binding.groups.contains(g))?;
                BoundBy::Group(group)
            };
            Some((binding.role.as_str(), by))
        });
        anonymous_role.into_iter().chain(bound)
    }

    /// Decides whether `principal` may perform `operation` on the cluster as a whole. Default
    /// deny; the first binding (in file order) whose role grants the operation allows it.
    pub fn decide(&self, principal: &Principal, operation: Operation) -> Decision {
        self.decide_on(principal, operation, Subject::Cluster)
    }

    /// Decides whether `principal` may perform `operation` on `subject`: unscoped grants
    /// always apply, `:own` ones when the principal owns it, `:group` ones when its owner
    /// shared one of the principal's groups.
    pub fn decide_on(
        &self,
        principal: &Principal,
        operation: Operation,
        subject: Subject<'_>,
    ) -> Decision {
        let bound = self.bound_roles(principal);
        let mut any_bound = false;
        let mut scoped_only = false;
        for (role, via) in bound.clone() {
            any_bound = true;
            for grant in self.grants_of(role, operation) {
                if grant_applies(grant, principal, operation, subject) {
                    let via = via.text(match grant.scope {
                        Scope::All => "",
                        Scope::Own => ", own",
                        Scope::Group => ", group-owned",
                    });
                    return Decision::Allow {
                        role: role.to_owned(),
                        via,
                    };
                }
                scoped_only = true;
            }
        }
        if principal.method == AuthMethod::Anonymous && !any_bound {
            return Decision::Deny {
                reason: "anonymous access is off (policy.anonymous_role)".into(),
            };
        }
        let reason = if !any_bound {
            format!("{} {} has no role", principal.method, principal.user)
        } else if scoped_only {
            let owner = match subject {
                Subject::Resource(Some(owner)) => format!("it belongs to {}", owner.user),
                Subject::Resource(None) => {
                    "it belongs to nobody (not submitted through the gateway; `flinkguard jobs adopt` assigns an owner)".to_owned()
                }
                Subject::Cluster => "it is not one resource".to_owned(),
            };
            format!(
                "{operation} is granted to {} only on own or group resources, and {owner}",
                principal.user
            )
        } else {
            let mut names: Vec<&str> = bound.map(|(r, _)| r).collect();
            names.dedup();
            if principal.method == AuthMethod::Anonymous {
                format!(
                    "{operation} is not granted to anonymous callers by role {}",
                    names.join(", ")
                )
            } else {
                format!(
                    "{operation} is not granted to {} by role(s) {}",
                    principal.user,
                    names.join(", ")
                )
            }
        };
        Decision::Deny { reason }
    }

    /// How much of a listing (`/jobs/overview`) `principal` may see for `operation`.
    pub fn visibility(&self, principal: &Principal, operation: Operation) -> Visibility {
        let mut scoped = false;
        for (role, _) in self.bound_roles(principal) {
            for grant in self.grants_of(role, operation) {
                match grant.scope {
                    Scope::All => return Visibility::All,
                    Scope::Own | Scope::Group => scoped = true,
                }
            }
        }
        if scoped {
            Visibility::Owned
        } else {
            Visibility::None
        }
    }

    /// Whether a caller-chosen path (a savepoint's `target-directory`) is allowed for
    /// `operation`: it must start with a prefix listed under `policy.paths` for a role of the
    /// principal that grants the operation. The built-in `admin` role is unrestricted unless
    /// prefixes are listed for it; any other role without prefixes allows no caller-chosen
    /// path (the cluster's configured default directory still works).
    pub fn path_allowed(
        &self,
        principal: &Principal,
        operation: Operation,
        path: &str,
    ) -> Result<(), String> {
        if path.split('/').any(|segment| segment == "..") || path.contains('\\') {
            return Err(format!("`{path}` has `..` or `\\` in it"));
        }
        let mut listed = Vec::new();
        for (role, _) in self.bound_roles(principal) {
            if self.grants_of(role, operation).next().is_none() {
                continue;
            }
            match self.paths.get(role) {
                None if role == "admin" => return Ok(()),
                None => {}
                Some(prefixes) => {
                    if prefixes.iter().any(|p| path.starts_with(p.as_str())) {
                        return Ok(());
                    }
                    listed.extend(prefixes.iter().map(String::as_str));
                }
            }
        }
        Err(if listed.is_empty() {
            format!(
                "no role of {} allows a caller-chosen path for {operation}; omit it to use the cluster's default, or list prefixes under policy.paths",
                principal.user
            )
        } else {
            format!(
                "`{path}` is outside the allowed prefixes {}",
                listed.join(", ")
            )
        })
    }

    /// Whether callers without credentials are let in (with [`Policy::anonymous_role`]).
    pub fn anonymous_role(&self) -> Option<&str> {
        self.anonymous_role.as_deref()
    }

    /// The grants of a role.
    pub fn role(&self, name: &str) -> Option<&BTreeSet<Grant>> {
        self.roles.get(name)
    }

    /// The grants of `role` for `operation` (one per scope at most): a range of the role's
    /// ordered set, not a walk through all of it, as every request asks.
    fn grants_of(&self, role: &str, operation: Operation) -> impl Iterator<Item = &Grant> {
        let widest = Grant {
            operation,
            scope: Scope::All,
        };
        let narrowest = Grant {
            operation,
            scope: Scope::Group,
        };
        self.roles
            .get(role)
            .into_iter()
            .flat_map(move |grants| grants.range(widest..=narrowest))
    }
}

/// How much of a listing a principal sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// Everything.
    All,
    /// Only resources an `:own` or `:group` grant covers.
    Owned,
    /// Nothing: the request is denied.
    None,
}

fn grant_applies(
    grant: &Grant,
    principal: &Principal,
    operation: Operation,
    subject: Subject<'_>,
) -> bool {
    match (grant.scope, subject) {
        (Scope::All, _) => true,
        // Creating: the new resource will belong to its creator.
        (_, Subject::Cluster) => operation.creates(),
        (_, Subject::Resource(None)) => false,
        (Scope::Own, Subject::Resource(Some(owner))) => {
            owner.user == principal.user && principal.method != AuthMethod::Anonymous
        }
        (Scope::Group, Subject::Resource(Some(owner))) => {
            owner.groups.iter().any(|g| principal.groups.contains(g))
        }
    }
}

fn parse_grant(role: &str, text: &str) -> Result<Grant, PolicyError> {
    let (name, scope) = match text.split_once(':') {
        None => (text, Scope::All),
        Some((name, "own")) => (name, Scope::Own),
        Some((name, "group")) => (name, Scope::Group),
        Some((_, other)) => {
            return Err(PolicyError::UnknownScope {
                role: role.to_owned(),
                grant: text.to_owned(),
                scope: other.to_owned(),
            });
        }
    };
    let operation = name
        .parse::<Operation>()
        .map_err(|_| PolicyError::UnknownOperation {
            role: role.to_owned(),
            operation: text.to_owned(),
            known: Operation::ALL
                .iter()
                .map(|o| o.name())
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    if scope != Scope::All && !operation.is_scopable() {
        return Err(PolicyError::UnscopableOperation {
            role: role.to_owned(),
            grant: text.to_owned(),
        });
    }
    Ok(Grant { operation, scope })
}

/// A prefix must say where it is: a scheme (`s3://bucket/team-a/`) or an absolute path, and
/// end with `/` so that `/savepoints/team-a` does not also allow `/savepoints/team-ab`.
fn usable_prefix(prefix: &str) -> bool {
    (prefix.contains("://") || prefix.starts_with('/'))
        && prefix.ends_with('/')
        && !prefix.split('/').any(|s| s == "..")
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
            paths: BTreeMap::new(),
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
    fn the_grants_of_an_operation_are_all_its_scopes_and_nothing_else() {
        let p = Policy::new(&PolicyConfig {
            roles: [(
                "mixed".to_owned(),
                [
                    "jobs.read",
                    "jobs.cancel:group",
                    "jobs.cancel",
                    "jobs.cancel:own",
                    "logs.read",
                ]
                .map(str::to_owned)
                .to_vec(),
            )]
            .into(),
            ..PolicyConfig::default()
        })
        .unwrap();
        let scopes: Vec<Scope> = p
            .grants_of("mixed", Operation::JobsCancel)
            .map(|g| g.scope)
            .collect();
        assert_eq!(scopes, [Scope::All, Scope::Own, Scope::Group]);
        assert_eq!(p.grants_of("mixed", Operation::JarsUpload).count(), 0);
        assert_eq!(p.grants_of("nobody's", Operation::JobsRead).count(), 0);
    }

    #[test]
    fn scoped_grants_reach_only_own_or_group_resources() {
        let p = Policy::new(&PolicyConfig {
            roles: [(
                "team-dev".to_owned(),
                [
                    "jobs.read:own",
                    "jobs.cancel:own",
                    "jobs.read:group",
                    "jobs.submit:own",
                ]
                .map(str::to_owned)
                .to_vec(),
            )]
            .into(),
            bindings: vec![Binding {
                role: "team-dev".into(),
                users: vec![],
                groups: vec!["team-a".into(), "team-b".into()],
            }],
            ..PolicyConfig::default()
        })
        .unwrap();
        let alice = principal("alice", &["team-a"]);
        let owner = |user: &str, groups: &[&str]| Owner {
            user: user.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        };
        let hers = owner("alice", &["team-a"]);
        let teammates = owner("carol", &["team-a"]);
        let bobs = owner("bob", &["team-b"]);
        fn on(o: &Owner) -> Subject<'_> {
            Subject::Resource(Some(o))
        }
        assert!(
            p.decide_on(&alice, Operation::JobsCancel, on(&hers))
                .is_allowed()
        );
        assert!(
            !p.decide_on(&alice, Operation::JobsCancel, on(&teammates))
                .is_allowed()
        );
        assert!(
            p.decide_on(&alice, Operation::JobsRead, on(&teammates))
                .is_allowed()
        );
        let denied = p.decide_on(&alice, Operation::JobsCancel, on(&bobs));
        assert!(
            matches!(&denied, Decision::Deny { reason } if reason.contains("belongs to bob")),
            "{denied:?}"
        );
        // Nobody's jobs and cluster-wide reads need an unscoped grant; creating needs any.
        assert!(
            !p.decide_on(&alice, Operation::JobsRead, Subject::Resource(None))
                .is_allowed()
        );
        assert!(!p.decide(&alice, Operation::JobsRead).is_allowed());
        assert!(p.decide(&alice, Operation::JobsSubmit).is_allowed());
        assert_eq!(p.visibility(&alice, Operation::JobsRead), Visibility::Owned);
        assert_eq!(p.visibility(&alice, Operation::JarsRead), Visibility::None);
        assert_eq!(
            Policy::new(&PolicyConfig::default())
                .unwrap()
                .visibility(&principal("x", &[]), Operation::JobsRead),
            Visibility::None
        );
        for (grant, error) in [
            ("jobs.read:mine", "`:own` or `:group`"),
            ("cluster.config:own", "cannot be scoped"),
        ] {
            let err = Policy::new(&PolicyConfig {
                roles: [("r".to_owned(), vec![grant.to_owned()])].into(),
                ..PolicyConfig::default()
            })
            .unwrap_err()
            .to_string();
            assert!(err.contains(error), "{grant}: {err}");
        }
    }

    #[test]
    fn caller_chosen_paths_must_lie_under_a_prefix_of_a_granting_role() {
        let p = Policy::new(&PolicyConfig {
            bindings: vec![
                Binding {
                    role: "operator".into(),
                    users: vec!["op".into()],
                    groups: vec![],
                },
                Binding {
                    role: "operator".into(),
                    users: vec![],
                    groups: vec!["team-a".into()],
                },
                Binding {
                    role: "admin".into(),
                    users: vec!["root".into()],
                    groups: vec![],
                },
            ],
            paths: [(
                "operator".to_owned(),
                vec!["s3://savepoints/team-a/".to_owned()],
            )]
            .into(),
            ..PolicyConfig::default()
        })
        .unwrap();
        let op = principal("op", &[]);
        let save = Operation::JobsSavepoint;
        assert!(
            p.path_allowed(&op, save, "s3://savepoints/team-a/job1")
                .is_ok()
        );
        for bad in [
            "s3://savepoints/team-b/job1",
            "s3://savepoints/team-a/../team-b",
            "s3://savepoints/team-ab/x",
        ] {
            assert!(p.path_allowed(&op, save, bad).is_err(), "{bad}");
        }
        assert!(
            p.path_allowed(&principal("root", &[]), save, "/anywhere/")
                .is_ok()
        );
        let no_prefixes = Policy::new(&PolicyConfig {
            bindings: vec![Binding {
                role: "operator".into(),
                users: vec!["op".into()],
                groups: vec![],
            }],
            ..PolicyConfig::default()
        })
        .unwrap();
        let err = no_prefixes.path_allowed(&op, save, "/tmp/sp").unwrap_err();
        assert!(err.contains("policy.paths"), "{err}");
        let err = Policy::new(&PolicyConfig {
            paths: [("operator".to_owned(), vec!["relative/".to_owned()])].into(),
            ..PolicyConfig::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("policy.paths.operator"), "{err}");
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
            paths: BTreeMap::new(),
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
            paths: BTreeMap::new(),
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
            paths: BTreeMap::new(),
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
            paths: BTreeMap::new(),
        };
        assert_eq!(
            Policy::new(&empty).unwrap_err(),
            PolicyError::EmptyBinding(0)
        );
    }
}
