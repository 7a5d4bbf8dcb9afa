//! The Linked Roles form as the browser sends it: `enabled`, `platform_name` and five rows named
//! `metadata[i].key`, … (the names the domain's refusals use), read into a [`LinkedRoles`] with
//! empty rows left out, and a refusal of that configuration traced back to the row it came from.

use crate::domain::linked_roles::{
    Comparison, MetadataField, MetadataSource, ValueKind, MAX_METADATA,
};
use crate::domain::LinkedRoles;

/// One record of the form as typed: strings, so a refused form shows exactly what was sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Row {
    pub(super) key: String,
    pub(super) name: String,
    pub(super) description: String,
    pub(super) kind: String,
    pub(super) comparison: String,
    pub(super) source: String,
}

impl Row {
    /// Nothing typed (the selects always hold something): the row is ignored.
    fn is_empty(&self) -> bool {
        [&self.key, &self.name, &self.description, &self.source]
            .iter()
            .all(|s| s.trim().is_empty())
    }

    fn of(m: &MetadataField) -> Self {
        Self {
            key: m.key.clone(),
            name: m.name.clone(),
            description: m.description.clone(),
            kind: m.kind.as_str().to_owned(),
            comparison: m.comparison.as_str().to_owned(),
            source: match &m.source {
                MetadataSource::Group(s) | MetadataSource::Attribute(s) => s.clone(),
            },
        }
    }
}

/// The whole form: `enabled`, `platform_name` and [`MAX_METADATA`] rows named
/// `metadata[i].key`, … — the names the domain's refusals use, so a refusal finds its field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct LinkedRolesForm {
    pub(super) enabled: bool,
    pub(super) platform_name: String,
    /// Empty: members are named by their site user id.
    pub(super) username_attribute: String,
    pub(super) rows: Vec<Row>,
}

/// A refused form: the form field at fault (`metadata[2].key`) and why.
pub(super) struct Refusal {
    pub(super) field: String,
    pub(super) message: String,
}

impl LinkedRolesForm {
    pub(super) fn of(config: Option<&LinkedRoles>) -> Self {
        let mut rows: Vec<Row> = config
            .map(|l| l.metadata.iter().map(Row::of).collect())
            .unwrap_or_default();
        rows.resize(MAX_METADATA.max(rows.len()), Row::default());
        Self {
            enabled: config.is_some_and(|l| l.enabled),
            platform_name: config.map(|l| l.platform_name.clone()).unwrap_or_default(),
            username_attribute: config
                .and_then(|l| l.username_attribute.clone())
                .unwrap_or_default(),
            rows,
        }
    }

    /// Reads the browser's fields; unknown names and rows past the fifth are ignored.
    pub(super) fn parse(fields: Vec<(String, String)>) -> Self {
        let mut form = Self::of(None);
        for (name, value) in fields {
            match name.as_str() {
                "enabled" => form.enabled = value == "on",
                "platform_name" => form.platform_name = value,
                "username_attribute" => form.username_attribute = value,
                _ => {
                    let Some((i, field)) = row_field(&name) else {
                        continue;
                    };
                    let Some(row) = form.rows.get_mut(i) else {
                        continue;
                    };
                    match field {
                        "key" => row.key = value,
                        "name" => row.name = value,
                        "description" => row.description = value,
                        "type" => row.kind = value,
                        "comparison" => row.comparison = value,
                        "source" => row.source = value,
                        _ => {}
                    }
                }
            }
        }
        form
    }

    /// The configuration the form describes (empty rows left out) and, for each of its records,
    /// the form row it came from.
    pub(super) fn to_config(&self) -> Result<(LinkedRoles, Vec<usize>), Refusal> {
        let mut metadata = Vec::new();
        let mut rows = Vec::new();
        for (i, row) in self.rows.iter().enumerate() {
            if row.is_empty() {
                continue;
            }
            let refuse = |field: &str, message: &str| Refusal {
                field: format!("metadata[{i}].{field}"),
                message: message.to_owned(),
            };
            let kind = match row.kind.as_str() {
                "boolean" => ValueKind::Boolean,
                "integer" => ValueKind::Integer,
                "datetime" => ValueKind::Datetime,
                _ => return Err(refuse("type", "pick boolean, integer or datetime")),
            };
            let comparison = match row.comparison.as_str() {
                "" => kind.default_comparison(),
                name => Comparison::from_name(name)
                    .ok_or_else(|| refuse("comparison", "pick one of the comparisons listed"))?,
            };
            let source = row.source.trim().to_owned();
            metadata.push(MetadataField {
                key: row.key.trim().to_owned(),
                name: row.name.trim().to_owned(),
                description: row.description.trim().to_owned(),
                kind,
                comparison,
                source: match kind {
                    ValueKind::Boolean => MetadataSource::Group(source),
                    ValueKind::Integer | ValueKind::Datetime => MetadataSource::Attribute(source),
                },
            });
            rows.push(i);
        }
        let config = LinkedRoles {
            enabled: self.enabled,
            platform_name: self.platform_name.trim().to_owned(),
            username_attribute: Some(self.username_attribute.trim())
                .filter(|a| !a.is_empty())
                .map(str::to_owned),
            metadata,
        };
        Ok((config, rows))
    }
}

/// `metadata[3].key` → `(3, "key")`.
fn row_field(name: &str) -> Option<(usize, &str)> {
    let rest = name.strip_prefix("metadata[")?;
    let (i, field) = rest.split_once("].")?;
    Some((i.parse().ok()?, field))
}

/// A refusal of the configuration's record `i` names the form row it came from; the source's
/// `.group` / `.attribute` is the row's one source field.
pub(super) fn refusal_in_form(field: &str, message: String, rows: &[usize]) -> Refusal {
    let field = match row_field(field) {
        Some((i, f)) => {
            let row = rows.get(i).copied().unwrap_or(i);
            let f = if f.starts_with("source") { "source" } else { f };
            format!("metadata[{row}].{f}")
        }
        None => field.to_owned(),
    };
    Refusal { field, message }
}

/// What the operator calls a form field, for the notice above the form.
pub(super) fn field_label(field: &str) -> String {
    match row_field(field) {
        Some((i, f)) => {
            let what = match f {
                "type" => "type",
                "comparison" => "comparison",
                "source" => "group or attribute",
                other => other,
            };
            format!("record {}, {what}", i + 1)
        }
        None if field == "platform_name" => "platform name".to_owned(),
        None if field == "username_attribute" => "member's name from attribute".to_owned(),
        None => field.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn empty_rows_are_ignored_and_refusals_name_the_form_row() {
        let form = LinkedRolesForm::parse(fields(&[
            ("csrf", "x"),
            ("enabled", "on"),
            ("platform_name", " Example "),
            ("metadata[1].key", "officer"),
            ("metadata[1].name", "Officer"),
            ("metadata[1].description", "Is an officer"),
            ("metadata[1].type", "boolean"),
            ("metadata[1].comparison", ""),
            ("metadata[1].source", "officers"),
            ("metadata[3].key", "missions"),
            ("metadata[3].type", "integer"),
            ("metadata[3].source", "missions"),
            ("metadata[9].key", "ignored"),
        ]));
        let (config, rows) = form.to_config().ok().expect("parsed");
        assert!(config.enabled);
        assert_eq!(config.platform_name, "Example");
        assert_eq!(config.username_attribute, None, "left empty");
        assert_eq!(rows, vec![1, 3]);
        assert_eq!(
            config.metadata[0].source,
            MetadataSource::Group("officers".into())
        );
        assert_eq!(config.metadata[0].comparison, Comparison::Equal);
        assert_eq!(
            config.metadata[1].source,
            MetadataSource::Attribute("missions".into())
        );
        // The domain names record 1 (the second record): that is form row 3.
        let invalid = config.validate().expect_err("no name");
        assert_eq!(invalid.field, "metadata[1].name");
        let r = refusal_in_form(&invalid.field, invalid.message, &rows);
        assert_eq!(r.field, "metadata[3].name");
        assert_eq!(field_label(&r.field), "record 4, name");
        let r = refusal_in_form("metadata[0].source.group", String::new(), &rows);
        assert_eq!(r.field, "metadata[1].source");
    }

    #[test]
    fn a_stored_configuration_reads_back_as_the_same_form() {
        let form = LinkedRolesForm::parse(fields(&[
            ("platform_name", "Example"),
            ("username_attribute", "username"),
            ("metadata[0].key", "since"),
            ("metadata[0].name", "Member since"),
            ("metadata[0].description", "Joined on"),
            ("metadata[0].type", "datetime"),
            ("metadata[0].comparison", "greater_than_or_equal"),
            ("metadata[0].source", "joined_at"),
        ]));
        let (config, _) = form.to_config().ok().expect("parsed");
        assert_eq!(config.username_attribute.as_deref(), Some("username"));
        assert_eq!(LinkedRolesForm::of(Some(&config)), form);
        assert_eq!(LinkedRolesForm::of(None).rows.len(), MAX_METADATA);
    }
}
