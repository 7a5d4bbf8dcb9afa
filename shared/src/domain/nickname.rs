//! Nickname templates: `{username}`, `{global_name}`, any pushed attribute such as `{corp_ticker}`,
//! and the original package's `%username` style.

use std::collections::BTreeMap;

/// Discord's nickname limit, in characters.
pub const MAX_NICKNAME_CHARS: usize = 32;

/// Values a template can refer to.
pub struct NicknameInputs<'a> {
    pub username: &'a str,
    pub global_name: Option<&'a str>,
    pub attributes: &'a BTreeMap<String, String>,
}

impl NicknameInputs<'_> {
    fn lookup(&self, key: &str) -> Option<&str> {
        match key {
            "username" => Some(self.username),
            "global_name" | "display_name" => Some(self.global_name.unwrap_or(self.username)),
            other => self.attributes.get(other).map(String::as_str),
        }
    }
}

/// Renders `template`; unknown placeholders render empty. The result is trimmed and cut to 32
/// characters; an empty result means "no nickname" (`None`).
pub fn render_nickname(template: &str, inputs: &NicknameInputs<'_>) -> Option<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(pos) = rest.find(['{', '%']) {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        if let Some(stripped) = tail.strip_prefix('{') {
            match stripped.find('}') {
                Some(end) => {
                    out.push_str(inputs.lookup(stripped[..end].trim()).unwrap_or(""));
                    rest = &stripped[end + 1..];
                }
                None => {
                    out.push_str(tail);
                    rest = "";
                }
            }
        } else {
            let stripped = &tail[1..];
            let end = stripped
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(stripped.len());
            if end == 0 {
                out.push('%');
            } else {
                out.push_str(inputs.lookup(&stripped[..end]).unwrap_or(""));
            }
            rest = &stripped[end..];
        }
    }
    out.push_str(rest);
    let trimmed: String = out.trim().chars().take(MAX_NICKNAME_CHARS).collect();
    let trimmed = trimmed.trim_end().to_owned();
    (!trimmed.is_empty()).then_some(trimmed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(attrs: &BTreeMap<String, String>) -> NicknameInputs<'_> {
        NicknameInputs {
            username: "alice",
            global_name: Some("Alice A."),
            attributes: attrs,
        }
    }

    #[test]
    fn braces_and_percent_styles_render_the_same_values() {
        let attrs = BTreeMap::from([("corp_ticker".to_owned(), "TEST".to_owned())]);
        assert_eq!(
            render_nickname("[{corp_ticker}] {global_name}", &inputs(&attrs)).as_deref(),
            Some("[TEST] Alice A.")
        );
        assert_eq!(
            render_nickname("%username (%corp_ticker)", &inputs(&attrs)).as_deref(),
            Some("alice (TEST)")
        );
    }

    #[test]
    fn result_is_cut_to_32_characters_counting_chars_not_bytes() {
        let attrs = BTreeMap::from([("t".to_owned(), "é".repeat(40))]);
        let nick = render_nickname("{t}", &inputs(&attrs)).unwrap();
        assert_eq!(nick.chars().count(), 32);
    }

    #[test]
    fn unknown_placeholders_render_empty_and_empty_means_none() {
        let attrs = BTreeMap::new();
        assert_eq!(render_nickname("{nope}", &inputs(&attrs)), None);
        assert_eq!(
            render_nickname("100% {username}", &inputs(&attrs)).as_deref(),
            Some("100% alice")
        );
        assert_eq!(
            render_nickname("{unclosed", &inputs(&attrs)).as_deref(),
            Some("{unclosed")
        );
    }
}
