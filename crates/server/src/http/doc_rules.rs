//! Rules of the request schemas that the `ToSchema` derives cannot state:
//! constraints on the items of a list, a field whose form depends on another
//! field, and the scopes this deployment configured. Applied to the generated
//! document so that it accepts exactly what the server accepts (schemathesis
//! holds it to that in CI).

use serde_json::{json, Value};

/// Roles, grant scopes and purposes: 1-64 of a-z, 0-9, `_ : . -`
/// (`tessera_core::invite::is_role_name`).
const ROLE_NAME: &str = "^[a-z0-9_:.-]{1,64}$";
/// A subject: 1-200 characters, not all blank, no control characters
/// (`tessera_core::ids::validate_subject`).
const SUBJECT: &str = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$";
/// The plain address `tessera_core::mfa::auth_code::validate_destination`
/// accepts: dot-atom local part, two or more DNS labels.
const EMAIL: &str = r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$";
/// An address's local part is at most 64 characters (RFC 5321), which the
/// pattern above cannot count across its dots.
const EMAIL_LOCAL_PART: &str = "^[^@]{1,64}@";
/// Ids and cursors (`tessera_core::ids::is_valid_id`).
const UUID: &str = "^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$";
/// Query and path parameters, metadata keys (`tessera_core::text`'s line
/// rule): no control character.
const LINE: &str = r"^[^\x00-\x1f\x7f-\x9f]*$";
/// Names (the name rule): no control character, bidirectional override or
/// zero-width character.
const NAME: &str = r"^[^\x00-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069]*$";
/// Free text (the multiline rule): tab, line feed and carriage return are
/// the only control characters allowed.
const MULTILINE: &str = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$";
/// Body fields under the name rule and the free-text rule; fields with a
/// pattern, format or enum of their own keep it.
const NAME_FIELDS: &[&str] = &[
    "name",
    "owner",
    "subject",
    "issuer",
    "account_name",
    "email",
];
const FREE_TEXT_FIELDS: &[&str] = &["description", "reason"];
/// E.164: `+`, 7-15 digits, not starting with 0.
const E164: &str = r"^\+[1-9][0-9]{6,14}$";

/// What the running server's configuration decides about requests.
pub struct Deployment {
    /// The token scope registry.
    pub scopes: Vec<String>,
    /// Longest token lifetime (`TESSERA_TOKEN_MAX_TTL`), in seconds.
    pub token_max_ttl: i64,
    /// Longest invite lifetime and largest `max_uses`.
    pub invite_max_ttl: i64,
    pub invite_max_uses: i64,
}

/// Applies the rules to `doc`; `deployment` adds the configured limits
/// (`None` for the document without a configuration, as `tessera openapi`
/// prints it). The result stays JSON: utoipa's document types cannot hold
/// some of what the rules state (`propertyNames`, recursive schemas, type
/// lists), and a round trip through them would drop it silently.
pub fn apply(doc: utoipa::openapi::OpenApi, deployment: Option<Deployment>) -> Value {
    let mut v = serde_json::to_value(&doc).expect("the OpenAPI document serializes");
    event_stream_rules(&mut v);
    parameters_and_bodies(&mut v);
    character_rules(&mut v["components"]["schemas"]);
    metadata_rules(&mut v["components"]["schemas"]);
    let schemas = &mut v["components"]["schemas"];
    let events: Vec<&str> = tessera_core::webhook::event_types().collect();
    for name in ["CreateEndpointRequest", "UpdateEndpointRequest"] {
        set(
            schemas,
            &[name, "properties", "event_types", "items"],
            json!({"type": "string", "enum": events}),
        );
    }
    set(
        schemas,
        &["Grants", "properties", "role"],
        json!({"type": "string", "pattern": ROLE_NAME}),
    );
    set(
        schemas,
        &["Grants", "properties", "scopes", "items"],
        json!({"type": "string", "pattern": ROLE_NAME}),
    );
    set(
        schemas,
        &["Grants", "properties", "scopes", "maxItems"],
        json!(64),
    );
    set(
        schemas,
        &["Issuer", "properties", "role"],
        json!({"type": "string", "pattern": ROLE_NAME}),
    );
    set(
        schemas,
        &["Issuer", "properties", "subject"],
        json!({"type": "string", "minLength": 1, "maxLength": 200, "pattern": SUBJECT}),
    );
    destination_rules(schemas);
    lifetime_rules(schemas);
    if let Some(d) = deployment {
        configured(schemas, &d);
    }
    form_bodies(&mut v);
    v
}

/// A form body takes fields its operation does not name (they are dropped,
/// see `http::form`), where the same body as JSON is strict: each form
/// body gets its own copy of the schema, open to other fields.
fn form_bodies(doc: &mut Value) {
    const FORM: &str = "application/x-www-form-urlencoded";
    let schemas = doc["components"]["schemas"].clone();
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for op in paths.values_mut().filter_map(Value::as_object_mut) {
        for body in op.values_mut().filter_map(|o| o.get_mut("requestBody")) {
            let Some(schema) =
                body.pointer_mut(&format!("/content/{}/schema", FORM.replace('/', "~1")))
            else {
                continue;
            };
            let name = schema["$ref"].as_str().and_then(|r| r.rsplit('/').next());
            if let Some(mut open) = name.map(|n| schemas[n].clone()).filter(Value::is_object) {
                open.as_object_mut()
                    .map(|o| o.remove("additionalProperties"));
                *schema = open;
            }
        }
    }
}

/// `GET /v1/events/stream`: `types` is a comma-separated list of catalogue
/// names, and `Last-Event-ID` a position (decimal) the stream sent.
fn event_stream_rules(doc: &mut Value) {
    let names: Vec<String> = tessera_core::webhook::event_types()
        .map(|t| t.replace('.', r"\."))
        .collect();
    let one = format!("({})", names.join("|"));
    let params = doc
        .get_mut("paths")
        .and_then(|p| p.get_mut("/v1/events/stream"))
        .and_then(|p| p.get_mut("get"))
        .and_then(|op| op.get_mut("parameters"))
        .and_then(Value::as_array_mut);
    for p in params.into_iter().flatten() {
        if p["name"] == "types" {
            p["schema"] = json!({"type": "string", "pattern": format!("^{one}(,{one})*$")});
        }
        if p["name"] == "Last-Event-ID" {
            p["schema"] = json!({"type": "string", "pattern": "^[0-9]{1,18}$"});
        }
    }
}

/// An auth code's destination: its form follows the channel.
fn destination_rules(schemas: &mut Value) {
    set(
        schemas,
        &[
            "SendAuthCodeRequest",
            "properties",
            "destination",
            "pattern",
        ],
        json!(format!("{EMAIL}|{E164}")),
    );
    set(
        schemas,
        &["SendAuthCodeRequest", "oneOf"],
        json!([
            {"properties": {"channel": {"const": "email"}, "destination": {
                "type": "string", "maxLength": 254, "pattern": EMAIL,
                // The local part is at most 64 characters (RFC 5321).
                "allOf": [{"pattern": EMAIL_LOCAL_PART}],
            }}},
            {"properties": {"channel": {"const": "sms"}, "destination": {"type": "string", "pattern": E164}}}
        ]),
    );
}

/// A lifetime is given one way or the other, never both (`null` is the
/// same as leaving a field out).
fn lifetime_rules(schemas: &mut Value) {
    let not_null = json!({"not": {"type": "null"}});
    for name in [
        "CreateTokenRequest",
        "UpdateTokenRequest",
        "CreateInviteRequest",
    ] {
        set(
            schemas,
            &[name, "not"],
            json!({
                "required": ["expires_at", "expires_in"],
                "properties": {"expires_at": not_null, "expires_in": not_null},
            }),
        );
    }
}

/// Metadata (`tessera_core::api_token::validate_metadata`): any JSON object
/// whose keys, at every depth, follow the line rule and whose strings follow
/// the free-text rule. Stated with a recursive `MetadataValue` schema.
fn metadata_rules(schemas: &mut Value) {
    // The field itself (nullable), or an object nested in it.
    let object = |top: bool| {
        let (ty, description) = if top {
            (
                json!(["object", "null"]),
                "A JSON object of at most 8 KiB (serialized). Keys hold no control \
                 character; strings hold none but tab, line feed and carriage return.",
            )
        } else {
            (json!("object"), "An object inside metadata.")
        };
        json!({
            "type": ty,
            "description": description,
            "propertyNames": {"pattern": LINE},
            "additionalProperties": {"$ref": "#/components/schemas/MetadataValue"},
        })
    };
    for name in [
        "CreateTokenRequest",
        "UpdateTokenRequest",
        "CreateInviteRequest",
    ] {
        set(schemas, &[name, "properties", "metadata"], object(true));
    }
    if let Some(all) = schemas.as_object_mut() {
        all.insert(
            "MetadataValue".into(),
            json!({
                "description": "A value inside metadata.",
                "anyOf": [
                    {"type": "string", "pattern": MULTILINE},
                    {"type": ["number", "boolean", "null"]},
                    {"type": "array", "items": {"$ref": "#/components/schemas/MetadataValue"}},
                    object(false),
                ],
            }),
        );
    }
}

/// The limits this deployment configured.
fn configured(schemas: &mut Value, d: &Deployment) {
    // (Verification takes any scope names: an unknown one is simply not held.)
    for name in ["CreateTokenRequest", "UpdateTokenRequest"] {
        set(
            schemas,
            &[name, "properties", "scopes", "items"],
            json!({"type": "string", "enum": &d.scopes}),
        );
    }
    for name in ["CreateTokenRequest", "UpdateTokenRequest"] {
        set(
            schemas,
            &[name, "properties", "expires_in", "maximum"],
            json!(d.token_max_ttl),
        );
    }
    let invite = &["CreateInviteRequest", "properties"];
    set(
        schemas,
        &[invite[0], invite[1], "expires_in", "maximum"],
        json!(d.invite_max_ttl),
    );
    set(
        schemas,
        &[invite[0], invite[1], "max_uses", "maximum"],
        json!(d.invite_max_uses),
    );
}

/// A subject in the path is checked like any subject; a cursor is an id
/// this API returned (a UUID unless it declares another pattern); an
/// optional body is left out, never `null`.
fn parameters_and_bodies(doc: &mut Value) {
    let items = doc["paths"]
        .as_object_mut()
        .into_iter()
        .flat_map(|p| p.values_mut());
    for op in items.flat_map(|item| {
        item.as_object_mut()
            .into_iter()
            .flat_map(|i| i.values_mut())
    }) {
        // `get_mut`, not indexing: indexing a missing key would insert a null.
        let parameters = op.get_mut("parameters").and_then(Value::as_array_mut);
        for p in parameters.into_iter().flatten() {
            if p["name"] == "subject" && p["in"] == "path" {
                p["schema"] =
                    json!({"type": "string", "minLength": 1, "maxLength": 200, "pattern": SUBJECT});
            }
            // A cursor that declares its own shape (a client id) keeps it.
            if p["name"] == "cursor" && p["in"] == "query" && p["schema"]["pattern"].is_null() {
                p["schema"] = json!({"type": ["string", "null"], "pattern": UUID});
            }
            if let Some(schema) = p.get_mut("schema") {
                add_pattern(schema, LINE);
            }
        }
        let body = op
            .get_mut("requestBody")
            .and_then(|b| b.get_mut("content"))
            .and_then(|c| c.get_mut("application/json"))
            .and_then(|j| j.get_mut("schema"));
        if let Some(body) = body {
            let not_null = body["oneOf"]
                .as_array()
                .filter(|alternatives| alternatives.len() == 2 && alternatives[0]["type"] == "null")
                .map(|alternatives| alternatives[1].clone());
            if let Some(schema) = not_null {
                *body = schema;
            }
        }
    }
}

/// The character rules of `tessera_core::text` on the body fields they
/// apply to (metadata has [`metadata_rules`]).
fn character_rules(schemas: &mut Value) {
    let Some(schemas) = schemas.as_object_mut() else {
        return;
    };
    for schema in schemas.values_mut() {
        // `get_mut`, not indexing: indexing a missing key would insert a null.
        let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
            continue;
        };
        for (name, property) in properties.iter_mut() {
            if NAME_FIELDS.contains(&name.as_str()) {
                add_pattern(property, NAME);
            } else if FREE_TEXT_FIELDS.contains(&name.as_str()) {
                add_pattern(property, MULTILINE);
            }
        }
    }
}

/// Adds `pattern` to a string schema (or a nullable one) that has no
/// pattern, format or enum of its own.
fn add_pattern(schema: &mut Value, pattern: &str) {
    let ty = &schema["type"];
    let is_string = ty == "string" || ty.as_array().is_some_and(|t| t.contains(&json!("string")));
    let constrained = ["pattern", "format", "enum", "const"]
        .iter()
        .any(|k| schema.get(k).is_some());
    if is_string && !constrained {
        schema["pattern"] = json!(pattern);
    }
}

/// Sets the value at `path`, if the object holding it exists (a schema that
/// was renamed fails the OpenAPI test rather than growing a stray entry).
fn set(root: &mut Value, path: &[&str], value: Value) {
    let (last, parents) = path.split_last().expect("a non-empty path");
    let mut at = root;
    for key in parents {
        match at.get_mut(*key) {
            Some(next) => at = next,
            None => return,
        }
    }
    if let Some(object) = at.as_object_mut() {
        object.insert((*last).to_string(), value);
    }
}
