//! Orca's pipeline executions as the simulator plays them out: what one webhook trigger starts
//! (an [`Outcome`]) and each execution's JSON at a given moment, in the shape Gate answers for
//! `GET /pipelines/{id}` (see `fixtures/spinnaker-execution-succeeded.json`). Time is an input,
//! so the model is pure: an execution is `NOT_STARTED` until its start, `RUNNING` until its end,
//! then its final status; its stages run one after the other in between.
//!
//! Every simulated pipeline runs the stages [`BAKE`], [`DEPLOY`] and [`SMOKE_TEST`], in that
//! order. An [`Outcome::FailAt`] whose stage is none of these runs it right after [`DEPLOY`].

use std::time::Duration;

use serde_json::{Value, json};

/// How long after the trigger Orca starts an execution (Echo hands the event over, Orca queues).
const START_DELAY_MS: i64 = 20;
/// The shortest a stage that ends runs, so that its times stay in order when `after` is 0.
const MIN_STAGE_MS: i64 = 3;
/// How long the stages before the one that never ends take, in [`Outcome::NeverFinish`].
const NEVER_FINISH_BAKE_MS: i64 = 10;

/// The first stage of every simulated pipeline.
pub const BAKE: &str = "Bake (Manifest)";
/// The second stage of every simulated pipeline.
pub const DEPLOY: &str = "Deploy (Manifest)";
/// The last stage of every simulated pipeline.
pub const SMOKE_TEST: &str = "Run Job (Manifest)";

/// What the pipelines a trigger matches do. Durations count from the trigger.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// One execution per pipeline, each `SUCCEEDED` `after` the trigger (`RUNNING` until then).
    Succeed {
        pipelines: Vec<String>,
        after: Duration,
    },
    /// One execution that ends `TERMINAL` at stage `stage`, `after` the trigger: the stages
    /// before it `SUCCEEDED`, it `TERMINAL`, the ones after it `NOT_STARTED`.
    FailAt {
        pipeline: String,
        stage: String,
        after: Duration,
    },
    /// One execution that ends with Orca status `status` (`CANCELED`, `STOPPED`,
    /// `FAILED_CONTINUE`, `SKIPPED`...) at its last stage, `after` the trigger.
    EndAs {
        pipeline: String,
        status: String,
        after: Duration,
    },
    /// One execution that stays `RUNNING`, in its deploy stage.
    NeverFinish { pipeline: String },
    /// The trigger matched no pipeline: Echo accepted it, nothing runs, searches stay empty.
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

/// One stage's script. A stage that never starts has `start == i64::MAX`; one that never ends
/// has no `end`.
#[derive(Debug, Clone)]
struct PlayedStage {
    name: String,
    start: i64,
    /// When it ends and with which status.
    end: Option<(i64, String)>,
}

/// One execution's script.
#[derive(Debug, Clone)]
pub(crate) struct Played {
    pub id: String,
    pub application: String,
    pub event_id: String,
    pub name: String,
    trigger: Value,
    pub build_time: i64,
    start_time: i64,
    stages: Vec<PlayedStage>,
    /// When it ends and how: `None` never ends.
    end: Option<(i64, String)>,
}

/// The stages of a pipeline that fails at (or, when `None`, ends normally after) `failing`.
fn stage_names(failing: Option<&str>) -> Vec<String> {
    let mut names: Vec<String> = [BAKE, DEPLOY, SMOKE_TEST].map(String::from).to_vec();
    if let Some(stage) = failing
        && !names.iter().any(|n| n == stage)
    {
        names.insert(2, stage.to_string());
    }
    names
}

/// How one execution ends: `None` never; else after `after`, at stage `at` with `status`.
struct Ending<'a> {
    after: Duration,
    at: usize,
    status: &'a str,
}

impl Outcome {
    /// The executions `fired` starts, ids from `next_id` (in the order they are started).
    pub(crate) fn play(&self, fired: &Fired, next_id: &mut dyn FnMut() -> String) -> Vec<Played> {
        let mut played = Vec::new();
        self.play_into(fired, next_id, &mut played);
        played
    }

    fn play_into(
        &self,
        fired: &Fired,
        next_id: &mut dyn FnMut() -> String,
        played: &mut Vec<Played>,
    ) {
        let mut one = |name: &str, stages: Vec<String>, ending: Option<Ending>| {
            // Echo starts the pipelines a trigger matches one after the other.
            let build_time = fired.at + played.len() as i64;
            let execution = Played::new(fired, next_id(), name, build_time, stages, ending);
            played.push(execution);
        };
        match self {
            Outcome::Succeed { pipelines, after } => {
                for p in pipelines {
                    let ending = Ending {
                        after: *after,
                        at: 2,
                        status: "SUCCEEDED",
                    };
                    one(p, stage_names(None), Some(ending));
                }
            }
            Outcome::FailAt {
                pipeline,
                stage,
                after,
            } => {
                let stages = stage_names(Some(stage));
                let at = stages.iter().position(|s| s == stage).unwrap_or_default();
                let ending = Ending {
                    after: *after,
                    at,
                    status: "TERMINAL",
                };
                one(pipeline, stages, Some(ending));
            }
            Outcome::EndAs {
                pipeline,
                status,
                after,
            } => {
                let ending = Ending {
                    after: *after,
                    at: 2,
                    status,
                };
                one(pipeline, stage_names(None), Some(ending));
            }
            Outcome::NeverFinish { pipeline } => one(pipeline, stage_names(None), None),
            Outcome::NoPipeline => {}
            Outcome::Several(outcomes) => {
                for o in outcomes {
                    o.play_into(fired, next_id, played);
                }
            }
        }
    }
}

impl Played {
    fn new(
        fired: &Fired,
        id: String,
        name: &str,
        build_time: i64,
        names: Vec<String>,
        ending: Option<Ending>,
    ) -> Self {
        let start_time = build_time + START_DELAY_MS;
        let (stages, end) = match ending {
            // The stages up to the last that runs share the time from start to end.
            Some(Ending { after, at, status }) => {
                let running = at as i64 + 1;
                let end =
                    (fired.at + after.as_millis() as i64).max(start_time + MIN_STAGE_MS * running);
                let bound = |i: i64| start_time + (end - start_time) * i / running;
                let stages = names
                    .into_iter()
                    .enumerate()
                    .map(|(i, name)| {
                        let i = i as i64;
                        if i >= running {
                            return PlayedStage {
                                name,
                                start: i64::MAX,
                                end: None,
                            };
                        }
                        let ends_as = if i == running - 1 {
                            status
                        } else {
                            "SUCCEEDED"
                        };
                        PlayedStage {
                            name,
                            start: bound(i) + 1,
                            end: Some((bound(i + 1) - 1, ends_as.to_string())),
                        }
                    })
                    .collect();
                (stages, Some((end, status.to_string())))
            }
            // The bake ends, the deploy runs forever, the rest waits.
            None => {
                let stages = names
                    .into_iter()
                    .enumerate()
                    .map(|(i, name)| match i {
                        0 => PlayedStage {
                            name,
                            start: start_time + 1,
                            end: Some((start_time + NEVER_FINISH_BAKE_MS, "SUCCEEDED".into())),
                        },
                        1 => PlayedStage {
                            name,
                            start: start_time + NEVER_FINISH_BAKE_MS + 1,
                            end: None,
                        },
                        _ => PlayedStage {
                            name,
                            start: i64::MAX,
                            end: None,
                        },
                    })
                    .collect();
                (stages, None)
            }
        };
        let trigger = json!({
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
        });
        Self {
            trigger,
            id,
            application: fired.application.clone(),
            event_id: fired.event_id.clone(),
            name: name.to_string(),
            build_time,
            start_time,
            stages,
            end,
        }
    }

    /// `webhook`: the simulator's executions are all triggered by webhooks.
    pub(crate) fn trigger_type(&self) -> &str {
        self.trigger["type"].as_str().unwrap_or_default()
    }

    /// Orca's status at `now`.
    pub(crate) fn status(&self, now: i64) -> &str {
        status_at(now, self.start_time, self.end.as_ref())
    }

    /// The execution's JSON at `now`. Search answers are not expanded: Orca empties each stage's
    /// `context`, `outputs` and `tasks` there.
    pub(crate) fn json(&self, now: i64, expanded: bool) -> Value {
        let status = self.status(now);
        let started = now >= self.start_time;
        let end_time = ended_at(now, self.end.as_ref());
        let stages: Vec<Value> = self
            .stages
            .iter()
            .enumerate()
            .map(|(i, stage)| self.stage_json(i, stage, now, expanded))
            .collect();
        json!({
            "type": "PIPELINE",
            "id": self.id,
            "application": self.application,
            "name": self.name,
            "buildTime": self.build_time,
            "canceled": status == "CANCELED",
            "limitConcurrent": true,
            "keepWaitingPipelines": false,
            "stages": stages,
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

    fn stage_json(&self, i: usize, stage: &PlayedStage, now: i64, expanded: bool) -> Value {
        let status = status_at(now, stage.start, stage.end.as_ref());
        let started = now >= stage.start;
        let end_time = ended_at(now, stage.end.as_ref());
        let kind = stage_type(&stage.name);
        let (class, task_name) = task_of(kind);
        let task = json!({
            "id": "1",
            "implementingClass": class,
            "name": task_name,
            "startTime": started.then_some(stage.start.saturating_add(1)),
            "endTime": end_time,
            "status": status,
            "stageStart": true,
            "stageEnd": true,
            "loopStart": false,
            "loopEnd": false
        });
        let ref_id = (i + 1).to_string();
        let requisite = if i == 0 {
            json!([])
        } else {
            json!([i.to_string()])
        };
        json!({
            "id": format!("{}S{}", &self.id[..24], (i + 1) % 10),
            "refId": ref_id,
            "type": kind,
            "name": stage.name,
            "startTime": started.then_some(stage.start),
            "endTime": end_time,
            "status": status,
            "context": if expanded { json!({"cloudProvider": "kubernetes", "account": "k8s"}) } else { json!({}) },
            "outputs": {},
            "tasks": if expanded { json!([task]) } else { json!([]) },
            "requisiteStageRefIds": requisite
        })
    }
}

/// `NOT_STARTED` before `start`, the final status from `end` on, `RUNNING` in between.
fn status_at(now: i64, start: i64, end: Option<&(i64, String)>) -> &str {
    match end {
        Some((end, status)) if now >= *end => status,
        _ if now >= start => "RUNNING",
        _ => "NOT_STARTED",
    }
}

/// The end time once it has passed.
fn ended_at(now: i64, end: Option<&(i64, String)>) -> Option<i64> {
    end.filter(|(end, _)| now >= *end).map(|(end, _)| *end)
}

/// Orca's stage type, from the stage's name.
fn stage_type(name: &str) -> &'static str {
    if name.contains("Bake") {
        "bakeManifest"
    } else if name.contains("Run Job") {
        "runJobManifest"
    } else if name.contains("Wait") {
        "wait"
    } else {
        "deployManifest"
    }
}

/// The class and name of the task a stage type runs.
fn task_of(kind: &str) -> (&'static str, &'static str) {
    match kind {
        "bakeManifest" => (
            "com.netflix.spinnaker.orca.bakery.tasks.manifests.CreateBakeManifestTask",
            "createBake",
        ),
        "runJobManifest" => (
            "com.netflix.spinnaker.orca.clouddriver.tasks.job.RunJobTask",
            "runJob",
        ),
        "wait" => ("com.netflix.spinnaker.orca.pipeline.tasks.WaitTask", "wait"),
        _ => (
            "com.netflix.spinnaker.orca.clouddriver.tasks.manifest.DeployManifestTask",
            "deployManifest",
        ),
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

/// Crockford's base32, the alphabet of ULIDs.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A new ULID, the id Orca gives executions: 48 bits of milliseconds, 80 random bits, in
/// Crockford's base32.
pub(crate) fn ulid(now_ms: i64) -> String {
    encode_ulid(ulid_value(now_ms))
}

/// A ULID's 128 bits: `now_ms` then random bits.
pub(crate) fn ulid_value(now_ms: i64) -> u128 {
    ((now_ms as u128 & 0xFFFF_FFFF_FFFF) << 80) | (rand::random::<u128>() >> 48)
}

/// A ULID's 26 characters.
pub(crate) fn encode_ulid(value: u128) -> String {
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

    fn statuses(e: &Value) -> Vec<(&str, &str)> {
        e["stages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["name"].as_str().unwrap(), s["status"].as_str().unwrap()))
            .collect()
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
        assert!(before["stages"][0]["startTime"].is_null());
        let running = e.json(1_000_100, true);
        assert_eq!(running["status"], "RUNNING");
        assert_eq!(running["startTime"], 1_000_020);
        assert!(running["endTime"].is_null());
        assert_eq!(
            statuses(&running),
            [
                (BAKE, "RUNNING"),
                (DEPLOY, "NOT_STARTED"),
                ("Wait for healthy", "NOT_STARTED"),
                (SMOKE_TEST, "NOT_STARTED")
            ]
        );
        let done = e.json(1_000_600, false);
        assert_eq!(done["status"], "TERMINAL");
        assert_eq!(done["endTime"], 1_000_500);
        assert_eq!(
            statuses(&done),
            [
                (BAKE, "SUCCEEDED"),
                (DEPLOY, "SUCCEEDED"),
                ("Wait for healthy", "TERMINAL"),
                (SMOKE_TEST, "NOT_STARTED")
            ]
        );
        let wait = &done["stages"][2];
        assert_eq!(wait["type"], "wait");
        assert!(wait["endTime"].as_i64().unwrap() < 1_000_500);
        assert!(done["stages"][3]["startTime"].is_null());
        assert!(done["stages"][3]["endTime"].is_null());
        assert_eq!(wait["tasks"], json!([]), "search answers are not expanded");
        assert_eq!(done["trigger"]["type"], "webhook");
        assert_eq!(done["trigger"]["eventId"], fired().event_id);
        assert_eq!(done["trigger"]["parameters"]["tag"], "v1.2.3");
    }

    #[test]
    fn stage_times_are_in_order_even_for_an_instant_pipeline() {
        let outcome = Outcome::Succeed {
            pipelines: vec!["deploy".into()],
            after: Duration::ZERO,
        };
        let e = outcome.play(&fired(), &mut ids())[0].json(2_000_000, true);
        assert_eq!(e["status"], "SUCCEEDED");
        let mut last = e["buildTime"].as_i64().unwrap();
        assert!(e["startTime"].as_i64().unwrap() >= last);
        for s in e["stages"].as_array().unwrap() {
            let (start, end) = (
                s["startTime"].as_i64().unwrap(),
                s["endTime"].as_i64().unwrap(),
            );
            assert!(last <= start && start <= end, "{s}");
            assert_eq!(s["status"], "SUCCEEDED");
            last = end;
        }
        assert!(last <= e["endTime"].as_i64().unwrap());
        assert_eq!(e["stages"][1]["requisiteStageRefIds"], json!(["1"]));
    }

    #[test]
    fn a_failure_at_a_known_stage_keeps_three_stages() {
        let outcome = Outcome::FailAt {
            pipeline: "deploy-staging".into(),
            stage: DEPLOY.into(),
            after: Duration::from_millis(90),
        };
        let done = outcome.play(&fired(), &mut ids())[0].json(2_000_000, true);
        assert_eq!(
            statuses(&done),
            [
                (BAKE, "SUCCEEDED"),
                (DEPLOY, "TERMINAL"),
                (SMOKE_TEST, "NOT_STARTED")
            ]
        );
        assert_eq!(done["stages"][1]["tasks"][0]["status"], "TERMINAL");
        assert!(done["stages"][2]["tasks"][0]["startTime"].is_null());
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
        for stage in ours["stages"].as_array().unwrap() {
            assert_eq!(keys(stage), keys(&real["stages"][0]));
            assert_eq!(
                keys(&stage["tasks"][0]),
                keys(&real["stages"][0]["tasks"][0])
            );
        }
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
        assert!(
            played[1].build_time > played[0].build_time,
            "started one after the other"
        );
        let forever = played[1].json(i64::MAX / 2, true);
        assert_eq!(forever["status"], "RUNNING");
        assert!(forever["endTime"].is_null());
        assert_eq!(
            statuses(&forever),
            [
                (BAKE, "SUCCEEDED"),
                (DEPLOY, "RUNNING"),
                (SMOKE_TEST, "NOT_STARTED")
            ]
        );
    }

    #[test]
    fn other_final_statuses_end_the_last_stage() {
        let outcome = Outcome::EndAs {
            pipeline: "deploy-staging".into(),
            status: "CANCELED".into(),
            after: Duration::from_millis(50),
        };
        let done = outcome.play(&fired(), &mut ids())[0].json(2_000_000, false);
        assert_eq!(
            (done["status"].as_str(), done["canceled"].as_bool()),
            (Some("CANCELED"), Some(true))
        );
        assert_eq!(done["stages"][2]["status"], "CANCELED");
        assert_eq!(done["stages"][0]["status"], "SUCCEEDED");
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
