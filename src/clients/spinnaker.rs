//! Spinnaker Gate: the webhook trigger `POST /webhooks/webhook/{source}`, and the executions a
//! trigger started: `GET /applications/{app}/executions/search?triggerTypes=webhook&eventId=...`
//! and `GET /pipelines/{id}`, answered in Orca's execution shape.

use std::collections::BTreeMap;

use reqwest::StatusCode;
use serde::Deserialize;

use super::call::{CallError, http_client, send, status_error, truncate};
use crate::config::{Secret, Spinnaker};
use crate::domain::{Execution, Stage};
use crate::metrics::{Metrics, Service};

const SERVICE: &str = "Spinnaker";

#[derive(Clone)]
pub struct Gate {
    http: reqwest::Client,
    metrics: Metrics,
    base: String,
    headers: Vec<(String, Secret)>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EchoAnswer {
    #[serde(default)]
    event_processed: bool,
    event_id: Option<String>,
}

/// Orca's execution, the fields Hoist reads (Gate answers many more).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExecutionJson {
    id: String,
    #[serde(default)]
    application: String,
    #[serde(default)]
    name: Option<String>,
    status: String,
    start_time: Option<i64>,
    end_time: Option<i64>,
    #[serde(default)]
    stages: Vec<StageJson>,
}

#[derive(Debug, Deserialize)]
struct StageJson {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    status: Option<String>,
}

impl From<ExecutionJson> for Execution {
    fn from(e: ExecutionJson) -> Self {
        Self {
            id: e.id,
            application: e.application,
            name: e.name.unwrap_or_default(),
            status: e.status,
            start_time: e.start_time.filter(|t| *t > 0),
            end_time: e.end_time.filter(|t| *t > 0),
            stages: e
                .stages
                .into_iter()
                .map(|s| Stage {
                    name: s.name.unwrap_or_default(),
                    kind: s.kind.unwrap_or_default(),
                    status: s.status.unwrap_or_default(),
                })
                .collect(),
        }
    }
}

impl Gate {
    /// A client of the Gate at `base`, with `[spinnaker]`'s headers and timeout.
    pub fn new(base: &str, c: &Spinnaker, metrics: &Metrics) -> Self {
        Self {
            http: http_client(c.timeout),
            metrics: metrics.clone(),
            base: base.trim_end_matches('/').to_string(),
            headers: c.headers.clone(),
        }
    }

    fn request(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        self.headers
            .iter()
            .fold(rb, |rb, (name, value)| rb.header(name, value.expose()))
    }

    /// Sends the trigger; answers Echo's `eventId`.
    pub async fn trigger(
        &self,
        source: &str,
        parameters: &BTreeMap<String, String>,
        extra: serde_json::Value,
    ) -> Result<Option<String>, CallError> {
        let url = format!("{}/webhooks/webhook/{}", self.base, source);
        let mut body = serde_json::json!({ "parameters": parameters });
        if let (Some(obj), serde_json::Value::Object(extra)) = (body.as_object_mut(), extra) {
            obj.extend(extra);
        }
        let not_found = || {
            format!(
                "no webhook endpoint at {}/webhooks/webhook/{source}: check the Gate URL (the API host, often with -api) and the environment's spinnaker_source",
                self.base
            )
        };
        let text = self
            .call(self.http.post(url).json(&body), &not_found)
            .await?;
        let answer: EchoAnswer = parse(&text, "Echo's answer")?;
        if !answer.event_processed {
            return Err(CallError::Transient {
                service: SERVICE,
                message: "Echo answered eventProcessed: false".into(),
                retry_after: None,
            });
        }
        Ok(answer.event_id)
    }

    /// The webhook-triggered executions of `application` (`*`: any) that the event `event_id`
    /// started, newest first. Orca answers `[]` for an application it does not know (a wrong
    /// `spinnaker_application` then shows as a deploy that never starts); a front that refuses
    /// the name answers `404`, which no retry mends.
    pub async fn executions_of_event(
        &self,
        application: &str,
        event_id: &str,
    ) -> Result<Vec<Execution>, CallError> {
        let mut url = url::Url::parse(&format!(
            "{}/applications/{}/executions/search",
            self.base,
            segment(application)
        ))
        .map_err(|e| CallError::Permanent {
            service: SERVICE,
            status: None,
            message: format!("cannot form the search address: {e}"),
        })?;
        url.query_pairs_mut()
            .append_pair("triggerTypes", "webhook")
            .append_pair("eventId", event_id);
        let not_found = || {
            format!(
                "Gate knows no application `{application}`: check the environment's spinnaker_application (unset searches every application), and that the Gate URL {} is the API's",
                self.base
            )
        };
        let body = self.call(self.http.get(url.as_str()), &not_found).await?;
        let list: Vec<ExecutionJson> = parse(&body, "executions")?;
        Ok(list.into_iter().map(Execution::from).collect())
    }

    /// One execution by id.
    pub async fn execution(&self, id: &str) -> Result<Execution, CallError> {
        let url = format!("{}/pipelines/{}", self.base, segment(id));
        let not_found = || format!("Gate knows no execution `{id}` (deleted?)");
        let body = self.call(self.http.get(&url), &not_found).await?;
        parse::<ExecutionJson>(&body, "an execution").map(Execution::from)
    }

    /// The answer's body, or the failure classified (`not_found` says what a 404 means here).
    async fn call(
        &self,
        rb: reqwest::RequestBuilder,
        not_found: &(dyn Fn() -> String + Sync),
    ) -> Result<String, CallError> {
        let resp = send(&self.metrics, Service::Spinnaker, SERVICE, self.request(rb)).await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp
            .text()
            .await
            .map_err(|e| CallError::transport(SERVICE, &e))?;
        if status == StatusCode::OK {
            return Ok(text);
        }
        Err(status_error(
            SERVICE,
            status,
            &headers,
            &text,
            &|s| match s {
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                    Some("Gate refused the credentials: check spinnaker.headers".into())
                }
                StatusCode::NOT_FOUND => Some(not_found()),
                _ => None,
            },
        ))
    }
}

/// Gate's answer parsed, or a failure worth retrying (a proxy's error page, a cut answer) that
/// names the body's first bytes.
fn parse<T: serde::de::DeserializeOwned>(body: &str, what: &str) -> Result<T, CallError> {
    serde_json::from_str(body).map_err(|e| CallError::Transient {
        service: SERVICE,
        message: format!(
            "answered what Hoist cannot read as {what} ({e}): {}",
            truncate(body, 120)
        ),
        retry_after: None,
    })
}

/// Escapes one path segment.
fn segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
        .replace("%2A", "*")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_execution_reads() {
        let body = include_str!("../../fixtures/spinnaker-execution-succeeded.json");
        let e = Execution::from(serde_json::from_str::<ExecutionJson>(body).unwrap());
        assert_eq!(e.id, "01F6848ZR2N8NJAPBVTEP9R8FV");
        assert_eq!(e.application, "cloudfoundryapp");
        assert_eq!(e.name, "bake-cf-manifest");
        assert_eq!(e.status, "SUCCEEDED");
        assert_eq!(
            (e.start_time, e.end_time),
            (Some(1621623079516), Some(1621623080872))
        );
        assert_eq!(
            e.stages,
            [Stage {
                name: "Bake CloudFoundry Manifest".into(),
                kind: "bakeCloudFoundryManifest".into(),
                status: "SUCCEEDED".into()
            }]
        );
    }

    #[test]
    fn an_unreadable_answer_is_retried_and_named() {
        let e = parse::<Vec<ExecutionJson>>("[{\"id\": \"01F6", "executions").unwrap_err();
        assert!(e.is_retriable());
        assert!(e.to_string().contains("[{\"id\": \"01F6"), "{e}");
    }
}
