//! Inbound webhook sources: verify who sent a request, then parse its body into a domain event.
//! Nothing here does I/O; the HTTP layer calls these on raw bytes.

pub mod address;
pub mod auth;
pub mod bitbucket;
pub mod circleci;
pub mod jira;
#[cfg(test)]
mod proptests;
mod refusal;
pub mod signature;
pub mod slack;

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

/// How deep and how large a JSON body may be, checked on the raw bytes before parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonLimits {
    pub max_depth: usize,
    /// Containers, elements and members (every `[`, `{`, `,` and `:` outside strings, plus one).
    pub max_items: usize,
}

impl JsonLimits {
    /// What the parsers themselves enforce whatever the configuration says: serde_json's own
    /// nesting limit. The HTTP layer applies the configured (tighter) limits first.
    pub const CEILING: Self = Self {
        max_depth: crate::config::limits::JSON_DEPTH_CEILING,
        max_items: usize::MAX,
    };

    /// Refuses a body that nests too deep or holds too many items, in one pass over the bytes and
    /// without allocating, so a depth or size bomb costs no more than reading it.
    pub fn check(&self, body: &[u8]) -> Result<(), InputError> {
        let too = |message: String| InputError {
            code: "invalid_json",
            message,
        };
        let (mut depth, mut items) = (0usize, 1usize);
        let mut i = 0;
        while let Some(&b) = body.get(i) {
            i += 1;
            match b {
                b'"' => {
                    // Past the string: to the first quote that no backslash escapes. Most of a
                    // webhook is strings, so this skips most of it (memchr: word-wide search).
                    while let Some(at) = body
                        .get(i..)
                        .and_then(|rest| memchr::memchr2(b'"', b'\\', rest))
                    {
                        let c = body[i + at];
                        i += at + 1;
                        if c == b'"' {
                            break;
                        }
                        i += 1; // the escaped byte
                    }
                    continue;
                }
                b'[' | b'{' => {
                    depth += 1;
                    items += 1;
                    if depth > self.max_depth {
                        return Err(too(format!(
                            "body nests deeper than {} levels",
                            self.max_depth
                        )));
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                b',' | b':' => items += 1,
                _ => continue,
            }
            if items > self.max_items {
                return Err(too(format!(
                    "body holds more than {} JSON items",
                    self.max_items
                )));
            }
        }
        Ok(())
    }
}

/// Parses JSON within [`JsonLimits::CEILING`], so no body can exhaust the stack.
pub fn parse_json(body: &[u8]) -> Result<serde_json::Value, InputError> {
    JsonLimits::CEILING.check(body)?;
    serde_json::from_slice(body).map_err(|e| InputError::json(&e))
}

/// A value for an error message: at most 100 characters, so an answer never echoes a huge input.
pub fn quote(value: &str) -> String {
    let mut out: String = value.chars().take(100).collect();
    if out.len() < value.len() {
        out.push_str("...");
    }
    out
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
