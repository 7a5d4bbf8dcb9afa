//! Accessibility checks with axe-core (Deque's engine, vendored from npm under
//! `tests/vendor/axe-core/`): [`Browser::assert_accessible`] fails a test on every `serious` or
//! `critical` violation of the page the browser shows.
//!
//! axe is injected with WebDriver's execute, which the page's Content Security Policy does not
//! govern: a console served with `default-src 'self'` (no inline or injected scripts) is checked
//! as served, with no test-only CSP exception.

use std::fmt;

use serde_json::json;

use super::Browser;

/// axe-core's minified bundle (version in `tests/vendor/axe-core/README.md`).
const AXE: &str = include_str!("../../vendor/axe-core/axe.min.js");

/// The impacts [`Browser::assert_accessible`] fails on.
pub const FAILING_IMPACTS: [&str; 2] = ["serious", "critical"];

/// Runs axe on the document and calls back with its violations, trimmed to what a report needs.
const RUN_AXE: &str = r#"
const done = arguments[arguments.length - 1];
axe.run(document, { resultTypes: ['violations'] })
  .then(r => done({ violations: r.violations.map(v => ({
      id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
      nodes: v.nodes.map(n => ({
          target: n.target.map(t => Array.isArray(t) ? t.join(' >>> ') : String(t)),
          html: n.html, summary: n.failureSummary || '' })) })) }))
  .catch(e => done({ error: String(e && e.stack || e) }));
"#;

/// One rule axe found broken, and where.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Violation {
    /// axe's rule id: `label`, `image-alt`, `color-contrast`, …
    pub id: String,
    /// `minor`, `moderate`, `serious` or `critical`.
    #[serde(default)]
    pub impact: Option<String>,
    pub help: String,
    #[serde(rename = "helpUrl")]
    pub help_url: String,
    pub nodes: Vec<ViolatingNode>,
}

/// An element that breaks a rule.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ViolatingNode {
    /// CSS selectors of the element (one per frame / shadow root level).
    pub target: Vec<String>,
    pub html: String,
    pub summary: String,
}

impl Violation {
    /// Whether [`Browser::assert_accessible`] fails on it.
    pub fn fails(&self) -> bool {
        self.impact
            .as_deref()
            .is_some_and(|i| FAILING_IMPACTS.contains(&i))
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "- {} ({}): {} <{}>",
            self.id,
            self.impact.as_deref().unwrap_or("no impact"),
            self.help,
            self.help_url
        )?;
        for node in &self.nodes {
            writeln!(f, "    at {}  {}", node.target.join(" "), node.html)?;
        }
        Ok(())
    }
}

impl Browser {
    /// Every violation axe finds on the current page, whatever its impact.
    pub async fn accessibility_violations(&self) -> Vec<Violation> {
        let inject = format!(
            "if (typeof window.axe !== 'object') {{\n{AXE}\n}}\n\
             return typeof window.axe === 'object' ? window.axe.version : null;"
        );
        if self.script(&inject, vec![]).await.is_null() {
            self.fail("axe-core did not load into the page").await;
        }
        let result = self.client().execute_async(RUN_AXE, vec![]).await;
        let result = self.expect_ok(result, "axe.run failed").await;
        if let Some(error) = result.get("error") {
            self.fail(format!("axe.run failed: {error}")).await;
        }
        let violations = result.get("violations").cloned().unwrap_or(json!([]));
        serde_json::from_value(violations)
            .unwrap_or_else(|e| panic!("axe's violations do not parse: {e}: {result}"))
    }

    /// Panics listing every `serious` or `critical` violation axe finds on the current page
    /// (rule id, impact, help, each element's selector and HTML); `page_label` names the page.
    pub async fn assert_accessible(&self, page_label: &str) {
        let failing: Vec<Violation> = self
            .accessibility_violations()
            .await
            .into_iter()
            .filter(Violation::fails)
            .collect();
        if !failing.is_empty() {
            let list: String = failing.iter().map(ToString::to_string).collect();
            self.fail(format!(
                "{page_label}: {} serious or critical accessibility violation(s) (axe-core {}):\n\
                 {list}",
                failing.len(),
                axe_version()
            ))
            .await;
        }
    }
}

/// axe's version, for reports.
pub fn axe_version() -> &'static str {
    AXE.lines()
        .next()
        .and_then(|l| l.strip_prefix("/*! axe v"))
        .unwrap_or("unknown")
        .trim()
}
