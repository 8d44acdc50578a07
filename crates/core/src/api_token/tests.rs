use super::*;

fn token(now: DateTime<Utc>) -> ApiToken {
    ApiToken::new("t", "n", vec!["read".into()], now)
        .with_hint("tsr_…abcd")
        .with_expiry(Some(now + Duration::days(1)))
}

#[test]
fn state_precedence() {
    let now = Utc::now();
    let mut t = token(now);
    assert_eq!(t.state_at(now), TokenState::Active);
    assert_eq!(t.state_at(now + Duration::days(2)), TokenState::Expired);
    t.revoked_at = Some(now);
    assert_eq!(t.state_at(now + Duration::days(2)), TokenState::Revoked);
    t.purged_at = Some(now);
    assert_eq!(t.state_at(now), TokenState::Purged);
}

#[test]
fn grace_never_outlives_expiry() {
    let now = Utc::now();
    let mut t = token(now);
    t.expires_at = Some(now + Duration::minutes(10));
    assert_eq!(
        t.grace_end(3600, now).unwrap(),
        Some(now + Duration::minutes(10))
    );
    assert_eq!(t.grace_end(0, now).unwrap(), None);
    assert!(t.grace_end(86_401, now).is_err());
    assert!(t.grace_end(-1, now).is_err());
}

#[test]
fn evaluation_codes() {
    let now = Utc::now();
    let mut t = token(now);
    assert_eq!(evaluate(&t, None, &["read".into()], now), Ok(()));
    assert_eq!(
        evaluate(&t, None, &["admin".into()], now),
        Err(VerifyFailure::InsufficientScope)
    );
    assert_eq!(
        evaluate(&t, Some(now), &[], now),
        Err(VerifyFailure::NotFound)
    );
    assert_eq!(
        evaluate(&t, Some(now + Duration::seconds(5)), &[], now),
        Ok(())
    );
    t.deleted_at = Some(now);
    assert_eq!(evaluate(&t, None, &[], now), Err(VerifyFailure::Deleted));
}

#[test]
fn expiry_policy() {
    let now = Utc::now();
    let p = ExpiryPolicy::default();
    assert_eq!(
        p.resolve(ExpiryRequest::Default, now).unwrap(),
        Some(now + Duration::days(90))
    );
    assert!(p.resolve(ExpiryRequest::Never, now).is_err());
    assert!(p.resolve(ExpiryRequest::InSeconds(0), now).is_err());
    assert!(p
        .resolve(ExpiryRequest::At(now + Duration::days(400)), now)
        .is_err());
    assert!(p
        .resolve(ExpiryRequest::At(now - Duration::days(1)), now)
        .is_err());
    let open = ExpiryPolicy {
        allow_never: true,
        ..p
    };
    assert_eq!(open.resolve(ExpiryRequest::Never, now).unwrap(), None);
}
