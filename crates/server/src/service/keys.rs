//! JWT signing keys, shared by every replica through the database: the
//! private halves sealed under the encryption key, generated on first
//! start, rotated with a pre-publication delay, retired while their tokens
//! can still be alive, re-sealed by `tessera keys rekey`.
//!
//! Signing and verifying are hot paths: they read an in-memory snapshot
//! (swapped whole, never locked across `.await`), which a background task
//! reloads; a token with a key id the snapshot lacks triggers one reload,
//! at most once a second.

use std::{
    sync::{Arc, Mutex, RwLock},
    time::{Duration as StdDuration, Instant},
};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use tessera_core::{
    audit::{Actor, AuditEntry, RequestContext},
    crypto::Keyring,
    error::Entity,
    jwt::{
        jwks,
        keyset::{self, KeyRecord},
        AccessClaims, Algorithm, JwtError, PublicKey, SigningKey, Verifier,
    },
    token_format::TokenHash,
    DomainError,
};
use tessera_store::{Store, StoredSigningKey};
use utoipa::ToSchema;

use super::{signatures::SignatureCache, ServiceError};
use crate::config::AuthSettings;

/// The encryption context of sealed private keys.
const PRIVATE_CONTEXT: &str = "signing_keys.private";
/// How often an unknown `kid` may trigger a reload.
const RELOAD_AT_MOST_EVERY: StdDuration = StdDuration::from_secs(1);

/// One key as `tessera keys list` and the API show it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct KeyView {
    pub kid: String,
    pub algorithm: String,
    /// `pending` (published, not signing yet), `signing`, `published`
    /// (a newer key signs), `retired` (published until `publish_until`),
    /// `expired` (no longer published).
    pub state: &'static str,
    pub created_at: DateTime<Utc>,
    pub signs_from: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish_until: Option<DateTime<Utc>>,
}

/// What `keys rekey` did.
#[derive(Debug, Serialize)]
pub struct KeyRekeyReport {
    pub resealed: usize,
    pub key_id: String,
}

/// A loaded set of keys: the openable private keys, the verifier and the
/// JWKS text.
struct Snapshot {
    records: Vec<KeyRecord>,
    signers: Vec<SigningKey>,
    verifier: Verifier,
    jwks: String,
    /// Changes whenever the published key ids change: a cached signature
    /// counts only under the epoch that verified it.
    epoch: u64,
}

pub struct KeyService {
    store: Arc<dyn Store>,
    keyring: Keyring,
    settings: AuthSettings,
    snapshot: RwLock<Arc<Snapshot>>,
    last_reload: Mutex<Instant>,
    signatures: SignatureCache,
}

fn record(k: &StoredSigningKey) -> Option<KeyRecord> {
    Some(KeyRecord {
        kid: k.kid.clone(),
        alg: k.algorithm.parse().ok()?,
        created_at: k.created_at,
        signs_from: k.signs_from,
        retired_at: k.retired_at,
        publish_until: k.publish_until,
    })
}

impl KeyService {
    /// Loads the keys, generating the first one when there is none.
    pub async fn open(
        store: Arc<dyn Store>,
        keyring: Keyring,
        settings: AuthSettings,
    ) -> Result<Self, ServiceError> {
        let empty = Snapshot {
            records: vec![],
            signers: vec![],
            verifier: Verifier::new(vec![], settings.issuer.clone(), settings.audience.clone()),
            jwks: jwks(&[]).to_string(),
            epoch: 0,
        };
        let service = Self {
            store,
            keyring,
            settings,
            snapshot: RwLock::new(Arc::new(empty)),
            last_reload: Mutex::new(Instant::now()),
            signatures: SignatureCache::default(),
        };
        service.ensure_a_key().await?;
        service.reload().await?;
        Ok(service)
    }

    fn current(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .expect("the key snapshot lock is never poisoned")
            .clone()
    }

    /// The first start creates a key that signs at once (no verifier can
    /// be missing an earlier one). Concurrent replicas serialise on the
    /// table lock, so exactly one key is created.
    async fn ensure_a_key(&self) -> Result<(), ServiceError> {
        if !self.store.signing_keys().await?.is_empty() {
            return Ok(());
        }
        let mut tx = self.store.begin_write().await?;
        if tx.lock_signing_keys().await?.is_empty() {
            let now = tessera_core::ids::now();
            let stored = self.new_key(now, now);
            tx.insert_signing_key(&stored).await?;
            let audit = key_audit(
                &Actor::System,
                "signing_key.create",
                &stored.kid,
                &RequestContext::default(),
            );
            tx.append_audit(&[audit]).await?;
            tx.commit().await?;
            tracing::info!(kid = %stored.kid, "generated the first JWT signing key");
        }
        Ok(())
    }

    fn new_key(&self, now: DateTime<Utc>, signs_from: DateTime<Utc>) -> StoredSigningKey {
        let key = SigningKey::generate(self.settings.signing_algorithm);
        StoredSigningKey {
            kid: key.kid().to_string(),
            algorithm: key.algorithm().as_str().to_string(),
            private_sealed: self.keyring.seal(&key.private_bytes(), PRIVATE_CONTEXT),
            key_id: self.keyring.current_key_id().to_string(),
            public_jwk: key.public_key().to_jwk(),
            created_at: now,
            signs_from,
            retired_at: None,
            publish_until: None,
        }
    }

    /// Reads the keys again and swaps the snapshot.
    pub async fn reload(&self) -> Result<(), ServiceError> {
        let stored = self.store.signing_keys().await?;
        let now = Utc::now();
        let records: Vec<KeyRecord> = stored.iter().filter_map(record).collect();
        let published: Vec<&str> = keyset::published_at(&records, now)
            .into_iter()
            .map(|r| r.kid.as_str())
            .collect();
        let mut publics = Vec::new();
        let mut signers = Vec::new();
        for k in &stored {
            if !published.contains(&k.kid.as_str()) {
                continue;
            }
            match PublicKey::from_jwk(&k.public_jwk) {
                Ok(p) => publics.push(p),
                Err(e) => {
                    tracing::error!(kid = %k.kid, error = %e, "a stored public key does not load")
                }
            }
            // A key retired at a future time (the one a rotation replaces)
            // still signs until then.
            if k.retired_at.is_none_or(|r| r > now) {
                match self.open_private(k) {
                    Some(s) => signers.push(s),
                    None => {
                        tracing::error!(kid = %k.kid, "a stored signing key cannot be opened with the configured encryption keys")
                    }
                }
            }
        }
        let verifier = Verifier::new(
            publics.clone(),
            self.settings.issuer.clone(),
            self.settings.audience.clone(),
        );
        let mut current = self.snapshot.write().expect("never poisoned");
        let same_keys = current.verifier.kids().eq(verifier.kids());
        let epoch = current.epoch + u64::from(!same_keys);
        *current = Arc::new(Snapshot {
            records,
            signers,
            verifier,
            jwks: jwks(&publics).to_string(),
            epoch,
        });
        Ok(())
    }

    fn open_private(&self, k: &StoredSigningKey) -> Option<SigningKey> {
        let alg: Algorithm = k.algorithm.parse().ok()?;
        let der = self.keyring.open(&k.private_sealed, PRIVATE_CONTEXT).ok()?;
        SigningKey::from_private_bytes(&k.kid, alg, &der).ok()
    }

    /// Signs with the key that signs at `now`.
    pub fn sign(&self, claims: &AccessClaims, now: DateTime<Utc>) -> Result<String, ServiceError> {
        let snap = self.current();
        let kid = keyset::signing_key_at(&snap.records, now).map(|r| r.kid.as_str());
        let signer = kid
            .and_then(|kid| snap.signers.iter().find(|s| s.kid() == kid))
            .ok_or(DomainError::NotConfigured {
                feature: "access tokens",
                variable: "TESSERA_ENC_KEY (no signing key can be opened)",
            })?;
        // A key that opened but cannot sign is a bug, not the client's
        // business: a 500 with the cause in the log.
        signer.sign(claims).map_err(|e| {
            tracing::error!(error = %e, "signing an access token failed");
            ServiceError::Internal(tessera_store::StoreError::Corrupt(format!(
                "signing key {}: {e}",
                signer.kid()
            )))
        })
    }

    /// The claims of a valid access token (signature, times, issuer,
    /// audience); `None` otherwise. The session is checked by the caller.
    /// A signature verified before under the same published keys is not
    /// checked again; the claims are, every time.
    pub async fn verify(&self, token: &str, now: DateTime<Utc>) -> Option<AccessClaims> {
        if token.len() > tessera_core::jwt::verify::MAX_TOKEN_LEN {
            return None;
        }
        let hash = TokenHash::of(token);
        let snap = self.current();
        if let Some(claims) = self.signatures.get(&hash, snap.epoch) {
            snap.verifier.check_claims(&claims, now.timestamp()).ok()?;
            return Some((*claims).clone());
        }
        let (claims, epoch) = match snap.verifier.verify(token, now.timestamp()) {
            Ok(claims) => (claims, snap.epoch),
            Err(JwtError::UnknownKey) if self.may_reload() => {
                // Another replica may have rotated a key in.
                self.reload().await.ok()?;
                let snap = self.current();
                (
                    snap.verifier.verify(token, now.timestamp()).ok()?,
                    snap.epoch,
                )
            }
            Err(_) => return None,
        };
        self.signatures.insert(&hash, claims.clone(), epoch);
        Some(claims)
    }

    fn may_reload(&self) -> bool {
        let mut last = self.last_reload.lock().expect("never poisoned");
        if last.elapsed() >= RELOAD_AT_MOST_EVERY {
            *last = Instant::now();
            true
        } else {
            false
        }
    }

    /// The JWKS document as served.
    pub fn jwks_json(&self) -> String {
        self.current().jwks.clone()
    }

    pub fn jwks_max_age(&self) -> StdDuration {
        self.settings.jwks_max_age
    }

    /// How often a serving process reloads the keys: a quarter of the
    /// pre-publication delay, between 1 s and 60 s, so a key rotated in by
    /// another process is published here well before it signs.
    pub fn reload_interval(&self) -> StdDuration {
        (self.settings.key_prepublish / 4)
            .clamp(StdDuration::from_secs(1), StdDuration::from_secs(60))
    }

    /// Reloads every `every` until the task is dropped: keys rotated on
    /// other replicas are published and used here too.
    pub fn spawn_reloader(self: &Arc<Self>, every: StdDuration) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = this.reload().await {
                    tracing::warn!(error = %e, "could not reload the signing keys");
                }
            }
        })
    }

    pub async fn list(&self) -> Result<Vec<KeyView>, ServiceError> {
        let now = Utc::now();
        let stored = self.store.signing_keys().await?;
        let records: Vec<KeyRecord> = stored.iter().filter_map(record).collect();
        let signing = keyset::signing_key_at(&records, now).map(|r| r.kid.clone());
        Ok(stored
            .iter()
            .map(|k| KeyView {
                kid: k.kid.clone(),
                algorithm: k.algorithm.clone(),
                state: key_state(k, signing.as_deref(), now),
                created_at: k.created_at,
                signs_from: k.signs_from,
                retired_at: k.retired_at,
                publish_until: k.publish_until,
            })
            .collect())
    }

    /// Adds a key: published at once, signing after the pre-publication
    /// delay. Keys that sign until then are retired when it starts, and
    /// stay published until their last token has expired.
    pub async fn rotate(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<KeyView, ServiceError> {
        let now = tessera_core::ids::now();
        let prepublish = chrono::Duration::from_std(self.settings.key_prepublish)
            .unwrap_or_else(|_| chrono::Duration::zero());
        let signs_from = keyset::rotate_plan(now, prepublish);
        let mut tx = self.store.begin_write().await?;
        let existing = tx.lock_signing_keys().await?;
        for mut old in existing.into_iter().filter(|k| k.retired_at.is_none()) {
            old.retired_at = Some(signs_from);
            old.publish_until = Some(signs_from + self.token_lifetime());
            tx.update_signing_key(&old).await?;
        }
        let stored = self.new_key(now, signs_from);
        tx.insert_signing_key(&stored).await?;
        tx.append_audit(&[key_audit(actor, "signing_key.rotate", &stored.kid, ctx)])
            .await?;
        tx.commit().await?;
        self.reload().await?;
        Ok(self
            .list()
            .await?
            .into_iter()
            .find(|k| k.kid == stored.kid)
            .expect("just inserted"))
    }

    /// The longest a token signed now may be accepted: its lifetime plus
    /// the verifiers' leeway.
    fn token_lifetime(&self) -> chrono::Duration {
        self.settings.lifetimes.access
            + chrono::Duration::seconds(tessera_core::jwt::DEFAULT_LEEWAY_SECS)
    }

    /// Stops a key signing now (it stays published while its tokens live).
    /// The one key that can sign cannot be retired: rotate first.
    pub async fn retire(
        &self,
        kid: &str,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<KeyView, ServiceError> {
        let now = tessera_core::ids::now();
        let mut tx = self.store.begin_write().await?;
        let keys = tx.lock_signing_keys().await?;
        let mut key = keys
            .iter()
            .find(|k| k.kid == kid)
            .cloned()
            .ok_or(DomainError::NotFound(Entity::SigningKey))?;
        if key.retired_at.is_some_and(|r| r <= now) {
            return Err(DomainError::SigningKeyState("the key is already retired").into());
        }
        let others = keys
            .iter()
            .filter(|k| k.kid != kid && k.retired_at.is_none_or(|r| r > now))
            .count();
        if others == 0 {
            return Err(DomainError::SigningKeyState(
                "it is the only key that can sign; rotate first, then retire it",
            )
            .into());
        }
        key.retired_at = Some(now);
        key.publish_until = Some(now + self.token_lifetime());
        tx.update_signing_key(&key).await?;
        tx.append_audit(&[key_audit(actor, "signing_key.retire", kid, ctx)])
            .await?;
        tx.commit().await?;
        self.reload().await?;
        Ok(self
            .list()
            .await?
            .into_iter()
            .find(|k| k.kid == kid)
            .expect("exists"))
    }

    /// Re-seals every private key under the current encryption key
    /// (after `TESSERA_ENC_KEY` rotated). Idempotent; audited.
    pub async fn rekey(&self, actor: &Actor) -> Result<KeyRekeyReport, ServiceError> {
        let mut tx = self.store.begin_write().await?;
        let mut resealed = 0;
        for mut k in tx.lock_signing_keys().await? {
            if k.key_id == self.keyring.current_key_id() {
                continue;
            }
            let der = self
                .keyring
                .open(&k.private_sealed, PRIVATE_CONTEXT)
                .map_err(|_| DomainError::NotConfigured {
                    feature: "signing key re-keying",
                    variable: "TESSERA_ENC_KEY_PREVIOUS (the key that sealed them)",
                })?;
            k.private_sealed = self.keyring.seal(&der, PRIVATE_CONTEXT);
            k.key_id = self.keyring.current_key_id().to_string();
            tx.update_signing_key(&k).await?;
            resealed += 1;
        }
        let audit = AuditEntry {
            target_id: None,
            ..AuditEntry::success(
                actor,
                "signing_key.rekey",
                "signing_key",
                "",
                json!({ "resealed": resealed }),
                &RequestContext::default(),
            )
        };
        tx.append_audit(&[audit]).await?;
        tx.commit().await?;
        self.reload().await?;
        Ok(KeyRekeyReport {
            resealed,
            key_id: self.keyring.current_key_id().to_string(),
        })
    }
}

fn key_state(k: &StoredSigningKey, signing: Option<&str>, now: DateTime<Utc>) -> &'static str {
    if signing == Some(k.kid.as_str()) {
        "signing"
    } else if k.retired_at.is_some_and(|r| r <= now) {
        if k.publish_until.is_some_and(|u| u > now) {
            "retired"
        } else {
            "expired"
        }
    } else if k.signs_from > now {
        "pending"
    } else {
        "published"
    }
}

fn key_audit(actor: &Actor, action: &'static str, kid: &str, ctx: &RequestContext) -> AuditEntry {
    AuditEntry::success(
        actor,
        action,
        "signing_key",
        kid,
        json!({ "kid": kid }),
        ctx,
    )
}
