"""Schemathesis hooks for scripts/fuzz.sh (loaded through SCHEMATHESIS_HOOKS=hooks).

* Keeps the fuzzing token alive: stateful links (GET /api/v1/tokens -> DELETE
  /api/v1/tokens/{id}) would otherwise revoke the very token the run uses, and
  every later request would get 401. A DELETE aimed at that token is sent to a
  fresh random UUID instead (FUZZ_PROTECTED_TOKEN_ID).
* Logs every request schemathesis sends, one `METHOD PATH STATUS` line each, to
  FUZZ_REQUEST_LOG, so the script can count requests per run.
* `unauthenticated_is_401`: with FUZZ_EXPECT_401=1 (the run without a token),
  every operation that declares security must answer 401.
"""

import os
import re
import threading
import uuid

import schemathesis

_PROTECTED = re.sub(r"[^0-9a-f]", "", os.environ.get("FUZZ_PROTECTED_TOKEN_ID", "").lower())
_LOG = os.environ.get("FUZZ_REQUEST_LOG")
_LOCK = threading.Lock()


def _hex(value) -> str:
    return re.sub(r"[^0-9a-f]", "", str(value).lower())


@schemathesis.hook
def before_call(context, case, kwargs):
    if _PROTECTED and case.method.upper() == "DELETE" and case.path == "/api/v1/tokens/{id}":
        if _PROTECTED in _hex(case.path_parameters.get("id", "")):
            case.path_parameters["id"] = str(uuid.uuid4())


@schemathesis.hook
def after_call(context, case, response):
    if _LOG:
        with _LOCK, open(_LOG, "a", encoding="utf-8") as f:
            f.write(f"{case.method.upper()} {case.path} {response.status_code}\n")


@schemathesis.check
def unauthenticated_is_401(ctx, response, case):
    """Without a token, every operation that declares security answers 401."""
    if os.environ.get("FUZZ_EXPECT_401") != "1":
        return None
    security = case.operation.definition.raw.get("security")
    if security is None:
        security = case.operation.schema.raw_schema.get("security", [])
    if security and response.status_code != 401:
        raise AssertionError(
            f"{case.method.upper()} {case.path} answered {response.status_code} without a token; expected 401"
        )
    return None
