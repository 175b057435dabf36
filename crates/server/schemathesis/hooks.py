"""Schemathesis hooks for hakv's OpenAPI tests (SCHEMATHESIS_HOOKS=hooks).

Two rules of the API depend on more than one parameter or on the node's state, which OpenAPI
cannot express; schema-valid cases are adjusted to respect them, so that a rejection of them is
still a real failure:
- PUT/POST take `If-Match` or `If-None-Match`, not both (400 `invalid_precondition`);
- `X-Hakv-Min-Revision` more than 1,000,000 beyond the node's applied revision is refused (400),
  and one not yet applied waits for the request timeout (504). Well-formed values keep their
  form (`"N"`, `W/"N"`, `N`) with N = 1: the run seeds one write first.
"""
import re

import schemathesis

_REVISION = re.compile(r'^(W/)?("([0-9]+)"|([0-9]+))$')


@schemathesis.hook
def map_case(ctx, case):
    headers = case.headers
    if not headers:
        return case
    if case.method.upper() in ("PUT", "POST") and "If-Match" in headers and headers.get("If-None-Match") == "*":
        del headers["If-None-Match"]
    value = headers.get("X-Hakv-Min-Revision")
    match = _REVISION.match(value) if isinstance(value, str) else None
    if match and int(match.group(3) or match.group(4)) < 2**64:
        headers["X-Hakv-Min-Revision"] = re.sub(r"[0-9]+", "1", value)
    return case
