//! What a caller presented to authenticate as a client, as the HTTP layer
//! found it: a verified peer certificate and/or one id-and-secret pair, and
//! the caller's address (failures are rate limited per client IP).

use std::net::IpAddr;

use tessera_core::{
    client::{is_valid_client_id, AuthMethod, PeerCertificate},
    SecretString,
};

/// An id and secret from `Authorization: Basic` or the form.
#[derive(Debug, Clone)]
pub struct ClientSecret {
    pub method: AuthMethod,
    pub client_id: String,
    pub secret: SecretString,
    /// Basic credentials exactly as sent, when form-decoding changed them:
    /// RFC 6749 asks clients to form-encode id and secret, and many (curl
    /// `-u`, most HTTP libraries) do not, so a secret with `+` or `%` is
    /// checked both ways.
    pub as_sent: Option<SecretString>,
}

#[derive(Debug, Clone)]
pub enum PresentedSecret {
    None,
    /// Unparsable Basic credentials, an id without a secret (or the
    /// reverse), an invalid id, or both Basic and form credentials.
    Malformed,
    Valid(ClientSecret),
}

#[derive(Debug, Clone)]
pub struct ClientCredentials {
    pub certificate: Option<PeerCertificate>,
    pub secret: PresentedSecret,
    /// The caller's address as the HTTP layer resolved it (trusted proxies
    /// applied); `None` only where there is no connection (tests).
    pub client_ip: Option<IpAddr>,
}

impl ClientCredentials {
    /// Builds credentials from a decoded Basic pair and the form's
    /// `client_id` / `client_secret`. RFC 6749 §2.3: one method per request.
    pub fn new(
        certificate: Option<PeerCertificate>,
        basic: Option<Result<(String, SecretString), ()>>,
        form_id: Option<String>,
        form_secret: Option<SecretString>,
    ) -> Self {
        let secret = match (basic, form_id, form_secret) {
            (None, None, None) => PresentedSecret::None,
            (Some(Ok((id, secret))), None, None) => {
                valid(AuthMethod::ClientSecretBasic, id, secret)
            }
            // Some libraries repeat the Basic client id in the form; the
            // same id names the same client (a form secret would be a
            // second method, and is refused below).
            (Some(Ok((id, secret))), Some(form_id), None) if form_id == id => {
                valid(AuthMethod::ClientSecretBasic, id, secret)
            }
            (None, Some(id), Some(secret)) => valid(AuthMethod::ClientSecretPost, id, secret),
            // A bare form `client_id` beside a certificate names the
            // certificate's client (RFC 8705 §2); it proves nothing itself.
            (None, Some(_), None) if certificate.is_some() => PresentedSecret::None,
            _ => PresentedSecret::Malformed,
        };
        Self {
            certificate,
            secret,
            client_ip: None,
        }
    }

    /// The Basic secret as sent, when it differs from its decoded form.
    pub fn with_basic_secret_as_sent(mut self, raw: Option<SecretString>) -> Self {
        if let PresentedSecret::Valid(s) = &mut self.secret {
            if s.method == AuthMethod::ClientSecretBasic {
                s.as_sent = raw.filter(|r| r.expose() != s.secret.expose());
            }
        }
        self
    }

    /// The same credentials, from `ip` (the key of the failure limit).
    pub fn with_client_ip(mut self, ip: Option<IpAddr>) -> Self {
        self.client_ip = ip;
        self
    }

    /// The method the caller attempted, for metrics and logs.
    pub fn method(&self) -> AuthMethod {
        match &self.secret {
            PresentedSecret::Valid(s) => s.method,
            _ if self.certificate.is_some() => AuthMethod::TlsClientAuth,
            PresentedSecret::Malformed => AuthMethod::ClientSecretBasic,
            PresentedSecret::None => AuthMethod::None,
        }
    }

    /// The client id the caller claimed (not secret; logged on failure).
    pub fn claimed_id(&self) -> Option<&str> {
        match &self.secret {
            PresentedSecret::Valid(s) => Some(&s.client_id),
            _ => None,
        }
    }
}

fn valid(method: AuthMethod, client_id: String, secret: SecretString) -> PresentedSecret {
    if is_valid_client_id(&client_id) && !secret.expose().is_empty() {
        PresentedSecret::Valid(ClientSecret {
            method,
            client_id,
            secret,
            as_sent: None,
        })
    } else {
        PresentedSecret::Malformed
    }
}
