//! Custom fields as OpenProject puts them on the wire: the format decides the JSON shape, and a field
//! exists only for the projects and types it is enabled for.
//!
//! Why it exists: the worker's pod field ("Agent pod") is a plain string on the instance it was
//! written against, but an admin may create it as Long text, or leave it off one type. What the board
//! does, read from `lib/api/v3/utilities/custom_field_injector.rb`:
//!
//! - `TYPE_MAP`: a `string` field is schema type `String`, a `text` (Long text) field `Formattable`.
//! - `inject_property_value`: a text field renders as a Formattable object (`{format, raw, html}`,
//!   `API::Decorators::Formattable`), any other property field as its plain value (`render_nil`).
//! - `property_value_setter_for`: a text field is written from `fragment['raw']`. Sent a plain string
//!   instead, Ruby's `String#[]` answers the substring `"raw"` if the string contains it and `nil`
//!   otherwise: the field is cleared (or set to `raw`), and the write still succeeds.
//! - Only `customizable.available_custom_fields` are injected: a field not enabled for the work
//!   package's project and type is absent from its JSON and its schema, and writing it is ignored
//!   (the representer has no such property).

use std::collections::BTreeSet;

use serde_json::{Value, json};

/// The format of a custom field (`custom_fields.field_format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CfFormat {
    /// `string`: a JSON string.
    #[default]
    String,
    /// `text` ("Long text"): a Formattable object.
    Text,
}

impl CfFormat {
    /// The schema's `type` for the format (`TYPE_MAP`).
    pub fn schema_type(self) -> &'static str {
        match self {
            CfFormat::String => "String",
            CfFormat::Text => "Formattable",
        }
    }
}

#[derive(Debug, Clone)]
pub struct CustomFieldDef {
    pub id: u64,
    pub name: String,
    pub format: CfFormat,
    /// `(project id, type id)` pairs the field is not enabled for.
    pub disabled_for: BTreeSet<(u64, u64)>,
}

impl CustomFieldDef {
    pub fn new(id: u64, name: &str, format: CfFormat) -> CustomFieldDef {
        CustomFieldDef {
            id,
            name: name.into(),
            format,
            disabled_for: BTreeSet::new(),
        }
    }

    /// Whether the field belongs to work packages of this project and type.
    pub fn available(&self, project: u64, type_id: u64) -> bool {
        !self.disabled_for.contains(&(project, type_id))
    }

    /// The wire value of a stored value (`None`: unset).
    pub fn render(&self, value: Option<&str>) -> Value {
        match self.format {
            CfFormat::String => value.map_or(Value::Null, |v| json!(v)),
            CfFormat::Text => {
                let raw = value.unwrap_or("");
                super::markdown::formattable(raw)
            }
        }
    }

    /// What a written JSON value stores (`Ok(None)` clears), or, refused, what was expected.
    pub fn parse(&self, value: &Value) -> Result<Option<String>, &'static str> {
        let expected = match self.format {
            CfFormat::String => "a string",
            CfFormat::Text => "a Formattable object",
        };
        match (self.format, value) {
            (_, Value::Null) => Ok(None),
            (CfFormat::String, Value::String(s)) => Ok(Some(s.clone())),
            (CfFormat::Text, Value::Object(o)) => match o.get("raw") {
                Some(Value::String(s)) => Ok(Some(s.clone())),
                None | Some(Value::Null) => Ok(None),
                Some(_) => Err(expected),
            },
            // `fragment['raw']` on a Ruby String: the substring, if there is one.
            (CfFormat::Text, Value::String(s)) => Ok(s.contains("raw").then(|| "raw".to_string())),
            _ => Err(expected),
        }
    }

    /// The field's entry in a work package schema.
    pub fn schema(&self) -> Value {
        json!({
            "type": self.format.schema_type(), "name": self.name, "required": false,
            "hasDefault": false, "writable": true, "options": { "rtl": null },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_formattable_and_a_plain_string_write_is_read_like_ruby_does() {
        let text = CustomFieldDef::new(1, "Agent pod", CfFormat::Text);
        assert_eq!(text.render(Some("pod-1"))["raw"], "pod-1");
        assert_eq!(text.render(None)["format"], "markdown");
        assert_eq!(
            text.parse(&json!({ "raw": "pod-2" })),
            Ok(Some("pod-2".into()))
        );
        assert_eq!(text.parse(&json!("pod-2")), Ok(None), "cleared, not set");
        assert_eq!(text.parse(&json!("draw-3")), Ok(Some("raw".into())));
        let string = CustomFieldDef::new(1, "Agent pod", CfFormat::String);
        assert_eq!(string.render(Some("pod-1")), json!("pod-1"));
        assert_eq!(string.render(None), Value::Null);
        assert!(string.parse(&json!(3)).is_err());
        assert_eq!(string.schema()["type"], "String");
        assert_eq!(text.schema()["type"], "Formattable");
    }
}
