//! Spinnaker Gate: the webhook trigger `POST /webhooks/webhook/{source}`.

use std::collections::BTreeMap;

use reqwest::StatusCode;
use serde::Deserialize;

use super::call::{CallError, http_client, status_error};
use crate::config::{Secret, Spinnaker};

const SERVICE: &str = "Spinnaker";

#[derive(Clone)]
pub struct Gate {
    http: reqwest::Client,
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

impl Gate {
    pub fn new(c: &Spinnaker) -> Self {
        Self {
            http: http_client(c.timeout),
            base: c.gate_url.trim_end_matches('/').to_string(),
            headers: c.headers.clone(),
        }
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
        let mut rb = self.http.post(url).json(&body);
        for (name, value) in &self.headers {
            rb = rb.header(name, value.expose());
        }
        let resp = rb
            .send()
            .await
            .map_err(|e| CallError::transport(SERVICE, &e))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        if status != StatusCode::OK {
            let text = resp.text().await.unwrap_or_default();
            return Err(status_error(
                SERVICE,
                status,
                &headers,
                &text,
                &|s| match s {
                    StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                        Some("Gate refused the credentials: check spinnaker.headers".into())
                    }
                    StatusCode::NOT_FOUND => Some(format!(
                        "no webhook endpoint at {}/webhooks/webhook/{source}: check spinnaker.gate_url (the API host, often with -api) and the environment's spinnaker_source",
                        self.base
                    )),
                    _ => None,
                },
            ));
        }
        let answer: EchoAnswer = resp
            .json()
            .await
            .map_err(|e| CallError::transport(SERVICE, &e))?;
        if !answer.event_processed {
            return Err(CallError::Transient {
                service: SERVICE,
                message: "Echo answered eventProcessed: false".into(),
                retry_after: None,
            });
        }
        Ok(answer.event_id)
    }
}
