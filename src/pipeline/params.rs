//! The Spinnaker trigger's `parameters`: per-environment string templates over a release's facts.

use std::collections::BTreeMap;

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
];

/// Validates a template: every `{...}` names a known value; `{{` and `}}` are literal braces.
pub fn check_template(template: &str) -> Result<(), String> {
    render(template, |_| Some(String::new())).map(|_| ())
}

/// Renders `template`, asking `lookup` for each placeholder's value.
pub fn render(template: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(t) = tail.strip_prefix("{{") {
            out.push('{');
            rest = t;
        } else if let Some(t) = tail.strip_prefix("}}") {
            out.push('}');
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
            if !NAMES.contains(&name) {
                return Err(format!(
                    "unknown placeholder `{{{name}}}` in `{template}`; known: {}",
                    NAMES
                        .iter()
                        .map(|n| format!("{{{n}}}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            out.push_str(&lookup(name).unwrap_or_default());
            rest = &tail[end + 1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Renders every parameter of an environment.
pub fn render_all(
    templates: &BTreeMap<String, String>,
    values: &BTreeMap<&str, String>,
) -> Result<BTreeMap<String, String>, String> {
    templates
        .iter()
        .map(|(k, t)| Ok((k.clone(), render(t, |name| values.get(name).cloned())?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_known_placeholders() {
        let values = BTreeMap::from([("tag", "stg1.2.3".to_string()), ("env", "stg".to_string())]);
        let t = BTreeMap::from([
            ("tag".to_string(), "{tag}".to_string()),
            (
                "label".to_string(),
                "deploy {tag} to {env} {{literal}}".to_string(),
            ),
        ]);
        let out = render_all(&t, &values).unwrap();
        assert_eq!(out["tag"], "stg1.2.3");
        assert_eq!(out["label"], "deploy stg1.2.3 to stg {literal}");
    }

    #[test]
    fn refuses_bad_templates() {
        for bad in ["{nope}", "{tag", "tag}", "{}"] {
            assert!(check_template(bad).is_err(), "{bad}");
        }
        assert!(check_template("plain").is_ok());
    }
}
