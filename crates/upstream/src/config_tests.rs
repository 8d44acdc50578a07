//! Config parsing tests: the documented TOML, and errors that name what is wrong.

use super::*;

const DOC: &str = r#"
[upstreams.cpj]
kind = "json_login"
url = "https://cpj.example.com/api/auth"
method = "POST"                   # optional, default POST
body = { login = "{user}", password = "${CPJ_PASSWORD}" }
token_pointer = "/token"          # JSON pointer into the response
expiry_minutes = 30
margin_seconds = 60               # default 60
default_user = "api"
users = ["api", "alice", "svc-*"] # optional; unset: default_user only

[upstreams.partner]
kind = "oauth2_client_credentials"
token_url = "https://auth.partner.example/oauth/token"
client_id = "tessera"
client_secret = "${PARTNER_CLIENT_SECRET}"
scope = "read"                    # optional; audience optional too
"#;

fn env(var: &str) -> Option<String> {
    match var {
        "CPJ_PASSWORD" => Some("pw-{user}-s3cret".into()),
        "PARTNER_CLIENT_SECRET" => Some("partner-s3cret".into()),
        _ => None,
    }
}

#[test]
fn documented_toml_resolves() {
    let ups = UpstreamsConfig::from_toml_str(DOC)
        .unwrap()
        .resolve_with(env)
        .unwrap();
    assert_eq!(ups.len(), 2);
    let cpj = &ups[0];
    assert_eq!(cpj.name, "cpj");
    assert_eq!(cpj.kind, UpstreamKind::JsonLogin);
    assert_eq!(cpj.default_user, "api");
    assert_eq!(cpj.margin, chrono::Duration::seconds(60));
    assert!(cpj.users.allows("api") && cpj.users.allows("svc-billing"));
    assert!(!cpj.users.allows("mallory"));
    let LoginSpec::Json {
        body,
        method,
        expiry,
        ..
    } = &cpj.login
    else {
        panic!("json login expected")
    };
    assert_eq!(method, reqwest::Method::POST);
    assert!(matches!(expiry, Expiry::Fixed(d) if *d == chrono::Duration::minutes(30)));
    // `{user}` inside the secret is data, not a placeholder.
    assert_eq!(
        body.as_ref().unwrap().render("ana"),
        serde_json::json!({"login": "ana", "password": "pw-{user}-s3cret"})
    );
    let partner = &ups[1];
    assert_eq!(partner.kind, UpstreamKind::Oauth2ClientCredentials);
    assert_eq!(partner.default_user, "default");
    // No list: the default user only (deny by default).
    assert!(partner.users.allows("default"));
    assert!(!partner.users.allows("anyone-else"));
    let LoginSpec::ClientCredentials {
        client_secret,
        scope,
        client_auth,
        ..
    } = &partner.login
    else {
        panic!("client credentials expected")
    };
    assert_eq!(client_secret.expose(), "partner-s3cret");
    assert_eq!(scope.as_deref(), Some("read"));
    assert_eq!(*client_auth, ClientAuth::Body);
    // No secret in any Debug output, raw or resolved.
    let debug = format!("{ups:?} {:?}", UpstreamsConfig::from_toml_str(DOC).unwrap());
    assert!(!debug.contains("s3cret"), "{debug}");
}

#[test]
fn missing_variable_is_named() {
    let err = UpstreamsConfig::from_toml_str(DOC)
        .unwrap()
        .resolve_with(|v| (v == "CPJ_PASSWORD").then(|| "x".into()))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "upstreams.partner.client_secret: environment variable PARTNER_CLIENT_SECRET is not set"
    );
    let err = UpstreamsConfig::from_toml_str(DOC)
        .unwrap()
        .resolve_with(|_| None)
        .unwrap_err();
    assert!(
        matches!(&err, ConfigError::MissingVar { upstream, field, var }
        if upstream == "cpj" && field == "body.password" && var == "CPJ_PASSWORD")
    );
}

#[test]
fn secrets_from_files() {
    let dir = std::env::temp_dir().join(format!("tessera-up-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("secret");
    std::fs::write(&path, "from-file\n").unwrap();
    let doc = format!(
        "[upstreams.p]\nkind = \"oauth2_client_credentials\"\ntoken_url = \"https://a.example/t\"\nclient_id = \"c\"\nclient_secret = \"${{file:{}}}\"\n",
        path.display()
    );
    let ups = UpstreamsConfig::from_toml_str(&doc)
        .unwrap()
        .resolve_with(|_| None)
        .unwrap();
    let LoginSpec::ClientCredentials { client_secret, .. } = &ups[0].login else {
        panic!()
    };
    assert_eq!(client_secret.expose(), "from-file");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn mistakes_are_reported_with_upstream_and_field() {
    let cases = [
        // unknown field
        ("kind = \"json_login\"\nurl = \"https://a/\"\ntoken_pointer = \"/t\"\nexpiry_minutes = 1\ntypo = 1", "typo"),
        // unknown kind
        ("kind = \"saml\"", "saml"),
        // neither expiry
        ("kind = \"json_login\"\nurl = \"https://a/\"\ntoken_pointer = \"/t\"", "upstreams.x.expiry_minutes"),
        // not a URL
        ("kind = \"json_login\"\nurl = \"ftp://a/\"\ntoken_pointer = \"/t\"\nexpiry_minutes = 5", "upstreams.x.url"),
        // pointer without slash
        ("kind = \"json_login\"\nurl = \"https://a/\"\ntoken_pointer = \"token\"\nexpiry_minutes = 5", "upstreams.x.token_pointer"),
        // margin longer than the life
        ("kind = \"json_login\"\nurl = \"https://a/\"\ntoken_pointer = \"/t\"\nexpiry_minutes = 1\nmargin_seconds = 60", "upstreams.x.margin_seconds"),
        // a users list without the default user, an empty one, a bad entry
        ("kind = \"json_login\"\nurl = \"https://a/\"\ntoken_pointer = \"/t\"\nexpiry_minutes = 5\nusers = [\"alice\"]", "upstreams.x.users: must allow the default_user"),
        ("kind = \"json_login\"\nurl = \"https://a/\"\ntoken_pointer = \"/t\"\nexpiry_minutes = 5\nusers = []", "upstreams.x.users"),
        ("kind = \"json_login\"\nurl = \"https://a/\"\ntoken_pointer = \"/t\"\nexpiry_minutes = 5\nusers = [\"\"]", "upstreams.x.users"),
        // literal secret
        ("kind = \"oauth2_client_credentials\"\ntoken_url = \"https://a/\"\nclient_id = \"c\"\nclient_secret = \"literal\"", "upstreams.x.client_secret"),
    ];
    for (body, expected) in cases {
        let doc = format!("[upstreams.x]\n{body}\n");
        let err = UpstreamsConfig::from_toml_str(&doc)
            .and_then(|c| c.resolve_with(|_| Some("v".into())))
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected), "{expected:?} not in {err:?}");
        assert!(!err.contains("literal"), "{err}");
    }
    let err = UpstreamsConfig::from_toml_str(
        "[upstreams.\"a:b\"]\nkind = \"json_login\"\nurl = \"https://a/\"\ntoken_pointer = \"/t\"\nexpiry_minutes = 5\n",
    )
    .unwrap()
    .resolve_with(|_| None)
    .unwrap_err();
    assert!(err.to_string().starts_with("upstreams.a:b."), "{err}");
}
