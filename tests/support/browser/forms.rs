//! Filling and pressing things as a person would: fields found by their label (or name), buttons
//! and links by their visible text, real clicks and keystrokes over WebDriver.

use fantoccini::elements::{Element, ElementRef};
use fantoccini::Locator;
use serde_json::{json, Value};

use super::Browser;

/// Finds a form field by `name`, its label's text, `aria-label` or `id` (in that order; texts
/// compared without case and with whitespace collapsed).
const FIND_FIELD: &str = r#"
const want = arguments[0];
const norm = s => (s || '').replace(/\s+/g, ' ').trim().toLowerCase();
const all = [...document.querySelectorAll('input:not([type=hidden]), select, textarea')];
return all.find(e => e.name === want)
    || [...document.querySelectorAll('label')]
        .filter(l => norm(l.textContent) === norm(want)).map(l => l.control).find(Boolean)
    || all.find(e => norm(e.getAttribute('aria-label')) === norm(want))
    || all.find(e => e.id === want)
    || null;
"#;

/// Finds a visible element among `arguments[1]` (a selector) whose text, value or aria-label is
/// `arguments[0]`.
const FIND_BY_TEXT: &str = r#"
const want = arguments[0];
const norm = s => (s || '').replace(/\s+/g, ' ').trim();
return [...document.querySelectorAll(arguments[1])]
    .filter(e => e.getClientRects().length > 0)
    .find(e => norm(e.innerText || e.value || e.getAttribute('aria-label')) === norm(want))
    || null;
"#;

const BUTTONS: &str = "button, input[type=submit], input[type=button], input[type=reset], \
                       input[type=image], [role=button]";
const SUBMIT_BUTTONS: &str =
    "button:not([type]), button[type=submit], input[type=submit], input[type=image]";

/// The key under which WebDriver passes a web element.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Browser {
    /// Types `value` into the field found by name, label text, aria-label or id (replacing
    /// what it held).
    pub async fn fill(&self, field: &str, value: &str) {
        let element = self.field(field).await;
        let cleared = element.clear().await;
        self.expect_ok(cleared, format!("cannot clear field `{field}`"))
            .await;
        let typed = element.send_keys(value).await;
        self.expect_ok(typed, format!("cannot type into field `{field}`"))
            .await;
    }

    /// Picks the option with visible text `option` in the `<select>` found as for [`Self::fill`].
    pub async fn select(&self, field: &str, option: &str) {
        let picked = self.field(field).await.select_by_label(option).await;
        self.expect_ok(picked, format!("cannot pick `{option}` in `{field}`"))
            .await;
    }

    /// Clicks the first element matching `css`.
    pub async fn click(&self, css: &str) {
        let clicked = self.find(css).await.click().await;
        self.expect_ok(clicked, format!("cannot click `{css}`"))
            .await;
    }

    /// Clicks the visible button (`<button>`, a button-like `<input>`, or `role=button`) whose
    /// text is `text`.
    pub async fn click_button(&self, text: &str) {
        self.click_by_text(text, BUTTONS, "button").await;
    }

    /// Clicks the visible link whose text is `text`.
    pub async fn click_link(&self, text: &str) {
        self.click_by_text(text, "a[href]", "link").await;
    }

    /// Submits the form matching `form_css` by clicking its first submit button (or with
    /// `requestSubmit()` when it has none), so validation and the button's value apply.
    pub async fn submit(&self, form_css: &str) {
        let form = self.find(form_css).await;
        let submitted = match form.find(Locator::Css(SUBMIT_BUTTONS)).await {
            Ok(button) => button.click().await,
            Err(_) => self
                .client()
                .execute("arguments[0].requestSubmit();", vec![element_arg(&form)])
                .await
                .map(drop),
        };
        self.expect_ok(submitted, format!("cannot submit `{form_css}`"))
            .await;
    }

    async fn field(&self, field: &str) -> Element {
        let found = self.script(FIND_FIELD, vec![json!(field)]).await;
        let element = self.element_from(&found).ok_or("not found");
        self.expect_ok(
            element,
            format!("no form field `{field}` (by name, label text, aria-label or id)"),
        )
        .await
    }

    async fn click_by_text(&self, text: &str, candidates: &str, kind: &str) {
        let found = self
            .script(FIND_BY_TEXT, vec![json!(text), json!(candidates)])
            .await;
        let element = self.element_from(&found).ok_or("not found");
        let element = self
            .expect_ok(element, format!("no visible {kind} with text `{text}`"))
            .await;
        let clicked = element.click().await;
        self.expect_ok(clicked, format!("cannot click {kind} `{text}`"))
            .await;
    }

    /// The element a script returned (WebDriver's `{"element-6066-…": id}`), if it returned one.
    fn element_from(&self, value: &Value) -> Option<Element> {
        let id = value.get(ELEMENT_KEY)?.as_str()?;
        Some(Element::from_element_id(
            self.client().clone(),
            ElementRef::from(id.to_owned()),
        ))
    }
}

/// `element` as a script argument.
fn element_arg(element: &Element) -> Value {
    json!({ ELEMENT_KEY: element.element_id().to_string() })
}
