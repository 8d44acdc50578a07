//! A raw secret appears exactly once: in the response that created or rotated
//! it. Not in the database, not in the logs, not in any other response.
//! (It installs the binary's global log capture at TRACE: `common::logs`.)

use crate::common::{logs::logs, TestServer};
use serde_json::json;
use tessera_test_support::{backend_tests, TestDb};

async fn secrets_appear_only_in_their_issuing_response(db: TestDb) {
    let logs = logs();
    let mut s = TestServer::start(db).await;
    let mut other_responses = String::new();

    let created = s
        .as_admin()
        .post_json("/v1/tokens", json!({"name": "leak-check"}))
        .await;
    let id = created.body["token"]["id"].as_str().unwrap().to_string();
    let first = created.body["secret"].as_str().unwrap().to_string();
    let rotated = s.rotate(&id, Some(json!({"grace_seconds": 60}))).await;
    let second = rotated.body["secret"].as_str().unwrap().to_string();
    assert!(!created.text.contains(&second) && !rotated.text.contains(&first));

    // Exercise every path a secret passes through, including failures.
    for secret in [&first, &second] {
        other_responses.push_str(&s.verify(secret).await.to_string());
        let r = s.with_token(secret).get("/v1/tokens/self").await;
        other_responses.push_str(&r.text);
        let typo = format!("{}x", &secret[..secret.len() - 1]);
        other_responses.push_str(&s.verify(&typo).await.to_string());
        let r = s
            .as_anonymous()
            .post_json("/v1/tokens/verify", json!({"token": 5, "scopes": secret}))
            .await;
        other_responses.push_str(&r.text);
        let r = s.with_token(secret).get("/v1/tokens").await;
        other_responses.push_str(&r.text);
    }
    for path in [
        format!("/v1/tokens/{id}"),
        "/v1/tokens".to_string(),
        "/metrics".to_string(),
    ] {
        other_responses.push_str(&s.as_admin().get(&path).await.text);
    }
    let r = s.revoke(&id, Some(json!({"reason": "test"}))).await;
    other_responses.push_str(&r.text);
    // Let the background writer flush usage and failure audit rows.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    s.stop().await;

    let db_text = s.db.all_text().await;
    assert!(db_text.contains("token.create"), "read the audit log");
    let log_text = logs.text();
    assert!(log_text.contains("token created"), "logs were captured");
    for secret in [&first, &second] {
        let body = &secret[4..];
        assert!(!db_text.contains(body), "secret found in the database");
        assert!(!log_text.contains(body), "secret found in the logs");
        assert!(
            !other_responses.contains(body),
            "secret found in a response"
        );
    }
}

/// TOTP secrets, recovery codes and auth codes: never in the database or the
/// logs in clear; the subject appears in logs only masked.
async fn second_factor_secrets_never_leak(db: TestDb) {
    use crate::common::mfa::{check, code_at, enroll, mfa_token, now, TOTP_KEY};
    let logs = logs();
    let mut s = TestServer::start_with(
        db,
        &[
            ("TOTP_ENC_KEY", TOTP_KEY),
            ("TESSERA_AUTH_CODE_DIGITS", "8"),
        ],
    )
    .await;
    let token = mfa_token(&s).await;
    let subject = "u_leakcheck_4242";
    let e = enroll(&s, &token, subject, json!({})).await;
    let secret_b32 = e["secret"].as_str().unwrap().to_string();
    let raw = tessera_core::mfa::totp::base32_decode(&secret_b32).unwrap();
    let secret_hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let t = now();
    let id = e["device_id"].as_str().unwrap();
    let path = format!("/v1/subjects/{subject}/totp/{id}/confirm");
    assert_eq!(
        check(&s, &token, &path, json!({"code": code_at(&e, t)})).await["valid"],
        true
    );
    let path = format!("/v1/subjects/{subject}/totp/verify");
    check(&s, &token, &path, json!({"code": "000000"})).await;

    let r = s
        .with_token(&token)
        .post(&format!("/v1/subjects/{subject}/recovery-codes"))
        .await;
    let codes: Vec<String> = serde_json::from_value(r.body["codes"].clone()).unwrap();
    let path = format!("/v1/subjects/{subject}/recovery-codes/verify");
    check(&s, &token, &path, json!({"code": codes[0]})).await;

    let send = json!({"subject": subject, "purpose": "login", "channel": "email", "destination": "leak@example.com"});
    let r = s.with_token(&token).post_json("/v1/auth-codes", send).await;
    assert_eq!(r.status, reqwest::StatusCode::CREATED, "{}", r.text);
    let auth_code = s.logged_code(8);
    let verify = json!({"subject": subject, "purpose": "login", "code": auth_code});
    assert_eq!(
        check(&s, &token, "/v1/auth-codes/verify", verify).await["valid"],
        true
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    s.stop().await;

    let db_text = s.db.all_text().await;
    let log_text = logs.text();
    assert!(log_text.contains("u_…4242"), "the masked subject is logged");
    assert!(
        !log_text.contains(subject),
        "the subject is logged unmasked"
    );
    assert!(!log_text.contains("leak@example.com") && !db_text.contains("leak@example.com"));
    let mut secrets = vec![secret_b32.clone(), secret_hex, auth_code];
    for c in &codes {
        secrets.push(c.clone());
        secrets.push(c.replace('-', ""));
    }
    for secret in &secrets {
        assert!(
            !db_text.contains(secret.as_str()),
            "{secret} found in the database"
        );
        assert!(
            !log_text.contains(secret.as_str()),
            "{secret} found in the logs"
        );
    }
}

/// A person's password, refresh tokens and access tokens: never in the
/// database or the logs, after a login, a refresh, a failed login and a
/// replayed refresh token.
async fn session_secrets_never_leak(db: TestDb) {
    use crate::common::people::{create_user, login, refresh, signed_in, PASSWORD};
    let logs = logs();
    let mut s = TestServer::start(db).await;
    create_user(&s, "leaky@example.com").await;
    let l = signed_in(&s, "leaky@example.com").await;
    let (rt1, access1) = (&l["refresh_token"], &l["access_token"]);
    let r = refresh(&s, rt1.as_str().unwrap()).await;
    assert_eq!(r.status, reqwest::StatusCode::OK, "{}", r.text);
    let (rt2, access2) = (&r.body["refresh_token"], &r.body["access_token"]);
    let wrong = format!("{PASSWORD}-but-wrong");
    let r = login(&s, "leaky@example.com", &wrong).await;
    r.assert_problem(reqwest::StatusCode::UNAUTHORIZED, "invalid_credentials");
    let r = s.as_admin().get("/v1/users").await;
    assert!(
        !r.text.contains(PASSWORD) && !r.text.contains("$argon2"),
        "{}",
        r.text
    );
    let r = refresh(&s, rt1.as_str().unwrap()).await; // reuse: alarms are logged
    r.assert_problem(reqwest::StatusCode::UNAUTHORIZED, "invalid_grant");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    s.stop().await;

    let db_text = s.db.all_text().await;
    assert!(
        db_text.contains("auth.refresh.reuse_detected"),
        "read the audit log"
    );
    let log_text = logs.text();
    assert!(
        log_text.contains("auth.refresh.reuse_detected"),
        "logs were captured"
    );
    let mut secrets = vec![PASSWORD.to_string(), wrong];
    for token in [rt1, rt2, access1, access2] {
        let token = token.as_str().unwrap();
        // The whole token, and its random part alone (a JWT's signature).
        secrets.push(token.to_string());
        let random = match token.strip_prefix("tsr_rt_") {
            Some(body) => body,
            None => token.rsplit('.').next().unwrap(),
        };
        secrets.push(random.to_string());
    }
    for secret in &secrets {
        assert!(
            !db_text.contains(secret.as_str()),
            "{secret} found in the database"
        );
        assert!(
            !log_text.contains(secret.as_str()),
            "{secret} found in the logs"
        );
    }
}

/// WebSocket tickets: never in the database or the logs (at TRACE), after
/// an issue, a redemption, a replay and a refused redemption; the gateway's
/// client secret neither.
async fn ws_tickets_never_leak(db: TestDb) {
    use crate::{
        common::people::{create_user, signed_in},
        ws_tickets::gateway,
    };
    let logs = logs();
    let mut s = TestServer::start(db).await;
    let gw = gateway(&s, "leak-gateway", &["ws_tickets"]).await;
    create_user(&s, "wsleak@example.com").await;
    let l = signed_in(&s, "wsleak@example.com").await;
    let access = l["access_token"].as_str().unwrap();
    let mut tickets = Vec::new();
    for audience in ["chat", "news"] {
        let r = s
            .with_token(access)
            .post_json("/v1/ws-tickets", json!({ "audience": audience }))
            .await;
        assert_eq!(r.status, reqwest::StatusCode::CREATED, "{}", r.text);
        tickets.push(r.body["ticket"].as_str().unwrap().to_string());
    }
    let mut answers = String::new();
    for (t, audience) in [
        (&tickets[0], "chat"),
        (&tickets[0], "chat"),
        (&tickets[1], "chat"),
    ] {
        let r = s
            .http
            .post(format!("{}/v1/ws-tickets/redeem", s.base))
            .basic_auth(&gw.id, Some(&gw.secret))
            .json(&json!({ "ticket": t, "audience": audience }))
            .send()
            .await
            .unwrap();
        answers.push_str(&r.text().await.unwrap());
    }
    assert!(
        answers.contains("true") && answers.contains("false"),
        "{answers}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    s.stop().await;

    let db_text = s.db.all_text().await;
    assert!(db_text.contains("ws.connection.open"), "read the audit log");
    let log_text = logs.text();
    for secret in tickets.iter().chain([&gw.secret]) {
        let body = &secret[secret.len() - 30..];
        assert!(!db_text.contains(body), "a secret in the database");
        assert!(!log_text.contains(body), "a secret in the logs");
        assert!(!answers.contains(body), "a secret in a response");
    }
}

/// OAuth2 client secrets (generated ones and those of
/// `INTROSPECTION_CLIENTS`): in the response that issued them and nowhere
/// else, through create, rotation, changes, listing, right and wrong
/// authentications and deletion, at TRACE.
async fn client_secrets_never_leak(db: TestDb) {
    use tessera_core::{audit::RequestContext, client::Capability, SecretString};
    use tessera_server::service::clients::ClientCredentials;
    const STATIC_SECRET: &str = "static-leak-check-0123456789";
    let env = [(
        "INTROSPECTION_CLIENTS",
        "gateway:static-leak-check-0123456789",
    )];
    let logs = logs();
    let mut s = TestServer::start_with(db, &env).await;
    let created = s
        .as_admin()
        .post_json(
            "/v1/clients",
            json!({"name": "leak-check", "capabilities": ["introspect"]}),
        )
        .await;
    let id = created.body["client"]["id"].as_str().unwrap().to_string();
    let first = created.body["client_secret"].as_str().unwrap().to_string();
    let path = format!("/v1/clients/{id}");
    let rotated = s
        .as_admin()
        .post_json(
            &format!("{path}/rotate-secret"),
            json!({"grace_seconds": 60}),
        )
        .await;
    let second = rotated.body["client_secret"].as_str().unwrap().to_string();
    let mut other = String::new();
    other.push_str(
        &s.as_admin()
            .patch_json(&path, json!({"name": "n"}))
            .await
            .text,
    );
    other.push_str(&s.as_admin().get(&path).await.text);
    other.push_str(&s.as_admin().get("/v1/clients").await.text);
    other.push_str(&s.as_admin().get("/v1/clients/gateway").await.text);
    // Authentications, right and wrong, through a service on the same
    // database (the endpoints that authenticate clients log the same way).
    let config = crate::common::config(&s.db.url, s.data_dir.path(), &env);
    let svc = tessera_server::Services::open(&config).await.unwrap();
    for (who, secret) in [
        (id.as_str(), first.as_str()),
        (&id, &second),
        (&id, &format!("{}x", &second[..second.len() - 1])),
        ("gateway", STATIC_SECRET),
        ("gateway", &first),
    ] {
        let pair = (who.to_string(), SecretString::new(secret.to_string()));
        let creds = ClientCredentials::new(None, Some(Ok(pair)), None, None)
            .with_client_ip(Some("192.0.2.1".parse().unwrap()));
        let _ = svc
            .clients
            .authenticate(&creds, Capability::Introspect, &RequestContext::default())
            .await;
    }
    svc.background.flush().await;
    other.push_str(&s.as_admin().delete(&path).await.text);
    s.stop().await;

    let db_text = s.db.all_text().await;
    assert!(
        db_text.contains("client.rotate_secret"),
        "read the audit log"
    );
    assert!(db_text.contains("client.authenticate"), "failures audited");
    let log_text = logs.text();
    assert!(
        log_text.contains("client authentication failed"),
        "logs were captured"
    );
    assert!(!created.text.contains(&second) && !rotated.text.contains(&first));
    for secret in [&first[4..], &second[4..], STATIC_SECRET] {
        assert!(!db_text.contains(secret), "{secret} found in the database");
        assert!(!log_text.contains(secret), "{secret} found in the logs");
        assert!(!other.contains(secret), "{secret} found in a response");
    }
}

/// Tokens a resource server introspects and revokes, and the client's
/// secret (right and wrong, by Basic and in the form): never in the
/// database or the logs captured at TRACE.
async fn introspected_secrets_never_leak(db: TestDb) {
    use crate::common::people::{create_user, signed_in};
    use crate::introspection::{env, introspect, post_form, Auth, CLIENT, SECRET};
    let logs = logs();
    let mut s = TestServer::start_with(db, &env()).await;
    create_user(&s, "peek@example.com").await;
    let l = signed_in(&s, "peek@example.com").await;
    let (access, rt) = (
        l["access_token"].as_str().unwrap().to_string(),
        l["refresh_token"].as_str().unwrap().to_string(),
    );
    let wrong = "rs-gateway-secret-but-wrong-42";
    for token in [&access, &rt] {
        assert_eq!(introspect(&s, token).await["active"], true);
        let fields = [("token", token.as_str())];
        post_form(
            &s,
            "/oauth2/introspect",
            &fields,
            Auth::Post(CLIENT, SECRET),
        )
        .await;
        let r = post_form(
            &s,
            "/oauth2/introspect",
            &fields,
            Auth::Basic(CLIENT, wrong),
        )
        .await;
        assert_eq!(r.status, reqwest::StatusCode::UNAUTHORIZED);
        post_form(&s, "/oauth2/introspect", &fields, Auth::Post(CLIENT, wrong)).await;
    }
    let r = post_form(
        &s,
        "/oauth2/revoke",
        &[("token", &rt)],
        Auth::Basic(CLIENT, SECRET),
    )
    .await;
    assert_eq!(r.status, reqwest::StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    s.stop().await;

    let db_text = s.db.all_text().await;
    assert!(db_text.contains("client_revocation"), "read the sessions");
    let log_text = logs.text();
    assert!(
        log_text.contains("client authentication failed"),
        "logs were captured"
    );
    let signature = access.rsplit('.').next().unwrap();
    let random = rt.strip_prefix("tsr_rt_").unwrap();
    for secret in [
        access.as_str(),
        signature,
        rt.as_str(),
        random,
        SECRET,
        wrong,
    ] {
        assert!(!db_text.contains(secret), "{secret} found in the database");
        assert!(!log_text.contains(secret), "{secret} found in the logs");
    }
}

backend_tests!(
    secrets_appear_only_in_their_issuing_response,
    second_factor_secrets_never_leak,
    session_secrets_never_leak,
    ws_tickets_never_leak,
    client_secrets_never_leak,
    introspected_secrets_never_leak,
);
