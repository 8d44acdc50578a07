//! Client authentication against the registry, at the service level, on
//! both backends: a created client authenticates with its secret; a wrong
//! secret, an unknown id and a deleted client fail; a rotation's grace lets
//! both secrets work until it ends; capabilities are checked and audiences
//! carried; failures are limited per client IP (IPv6 by /64) and reach the
//! audit log as aggregated rows; another replica sees a deletion within the
//! cache's TTL.

use std::{net::IpAddr, time::Duration};

use tessera_core::{
    audit::{Actor, RequestContext},
    client::{Capability, ClientAuthFailure, ClientIdentity, ClientSource},
    SecretString,
};
use tessera_server::{
    service::clients::{ClientCredentials, CreateClient, UpdateClient},
    Services,
};
use tessera_store::AuditQuery;
use tessera_test_support::{backend_tests, TestDb};

use crate::common::{self, TestServer};

const STATIC: (&str, &str) = ("INTROSPECTION_CLIENTS", "gateway:static-secret-0123456789");

async fn services(s: &TestServer, extra: &[(&str, &str)]) -> Services {
    let config = common::config(&s.db.url, s.data_dir.path(), extra);
    Services::open(&config).await.expect("services open")
}

fn basic(id: &str, secret: &str, ip: &str) -> ClientCredentials {
    let pair = (id.to_string(), SecretString::new(secret.to_string()));
    ClientCredentials::new(None, Some(Ok(pair)), None, None)
        .with_client_ip(Some(ip.parse::<IpAddr>().unwrap()))
}

async fn auth(
    svc: &Services,
    id: &str,
    secret: &str,
    needed: Capability,
) -> Result<ClientIdentity, ClientAuthFailure> {
    svc.clients
        .authenticate(
            &basic(id, secret, "198.51.100.7"),
            needed,
            &RequestContext::default(),
        )
        .await
}

async fn create(svc: &Services, caps: &[&str], audiences: Option<Vec<&str>>) -> (String, String) {
    let issued = svc
        .clients
        .create(
            CreateClient {
                name: "resource server".into(),
                capabilities: caps.iter().map(|c| c.to_string()).collect(),
                audiences: audiences.map(|a| a.iter().map(|s| s.to_string()).collect()),
                ..Default::default()
            },
            &Actor::Cli,
            &RequestContext::default(),
        )
        .await
        .expect("client created");
    (issued.client.id, issued.secret.expose().to_string())
}

async fn registry_clients_authenticate(db: TestDb) {
    let s = TestServer::start_with(db, &[STATIC]).await;
    let svc = services(&s, &[STATIC]).await;
    let (id, secret) = create(&svc, &["introspect", "ws_tickets"], Some(vec!["api"])).await;
    let me = auth(&svc, &id, &secret, Capability::Introspect)
        .await
        .unwrap();
    assert_eq!(me.id, id);
    assert_eq!(me.source, ClientSource::Registry);
    assert_eq!(
        me.capabilities,
        vec![Capability::Introspect, Capability::WsTickets]
    );
    assert_eq!(me.audiences, Some(vec!["api".to_string()]));
    assert!(me.may_see_audience("api") && !me.may_see_audience("other"));
    // The capability it lacks, a wrong secret, an unknown id.
    let cases = [
        (
            id.as_str(),
            secret.as_str(),
            Capability::Revoke,
            ClientAuthFailure::NotPermitted,
        ),
        (
            &id,
            "tsc_wrong",
            Capability::Introspect,
            ClientAuthFailure::WrongSecret,
        ),
        (
            "cl_00000000000000000000000000000000",
            &secret,
            Capability::Introspect,
            ClientAuthFailure::UnknownClient,
        ),
        (
            "nobody",
            &secret,
            Capability::Introspect,
            ClientAuthFailure::UnknownClient,
        ),
        (
            "gateway",
            &secret,
            Capability::Introspect,
            ClientAuthFailure::WrongSecret,
        ),
    ];
    for (who, with, needed, want) in cases {
        assert_eq!(auth(&svc, who, with, needed).await, Err(want), "{who}");
    }
    // The environment's client still works beside the registry.
    let env = auth(
        &svc,
        "gateway",
        "static-secret-0123456789",
        Capability::Revoke,
    )
    .await;
    assert_eq!(env.unwrap().source, ClientSource::Environment);
    // A capability change applies at once on this replica.
    let change = UpdateClient {
        capabilities: Some(vec!["revoke".into()]),
        ..Default::default()
    };
    svc.clients
        .update(&id, change, &Actor::Cli, &RequestContext::default())
        .await
        .unwrap();
    assert!(auth(&svc, &id, &secret, Capability::Revoke).await.is_ok());
    assert_eq!(
        auth(&svc, &id, &secret, Capability::Introspect).await,
        Err(ClientAuthFailure::NotPermitted)
    );
    // Deleted: it stops at once on this replica.
    svc.clients
        .delete(&id, &Actor::Cli, &RequestContext::default())
        .await
        .unwrap();
    assert_eq!(
        auth(&svc, &id, &secret, Capability::Revoke).await,
        Err(ClientAuthFailure::UnknownClient)
    );
}

async fn a_rotation_grace_lets_both_secrets_work_until_it_ends(db: TestDb) {
    let s = TestServer::start(db).await;
    let svc = services(&s, &[]).await;
    let (id, old) = create(&svc, &["introspect"], None).await;
    let ctx = RequestContext::default();
    let rotated = svc
        .clients
        .rotate_secret(&id, Some(1), &Actor::Cli, &ctx)
        .await
        .unwrap();
    let new = rotated.secret.expose().to_string();
    assert!(rotated.client.previous_secret_expires_at.is_some());
    assert!(auth(&svc, &id, &old, Capability::Introspect).await.is_ok());
    assert!(auth(&svc, &id, &new, Capability::Introspect).await.is_ok());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        auth(&svc, &id, &old, Capability::Introspect).await,
        Err(ClientAuthFailure::WrongSecret)
    );
    assert!(auth(&svc, &id, &new, Capability::Introspect).await.is_ok());
    // Without a grace the secret before stops at once.
    let again = svc
        .clients
        .rotate_secret(&id, None, &Actor::Cli, &ctx)
        .await
        .unwrap();
    assert!(again.client.previous_secret_expires_at.is_none());
    assert_eq!(
        auth(&svc, &id, &new, Capability::Introspect).await,
        Err(ClientAuthFailure::WrongSecret)
    );
    let newest = again.secret.expose().to_string();
    assert!(auth(&svc, &id, &newest, Capability::Introspect)
        .await
        .is_ok());
}

async fn failures_are_limited_per_client_ip(db: TestDb) {
    let limit = ("TESSERA_CLIENT_AUTH_FAILURE_LIMIT", "3");
    let s = TestServer::start_with(db, &[limit]).await;
    let svc = services(&s, &[limit]).await;
    let (id, secret) = create(&svc, &["introspect"], None).await;
    let ctx = RequestContext::default();
    let try_from = |ip: &'static str, with: &str| {
        let creds = basic(&id, with, ip);
        let svc = &svc;
        let ctx = &ctx;
        async move {
            svc.clients
                .authenticate(&creds, Capability::Introspect, ctx)
                .await
        }
    };
    // A right secret without the capability, or no credentials at all,
    // guesses nothing and does not count.
    for _ in 0..5 {
        let creds = basic(&id, &secret, "2001:db8:1:2::1");
        let r = svc
            .clients
            .authenticate(&creds, Capability::Revoke, &ctx)
            .await;
        assert_eq!(r, Err(ClientAuthFailure::NotPermitted));
        let none = ClientCredentials::new(None, None, None, None)
            .with_client_ip(Some("2001:db8:1:2::1".parse().unwrap()));
        let r = svc
            .clients
            .authenticate(&none, Capability::Introspect, &ctx)
            .await;
        assert_eq!(r, Err(ClientAuthFailure::Missing));
    }
    assert!(try_from("2001:db8:1:2::1", &secret).await.is_ok());
    for _ in 0..3 {
        let r = try_from("2001:db8:1:2::1", "tsc_wrong").await;
        assert_eq!(r, Err(ClientAuthFailure::WrongSecret));
    }
    // Over the limit: refused without the secret being looked at, from any
    // address of the same /64, even with the right secret.
    assert_eq!(
        try_from("2001:db8:1:2::99", &secret).await,
        Err(ClientAuthFailure::Throttled)
    );
    // Another /64 and another IPv4 address are not affected.
    assert!(try_from("2001:db8:1:3::1", &secret).await.is_ok());
    assert!(try_from("203.0.113.9", &secret).await.is_ok());
    // The failures reach the audit log as aggregated rows with the reason.
    svc.background.flush().await;
    let rows =
        s.db.store
            .list_audit(&AuditQuery {
                action: Some("client.authenticate".into()),
                ..Default::default()
            })
            .await
            .unwrap()
            .items;
    let wrong = rows
        .iter()
        .find(|r| r.details["code"] == "wrong_secret")
        .unwrap_or_else(|| panic!("no wrong_secret row: {rows:?}"));
    assert_eq!(wrong.occurrences, 3, "{wrong:?}");
    assert_eq!(wrong.outcome, "failure");
    assert_eq!(wrong.details["sample_client_ids"][0], id.as_str());
    assert!(
        rows.iter().any(|r| r.details["code"] == "throttled"),
        "{rows:?}"
    );
    let text = format!("{rows:?}");
    assert!(!text.contains(&secret) && !text.contains("2001:db8"));
}

async fn another_replica_sees_a_deletion_within_the_ttl(db: TestDb) {
    let ttl = ("TESSERA_VERIFY_CACHE_TTL", "2s");
    let s = TestServer::start_with(db, &[ttl]).await;
    let (a, b) = (services(&s, &[ttl]).await, services(&s, &[ttl]).await);
    let (id, secret) = create(&a, &["introspect"], None).await;
    // B loads the client once and then answers from memory: right after A
    // deletes it, B (which has not read the row again) still accepts it,
    // while A, which made the change, refuses at once.
    assert!(auth(&b, &id, &secret, Capability::Introspect).await.is_ok());
    a.clients
        .delete(&id, &Actor::Cli, &RequestContext::default())
        .await
        .unwrap();
    assert_eq!(
        auth(&a, &id, &secret, Capability::Introspect).await,
        Err(ClientAuthFailure::UnknownClient)
    );
    assert!(auth(&b, &id, &secret, Capability::Introspect).await.is_ok());
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        auth(&b, &id, &secret, Capability::Introspect).await,
        Err(ClientAuthFailure::UnknownClient)
    );
}

backend_tests!(
    registry_clients_authenticate,
    a_rotation_grace_lets_both_secrets_work_until_it_ends,
    failures_are_limited_per_client_ip,
    another_replica_sees_a_deletion_within_the_ttl,
);
