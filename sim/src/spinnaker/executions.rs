//! Orca's pipeline executions as the simulator plays them out: what one webhook trigger starts
//! (an [`Outcome`]) and each execution's JSON at a given moment, in the shape Gate answers for
//! `GET /pipelines/{id}` (see `fixtures/spinnaker-execution-succeeded.json`). Time is an input,
//! so the model is pure: an execution is `NOT_STARTED` until its start, `RUNNING` until its end,
//! then its final status.

use std::time::Duration;

use serde_json::{Value, json};

/// How long after the trigger Orca starts an execution (Echo hands the event over, Orca queues).
const START_DELAY_MS: i64 = 20;

/// What the pipelines a trigger matches do.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// One execution per pipeline, each `SUCCEEDED` `after` the trigger.
    Succeed {
        pipelines: Vec<String>,
        after: Duration,
    },
    /// One execution that ends `TERMINAL` at stage `stage`, `after` the trigger.
    FailAt {
        pipeline: String,
        stage: String,
        after: Duration,
    },
    /// One execution that ends with Orca status `status` (`CANCELED`, `STOPPED`, ...).
    EndAs {
        pipeline: String,
        status: String,
        after: Duration,
    },
    /// One execution that stays `RUNNING`.
    NeverFinish { pipeline: String },
    /// The trigger matched no pipeline: Echo accepted it, nothing runs.
    NoPipeline,
    /// Each outcome's executions, all started by the one trigger.
    Several(Vec<Outcome>),
}

impl Default for Outcome {
    /// One pipeline, `deploy`, that succeeds 100 ms after the trigger.
    fn default() -> Self {
        Self::Succeed {
            pipelines: vec!["deploy".into()],
            after: Duration::from_millis(100),
        }
    }
}

/// The trigger that started executions, as Orca keeps it.
#[derive(Debug, Clone)]
pub struct Fired {
    pub application: String,
    pub source: String,
    pub event_id: String,
    pub parameters: Value,
    pub payload: Value,
    /// Epoch milliseconds.
    pub at: i64,
}

/// One execution's script.
#[derive(Debug, Clone)]
pub(crate) struct Played {
    pub id: String,
    pub application: String,
    pub event_id: String,
    name: String,
    trigger: Value,
    build_time: i64,
    start_time: i64,
    stage: String,
    /// When it ends and how: `None` never ends.
    end: Option<(i64, String)>,
}

impl Outcome {
    /// The executions `fired` starts, ids from `next_id`.
    pub(crate) fn play(&self, fired: &Fired, next_id: &mut dyn FnMut() -> String) -> Vec<Played> {
        let one = |name: &str, stage: &str, end: Option<(Duration, &str)>, id: String| Played {
            trigger: json!({
                "type": "webhook",
                "source": fired.source,
                "user": "[anonymous]",
                "parameters": fired.parameters,
                "payload": fired.payload,
                "artifacts": [],
                "notifications": [],
                "rebake": false,
                "dryRun": false,
                "strategy": false,
                "resolvedExpectedArtifacts": [],
                "expectedArtifacts": [],
                "executionId": id,
                "eventId": fired.event_id,
                "enabled": false,
                "preferred": false
            }),
            id,
            application: fired.application.clone(),
            event_id: fired.event_id.clone(),
            name: name.into(),
            build_time: fired.at,
            start_time: fired.at + START_DELAY_MS,
            stage: stage.into(),
            end: end.map(|(after, status)| {
                (
                    fired.at + START_DELAY_MS.max(after.as_millis() as i64),
                    status.to_string(),
                )
            }),
        };
        const DEPLOY: &str = "Deploy (Manifest)";
        match self {
            Outcome::Succeed { pipelines, after } => pipelines
                .iter()
                .map(|p| one(p, DEPLOY, Some((*after, "SUCCEEDED")), next_id()))
                .collect(),
            Outcome::FailAt {
                pipeline,
                stage,
                after,
            } => vec![one(pipeline, stage, Some((*after, "TERMINAL")), next_id())],
            Outcome::EndAs {
                pipeline,
                status,
                after,
            } => vec![one(pipeline, DEPLOY, Some((*after, status)), next_id())],
            Outcome::NeverFinish { pipeline } => vec![one(pipeline, DEPLOY, None, next_id())],
            Outcome::NoPipeline => Vec::new(),
            Outcome::Several(outcomes) => outcomes
                .iter()
                .flat_map(|o| o.play(fired, next_id))
                .collect(),
        }
    }
}

impl Played {
    /// `webhook`: the simulator's executions are all triggered by webhooks.
    pub(crate) fn trigger_type(&self) -> &str {
        self.trigger["type"].as_str().unwrap_or_default()
    }

    /// Orca's status at `now`.
    fn status(&self, now: i64) -> &str {
        match &self.end {
            Some((end, status)) if now >= *end => status,
            _ if now >= self.start_time => "RUNNING",
            _ => "NOT_STARTED",
        }
    }

    /// The execution's JSON at `now`. Search answers are not expanded: Orca empties each stage's
    /// `context`, `outputs` and `tasks` there.
    pub(crate) fn json(&self, now: i64, expanded: bool) -> Value {
        let status = self.status(now);
        let started = status != "NOT_STARTED";
        let end_time = self
            .end
            .as_ref()
            .filter(|(end, _)| now >= *end)
            .map(|(end, _)| *end);
        let stage_end = end_time.map(|t| t - 5);
        let task = json!({
            "id": "1",
            "implementingClass": "com.netflix.spinnaker.orca.clouddriver.tasks.manifest.DeployManifestTask",
            "name": "deployManifest",
            "startTime": started.then_some(self.start_time + 2),
            "endTime": stage_end,
            "status": status,
            "stageStart": true,
            "stageEnd": true,
            "loopStart": false,
            "loopEnd": false
        });
        let stage = json!({
            "id": format!("{}S1", &self.id[..24]),
            "refId": "1",
            "type": "deployManifest",
            "name": self.stage,
            "startTime": started.then_some(self.start_time + 1),
            "endTime": stage_end,
            "status": status,
            "context": if expanded { json!({"cloudProvider": "kubernetes", "account": "k8s"}) } else { json!({}) },
            "outputs": {},
            "tasks": if expanded { json!([task]) } else { json!([]) },
            "requisiteStageRefIds": []
        });
        json!({
            "type": "PIPELINE",
            "id": self.id,
            "application": self.application,
            "name": self.name,
            "buildTime": self.build_time,
            "canceled": status == "CANCELED",
            "limitConcurrent": true,
            "keepWaitingPipelines": false,
            "stages": [stage],
            "startTime": started.then_some(self.start_time),
            "endTime": end_time,
            "status": status,
            "authentication": {"user": "anonymous", "allowedAccounts": []},
            "origin": "api",
            "trigger": self.trigger,
            "pipelineConfigId": uuid_of(&self.name),
            "notifications": [],
            "initialConfig": {},
            "systemNotifications": [],
            "spelEvaluator": "v4"
        })
    }
}

/// A stable id for a pipeline's configuration, from its name.
fn uuid_of(name: &str) -> String {
    let mut bytes = [0u8; 16];
    for (i, b) in name.bytes().enumerate() {
        bytes[i % 16] = bytes[i % 16].wrapping_mul(31).wrapping_add(b);
    }
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// A new ULID, the id Orca gives executions: 48 bits of milliseconds, 80 random bits, in
/// Crockford's base32.
pub(crate) fn ulid(now_ms: i64) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let value = ((now_ms as u128 & 0xFFFF_FFFF_FFFF) << 80) | (rand::random::<u128>() >> 48);
    (0..26)
        .rev()
        .map(|i| ALPHABET[((value >> (i * 5)) & 31) as usize] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fired() -> Fired {
        Fired {
            application: "payments-api".into(),
            source: "payments-api-stg".into(),
            event_id: "7fb40d1f-2d80-49c3-8e28-0caed78bea57".into(),
            parameters: json!({"tag": "v1.2.3"}),
            payload: json!({"parameters": {"tag": "v1.2.3"}}),
            at: 1_000_000,
        }
    }

    fn ids() -> impl FnMut() -> String {
        let mut n = 0;
        move || {
            n += 1;
            format!("01F6848ZR2N8NJAPBVTEP9R8F{n}")
        }
    }

    #[test]
    fn an_execution_runs_then_ends_at_its_time() {
        let outcome = Outcome::FailAt {
            pipeline: "deploy-staging".into(),
            stage: "Wait for healthy".into(),
            after: Duration::from_millis(500),
        };
        let played = outcome.play(&fired(), &mut ids());
        assert_eq!(played.len(), 1);
        let e = &played[0];
        let before = e.json(1_000_010, true);
        assert_eq!(before["status"], "NOT_STARTED");
        assert!(before["startTime"].is_null());
        let running = e.json(1_000_100, true);
        assert_eq!(running["status"], "RUNNING");
        assert_eq!(running["startTime"], 1_000_020);
        assert!(running["endTime"].is_null());
        let done = e.json(1_000_600, false);
        assert_eq!(done["status"], "TERMINAL");
        assert_eq!(done["endTime"], 1_000_500);
        assert_eq!(done["stages"][0]["name"], "Wait for healthy");
        assert_eq!(done["stages"][0]["status"], "TERMINAL");
        assert_eq!(
            done["stages"][0]["tasks"],
            json!([]),
            "search answers are not expanded"
        );
        assert_eq!(done["trigger"]["type"], "webhook");
        assert_eq!(done["trigger"]["eventId"], fired().event_id);
        assert_eq!(done["trigger"]["parameters"]["tag"], "v1.2.3");
    }

    #[test]
    fn the_shape_matches_a_real_execution() {
        let real: Value = serde_json::from_str(include_str!(
            "../../../fixtures/spinnaker-execution-succeeded.json"
        ))
        .unwrap();
        let ours = Outcome::default().play(&fired(), &mut ids())[0].json(2_000_000, true);
        let keys = |v: &Value| {
            let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        assert_eq!(keys(&ours), keys(&real));
        assert_eq!(keys(&ours["stages"][0]), keys(&real["stages"][0]));
        assert_eq!(
            keys(&ours["stages"][0]["tasks"][0]),
            keys(&real["stages"][0]["tasks"][0])
        );
        let trigger_keys: Vec<String> = keys(&real["trigger"]);
        for k in trigger_keys {
            assert!(ours["trigger"].get(&k).is_some(), "trigger lacks {k}");
        }
    }

    #[test]
    fn several_outcomes_start_several_executions_and_none_starts_none() {
        let outcome = Outcome::Several(vec![
            Outcome::default(),
            Outcome::NoPipeline,
            Outcome::NeverFinish {
                pipeline: "deploy-worker".into(),
            },
        ]);
        let played = outcome.play(&fired(), &mut ids());
        assert_eq!(played.len(), 2);
        assert_eq!(played[1].json(i64::MAX / 2, true)["status"], "RUNNING");
    }

    #[test]
    fn ulids_are_26_crockford_characters_ordered_by_time() {
        let a = ulid(1_621_623_079_321);
        let b = ulid(1_621_623_079_322);
        assert_eq!(a.len(), 26);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
        );
        assert!(a[..10] < b[..10]);
        // The fixture's stage ids were made at its buildTime, 1621623079321.
        assert_eq!(&a[..10], "01F68490CS");
    }
}
