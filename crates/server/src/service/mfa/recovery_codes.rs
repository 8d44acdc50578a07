//! Recovery codes: the way back in when the authenticator is lost. Ten per
//! set, shown once, stored as salted SHA-256 (see
//! [`tessera_core::mfa::recovery`]), each usable once.

use crate::service::ServiceError;
use serde_json::json;
use tessera_core::{
    audit::{Actor, RequestContext},
    event::OutboxEvent,
    mfa::{mask_subject, recovery, validate_subject, MfaFailure},
};

use super::{audit, MfaService};

impl MfaService {
    /// A new set of recovery codes (shown once); the old set stops working.
    pub async fn generate_recovery_codes(
        &self,
        subject: &str,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<Vec<String>, ServiceError> {
        let subject = validate_subject(subject)?;
        let codes = recovery::generate_set();
        let hashes: Vec<String> = codes
            .iter()
            .map(|c| {
                let canonical = recovery::normalize(c).expect("generated codes are canonical");
                recovery::hash(&subject, &canonical)
            })
            .collect();
        let details = json!({ "count": codes.len() });
        self.store
            .replace_recovery_codes(
                &subject,
                &hashes,
                tessera_core::ids::now(),
                &audit(
                    actor,
                    "mfa.recovery_codes.generate",
                    &subject,
                    "success",
                    details.clone(),
                    ctx,
                ),
                &[OutboxEvent::mfa(
                    "mfa.recovery_codes.generated",
                    &subject,
                    details,
                )],
            )
            .await?;
        self.metrics.mfa.recovery_codes_generated.inc();
        tracing::info!(subject = %mask_subject(&subject), "recovery codes generated");
        Ok(codes)
    }

    /// Uses one recovery code; returns how many are left.
    pub async fn use_recovery_code(
        &self,
        subject: &str,
        code: &str,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<Result<i64, MfaFailure>, ServiceError> {
        let subject = validate_subject(subject)?;
        let outcome = match recovery::normalize(code) {
            None => Err(MfaFailure::Invalid),
            Some(canonical) => {
                let used = self
                    .store
                    .use_recovery_code(
                        &subject,
                        &[recovery::hash(&subject, &canonical)],
                        tessera_core::ids::now(),
                        &audit(
                            actor,
                            "mfa.recovery_code.use",
                            &subject,
                            "success",
                            json!({}),
                            ctx,
                        ),
                        &[OutboxEvent::mfa(
                            "mfa.recovery_code.used",
                            &subject,
                            json!({}),
                        )],
                    )
                    .await?;
                if used {
                    Ok(())
                } else {
                    Err(MfaFailure::Invalid)
                }
            }
        };
        let left = self.store.recovery_codes_left(&subject).await?;
        let counted = match outcome {
            Ok(()) => "valid",
            Err(_) if left == 0 => "NO_DEVICE",
            Err(_) => "INVALID",
        };
        self.metrics
            .mfa
            .verifications
            .with_label_values(&["recovery_code", counted])
            .inc();
        tracing::info!(subject = %mask_subject(&subject), outcome = counted, "recovery code checked");
        match outcome {
            Ok(()) => Ok(Ok(left)),
            Err(_) if left == 0 => Ok(Err(MfaFailure::NoDevice)),
            Err(f) => {
                self.store
                    .record_mfa_activity(
                        &[audit(
                            actor,
                            "mfa.recovery_code.use",
                            &subject,
                            "failure",
                            json!({ "reason": "INVALID" }),
                            ctx,
                        )],
                        &[],
                    )
                    .await?;
                Ok(Err(f))
            }
        }
    }

    pub async fn recovery_codes_left(&self, subject: &str) -> Result<i64, ServiceError> {
        let subject = validate_subject(subject)?;
        Ok(self.store.recovery_codes_left(&subject).await?)
    }
}
