"""Mini Program releases from one template to many authorized Mini Programs (代开发 / 模板化).

A release (``POST /wechat/releases``) is stored and one ``fanout`` message queued. The worker
(``functions/release_worker``, on the release queue) then moves each account through its steps,
one message per account and step:

- ``fanout``: a page of target accounts (the listed appids, or every Mini Program with an active
  authorization, never an Official Account) gets an item each (``queued``) and a ``commit``
  message; the next page is another ``fanout`` message, so a release to thousands is many short
  invocations, each resumable.
- ``commit``: the domains and privacy settings when the release gives them, then ``wxa/commit``
  of the template with ``ext_json`` whose ``extAppid`` is the account's -> ``committed`` and a
  ``submit`` message.
- ``submit``: ``wxa/submit_audit`` -> ``auditing`` (with the auditid). The account's audit is now
  WeChat's: hours to days, and the result is pushed to the message URL as an event.
- audit events (``on_audit_event``, called by the message URL): ``weapp_audit_success`` ->
  ``approved`` (and a ``release`` message when ``auto_release``), ``weapp_audit_fail`` ->
  ``rejected`` with WeChat's reason and screenshots, ``weapp_audit_delay`` -> ``delayed``.
- ``release``: ``wxa/release`` -> ``released``.
- ``check``: events can be lost; accounts auditing for a day without one are listed by the due
  index, and the scheduled run queues a ``check`` that asks ``wxa/get_latest_auditstatus``.

Every step takes the account with a claim (``store.releases``): a duplicate message or a repeated
event never repeats a WeChat call that took effect (a commit whose answer was lost is made again,
harmlessly; a lost submission or release is recognised from 85009 or 85052). WeChat's rate
limits (45009, 45011, -1) put the message back with a delay instead of failing it; WeChat's other
refusals of an account fail that account with the errcode and what it means (61007: the account
did not grant code management); anything else (WeChat unreachable, 61004 refusing the platform
itself, DynamoDB) fails the message, which SQS delivers again and finally moves to the
dead-letter queue.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import uuid
from collections import Counter
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from wechat_core import clock, runtime
from wechat_core.errors import (
    BadRequest,
    Conflict,
    NotFound,
    ServiceError,
    WeChatBusy,
    WeChatError,
    WeChatQuotaExceeded,
    WeChatRateLimited,
)
from wechat_core.features.tokens import AuthorizerToken, AuthorizerUnavailable, ComponentToken
from wechat_core.protocol.account_messages import AuditEvent
from wechat_core.protocol.ids import is_appid

logger = Logger(child=True)
metrics = Metrics()

STATES = ("queued", "committed", "auditing", "approved", "released", "rejected", "delayed", "failed")
CLAIM_SECONDS = 90  # longer than one step with all its WeChat retries (the worker's timeout is 60 s)
AUDIT_CHECK_AFTER_SECONDS = 24 * 3600
FANOUT_PAGE = 100
MAX_APPIDS = 5000
MAX_USER_VERSION = 64
MAX_USER_DESC = 1024
MAX_OPTIONS_BYTES = 32 * 1024
# The options objects are stored in the release's item: DynamoDB keeps 32 levels of nesting and
# numbers of 38 digits between 1e-130 and 1e126 in magnitude; deeper or other ones are refused here.
MAX_OPTIONS_DEPTH = 16
MAX_ID = 10**12 - 1  # draft and template ids: the path's TEMPLATE_ID takes 12 digits as well
NO_SUCH_TEMPLATE = 85064  # addtotemplate of an unknown draft, deletetemplate of an unknown template
RETRY_BASE_SECONDS = 60
RELEASE_ID = re.compile(r"[0-9]{10}-[0-9a-f]{8}")
TEMPLATE_ID = re.compile(r"[0-9]{1,12}")
DOMAIN_KINDS = (
    "requestdomain",
    "wsrequestdomain",
    "uploaddomain",
    "downloaddomain",
    "udpdomain",
    "tcpdomain",
)
# What WeChat's refusals of these steps mean, in our words (errcode and errmsg are kept too).
MEANINGS = {
    61003: "the account has not authorized this platform",
    61007: "the account did not grant code management (permission set 18) to this platform",
    85009: "another version of this Mini Program is under audit",
    85013: "WeChat refused the ext_json",
    85014: "the template does not exist",
    85019: "there is no approved version to release",
    85020: "the audit status does not allow a release",
    85085: "the platform's audit quota for this month is spent",
    86000: "no audit to ask about",
}
_RATE_LIMITS = (WeChatQuotaExceeded, WeChatRateLimited, WeChatBusy)
# Refusals of the platform as a whole, not of the account (61004: the caller's IP is not on the
# platform's whitelist): the message is delivered again, and after five tries it waits in the
# dead-letter queue for the operator to fix the setting and redrive it; no account fails for it.
PLATFORM_REFUSALS = frozenset({61004})
ACCOUNT_FIELDS = (
    "appid",
    "state",
    "auditid",
    "reason",
    "screenshots",
    "errcode",
    "error",
    "changed_at",
    "submitted_at",
)
RELEASE_FIELDS = (
    "release_id",
    "template_id",
    "user_version",
    "user_desc",
    "ext_json",
    "audit",
    "auto_release",
    "target",
    "created_at",
    "fanout_done_at",
)


class Refused(Exception):
    """A step that cannot succeed for this account: it fails with ``errcode`` and ``words``."""

    def __init__(self, words: str, errcode: int | None = None) -> None:
        super().__init__(words)
        self.words = words
        self.errcode = errcode


def _owner() -> str:
    stream = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "local")
    return f"{stream[-24:]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


# --- the template library -----------------------------------------------------------------------


def templates() -> dict[str, Any]:
    return {"templates": runtime.wxa_api().templates(ComponentToken())}


def drafts() -> dict[str, Any]:
    return {"drafts": runtime.wxa_api().template_drafts(ComponentToken())}


def _whole_number(body: Mapping[str, Any], name: str, *, default: int | None = None) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ID:
        raise BadRequest(f"{name} must be a whole number")
    return value


def add_template(body: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(body) - {"draft_id", "template_type"})
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]}")
    draft_id = _whole_number(body, "draft_id")
    template_type = _whole_number(body, "template_type", default=0)
    if template_type not in (0, 1):
        raise BadRequest("template_type must be 0 (ordinary) or 1 (standard)")
    try:
        runtime.wxa_api().add_to_template(draft_id, template_type, ComponentToken())
    except WeChatError as error:
        if error.errcode == NO_SUCH_TEMPLATE:
            raise NotFound("no such draft") from None
        raise
    return {"added": draft_id}


def delete_template(template_id: str) -> dict[str, Any]:
    if not TEMPLATE_ID.fullmatch(template_id):
        raise BadRequest("template_id must be a whole number")
    try:
        runtime.wxa_api().delete_template(int(template_id), ComponentToken())
    except WeChatError as error:
        if error.errcode == NO_SUCH_TEMPLATE:
            raise NotFound("no such template") from None
        raise
    return {"deleted": int(template_id)}


# --- releases (the IAM routes) ------------------------------------------------------------------


def _object(body: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = body.get(name, {})
    if not isinstance(value, dict):
        raise BadRequest(f"{name} must be a JSON object")
    _storable(value, name, 1)
    if len(json.dumps(value, ensure_ascii=False).encode()) > MAX_OPTIONS_BYTES:
        raise BadRequest(f"{name} is over {MAX_OPTIONS_BYTES} bytes")
    return value


def _storable(value: Any, name: str, depth: int) -> None:
    """Refuse what the release's item could not hold (a 4xx, not DynamoDB's refusal as a 5xx)."""
    if depth > MAX_OPTIONS_DEPTH:
        raise BadRequest(f"{name} is nested more than {MAX_OPTIONS_DEPTH} levels deep")
    if isinstance(value, dict):
        for inner in value.values():
            _storable(inner, name, depth + 1)
    elif isinstance(value, list):
        for inner in value:
            _storable(inner, name, depth + 1)
    elif isinstance(value, bool) or value is None or isinstance(value, str):
        return
    elif isinstance(value, int):
        if abs(value) >= 10**38:
            raise BadRequest(f"{name} holds a number of more than 38 digits")
    elif isinstance(value, float) and value != 0 and not 1e-130 <= abs(value) < 1e126:
        raise BadRequest(f"{name} holds a number out of range")


def _targets(body: Mapping[str, Any]) -> tuple[str, list[str]]:
    everyone, appids = body.get("all"), body.get("appids")
    if everyone is not None and not isinstance(everyone, bool):
        raise BadRequest("all must be true or false")
    if everyone and appids is not None:
        raise BadRequest("give appids or all, not both")
    if everyone:
        return "all", []
    if appids is None:
        raise BadRequest("give appids (a list of Mini Program appids) or all: true")
    if not isinstance(appids, list) or not appids:
        raise BadRequest("appids must be a non-empty list")
    if len(appids) > MAX_APPIDS:
        raise BadRequest(f"at most {MAX_APPIDS} appids; use all: true for more")
    if not all(is_appid(a) for a in appids):  # null among them too
        raise BadRequest("appids must be wx + 16 characters each")
    return "list", list(dict.fromkeys(appids))


def _domains(body: Mapping[str, Any]) -> dict[str, Any]:
    domains = _object(body, "domains")
    for kind, values in domains.items():
        if kind not in DOMAIN_KINDS:
            raise BadRequest(f"domains: unknown kind {kind}")
        if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
            raise BadRequest(f"domains: {kind} must be a list of URLs")
    return domains


def create(body: Mapping[str, Any]) -> dict[str, Any]:
    """A new release (202): stored, and its fan-out queued. Bad input creates nothing."""
    allowed = {
        "template_id",
        "user_version",
        "user_desc",
        "ext_json",
        "appids",
        "all",
        "audit",
        "auto_release",
    }
    unknown = sorted(set(body) - allowed - {"privacy", "domains"})
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]}")
    template_id = _whole_number(body, "template_id")
    user_version = body.get("user_version")
    if not isinstance(user_version, str) or not 0 < len(user_version) <= MAX_USER_VERSION:
        raise BadRequest(f"user_version must be a string of 1 to {MAX_USER_VERSION} characters")
    user_desc = body.get("user_desc", "")
    if not isinstance(user_desc, str) or len(user_desc) > MAX_USER_DESC:
        raise BadRequest(f"user_desc must be a string of at most {MAX_USER_DESC} characters")
    auto_release = body.get("auto_release", True)
    if not isinstance(auto_release, bool):
        raise BadRequest("auto_release must be true or false")
    target, appids = _targets(body)
    ext_json, audit, privacy = _object(body, "ext_json"), _object(body, "audit"), _object(body, "privacy")
    domains = _domains(body)
    now = clock.now()
    release_id = f"{int(now):010d}-{secrets.token_hex(4)}"
    release = {
        "kind": "release",
        "release_id": release_id,
        "template_id": template_id,
        "user_version": user_version,
        "user_desc": user_desc,
        "ext_json": ext_json,
        "audit": audit,
        "privacy": privacy,
        "domains": domains,
        "auto_release": auto_release,
        "target": target,
        "appids": appids,
        "created_at": now,
    }
    store = runtime.store()
    if not store.releases.create(release_id, release):
        raise Conflict("release id taken; try again")
    try:
        runtime.release_queue().send([{"step": "fanout", "release_id": release_id}])
    except ServiceError:
        store.releases.forget(release_id)  # nothing was queued: the release never existed
        raise
    metrics.add_metric("ReleaseCreated", MetricUnit.Count, 1)
    logger.info("release created", extra={"release_id": release_id, "target": target, "appids": len(appids)})
    return {"release_id": release_id}


def _release(release_id: str) -> dict[str, Any]:
    if not RELEASE_ID.fullmatch(release_id):
        raise BadRequest("malformed release id")
    release = runtime.store().releases.get(release_id)
    if release is None:
        raise NotFound("no such release")
    return release


def _page_limit(limit: int) -> int:
    if not 1 <= limit <= 500:
        raise BadRequest("limit must be between 1 and 500")
    return limit


def status(release_id: str, limit: int = 100, after: str | None = None) -> dict[str, Any]:
    """The release, its accounts counted by state, and one page of accounts."""
    _page_limit(limit)
    if after is not None and not is_appid(after):
        raise BadRequest("next must be an appid from a previous page")
    release = _release(release_id)
    releases = runtime.store().releases
    counts: Counter[str] = Counter()
    start: str | None = None
    while True:
        rows, start = releases.accounts(release_id, 1000, start, attributes=("appid", "state"))
        counts.update(str(r.get("state")) for r in rows)
        if start is None:
            break
    rows, last = releases.accounts(release_id, limit, after)
    return {
        "release": {k: release[k] for k in RELEASE_FIELDS if k in release},
        "counts": {s: counts[s] for s in STATES if counts[s]},
        "total": sum(counts.values()),
        "accounts": [{k: r[k] for k in ACCOUNT_FIELDS if k in r} for r in rows],
        "next": last,
    }


def listing(limit: int = 50, after: str | None = None) -> dict[str, Any]:
    _page_limit(limit)
    if after is not None and not RELEASE_ID.fullmatch(after):
        raise BadRequest("next must be a release id from a previous page")
    rows, last = runtime.store().releases.page(limit, after)
    return {"releases": [{k: r[k] for k in RELEASE_FIELDS if k in r} for r in rows], "next": last}


def release_approved(release_id: str) -> dict[str, Any]:
    """Queue the release of every approved account (for releases made with ``auto_release`` false)."""
    _release(release_id)
    releases = runtime.store().releases
    approved: list[str] = []
    start: str | None = None
    while True:
        rows, start = releases.accounts(release_id, 1000, start, attributes=("appid", "state"))
        approved += [str(r["appid"]) for r in rows if r.get("state") == "approved"]
        if start is None:
            break
    runtime.release_queue().send([_message("release", release_id, a) for a in approved])
    return {"release_id": release_id, "queued": len(approved)}


# --- the worker ---------------------------------------------------------------------------------


def _message(step: str, release_id: str, appid: str | None = None, **extra: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"step": step, "release_id": release_id, **extra}
    if appid is not None:
        message["appid"] = appid
    return message


def _header(release_id: str) -> dict[str, Any] | None:
    """The release as created (never changes): read once per process."""
    memo = runtime.release_headers()
    if release_id not in memo:
        release = runtime.store().releases.get(release_id)
        if release is None:
            return None
        memo[release_id] = release
    return memo[release_id]


def handle(message: Mapping[str, Any]) -> None:
    """One queue message. Returns when the step is done, put off or failed for its account;
    raises when it should be delivered again (SQS, then the dead-letter queue)."""
    step, release_id, appid = message.get("step"), message.get("release_id"), message.get("appid")
    if not isinstance(release_id, str) or not RELEASE_ID.fullmatch(release_id):
        logger.error("release message without a valid release id", extra={"step": step})
        metrics.add_metric("ReleaseMessageMalformed", MetricUnit.Count, 1)
        return
    header = _header(release_id)
    if header is None:
        logger.error("message for an unknown release", extra={"release_id": release_id, "step": step})
        metrics.add_metric("ReleaseMessageMalformed", MetricUnit.Count, 1)
        return
    if step == "fanout":
        _fanout(header, message)
        return
    steps = {"commit": _commit, "submit": _submit, "release": _do_release, "check": _check}
    if step not in steps or not is_appid(appid):
        logger.error("release message with an unknown step or appid", extra={"release_id": release_id})
        metrics.add_metric("ReleaseMessageMalformed", MetricUnit.Count, 1)
        return
    assert isinstance(appid, str)
    steps[step](header, appid, message)


def _fanout(header: Mapping[str, Any], message: Mapping[str, Any]) -> None:
    release_id = str(header["release_id"])
    store = runtime.store()
    follow: dict[str, Any] | None = None
    if header.get("target") == "all":
        after = message.get("after")
        items, last = store.authorizers.page(FANOUT_PAGE, after if isinstance(after, str) else None)
        appids = [
            str(i["authorizer_appid"])
            for i in items
            if i.get("status") == "active" and (i.get("info") or {}).get("kind") == "mini_program"
        ]
        follow = {"after": last} if last else None
    else:
        offset = int(message.get("offset") or 0)
        listed = list(header.get("appids") or [])
        appids = listed[offset : offset + FANOUT_PAGE]
        follow = {"offset": offset + FANOUT_PAGE} if offset + FANOUT_PAGE < len(listed) else None
    now = clock.now()
    to_commit = [a for a in appids if store.releases.add_account(release_id, a, now)]
    queue = runtime.release_queue()
    queue.send([_message("commit", release_id, a) for a in to_commit])
    if follow is not None:
        queue.send([_message("fanout", release_id, **follow)])
    else:
        store.releases.update(release_id, {"fanout_done_at": now})
    metrics.add_metric("ReleaseAccountsQueued", MetricUnit.Count, len(to_commit))


def _claim(
    header: Mapping[str, Any], appid: str, states: tuple[str, ...]
) -> tuple[dict[str, Any], str] | None:
    owner, now = _owner(), clock.now()
    item = runtime.store().releases.claim(
        str(header["release_id"]), appid, states=states, owner=owner, now=now, until=now + CLAIM_SECONDS
    )
    if item is None:
        metrics.add_metric("ReleaseStepSkipped", MetricUnit.Count, 1)
        return None
    return item, owner


def _mini_program(appid: str) -> None:
    item = runtime.store().authorizers.get(appid, consistent=False)
    if item is None or item.get("status") != "active":
        raise Refused("the account has no active authorization")
    if (item.get("info") or {}).get("kind") not in (None, "mini_program"):
        raise Refused("the account is not a Mini Program")


def _commit(header: Mapping[str, Any], appid: str, message: Mapping[str, Any]) -> None:
    release_id = str(header["release_id"])
    claimed = _claim(header, appid, ("queued",))
    if claimed is None:
        account = runtime.store().releases.account(release_id, appid) or {}
        if account.get("state") == "committed" and not account.get("claim_owner"):
            # Committed, but the submit message may never have been sent (a crash in between).
            runtime.release_queue().send([_message("submit", release_id, appid)])
        return
    _, owner = claimed
    try:
        _mini_program(appid)
        token, api = AuthorizerToken(appid), runtime.wxa_api()
        if header.get("domains"):
            api.set_domains(header["domains"], token)
        if header.get("privacy"):
            api.set_privacy(header["privacy"], token)
        ext_json = {**(header.get("ext_json") or {}), "extAppid": appid}
        api.commit(
            int(header["template_id"]), ext_json, str(header["user_version"]), str(header["user_desc"]), token
        )
    except BaseException as error:
        _step_failed(header, appid, owner, error, message)
        return
    if _move(release_id, appid, owner, "committed") is not None:
        metrics.add_metric("ReleaseCommitted", MetricUnit.Count, 1)
        runtime.release_queue().send([_message("submit", release_id, appid)])


def _submit(header: Mapping[str, Any], appid: str, message: Mapping[str, Any]) -> None:
    release_id = str(header["release_id"])
    claimed = _claim(header, appid, ("committed",))
    if claimed is None:
        return
    account, owner = claimed
    token, api = AuthorizerToken(appid), runtime.wxa_api()
    store = runtime.store()
    try:
        # Before the submission: an audit event that follows it finds this release.
        store.releases.set_current(appid, release_id, clock.now())
        try:
            auditid = api.submit_audit(header.get("audit") or {}, token)
        except WeChatError as error:
            if error.errcode != 85009:
                raise
            recovered = _our_audit(header, account, api.latest_audit_status(token))
            if recovered is None:
                raise
            auditid = recovered
    except BaseException as error:
        _step_failed(header, appid, owner, error, message)
        return
    now = clock.now()
    moved = store.releases.move(
        release_id,
        appid,
        owner=owner,
        state="auditing",
        now=now,
        values={"auditid": auditid, "submitted_at": now},
        audit_due_at=now + AUDIT_CHECK_AFTER_SECONDS,
    )
    if moved is None:
        return
    metrics.add_metric("ReleaseSubmitted", MetricUnit.Count, 1)
    early = moved.get("early_audit")
    if isinstance(early, dict):
        _apply_audit(header, appid, str(early.get("result")), early)


def _our_audit(
    header: Mapping[str, Any], account: Mapping[str, Any], latest: Mapping[str, Any]
) -> int | None:
    """On 85009 (a version is under audit): our own earlier submission, whose answer was lost, if
    WeChat's latest audit is of this version and was submitted after our commit."""
    under_audit = latest.get("status") in (2, 4)
    ours = latest.get("user_version") == header.get("user_version")
    after_commit = float(latest.get("submit_audit_time") or 0) >= float(account.get("changed_at") or 0) - 1
    if under_audit and ours and after_commit and latest.get("auditid") is not None:
        metrics.add_metric("ReleaseSubmissionRecovered", MetricUnit.Count, 1)
        return int(latest["auditid"])
    return None


def _do_release(header: Mapping[str, Any], appid: str, message: Mapping[str, Any]) -> None:
    release_id = str(header["release_id"])
    claimed = _claim(header, appid, ("approved",))
    if claimed is None:
        return
    _, owner = claimed
    try:
        try:
            runtime.wxa_api().release(AuthorizerToken(appid))
        except WeChatError as error:
            if error.errcode != 85052:  # already released: our earlier call's answer was lost
                raise
    except BaseException as error:
        _step_failed(header, appid, owner, error, message)
        return
    if _move(release_id, appid, owner, "released", {"released_at": clock.now()}) is not None:
        metrics.add_metric("ReleaseReleased", MetricUnit.Count, 1)


def _check(header: Mapping[str, Any], appid: str, message: Mapping[str, Any]) -> None:
    """An audit without news for a day: ask WeChat (the event may have been lost)."""
    release_id = str(header["release_id"])
    claimed = _claim(header, appid, ("auditing", "delayed"))
    if claimed is None:
        return
    account, owner = claimed
    try:
        latest = runtime.wxa_api().latest_audit_status(AuthorizerToken(appid))
    except BaseException as error:
        _step_failed(header, appid, owner, error, message)
        return
    now = clock.now()
    if account.get("auditid") is not None and latest.get("auditid") not in (None, account.get("auditid")):
        _move(
            release_id, appid, owner, "failed", {"error": "another version was submitted for audit meanwhile"}
        )
        return
    result = {0: "success", 1: "fail", 4: "delay"}.get(int(latest.get("status", 2)))
    if result is None:
        state = "failed" if latest.get("status") == 3 else str(account.get("state"))
        values = {"error": "the audit was withdrawn"} if state == "failed" else {}
        due = None if state == "failed" else now + AUDIT_CHECK_AFTER_SECONDS
        runtime.store().releases.move(
            release_id, appid, owner=owner, state=state, now=now, values=values, audit_due_at=due
        )
        return
    # The result the event would have brought: give the claim back, then apply it as the event would.
    runtime.store().releases.unclaim(release_id, appid, owner)
    audit = {"reason": latest.get("reason"), "screenshots": _screenshots(latest.get("ScreenShot"))}
    if _apply_audit(header, appid, result, audit) is not None:
        metrics.add_metric("ReleaseAuditRecovered", MetricUnit.Count, 1)
        logger.warning(
            "audit result recovered without its event", extra={"release_id": release_id, "appid": appid}
        )


def _screenshots(value: Any) -> list[str]:
    return [s for s in str(value or "").split("|") if s]


def _move(
    release_id: str, appid: str, owner: str, state: str, values: Mapping[str, Any] | None = None
) -> dict[str, Any] | None:
    moved = runtime.store().releases.move(
        release_id, appid, owner=owner, state=state, now=clock.now(), values=values
    )
    if moved is None:
        metrics.add_metric("ReleaseClaimLost", MetricUnit.Count, 1)
        logger.warning("release step finished after its claim ran out", extra={"release_id": release_id})
    return moved


def _step_failed(
    header: Mapping[str, Any], appid: str, owner: str, error: BaseException, message: Mapping[str, Any]
) -> None:
    """After a step's WeChat call failed: wait (rate limits), fail the account (WeChat refused,
    or the account cannot take the step), or give the claim back and raise (delivered again)."""
    release_id = str(header["release_id"])
    releases = runtime.store().releases
    if isinstance(error, _RATE_LIMITS):
        releases.unclaim(release_id, appid, owner)
        attempt = int(message.get("attempt") or 0) + 1
        delay = min(RETRY_BASE_SECONDS * 2 ** (attempt - 1), 900)
        runtime.release_queue().send([{**message, "attempt": attempt}], delay_seconds=delay)
        metrics.add_metric("ReleaseStepDelayed", MetricUnit.Count, 1)
        logger.warning(
            "WeChat rate limit: step put off",
            extra={"release_id": release_id, "appid": appid, "step": message.get("step"), "delay": delay},
        )
        return
    if isinstance(error, WeChatError) and error.errcode in PLATFORM_REFUSALS:
        releases.unclaim(release_id, appid, owner)
        metrics.add_metric("ReleaseStepRefusedForThePlatform", MetricUnit.Count, 1)
        logger.error(
            "WeChat refused the platform itself; the step will be delivered again",
            extra={"release_id": release_id, "appid": appid, "errcode": error.errcode},
        )
        raise error
    if isinstance(error, WeChatError):
        values: dict[str, Any] = {
            "errcode": error.errcode,
            "error": MEANINGS.get(error.errcode, error.reason),
            "errmsg": error.errmsg[:500],
        }
    elif isinstance(error, Refused):
        values = {"error": error.words}
    elif isinstance(error, AuthorizerUnavailable | NotFound):
        values = {"error": "the account has no active authorization"}
    else:
        releases.unclaim(release_id, appid, owner)
        raise error
    _move(release_id, appid, owner, "failed", values)
    metrics.add_metric("ReleaseAccountFailed", MetricUnit.Count, 1)
    logger.warning(
        "release step failed for an account",
        extra={"release_id": release_id, "appid": appid, "step": message.get("step"), **values},
    )


# --- audit events (from the message URL) -------------------------------------------------------


def on_audit_event(appid: str, event: AuditEvent) -> None:
    """An audit result pushed for a Mini Program: moves the release it belongs to, if any. Applying
    it again changes nothing; an approved account's release is queued again (its claim keeps the
    WeChat call to one), so a lost queue message is recovered by WeChat's re-send."""
    release_id = runtime.store().releases.current(appid)
    if release_id is None:
        return
    header = _header(release_id)
    if header is None:
        return
    audit = {"reason": event.reason, "screenshots": list(event.screenshots), "result_time": event.result_time}
    _apply_audit(header, appid, event.result, audit)


def _apply_audit(
    header: Mapping[str, Any], appid: str, result: str, audit: Mapping[str, Any]
) -> dict[str, Any] | None:
    release_id = str(header["release_id"])
    releases, now = runtime.store().releases, clock.now()
    waiting = ("auditing", "delayed")
    values: dict[str, Any]
    due: float | None
    if result == "success":
        state, values, due = "approved", {"approved_at": now}, None
    elif result == "fail":
        reason, shots = audit.get("reason") or "", list(audit.get("screenshots") or [])
        state, values, due = "rejected", {"reason": reason, "screenshots": shots}, None
    elif result == "delay":
        state, values, due = "delayed", {"reason": audit.get("reason") or ""}, now + AUDIT_CHECK_AFTER_SECONDS
    else:
        return None
    moved = releases.apply_audit(
        release_id, appid, from_states=waiting, state=state, now=now, values=values, audit_due_at=due
    )
    if moved is None:
        account = releases.account(release_id, appid) or {}
        if account.get("state") == "committed" and account.get("claim_owner"):
            # Our submission is still being recorded: its write applies this result.
            releases.keep_early_audit(release_id, appid, {"result": result, **audit})
            return None
        moved = account if account.get("state") == "approved" and result == "success" else None
    else:
        metrics.add_metric(f"ReleaseAudit.{result}", MetricUnit.Count, 1)
    if moved is not None and moved.get("state") == "approved" and header.get("auto_release"):
        runtime.release_queue().send([_message("release", release_id, appid)])
    return moved


# --- the schedule -------------------------------------------------------------------------------


def queue_audit_checks(limit: int = 1000) -> int:
    """Queue a ``check`` for every account auditing a day without news (up to ``limit`` a run)."""
    releases = runtime.store().releases
    found: list[tuple[str, str]] = []
    start: Any = None
    while len(found) < limit:
        page, start = releases.due_audits(clock.now(), min(200, limit - len(found)), start)
        found += page
        if start is None:
            break
    runtime.release_queue().send([_message("check", r, a) for r, a in found])
    metrics.add_metric("ReleaseAuditChecksQueued", MetricUnit.Count, len(found))
    return len(found)
