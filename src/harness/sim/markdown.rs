//! Formattable text as OpenProject renders it (`{format, raw, html}`): shared by the work package,
//! activity and custom-field renderers, and depending on nothing of the board.

use serde_json::{Value, json};

/// Minimal Markdown-to-HTML: escape everything, paragraphs per blank line. Enough for `html`.
pub fn html(raw: &str) -> String {
    let escaped = raw
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;");
    escaped
        .split("\n\n")
        .filter(|p| !p.trim().is_empty())
        .map(|p| format!("<p class=\"op-uc-p\">{}</p>", p.trim()))
        .collect()
}

pub fn formattable(raw: &str) -> Value {
    json!({ "format": "markdown", "raw": raw, "html": html(raw) })
}
