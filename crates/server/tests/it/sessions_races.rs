//! Twenty refreshes of one refresh token at once, on both backends: without
//! a grace window exactly one rotates and the rest end the family; with one,
//! all twenty get the same successor. Never a 5xx.

use crate::common::{
    people::{create_user, metric, metrics, refresh, session, signed_in},
    Reply, TestServer,
};
use reqwest::{Method, StatusCode};
use serde_json::json;
use tessera_test_support::{backend_tests, TestDb};

/// A signed-in user's first refresh token and session id.
async fn a_session(s: &TestServer) -> (String, String) {
    create_user(s, "racer@example.com").await;
    let l = signed_in(s, "racer@example.com").await;
    let rt = l["refresh_token"].as_str().unwrap().to_string();
    (rt, l["session_id"].as_str().unwrap().to_string())
}

/// `n` refreshes of `rt` at once; none may be a server error.
async fn race(s: &TestServer, rt: &str, n: usize) -> Vec<Reply> {
    let body = |_| Some(json!({ "refresh_token": rt }));
    let replies = s
        .concurrently(n, Method::POST, "/v1/auth/refresh", None, body)
        .await;
    for r in &replies {
        assert!(!r.status.is_server_error(), "{}: {}", r.status, r.text);
    }
    replies
}

async fn without_grace_one_refresh_wins_and_the_family_ends(db: TestDb) {
    let s = TestServer::start_with(db, &[("TESSERA_REFRESH_REUSE_GRACE", "0")]).await;
    let (rt, sid) = a_session(&s).await;
    let replies = race(&s, &rt, 20).await;
    let (ok, refused): (Vec<&Reply>, Vec<&Reply>) =
        replies.iter().partition(|r| r.status == StatusCode::OK);
    assert_eq!(
        ok.len(),
        1,
        "{:?}",
        replies.iter().map(|r| &r.text).collect::<Vec<_>>()
    );
    for r in &refused {
        r.assert_problem(StatusCode::UNAUTHORIZED, "invalid_grant");
    }
    assert_eq!(refused.len(), 19);
    // The winner's successor belongs to the revoked family.
    let successor = ok[0].body["refresh_token"].as_str().unwrap();
    refresh(&s, successor)
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "invalid_grant");
    let view = session(&s, &sid).await;
    assert_eq!(view["state"], "revoked", "{view}");
    assert_eq!(view["revoke_reason"], "reuse_detected", "{view}");
    let m = metrics(&s).await;
    assert_eq!(
        metric(&m, "tokens_refreshes_total{outcome=\"rotated\"}"),
        1.0,
        "{m}"
    );
    assert_eq!(
        metric(&m, "tokens_refreshes_total{outcome=\"grace\"}"),
        0.0,
        "{m}"
    );
}

async fn within_grace_all_twenty_get_the_same_successor(db: TestDb) {
    let s = TestServer::start_with(db, &[("TESSERA_REFRESH_REUSE_GRACE", "10")]).await;
    let (rt, sid) = a_session(&s).await;
    let replies = race(&s, &rt, 20).await;
    let mut successors = std::collections::BTreeSet::new();
    for r in &replies {
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["session_id"], sid.as_str());
        successors.insert(r.body["refresh_token"].as_str().unwrap().to_string());
    }
    assert_eq!(successors.len(), 1, "{successors:?}");
    let successor = successors.into_iter().next().unwrap();
    assert_ne!(successor, rt);
    // Each got a working access token.
    for r in &replies {
        let access = r.body["access_token"].as_str().unwrap();
        let me = s.with_token(access).get("/v1/users/me").await;
        assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    }
    assert_eq!(session(&s, &sid).await["state"], "active");
    let m = metrics(&s).await;
    assert_eq!(
        metric(&m, "tokens_refreshes_total{outcome=\"rotated\"}"),
        1.0,
        "{m}"
    );
    assert_eq!(
        metric(&m, "tokens_refreshes_total{outcome=\"grace\"}"),
        19.0,
        "{m}"
    );
    // The family goes on from the successor.
    let next = refresh(&s, &successor).await;
    assert_eq!(next.status, StatusCode::OK, "{}", next.text);
    assert_ne!(next.body["refresh_token"], successor.as_str());
}

backend_tests!(
    without_grace_one_refresh_wins_and_the_family_ends,
    within_grace_all_twenty_get_the_same_successor,
);
