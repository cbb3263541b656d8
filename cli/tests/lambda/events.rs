//! Lambda events built from the real samples in `fixtures/`, rewritten to carry Hoist's requests.

use base64::Engine;
use serde_json::{Map, Value, json};

const HTTP_API_V2: &str =
    include_str!("../../../fixtures/aws-apigw-http-api-v2-request-post-body.json");
const REST_API_V1: &str = include_str!("../../../fixtures/aws-apigw-rest-api-v1-request-post.json");
const FUNCTION_URL: &str = include_str!("../../../fixtures/aws-lambda-function-url-request.json");
pub const SCHEDULE: &str = include_str!("../../../fixtures/aws-eventbridge-scheduled-event.json");

/// An HTTP request to put in an event.
pub struct Req {
    pub method: &'static str,
    pub path: &'static str,
    pub query: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    /// Send the body base64-encoded (`isBase64Encoded: true`).
    pub base64: bool,
    pub source_ip: &'static str,
}

impl Req {
    pub fn post(path: &'static str, source_ip: &'static str, body: Vec<u8>) -> Self {
        Self {
            method: "POST",
            path,
            query: "",
            headers: Vec::new(),
            body,
            base64: false,
            source_ip,
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn body_fields(&self, event: &mut Value) {
        event["body"] = if self.base64 {
            json!(base64::engine::general_purpose::STANDARD.encode(&self.body))
        } else {
            json!(String::from_utf8(self.body.clone()).unwrap())
        };
        event["isBase64Encoded"] = json!(self.base64);
    }
}

/// API Gateway HTTP API, payload 2.0; `stage` is `$default` or a named stage in the path.
pub fn http_api(r: &Req, stage: &str) -> Value {
    let mut e: Value = serde_json::from_str(HTTP_API_V2).unwrap();
    let raw_path = if stage == "$default" {
        r.path.to_string()
    } else {
        format!("/{stage}{}", r.path)
    };
    e["rawPath"] = json!(raw_path);
    e["rawQueryString"] = json!(r.query);
    e["queryStringParameters"] = json!({});
    e["requestContext"]["stage"] = json!(stage);
    e["requestContext"]["http"]["method"] = json!(r.method);
    e["requestContext"]["http"]["path"] = json!(raw_path);
    e["requestContext"]["http"]["sourceIp"] = json!(r.source_ip);
    for (name, value) in &r.headers {
        e["headers"][*name] = json!(value);
    }
    r.body_fields(&mut e);
    e
}

/// API Gateway REST API, payload 1.0 (stage `testStage`, as in the sample). With `multi`, the
/// request's headers are only in `multiValueHeaders`, the way some integrations send them.
pub fn rest_api(r: &Req, multi: bool) -> Value {
    let mut e: Value = serde_json::from_str(REST_API_V1).unwrap();
    e["path"] = json!(r.path);
    e["httpMethod"] = json!(r.method);
    e["pathParameters"] = json!({"proxy": r.path.trim_start_matches('/')});
    let mut single = Map::new();
    let mut many = Map::new();
    for pair in r.query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        single.insert(k.into(), json!(v));
        many.insert(k.into(), json!([v]));
    }
    e["queryStringParameters"] = Value::Object(single);
    e["multiValueQueryStringParameters"] = Value::Object(many);
    e["requestContext"]["httpMethod"] = json!(r.method);
    e["requestContext"]["path"] = json!(format!("/testStage{}", r.path));
    e["requestContext"]["identity"]["sourceIp"] = json!(r.source_ip);
    for (name, value) in &r.headers {
        if !multi {
            e["headers"][*name] = json!(value);
        }
        e["multiValueHeaders"][*name] = json!([value]);
    }
    r.body_fields(&mut e);
    e
}

/// A Lambda function URL request (payload 2.0 shape, no stage).
pub fn function_url(r: &Req) -> Value {
    let mut e: Value = serde_json::from_str(FUNCTION_URL).unwrap();
    // The sample has `<url-id>` placeholders, which are not a host name.
    let id = "t7g4d2xn5yqzv3bmwe6o8kfa1c0hjsur";
    e["requestContext"]["apiId"] = json!(id);
    e["requestContext"]["domainPrefix"] = json!(id);
    e["requestContext"]["domainName"] = json!(format!("{id}.lambda-url.us-west-2.on.aws"));
    e["rawPath"] = json!(r.path);
    e["rawQueryString"] = json!(r.query);
    e["queryStringParameters"] = json!({});
    e["requestContext"]["http"]["method"] = json!(r.method);
    e["requestContext"]["http"]["path"] = json!(r.path);
    e["requestContext"]["http"]["sourceIp"] = json!(r.source_ip);
    for (name, value) in &r.headers {
        e["headers"][*name] = json!(value);
    }
    r.body_fields(&mut e);
    e
}

pub fn schedule() -> Value {
    serde_json::from_str(SCHEDULE).unwrap()
}

/// A Jira Automation "Send web request" body.
pub fn automation(commit: &str, issue: &str) -> Vec<u8> {
    serde_json::to_vec(&hoist_sim::jira::automation_body(
        hoist_cli::stack::REPO,
        commit,
        issue,
        None,
    ))
    .unwrap()
}
