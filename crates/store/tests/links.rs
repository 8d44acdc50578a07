//! Password-reset and e-mail verification links in storage, on SQLite and
//! PostgreSQL: a link round-trips; a newer link supersedes the older unused
//! ones of its kind only; a link is used once, never when superseded or
//! expired; kinds never see each other's rows; the purge keeps live links.

use chrono::{DateTime, Duration, Utc};
use tessera_core::{
    ids::{new_id, now},
    user_link::{LinkKind, UserLink},
};
use tessera_test_support::{backend_tests, TestDb};

fn link(kind: LinkKind, user_id: &str, at: DateTime<Utc>, ttl: Duration) -> UserLink {
    UserLink {
        id: new_id(),
        kind,
        user_id: user_id.into(),
        secret_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        created_at: at,
        expires_at: at + ttl,
        used_at: None,
        superseded_at: None,
        requester_ip_sealed: Some("k1:sealed".into()),
    }
}

async fn a_link_is_used_once_and_superseded_by_a_newer_one(db: TestDb) {
    let store = &db.store;
    let (user, at) = (new_id(), now());
    let first = link(LinkKind::PasswordReset, &user, at, Duration::seconds(900));
    let other_kind = link(
        LinkKind::EmailVerification,
        &user,
        at,
        Duration::seconds(900),
    );
    let mut tx = store.begin_write().await.unwrap();
    tx.insert_user_link(&first).await.unwrap();
    tx.insert_user_link(&other_kind).await.unwrap();
    tx.commit().await.unwrap();
    let read = store
        .get_user_link(LinkKind::PasswordReset, &first.id)
        .await
        .unwrap();
    assert_eq!(read.as_ref(), Some(&first));
    // Kinds are separate tables: a reset id is no verification.
    let crossed = store
        .get_user_link(LinkKind::EmailVerification, &first.id)
        .await
        .unwrap();
    assert_eq!(crossed, None);

    let second = link(LinkKind::PasswordReset, &user, at, Duration::seconds(900));
    let mut tx = store.begin_write().await.unwrap();
    let n = tx
        .supersede_user_links(LinkKind::PasswordReset, &user, at)
        .await
        .unwrap();
    assert_eq!(n, 1, "only the reset link is superseded");
    tx.insert_user_link(&second).await.unwrap();
    tx.commit().await.unwrap();

    let mut tx = store.begin_write().await.unwrap();
    assert!(!tx
        .use_user_link(LinkKind::PasswordReset, &first.id, at)
        .await
        .unwrap());
    assert!(tx
        .use_user_link(LinkKind::PasswordReset, &second.id, at)
        .await
        .unwrap());
    assert!(!tx
        .use_user_link(LinkKind::PasswordReset, &second.id, at)
        .await
        .unwrap());
    assert!(tx
        .use_user_link(LinkKind::EmailVerification, &other_kind.id, at)
        .await
        .unwrap());
    tx.commit().await.unwrap();
    let used = store
        .get_user_link(LinkKind::PasswordReset, &second.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(used.used_at, Some(at));
    let old = store
        .get_user_link(LinkKind::PasswordReset, &first.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old.superseded_at, Some(at));
}

async fn an_expired_link_cannot_be_used_and_old_links_are_purged(db: TestDb) {
    let store = &db.store;
    let (user, at) = (new_id(), now());
    let expired = link(
        LinkKind::EmailVerification,
        &user,
        at - Duration::days(2),
        Duration::seconds(60),
    );
    let live = link(
        LinkKind::EmailVerification,
        &user,
        at,
        Duration::seconds(900),
    );
    let mut tx = store.begin_write().await.unwrap();
    tx.insert_user_link(&expired).await.unwrap();
    tx.insert_user_link(&live).await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = store.begin_write().await.unwrap();
    assert!(!tx
        .use_user_link(LinkKind::EmailVerification, &expired.id, at)
        .await
        .unwrap());
    // Rolled back: nothing changes.
    assert!(tx
        .use_user_link(LinkKind::EmailVerification, &live.id, at)
        .await
        .unwrap());
    tx.rollback().await.unwrap();
    assert_eq!(
        store
            .purge_user_links(at - Duration::days(1))
            .await
            .unwrap(),
        1
    );
    assert!(store
        .get_user_link(LinkKind::EmailVerification, &expired.id)
        .await
        .unwrap()
        .is_none());
    let kept = store
        .get_user_link(LinkKind::EmailVerification, &live.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.used_at, None);
}

backend_tests!(
    a_link_is_used_once_and_superseded_by_a_newer_one,
    an_expired_link_cannot_be_used_and_old_links_are_purged,
);

fn main() -> std::process::ExitCode {
    tessera_test_support::harness::run(trials())
}
