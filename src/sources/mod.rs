//! Inbound webhook sources: verify who sent a request, then parse its body into a domain event.
//! Nothing here does I/O; the HTTP layer calls these on raw bytes.

pub mod auth;
pub mod circleci;
pub mod jira;

/// A body that cannot be acted on, with what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InputError {
    /// `invalid_json`, `missing_field` or `invalid_field`.
    pub code: &'static str,
    pub message: String,
}

impl InputError {
    pub fn json(e: &serde_json::Error) -> Self {
        Self {
            code: "invalid_json",
            message: format!(
                "body is not valid JSON: {} at line {} column {}",
                match e.classify() {
                    serde_json::error::Category::Eof => "unexpected end of input",
                    serde_json::error::Category::Syntax => "syntax error",
                    serde_json::error::Category::Data => "unexpected value",
                    serde_json::error::Category::Io => "read error",
                },
                e.line(),
                e.column()
            ),
        }
    }

    pub fn missing(field: &str, hint: &str) -> Self {
        Self {
            code: "missing_field",
            message: format!("missing field `{field}`{hint}"),
        }
    }

    pub fn invalid(field: &str, why: &str) -> Self {
        Self {
            code: "invalid_field",
            message: format!("field `{field}`: {why}"),
        }
    }
}

/// Parses JSON with a nesting limit, so a depth bomb is refused instead of exhausting the stack.
pub fn parse_json(body: &[u8]) -> Result<serde_json::Value, InputError> {
    // serde_json already stops at 128 levels; check cheaply first for a clearer message.
    let mut depth = 0usize;
    let mut in_str = false;
    let mut escaped = false;
    for &b in body {
        if in_str {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > 64 {
                    return Err(InputError {
                        code: "invalid_json",
                        message: "body nests deeper than 64 levels".into(),
                    });
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    serde_json::from_slice(body).map_err(|e| InputError::json(&e))
}

/// A string at a JSON pointer. Select-list custom fields (`{"value": "..."}`) count too.
pub fn string_at<'a>(v: &'a serde_json::Value, pointer: &str) -> Option<&'a str> {
    match v.pointer(pointer)? {
        serde_json::Value::String(s) if !s.trim().is_empty() => Some(s.trim()),
        serde_json::Value::Object(o) => o
            .get("value")
            .or_else(|| o.get("name"))
            .and_then(|x| x.as_str())
            .map(str::trim)
            .filter(|s| !s.is_empty()),
        _ => None,
    }
}
