//! Machine-readable report: the versioned JSON schema (`schema_version`).

use super::Report;

pub fn render(report: &Report) -> String {
    let mut text =
        serde_json::to_string_pretty(report).expect("the report model always serialises");
    text.push('\n');
    report.anonymise(&text)
}
