//! Browser front ends on another site: `GET /csrf`, the CSRF guard on
//! login (the routes `csrf::protect` wraps), CORS for the allowed origins,
//! and a headless chromium that signs in across sites, on both backends.

use reqwest::{Method, StatusCode};
use serde_json::json;
use tessera_test_support::TestDb;

use crate::common::{
    browser::Page,
    people::{create_user, metric, metrics, signed_in, PASSWORD},
    Reply, TestServer,
};

const APP: &str = "https://app.example.com";
const OTHER: &str = "http://localhost:3000";
const EVIL: &str = "https://evil.example";
const EMAIL: &str = "csrf@example.com";
const ALLOWED: &[(&str, &str)] = &[(
    "TESSERA_ALLOWED_ORIGINS",
    "https://app.example.com, http://localhost:3000",
)];

/// A request with exactly these headers (and a body of this content type).
async fn request(
    s: &TestServer,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, String)>,
) -> Reply {
    let mut req = s.http.request(method, format!("{}{path}", s.base));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    if let Some((content_type, body)) = body {
        req = req.header("content-type", content_type).body(body);
    }
    Reply::from(req.send().await.expect("request sent")).await
}

fn login_json() -> Option<(&'static str, String)> {
    let body = json!({"email": EMAIL, "password": PASSWORD});
    Some(("application/json", body.to_string()))
}

async fn login(s: &TestServer, headers: &[(&str, &str)]) -> Reply {
    request(s, Method::POST, "/v1/auth/login", headers, login_json()).await
}

/// A token from `GET /csrf` for `origin`.
async fn csrf_token(s: &TestServer, origin: &str) -> String {
    let r = request(s, Method::GET, "/csrf", &[("origin", origin)], None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["token"].as_str().unwrap().to_string()
}

#[track_caller]
fn assert_refused(r: &Reply, case: &str) {
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{case}: {}", r.text);
    r.assert_problem(StatusCode::FORBIDDEN, "csrf_failed");
}

async fn login_refuses_browser_requests_without_a_valid_token(db: TestDb) {
    let s = TestServer::start_with(db, ALLOWED).await;
    create_user(&s, EMAIL).await;
    let token = csrf_token(&s, APP).await;
    let other = csrf_token(&s, OTHER).await;
    let cases: [(&str, &[(&str, &str)]); 10] = [
        ("no token", &[("origin", APP)]),
        (
            "a wrong token",
            &[("origin", APP), ("x-csrf-token", "4102444800.00ff")],
        ),
        ("an empty token", &[("origin", APP), ("x-csrf-token", "")]),
        (
            "a token for another origin",
            &[("origin", APP), ("x-csrf-token", &other)],
        ),
        (
            "an origin not allowed",
            &[("origin", EVIL), ("x-csrf-token", &token)],
        ),
        (
            "Origin: null",
            &[("origin", "null"), ("x-csrf-token", &token)],
        ),
        (
            "a cookie, no Origin",
            &[("cookie", "sid=1"), ("x-csrf-token", &token)],
        ),
        (
            "Sec-Fetch-Site: cross-site, no Origin",
            &[("sec-fetch-site", "cross-site"), ("x-csrf-token", &token)],
        ),
        (
            "a bearer that is no token",
            &[("origin", EVIL), ("authorization", "Bearer tsr_nope")],
        ),
        (
            "a bearer that is no JWT",
            &[("origin", EVIL), ("authorization", "Bearer a.b.c")],
        ),
    ];
    for (case, headers) in cases {
        assert_refused(&login(&s, headers).await, case);
    }
    // The second step of a login is guarded too.
    let mfa = Some((
        "application/json",
        json!({"challenge_id": "c", "code": "123456"}).to_string(),
    ));
    let r = request(
        &s,
        Method::POST,
        "/v1/auth/login/mfa",
        &[("origin", APP)],
        mfa.clone(),
    )
    .await;
    assert_refused(&r, "login/mfa without a token");
    let with_token = [("origin", APP), ("x-csrf-token", token.as_str())];
    let r = request(&s, Method::POST, "/v1/auth/login/mfa", &with_token, mfa).await;
    assert_ne!(
        r.status,
        StatusCode::FORBIDDEN,
        "login/mfa with a token: {}",
        r.text
    );
    let text = metrics(&s).await;
    for (reason, at_least) in [("origin", 5.0), ("missing", 2.0), ("invalid", 3.0)] {
        let series = format!("tokens_csrf_failures_total{{reason=\"{reason}\"}}");
        assert!(metric(&text, &series) >= at_least, "{series}: {text}");
    }
}

async fn login_passes_with_the_token_or_a_bearer_or_outside_browsers(db: TestDb) {
    let s = TestServer::start_with(db, ALLOWED).await;
    create_user(&s, EMAIL).await;
    let token = csrf_token(&s, APP).await;
    let access = signed_in(&s, EMAIL).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let admin = format!("Bearer {}", s.admin);
    let person = format!("Bearer {access}");
    let cases: [(&str, &[(&str, &str)]); 7] = [
        (
            "the token from its origin",
            &[("origin", APP), ("x-csrf-token", &token)],
        ),
        (
            "the origin spelt otherwise",
            &[
                ("origin", "HTTPS://App.Example.com:443"),
                ("x-csrf-token", &token),
            ],
        ),
        ("not a browser", &[]),
        (
            "Sec-Fetch-Site: same-origin",
            &[("sec-fetch-site", "same-origin")],
        ),
        ("Sec-Fetch-Site: none", &[("sec-fetch-site", "none")]),
        (
            "an admin token",
            &[
                ("origin", EVIL),
                ("cookie", "sid=1"),
                ("authorization", &admin),
            ],
        ),
        (
            "a person's access token",
            &[("origin", "null"), ("authorization", &person)],
        ),
    ];
    for (case, headers) in cases {
        let r = login(&s, headers).await;
        assert_eq!(r.status, StatusCode::OK, "{case}: {}", r.text);
        assert!(r.body["access_token"].is_string(), "{case}: {}", r.text);
    }
    // The token in a form field: the guard passes the request on with its
    // body intact (login reads only JSON, hence 415 rather than 403).
    let form = |t: &str| {
        Some((
            "application/x-www-form-urlencoded",
            format!("csrf_token={t}&x=1"),
        ))
    };
    let r = request(
        &s,
        Method::POST,
        "/v1/auth/login",
        &[("origin", APP)],
        form(&token),
    )
    .await;
    r.assert_problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    let r = request(
        &s,
        Method::POST,
        "/v1/auth/login",
        &[("origin", APP)],
        form("1.ff"),
    )
    .await;
    assert_refused(&r, "a wrong token in the form");
}

async fn csrf_tokens_go_to_allowed_origins_only(db: TestDb) {
    let s = TestServer::start_with(db, ALLOWED).await;
    let r = request(&s, Method::GET, "/csrf", &[("origin", APP)], None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["expires_in"], 7200, "{}", r.text);
    let token = r.body["token"].as_str().unwrap();
    assert!(token.len() > 64, "{token}");
    assert_eq!(r.headers["cache-control"], "no-store");
    assert_eq!(r.headers["access-control-allow-origin"], APP);
    for (case, headers) in [
        ("no Origin", &[][..]),
        ("an origin not allowed", &[("origin", EVIL)]),
        ("Origin: null", &[("origin", "null")]),
        ("a cookie, no Origin", &[("cookie", "sid=1")]),
    ] {
        let r = request(&s, Method::GET, "/csrf", headers, None).await;
        assert_refused(&r, case);
        assert!(
            r.headers.get("access-control-allow-origin").is_none(),
            "{case}"
        );
    }
}

async fn without_allowed_origins_browsers_are_refused_and_cors_is_off(db: TestDb) {
    let s = TestServer::start(db).await;
    create_user(&s, EMAIL).await;
    let r = request(&s, Method::GET, "/csrf", &[("origin", APP)], None).await;
    assert_refused(&r, "GET /csrf");
    assert!(r.headers.get("access-control-allow-origin").is_none());
    let r = login(&s, &[("origin", APP), ("x-csrf-token", "4102444800.00ff")]).await;
    assert_refused(&r, "login from a browser");
    assert_eq!(login(&s, &[]).await.status, StatusCode::OK);
    let preflight = [("origin", APP), ("access-control-request-method", "POST")];
    let r = request(&s, Method::OPTIONS, "/v1/auth/login", &preflight, None).await;
    r.assert_problem(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    assert!(r.headers.get("access-control-allow-origin").is_none());
}

async fn cors_answers_the_allowed_origins_only(db: TestDb) {
    let s = TestServer::start_with(db, ALLOWED).await;
    let preflight = |origin| {
        [
            ("origin", origin),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "content-type,x-csrf-token,x-device-id",
            ),
        ]
    };
    // Answered before authentication: /v1/tokens needs an admin token.
    for path in ["/v1/auth/login", "/v1/tokens"] {
        let r = request(&s, Method::OPTIONS, path, &preflight(OTHER), None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
        let h = |name: &str| r.headers[name].to_str().unwrap().to_ascii_lowercase();
        assert_eq!(h("access-control-allow-origin"), OTHER, "{path}");
        assert!(h("access-control-allow-methods").contains("post"), "{path}");
        let allowed = h("access-control-allow-headers");
        assert!(
            allowed.contains("x-csrf-token") && allowed.contains("x-device-id"),
            "{path}"
        );
        assert_eq!(h("access-control-max-age"), "600", "{path}");
        assert!(r.headers.get("access-control-allow-credentials").is_none());
        assert!(r.headers.get("x-request-id").is_some(), "{path}");
    }
    let r = request(
        &s,
        Method::OPTIONS,
        "/v1/auth/login",
        &preflight(EVIL),
        None,
    )
    .await;
    assert!(
        r.headers.get("access-control-allow-origin").is_none(),
        "{:?}",
        r.headers
    );
    // On answers: the origin echoed, the headers a page may read, errors too.
    let r = login(&s, &[("origin", APP)]).await;
    assert_refused(&r, "login without a token");
    assert_eq!(r.headers["access-control-allow-origin"], APP);
    let exposed = r.headers["access-control-expose-headers"].to_str().unwrap();
    let exposed = exposed.to_ascii_lowercase();
    assert!(
        exposed.contains("retry-after") && exposed.contains("x-request-id"),
        "{exposed}"
    );
    assert!(r.headers["vary"].to_str().unwrap().contains("origin"));
}

/// The path real front ends take: a page on another site fetches a token
/// through CORS and signs in with it; without the token it reads the 403.
async fn browser_fetches_csrf_and_logs_in_cross_site(db: TestDb) {
    let page = Page::bind().await;
    let s = TestServer::start_with(db, &[("TESSERA_ALLOWED_ORIGINS", page.origin())]).await;
    create_user(&s, EMAIL).await;
    let script = format!(
        r#"
        const login = (headers) => fetch(tessera + "/v1/auth/login", {{
            method: "POST",
            headers: {{ "Content-Type": "application/json", ...headers }},
            body: JSON.stringify({{ email: {email}, password: {password} }}),
        }});
        const csrf = await (await fetch(tessera + "/csrf")).json();
        const refused = await login({{}});
        const signed = await login({{ "X-CSRF-Token": csrf.token }});
        const body = await signed.json();
        return {{
            expires_in: csrf.expires_in,
            refused: [refused.status, (await refused.json()).code],
            status: signed.status,
            access_token: typeof body.access_token,
            request_id: signed.headers.get("x-request-id") !== null,
        }};
        "#,
        email = json!(EMAIL),
        password = json!(PASSWORD),
    );
    let out = page.run(&s.base, &script).await;
    assert_eq!(
        out,
        json!({
            "expires_in": 7200,
            "refused": [403, "csrf_failed"],
            "status": 200,
            "access_token": "string",
            "request_id": true,
        })
    );
}

/// A page whose origin is not allowed gets no CORS answer: the browser
/// blocks reading the token and the login's preflight, so the login is
/// never sent.
async fn browser_on_an_origin_not_allowed_cannot_fetch(db: TestDb) {
    let page = Page::bind().await;
    let s = TestServer::start_with(db, ALLOWED).await;
    create_user(&s, EMAIL).await;
    let script = r#"
        const attempt = (f) => f().then((r) => "status " + r.status, (e) => e.name);
        return {
            csrf: await attempt(() => fetch(tessera + "/csrf")),
            login: await attempt(() => fetch(tessera + "/v1/auth/login", {
                method: "POST",
                headers: { "Content-Type": "application/json", "X-CSRF-Token": "1.ff" },
                body: "{}",
            })),
        };
    "#;
    let out = page.run(&s.base, script).await;
    assert_eq!(out, json!({"csrf": "TypeError", "login": "TypeError"}));
    let text = metrics(&s).await;
    // The refused GET /csrf reached the server; the login never did.
    let origin = "tokens_csrf_failures_total{reason=\"origin\"}";
    assert_eq!(metric(&text, origin), 1.0, "{text}");
}

/// `csrf::protect` documents the refusal on each route it guards, beside
/// a 403 the route already had; `GET /csrf` documents its own.
fn guarded_routes_document_the_refusal() {
    let doc = tessera_server::http::router::openapi();
    for (path, method, also) in [
        ("/v1/auth/login", "post", Some("email_unverified")),
        ("/v1/auth/login/mfa", "post", None),
        ("/csrf", "get", None),
    ] {
        let forbidden = &doc["paths"][path][method]["responses"]["403"];
        let description = forbidden["description"].as_str().unwrap_or_default();
        assert!(description.contains("`csrf_failed`"), "{path}: {forbidden}");
        assert!(
            also.is_none_or(|code| description.contains(code)),
            "{path}: {forbidden}"
        );
        let schema = &forbidden["content"]["application/problem+json"]["schema"]["$ref"];
        assert_eq!(schema, "#/components/schemas/Problem", "{path}");
    }
    // Refresh is not guarded: its 403 is `device_mismatch` alone.
    let refresh = &doc["paths"]["/v1/auth/refresh"]["post"]["responses"]["403"];
    let description = refresh["description"].as_str().unwrap_or_default();
    assert!(
        description.contains("`device_mismatch`") && !description.contains("csrf"),
        "refresh is not guarded: {refresh}"
    );
}

tessera_test_support::tests! {
    backends:
    login_refuses_browser_requests_without_a_valid_token,
    login_passes_with_the_token_or_a_bearer_or_outside_browsers,
    csrf_tokens_go_to_allowed_origins_only,
    without_allowed_origins_browsers_are_refused_and_cors_is_off,
    cors_answers_the_allowed_origins_only,
    #[needs(Command("chromium"))]
    browser_fetches_csrf_and_logs_in_cross_site,
    #[needs(Command("chromium"))]
    browser_on_an_origin_not_allowed_cannot_fetch;
    sync: guarded_routes_document_the_refusal;
}
