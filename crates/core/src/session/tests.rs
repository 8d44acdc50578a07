use chrono::{Duration, TimeZone, Utc};

use super::*;

fn token(used: bool, grace_left: Option<i64>) -> RefreshToken {
    let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    RefreshToken {
        id: "r1".into(),
        session_id: "s1".into(),
        parent_id: None,
        created_at: t0,
        expires_at: t0 + Duration::days(7),
        used_at: used.then_some(t0),
        revoked_at: None,
        successor_id: used.then(|| "r2".into()),
        successor_sealed: grace_left.map(|_| "sealed".into()),
        successor_until: grace_left.map(|s| t0 + Duration::seconds(s)),
    }
}

#[test]
fn verdicts() {
    let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let now = t0 + Duration::seconds(5);
    assert_eq!(
        token(false, None).verdict(now, true),
        RefreshVerdict::Rotate
    );
    assert_eq!(token(true, None).verdict(now, true), RefreshVerdict::Reuse);
    assert_eq!(
        token(true, Some(10)).verdict(now, true),
        RefreshVerdict::GraceReplay
    );
    // The successor moved on: the predecessor is reuse, grace or not.
    assert_eq!(
        token(true, Some(10)).verdict(now, false),
        RefreshVerdict::Reuse
    );
    // Past the window.
    assert_eq!(
        token(true, Some(3)).verdict(now, true),
        RefreshVerdict::Reuse
    );
    let expired = token(false, None).verdict(t0 + Duration::days(8), true);
    assert_eq!(expired, RefreshVerdict::Dead);
    let mut revoked = token(true, Some(10));
    revoked.revoked_at = Some(t0);
    assert_eq!(revoked.verdict(now, true), RefreshVerdict::Dead);
}

#[test]
fn refresh_tokens_never_outlive_the_session() {
    let l = SessionLifetimes::default();
    let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let end = now + Duration::days(2);
    assert_eq!(l.refresh_expiry(now, end), end);
    let far = now + Duration::days(30);
    assert_eq!(l.refresh_expiry(now, far), now + Duration::days(7));
}

#[test]
fn scopes_are_the_union_of_roles_narrowed_by_the_request() {
    let mut roles = RoleScopes::new();
    roles.insert(
        "member".into(),
        vec!["orders:read".into(), "profile".into()],
    );
    roles.insert("admin".into(), vec!["admin".into(), "profile".into()]);
    let both = ["member".to_string(), "admin".to_string()];
    assert_eq!(
        grant_scope(&roles, &both, None),
        vec!["admin", "orders:read", "profile"]
    );
    let asked = ["profile".to_string(), "payments".to_string()];
    assert_eq!(grant_scope(&roles, &both, Some(&asked)), vec!["profile"]);
    assert!(grant_scope(&roles, &["ghost".to_string()], None).is_empty());
}

#[test]
fn revoke_reasons_round_trip() {
    for r in [RevokeReason::Logout, RevokeReason::ReuseDetected] {
        assert_eq!(RevokeReason::parse(r.as_str()), Some(r));
    }
}

#[test]
fn device_binding_modes() {
    use SessionDeviceBinding::*;
    for mode in [Off, WhenSent, Required] {
        assert_eq!(SessionDeviceBinding::parse(mode.as_str()), Some(mode));
    }
    assert_eq!(SessionDeviceBinding::parse("On"), None);
    assert_eq!(SessionDeviceBinding::default(), WhenSent);
    // Off ignores a device; when_sent binds one if named; required needs one.
    assert_eq!(Off.device_to_bind(Some("d")), Ok(None));
    assert_eq!(WhenSent.device_to_bind(None), Ok(None));
    assert_eq!(WhenSent.device_to_bind(Some("d")), Ok(Some("d")));
    assert_eq!(Required.device_to_bind(Some("d")), Ok(Some("d")));
    assert_eq!(
        Required.device_to_bind(None),
        Err(crate::DomainError::DeviceRequired)
    );
}
