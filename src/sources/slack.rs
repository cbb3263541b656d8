//! Slack's interactivity requests (SPEC 13): a click on a button arrives as a form with one field,
//! `payload`, holding a `block_actions` JSON. Only what Hoist acts on is read.

use serde::Deserialize;

use super::InputError;

/// One button a person clicked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Click {
    pub action_id: String,
    pub value: String,
    /// The Slack user id, what `approvers` lists.
    pub user: String,
    /// Where to answer: update the message, or tell the user alone.
    pub response_url: Option<String>,
    /// The message the buttons were on, as Slack sends it (its `blocks`), to show it updated.
    pub message: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Payload {
    #[serde(rename = "type")]
    kind: String,
    user: User,
    #[serde(default)]
    response_url: Option<String>,
    #[serde(default)]
    message: Option<serde_json::Value>,
    #[serde(default)]
    actions: Vec<Action>,
}

#[derive(Deserialize)]
struct User {
    id: String,
}

#[derive(Deserialize)]
struct Action {
    action_id: String,
    #[serde(default)]
    value: Option<String>,
}

/// The clicks in a form body (`payload=<JSON>`). Other interaction types (shortcuts, views)
/// answer no click; a body that is not Slack's shape says what is wrong.
pub fn parse(body: &[u8]) -> Result<Vec<Click>, InputError> {
    let payload = url::form_urlencoded::parse(body)
        .find(|(k, _)| k == "payload")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| {
            InputError::missing(
                "payload",
                " (Slack posts interactions as a form with one field, payload)",
            )
        })?;
    let p: Payload = serde_json::from_str(&payload).map_err(|e| InputError {
        code: "invalid_field",
        message: format!("field `payload` is not a Slack interaction: {e}"),
    })?;
    if p.kind != "block_actions" {
        return Ok(Vec::new());
    }
    Ok(p.actions
        .into_iter()
        .map(|a| Click {
            action_id: a.action_id,
            value: a.value.unwrap_or_default(),
            user: p.user.id.clone(),
            response_url: p.response_url.clone(),
            message: p.message.clone(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(json: &str) -> Vec<u8> {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", json)
            .finish()
            .into_bytes()
    }

    #[test]
    fn slacks_documented_click_reads() {
        let sample = include_str!("../../fixtures/slack-block-actions-payload.json");
        let clicks = parse(&form(sample)).unwrap();
        assert_eq!(
            clicks[0],
            Click {
                action_id: "WaXA".into(),
                value: "click_me_123".into(),
                user: "UA8RXUSPL".into(),
                response_url: Some(
                    "https://hooks.slack.com/actions/AABA1ABCD/1232321423432/D09sSasdasdAS9091209"
                        .into()
                ),
                message: clicks[0].message.clone(),
            }
        );
        assert!(clicks[0].message.is_some());
    }

    #[test]
    fn what_is_not_a_click() {
        assert_eq!(parse(b"text=hello").unwrap_err().code, "missing_field");
        assert_eq!(parse(&form("{not json")).unwrap_err().code, "invalid_field");
        assert_eq!(
            parse(&form(r#"{"type":"block_actions"}"#))
                .unwrap_err()
                .code,
            "invalid_field"
        );
        let shortcut = r#"{"type":"shortcut","user":{"id":"U1"}}"#;
        assert!(parse(&form(shortcut)).unwrap().is_empty());
    }
}
