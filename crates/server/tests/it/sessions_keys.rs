//! Signing-key rotation on both backends, done as an operator does it
//! (through the services on the same database, not the serving process): the
//! new key is published before it signs, logins meanwhile still get tokens,
//! tokens signed before keep verifying (ours and PyJWT's), and after the
//! pre-publication delay new tokens carry the new `kid`.

use std::time::Duration;

use crate::common::{
    self, eventually,
    people::{create_user, jwks_kids, kid, pyjwt_verify, signed_in},
    TestServer,
};
use reqwest::StatusCode;
use tessera_core::audit::{Actor, RequestContext};
use tessera_server::Services;
use tessera_test_support::{backend_tests, TestDb};

const PREPUBLISH: (&str, &str) = ("TESSERA_SIGNING_KEY_PREPUBLISH", "3s");

/// A new login's access token.
async fn access_token(s: &TestServer) -> String {
    signed_in(s, "keys@example.com").await["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `token` works on `/v1/users/me` and PyJWT verifies it with key `kid`.
async fn still_verifies(s: &TestServer, token: &str, kid: &str) {
    let me = s.with_token(token).get("/v1/users/me").await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    let v = pyjwt_verify(s, token, None).await;
    assert_eq!(v["kid"], kid, "{v}");
}

async fn a_rotated_key_is_published_first_and_signs_after_the_delay(db: TestDb) {
    let s = TestServer::start_with(db, &[PREPUBLISH]).await;
    create_user(&s, "keys@example.com").await;
    let before = access_token(&s).await;
    let old = kid(&before);
    assert_eq!(jwks_kids(&s).await, vec![old.clone()]);

    let config = common::config(&s.db.url, s.data_dir.path(), &[PREPUBLISH]);
    let operator = Services::open(&config).await.expect("services open");
    let rotated = operator
        .keys
        .rotate(&Actor::Cli, &RequestContext::default())
        .await
        .expect("rotate");
    drop(operator);
    let new = rotated.kid.clone();
    assert_ne!(new, old);
    assert_eq!(rotated.state, "pending", "{rotated:?}");

    // The serving process publishes the new key before it signs.
    let probe = || jwks_kids(&s);
    let kids = eventually(
        "the new kid in the JWKS",
        20,
        Duration::from_millis(100),
        probe,
        |k| k.contains(&new),
    )
    .await;
    assert!(kids.contains(&old), "{kids:?}");
    assert!(
        chrono::Utc::now() < rotated.signs_from,
        "published only once it signed"
    );
    // Meanwhile logins go on, signed by the old key.
    let meanwhile = access_token(&s).await;
    assert_eq!(kid(&meanwhile), old);
    still_verifies(&s, &before, &old).await;

    let until = (rotated.signs_from - chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    tokio::time::sleep(until + Duration::from_millis(200)).await;
    let after = access_token(&s).await;
    assert_eq!(kid(&after), new, "a login after the delay");
    still_verifies(&s, &after, &new).await;
    // The old key stays published while its tokens live.
    still_verifies(&s, &before, &old).await;
    still_verifies(&s, &meanwhile, &old).await;
    let kids = jwks_kids(&s).await;
    assert!(kids.contains(&old) && kids.contains(&new), "{kids:?}");
}

backend_tests!(
    #[needs(PythonModule("jwt"), PythonModule("cryptography"))]
    a_rotated_key_is_published_first_and_signs_after_the_delay,
);
