"""Fault matrix (issue 15, item 4): every operation that calls WeChat or stores what WeChat answered,
under every fault the simulator can inject and DynamoDB throttling and competing writes injected
between our read and our write, with the same invariants checked in every cell.

Rows (operations) and how a cell runs them:

- ``component_token``: ``GET /wechat/component/token`` (its function's handler) with the stored
  component token about to expire (too close to its end to hand out): it must be refreshed.
- ``authorizer_on_demand``: ``GET /wechat/authorizers/{appid}/token`` (the admin handler), token
  about to expire, refresh-token rotation on with no grace (an old refresh token dies at once).
- ``authorizer_refresher``: the scheduled refresher's handler, the token due (valid 10 minutes
  more), rotation on with no grace.
- ``jsapi_ticket``: ``GET /wechat/jssdk/{appid}/config`` (the H5 handler), the ticket due but valid
  for 10 minutes: a ticket that cannot be refreshed is served while valid (README "H5 pages").
- ``message_publish``: a text message to the message URL (the messages handler). No WeChat call.
- ``oauth_callback``: ``GET /wechat/oauth/{appid}/callback`` with WeChat's code and our state (the
  H5 handler): the code exchange (``sns/oauth2/component/access_token``, the simulator's
  ``access_token``).
- ``release_commit`` / ``release_submit`` / ``release_release``: one release-queue message of that
  step through the release worker's handler, as Lambda's SQS event source delivers it.

Columns (faults): ``http_5xx`` (503 on every attempt), ``timeout`` (no answer within the 1 s read
timeout on every attempt; WeChat did nothing), ``slow`` (0.3 s, inside the timeout), ``errcode_-1``
(every attempt), ``errcode_40001`` / ``errcode_42001`` / ``errcode_45009`` / ``errcode_61023`` /
``errcode_61004`` (once), ``late_answer`` (WeChat does the work and its answer comes after our
deadline: for leased tokens, after the lease (shortened to 1.8 s, margin 0.5 s) minus its margin, so
the holder gives up; elsewhere after the 1 s read timeout, so the client retries),
``ddb_throttle`` (``ProvisionedThroughputExceededException`` past botocore's retries on the write
that matters most for the row, named in ``THROTTLED_WRITE``), ``ddb_conditional`` (another Lambda
does the same work just before our conditional write: the lease, the claim, the delivery key, the
state; so ours is refused). A column with ``+`` is a variant of the column for one row: another
write throttled, a second fault with it, or (``ddb_conditional+save``) our lease running out and
another Lambda taking over between WeChat's answer and our write of it.

Every cell checks, the same way:

1. the outcome (status and reason for routes; the disposition of the queue message; the
   refresher's report) and the state of the row's item, as ``MATRIX`` says;
2. the metrics: every metric the cell names is emitted, and none of ``ALARMS`` that it does not
   name (Powertools' EMF lines on stdout);
3. upstream calls: the faulted API was called exactly ``calls`` times (retries of a failed call
   included) and took effect exactly ``effects`` times; a token the row only uses (the component
   token, the account's authorizer token) was issued at most once; the other account's never;
4. no token lost, none replaced by an older one: the version never goes down; the stored token is
   the one it was, or the newest WeChat issued; the refresh token is one WeChat accepts (at once, or,
   where the holder gave up past its lease, after the next caller recovered it through 61023);
   the authorization stays active;
5. other accounts unaffected: a second account's token item is unchanged and served without a call;
6. the next attempt (the next caller, WeChat's re-send, SQS's redelivery, the user signing in again)
   succeeds with the faults gone, and the work was done at WeChat ``total`` times in all.

Cells that cannot happen are in ``MATRIX`` too, with the reason (``NotApplicable``): they are
reported as skipped with that reason, never left out.
"""

from __future__ import annotations

import html
import json
import re
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from aws_lambda_powertools import Metrics
from wechat_core import clock, runtime
from wechat_core.features import account_messages, h5, releases, tokens
from wechat_core.features.tokens import AuthorizerToken, ComponentToken, JsapiTicket
from wechat_core.store import keys
from wechat_simulator import Simulator

from devtools.events import LambdaContext, rest_event
from devtools.message_events import message_plaintext
from devtools.resources import Resources
from tests.conftest import reset_service_caches
from tests.support import release_queue
from tests.support.fault_injection import (
    AwsFaults,
    OffsetClock,
    claims_release_step,
    emitted_metrics,
    moves_to,
    pk_starts,
    sk_starts,
    stores_token,
    takes_lease,
)
from tests.support.flows import accepted_refresh_tokens, add_fault, authorize, calls, give_ticket
from tests.support.lambdas import decode_body, load_function
from tests.support.pushes import invoke_messages, signed_message

pytestmark = pytest.mark.integration

ATTEMPTS = 3  # the WeChat client's attempts (WECHAT_MAX_ATTEMPTS, default)
READ_TIMEOUT = 1.0  # WECHAT_READ_TIMEOUT_SECONDS in tests (conftest)
SHORT_LEASE, SHORT_MARGIN = 1.8, 0.5  # a lease whose deadline (1.3 s) falls inside a second attempt
LEASE = (tokens.LEASE_SECONDS, tokens.LEASE_MARGIN_SECONDS)
PAGE = "https://h5.example.com/app/index.html"
API_BASE = "https://api.example.com"
# The template's ReleaseQueue VisibilityTimeout: SQS delivers a failed message again after it.
VISIBILITY_TIMEOUT = 360

# --- the matrix -------------------------------------------------------------------------------------

ROWS = (
    "component_token",
    "authorizer_on_demand",
    "authorizer_refresher",
    "jsapi_ticket",
    "message_publish",
    "oauth_callback",
    "release_commit",
    "release_submit",
    "release_release",
)
COLUMNS = (
    "http_5xx",
    "timeout",
    "slow",
    "errcode_-1",
    "errcode_40001",
    "errcode_42001",
    "errcode_45009",
    "errcode_61023",
    "errcode_61004",
    "late_answer",
    "ddb_throttle",
    "ddb_conditional",
)
# What each fault column injects at the simulator, on the row's WeChat API.
SIM_FAULTS: dict[str, dict[str, Any]] = {
    "http_5xx": {"http_status": 503, "times": ATTEMPTS},
    "timeout": {"delay": READ_TIMEOUT + 0.5, "drop": True, "times": ATTEMPTS},
    "slow": {"delay": 0.3},
    "errcode_-1": {"errcode": -1, "times": ATTEMPTS},
    "errcode_40001": {"errcode": 40001},
    "errcode_42001": {"errcode": 42001},
    "errcode_45009": {"errcode": 45009},
    "errcode_61023": {"errcode": 61023},
    "errcode_61004": {"errcode": 61004},
}
# The write each row's ddb_throttle cell throttles: the one after which WeChat's answer (a rotated
# refresh token, a used code, a committed version) exists nowhere else.
THROTTLED_WRITE = {
    "component_token": "UpdateItem storing the new token (all 3 of the holder's attempts)",
    "authorizer_on_demand": "UpdateItem storing the new token and rotated refresh token (all 3 attempts)",
    "authorizer_refresher": "UpdateItem storing the new token and rotated refresh token (all 3 attempts)",
    "jsapi_ticket": "UpdateItem storing the new ticket (all 3 attempts)",
    "message_publish": "PutItem of the delivery key",
    "message_publish+publish_refused": "DeleteItem of the delivery key, after EventBridge refused PutEvents",
    "message_publish+publish_refused+3x": "the same DeleteItem, on every attempt",
    "oauth_callback": "PutItem of the identity, after WeChat exchanged the code",
    "oauth_callback+state": "UpdateItem using our state, before any WeChat call",
    "release_commit": "UpdateItem moving the account to committed, after wxa/commit",
    "release_submit": "UpdateItem moving the account to auditing, after wxa/submit_audit",
    "release_release": "UpdateItem moving the account to released, after wxa/release",
}
# Metrics that mean something went wrong: a cell emitting one it does not name fails.
ALARMS = frozenset(
    {
        "AuthorizerNeedsReauthorization",
        "AuthorizerRefreshFailed",
        "DeliveryKeyNotReleased",
        "TokenServedUnrefreshed",
        "MessagePublishFailed",
        "OAuthFailed",
        "QuotaExceeded",
        "RefreshTokenRecovered",
        "ReleaseAccountFailed",
        "ReleaseClaimLost",
        "ReleaseStepDelayed",
        "TokenInvalidated",
        "TokenLeaseLost",
        "TokenSaveFailed",
        "TokenWaitTimeout",
        "WeChatCallPastDeadline",
    }
)


@dataclass(frozen=True)
class Expect:
    """One applicable cell: what the operation answers, the row's state after it, the metrics it
    must emit, how often the faulted API was called and took effect, and (``total``) how often the
    work was done at WeChat once the next attempt succeeded. ``rt_now``: the stored refresh token is
    one WeChat accepts right after the fault (else only after the next caller recovered it)."""

    outcome: str
    state: str
    metrics: frozenset[str]
    calls: int
    effects: int
    total: int | None = None
    rt_now: bool = True
    note: str = ""


@dataclass(frozen=True)
class NotApplicable:
    reason: str


def E(  # noqa: N802 - a table constructor, short on purpose
    outcome: str,
    state: str,
    metrics: set[str],
    calls: int,
    effects: int,
    *,
    total: int | None = None,
    rt_now: bool = True,
    note: str = "",
) -> Expect:
    return Expect(outcome, state, frozenset(metrics), calls, effects, total, rt_now, note)


UNAVAILABLE = "502 WeChat is unavailable"  # no answer at all
ANSWERED_5XX = "502 WeChat answered HTTP 503"
BUSY = "502 WeChat is busy (WeChat errcode -1)"
QUOTA = "503 WeChat daily quota reached (WeChat errcode 45009)"
TOO_LONG = "503 token refresh took too long, retry shortly"
THROTTLED = "502 Lambda error ProvisionedThroughputExceededException (API Gateway's 502)"


def refused(errcode: int) -> str:
    return f"502 WeChat refused the request (WeChat errcode {errcode})"


NO_WECHAT_CALL = NotApplicable(
    "no WeChat call on this path: a delivery key (one conditional PutItem) and one PutEvents"
)
NOT_61023 = NotApplicable("61023 answers only api_authorizer_token (an authorizer refresh token)")
RECOVERED = "the next caller finds the refresh token refused (61023) and takes WeChat's current one"
LEASED = {"WeChatTimeout", "WeChatCallPastDeadline"}
TAKEN_OVER = (
    "the holder's lease ran out between WeChat's answer and its write, and another Lambda took over "
    "and stored a newer token: the late write is refused, the newer token stays, the late one "
    "(still valid at WeChat) is what this caller gets. Two issuances: one per lease"
)
# Retried and refreshed tokens, by the token each row reads.
REFRESHED_COMPONENT = {"TokenInvalidated", "ComponentTokenFetched", "TokenRefreshed"}
REFRESHED_AUTHORIZER = {"TokenInvalidated", "TokenRefreshed"}


def release_step(step: str) -> dict[tuple[str, str], Expect | NotApplicable]:
    """The cells of one release step (one queue message through the worker): they differ only in
    the step's names and in what a repeated call means for it."""
    api_metric, done, before = {
        "commit": ("ReleaseCommitted", "committed", "queued"),
        "submit": ("ReleaseSubmitted", "auditing", "committed"),
        "release": ("ReleaseReleased", "released", "approved"),
    }[step]
    cells: dict[str, Expect | NotApplicable] = {
        "http_5xx": E("redelivered", before, {"WeChatHttp5xx"}, 3, 0, total=1),
        "timeout": E("redelivered", before, {"WeChatTimeout"}, 3, 0, total=1),
        "slow": E("consumed", done, {api_metric}, 1, 1, total=1),
        "errcode_-1": E("put off", before, {"WeChatErrcode.-1", "ReleaseStepDelayed"}, 3, 0, total=1),
        "errcode_40001": E(
            "consumed", done, {"WeChatErrcode.40001", api_metric} | REFRESHED_AUTHORIZER, 2, 1, total=1
        ),
        "errcode_42001": E(
            "consumed", done, {"WeChatErrcode.42001", api_metric} | REFRESHED_AUTHORIZER, 2, 1, total=1
        ),
        "errcode_45009": E("put off", before, {"WeChatErrcode.45009", "ReleaseStepDelayed"}, 1, 0, total=1),
        "errcode_61023": NOT_61023,
        "errcode_61004": E(
            "redelivered",
            before,
            {"WeChatErrcode.61004", "ReleaseStepRefusedForThePlatform"},
            1,
            0,
            total=1,
            note="a refusal of the platform (IP whitelist) fails no account: delivered again",
        ),
        "late_answer": {
            "commit": E(
                "consumed",
                done,
                {"WeChatTimeout", api_metric},
                2,
                2,
                total=2,
                note="the client retries a commit whose answer was lost: the same code committed "
                "twice (harmless; submit and release are protected by WeChat's refusals)",
            ),
            "submit": E(
                "consumed",
                done,
                {"WeChatTimeout", "WeChatErrcode.85009", "ReleaseSubmissionRecovered", api_metric},
                2,
                1,
                total=1,
                note="the retry meets 85009: our own submission, recognized from get_latest_auditstatus",
            ),
            "release": E(
                "consumed",
                done,
                {"WeChatTimeout", "WeChatErrcode.85052", api_metric},
                2,
                1,
                total=1,
                note="the retry meets 85052 (already released): done",
            ),
        }[step],
        "ddb_throttle": E(
            "redelivered",
            f"{before}, claimed",
            set(),
            1,
            1,
            total=2 if step == "commit" else 1,
            note="SQS delivers it again after its visibility timeout (360 s > the 90 s claim): "
            + {
                "commit": "the commit is made again (the state write after it was lost)",
                "submit": "85009 then recognized as our own submission",
                "release": "85052 (already released): done",
            }[step],
        ),
        "ddb_conditional": E(
            "consumed",
            done,
            {"ReleaseStepSkipped", api_metric},
            1,
            1,
            total=1,
            note="a duplicate message, taken by another worker, claimed the account first",
        ),
    }
    return {(f"release_{step}", column): expect for column, expect in cells.items()}


MATRIX: dict[tuple[str, str], Expect | NotApplicable] = {
    # --- component token: GET /wechat/component/token, api_component_token -----------------------
    ("component_token", "http_5xx"): E(
        ANSWERED_5XX, "unchanged", {"WeChatHttp5xx", "Refused.UpstreamError"}, 3, 0
    ),
    ("component_token", "timeout"): E(
        UNAVAILABLE, "unchanged", {"WeChatTimeout", "Refused.UpstreamError"}, 3, 0
    ),
    ("component_token", "slow"): E("200 ok", "refreshed", {"ComponentTokenFetched", "TokenRefreshed"}, 1, 1),
    ("component_token", "errcode_-1"): E(BUSY, "unchanged", {"WeChatErrcode.-1", "Refused.WeChatBusy"}, 3, 0),
    ("component_token", "errcode_40001"): E(
        refused(40001),
        "unchanged",
        {"WeChatErrcode.40001", "Refused.WeChatTokenInvalid"},
        1,
        0,
        note="api_component_token takes no token: nothing to refresh and retry",
    ),
    ("component_token", "errcode_42001"): E(
        refused(42001), "unchanged", {"WeChatErrcode.42001", "Refused.WeChatTokenInvalid"}, 1, 0
    ),
    ("component_token", "errcode_45009"): E(
        QUOTA, "unchanged", {"WeChatErrcode.45009", "Refused.WeChatQuotaExceeded"}, 1, 0
    ),
    ("component_token", "errcode_61023"): NOT_61023,
    ("component_token", "errcode_61004"): E(
        refused(61004), "unchanged", {"WeChatErrcode.61004", "Refused.WeChatError"}, 1, 0
    ),
    ("component_token", "late_answer"): E(
        TOO_LONG,
        "unchanged",
        LEASED | {"Refused.LeaseExpired"},
        1,
        1,
        note="WeChat issued a token the holder never saw; the next caller fetches another",
    ),
    ("component_token", "ddb_throttle"): E(
        THROTTLED,
        "unchanged, lease held",
        {"TokenSaveFailed", "ComponentTokenFetched"},
        1,
        1,
        note="the dead holder's lease runs out; the next caller refreshes",
    ),
    ("component_token", "ddb_conditional"): E(
        "200 ok",
        "refreshed",
        {"ComponentTokenFetched", "TokenRefreshed"},
        1,
        1,
        note="another Lambda refreshed first: its token is served, no second call",
    ),
    ("component_token", "ddb_conditional+save"): E(
        "200 ok",
        "refreshed",
        {"TokenLeaseLost", "ComponentTokenFetched", "TokenRefreshed"},
        2,
        2,
        note=TAKEN_OVER,
    ),
    # --- authorizer token on demand: GET /wechat/authorizers/{appid}/token, api_authorizer_token ---
    ("authorizer_on_demand", "http_5xx"): E(
        ANSWERED_5XX, "unchanged", {"WeChatHttp5xx", "Refused.UpstreamError"}, 3, 0
    ),
    ("authorizer_on_demand", "timeout"): E(
        UNAVAILABLE, "unchanged", {"WeChatTimeout", "Refused.UpstreamError"}, 3, 0
    ),
    ("authorizer_on_demand", "slow"): E("200 ok", "refreshed", {"TokenRefreshed"}, 1, 1),
    ("authorizer_on_demand", "errcode_-1"): E(
        BUSY, "unchanged", {"WeChatErrcode.-1", "Refused.WeChatBusy"}, 3, 0
    ),
    ("authorizer_on_demand", "errcode_40001"): E(
        "200 ok",
        "refreshed",
        {"WeChatErrcode.40001"} | REFRESHED_COMPONENT,
        2,
        1,
        note="the component token is refused: refreshed once, the call made again once",
    ),
    ("authorizer_on_demand", "errcode_42001"): E(
        "200 ok", "refreshed", {"WeChatErrcode.42001"} | REFRESHED_COMPONENT, 2, 1
    ),
    ("authorizer_on_demand", "errcode_45009"): E(
        QUOTA, "unchanged", {"WeChatErrcode.45009", "Refused.WeChatQuotaExceeded"}, 1, 0
    ),
    ("authorizer_on_demand", "errcode_61023"): E(
        "200 ok",
        "refreshed",
        {"WeChatErrcode.61023", "TokenRefreshed"},
        2,
        1,
        note="WeChat still lists the authorization with this refresh token: tried again once, "
        "not marked needs_reauth (README: only when WeChat no longer lists it)",
    ),
    ("authorizer_on_demand", "errcode_61004"): E(
        refused(61004), "unchanged", {"WeChatErrcode.61004", "Refused.WeChatError"}, 1, 0
    ),
    ("authorizer_on_demand", "late_answer"): E(
        TOO_LONG, "unchanged", LEASED | {"Refused.LeaseExpired"}, 1, 1, rt_now=False, note=RECOVERED
    ),
    ("authorizer_on_demand", "ddb_throttle"): E(
        THROTTLED, "unchanged, lease held", {"TokenSaveFailed"}, 1, 1, rt_now=False, note=RECOVERED
    ),
    ("authorizer_on_demand", "ddb_conditional"): E("200 ok", "refreshed", {"TokenRefreshed"}, 1, 1),
    ("authorizer_on_demand", "ddb_conditional+save"): E(
        "200 ok",
        "refreshed",
        {"TokenLeaseLost", "RefreshTokenRecovered", "TokenRefreshed"},
        3,
        2,
        note=TAKEN_OVER + " (it finds the refresh token rotated by ours: 61023, recovered, once more)",
    ),
    # --- authorizer token by the scheduled refresher ----------------------------------------------
    ("authorizer_refresher", "http_5xx"): E(
        "failed UpstreamError", "unchanged, retry later", {"WeChatHttp5xx", "AuthorizerRefreshFailed"}, 3, 0
    ),
    ("authorizer_refresher", "timeout"): E(
        "failed UpstreamError", "unchanged, retry later", {"WeChatTimeout", "AuthorizerRefreshFailed"}, 3, 0
    ),
    ("authorizer_refresher", "slow"): E("refreshed", "refreshed", {"TokenRefreshed"}, 1, 1),
    ("authorizer_refresher", "errcode_-1"): E(
        "failed -1", "unchanged, retry later", {"WeChatErrcode.-1", "AuthorizerRefreshFailed"}, 3, 0
    ),
    ("authorizer_refresher", "errcode_40001"): E(
        "refreshed", "refreshed", {"WeChatErrcode.40001"} | REFRESHED_COMPONENT, 2, 1
    ),
    ("authorizer_refresher", "errcode_42001"): E(
        "refreshed", "refreshed", {"WeChatErrcode.42001"} | REFRESHED_COMPONENT, 2, 1
    ),
    ("authorizer_refresher", "errcode_45009"): E(
        "quota exceeded",
        "unchanged, retry later",
        {"WeChatErrcode.45009", "QuotaExceeded"},
        1,
        0,
        note="the run stops; the account is tried again in 30 minutes (before its token expires)",
    ),
    ("authorizer_refresher", "errcode_61023"): E(
        "refreshed", "refreshed", {"WeChatErrcode.61023", "TokenRefreshed"}, 2, 1
    ),
    ("authorizer_refresher", "errcode_61004"): E(
        "failed 61004", "unchanged, retry later", {"WeChatErrcode.61004", "AuthorizerRefreshFailed"}, 1, 0
    ),
    ("authorizer_refresher", "late_answer"): E(
        "failed LeaseExpired",
        "unchanged, retry later",
        LEASED | {"AuthorizerRefreshFailed"},
        1,
        1,
        rt_now=False,
        note=RECOVERED,
    ),
    ("authorizer_refresher", "ddb_throttle"): E(
        "failed ProvisionedThroughputExceededException",
        "unchanged, lease held",
        {"TokenSaveFailed", "AuthorizerRefreshFailed"},
        1,
        1,
        rt_now=False,
        note=RECOVERED + " (the lease is held, so the back-off cannot be written: still due)",
    ),
    ("authorizer_refresher", "ddb_conditional"): E(
        "skipped",
        "refreshed",
        {"TokenRefreshed"},
        1,
        1,
        note="another Lambda refreshed between the due query and the refresher's lease: skipped",
    ),
    ("authorizer_refresher", "ddb_conditional+save"): E(
        "refreshed",
        "refreshed",
        {"TokenLeaseLost", "RefreshTokenRecovered", "TokenRefreshed"},
        3,
        2,
        note=TAKEN_OVER,
    ),
    # --- JS-SDK ticket: GET /wechat/jssdk/{appid}/config, getticket ---------------------------------
    ("jsapi_ticket", "http_5xx"): E("200 ok", "unchanged", {"WeChatHttp5xx", "TokenServedUnrefreshed"}, 3, 0),
    ("jsapi_ticket", "timeout"): E("200 ok", "unchanged", {"WeChatTimeout", "TokenServedUnrefreshed"}, 3, 0),
    ("jsapi_ticket", "slow"): E("200 ok", "refreshed", {"JsapiTicketFetched", "TokenRefreshed"}, 1, 1),
    ("jsapi_ticket", "errcode_-1"): E(
        "200 ok", "unchanged", {"WeChatErrcode.-1", "TokenServedUnrefreshed"}, 3, 0
    ),
    ("jsapi_ticket", "errcode_40001"): E(
        "200 ok",
        "refreshed",
        {"WeChatErrcode.40001", "JsapiTicketFetched"} | REFRESHED_AUTHORIZER,
        2,
        1,
        note="the authorizer token is refused: refreshed once (rotating the refresh token), "
        "getticket again once",
    ),
    ("jsapi_ticket", "errcode_42001"): E(
        "200 ok", "refreshed", {"WeChatErrcode.42001", "JsapiTicketFetched"} | REFRESHED_AUTHORIZER, 2, 1
    ),
    ("jsapi_ticket", "errcode_45009"): E(
        "200 ok", "unchanged", {"WeChatErrcode.45009", "TokenServedUnrefreshed"}, 1, 0
    ),
    ("jsapi_ticket", "errcode_61023"): NOT_61023,
    ("jsapi_ticket", "errcode_61004"): E(
        "200 ok", "unchanged", {"WeChatErrcode.61004", "TokenServedUnrefreshed"}, 1, 0
    ),
    ("jsapi_ticket", "late_answer"): E("200 ok", "unchanged", LEASED | {"TokenServedUnrefreshed"}, 1, 1),
    ("jsapi_ticket", "ddb_throttle"): E(
        "200 ok",
        "unchanged, lease held",
        {"TokenSaveFailed", "JsapiTicketFetched", "TokenServedUnrefreshed"},
        1,
        1,
        note="the ticket still valid is served, as when WeChat fails",
    ),
    ("jsapi_ticket", "ddb_conditional"): E(
        "200 ok", "refreshed", {"JsapiTicketFetched", "TokenRefreshed"}, 1, 1
    ),
    ("jsapi_ticket", "ddb_conditional+save"): E(
        "200 ok",
        "refreshed",
        {"TokenLeaseLost", "JsapiTicketFetched", "TokenRefreshed"},
        2,
        2,
        note=TAKEN_OVER,
    ),
    # --- message URL: one text message, one PutEvents ---------------------------------------------------
    **{("message_publish", c): NO_WECHAT_CALL for c in (*SIM_FAULTS, "late_answer")},
    ("message_publish", "ddb_throttle"): E(
        THROTTLED,
        "no delivery key",
        set(),
        0,
        0,
        total=1,
        note="WeChat gets no answer and sends the message again: published then, once",
    ),
    ("message_publish", "ddb_throttle+publish_refused"): E(
        "503 could not publish the message; WeChat will send it again",
        "no delivery key",
        {"MessagePublishFailed", "Refused.PublishFailed"},
        1,
        0,
        total=1,
        note="the key must go even when its first delete is throttled, or WeChat's re-send is dropped",
    ),
    ("message_publish", "ddb_throttle+publish_refused+3x"): E(
        "503 could not publish the message; WeChat will send it again",
        "delivery key kept",
        {"MessagePublishFailed", "Refused.PublishFailed", "DeliveryKeyNotReleased"},
        1,
        0,
        total=0,
        note="a known limit: the key outlives every attempt to delete it, WeChat's re-sends are "
        "answered without publishing and the message is lost; DeliveryKeyNotReleased says so",
    ),
    ("message_publish", "ddb_conditional"): E(
        "200 success",
        "delivery key kept",
        {"MessageRepeated", "MessagePublished"},
        1,
        1,
        total=1,
        note="WeChat's re-send, taken by another Lambda, wrote the key first: published there, once",
    ),
    # --- web OAuth callback: sns/oauth2/component/access_token ----------------------------------
    ("oauth_callback", "http_5xx"): E(
        "302 error=server_error", "state used, no ticket", {"WeChatHttp5xx", "OAuthFailed"}, 3, 0
    ),
    ("oauth_callback", "timeout"): E(
        "302 error=server_error", "state used, no ticket", {"WeChatTimeout", "OAuthFailed"}, 3, 0
    ),
    ("oauth_callback", "slow"): E("302 ticket", "state used, ticket", {"OAuthCompleted.snsapi_base"}, 1, 1),
    ("oauth_callback", "errcode_-1"): E(
        "302 error=server_error", "state used, no ticket", {"WeChatErrcode.-1", "OAuthFailed"}, 3, 0
    ),
    ("oauth_callback", "errcode_40001"): E(
        "302 ticket",
        "state used, ticket",
        {"WeChatErrcode.40001", "OAuthCompleted.snsapi_base"} | REFRESHED_COMPONENT,
        2,
        1,
    ),
    ("oauth_callback", "errcode_42001"): E(
        "302 ticket",
        "state used, ticket",
        {"WeChatErrcode.42001", "OAuthCompleted.snsapi_base"} | REFRESHED_COMPONENT,
        2,
        1,
    ),
    ("oauth_callback", "errcode_45009"): E(
        "302 error=server_error", "state used, no ticket", {"WeChatErrcode.45009", "OAuthFailed"}, 1, 0
    ),
    ("oauth_callback", "errcode_61023"): NOT_61023,
    ("oauth_callback", "errcode_61004"): E(
        "302 error=server_error", "state used, no ticket", {"WeChatErrcode.61004", "OAuthFailed"}, 1, 0
    ),
    ("oauth_callback", "late_answer"): E(
        "302 error=invalid_grant",
        "state used, no ticket",
        {"WeChatTimeout", "WeChatErrcode.40163", "OAuthCodeRefused"},
        2,
        1,
        note="WeChat used the code but its answer timed out; the retry is refused (40163): the "
        "page starts again. The OAuth token WeChat issued is never seen, so never kept",
    ),
    ("oauth_callback", "ddb_throttle"): E(
        "302 error=server_error",
        "state used, no ticket",
        {"OAuthFailed"},
        1,
        1,
        note="the browser goes back to the page with server_error, not to API Gateway's error",
    ),
    ("oauth_callback", "ddb_throttle+state"): E(
        THROTTLED,
        "state unused, no ticket",
        set(),
        0,
        0,
        note="nothing happened yet: the same callback (a reload) still works",
    ),
    ("oauth_callback", "ddb_conditional"): E(
        "409 state already used",
        "state used, ticket",
        {"OAuthStateRefused", "OAuthCompleted.snsapi_base"},
        1,
        1,
        note="the same callback twice at once (a double request): one exchange, one ticket",
    ),
    # --- release steps: one queue message through the worker (release_step, below) -----------------
    **release_step("commit"),
    **release_step("submit"),
    **release_step("release"),
}


def cells() -> list[Any]:
    params = []
    for (row, column), expect in MATRIX.items():
        marks = []
        if isinstance(expect, NotApplicable):
            marks.append(pytest.mark.skip(reason=f"not applicable, {row} x {column}: {expect.reason}"))
        params.append(pytest.param(row, column, id=f"{row}-{column}", marks=marks))
    return params


def test_the_matrix_names_every_operation_and_fault() -> None:
    """Every row meets every column (applicable, with its expected outcome, or not, with a reason),
    and every throttled write is named."""
    for row in ROWS:
        for column in COLUMNS:
            assert any(r == row and (c == column or c.startswith(column + "+")) for r, c in MATRIX), (
                f"{row} x {column} is missing from the matrix"
            )
    assert {r for r, _ in MATRIX} == set(ROWS)
    assert {c.split("+")[0] for _, c in MATRIX} == set(COLUMNS)
    for (row, column), expect in MATRIX.items():
        if column.startswith("ddb_throttle") and isinstance(expect, Expect):
            assert row + column.removeprefix("ddb_throttle") in THROTTLED_WRITE, (row, column)
    throttled = {r + c.removeprefix("ddb_throttle") for r, c in MATRIX if c.startswith("ddb_throttle")}
    assert set(THROTTLED_WRITE) == throttled


# --- the world every cell runs in -------------------------------------------------------------------


@dataclass
class World:
    sim: Simulator
    service: Resources
    clock: OffsetClock
    monkeypatch: pytest.MonkeyPatch
    capfd: pytest.CaptureFixture[str]
    ddb: AwsFaults
    bystander: str
    stack: ExitStack
    metrics: Counter[str] = field(default_factory=Counter)
    events: AwsFaults | None = None

    def events_faults(self) -> AwsFaults:
        if self.events is None:
            self.events = AwsFaults(runtime.event_bus()._client())
            self.stack.callback(self.events.uninstall)
        return self.events

    def clear_faults(self) -> None:
        requests.delete(f"{self.sim.url}/__sim/faults", timeout=5).raise_for_status()
        self.ddb.clear()
        if self.events is not None:
            self.events.clear()

    def measure(self, act: Callable[[], str]) -> str:
        """Run ``act`` and keep the metrics it emitted (earlier ones are flushed out of the way)."""
        Metrics().flush_metrics()
        before = self.capfd.readouterr()
        try:
            outcome = act()
        finally:
            Metrics().flush_metrics()
            during = self.capfd.readouterr()
            # Written back, for pytest's report and conftest's check that no secret reached the output.
            for captured in (before, during):
                sys.stdout.write(captured.out)
                sys.stderr.write(captured.err)
        self.metrics = emitted_metrics(during.out)
        return outcome


@pytest.fixture
def world(
    service: Resources,
    simulator: Simulator,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[World]:
    monkeypatch.setenv("H5_ALLOW_LIST", "https://h5.example.com/app")
    monkeypatch.setenv("PUBLIC_BASE_URL", API_BASE)
    monkeypatch.setattr(releases, "RETRY_BASE_SECONDS", 0)  # a put-off step is visible again at once
    reset_service_caches()
    offset = OffsetClock()
    clock.set_source(offset)
    with ExitStack() as stack:
        ddb = AwsFaults(runtime.dynamodb())
        stack.callback(ddb.uninstall)
        give_ticket(simulator)
        bystander = authorize(simulator, "official_account")
        simulator.set_rotation(bystander, enabled=True, grace_seconds=0)
        yield World(simulator, service, offset, monkeypatch, capfd, ddb, bystander, stack)
    clock.set_source(None)


# --- reading the simulator ----------------------------------------------------------------------------


def access_tokens_issued(sim: Simulator, appid: str) -> list[str]:
    with sim.state.lock:
        return [t.value for t in sim.state.accounts[appid].access_tokens]


def component_tokens_issued(sim: Simulator) -> list[str]:
    with sim.state.lock:
        return [t.value for t in sim.state.component_tokens]


def accepted_access_tokens(sim: Simulator, appid: str) -> set[str]:
    return {str(t["value"]) for t in sim.account(appid)["access_tokens"]}


def item(sk: str) -> dict[str, Any]:
    return runtime.store().tokens.read(sk) or {}


# --- calling the handlers as API Gateway and Lambda do ---------------------------------------------


@dataclass
class Answer:
    status: int
    body: str
    headers: dict[str, str]

    @property
    def reason(self) -> str:
        if self.status == 302:
            query = {k: v[0] for k, v in parse_qs(urlsplit(self.headers["Location"]).query).items()}
            return "ticket" if "ticket" in query else f"error={query.get('error')}"
        if self.body.startswith("{"):
            return str(json.loads(self.body).get("error", "ok"))
        found = re.search(r"<p>(.*?)</p>", self.body)
        return html.unescape(found.group(1)) if found else self.body

    def __str__(self) -> str:
        return f"{self.status} {self.reason}"


def route(code_uri: str, method: str, resource: str, params: dict[str, str], **query: str) -> Answer:
    """The function's handler with the event API Gateway builds; a handler that raises is what
    Lambda reports as an error and API Gateway answers 502 for."""
    path = resource
    for name, value in params.items():
        path = path.replace("{" + name + "}", value)
    event = rest_event(method, path, resource=resource, path_parameters=params or None, query=query or None)
    try:
        response = load_function(code_uri).lambda_handler(event, LambdaContext(function_name=code_uri))
    except Exception as error:
        return Answer(502, f"Lambda error {type(error).__name__} (API Gateway's 502)", {})
    headers = {k: v[0] for k, v in (response.get("multiValueHeaders") or {}).items()}
    headers |= response.get("headers") or {}
    return Answer(response["statusCode"], decode_body(response).decode(), headers)


# --- the rows -----------------------------------------------------------------------------------------


class Row:
    name = ""
    api = ""  # the simulator's name of the WeChat API the faults hit
    appid = ""  # the row's own account ("" for the component token)

    def prepare(self, w: World) -> None:
        raise NotImplementedError

    def act(self, w: World) -> str:
        raise NotImplementedError

    def effects(self, w: World) -> int:
        """How often the faulted API took effect at WeChat so far."""
        raise NotImplementedError

    def state(self, w: World) -> str:
        raise NotImplementedError

    def calls(self, w: World) -> int:
        return calls(w.sim, self.api)

    def throttle(self, w: World, column: str) -> None:
        raise NotImplementedError

    def compete(self, w: World, column: str) -> None:
        raise NotImplementedError

    def late(self, w: World) -> None:
        """The late_answer fault: WeChat does the work, and answers after our deadline."""
        add_fault(w.sim, api=self.api, after_effect=True, delay=READ_TIMEOUT + 0.5)

    def check(self, w: World, expect: Expect) -> None:
        """The row's own invariants right after the fault."""

    def follow_up(self, w: World, expect: Expect) -> None:
        """The next attempt, with the faults gone: it succeeds."""
        raise NotImplementedError


class TokenRow(Row):
    """A leased token: the component token, an authorizer's tokens, a JS-SDK ticket."""

    sk = ""
    field_name = "access_token"
    before: dict[str, Any]  # the item before the fault

    def issued(self, w: World) -> list[str]:
        raise NotImplementedError

    def valid(self, w: World, value: str) -> bool:
        raise NotImplementedError

    def effects(self, w: World) -> int:
        return len(self.issued(w))

    def prepare_due(self, expires_in: float) -> None:
        now = clock.now()
        values: dict[str, Any] = {"expires_at": now + expires_in}
        if "due_at" in item(self.sk) or self.sk != keys.COMPONENT_TOKEN_SK:
            values["due_at"] = now + expires_in - tokens.REFRESH_BEFORE_SECONDS
        runtime.store().table.update(self.sk, set_values=values)
        runtime.token_memo().clear()

    def state(self, w: World) -> str:
        now, before = item(self.sk), self.before
        held = float(now.get("lease_until", 0)) > clock.now()
        assert int(now.get("version", 0)) >= int(before.get("version", 0)), "the version went down"
        if now.get(self.field_name) != before.get(self.field_name):
            assert int(now["version"]) == int(before["version"]) + 1, "refreshed more than once"
            assert now[self.field_name] == self.issued(w)[-1], "not the newest token WeChat issued"
            assert self.valid(w, str(now[self.field_name])), "stored a token WeChat refuses"
            assert not held
            return "refreshed"
        assert int(now.get("version", 0)) == int(before.get("version", 0))
        if held:
            return "unchanged, lease held"
        if float(now.get("due_at", 0)) > float(before.get("due_at", 0)) and now.get("last_error"):
            return "unchanged, retry later"
        return "unchanged"

    def throttle(self, w: World, column: str) -> None:
        w.ddb.fail("UpdateItem", times=3, match=stores_token(self.sk))

    def late(self, w: World) -> None:
        w.monkeypatch.setattr(tokens, "LEASE_SECONDS", SHORT_LEASE)
        w.monkeypatch.setattr(tokens, "LEASE_MARGIN_SECONDS", SHORT_MARGIN)
        add_fault(w.sim, api=self.api, after_effect=True, delay=SHORT_LEASE)

    def competitor(self) -> Callable[[], Any]:
        raise NotImplementedError

    def compete(self, w: World, column: str) -> None:
        other_lambda = self.competitor()
        if column.endswith("+save"):

            def take_over() -> None:
                w.clock.advance(tokens.LEASE_SECONDS + 1)  # our lease runs out before our write
                other_lambda()

            w.ddb.before("UpdateItem", take_over, match=stores_token(self.sk))
        else:
            w.ddb.before("UpdateItem", other_lambda, match=takes_lease(self.sk))

    def check(self, w: World, expect: Expect) -> None:
        if self.appid:
            stored = item(keys.authorizer_sk(self.appid))
            assert stored["status"] == "active", "the authorization was given up"
            if expect.rt_now:
                assert stored["refresh_token"] in accepted_refresh_tokens(w.sim, self.appid), (
                    "the stored refresh token is one WeChat refuses"
                )

    def follow_up(self, w: World, expect: Expect) -> None:
        w.monkeypatch.setattr(tokens, "LEASE_SECONDS", LEASE[0])  # the next caller's lease is a usual one
        w.monkeypatch.setattr(tokens, "LEASE_MARGIN_SECONDS", LEASE[1])
        lease_until = float(item(self.sk).get("lease_until", 0))
        if lease_until > clock.now():
            w.clock.advance(lease_until - clock.now() + 1)  # the dead holder's lease runs out
        refreshed = self.state(w) == "refreshed"
        before = len(self.issued(w))
        self.next_caller(w)
        stored = item(self.sk)
        assert self.valid(w, str(stored[self.field_name])), "the next caller stored a token WeChat refuses"
        assert "lease_owner" not in stored
        issued = len(self.issued(w)) - before
        assert issued == (0 if refreshed else 1), f"the next caller made {issued} token(s)"
        if self.appid:
            account = item(keys.authorizer_sk(self.appid))
            assert account["status"] == "active"
            assert account["refresh_token"] in accepted_refresh_tokens(w.sim, self.appid)

    def next_caller(self, w: World) -> None:
        assert str(self.act(w)) == "200 ok"


class ComponentTokenRow(TokenRow):
    name, api, sk = "component_token", "api_component_token", keys.COMPONENT_TOKEN_SK

    def prepare(self, w: World) -> None:
        ComponentToken().get()
        self.prepare_due(60)  # too close to its end to hand out: the route must refresh it
        self.before = item(self.sk)

    def act(self, w: World) -> str:
        answer = route("functions/component_token", "GET", "/wechat/component/token", {})
        if answer.status == 200:
            value = json.loads(answer.body)["component_access_token"]
            if not self.valid(w, value):
                return "200 served a token WeChat refuses"
        return str(answer)

    def issued(self, w: World) -> list[str]:
        return component_tokens_issued(w.sim)

    def valid(self, w: World, value: str) -> bool:
        return w.sim.state.component_token_valid(value)

    def competitor(self) -> Callable[[], Any]:
        return lambda: ComponentToken().get()


class AuthorizerRow(TokenRow):
    def prepare(self, w: World) -> None:
        self.appid = authorize(w.sim, "official_account")
        self.sk = keys.authorizer_sk(self.appid)
        w.sim.set_rotation(self.appid, enabled=True, grace_seconds=0)

    api = "api_authorizer_token"

    def issued(self, w: World) -> list[str]:
        return access_tokens_issued(w.sim, self.appid)

    def valid(self, w: World, value: str) -> bool:
        return value in accepted_access_tokens(w.sim, self.appid)

    def competitor(self) -> Callable[[], Any]:
        appid = self.appid
        return lambda: AuthorizerToken(appid).get()


class AuthorizerOnDemandRow(AuthorizerRow):
    name = "authorizer_on_demand"

    def prepare(self, w: World) -> None:
        super().prepare(w)
        self.prepare_due(60)  # too close to its end to hand out
        self.before = item(self.sk)

    def act(self, w: World) -> str:
        answer = route("functions/admin", "GET", "/wechat/authorizers/{appid}/token", {"appid": self.appid})
        if answer.status == 200 and not self.valid(w, json.loads(answer.body)["authorizer_access_token"]):
            return "200 served a token WeChat refuses"
        return str(answer)


class AuthorizerRefresherRow(AuthorizerRow):
    name = "authorizer_refresher"

    def prepare(self, w: World) -> None:
        super().prepare(w)
        self.prepare_due(600)  # due (the refresher's window), still valid
        self.before = item(self.sk)

    def act(self, w: World) -> str:
        handler = load_function("functions/refresher").lambda_handler
        event = {"version": "0", "id": "e", "detail-type": "Scheduled Event", "source": "aws.scheduler"}
        report = handler(event | {"detail": {}}, LambdaContext(remaining_millis=300_000))
        assert report["due"] == 1, report
        if report["refreshed"]:
            return "refreshed"
        if report["quota_exceeded"]:
            return "quota exceeded"
        if report["failed"]:
            return "failed " + ",".join(sorted(report["errors"]))
        if report["needs_reauthorization"]:
            return "needs reauthorization"
        return "skipped" if report["skipped"] else str(report)

    def state(self, w: World) -> str:
        state = super().state(w)
        if state == "unchanged, retry later":
            now = item(self.sk)
            assert float(now["due_at"]) <= float(now["expires_at"]) - 120, "retried only after expiry"
        return state

    def next_caller(self, w: World) -> None:
        """The next scheduled run once the account is due again (a back-off written) finds it."""
        due_at = float(item(self.sk).get("due_at", 0))
        if clock.now() < due_at <= clock.now() + 3600:
            w.clock.advance(due_at - clock.now() + 1)
        outcome = self.act(w) if due_at <= clock.now() + 300 else "not due"
        assert outcome in ("refreshed", "not due"), outcome


class JsapiTicketRow(TokenRow):
    name, api, field_name = "jsapi_ticket", "getticket", "ticket"

    def prepare(self, w: World) -> None:
        self.appid = authorize(w.sim, "official_account")
        w.sim.set_rotation(self.appid, enabled=True, grace_seconds=0)
        self.sk = keys.jsapi_ticket_sk(self.appid)
        JsapiTicket(self.appid).get()
        self.prepare_due(600)  # due, still valid for 10 minutes
        self.before = item(self.sk)

    def act(self, w: World) -> str:
        answer = route("functions/h5", "GET", "/wechat/jssdk/{appid}/config", {"appid": self.appid}, url=PAGE)
        if answer.status == 200:
            body = json.loads(answer.body)
            signed = (body["timestamp"], body["nonceStr"], body["signature"])
            if not w.sim.verify_jssdk(self.appid, PAGE, *signed):
                return "200 refused by WeChat's client"
        return str(answer)

    def issued(self, w: World) -> list[str]:
        return [str(t["ticket"]) for t in w.sim.jsapi_tickets(self.appid) if t["type"] == "jsapi"]

    def valid(self, w: World, value: str) -> bool:
        return any(t["ticket"] == value and t["valid"] for t in w.sim.jsapi_tickets(self.appid))

    def competitor(self) -> Callable[[], Any]:
        appid = self.appid
        return lambda: JsapiTicket(appid).get()


class MessageRow(Row):
    name = "message_publish"

    def prepare(self, w: World) -> None:
        self.appid = authorize(w.sim, "official_account")
        self.user_name = str(w.sim.account(self.appid)["user_name"])
        now = int(clock.now())
        msg_id = uuid.uuid4().int % 2**63
        self.plaintext = message_plaintext(
            self.user_name, w.sim.fan_openid(self.appid), "text", now, Content="hi", MsgId=msg_id
        )
        self.published = 0
        w.events_faults()  # counts PutEvents calls from now on

    def delivery(self, w: World) -> tuple[dict[str, str], bytes]:
        """A delivery of the message as WeChat sends it (each re-send signed anew)."""
        return signed_message(w.sim, self.plaintext, self.user_name)

    def act(self, w: World) -> str:
        try:
            status, _, body = invoke_messages(self.appid, *self.delivery(w))
        except Exception as error:
            return f"502 Lambda error {type(error).__name__} (API Gateway's 502)"
        if status != 200:
            return f"{status} {json.loads(body)['error']}"
        return f"{status} {body}"

    def effects(self, w: World) -> int:
        self.published += len(w.service.published())
        return self.published

    def calls(self, w: World) -> int:
        return w.events_faults().calls["PutEvents"]

    def state(self, w: World) -> str:
        keys_kept = [i for i in w.service.items() if i["pk"]["S"].startswith("delivery#")]
        return "delivery key kept" if keys_kept else "no delivery key"

    def throttle(self, w: World, column: str) -> None:
        if column.startswith("ddb_throttle+publish_refused"):
            w.events_faults().fail("PutEvents", error="ThrottlingException")
            attempts = account_messages.DELIVERY_KEY_RELEASE_ATTEMPTS if column.endswith("+3x") else 1
            w.ddb.fail("DeleteItem", times=attempts, match=pk_starts("delivery#"))
        else:
            w.ddb.fail("PutItem", match=pk_starts("delivery#"))

    def compete(self, w: World, column: str) -> None:
        resend = self.delivery(w)
        w.ddb.before(
            "PutItem",
            lambda: account_messages.handle_account_message(self.appid, *resend),
            match=pk_starts("delivery#"),
        )

    def follow_up(self, w: World, expect: Expect) -> None:
        for _ in range(2):  # WeChat's re-sends: answered, published once in all
            assert self.act(w) == "200 success"
        assert self.effects(w) == expect.total


class OAuthRow(Row):
    name, api = "oauth_callback", "access_token"

    def prepare(self, w: World) -> None:
        self.appid = authorize(w.sim, "official_account")
        self.code, self.state_value = self.consent(w)
        self.before_component = item(keys.COMPONENT_TOKEN_SK)

    def consent(self, w: World) -> tuple[str, str]:
        callback = f"{API_BASE}/wechat/oauth/{self.appid}/callback"
        url = h5.authorize_url(self.appid, "snsapi_base", PAGE, "page-state", callback)
        location = w.sim.oauth_consent(url)
        query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        return query["code"], query["state"]

    def callback(self, code: str, state: str) -> Answer:
        return route(
            "functions/h5",
            "GET",
            "/wechat/oauth/{appid}/callback",
            {"appid": self.appid},
            code=code,
            state=state,
            appid=self.appid,
        )

    def act(self, w: World) -> str:
        answer = self.callback(self.code, self.state_value)
        if answer.status == 302 and answer.reason == "ticket":
            self.check_ticket(w, answer)
        return str(answer)

    def check_ticket(self, w: World, answer: Answer) -> None:
        location = answer.headers["Location"]
        assert location.startswith(PAGE + "?")
        ticket = parse_qs(urlsplit(location).query)["ticket"][0]
        identity = h5.redeem({"ticket": ticket})
        assert identity["openid"] == w.sim.fan_openid(self.appid)

    def effects(self, w: World) -> int:
        return sum(1 for t in w.sim.oauth_tokens() if t.startswith("sim_oat_"))

    def state(self, w: World) -> str:
        items = w.service.items()
        ticket = any(i["sk"]["S"].startswith("oauthticket#") for i in items)
        (state,) = [i for i in items if i["sk"]["S"] == keys.oauth_state_sk(self.state_value)]
        used = "used" if "used_at" in state else "unused"
        return f"state {used}, {'ticket' if ticket else 'no ticket'}"

    def throttle(self, w: World, column: str) -> None:
        if column == "ddb_throttle+state":
            w.ddb.fail("UpdateItem", match=sk_starts("oauthstate#"))
        else:
            w.ddb.fail("PutItem", match=sk_starts("oauthticket#"))

    def compete(self, w: World, column: str) -> None:
        def same_callback() -> None:  # the browser's second request, in another Lambda
            h5.callback(self.appid, self.code, self.state_value, self.appid)

        w.ddb.before("UpdateItem", same_callback, match=sk_starts("oauthstate#"))

    def follow_up(self, w: World, expect: Expect) -> None:
        if expect.state.startswith("state unused"):
            answer = self.callback(self.code, self.state_value)  # the browser reloads
        else:
            answer = self.callback(*self.consent(w))  # the page starts again
        assert str(answer) == "302 ticket"
        self.check_ticket(w, answer)


class ReleaseRow(Row):
    step = ""
    code_field = ""  # the simulator's record of the step's effect

    def prepare(self, w: World) -> None:
        self.appid = authorize(w.sim, "mini_program")
        template = int(w.sim.add_template(user_version="2.3.0")["template_id"])
        body = {"template_id": template, "user_version": "2.3.0", "user_desc": "matrix"}
        self.release_id = releases.create(body | {"appids": [self.appid]})["release_id"]
        if self.step == "release":
            w.sim.set_audit_outcome(self.appid, "lost")  # approved at WeChat; the event comes below
        self.message = self.advance_to(w, self.step)
        self.account_before = self.account()

    def advance_to(self, w: World, step: str) -> dict[str, Any]:
        """Work the queue until the next message is ``step``'s; take it out and return it."""
        for _ in range(20):
            messages = release_queue.receive()
            if not messages and step == "release":
                self.approve(w)
                continue
            assert messages, f"no {step} message came"
            for message in messages:
                body = json.loads(message["Body"])
                if body.get("step") == step:
                    release_queue.delete([message])
                    return dict(body)
                release_queue.run_batch([message])
        raise AssertionError(f"no {step} message came")

    def approve(self, w: World) -> None:
        """WeChat approves the audit; its event reaches the message URL."""
        finished = w.sim.finish_audits(self.appid)
        assert [f["status"] for f in finished] == [0]
        now = int(clock.now())
        user_name = str(w.sim.account(self.appid)["user_name"])
        event = message_plaintext(
            user_name, w.sim.fan_openid(self.appid), "event", now, Event="weapp_audit_success", SuccTime=now
        )
        assert invoke_messages(self.appid, *signed_message(w.sim, event, user_name))[0] == 200

    def account(self) -> dict[str, Any]:
        return runtime.store().releases.account(self.release_id, self.appid) or {}

    def act(self, w: World) -> str:
        release_queue.send(self.message)
        messages = release_queue.receive()
        assert len(messages) == 1
        failed = release_queue.run_batch(messages)
        if failed:
            return "redelivered"
        if any(m.get("step") == self.step and m.get("attempt") for m in release_queue.pending()):
            return "put off"
        return "consumed"

    def effects(self, w: World) -> int:
        return len(w.sim.code_state(self.appid)[self.code_field])

    def state(self, w: World) -> str:
        account = self.account()
        state = str(account.get("state"))
        if state == "failed":
            state += f" {account.get('errcode')}"
        if account.get("claim_owner") and float(account.get("claim_until", 0)) > clock.now():
            state += ", claimed"
        return state

    def throttle(self, w: World, column: str) -> None:
        done = {"commit": "committed", "submit": "auditing", "release": "released"}[self.step]
        w.ddb.fail("UpdateItem", match=moves_to(done))

    def compete(self, w: World, column: str) -> None:
        duplicate = dict(self.message)
        w.ddb.before("UpdateItem", lambda: releases.handle(duplicate), match=claims_release_step(self.appid))

    def check(self, w: World, expect: Expect) -> None:
        assert w.sim.code_calls(w.bystander) == {}

    def follow_up(self, w: World, expect: Expect) -> None:
        w.clock.advance(VISIBILITY_TIMEOUT + 1)  # SQS shows a failed message again; a dead claim ran out
        release_queue.drain()
        final = {"commit": "auditing", "submit": "auditing", "release": "released"}[self.step]
        if expect.state.startswith("failed"):
            final = expect.state
        assert self.state(w) == final
        assert self.effects(w) == expect.total


class CommitRow(ReleaseRow):
    name, api, step, code_field = "release_commit", "commit", "commit", "commits"


class SubmitRow(ReleaseRow):
    name, api, step, code_field = "release_submit", "submit_audit", "submit", "audits"


class ReleaseStepRow(ReleaseRow):
    name, api, step, code_field = "release_release", "release", "release", "releases"


ROW_TYPES: dict[str, type[Row]] = {
    row.name: row
    for row in (
        ComponentTokenRow,
        AuthorizerOnDemandRow,
        AuthorizerRefresherRow,
        JsapiTicketRow,
        MessageRow,
        OAuthRow,
        CommitRow,
        SubmitRow,
        ReleaseStepRow,
    )
}


# --- the other account ---------------------------------------------------------------------------------

BYSTANDER_FIELDS = (
    "access_token",
    "refresh_token",
    "version",
    "expires_at",
    "status",
    "lease_owner",
    "due_at",
)


def bystander_view(appid: str) -> dict[str, Any]:
    stored = item(keys.authorizer_sk(appid))
    return {k: stored.get(k) for k in BYSTANDER_FIELDS}


# --- the cells -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("row_name", "column"), cells())
def test_fault_matrix(world: World, row_name: str, column: str) -> None:
    expect = MATRIX[(row_name, column)]
    assert isinstance(expect, Expect)
    w, row = world, ROW_TYPES[row_name]()
    row.prepare(w)
    bystander_before = bystander_view(w.bystander)
    component_before = len(component_tokens_issued(w.sim))
    own_before = len(access_tokens_issued(w.sim, row.appid)) if row.appid else 0
    calls_before, effects_before = row.calls(w), row.effects(w)

    base = column.split("+", maxsplit=1)[0]
    if base in SIM_FAULTS:
        add_fault(w.sim, api=row.api, **SIM_FAULTS[base])
    elif base == "late_answer":
        row.late(w)
    elif base == "ddb_throttle":
        row.throttle(w, column)
    elif base == "ddb_conditional":
        row.compete(w, column)

    outcome = w.measure(lambda: row.act(w))

    # 1. what the operation answered, and the state it left
    assert outcome == expect.outcome
    assert row.state(w) == expect.state
    assert not w.ddb.unused, f"the injected DynamoDB fault never happened: {w.ddb.unused}"
    # 2. the metrics
    emitted = set(w.metrics)
    assert expect.metrics <= emitted, f"missing metrics {sorted(expect.metrics - emitted)}"
    unexpected = (emitted & ALARMS) - expect.metrics
    assert not unexpected, f"alarming metrics the cell does not expect: {sorted(unexpected)}"
    # 3. upstream calls: retries of a failed call counted; what took effect
    assert row.calls(w) - calls_before == expect.calls
    assert row.effects(w) - effects_before == expect.effects
    if row_name != "component_token":
        assert len(component_tokens_issued(w.sim)) - component_before <= 1, "component token refreshed twice"
    if row.appid and not isinstance(row, AuthorizerRow):
        refreshed = len(access_tokens_issued(w.sim, row.appid)) - own_before
        assert refreshed <= 1, "authorizer token refreshed twice"
    # 4. no token lost, none replaced by an older one (the row's own checks)
    row.check(w, expect)
    # 5. the other account: untouched, and served without a call
    assert bystander_view(w.bystander) == bystander_before
    served_before = calls(w.sim, "api_authorizer_token")
    served = AuthorizerToken(w.bystander).get()
    assert served == bystander_before["access_token"]
    assert served in accepted_access_tokens(w.sim, w.bystander)
    assert bystander_before["refresh_token"] in accepted_refresh_tokens(w.sim, w.bystander)
    assert calls(w.sim, "api_authorizer_token") == served_before
    # 6. the next attempt, with the faults gone
    w.clear_faults()
    row.follow_up(w, expect)
    assert bystander_view(w.bystander) == bystander_before


def test_injected_throttling_reaches_the_code_and_a_competing_write_lands_first(
    world: World,
) -> None:
    """The injection itself: a throttled call raises the modeled error after botocore's retries
    (none made: the answer is final), the competing writer runs before the call is sent, and calls
    the competitor makes are not matched again."""
    client = runtime.dynamodb()
    sk = keys.authorizer_sk(world.bystander)
    world.ddb.fail("GetItem", match=lambda p: p["Key"]["sk"]["S"] == sk)
    with pytest.raises(client.exceptions.ProvisionedThroughputExceededException):
        runtime.store().tokens.read(sk)
    assert runtime.store().tokens.read(sk) is not None  # once only
    order: list[str] = []
    world.ddb.before("GetItem", lambda: order.append(str(runtime.store().tokens.read(sk) is not None)))
    runtime.store().tokens.read(sk)
    order.append("ours")
    assert order == ["True", "ours"]
    assert world.ddb.unused == []
