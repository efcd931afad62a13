//! `--report attestation=FILE`: an in-toto Statement v1 with a SLSA verification summary
//! predicate, ready for `cosign attest --predicate` / `cosign attest-blob` (no signing here).

use super::{Report, Verdict};
use crate::check::Status;
use serde::Serialize;
use serde_json::{Value, json};

pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const PREDICATE_TYPE: &str = "https://slsa.dev/verification_summary/v1";
/// The artifact type of the attestation when it is pushed as an OCI referrer.
pub const ARTIFACT_TYPE: &str = "application/vnd.in-toto+json";

/// What the verification demanded: the expected platforms and the settings that change a verdict.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Policy {
    pub expected_platforms: Vec<String>,
    pub allow_extra: bool,
    pub require_run: bool,
    pub no_run: bool,
    pub strict: bool,
}

fn hex_of(digest: &str) -> Option<&str> {
    crate::image::docs::check_digest(digest).ok()
}

/// The Statement as JSON text (stable key order, so it reproduces byte for byte).
pub fn render(report: &Report, policy: &Policy) -> String {
    let mut subjects = Vec::new();
    for s in &report.subjects {
        let name = s.reference.clone().unwrap_or_else(|| s.input.clone());
        if let Some(hex) = s.digest.as_deref().and_then(hex_of) {
            subjects.push(json!({ "name": name, "digest": { "sha256": hex } }));
        }
        for p in &s.platforms {
            let hex = match p.manifest.as_deref().and_then(hex_of) {
                Some(h) => h.to_string(),
                // Files: the binary itself is the subject.
                None => match &p.entrypoint_sha256 {
                    Some(h) if s.kind == "files" => h.clone(),
                    _ => continue,
                },
            };
            subjects.push(json!({
                "name": format!("{name}@{}", p.platform),
                "digest": { "sha256": hex },
            }));
        }
    }
    let policy_json = serde_json::to_string(policy).expect("a policy serialises");
    let platforms: Vec<Value> = report
        .artifacts
        .iter()
        .map(|a| {
            let ran: Vec<Value> = a
                .checks
                .iter()
                .filter(|c| c.status != Status::NotApplicable)
                .map(|c| json!({ "id": c.id, "status": c.status.as_str() }))
                .collect();
            json!({
                "artifact": a.path,
                "platform": a.platform,
                "manifest": a.image.as_ref().map(|i| i.digest.clone()),
                "checks": ran,
            })
        })
        .collect();
    let statement = json!({
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "verifier": {
                "id": "https://github.com/mab-verify/mab-verify",
                "version": { report.tool.name: report.tool.version },
            },
            "timeVerified": report.generated_at,
            "resourceUri": report.subjects.first().map(|s| s.reference.clone().unwrap_or_else(|| s.input.clone())),
            "policy": {
                "uri": "https://github.com/mab-verify/mab-verify#verification-policy",
                "digest": { "sha256": crate::inspect::sha256_hex(policy_json.as_bytes()) },
                "annotations": policy,
            },
            "inputAttestations": [],
            "verificationResult": match report.verdict { Verdict::Pass => "PASSED", Verdict::Fail => "FAILED" },
            "verifiedLevels": [],
            "slsaVersion": "1.0",
            "mabVerify": { "summary": report.summary, "platforms": platforms },
        },
    });
    let mut text = serde_json::to_string_pretty(&statement).expect("a statement serialises");
    text.push('\n');
    report.anonymise(&text)
}
