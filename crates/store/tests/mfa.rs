//! Second-factor storage on both backends: the replay check and the attempt
//! reservation under concurrency, one-use recovery codes, auth code limits.

use std::sync::Arc;

use chrono::{Duration, Utc};
use serde_json::json;
use tessera_core::{
    audit::{Actor, AuditEntry},
    event::OutboxEvent,
    ids::{new_id, now},
    mfa::{
        auth_code::{AuthCode, Channel},
        lockout::LockoutPolicy,
        totp::TotpParams,
        DeviceStatus, MfaFailure, TotpDevice,
    },
    DomainError,
};
use tessera_store::{
    mfa::{
        AuthCodeLimits, AuthCodeLookup, AuthCodeVerdict, NewAuthCode, NewTotpDevice, TotpMatch,
        TotpOutcome,
    },
    Store, StoreError,
};
use tessera_test_support::{backend_tests, TestDb};

fn audit(action: &'static str, subject: &str) -> AuditEntry {
    AuditEntry::success(
        &Actor::Cli,
        action,
        "subject",
        subject,
        json!({}),
        &Default::default(),
    )
}

fn device(subject: &str) -> NewTotpDevice {
    let t = now();
    NewTotpDevice {
        device: TotpDevice {
            id: new_id(),
            subject: subject.into(),
            name: "phone".into(),
            status: DeviceStatus::Pending,
            params: TotpParams::default(),
            created_at: t,
            confirmed_at: None,
            last_used_at: None,
        },
        secret_sealed: format!("k1:{}", new_id()),
        secret_key_id: "k1".into(),
    }
}

/// A check whose code matches `step` on device `device_id` (or nothing).
async fn check(
    s: &Arc<dyn Store>,
    subject: &str,
    matched: Option<(&str, i64)>,
    activate: bool,
) -> TotpOutcome {
    let t = now();
    let matched = matched.map(|(device_id, step)| TotpMatch {
        device_id: device_id.to_string(),
        step,
        replay_until: t + Duration::minutes(5),
    });
    check_with(
        s,
        subject,
        t,
        activate,
        move || matched,
        |o: &TotpOutcome| {
            let event = match o {
                TotpOutcome::Accepted { .. } => "mfa.challenge.succeeded",
                _ => "mfa.challenge.failed",
            };
            (
                vec![audit("mfa.challenge", "u")],
                vec![OutboxEvent::mfa(event, "u", json!({}))],
            )
        },
    )
    .await
}

/// One TOTP check as the service runs it: one `WriteTx` that reserves an
/// attempt under the locked counter (when locked: nothing written, and
/// `matcher` not called), compares, finishes, writes `log`'s rows, commits.
async fn check_with(
    s: &Arc<dyn Store>,
    subject: &str,
    t: chrono::DateTime<Utc>,
    activate: bool,
    matcher: impl FnOnce() -> Option<TotpMatch>,
    log: impl Fn(&TotpOutcome) -> (Vec<AuditEntry>, Vec<OutboxEvent>),
) -> TotpOutcome {
    let mut tx = s.begin_write().await.unwrap();
    let reservation = tx
        .reserve_totp_attempt(subject, t, &LockoutPolicy::default())
        .await
        .unwrap();
    let attempt = match reservation {
        Err(until) => return TotpOutcome::Locked { until },
        Ok(attempt) => attempt,
    };
    let outcome = tx
        .finish_totp_check(attempt, matcher(), activate)
        .await
        .unwrap();
    let (audit, events) = log(&outcome);
    tx.append_audit(&audit).await.unwrap();
    tx.append_events(&events).await.unwrap();
    tx.commit().await.unwrap();
    outcome
}

/// A confirmed device for `subject` (its confirmation used step 1).
async fn active_device(s: &Arc<dyn Store>, subject: &str) -> String {
    let d = device(subject);
    s.create_totp_device(&d, &audit("mfa.enroll", subject), &[])
        .await
        .unwrap();
    let id = d.device.id;
    assert_eq!(check(s, subject, Some((&id, 1)), true).await, accepted(&id));
    id
}

fn accepted(id: &str) -> TotpOutcome {
    TotpOutcome::Accepted {
        device_id: id.into(),
    }
}

async fn devices_and_replay(db: TestDb) {
    let s = &db.store;
    let d = device("u_1");
    s.create_totp_device(&d, &audit("mfa.enroll", "u_1"), &[])
        .await
        .unwrap();
    assert!(
        s.sealed_totp_devices("u_1", None).await.unwrap().is_empty(),
        "pending is not usable"
    );
    let id = d.device.id.clone();
    assert_eq!(check(s, "u_1", Some((&id, 100)), true).await, accepted(&id));
    let active = s.sealed_totp_devices("u_1", None).await.unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].device.status, DeviceStatus::Active);
    assert_eq!(active[0].secret_sealed, d.secret_sealed);
    assert!(active[0].device.last_used_at.is_some());
    // Same step and earlier steps are replays; a later step is fine.
    let replayed = TotpOutcome::Replayed {
        device_id: id.clone(),
    };
    assert_eq!(check(s, "u_1", Some((&id, 100)), false).await, replayed);
    assert_eq!(check(s, "u_1", Some((&id, 99)), false).await, replayed);
    assert_eq!(
        check(s, "u_1", Some((&id, 101)), false).await,
        accepted(&id)
    );
    // Another subject is independent.
    let other = active_device(s, "u_2").await;
    assert_eq!(
        check(s, "u_2", Some((&other, 100)), false).await,
        accepted(&other)
    );
    // A device deleted (or never there) between the read and the check: its
    // code does not work.
    assert_eq!(
        check(s, "u_2", Some((&id, 200)), false).await,
        TotpOutcome::Invalid { locks_now: false }
    );
    assert_eq!(s.totp_key_ids().await.unwrap(), vec!["k1".to_string()]);
    assert!(s
        .sealed_totp_devices("u_2", Some(&id))
        .await
        .unwrap()
        .is_empty());
    assert!(!s
        .delete_totp_device("u_2", &id, &audit("x", "u_2"), &[])
        .await
        .unwrap());
    // Unconfirmed enrolments are purged with the day-old auth codes.
    let pending = device("u_1");
    s.create_totp_device(&pending, &audit("mfa.enroll", "u_1"), &[])
        .await
        .unwrap();
    assert_eq!(s.list_totp_devices("u_1").await.unwrap().len(), 2);
    s.purge_mfa_state(now(), now() + Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(s.list_totp_devices("u_1").await.unwrap().len(), 1);
    assert!(s
        .delete_totp_device("u_1", &id, &audit("x", "u_1"), &[])
        .await
        .unwrap());
    assert!(s.list_totp_devices("u_1").await.unwrap().is_empty());
}

async fn concurrent_checks_of_one_code_accept_it_once(db: TestDb) {
    let store: Arc<dyn Store> = db.store.clone();
    let id = active_device(&store, "u_race").await;
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (s, id) = (store.clone(), id.clone());
            tokio::spawn(async move { check(&s, "u_race", Some((&id, 500)), false).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    let won = outcomes.iter().filter(|o| **o == accepted(&id)).count();
    assert_eq!(won, 1, "{outcomes:?}");
    // The others are replays, which do not use attempts: nobody is locked out.
    let replayed = TotpOutcome::Replayed {
        device_id: id.clone(),
    };
    assert_eq!(outcomes.iter().filter(|o| **o == replayed).count(), 19);
    for _ in 0..4 {
        assert_eq!(
            check(&store, "u_race", None, false).await,
            TotpOutcome::Invalid { locks_now: false }
        );
    }
}

async fn fifty_parallel_wrong_codes_are_compared_five_times(db: TestDb) {
    let store: Arc<dyn Store> = db.store.clone();
    let compared = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let t = now();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (s, compared) = (store.clone(), compared.clone());
            tokio::spawn(async move {
                let matcher = move || {
                    compared.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    None
                };
                check_with(&s, "u_guess", t, false, matcher, |_: &TotpOutcome| {
                    (vec![], vec![])
                })
                .await
            })
        })
        .collect();
    let (mut invalid, mut locks, mut locked) = (0, 0, 0);
    for task in tasks {
        match task.await.unwrap() {
            TotpOutcome::Invalid { locks_now } => {
                invalid += 1;
                locks += i32::from(locks_now);
            }
            TotpOutcome::Locked { until } => {
                assert_eq!(until, t + LockoutPolicy::default().lockout);
                locked += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((invalid, locks, locked), (5, 1, 45));
    assert_eq!(compared.load(std::sync::atomic::Ordering::SeqCst), 5);
    // Locked: even a matching code is not compared.
    assert!(matches!(
        check(&store, "u_guess", Some(("any", 9)), false).await,
        TotpOutcome::Locked { .. }
    ));
    // A success before the limit clears the counter.
    let id = active_device(&store, "u_reset").await;
    for _ in 0..4 {
        check(&store, "u_reset", None, false).await;
    }
    assert_eq!(
        check(&store, "u_reset", Some((&id, 3)), false).await,
        accepted(&id)
    );
    for _ in 0..4 {
        assert_eq!(
            check(&store, "u_reset", None, false).await,
            TotpOutcome::Invalid { locks_now: false }
        );
    }
}

async fn recovery_codes_are_single_use(db: TestDb) {
    let s = db.store.clone();
    let hashes: Vec<String> = (0..10).map(|i| format!("h{i}")).collect();
    let t = now();
    s.replace_recovery_codes("u_r", &hashes, t, &audit("gen", "u_r"), &[])
        .await
        .unwrap();
    assert_eq!(s.recovery_codes_left("u_r").await.unwrap(), 10);
    let candidates = vec!["other".to_string(), "h3".to_string()];
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (s, c) = (s.clone(), candidates.clone());
            tokio::spawn(async move {
                s.use_recovery_code("u_r", &c, t, &audit("use", "u_r"), &[])
                    .await
            })
        })
        .collect();
    let mut ok = 0;
    for task in tasks {
        ok += i32::from(task.await.unwrap().unwrap());
    }
    assert_eq!(ok, 1);
    assert_eq!(s.recovery_codes_left("u_r").await.unwrap(), 9);
    assert!(!s
        .use_recovery_code("u_other", &candidates, t, &audit("use", "u"), &[])
        .await
        .unwrap());
    // A new set replaces the old one entirely.
    s.replace_recovery_codes("u_r", &["n1".into()], t, &audit("gen", "u_r"), &[])
        .await
        .unwrap();
    assert!(!s
        .use_recovery_code("u_r", &["h4".into()], t, &audit("use", "u_r"), &[])
        .await
        .unwrap());
    assert_eq!(s.recovery_codes_left("u_r").await.unwrap(), 1);
}

async fn concurrent_regenerations_leave_one_set(db: TestDb) {
    let store: Arc<dyn Store> = db.store.clone();
    let tasks: Vec<_> = (0..4)
        .map(|set| {
            let s = store.clone();
            tokio::spawn(async move {
                let hashes: Vec<String> = (0..10).map(|i| format!("set{set}-{i}")).collect();
                s.replace_recovery_codes("u_regen", &hashes, now(), &audit("gen", "u_regen"), &[])
                    .await
                    .unwrap();
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(store.recovery_codes_left("u_regen").await.unwrap(), 10);
}

fn auth_code(subject: &str, dest: &str) -> NewAuthCode {
    let t = now();
    NewAuthCode {
        code: AuthCode {
            id: new_id(),
            subject: subject.into(),
            purpose: "login".into(),
            channel: Channel::Email,
            attempts: 0,
            max_attempts: 5,
            expires_at: t + Duration::minutes(10),
            consumed_at: None,
            sent_at: None,
            created_at: t,
        },
        code_hash: format!("hash-{subject}"),
        destination_sealed: "k:sealed".into(),
        destination_hash: dest.into(),
    }
}

fn verdict_for(
    code: &str,
) -> impl FnOnce(Option<(&AuthCode, &str)>) -> AuthCodeVerdict + Send + '_ {
    move |found| {
        let t = Utc::now();
        let outcome = match found {
            None => Err(MfaFailure::NoCode),
            Some((c, hash)) => c.check_usable(t).and_then(|()| {
                if hash == code {
                    Ok(())
                } else {
                    Err(MfaFailure::Invalid)
                }
            }),
        };
        let evaluated = found.is_some_and(|(c, _)| c.check_usable(t).is_ok());
        AuthCodeVerdict {
            outcome,
            count_attempt: evaluated,
            audit: audit("auth_code.verify", "u"),
            events: vec![],
        }
    }
}

/// The locked check every verification goes through: one `WriteTx` that
/// locks the current code, lets `check` decide, writes the verdict, commits.
async fn check_auth_code(
    store: &Arc<dyn Store>,
    lookup: &AuthCodeLookup,
    now: chrono::DateTime<Utc>,
    check: impl FnOnce(Option<(&AuthCode, &str)>) -> AuthCodeVerdict,
) -> Result<Result<AuthCode, MfaFailure>, StoreError> {
    let mut tx = store.begin_write().await?;
    let locked = tx.lock_current_auth_code(lookup).await?;
    let verdict = check(locked.as_ref().map(|(c, h)| (c, h.as_str())));
    let locked = locked.map(|(code, _)| code);
    tx.write_auth_code_verdict(locked.as_ref(), &verdict, now)
        .await?;
    tx.commit().await?;
    Ok(verdict.result(locked, now))
}

async fn auth_codes_limits_supersede_and_attempts(db: TestDb) {
    let s = &db.store;
    let limits = AuthCodeLimits {
        per_subject: 3,
        per_destination: 4,
        window: Duration::minutes(15),
    };
    // A new code for `subject` to `dest`, under `limits`, audited as `action`.
    let create = |subject: &str, dest: &str, action: &'static str| {
        let code = auth_code(subject, dest);
        let entry = audit(action, subject);
        let limits = &limits;
        async move {
            let created = s.create_auth_code(&code, limits, &entry).await;
            created.map(|()| code)
        }
    };
    let first = create("u_a", "dest-1", "create").await.unwrap();
    let lookup = AuthCodeLookup {
        subject: "u_a".into(),
        purpose: "login".into(),
        id: None,
    };
    // Not sent yet: unusable.
    let r = check_auth_code(s, &lookup, now(), verdict_for("hash-u_a"))
        .await
        .unwrap();
    assert_eq!(r.unwrap_err(), MfaFailure::NoCode);
    let second = create("u_a", "dest-1", "create").await.unwrap();
    s.finish_auth_code_delivery(&second.code.id, Some(now()), &audit("sent", "u_a"), &[])
        .await
        .unwrap();
    // The first code was superseded: its id finds nothing.
    let stale = AuthCodeLookup {
        id: Some(first.code.id.clone()),
        ..lookup.clone()
    };
    let r = check_auth_code(s, &stale, now(), verdict_for("hash-u_a"))
        .await
        .unwrap();
    assert_eq!(r.unwrap_err(), MfaFailure::NoCode);
    for _ in 0..4 {
        let r = check_auth_code(s, &lookup, now(), verdict_for("wrong"))
            .await
            .unwrap();
        assert_eq!(r.unwrap_err(), MfaFailure::Invalid);
    }
    let ok = check_auth_code(s, &lookup, now(), verdict_for("hash-u_a"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ok.attempts, 5);
    let r = check_auth_code(s, &lookup, now(), verdict_for("hash-u_a"))
        .await
        .unwrap();
    assert_eq!(r.unwrap_err(), MfaFailure::Replayed);
    // Third creation for the subject is allowed, the fourth is rate limited.
    create("u_a", "dest-1", "c").await.unwrap();
    let err = create("u_a", "dest-1", "c").await.unwrap_err();
    assert!(
        matches!(err, StoreError::Domain(DomainError::RateLimited { retry_after_secs }) if retry_after_secs > 800)
    );
    // The destination limit counts across subjects.
    create("u_b", "dest-1", "c").await.unwrap();
    let err = create("u_c", "dest-1", "c").await.unwrap_err();
    assert!(matches!(
        err,
        StoreError::Domain(DomainError::RateLimited { .. })
    ));
    // 4 codes, the one destination's lock row, and subjects u_a and u_b.
    assert_eq!(
        s.purge_mfa_state(now(), now() + Duration::seconds(1))
            .await
            .unwrap(),
        7
    );
}

backend_tests!(
    devices_and_replay,
    concurrent_checks_of_one_code_accept_it_once,
    fifty_parallel_wrong_codes_are_compared_five_times,
    recovery_codes_are_single_use,
    concurrent_regenerations_leave_one_set,
    auth_codes_limits_supersede_and_attempts,
);

fn main() -> std::process::ExitCode {
    tessera_test_support::harness::run(trials())
}
