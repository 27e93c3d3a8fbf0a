use anyhow::{Context, Result, bail};
use clap::Args;
use flinkguard_config::Config;
use flinkguard_policy::{AuthMethod, Decision, Method, Principal, RequestTarget, RouteCatalogue};

use crate::{ConfigArg, Outcome};

#[derive(Args, Debug)]
pub(crate) struct CheckArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// The user to check for.
    #[arg(long)]
    user: String,
    /// A group of the user; repeatable.
    #[arg(long = "group", value_name = "GROUP")]
    groups: Vec<String>,
    /// The request: `METHOD /path[?query]`, e.g. 'POST /jars/ID/run'.
    request: String,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Explains a decision like `kubectl auth can-i`: exit 0 if allowed, 1 if denied.
pub(crate) fn check(args: &CheckArgs) -> Result<Outcome> {
    let loaded = Config::load(&args.config.config)?;
    let Some((method_text, target_text)) = args.request.trim().split_once(' ') else {
        bail!(
            "`{}` is not a request: write METHOD /path, e.g. 'GET /jobs/overview'",
            args.request
        );
    };
    let method: Method = method_text.trim().parse().map_err(anyhow::Error::msg)?;
    let target = RequestTarget::parse(target_text.trim())
        .with_context(|| format!("`{}` would be refused with 400", target_text.trim()))?;
    let principal = Principal {
        user: args.user.clone(),
        groups: args.groups.clone(),
        method: AuthMethod::Mtls,
        peer: None,
    };
    let catalogue = RouteCatalogue::new();
    let (route, operation, decision) = match catalogue.classify(method, &target) {
        Ok(c) => {
            let decision = loaded.policy.decide(&principal, c.operation);
            (
                c.route.unwrap_or("(Web UI static file)").to_owned(),
                Some(c.operation),
                decision,
            )
        }
        Err(unknown) => (
            "(none)".to_owned(),
            None,
            Decision::Deny {
                reason: format!("{unknown}: unknown routes are denied"),
            },
        ),
    };
    let allowed = decision.is_allowed();
    let body_note = operation.is_some_and(|_| route == "/jobs/:jobid/savepoints");
    if args.json {
        let (verdict, detail) = match &decision {
            Decision::Allow { role, via } => {
                ("allow", serde_json::json!({"role": role, "via": via}))
            }
            Decision::Deny { reason } => ("deny", serde_json::json!({"reason": reason})),
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "request": args.request, "route": route, "operation": operation.map(|o| o.name()),
                "decision": verdict, "detail": detail,
            }))?
        );
    } else {
        println!("{} {}", method_text.trim(), target.as_str());
        println!("  route:     {route}");
        println!("  operation: {}", operation.map_or("(none)", |o| o.name()));
        match &decision {
            Decision::Allow { role, via } => println!("  decision:  ALLOW by role {role} ({via})"),
            Decision::Deny { reason } => println!("  decision:  DENY: {reason}"),
        }
        if body_note {
            println!("  note:      with \"cancel-job\": true in the body this is jobs.cancel");
        }
    }
    Ok(if allowed {
        Outcome::Ok
    } else {
        Outcome::Findings
    })
}
