//! The invalidation log on SQLite and PostgreSQL: every change that ends or
//! alters a credential writes its row in its own transaction (and a change
//! rolled back writes none); a reader sees each committed row once, in
//! particular one that commits after a higher-numbered one (PostgreSQL,
//! where writers run side by side); old rows are purged; on PostgreSQL a
//! listener is woken by a commit.

use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use tessera_core::{
    api_token::ApiToken,
    audit::{Actor, AuditEntry, RequestContext},
    client::Capability,
    client_registry::{new_client_id, RegisteredClient},
    ids::{new_id, now},
    session::{RevokeReason, Session},
    token_format::TokenFormat,
    user::{User, UserStatus},
};
use tessera_store::{Backend, Invalidation, InvalidationFeed, InvalidationKind, NewToken, Store};
use tessera_test_support::{backend_tests, TestDb};

/// A reader positioned at the end of the log.
async fn reader(store: &dyn Store) -> InvalidationFeed {
    let mut feed = InvalidationFeed::default();
    assert!(feed.poll(store).await.unwrap().is_empty());
    feed
}

fn named(rows: &[Invalidation]) -> Vec<(InvalidationKind, String)> {
    rows.iter().map(|r| (r.kind, r.target_id.clone())).collect()
}

async fn token(store: &dyn Store) -> ApiToken {
    let generated = TokenFormat::default().generate();
    let token = ApiToken::new(new_id(), "t", vec!["read".into()], Utc::now());
    let audit = AuditEntry::success(
        &Actor::Cli,
        "token.create",
        "api_token",
        &token.id,
        json!({}),
        &RequestContext::default(),
    );
    let new = NewToken {
        token: token.clone(),
        secret_hash: generated.hash,
    };
    store.create_token(&new, &audit, &[]).await.unwrap();
    token
}

fn session(user_id: &str) -> Session {
    let at = now();
    Session {
        id: new_id(),
        subject: user_id.into(),
        user_id: Some(user_id.into()),
        client_id: None,
        scope: vec![],
        amr: vec!["pwd".into()],
        created_at: at,
        updated_at: at,
        last_refreshed_at: None,
        idle_expires_at: at + chrono::Duration::hours(1),
        expires_at: at + chrono::Duration::hours(2),
        revoked_at: None,
        revoke_reason: None,
        ip_sealed: None,
        user_agent_sealed: None,
        device_hash: None,
    }
}

fn client() -> RegisteredClient {
    let at = now();
    RegisteredClient {
        id: new_client_id(),
        name: "rs".into(),
        secret_hash: "a".repeat(64),
        previous_secret_hash: None,
        previous_secret_expires_at: None,
        capabilities: vec![Capability::Introspect],
        audiences: None,
        created_at: at,
        updated_at: at,
        deleted_at: None,
        ip_allow: vec![],
        ip_deny: vec![],
    }
}

async fn credential_changes_write_their_rows_in_their_transaction(db: TestDb) {
    let store = &*db.store;
    let t = token(store).await;
    let user = User::new(new_id(), format!("{}@example.com", new_id()), vec![], now());
    let (live, other) = (session(&user.id), session(&user.id));
    let mut tx = store.begin_write().await.unwrap();
    tx.insert_user(&user).await.unwrap();
    tx.insert_session(&live).await.unwrap();
    tx.insert_session(&other).await.unwrap();
    tx.commit().await.unwrap();
    let mut feed = reader(store).await;
    assert!(
        feed.poll(store).await.unwrap().is_empty(),
        "creating a token, a user or a session invalidates nothing"
    );

    // A token change, twice in one transaction: one row.
    let mut tx = store.begin_write().await.unwrap();
    let mut locked = tx.lock_token(&t.id).await.unwrap().unwrap();
    locked.revoked_at = Some(now());
    tx.update_token(&locked).await.unwrap();
    tx.update_token(&locked).await.unwrap();
    tx.commit().await.unwrap();
    // A change rolled back writes nothing.
    let mut tx = store.begin_write().await.unwrap();
    tx.update_token(&locked).await.unwrap();
    tx.rollback().await.unwrap();
    let token_row = (InvalidationKind::Token, t.id.clone());
    assert_eq!(named(&feed.poll(store).await.unwrap()), [token_row]);

    // Sessions: revoking one, then every one of the user (the revoked one
    // is not revoked again); a disabled user; a client created and changed.
    let mut tx = store.begin_write().await.unwrap();
    assert!(tx
        .revoke_session(&live.id, now(), RevokeReason::Logout)
        .await
        .unwrap());
    tx.commit().await.unwrap();
    let mut tx = store.begin_write().await.unwrap();
    let revoked = tx
        .revoke_user_sessions(&user.id, None, now(), RevokeReason::UserDisabled)
        .await
        .unwrap();
    assert_eq!(revoked, std::slice::from_ref(&other.id));
    let mut disabled = tx.lock_user(&user.id).await.unwrap().unwrap();
    disabled.status = UserStatus::Disabled;
    tx.update_user(&disabled).await.unwrap();
    tx.commit().await.unwrap();
    let c = client();
    let mut tx = store.begin_write().await.unwrap();
    tx.insert_client(&c).await.unwrap();
    tx.commit().await.unwrap();
    let rows = feed.poll(store).await.unwrap();
    assert_eq!(
        named(&rows),
        [
            (InvalidationKind::Session, live.id.clone()),
            (InvalidationKind::Session, other.id.clone()),
            (InvalidationKind::User, user.id.clone()),
            (InvalidationKind::Client, c.id.clone()),
        ]
    );
    assert!(rows.windows(2).all(|w| w[0].seq < w[1].seq));
    // Erasure deletes the sessions: the user is invalidated again.
    let mut tx = store.begin_write().await.unwrap();
    assert_eq!(tx.delete_user_sessions(&user.id).await.unwrap(), 2);
    tx.commit().await.unwrap();
    let rows = feed.poll(store).await.unwrap();
    assert_eq!(named(&rows), [(InvalidationKind::User, user.id.clone())]);
}

/// PostgreSQL: a transaction takes number N, another takes N+1 and commits
/// first; the reader sees N+1, then N when it commits. SQLite serialises
/// writers (the second would wait for the first), so numbers commit in
/// order there: the reader sees a row only once it has committed, and sees
/// each once.
async fn a_row_that_commits_late_is_not_skipped(db: TestDb) {
    let store = &*db.store;
    let mut feed = reader(store).await;
    let mut early = store.begin_write().await.unwrap();
    early
        .invalidate(InvalidationKind::Token, "early")
        .await
        .unwrap();
    assert!(
        feed.poll(store).await.unwrap().is_empty(),
        "not committed yet"
    );
    if store.backend() == Backend::Postgres {
        let mut late = store.begin_write().await.unwrap();
        late.invalidate(InvalidationKind::Token, "late")
            .await
            .unwrap();
        late.commit().await.unwrap();
        let rows = feed.poll(store).await.unwrap();
        assert_eq!(named(&rows), [(InvalidationKind::Token, "late".into())]);
        assert_eq!(feed.pending_gaps(), 1, "the early row's number");
        early.commit().await.unwrap();
        let rows = feed.poll(store).await.unwrap();
        assert_eq!(named(&rows), [(InvalidationKind::Token, "early".into())]);
    } else {
        early.commit().await.unwrap();
        let rows = feed.poll(store).await.unwrap();
        assert_eq!(named(&rows), [(InvalidationKind::Token, "early".into())]);
    }
    assert_eq!(feed.pending_gaps(), 0);
    assert!(feed.poll(store).await.unwrap().is_empty(), "each row once");
    // A new reader starts at the end.
    assert!(reader(store).await.poll(store).await.unwrap().is_empty());
}

async fn old_rows_are_purged(db: TestDb) {
    let store = &*db.store;
    let mut tx = store.begin_write().await.unwrap();
    tx.invalidate(InvalidationKind::Client, "c").await.unwrap();
    tx.commit().await.unwrap();
    let later = Utc::now() + chrono::Duration::seconds(1);
    assert_eq!(
        store
            .purge_invalidations(later - chrono::Duration::hours(1))
            .await
            .unwrap(),
        0
    );
    assert_eq!(store.purge_invalidations(later).await.unwrap(), 1);
    assert!(store.latest_invalidations(10).await.unwrap().is_empty());
    // Numbers are never reused, even with the table empty.
    let mut tx = store.begin_write().await.unwrap();
    tx.invalidate(InvalidationKind::Client, "d").await.unwrap();
    tx.commit().await.unwrap();
    let rows = store.latest_invalidations(10).await.unwrap();
    assert!(rows[0].seq > 1, "{rows:?}");
}

/// PostgreSQL wakes a listener at commit (not before); SQLite has none.
async fn a_listener_is_woken_by_a_commit(db: TestDb) {
    let store = &*db.store;
    let Some(mut listener) = store.listen_invalidations().await.unwrap() else {
        assert_eq!(store.backend(), Backend::Sqlite);
        return;
    };
    let mut tx = store.begin_write().await.unwrap();
    tx.invalidate(InvalidationKind::Session, "s").await.unwrap();
    let early = tokio::time::timeout(Duration::from_millis(300), listener.wait()).await;
    assert!(early.is_err(), "woken before the commit");
    tx.commit().await.unwrap();
    tokio::time::timeout(Duration::from_secs(2), listener.wait())
        .await
        .expect("woken by the commit")
        .unwrap();
}

backend_tests!(
    credential_changes_write_their_rows_in_their_transaction,
    a_row_that_commits_late_is_not_skipped,
    old_rows_are_purged,
    a_listener_is_woken_by_a_commit,
);

fn main() -> std::process::ExitCode {
    tessera_test_support::harness::run(trials())
}
