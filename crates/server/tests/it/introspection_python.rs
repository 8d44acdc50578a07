//! An independent OAuth2 client library (Python's Authlib) introspects and
//! revokes, with `client_secret_basic` and with `client_secret_post`, on
//! both backends.

use crate::{
    common::{
        people::{create_user, python, signed_in},
        TestServer,
    },
    introspection::{env, CLIENT, SECRET},
};
use serde_json::json;
use tessera_test_support::{backend_tests, TestDb};

/// Introspects an access and a refresh token, revokes the refresh token,
/// introspects the access token again, and tries a wrong secret.
const AUTHLIB_INTROSPECT: &str = r#"
import json, sys
from authlib.integrations.requests_client import OAuth2Session
base, client_id, secret, method, access, refresh = sys.argv[1:7]
def client(s):
    return OAuth2Session(client_id=client_id, client_secret=s,
                         token_endpoint_auth_method=method,
                         revocation_endpoint_auth_method=method)
c = client(secret)
introspect, revoke = base + "/oauth2/introspect", base + "/oauth2/revoke"
out = {
    "access": c.introspect_token(introspect, token=access, token_type_hint="access_token").json(),
    "refresh": c.introspect_token(introspect, token=refresh, token_type_hint="refresh_token").json(),
}
r = c.revoke_token(revoke, token=refresh, token_type_hint="refresh_token")
out["revoked"] = [r.status_code, r.text]
out["after"] = c.introspect_token(introspect, token=access).json()
bad = client("not-the-secret-0123456789").introspect_token(introspect, token=access)
out["bad"] = [bad.status_code, bad.json(), bad.headers.get("www-authenticate")]
print(json.dumps(out))
"#;

async fn authlib_introspects_and_revokes(db: TestDb) {
    let s = TestServer::start_with(db, &env()).await;
    create_user(&s, "authlib@example.com").await;
    for method in ["client_secret_basic", "client_secret_post"] {
        let l = signed_in(&s, "authlib@example.com").await;
        let args = [
            s.base.as_str(),
            CLIENT,
            SECRET,
            method,
            l["access_token"].as_str().unwrap(),
            l["refresh_token"].as_str().unwrap(),
        ];
        let out = python(AUTHLIB_INTROSPECT, args.map(str::to_string).to_vec()).await;
        assert_eq!(out["access"]["active"], true, "{method}: {out}");
        assert_eq!(out["access"]["sid"], l["session_id"], "{method}: {out}");
        assert_eq!(
            out["refresh"]["token_type"], "refresh_token",
            "{method}: {out}"
        );
        assert_eq!(out["revoked"], json!([200, ""]), "{method}: {out}");
        assert_eq!(out["after"], json!({"active": false}), "{method}: {out}");
        assert_eq!(
            out["bad"],
            json!([401, {"error": "invalid_client"}, "Basic realm=\"tessera\""]),
            "{method}: {out}"
        );
    }
}

backend_tests!(
    #[needs(PythonModule("authlib"), PythonModule("requests"))]
    authlib_introspects_and_revokes,
);
