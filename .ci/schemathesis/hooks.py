"""schemathesis hooks for .ci/schemathesis.sh.

Two rules of valid requests that JSON Schema cannot state are applied to the
valid (positive) requests schemathesis generates; invalid (negative) ones are
left as generated, so the server's rejection of them is still tested:

- webhook endpoints point only at the local receiver the script starts,
  never at an address schemathesis made up;
- `expires_at` must be in the future (and within the configured maximum
  lifetime), which depends on the clock: a valid request gets one hour from
  now.
"""

import datetime
import os

import schemathesis

RECEIVER = os.environ["SCHEMATHESIS_WEBHOOK_RECEIVER"]


def _positive(case):
    return case.meta is None or case.meta.generation.mode.is_positive


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    body = case.body
    if not isinstance(body, dict):
        return
    url = body.get("url")
    if case.path.startswith("/v1/webhooks/endpoints") and isinstance(url, str):
        if _positive(case):
            body["url"] = RECEIVER
        elif "://" in url:
            # Still invalid, but never a reachable address.
            body["url"] = url.replace("://", ":", 1)
    if _positive(case) and isinstance(body.get("expires_at"), str):
        soon = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
        body["expires_at"] = soon.strftime("%Y-%m-%dT%H:%M:%SZ")
