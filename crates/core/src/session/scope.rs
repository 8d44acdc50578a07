//! Which scopes a session gets: the union of its user's roles' scopes (from
//! configuration), narrowed to what the client asked for.

use std::collections::BTreeMap;

/// Role name → the scopes it grants (`[roles.<role>] scopes = [...]`).
pub type RoleScopes = BTreeMap<String, Vec<String>>;

/// The union of `roles`' scopes in a stable order (sorted, no duplicates),
/// narrowed to `requested` when the client asked for fewer. A requested
/// scope the roles do not grant is dropped, not an error: the token says
/// what was granted (RFC 6749 §3.3).
pub fn grant_scope(
    role_scopes: &RoleScopes,
    roles: &[String],
    requested: Option<&[String]>,
) -> Vec<String> {
    let mut granted: Vec<String> = roles
        .iter()
        .filter_map(|r| role_scopes.get(r))
        .flatten()
        .cloned()
        .collect();
    granted.sort();
    granted.dedup();
    if let Some(asked) = requested {
        granted.retain(|s| asked.contains(s));
    }
    granted
}
