//! Parameter templates: the Spinnaker trigger's `parameters`, per environment, as strings over a
//! release's facts (`"{tag}"`, `"deploy {tag} to {env}"`). Parsed once from the configuration; a
//! parsed template names only known values, so rendering cannot fail.

use std::fmt;

/// The names a parameter template may use.
pub const NAMES: &[&str] = &[
    "tag",
    "version",
    "commit",
    "short_commit",
    "repo",
    "project",
    "env",
    "issue",
    "build_url",
    "build_tag",
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    /// An index into [`NAMES`].
    Value(usize),
}

/// A parsed template: literal text and placeholders. `{{` and `}}` are literal braces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    pieces: Vec<Piece>,
}

impl Template {
    pub fn parse(template: &str) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut rest = template;
        while let Some(i) = rest.find(['{', '}']) {
            text.push_str(&rest[..i]);
            let tail = &rest[i..];
            if let Some(t) = tail.strip_prefix("{{") {
                text.push('{');
                rest = t;
            } else if let Some(t) = tail.strip_prefix("}}") {
                text.push('}');
                rest = t;
            } else if tail.starts_with('}') {
                return Err(format!(
                    "unmatched `}}` in `{template}` (write `}}}}` for a literal brace)"
                ));
            } else {
                let end = tail
                    .find('}')
                    .ok_or_else(|| format!("unclosed `{{` in `{template}`"))?;
                let name = &tail[1..end];
                let index = NAMES.iter().position(|n| *n == name).ok_or_else(|| {
                    format!(
                        "unknown placeholder `{{{name}}}` in `{template}`; known: {}",
                        NAMES
                            .iter()
                            .map(|n| format!("{{{n}}}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })?;
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(Piece::Value(index));
                rest = &tail[end + 1..];
            }
        }
        text.push_str(rest);
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(Self {
            source: template.to_string(),
            pieces,
        })
    }

    /// The template, rendered with `lookup` giving each placeholder's value (by its name in
    /// [`NAMES`]).
    pub fn render(&self, lookup: impl Fn(&str) -> String) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Value(i) => out.push_str(&lookup(NAMES[*i])),
            }
        }
        out
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(template: &str) -> String {
        Template::parse(template)
            .unwrap()
            .render(|name| match name {
                "tag" => "stg1.2.3".into(),
                "env" => "stg".into(),
                _ => String::new(),
            })
    }

    #[test]
    fn renders_known_placeholders() {
        assert_eq!(render("{tag}"), "stg1.2.3");
        assert_eq!(
            render("deploy {tag} to {env} {{literal}}"),
            "deploy stg1.2.3 to stg {literal}"
        );
        assert_eq!(render("plain"), "plain");
        assert_eq!(render("{issue}"), "", "a value the release lacks is empty");
    }

    #[test]
    fn refuses_bad_templates() {
        for bad in ["{nope}", "{tag", "tag}", "{}"] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
    }
}
