//! The storage suite: every test runs on SQLite and on PostgreSQL.

use std::sync::Arc;
use tessera_core::error::Entity;

use chrono::{Duration, Utc};
use serde_json::json;
use tessera_core::{
    api_token::{ApiToken, TokenState},
    audit::{Actor, AuditEntry, RequestContext},
    event::OutboxEvent,
    ids::new_id,
    token_format::{TokenFormat, TokenHash},
};
use tessera_store::{NewToken, SecretChange, Store, TokenChange, TokenQuery, UsageUpdate};
use tessera_test_support::TestDb;

fn audit(action: &'static str, id: &str) -> AuditEntry {
    AuditEntry::success(
        &Actor::Cli,
        action,
        "api_token",
        id,
        json!({}),
        &RequestContext::default(),
    )
}

async fn create(store: &Arc<dyn Store>, owner: &str) -> (ApiToken, TokenHash) {
    let now = Utc::now();
    let generated = TokenFormat::default().generate();
    let token = ApiToken::new(new_id(), "ci", vec!["read".into()], now)
        .with_owner(Some(owner.into()))
        .with_hint(generated.hint.clone())
        .with_metadata(json!({"team": "infra"}).as_object().unwrap().clone())
        .with_expiry(Some(now + Duration::days(1)));
    store
        .create_token(
            &NewToken {
                token: token.clone(),
                secret_hash: generated.hash,
            },
            &audit("create", &token.id),
            &[OutboxEvent::token_created(
                &token.id,
                &generated.hash.to_hex(),
            )],
        )
        .await
        .unwrap();
    (token, generated.hash)
}

/// The locked read-modify-write every token change goes through: one
/// `WriteTx` that locks the token, applies `rule`, writes the change with its
/// audit row and events, and commits (`Ok(None)`: nothing written).
async fn modify_token(
    store: &Arc<dyn Store>,
    id: &str,
    rule: impl FnOnce(&ApiToken) -> Result<Option<TokenChange>, tessera_core::DomainError>,
) -> Result<ApiToken, tessera_store::StoreError> {
    let mut tx = store.begin_write().await?;
    let current = tx
        .lock_token(id)
        .await?
        .ok_or(tessera_core::DomainError::NotFound(Entity::Token))?;
    let Some(change) = rule(&current)? else {
        return Ok(current);
    };
    tx.write_token_change(&change).await?;
    tx.commit().await?;
    Ok(change.token)
}

fn rotation(
    new_hash: TokenHash,
    grace: Option<chrono::DateTime<Utc>>,
) -> impl FnOnce(&ApiToken) -> Result<Option<TokenChange>, tessera_core::DomainError> {
    move |current: &ApiToken| {
        current.check_rotatable(Utc::now())?;
        let mut t = current.clone();
        t.updated_at = Utc::now();
        Ok(Some(TokenChange {
            audit: audit("rotate", &t.id),
            events: vec![OutboxEvent::token_rotated(&t.id, &t.id)],
            token: t,
            secrets: SecretChange::Rotate {
                new_hash,
                old_valid_until: grace,
            },
        }))
    }
}

async fn create_and_find_by_secret(db: TestDb) {
    let (token, hash) = create(&db.store, "svc").await;
    let found = db.store.find_token_by_secret(&hash).await.unwrap().unwrap();
    assert_eq!(found.token.id, token.id);
    assert_eq!(found.token.metadata, token.metadata);
    assert_eq!(found.valid_until, None);
    assert!(db
        .store
        .find_token_by_secret(&TokenHash::of("nope"))
        .await
        .unwrap()
        .is_none());
    let events = db.store.pending_events(10).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, "created");
    assert_eq!(
        db.store
            .audit_for_target(&token.id, 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn rotation_without_grace_replaces_the_secret(db: TestDb) {
    let (token, old) = create(&db.store, "svc").await;
    let new = TokenHash::of("new-secret");
    modify_token(&db.store, &token.id, rotation(new, None))
        .await
        .unwrap();
    assert!(db.store.find_token_by_secret(&old).await.unwrap().is_none());
    assert!(db.store.find_token_by_secret(&new).await.unwrap().is_some());
}

async fn rotation_with_grace_keeps_the_old_secret_until_it_ends(db: TestDb) {
    let (token, old) = create(&db.store, "svc").await;
    let until = Utc::now() + Duration::minutes(5);
    let new = TokenHash::of("new-secret");
    modify_token(&db.store, &token.id, rotation(new, Some(until)))
        .await
        .unwrap();
    let m = db.store.find_token_by_secret(&old).await.unwrap().unwrap();
    assert_eq!(
        m.valid_until.unwrap().timestamp_millis(),
        until.timestamp_millis()
    );
    assert_eq!(
        db.store
            .find_token_by_secret(&new)
            .await
            .unwrap()
            .unwrap()
            .valid_until,
        None
    );
}

async fn fifty_parallel_rotations_leave_one_secret(db: TestDb) {
    let (token, _) = create(&db.store, "svc").await;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let store = db.store.clone();
        let id = token.id.clone();
        tasks.push(tokio::spawn(async move {
            let h = TokenHash::of(&format!("secret-{i}"));
            modify_token(&store, &id, rotation(h, None))
                .await
                .map(|_| h)
        }));
    }
    let mut hashes = Vec::new();
    for t in tasks {
        hashes.push(t.await.unwrap().expect("every rotation succeeds"));
    }
    let mut valid = 0;
    for h in &hashes {
        if db.store.find_token_by_secret(h).await.unwrap().is_some() {
            valid += 1;
        }
    }
    assert_eq!(valid, 1);
}

async fn mutation_errors_roll_back_and_missing_ids_are_not_found(db: TestDb) {
    let (token, hash) = create(&db.store, "svc").await;
    let err = modify_token(&db.store, &token.id, |_t: &ApiToken| {
        Err(tessera_core::DomainError::invalid("x", "no"))
    })
    .await
    .unwrap_err();
    assert!(matches!(err, tessera_store::StoreError::Domain(_)));
    assert!(db
        .store
        .find_token_by_secret(&hash)
        .await
        .unwrap()
        .is_some());
    let err = modify_token(&db.store, &new_id(), rotation(TokenHash::of("x"), None))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        tessera_store::StoreError::Domain(tessera_core::DomainError::NotFound(_))
    ));
}

async fn listing_filters_and_paginates(db: TestDb) {
    let owner = new_id();
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(create(&db.store, &owner).await.0.id);
    }
    // Revoke the oldest one.
    modify_token(&db.store, &ids[0], |t: &ApiToken| {
        let mut t = t.clone();
        t.revoked_at = Some(Utc::now());
        Ok(Some(TokenChange {
            audit: audit("revoke", &t.id),
            events: vec![OutboxEvent::token_revoked(&t.id)],
            token: t,
            secrets: SecretChange::Keep,
        }))
    })
    .await
    .unwrap();
    let now = Utc::now();
    let mut q = TokenQuery {
        owner: Some(owner.clone()),
        limit: 2,
        ..Default::default()
    };
    let mut seen = Vec::new();
    loop {
        let page = db.store.list_tokens(&q, now).await.unwrap();
        seen.extend(page.items.iter().map(|t| t.id.clone()));
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => break,
        }
    }
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);
    q.cursor = None;
    q.limit = 100;
    q.state = Some(TokenState::Revoked);
    let revoked = db.store.list_tokens(&q, now).await.unwrap();
    assert_eq!(revoked.items.len(), 1);
    assert_eq!(revoked.items[0].id, ids[0]);
    q.state = Some(TokenState::Active);
    assert_eq!(db.store.list_tokens(&q, now).await.unwrap().items.len(), 4);
    q.state = Some(TokenState::Expired);
    let later = Utc::now() + Duration::days(2);
    assert_eq!(
        db.store.list_tokens(&q, later).await.unwrap().items.len(),
        4
    );
}

async fn usage_is_recorded_in_batches(db: TestDb) {
    let (token, _) = create(&db.store, "svc").await;
    let at = Utc::now();
    db.store
        .record_token_usage(&[
            UsageUpdate {
                token_id: token.id.clone(),
                last_used_at: at,
                uses: 3,
            },
            UsageUpdate {
                token_id: token.id.clone(),
                last_used_at: at - Duration::hours(1),
                uses: 2,
            },
        ])
        .await
        .unwrap();
    let t = db.store.get_token(&token.id).await.unwrap().unwrap();
    assert_eq!(t.use_count, 5);
    assert_eq!(
        t.last_used_at.unwrap().timestamp_millis(),
        at.timestamp_millis()
    );
}

/// Several steps in one `WriteTx` commit together, or (dropped without
/// commit) not at all: the record, its secret and its audit row and events.
async fn write_tx_steps_commit_or_roll_back_together(db: TestDb) {
    let (token, hash) = create(&db.store, "svc").await;
    let events_before = db.store.pending_events(100).await.unwrap().len();
    for commit in [false, true] {
        let mut tx = db.store.begin_write().await.unwrap();
        let mut t = tx.lock_token(&token.id).await.unwrap().unwrap();
        t.name = "renamed".into();
        t.updated_at = Utc::now();
        tx.update_token(&t).await.unwrap();
        let new = TokenHash::of("combined");
        tx.rotate_token_secret(&t.id, &new, None, t.updated_at)
            .await
            .unwrap();
        tx.append_audit(&[audit("combined", &t.id)]).await.unwrap();
        tx.append_events(&[OutboxEvent::token_rotated(&t.id, &t.id)])
            .await
            .unwrap();
        if commit {
            tx.commit().await.unwrap();
        } else {
            drop(tx);
        }
        let stored = db.store.get_token(&token.id).await.unwrap().unwrap();
        assert_eq!(stored.name == "renamed", commit);
        let old_works = db.store.find_token_by_secret(&hash).await.unwrap();
        assert_eq!(old_works.is_none(), commit);
        let new_works = db.store.find_token_by_secret(&new).await.unwrap();
        assert_eq!(new_works.is_some(), commit);
        let audit_rows = db.store.audit_for_target(&token.id, 10).await.unwrap();
        assert_eq!(audit_rows.len(), if commit { 2 } else { 1 });
        let events = db.store.pending_events(100).await.unwrap().len();
        assert_eq!(events, events_before + usize::from(commit));
    }
}

async fn migrations_are_idempotent(db: TestDb) {
    assert!(db.store.migrate().await.unwrap().is_empty());
    let status = db.store.schema_status().await.unwrap();
    assert!(status.is_current());
    // Versions ascend from 1. A number may be missing while the change
    // that holds it is elsewhere (6, taken by concurrent work, when 7 landed
    // first), so only the order is checked, not that they are consecutive.
    assert_eq!(status.applied.first(), Some(&1));
    assert!(status.applied.windows(2).all(|w| w[0] < w[1]));
    assert!(status.applied.contains(&7), "the audit channel migration");
    assert!(status.applied.len() >= 3);
    db.store.ping().await.unwrap();
}

tessera_test_support::tests! {
    backends:
        create_and_find_by_secret,
        rotation_without_grace_replaces_the_secret,
        rotation_with_grace_keeps_the_old_secret_until_it_ends,
        fifty_parallel_rotations_leave_one_secret,
        mutation_errors_roll_back_and_missing_ids_are_not_found,
        listing_filters_and_paginates,
        usage_is_recorded_in_batches,
        write_tx_steps_commit_or_roll_back_together,
        migrations_are_idempotent;
    current_thread: sqlite_files_are_private;
}

fn main() -> std::process::ExitCode {
    tessera_test_support::harness::run(trials())
}

/// Issue #11, item 10: the SQLite database and its WAL files are readable by
/// the service's user only, whatever the umask.
async fn sqlite_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tessera.db");
    let store = tessera_store::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let file = format!("{}{suffix}", path.display());
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{file} has mode {:o}", mode & 0o777);
    }
    store.close().await;
}
