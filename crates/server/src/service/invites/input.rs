//! The shape rules for invite input (roles, grant scopes, the issuer an
//! invite is created on behalf of): pure checks that answer with the field
//! that is wrong.

use tessera_core::{
    ids::validate_subject,
    invite::Issuer,
    text::{self, TextRule},
    DomainError,
};

pub(super) fn validate_role(field: &'static str, role: &str) -> Result<String, DomainError> {
    text::check(field, role, TextRule::Name)?;
    if tessera_core::invite::is_role_name(role) {
        Ok(role.to_string())
    } else {
        Err(DomainError::invalid(
            field,
            "must be 1-64 characters of a-z, 0-9, _ : . -",
        ))
    }
}

/// Grant scopes belong to the application, not to Tessera's token scope
/// registry, so only their shape is checked. Sorted and de-duplicated.
pub(super) fn validate_grant_scopes(scopes: &[String]) -> Result<Vec<String>, DomainError> {
    if scopes.len() > 64 {
        return Err(DomainError::invalid("grants.scopes", "at most 64 scopes"));
    }
    let mut out = std::collections::BTreeSet::new();
    for s in scopes {
        out.insert(validate_role("grants.scopes", s)?);
    }
    Ok(out.into_iter().collect())
}

pub(super) fn validate_issuer(i: Issuer) -> Result<Issuer, DomainError> {
    Ok(Issuer {
        subject: validate_subject(&i.subject).map_err(|e| match e {
            DomainError::InvalidCharacters { refused, .. } => DomainError::InvalidCharacters {
                field: "on_behalf_of.subject",
                refused,
            },
            _ => DomainError::invalid("on_behalf_of.subject", "must be 1-200 printable characters"),
        })?,
        role: validate_role("on_behalf_of.role", &i.role)?,
    })
}

/// An e-mail address given to validate or redeem is only compared with the
/// invite's, but it follows the same character rule as one that is stored.
pub(super) fn check_given_email(email: Option<&str>) -> Result<(), DomainError> {
    email.map_or(Ok(()), |e| text::check("email", e, TextRule::Name))
}
