"""schemathesis hooks for .ci/schemathesis.sh.

Two rules of valid requests that JSON Schema cannot state are applied to the
valid (positive) requests schemathesis generates; invalid (negative) ones are
left as generated, so the server's rejection of them is still tested:

- webhook endpoints point only at the local receiver the script starts,
  never at an address schemathesis made up;
- `expires_at` must be in the future (and within the configured maximum
  lifetime), which depends on the clock: a valid request gets one hour from
  now;
- an audit log window (`GET /v1/audit`) does not end before it starts: a
  valid request with `since` after `until` gets them swapped;
- a password meets the password policy (length, not common, not built from
  the e-mail or name): a valid request gets a strong one;
- usage controls: an IP list holds networks (no pattern can say "a CIDR
  without host bits"), a `required` device binding names a device and a
  device names a binding, rate limit names are unique per token, and a
  verify request's `client_ip` is an address.
- device-bound sessions: a session opened with a `device_id` and a refresh
  (`X-Device-Id`) name the same device, since a refresh token that links
  carry from one to the other refreshes only from the session's device.

One rule applies to every request to the event stream (`GET
/v1/events/stream`): it stays open until the client leaves, and schemathesis
reads whole responses, so each request asks it to end at once (`timeout=0`:
send the events already there, then end). A `timeout` that is not valid is
left as generated, so its refusal is still tested.
"""

import datetime
import os
import re

import schemathesis

RECEIVER = os.environ["SCHEMATHESIS_WEBHOOK_RECEIVER"]
# The admin token schemathesis authenticates with: generated requests must
# not delete, revoke, rotate or change it (the ids of other tokens are fair game).
OWN_TOKEN_ID = os.environ.get("SCHEMATHESIS_TOKEN_ID", "")
ABSENT_ID = "00000000-0000-7000-8000-000000000000"
# A password the policy accepts (long, not common, not built from the
# e-mail or name): schema-valid requests carry one, since no JSON Schema can
# state "not a common password".
STRONG_PASSWORD = "vellum quartz orbit 4417 tangerine"
PASSWORD_FIELDS = ("password", "new_password", "current_password")
EMAIL = "alice@example.com"
PHONE = "+447700900123"
# Routes that take the token of a mailed link (see `filter_failure`).
LINK_CONFIRMATIONS = ("/recover/confirm", "/verify-email/confirm")
# Stays open unless told to end (see `_finite_stream`).
EVENT_STREAM = "/v1/events/stream"
# The device valid requests open sessions on and refresh from (see
# `_session_device`).
SESSION_DEVICE = "schemathesis-device"
REFRESH_ROUTES = ("/v1/auth/refresh", "/oauth2/token")


def _positive(case):
    return case.meta is None or case.meta.generation.mode.is_positive


def _time(text):
    try:
        t = datetime.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except (AttributeError, TypeError, ValueError):
        return None
    return t if t.tzinfo else None


def _audit_window(case):
    query = case.query or {}
    since, until = _time(query.get("since")), _time(query.get("until"))
    if since and until and since > until:
        query["since"], query["until"] = query["until"], query["since"]


def _finite_stream(case):
    query = case.query if isinstance(case.query, dict) else {}
    timeout = query.get("timeout")
    valid = timeout is None or (
        isinstance(timeout, (int, str))
        and not isinstance(timeout, bool)
        and re.fullmatch(r"[0-9]+", str(timeout)) is not None
        and int(timeout) <= 86400
    )
    if valid:
        query["timeout"] = 0
    case.query = query


def _controls(case, body):
    for field in ("ip_allow", "ip_deny"):
        if isinstance(body.get(field), list):
            body[field] = ["10.0.0.0/8"] if body[field] else []
    if case.path.startswith("/v1/tokens"):
        binding = body.get("device_binding")
        if binding == "required":
            body["device_id"] = "device-1"
        elif isinstance(body.get("device_id"), str) and binding != "first_use":
            body["device_binding"] = "first_use"
    limits = body.get("ratelimits")
    if isinstance(limits, list):
        seen, unique = set(), []
        for limit in limits:
            name = limit.get("name") if isinstance(limit, dict) else None
            if name not in seen:
                seen.add(name)
                unique.append(limit)
        body["ratelimits"] = unique
    if case.path == "/v1/tokens/verify" and isinstance(body.get("client_ip"), str):
        body["client_ip"] = "192.0.2.1"


def _session_device(case, body):
    if case.path == "/v1/sessions" and isinstance(body, dict) and isinstance(body.get("device_id"), str):
        body["device_id"] = SESSION_DEVICE
    if case.path in REFRESH_ROUTES:
        headers = case.headers if isinstance(case.headers, dict) else {}
        headers["X-Device-Id"] = SESSION_DEVICE
        case.headers = headers


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    if case.path == EVENT_STREAM:
        _finite_stream(case)
    params = case.path_parameters or {}
    if case.path.startswith("/v1/tokens/{id}") and OWN_TOKEN_ID and params.get("id") == OWN_TOKEN_ID:
        params["id"] = ABSENT_ID
    if _positive(case) and case.path == "/v1/audit":
        _audit_window(case)
    body = case.body
    if _positive(case):
        _session_device(case, body)
    if not isinstance(body, dict):
        return
    url = body.get("url")
    if case.path.startswith("/v1/webhooks/endpoints") and isinstance(url, str):
        if _positive(case):
            body["url"] = RECEIVER
        elif "://" in url:
            # Still invalid, but never a reachable address.
            body["url"] = url.replace("://", ":", 1)
    if _positive(case):
        _controls(case, body)
        for target in (body, body.get("create_user")):
            if isinstance(target, dict):
                for field in PASSWORD_FIELDS:
                    if isinstance(target.get(field), str):
                        target[field] = STRONG_PASSWORD
    if _positive(case) and case.path == "/v1/auth-codes":
        # The destination's form follows the channel (a `oneOf` in the
        # schema, which the coverage phase does not always honour).
        channel = body.get("channel")
        destination = body.get("destination")
        if channel == "sms" and isinstance(destination, str) and not destination.startswith("+"):
            body["destination"] = PHONE
        if channel == "email" and isinstance(destination, str) and "@" not in destination:
            body["destination"] = EMAIL
    if _positive(case) and "expires_at" in body and "expires_in" in body:
        # One or the other (the schema says so with `not`, which the coverage
        # phase does not always honour).
        del body["expires_in"]
    if _positive(case) and isinstance(body.get("expires_at"), str):
        soon = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
        body["expires_at"] = soon.strftime("%Y-%m-%dT%H:%M:%SZ")


@schemathesis.hook
def filter_failure(ctx, failure, case, response):
    """RFC 6749 §5.2 fixes the token endpoint's answer to a refresh token that
    does not work: 400 with `{"error": "invalid_grant"}`, which OAuth2 client
    libraries parse. A made-up refresh token in a schema-valid request gets
    exactly that; every other answer, and every other check, still counts."""
    if case.path == "/oauth2/token" and response.status_code == 400:
        try:
            return response.json() != {"error": "invalid_grant"}
        except ValueError:
            return True
    # The same for a mailed link's token: a schema-valid token schemathesis
    # made up names no link, and the issue fixes the answer to that as
    # `400 invalid_token` (a real token exists only in the mail).
    if case.path in LINK_CONFIRMATIONS and response.status_code == 400:
        try:
            return response.json().get("code") != "invalid_token"
        except (ValueError, AttributeError):
            return True
    return True
