//! Request and response bodies of the OAuth2 client registry API.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tessera_core::SecretString;
use tessera_core::{client::Capability, client_registry::ClientView};
use utoipa::{IntoParams, ToSchema};

use crate::service::clients::{CreateClient, UpdateClient};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateClientRequest {
    /// A name for people: 1-200 printable characters.
    #[schema(
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069]*[^\s\x00-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069][^\x00-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069]*$"
    )]
    pub name: String,
    /// What the client may do (at least one; duplicates are merged).
    #[schema(min_items = 1, max_items = 16, value_type = Vec<Capability>)]
    pub capabilities: Vec<String>,
    /// The audiences whose tokens it may introspect; omit for any.
    #[schema(min_items = 1, max_items = 32, value_type = Option<Vec<AudienceName>>)]
    pub audiences: Option<Vec<String>>,
    /// Networks (CIDR) the client may authenticate from; omit for any.
    #[schema(max_items = 100)]
    pub ip_allow: Option<Vec<String>>,
    /// Networks it may never authenticate from (wins over `ip_allow`).
    #[schema(max_items = 100)]
    pub ip_deny: Option<Vec<String>>,
}

impl From<CreateClientRequest> for CreateClient {
    fn from(r: CreateClientRequest) -> Self {
        Self {
            name: r.name,
            capabilities: r.capabilities,
            audiences: r.audiences,
            ip_allow: r.ip_allow,
            ip_deny: r.ip_deny,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateClientRequest {
    #[schema(
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069]*[^\s\x00-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069][^\x00-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069]*$"
    )]
    pub name: Option<String>,
    #[schema(min_items = 1, max_items = 16, value_type = Option<Vec<Capability>>)]
    pub capabilities: Option<Vec<String>>,
    /// `null` lets the client see every audience.
    #[serde(default, deserialize_with = "crate::http::extract::double_option")]
    #[schema(min_items = 1, max_items = 32, value_type = Option<Vec<AudienceName>>)]
    pub audiences: Option<Option<Vec<String>>>,
    /// Replaces the allow list (`[]`: any address).
    #[schema(max_items = 100)]
    pub ip_allow: Option<Vec<String>>,
    /// Replaces the deny list.
    #[schema(max_items = 100)]
    pub ip_deny: Option<Vec<String>>,
}

impl From<UpdateClientRequest> for UpdateClient {
    fn from(r: UpdateClientRequest) -> Self {
        Self {
            name: r.name,
            capabilities: r.capabilities,
            audiences: r.audiences,
            ip_allow: r.ip_allow,
            ip_deny: r.ip_deny,
        }
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateClientSecretRequest {
    /// How long the current secret keeps working: 0 (default) to 604800
    /// seconds (7 days).
    #[schema(minimum = 0, maximum = 604800)]
    #[serde(default, deserialize_with = "crate::http::extract::integral")]
    pub grace_seconds: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListClientsQuery {
    /// 1-200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    #[param(max_length = 35, pattern = "^cl_[0-9a-f]{32}$")]
    pub cursor: Option<String>,
}

/// A client and its secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedClient {
    pub client: ClientView,
    /// The client secret (`tsc_…`): store it now, it is never shown again.
    #[schema(value_type = String)]
    #[serde(serialize_with = "tessera_core::secret::serialize_exposed")]
    pub client_secret: SecretString,
}

/// A rotated secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedClientSecret {
    pub client: ClientView,
    /// The new secret (`tsc_…`): store it now, it is never shown again.
    #[schema(value_type = String)]
    #[serde(serialize_with = "tessera_core::secret::serialize_exposed")]
    pub client_secret: SecretString,
    /// Until when the previous secret keeps working; `null` when it
    /// stopped at once.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
}

/// A page of clients: those of `INTROSPECTION_CLIENTS` first (on the first
/// page, `source: environment`), then the registry's, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientPageBody {
    pub items: Vec<ClientView>,
    pub next_cursor: Option<String>,
}

/// An audience: 1-256 visible ASCII characters.
#[derive(ToSchema)]
#[schema(pattern = r"^[!-~]{1,256}$")]
#[allow(dead_code)]
pub struct AudienceName(String);
