//! Invite storage on both backends: quota under concurrency, atomic
//! redemption under a race, listing by state.

use std::sync::Arc;

use chrono::{Duration, Utc};
use serde_json::{json, Map};
use tessera_core::{
    audit::{Actor, AuditEntry},
    ids::new_id,
    invite::{Grants, Invite, InviteFailure, InviteState, Issuer},
    DomainError,
};
use tessera_store::{
    InviteQuery, InviteQuota, InviteUsageRecord, NewInvite, Redemption, Store, StoreError,
};
use tessera_test_support::{backend_tests, TestDb};

fn invite(issuer: &str, max_uses: i64, ttl: Duration) -> NewInvite {
    let now = tessera_core::ids::now();
    NewInvite {
        invite: Invite {
            id: new_id(),
            issuer: Issuer {
                subject: issuer.into(),
                role: "admin".into(),
            },
            grants: Grants {
                role: "member".into(),
                scopes: vec!["read".into()],
            },
            email: None,
            max_uses,
            uses: 0,
            expires_at: now + ttl,
            revoked_at: None,
            created_at: now,
            updated_at: now,
            deleted_at: None,
            metadata: Map::new(),
        },
        code_hash: new_id(),
    }
}

fn audit(id: &str) -> AuditEntry {
    AuditEntry::success(
        &Actor::Cli,
        "invite.create",
        "invite",
        id,
        json!({}),
        &Default::default(),
    )
}

fn redemption(hash: &str) -> Redemption {
    Redemption {
        code_hashes: vec!["unrelated".into(), hash.to_string()],
        email: None,
        now: Utc::now(),
        usage: InviteUsageRecord {
            invite_id: None,
            action: "redeem",
            outcome: "ok",
            subject: Some("user-1".into()),
            context: Default::default(),
        },
    }
}

async fn create(
    store: &Arc<dyn Store>,
    new: &NewInvite,
    quota: Option<InviteQuota>,
) -> Result<(), StoreError> {
    store
        .create_invite(new, quota, &audit(&new.invite.id), &[])
        .await
}

async fn quota_holds_under_concurrency(db: TestDb) {
    let issuer = new_id();
    let quota = InviteQuota::new(5, Duration::hours(24));
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let store = db.store.clone();
        let new = invite(&issuer, 1, Duration::days(1));
        tasks.push(tokio::spawn(async move {
            create(&store, &new, Some(quota)).await
        }));
    }
    let (mut ok, mut refused) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => ok += 1,
            Err(StoreError::Domain(DomainError::InviteQuotaExceeded {
                retry_after_secs, ..
            })) => {
                assert!(retry_after_secs > 86_000);
                refused += 1;
            }
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!((ok, refused), (5, 7));
    // Another issuer is unaffected; no quota means no limit.
    create(
        &db.store,
        &invite(&new_id(), 1, Duration::days(1)),
        Some(quota),
    )
    .await
    .unwrap();
    create(&db.store, &invite(&issuer, 1, Duration::days(1)), None)
        .await
        .unwrap();
}

async fn a_hundred_redemptions_of_three_uses(db: TestDb) {
    let new = invite("issuer", 3, Duration::days(1));
    create(&db.store, &new, None).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let store = db.store.clone();
        let r = redemption(&new.code_hash);
        tasks.push(tokio::spawn(async move {
            store.redeem_invite(&r).await.unwrap()
        }));
    }
    let (mut ok, mut used_up) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err((InviteFailure::UsedUp, Some(_))) => used_up += 1,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((ok, used_up), (3, 97));
    let stored = db.store.get_invite(&new.invite.id).await.unwrap().unwrap();
    assert_eq!(stored.uses, 3);
    let used = db.store.pending_events(1000).await.unwrap();
    assert_eq!(
        used.iter()
            .filter(|e| e.event_type == "invite.used")
            .count(),
        3
    );
}

async fn redemption_reports_why_it_failed(db: TestDb) {
    let r = db.store.redeem_invite(&redemption("nope")).await.unwrap();
    assert_eq!(r.unwrap_err(), (InviteFailure::NotFound, None));
    let expired = invite("issuer", 1, Duration::milliseconds(1));
    create(&db.store, &expired, None).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let r = db
        .store
        .redeem_invite(&redemption(&expired.code_hash))
        .await
        .unwrap();
    assert_eq!(r.unwrap_err().0, InviteFailure::Expired);
}

async fn listing_by_state(db: TestDb) {
    let issuer = new_id();
    let active = invite(&issuer, 1, Duration::days(1));
    let used = invite(&issuer, 1, Duration::days(1));
    for n in [&active, &used] {
        create(&db.store, n, None).await.unwrap();
    }
    db.store
        .redeem_invite(&redemption(&used.code_hash))
        .await
        .unwrap()
        .unwrap();
    let now = Utc::now();
    let q = |state| InviteQuery {
        state: Some(state),
        issuer: Some(issuer.clone()),
        limit: 10,
        ..Default::default()
    };
    let ids =
        |p: tessera_store::Page<Invite>| p.items.into_iter().map(|i| i.id).collect::<Vec<_>>();
    assert_eq!(
        ids(db
            .store
            .list_invites(&q(InviteState::Active), now)
            .await
            .unwrap()),
        vec![active.invite.id.clone()]
    );
    assert_eq!(
        ids(db
            .store
            .list_invites(&q(InviteState::Used), now)
            .await
            .unwrap()),
        vec![used.invite.id.clone()]
    );
    assert!(db
        .store
        .list_invites(&q(InviteState::Revoked), now)
        .await
        .unwrap()
        .items
        .is_empty());
    let later = now + Duration::days(2);
    assert_eq!(
        ids(db
            .store
            .list_invites(&q(InviteState::Expired), later)
            .await
            .unwrap()),
        vec![active.invite.id.clone()]
    );
}

backend_tests!(
    quota_holds_under_concurrency,
    a_hundred_redemptions_of_three_uses,
    redemption_reports_why_it_failed,
    listing_by_state,
);

fn main() -> std::process::ExitCode {
    tessera_test_support::harness::run(trials())
}
