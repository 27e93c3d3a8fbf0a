use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use anyhow::{Context, Result};
use clap::Args;
use flinkguard_config::Config;
use flinkguard_ownership::{Owner, OwnershipStore, ResourceKind};
use flinkguard_pki::{GroupName, UserName};

use crate::{ConfigArg, Outcome};

#[derive(Args, Debug)]
pub(crate) struct AdoptArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// The job id (32 hex digits).
    job: String,
    /// The new owner.
    #[arg(long, value_parser = crate::parsed::<UserName>)]
    owner: UserName,
    /// The owner's groups (for `:group` grants); repeatable.
    #[arg(long = "group", value_name = "GROUP", value_parser = crate::parsed::<GroupName>)]
    groups: Vec<GroupName>,
}

/// Gives a job nobody owns (or someone else owns) to a user, and audits it.
pub(crate) fn adopt(args: &AdoptArgs) -> Result<Outcome> {
    let loaded = Config::load(&args.config.config)?;
    let gateway = &loaded.config.gateway;
    let store = OwnershipStore::open(&loaded.base_dir.join(&gateway.ownership_file))?;
    let owner = Owner {
        user: args.owner.to_string(),
        groups: args.groups.iter().map(|g| g.as_str().to_owned()).collect(),
    };
    let previous = store
        .adopt(ResourceKind::Job, &args.job, &owner)
        .with_context(|| format!("cannot assign job {}", args.job))?;
    let line = serde_json::json!({
        "time": time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        "event": "adopt",
        "job_id": args.job,
        "owner": owner.user,
        "groups": owner.groups,
        "previous_owner": previous.as_ref().map(|p| p.user.as_str()),
        "by": std::env::var("USER").unwrap_or_default(),
    });
    if let Some(audit) = &gateway.audit_file {
        let path = loaded.base_dir.join(audit);
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot open the audit file {}", path.display()))?;
        file.write_all(format!("{line}\n").as_bytes())
            .and_then(|()| file.sync_data())
            .with_context(|| format!("cannot write the audit file {}", path.display()))?;
    }
    match previous {
        Some(p) => println!(
            "Job {} now belongs to {} (was {}).",
            args.job, owner.user, p.user
        ),
        None => println!("Job {} now belongs to {}.", args.job, owner.user),
    }
    Ok(Outcome::Ok)
}

#[derive(Args, Debug)]
pub(crate) struct OwnersArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Lists every recorded owner.
pub(crate) fn owners(args: &OwnersArgs) -> Result<Outcome> {
    let loaded = Config::load(&args.config.config)?;
    let store = OwnershipStore::open(&loaded.base_dir.join(&loaded.config.gateway.ownership_file))?;
    let mut rows = Vec::new();
    for kind in ResourceKind::ALL {
        for (id, owner) in store.all(kind)? {
            rows.push((kind.to_string(), id, owner));
        }
    }
    if args.json {
        let items: Vec<_> = rows
            .iter()
            .map(|(kind, id, o)| serde_json::json!({"kind": kind, "id": id, "owner": o.user, "groups": o.groups}))
            .collect();
        println!("{}", serde_json::Value::from(items));
    } else {
        for (kind, id, o) in rows {
            println!("{kind:<12} {id:<40} {} {}", o.user, o.groups.join(","));
        }
    }
    Ok(Outcome::Ok)
}
