//! Settings for the clients that ask Tessera about tokens: the static
//! clients of `INTROSPECTION_CLIENTS`, the certificate CNs allowed to
//! authenticate by mutual TLS, the failure limit of client authentication,
//! the WebSocket ticket lifetime, and where Tessera's own TLS listener
//! finds its certificate, key, client CA and CRL.

use std::{collections::BTreeSet, path::PathBuf, time::Duration};

use tessera_core::{
    client::{is_valid_client_id, MIN_STATIC_SECRET_LEN},
    SecretString,
};

use super::layers::{err, list, number, parse_duration, ConfigError, Layers};

/// A client defined by `INTROSPECTION_CLIENTS`.
#[derive(Debug, Clone)]
pub struct StaticClient {
    pub id: String,
    /// Never logged; `Debug` redacts it.
    pub secret: SecretString,
}

#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// `INTROSPECTION_CLIENTS`: `clientId:clientSecret,…`.
    pub static_clients: Vec<StaticClient>,
    /// `INTROSPECTION_MTLS_ALLOWED_CNS`: exact, case-sensitive CNs.
    pub mtls_allowed_cns: BTreeSet<String>,
    /// Failed client authentications per client IP per minute.
    pub auth_failure_limit_per_minute: u32,
    /// `TESSERA_WS_TICKET_TTL` (5-300 s, default 30 s).
    pub ws_ticket_ttl: Duration,
    /// Whether client certificates can reach Tessera at all (it terminates
    /// TLS with `TESSERA_TLS_CLIENT_CA`): only then is `tls_client_auth`
    /// advertised.
    pub client_certificates: bool,
}

impl ClientSettings {
    /// What is set but cannot work: allowed CNs without a client CA (behind
    /// a TLS-terminating proxy, say) authenticate nobody.
    pub fn warnings(&self) -> Vec<String> {
        if !self.mtls_allowed_cns.is_empty() && !self.client_certificates {
            vec![
                "INTROSPECTION_MTLS_ALLOWED_CNS is set but TESSERA_TLS_CLIENT_CA is not: no \
                  client certificate reaches Tessera, so those clients cannot authenticate by \
                  mutual TLS (it needs Tessera to terminate TLS itself)"
                    .to_string(),
            ]
        } else {
            Vec::new()
        }
    }
}

/// `TESSERA_TLS_*`: Tessera terminates TLS itself when cert and key are set.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// A CA dedicated to client certificates: request (not require) one.
    pub client_ca: Option<PathBuf>,
    /// A CRL (PEM or DER) checked for client certificates.
    pub client_crl: Option<PathBuf>,
    /// `TESSERA_TLS_HANDSHAKE_TIMEOUT` (default 10 s, 1-60 s): a client that
    /// opens a connection and never finishes the handshake is dropped then.
    pub handshake_timeout: Duration,
}

/// `id:secret,id:secret`. The message never repeats a secret, only the
/// position (and the id, which is not secret).
fn static_clients(v: &str) -> Result<Vec<StaticClient>, String> {
    let mut out: Vec<StaticClient> = Vec::new();
    for (n, entry) in v.split(',').map(str::trim).enumerate() {
        if entry.is_empty() {
            continue;
        }
        let position = n + 1;
        let Some((id, secret)) = entry.split_once(':') else {
            return Err(format!(
                "entry {position} is not clientId:clientSecret (entries are separated by commas)"
            ));
        };
        let id = id.trim();
        if !is_valid_client_id(id) || id.contains(':') || id.starts_with("mtls") {
            return Err(format!(
                "entry {position}: the client id must be 1-128 characters of A-Z a-z 0-9 . _ - \
                 (and not start with mtls)"
            ));
        }
        if secret.chars().count() < MIN_STATIC_SECRET_LEN {
            return Err(format!(
                "entry {position} (client {id}): the secret must be at least \
                 {MIN_STATIC_SECRET_LEN} characters"
            ));
        }
        if out.iter().any(|c| c.id == id) {
            return Err(format!("client {id} is listed twice"));
        }
        out.push(StaticClient {
            id: id.to_string(),
            secret: SecretString::new(secret.to_string()),
        });
    }
    Ok(out)
}

/// Exact CNs, comma-separated; an entry may not be blank inside the list.
fn allowed_cns(v: &str) -> Result<BTreeSet<String>, String> {
    let mut out = BTreeSet::new();
    for cn in list(v) {
        if cn.len() > 64 || cn.chars().any(char::is_control) {
            return Err("a CN is at most 64 characters with no control characters".into());
        }
        out.insert(cn);
    }
    Ok(out)
}

fn ws_ticket_ttl(v: &str) -> Result<Duration, String> {
    let d = match v.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => parse_duration(v)?,
    };
    if !(5..=300).contains(&d.as_secs()) {
        return Err("must be 5-300 seconds".into());
    }
    Ok(d)
}

pub(super) fn client_settings(l: &Layers) -> Result<ClientSettings, ConfigError> {
    Ok(ClientSettings {
        static_clients: l.parse("clients.static", Vec::new(), static_clients)?,
        mtls_allowed_cns: l.parse("clients.mtls_allowed_cns", BTreeSet::new(), allowed_cns)?,
        auth_failure_limit_per_minute: l.parse(
            "clients.auth_failure_limit_per_minute",
            20,
            |v| number(v, 1, 100_000),
        )?,
        ws_ticket_ttl: l.parse(
            "clients.ws_ticket_ttl",
            Duration::from_secs(30),
            ws_ticket_ttl,
        )?,
        client_certificates: path(l, "tls.client_ca").is_some(),
    })
}

fn handshake_timeout(v: &str) -> Result<Duration, String> {
    let d = parse_duration(v)?;
    if !(Duration::from_secs(1)..=Duration::from_secs(60)).contains(&d) {
        return Err("must be 1-60 seconds".into());
    }
    Ok(d)
}

fn path(l: &Layers, key: &str) -> Option<(PathBuf, String)> {
    l.get(key)
        .filter(|(v, _)| !v.trim().is_empty())
        .map(|(v, src)| (PathBuf::from(v.trim()), src.to_string()))
}

/// `None` unless both a certificate and a key are set; one without the
/// other, or a client CA or CRL without them, stops start-up.
pub(super) fn tls_settings(l: &Layers) -> Result<Option<TlsSettings>, ConfigError> {
    let cert = path(l, "tls.cert");
    let key = path(l, "tls.key");
    let client_ca = path(l, "tls.client_ca");
    let client_crl = path(l, "tls.client_crl");
    match (cert, key) {
        (Some((cert, _)), Some((key, _))) => {
            if let (None, Some((_, src))) = (&client_ca, &client_crl) {
                return Err(err(src, "needs TESSERA_TLS_CLIENT_CA as well"));
            }
            Ok(Some(TlsSettings {
                cert,
                key,
                client_ca: client_ca.map(|(p, _)| p),
                client_crl: client_crl.map(|(p, _)| p),
                handshake_timeout: l.parse(
                    "tls.handshake_timeout",
                    Duration::from_secs(10),
                    handshake_timeout,
                )?,
            }))
        }
        (Some((_, src)), None) => Err(err(src, "needs TESSERA_TLS_KEY as well")),
        (None, Some((_, src))) => Err(err(src, "needs TESSERA_TLS_CERT as well")),
        (None, None) => match client_ca.or(client_crl) {
            Some((_, src)) => Err(err(
                src,
                "needs TESSERA_TLS_CERT and TESSERA_TLS_KEY (Tessera must terminate TLS itself)",
            )),
            None => Ok(None),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_clients_parse_and_refuse_without_echoing_secrets() {
        let c = static_clients("api:0123456789abcdef, gw:fedcba9876543210xx").unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[1].id, "gw");
        let e = static_clients("api:short-secret").unwrap_err();
        assert!(
            e.contains("at least 16") && !e.contains("short-secret"),
            "{e}"
        );
        let e = static_clients("no-colon-here-0123456789").unwrap_err();
        assert!(!e.contains("0123456789"), "{e}");
        assert!(static_clients("a:0123456789abcdef,a:0123456789abcdef").is_err());
        // A secret may itself contain a colon.
        let c = static_clients("api:0123:456789abcdef").unwrap();
        assert_eq!(c[0].secret.expose(), "0123:456789abcdef");
    }

    #[test]
    fn ticket_ttl_bounds() {
        assert_eq!(ws_ticket_ttl("30").unwrap(), Duration::from_secs(30));
        assert!(ws_ticket_ttl("4").is_err());
        assert!(ws_ticket_ttl("301").is_err());
        assert_eq!(ws_ticket_ttl("2m").unwrap(), Duration::from_secs(120));
    }
}
