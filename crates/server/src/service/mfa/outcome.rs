//! What a TOTP check writes to the audit log and the outbox, per outcome,
//! inside the check's transaction.

use serde_json::json;
use tessera_core::{
    audit::{Actor, AuditEntry, RequestContext},
    event::OutboxEvent,
};
use tessera_store::mfa::TotpOutcome;

use super::audit;

/// What a TOTP check records, per outcome, in the check's transaction.
pub(super) struct OutcomeLog<'a> {
    pub actor: &'a Actor,
    pub ctx: &'a RequestContext,
    pub subject: &'a str,
    pub confirming: bool,
    pub lockout_secs: i64,
}

impl OutcomeLog<'_> {
    pub fn entries(&self, outcome: &TotpOutcome) -> (Vec<AuditEntry>, Vec<OutboxEvent>) {
        let (subject, stage) = (
            self.subject,
            if self.confirming { "confirm" } else { "verify" },
        );
        let entry =
            |action, result, details| audit(self.actor, action, subject, result, details, self.ctx);
        let event = |t, details| OutboxEvent::mfa(t, subject, details);
        match outcome {
            // Refused before any comparison: counted in metrics, not audited.
            TotpOutcome::Locked { .. } => (vec![], vec![]),
            TotpOutcome::Invalid { locks_now } => {
                let mut events = vec![event("mfa.challenge.failed", json!({ "stage": stage }))];
                if *locks_now {
                    events.push(event(
                        "mfa.challenge.locked",
                        json!({ "locked_for_secs": self.lockout_secs }),
                    ));
                }
                let details = json!({ "reason": "INVALID", "stage": stage });
                (vec![entry("mfa.challenge", "failure", details)], events)
            }
            TotpOutcome::Replayed { device_id } => (
                vec![entry(
                    "mfa.challenge",
                    "failure",
                    json!({ "device_id": device_id, "reason": "REPLAYED", "stage": stage }),
                )],
                vec![event(
                    "mfa.challenge.replayed",
                    json!({ "device_id": device_id }),
                )],
            ),
            TotpOutcome::Accepted { device_id } => {
                let details = json!({ "device_id": device_id });
                let (action, event_type) = if self.confirming {
                    ("mfa.enroll.complete", "mfa.enroll.completed")
                } else {
                    ("mfa.challenge", "mfa.challenge.succeeded")
                };
                (
                    vec![entry(action, "success", details.clone())],
                    vec![event(event_type, details)],
                )
            }
        }
    }
}
