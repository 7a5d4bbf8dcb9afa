//! A small builder for update and condition expressions: every attribute name goes through a
//! `#n` placeholder (so reserved words like `status` or `ttl` need no thought) and every value
//! through a `:v` placeholder. Only names and values actually used are sent, as DynamoDB requires.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

#[derive(Default)]
pub struct Expr {
    names: HashMap<String, String>,
    by_name: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
    set: Vec<String>,
    remove: Vec<String>,
}

impl Expr {
    pub fn new() -> Self {
        Self::default()
    }

    /// The placeholder of a top-level attribute name.
    pub fn name(&mut self, attr: &str) -> String {
        if let Some(p) = self.by_name.get(attr) {
            return p.clone();
        }
        let placeholder = format!("#n{}", self.by_name.len());
        self.by_name.insert(attr.to_owned(), placeholder.clone());
        self.names.insert(placeholder.clone(), attr.to_owned());
        placeholder
    }

    /// The placeholder path of a nested attribute, e.g. `["link", "tokens"]` → `#n0.#n1`.
    pub fn path(&mut self, parts: &[&str]) -> String {
        parts
            .iter()
            .map(|p| self.name(p))
            .collect::<Vec<_>>()
            .join(".")
    }

    /// The placeholder of a value.
    pub fn value(&mut self, v: AttributeValue) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values.insert(placeholder.clone(), v);
        placeholder
    }

    /// Adds `path = value` to the SET clause.
    pub fn set(&mut self, path: &[&str], v: AttributeValue) -> &mut Self {
        let (p, v) = (self.path(path), self.value(v));
        self.set.push(format!("{p} = {v}"));
        self
    }

    /// Adds `path = if_not_exists(path, value)` to the SET clause: a default for a new item.
    pub fn set_default(&mut self, attr: &str, v: AttributeValue) -> &mut Self {
        let (p, v) = (self.name(attr), self.value(v));
        self.set.push(format!("{p} = if_not_exists({p}, {v})"));
        self
    }

    /// Adds `attr = if_not_exists(attr, 0) + by` to the SET clause.
    pub fn increment(&mut self, attr: &str, by: i64) -> &mut Self {
        let p = self.name(attr);
        let zero = self.value(AttributeValue::N("0".to_owned()));
        let by = self.value(AttributeValue::N(by.to_string()));
        self.set
            .push(format!("{p} = if_not_exists({p}, {zero}) + {by}"));
        self
    }

    /// `attr = if_not_exists(attr, base) + by`: a counter that starts from `base`.
    pub fn increment_from(&mut self, attr: &str, base: u64, by: i64) -> &mut Self {
        let p = self.name(attr);
        let base = self.value(AttributeValue::N(base.to_string()));
        let by = self.value(AttributeValue::N(by.to_string()));
        self.set
            .push(format!("{p} = if_not_exists({p}, {base}) + {by}"));
        self
    }

    pub fn remove(&mut self, path: &[&str]) -> &mut Self {
        let p = self.path(path);
        self.remove.push(p);
        self
    }

    /// `SET … REMOVE …`.
    pub fn update_expression(&self) -> String {
        let mut out = Vec::new();
        if !self.set.is_empty() {
            out.push(format!("SET {}", self.set.join(", ")));
        }
        if !self.remove.is_empty() {
            out.push(format!("REMOVE {}", self.remove.join(", ")));
        }
        out.join(" ")
    }

    pub fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    pub fn values(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub fn b(v: bool) -> AttributeValue {
    AttributeValue::Bool(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values_are_placeholders_used_once_each() {
        let mut e = Expr::new();
        e.set(&["link", "status"], s("active"))
            .set(&["link_status"], s("active"))
            .increment("version", 1)
            .remove(&["GSI1PK"]);
        let cond = format!("attribute_exists({})", e.name("link"));
        assert_eq!(
            e.update_expression(),
            "SET #n0.#n1 = :v0, #n2 = :v1, #n3 = if_not_exists(#n3, :v2) + :v3 REMOVE #n4"
        );
        assert_eq!(cond, "attribute_exists(#n0)");
        assert_eq!(e.names().map(|n| n.len()), Some(5));
        assert_eq!(e.values().map(|v| v.len()), Some(4));
        assert!(Expr::new().names().is_none());
    }
}
