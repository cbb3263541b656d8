//! The parts of Bitbucket's list API that are pure logic: the BBQL subset the simulator
//! understands (`name ~ "x"`, `name = "x"`, joined by `AND`), Bitbucket's natural sort of ref
//! names, and the escaping Bitbucket uses for ref names in links.

use std::cmp::Ordering;

/// One condition of a BBQL query on a tag's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Condition {
    /// `name ~ "text"`: case-insensitive contains.
    Contains(String),
    /// `name = "text"`: exact match.
    Equals(String),
}

impl Condition {
    pub(crate) fn matches(&self, name: &str) -> bool {
        match self {
            Condition::Contains(text) => name.to_lowercase().contains(&text.to_lowercase()),
            Condition::Equals(text) => name == text,
        }
    }
}

/// Parses `name ~ "a" AND name = "b"`. `Err` carries what was wrong, for the 400 message.
pub(crate) fn parse_query(q: &str) -> Result<Vec<Condition>, String> {
    let mut rest = q.trim();
    let mut conditions = Vec::new();
    loop {
        let (condition, after) = parse_condition(rest)?;
        conditions.push(condition);
        rest = after.trim_start();
        if rest.is_empty() {
            return Ok(conditions);
        }
        let keyword = rest.get(..3).unwrap_or("");
        if !keyword.eq_ignore_ascii_case("and") || !rest[3..].starts_with(char::is_whitespace) {
            return Err(format!("unexpected input at \"{rest}\""));
        }
        rest = rest[3..].trim_start();
    }
}

fn parse_condition(input: &str) -> Result<(Condition, &str), String> {
    let Some(after_field) = input.strip_prefix("name") else {
        let field: String = input.chars().take_while(|c| !c.is_whitespace()).collect();
        return Err(format!("unsupported field \"{field}\""));
    };
    let after_field = after_field.trim_start();
    let (equals, after_op) = if let Some(rest) = after_field.strip_prefix('~') {
        (false, rest)
    } else if let Some(rest) = after_field.strip_prefix('=') {
        (true, rest)
    } else {
        return Err("expected operator ~ or =".to_string());
    };
    let (text, rest) = parse_string(after_op.trim_start())?;
    let condition = if equals {
        Condition::Equals(text)
    } else {
        Condition::Contains(text)
    };
    Ok((condition, rest))
}

/// A double-quoted string with backslash escapes.
fn parse_string(input: &str) -> Result<(String, &str), String> {
    let Some(body) = input.strip_prefix('"') else {
        return Err("expected a double-quoted string".to_string());
    };
    let mut text = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((text, &body[i + 1..])),
            '\\' => match chars.next() {
                Some((_, escaped)) => text.push(escaped),
                None => break,
            },
            other => text.push(other),
        }
    }
    Err("unterminated string".to_string())
}

/// Bitbucket's `sort=name`: digit runs compare as numbers, so `stg1.9.0` < `stg1.10.0`.
pub(crate) fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a, b);
    loop {
        match (a.is_empty(), b.is_empty()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            _ => {}
        }
        let a_digit = a.starts_with(|c: char| c.is_ascii_digit());
        let b_digit = b.starts_with(|c: char| c.is_ascii_digit());
        let (a_run, a_rest) = split_run(a, a_digit);
        let (b_run, b_rest) = split_run(b, b_digit);
        let order = match (a_digit, b_digit) {
            (true, true) => {
                let (x, y) = (a_run.trim_start_matches('0'), b_run.trim_start_matches('0'));
                x.len().cmp(&y.len()).then_with(|| x.cmp(y))
            }
            _ => a_run.cmp(b_run),
        };
        if order != Ordering::Equal {
            return order;
        }
        a = a_rest;
        b = b_rest;
    }
}

fn split_run(s: &str, digits: bool) -> (&str, &str) {
    let end = s
        .find(|c: char| c.is_ascii_digit() != digits)
        .unwrap_or(s.len());
    s.split_at(end)
}

/// Escapes a ref name for a link the way Bitbucket does (`"` -> `%22`, `#` -> `%23`, `/` kept).
pub(crate) fn escape_ref(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        let keep = byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&byte);
        if keep {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_contains_equals_and_and() {
        assert_eq!(
            parse_query(r#"name ~ "stg" AND name = "stg1.2.3""#),
            Ok(vec![
                Condition::Contains("stg".into()),
                Condition::Equals("stg1.2.3".into())
            ])
        );
        assert_eq!(
            parse_query(r#"name~"a\"b""#),
            Ok(vec![Condition::Contains("a\"b".into())])
        );
    }

    #[test]
    fn rejects_what_it_does_not_understand() {
        for q in [
            "",
            "name",
            r#"target.hash = "abc""#,
            r#"name ~ stg"#,
            r#"name ~ "stg" OR name ~ "qa""#,
            r#"name ~ "stg"#,
            r#"name != "x""#,
        ] {
            assert!(parse_query(q).is_err(), "{q} should be rejected");
        }
    }

    #[test]
    fn contains_ignores_case() {
        assert!(Condition::Contains("STG".into()).matches("stg1.0.0"));
        assert!(!Condition::Equals("STG1.0.0".into()).matches("stg1.0.0"));
    }

    #[test]
    fn natural_order_compares_numbers_as_numbers() {
        let mut names = vec![
            "stg1.10.0",
            "stg1.9.0",
            "stg1.9.10",
            "stg1.9.9",
            "qa1.0.0",
            "stg2",
        ];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            names,
            [
                "qa1.0.0",
                "stg1.9.0",
                "stg1.9.9",
                "stg1.9.10",
                "stg1.10.0",
                "stg2"
            ]
        );
    }

    #[test]
    fn escapes_like_bitbucket_links() {
        assert_eq!(
            escape_ref(r#"special-"$;><&#_=@!|.,/test"#),
            "special-%22$;%3E%3C&%23_=@!%7C.,/test"
        );
    }
}
