//! Several teams on one cluster: which job, jar or application a request is about, who owns
//! it, what a submission created, and listings cut down to what a principal may see.

use flinkguard_ownership::ResourceKind;
use flinkguard_policy::Classification;
use serde_json::Value;

/// The largest listing or submission answer the gateway reads whole to filter or to learn
/// what was created. Flink's answers are far smaller; a bigger one is refused, not passed.
pub(crate) const MAX_INSPECTED_BODY: usize = 16 * 1024 * 1024;

/// The resource a route is about, from its path parameters.
pub(crate) fn resource_of(classification: &Classification) -> Option<(ResourceKind, &str)> {
    if let Some(job) = classification.param("jobid") {
        return Some((ResourceKind::Job, job));
    }
    if let Some(jar) = classification.param("jarid") {
        return Some((ResourceKind::Jar, jar));
    }
    classification
        .param("applicationid")
        .map(|app| (ResourceKind::Application, app))
}

/// A listing whose items are filtered per principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Listing {
    /// `/jobs/overview`: `{"jobs": [{"jid": ...}]}`.
    JobsOverview,
    /// `/jobs`: `{"jobs": [{"id": ...}]}`.
    Jobs,
    /// `/jars`: `{"files": [{"id": ...}]}`.
    Jars,
    /// `/applications/overview`: `{"applications": [{"id": ...}]}`.
    Applications,
    /// `/overview`: cluster-wide job counts, recounted from the visible jobs.
    ClusterOverview,
}

impl Listing {
    pub(crate) fn of(route: Option<&str>) -> Option<Listing> {
        Some(match route? {
            "/jobs/overview" => Listing::JobsOverview,
            "/jobs" => Listing::Jobs,
            "/jars" => Listing::Jars,
            "/applications/overview" => Listing::Applications,
            "/overview" => Listing::ClusterOverview,
            _ => return None,
        })
    }

    /// The kind of resource listed, and where the items and their ids are.
    pub(crate) fn items(self) -> Option<(ResourceKind, &'static str, &'static str)> {
        match self {
            Listing::JobsOverview => Some((ResourceKind::Job, "jobs", "jid")),
            Listing::Jobs => Some((ResourceKind::Job, "jobs", "id")),
            Listing::Jars => Some((ResourceKind::Jar, "files", "id")),
            Listing::Applications => Some((ResourceKind::Application, "applications", "id")),
            Listing::ClusterOverview => None,
        }
    }
}

/// Keeps the items of a listing whose id `visible` accepts. An answer that is not the
/// expected shape is an error: passing it through could show what should be hidden.
pub(crate) fn filter_listing(
    listing: Listing,
    body: &[u8],
    mut visible: impl FnMut(&str) -> bool,
) -> Result<Vec<u8>, String> {
    let (_, field, id_field) = listing
        .items()
        .ok_or_else(|| "not a listing of items".to_owned())?;
    let mut value: Value =
        serde_json::from_slice(body).map_err(|e| format!("unexpected listing from Flink: {e}"))?;
    let items = value
        .get_mut(field)
        .and_then(Value::as_array_mut)
        .ok_or_else(|| format!("Flink's listing has no `{field}` array"))?;
    let mut shape_error = None;
    items.retain(|item| match item.get(id_field).and_then(Value::as_str) {
        Some(id) => visible(id),
        None => {
            shape_error = Some(format!("an item of `{field}` has no `{id_field}`"));
            false
        }
    });
    if let Some(e) = shape_error {
        return Err(e);
    }
    serde_json::to_vec(&value).map_err(|e| e.to_string())
}

/// Rewrites `/overview`'s job counts to count only `visible_states` (the states of the jobs
/// the principal may see), so the cluster-wide totals do not reveal other teams' jobs.
pub(crate) fn recount_overview(body: &[u8], visible_states: &[String]) -> Result<Vec<u8>, String> {
    let mut value: Value =
        serde_json::from_slice(body).map_err(|e| format!("unexpected overview from Flink: {e}"))?;
    let object = value
        .as_object_mut()
        .ok_or_else(|| "Flink's overview is not an object".to_owned())?;
    let count = |states: &[&str]| {
        visible_states
            .iter()
            .filter(|s| states.contains(&s.as_str()))
            .count()
    };
    let finished = count(&["FINISHED"]);
    let cancelled = count(&["CANCELED"]);
    let failed = count(&["FAILED"]);
    let running = visible_states.len() - finished - cancelled - failed;
    for (key, n) in [
        ("jobs-running", running),
        ("jobs-finished", finished),
        ("jobs-cancelled", cancelled),
        ("jobs-failed", failed),
    ] {
        if object.contains_key(key) {
            object.insert(key.to_owned(), Value::from(n));
        }
    }
    serde_json::to_vec(&value).map_err(|e| e.to_string())
}

/// What a successful submission created, read from Flink's answer.
pub(crate) fn created(route: Option<&str>, body: &[u8]) -> Option<(ResourceKind, String)> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
    match route? {
        // {"filename": "/tmp/flink-web-.../flink-web-upload/<uuid>_name.jar", "status": "success"}
        "/jars/upload" => text("filename")
            .and_then(|f| f.rsplit('/').next().map(str::to_owned))
            .map(|id| (ResourceKind::Jar, id)),
        // {"jobid": "..."}
        "/jars/:jarid/run" => text("jobid").map(|id| (ResourceKind::Job, id)),
        // {"applicationId": "..."} (Flink 2.x)
        "/jars/:jarid/run-application" => text("applicationId")
            .or_else(|| text("applicationid"))
            .map(|id| (ResourceKind::Application, id)),
        // {"jobUrl": "/jobs/<id>"}
        "/jobs" => text("jobUrl")
            .and_then(|u| u.rsplit('/').next().map(str::to_owned))
            .map(|id| (ResourceKind::Job, id)),
        _ => None,
    }
}

/// Routes whose successful answer names something the caller now owns.
pub(crate) fn creates(route: Option<&str>, method: &http::Method) -> bool {
    method == http::Method::POST
        && matches!(
            route,
            Some("/jars/upload" | "/jars/:jarid/run" | "/jars/:jarid/run-application" | "/jobs")
        )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn listings_keep_only_visible_items_and_refuse_odd_shapes() {
        let body = br#"{"jobs":[{"jid":"a","name":"x"},{"jid":"b","name":"y"}]}"#;
        let kept = filter_listing(Listing::JobsOverview, body, |id| id == "b").unwrap();
        assert_eq!(kept, br#"{"jobs":[{"jid":"b","name":"y"}]}"#);
        assert!(
            filter_listing(Listing::JobsOverview, br#"{"jobs":[{"id":"a"}]}"#, |_| true).is_err()
        );
        assert!(filter_listing(Listing::Jars, b"not json", |_| true).is_err());
        let overview = br#"{"taskmanagers":1,"jobs-running":5,"jobs-finished":2,"jobs-cancelled":1,"jobs-failed":0}"#;
        let recounted: Value = serde_json::from_slice(
            &recount_overview(overview, &["RUNNING".into(), "CANCELED".into()]).unwrap(),
        )
        .unwrap();
        assert_eq!(recounted["jobs-running"], 1);
        assert_eq!(recounted["jobs-finished"], 0);
        assert_eq!(recounted["jobs-cancelled"], 1);
        assert_eq!(recounted["taskmanagers"], 1);
    }

    #[test]
    fn submissions_name_what_they_created() {
        assert_eq!(
            created(
                Some("/jars/upload"),
                br#"{"filename":"/tmp/x/flink-web-upload/1f_job.jar","status":"success"}"#
            ),
            Some((ResourceKind::Jar, "1f_job.jar".into()))
        );
        assert_eq!(
            created(Some("/jobs"), br#"{"jobUrl":"/jobs/0123"}"#),
            Some((ResourceKind::Job, "0123".into()))
        );
        assert_eq!(
            created(Some("/jars/:jarid/run"), br#"{"jobid":"abc"}"#),
            Some((ResourceKind::Job, "abc".into()))
        );
        assert_eq!(created(Some("/jobs"), b"{}"), None);
    }
}
