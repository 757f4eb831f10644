"""Mini Program code management on behalf of authorized Mini Programs (代码管理): the component's
draft box and template library, and for each Mini Program ``commit``, ``submit_audit``, the
audit's outcome pushed to its message URL, and ``release``.

Facts (shared/wechat-protocol.md §1 "Code audit result", §3 rows "template drafts" to "set
domains", §6), from the docs:
https://developers.weixin.qq.com/doc/oplatform/Third-party_Platforms/2.0/api/ThirdParty/code_template/gettemplatedraftlist.html
(and gettemplatelist, addtotemplate, deletetemplate),
https://developers.weixin.qq.com/doc/oplatform/Third-party_Platforms/2.0/api/code/commit.html,
https://developers.weixin.qq.com/doc/oplatform/openApi/OpenApiDoc/miniprogram-management/code-management/submitAudit.html,
https://developers.weixin.qq.com/doc/oplatform/openApi/miniprogram-management/code-management/api_getlatestauditstatus,
https://developers.weixin.qq.com/doc/oplatform/Third-party_Platforms/2.0/api/code/release.html,
https://developers.weixin.qq.com/doc/oplatform/Third-party_Platforms/2.0/api/code/audit_event.html,
https://developers.weixin.qq.com/doc/oplatform/Third-party_Platforms/2.0/api/domain/modify_server_domain.html;
errmsg texts from captures in developers.weixin.qq.com/community threads.

- The template APIs take the component token (``access_token=`` or ``component_access_token=``,
  no ``component_appid``): missing 41001, never issued 40001, expired 42001. ``addtotemplate``
  of an unknown draft 85064, into a library of 200 templates 85065; ``deletetemplate`` of an
  unknown template 85064 too (the simulator's choice: the doc lists 85064 "not found" for the
  template APIs).
- The others take an authorizer token of the Mini Program (``accounts.authorizer_token_account``:
  41001, 40001, 42001) and need permission set 18 (小程序开发管理) in the account's func_info,
  else 61007 "api is unauthorized to component" (so an Official Account always gets 61007).
  ``set_code_permission`` makes the owner leave set 18 unticked (now and at every later
  authorization); it is granted by default.
- A POST with no body at all answers 44002 after the token checks (``release`` needs exactly
  ``{}``, the doc says so; the simulator applies it to every POST here).
- ``commit``: ``template_id`` (a number, or digits) must name a template (85014); ``ext_json``
  must be a string (an object, or none, is 47001 "data format error", as captured) holding a
  JSON object (85048 "parse ext_json fail", as captured) whose ``extAppid`` is the account's
  appid (85013, the simulator's choice); ``user_version`` a string of 1 to 64 characters and
  ``user_desc`` a string (40097, the simulator's choice). The commit becomes the account's
  development version; every commit is kept.
- ``submit_audit``: no commit yet 85086 "must commit before submit audit"; a version of the
  account still auditing or delayed 85009; the component's monthly quota spent 85085 (a knob,
  ``set_audit_quota``, unlimited by default); ``item_list`` not a list of at most 5 objects
  85023. Answers ``auditid``; the audit waits (status 2) until ``finish_audits``.
- ``finish_audits`` applies each account's audit outcome (``set_audit_outcome``): ``success``
  (status 0, ``weapp_audit_success`` + SuccTime), ``fail`` (status 1, ``weapp_audit_fail`` +
  Reason, FailTime, ScreenShot: two media ids joined by ``|``), ``delay`` (status 4,
  ``weapp_audit_delay`` + Reason, DelayTime; the audit stays pending, to be finished again), or
  ``lost`` (status 0, nothing pushed). The event goes to the account's message URL as
  ``messages.py`` sends every event (signed, encrypted, FromUserName a fan's openid);
  ``resend_audit_event`` sends the last one again as WeChat re-sends (same plaintext).
- ``get_latest_auditstatus``: the latest audit (85058 "no valid audit_id exist" when none);
  ``get_auditstatus {auditid}``: one of the account's audits (85012 otherwise).
- ``release``: the latest audit must be approved (none, rejected: 85019; auditing or delayed:
  85020; already released: 85052 "app is already released").
- ``modify_domain`` (add, delete, set: every type replaced, those not given emptied; get) keeps
  the server domains, which ``api_get_authorizer_info`` then shows (any other action, or a type
  that is not a list of strings, 40097; the component's own domain list is not checked);
  ``setprivacysetting`` keeps the body it gets.

Calls of these APIs whose token names an account are also counted per account
(``code_calls``), so tests can show each WeChat call was made once per Mini Program. Every
call's work is O(1) in the number of accounts (dicts by appid, auditid, template id).
"""

from __future__ import annotations

import json
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeGuard

from wechat_simulator import messages
from wechat_simulator.accounts import authorizer_token_account, get_account
from wechat_simulator.component import component_token_error
from wechat_simulator.protocol import ApiHandler, ApiRoute, SimError, api_name, error
from wechat_simulator.records import (
    AUDIT_APPROVED,
    AUDIT_DELAYED,
    AUDIT_REJECTED,
    CODE_MANAGEMENT_FUNC_INFO,
    TEMPLATE_LIBRARY_LIMIT,
    Account,
    Audit,
    CodeCommit,
    CodeRelease,
    Draft,
    MiniProgramCode,
    SentMessage,
    Template,
    random_text,
)
from wechat_simulator.state import SimState

OUTCOMES = ("success", "fail", "delay", "lost")
# The event each outcome pushes (lost: none).
OUTCOME_EVENTS = {
    "success": "weapp_audit_success",
    "fail": "weapp_audit_fail",
    "delay": "weapp_audit_delay",
    "lost": None,
}
DEFAULT_REASONS = {"fail": "simulated rejection: content does not meet the rules", "delay": "simulated delay"}
MAX_USER_VERSION = 64
MAX_AUDIT_ITEMS = 5
MAX_PUSH_WORKERS = 64
# Audit ids look like WeChat's (nine digits); drafts and templates count from 1. All three come
# from one counter, so an id of one kind never names another.
AUDITID_BASE = 400_000_000
DOMAIN_TYPES = (
    "requestdomain",
    "wsrequestdomain",
    "uploaddomain",
    "downloaddomain",
    "udpdomain",
    "tcpdomain",
)
DOMAIN_ACTIONS = ("add", "delete", "set", "get")
TEMPLATE_TYPES = (0, 1)


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _id(value: Any) -> int | None:
    """A JSON number or a string of digits (WeChat takes both), else None."""
    if _is_int(value):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _code(state: SimState, appid: str) -> MiniProgramCode:
    """The account's code record, created on first use (call under the lock)."""
    code = state.code.get(appid)
    if code is None:
        code = state.code[appid] = MiniProgramCode(appid)
    return code


# --- the template library (control routes and Simulator methods) ---------------------------


def _text(value: Any, name: str, default: str) -> str:
    if value is None:
        return default
    if not isinstance(value, str):
        raise SimError("invalid_field", f"{name} must be a string")
    return value


def new_draft(
    state: SimState,
    user_version: Any = "1.0.0",
    user_desc: Any = "simulated draft",
    *,
    source_miniprogram_appid: Any = None,
    source_miniprogram: Any = None,
    developer: Any = None,
) -> Draft:
    """A draft in the component's draft box, as if a developer uploaded code with the developer
    tools from the platform's development Mini Program."""
    version = _text(user_version, "user_version", "1.0.0")
    desc = _text(user_desc, "user_desc", "simulated draft")
    source_appid = _text(source_miniprogram_appid, "source_miniprogram_appid", "wx" + secrets.token_hex(8))
    source = _text(source_miniprogram, "source_miniprogram", "sim development mini program")
    who = _text(developer, "developer", "sim_developer")
    with state.lock:
        draft = Draft(state.next_code_id(), version, desc, int(state.now()), source_appid, source, who)
        state.drafts[draft.draft_id] = draft
        return draft


def add_draft(state: SimState, **options: Any) -> dict[str, Any]:
    """``new_draft``, answered as ``gettemplatedraftlist`` lists it."""
    return new_draft(state, **options).describe()


def _to_template(state: SimState, draft: Draft, template_type: int) -> Template | None:
    """Add ``draft`` to the library; None when the library is full (call under the lock)."""
    if len(state.templates) >= TEMPLATE_LIBRARY_LIMIT:
        return None
    template = Template(state.next_code_id(), template_type, int(state.now()), draft)
    state.templates[template.template_id] = template
    return template


def add_template(state: SimState, template_type: Any = 0, **draft_options: Any) -> dict[str, Any]:
    """A draft (``new_draft``'s options) added to the template library at once: the template, as
    ``gettemplatelist`` lists it. 409 ``template_library_full`` at 200 templates."""
    if template_type not in TEMPLATE_TYPES or isinstance(template_type, bool):
        raise SimError("invalid_template_type", "template_type must be 0 (ordinary) or 1 (standard)")
    with state.lock:
        if len(state.templates) >= TEMPLATE_LIBRARY_LIMIT:
            raise SimError(
                "template_library_full", f"the library holds {TEMPLATE_LIBRARY_LIMIT} templates", 409
            )
        template = _to_template(state, new_draft(state, **draft_options), template_type)
        assert template is not None
        return template.describe()


# --- knobs and records (control routes and Simulator methods) -------------------------------


def _mini_program(state: SimState, appid: Any) -> Account:
    if not isinstance(appid, str) or not appid:
        raise SimError("missing_parameter", "appid is required")
    account = get_account(state, appid)
    if not account.is_mini_program:
        raise SimError("not_a_mini_program", f"account {appid} is not a mini program")
    return account


def set_audit_outcome(state: SimState, appid: Any, outcome: Any, reason: Any = None) -> dict[str, Any]:
    """What the next ``finish_audits`` does with this Mini Program's pending audit."""
    if outcome not in OUTCOMES:
        raise SimError("invalid_outcome", f"outcome must be one of {', '.join(OUTCOMES)}")
    if reason is not None and not isinstance(reason, str):
        raise SimError("invalid_reason", "reason must be a string or null")
    with state.lock:
        account = _mini_program(state, appid)
        code = _code(state, account.appid)
        code.audit_outcome, code.audit_reason = outcome, reason
        return {"appid": account.appid, "outcome": outcome, "reason": reason}


def set_code_permission(state: SimState, appid: Any, granted: Any = True) -> dict[str, Any]:
    """Whether the owner grants permission set 18 (code management): withheld, it is taken out of
    the account's func_info now and left out of every later authorization (the APIs answer
    61007); granted again, it is back in a Mini Program's func_info."""
    if not isinstance(granted, bool):
        raise SimError("invalid_granted", "granted must be true or false")
    with state.lock:
        account = _mini_program(state, appid)
        if granted:
            account.withheld_func_info.discard(CODE_MANAGEMENT_FUNC_INFO)
            if account.authorized and CODE_MANAGEMENT_FUNC_INFO not in account.func_info:
                account.func_info = sorted([*account.func_info, CODE_MANAGEMENT_FUNC_INFO])
        else:
            account.withheld_func_info.add(CODE_MANAGEMENT_FUNC_INFO)
            account.func_info = [i for i in account.func_info if i != CODE_MANAGEMENT_FUNC_INFO]
        return {"appid": account.appid, "granted": granted, "func_info": list(account.func_info)}


def audit_quota(state: SimState) -> dict[str, Any]:
    """``{"limit": int | None (unlimited), "used"}``: submit_audit calls accepted this month."""
    with state.lock:
        return {"limit": state.audit_quota, "used": state.audits_submitted}


def set_audit_quota(state: SimState, limit: Any) -> dict[str, Any]:
    """The component's monthly submit_audit quota (None: unlimited); a new month starts (used 0)."""
    if limit is not None and (not _is_int(limit) or limit < 0):
        raise SimError("invalid_limit", "limit must be an integer >= 0 or null")
    with state.lock:
        state.audit_quota = limit
        state.audits_submitted = 0
    return audit_quota(state)


def code_state(state: SimState, appid: str) -> dict[str, Any]:
    """The Mini Program's code: development version, every commit, audits, releases, domains,
    privacy settings, the audit knobs and the per-account call counts."""
    with state.lock:
        account = get_account(state, appid)
        code = _code(state, appid)
        latest = code.latest_audit
        return {
            "appid": appid,
            "code_permission": account.is_mini_program and CODE_MANAGEMENT_FUNC_INFO in account.func_info,
            "audit_outcome": code.audit_outcome,
            "audit_reason": code.audit_reason,
            "dev": code.dev.describe() if code.dev else None,
            "commits": [c.describe() for c in code.commits],
            "audits": [a.describe() for a in code.audits],
            "latest_audit": latest.describe() if latest else None,
            "release": code.release.describe() if code.release else None,
            "releases": [r.describe() for r in code.releases],
            "domains": {t: list(account.server_domains.get(t, [])) for t in DOMAIN_TYPES},
            "privacy_settings": [dict(p) for p in code.privacy_settings],
            "calls": dict(code.calls),
        }


def code_calls(state: SimState, appid: str) -> dict[str, int]:
    """Calls of the code-management APIs made with this account's authorizer token, by API name
    (those a fault answered instead are not among them: they never reached WeChat's handler)."""
    with state.lock:
        get_account(state, appid)
        code = state.code.get(appid)
        return dict(code.calls) if code else {}


# --- audits: outcomes and their events ------------------------------------------------------


@dataclass
class _Finish:
    """One audit being finished: what was decided, and the event to push (None: none)."""

    audit: Audit
    outcome: str
    event: str | None
    message: SentMessage | None = None
    skipped: str | None = None  # why nothing is pushed: lost, not_authorized


def _fields(outcome: str, now: int, reason: str, screenshot: str) -> dict[str, Any]:
    if outcome == "fail":
        return {"Reason": reason, "FailTime": now, "ScreenShot": screenshot}
    if outcome == "delay":
        return {"Reason": reason, "DelayTime": now}
    return {"SuccTime": now}


def _decide(state: SimState, audit: Audit, now: float) -> _Finish:
    """Apply the account's outcome to ``audit`` and compose its event (call under the lock)."""
    code = _code(state, audit.appid)
    outcome = code.audit_outcome
    audit.reason = (code.audit_reason or DEFAULT_REASONS[outcome]) if outcome in DEFAULT_REASONS else ""
    audit.screenshot = f"{random_text(64)}|{random_text(64)}" if outcome == "fail" else ""
    audit.status = {"fail": AUDIT_REJECTED, "delay": AUDIT_DELAYED}.get(outcome, AUDIT_APPROVED)
    if outcome != "delay":
        audit.decided_at = now
        state.pending_audits.pop(audit.appid, None)
    finish = _Finish(audit, outcome, OUTCOME_EVENTS[outcome])
    if finish.event is None:
        finish.skipped = "lost"
    elif not state.accounts[audit.appid].authorized:  # WeChat pushes to authorized accounts only
        finish.event, finish.skipped = None, "not_authorized"
    else:
        fields = _fields(outcome, int(now), audit.reason, audit.screenshot)
        finish.message = messages.compose_message(
            state, audit.appid, "event", event=finish.event, fields=fields
        )
        code.last_audit_event = finish.message
    return finish


def finish_audits(state: SimState, appid: Any = None, *, workers: Any = 1) -> list[dict[str, Any]]:
    """WeChat's reviewers finish the pending audits (every account's, or ``appid``'s only): each
    account's outcome is applied and its event pushed to the account's message URL (``workers``
    pushes at a time). Answer, in the order the audits were submitted: ``[{"appid", "auditid",
    "outcome", "status", "event" (None: nothing pushed), "skipped" (None, "lost",
    "not_authorized"), "http_status" (the service's answer; None when nothing or no answer came),
    "delivery" (``messages.send_message``'s answer, or None)}]``.

    Nothing changes (400 ``no_message_url``) when an event is due and no message URL is set."""
    if not _is_int(workers) or not 1 <= workers <= MAX_PUSH_WORKERS:
        raise SimError("invalid_workers", f"workers must be an integer from 1 to {MAX_PUSH_WORKERS}")
    with state.lock:
        if appid is None:
            audits = list(state.pending_audits.values())
        else:
            account = _mini_program(state, appid)
            pending = state.pending_audits.get(account.appid)
            audits = [pending] if pending else []
        audits.sort(key=lambda a: a.auditid)
        pushes_due = any(
            OUTCOME_EVENTS[_code(state, a.appid).audit_outcome] and state.accounts[a.appid].authorized
            for a in audits
        )
        if pushes_due:
            messages.message_url(state, "$APPID$")  # raises no_message_url before anything changes
        now = state.now()
        finishes = [_decide(state, audit, now) for audit in audits]

    def push(finish: _Finish) -> dict[str, Any] | None:
        return messages.deliver(state, finish.message) if finish.message else None

    if workers > 1 and len(finishes) > 1:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="wechat-sim-audit") as pool:
            deliveries = list(pool.map(push, finishes))
    else:
        deliveries = [push(finish) for finish in finishes]

    answer = []
    with state.lock:
        for finish, delivery in zip(finishes, deliveries, strict=True):
            http_status = delivery["status"] if delivery else None
            finish.audit.outcomes.append(
                {
                    "outcome": finish.outcome,
                    "status": finish.audit.status,
                    "event": finish.event,
                    "message_id": finish.message.id if finish.message else None,
                    "http_status": http_status,
                    "at": now,
                }
            )
            answer.append(
                {
                    "appid": finish.audit.appid,
                    "auditid": finish.audit.auditid,
                    "outcome": finish.outcome,
                    "status": finish.audit.status,
                    "event": finish.event,
                    "skipped": finish.skipped,
                    "http_status": http_status,
                    "delivery": delivery,
                }
            )
    return answer


def resend_audit_event(state: SimState, appid: Any) -> dict[str, Any]:
    """Push the account's last audit event again, as WeChat re-sends it (the same plaintext, a
    new timestamp and nonce): ``messages.send_message``'s answer (``attempt`` counts). 404
    ``no_audit_event`` when none was pushed."""
    with state.lock:
        account = _mini_program(state, appid)
        code = state.code.get(account.appid)
        sent = code.last_audit_event if code else None
    if sent is None:
        raise SimError("no_audit_event", f"no audit event was pushed for {appid}", 404)
    return messages.redeliver(state, sent)


# --- WeChat APIs: the template library (component token) ------------------------------------


def _component_no_body(state: SimState, body: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
    with state.lock:
        return component_token_error(state, query) or error(44002)


def api_gettemplatedraftlist(state: SimState, body: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
    with state.lock:
        refused = component_token_error(state, query)
        if refused:
            return refused
        return {"errcode": 0, "errmsg": "ok", "draft_list": [d.describe() for d in state.drafts.values()]}


def api_gettemplatelist(state: SimState, body: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
    """Every template, or those of ``template_type`` (0 or 1; anything else 40097)."""
    with state.lock:
        refused = component_token_error(state, query)
        if refused:
            return refused
        wanted = query.get("template_type")
        if wanted not in (None, "0", "1"):
            return error(40097)
        templates = [
            t.describe() for t in state.templates.values() if wanted is None or t.template_type == int(wanted)
        ]
        return {"errcode": 0, "errmsg": "ok", "template_list": templates}


def api_addtotemplate(state: SimState, body: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
    with state.lock:
        refused = component_token_error(state, query)
        if refused:
            return refused
        draft_id = _id(body.get("draft_id"))
        draft = state.drafts.get(draft_id) if draft_id is not None else None
        if draft is None:
            return error(85064)
        template_type = _id(body.get("template_type", 0))
        if template_type not in TEMPLATE_TYPES:
            return error(40097)
        assert template_type is not None
        if _to_template(state, draft, template_type) is None:
            return error(85065)
        return {"errcode": 0, "errmsg": "ok"}


def api_deletetemplate(state: SimState, body: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
    with state.lock:
        refused = component_token_error(state, query)
        if refused:
            return refused
        template_id = _id(body.get("template_id"))
        if template_id is None or state.templates.pop(template_id, None) is None:
            return error(85064)
        return {"errcode": 0, "errmsg": "ok"}


# --- WeChat APIs: one Mini Program's code (authorizer token) --------------------------------


def _code_call(
    state: SimState, query: dict[str, str], api: str
) -> tuple[Account | None, dict[str, Any] | None]:
    """(the account, None) when the authorizer token is good and the account granted permission
    set 18, else (None, WeChat's answer); counts the call for the account the token names.
    Call under the lock."""
    account, refused = authorizer_token_account(state, query)
    if refused is not None or account is None:
        return None, refused or error(40001)
    calls = _code(state, account.appid).calls
    calls[api] = calls.get(api, 0) + 1
    if not account.is_mini_program or CODE_MANAGEMENT_FUNC_INFO not in account.func_info:
        return None, error(61007)
    return account, None


def _authorizer_no_body(api: str) -> ApiHandler:
    """The answer to a POST without a body: the token and permission checks, then 44002."""

    def handler(state: SimState, body: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
        with state.lock:
            _, refused = _code_call(state, query, api)
            return refused or error(44002)

    return handler


def api_commit(state: SimState, body: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
    with state.lock:
        account, refused = _code_call(state, query, "commit")
        if refused is not None or account is None:
            return refused or error(40001)
        template_id = _id(body.get("template_id"))
        template = state.templates.get(template_id) if template_id is not None else None
        if template is None:
            return error(85014)
        ext_json = body.get("ext_json")
        if not isinstance(ext_json, str):
            return error(47001)
        try:
            parsed = json.loads(ext_json)
        except ValueError:
            return error(85048)
        if not isinstance(parsed, dict):
            return error(85048)
        if parsed.get("extAppid") != account.appid:
            return error(85013)
        user_version, user_desc = body.get("user_version"), body.get("user_desc")
        if not isinstance(user_version, str) or not 0 < len(user_version) <= MAX_USER_VERSION:
            return error(40097)
        if not isinstance(user_desc, str):
            return error(40097)
        commit = CodeCommit(template.template_id, parsed, user_version, user_desc, state.now())
        code = _code(state, account.appid)
        code.dev = commit
        code.commits.append(commit)
        return {"errcode": 0, "errmsg": "ok"}


def _valid_item_list(items: Any) -> bool:
    return items is None or (
        isinstance(items, list) and len(items) <= MAX_AUDIT_ITEMS and all(isinstance(i, dict) for i in items)
    )


def api_submit_audit(state: SimState, body: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
    with state.lock:
        account, refused = _code_call(state, query, "submit_audit")
        if refused is not None or account is None:
            return refused or error(40001)
        code = _code(state, account.appid)
        if code.dev is None:
            return error(85086)
        if account.appid in state.pending_audits:
            return error(85009)
        if state.audit_quota is not None and state.audits_submitted >= state.audit_quota:
            return error(85085)
        if not _valid_item_list(body.get("item_list")):
            return error(85023)
        audit = Audit(
            auditid=AUDITID_BASE + state.next_code_id(),
            appid=account.appid,
            version=code.dev,
            submitted_at=state.now(),
            request=dict(body),
        )
        state.audits[audit.auditid] = audit
        state.pending_audits[account.appid] = audit
        state.audits_submitted += 1
        code.audits.append(audit)
        return {"errcode": 0, "errmsg": "ok", "auditid": audit.auditid}


def api_get_latest_auditstatus(
    state: SimState, body: dict[str, Any], query: dict[str, str]
) -> dict[str, Any]:
    with state.lock:
        account, refused = _code_call(state, query, "get_latest_auditstatus")
        if refused is not None or account is None:
            return refused or error(40001)
        audit = _code(state, account.appid).latest_audit
        if audit is None:
            return error(85058)
        return {
            "errcode": 0,
            "errmsg": "ok",
            "auditid": audit.auditid,
            "status": audit.status,
            "reason": audit.reason,
            "ScreenShot": audit.screenshot,
            "user_version": audit.version.user_version,
            "user_desc": audit.version.user_desc,
            "submit_audit_time": int(audit.submitted_at),
        }


def api_get_auditstatus(state: SimState, body: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
    with state.lock:
        account, refused = _code_call(state, query, "get_auditstatus")
        if refused is not None or account is None:
            return refused or error(40001)
        auditid = _id(body.get("auditid"))
        audit = state.audits.get(auditid) if auditid is not None else None
        if audit is None or audit.appid != account.appid:
            return error(85012)
        return {
            "errcode": 0,
            "errmsg": "ok",
            "status": audit.status,
            "reason": audit.reason,
            "screenshot": audit.screenshot,
        }


def api_release(state: SimState, body: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
    """Release the latest audit's version (the body is ``{}``; none at all is 44002)."""
    with state.lock:
        account, refused = _code_call(state, query, "release")
        if refused is not None or account is None:
            return refused or error(40001)
        code = _code(state, account.appid)
        audit = code.latest_audit
        if audit is not None and audit.pending:
            return error(85020)
        if audit is None or audit.status != AUDIT_APPROVED:
            return error(85019)
        if audit.released:
            return error(85052)
        audit.released = True
        version = audit.version
        code.releases.append(
            CodeRelease(
                audit.auditid, version.template_id, version.user_version, version.user_desc, state.now()
            )
        )
        return {"errcode": 0, "errmsg": "ok"}


def _domain_lists(body: dict[str, Any]) -> dict[str, list[str]] | None:
    """The domain types given in ``body``; None when one is not a list of strings."""
    given: dict[str, list[str]] = {}
    for kind in DOMAIN_TYPES:
        value = body.get(kind)
        if value is None:
            continue
        if not isinstance(value, list) or not all(isinstance(d, str) for d in value):
            return None
        given[kind] = list(dict.fromkeys(value))
    return given


def api_modify_domain(state: SimState, body: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
    with state.lock:
        account, refused = _code_call(state, query, "modify_domain")
        if refused is not None or account is None:
            return refused or error(40001)
        action = body.get("action")
        given = _domain_lists(body)
        if action not in DOMAIN_ACTIONS or given is None:
            return error(40097)
        domains = account.server_domains
        if action == "set":
            account.server_domains = domains = {kind: given.get(kind, []) for kind in DOMAIN_TYPES}
        for kind, values in given.items():
            current = domains.get(kind, [])
            if action == "add":
                domains[kind] = list(dict.fromkeys([*current, *values]))
            elif action == "delete":
                domains[kind] = [d for d in current if d not in values]
        answer: dict[str, Any] = {"errcode": 0, "errmsg": "ok"}
        answer |= {kind: list(domains.get(kind, [])) for kind in DOMAIN_TYPES}
        answer |= {f"invalid_{kind}": [] for kind in DOMAIN_TYPES}
        answer["no_icp_domain"] = []
        return answer


def api_setprivacysetting(state: SimState, body: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
    with state.lock:
        account, refused = _code_call(state, query, "setprivacysetting")
        if refused is not None or account is None:
            return refused or error(40001)
        _code(state, account.appid).privacy_settings.append({"body": dict(body), "time": state.now()})
        return {"errcode": 0, "errmsg": "ok"}


def _post(path: str, handler: ApiHandler) -> ApiRoute:
    """A POST taking an authorizer token: no body at all is 44002, after the checks."""
    return ApiRoute(path, "POST", handler, empty_body=_authorizer_no_body(api_name(path)))


# Counted (and faulted) by the last path segment (``protocol.api_name``).
APIS = (
    ApiRoute("/wxa/gettemplatedraftlist", "GET", api_gettemplatedraftlist),
    ApiRoute("/wxa/gettemplatelist", "GET", api_gettemplatelist),
    ApiRoute("/wxa/addtotemplate", "POST", api_addtotemplate, empty_body=_component_no_body),
    ApiRoute("/wxa/deletetemplate", "POST", api_deletetemplate, empty_body=_component_no_body),
    _post("/wxa/commit", api_commit),
    _post("/wxa/submit_audit", api_submit_audit),
    ApiRoute("/wxa/get_latest_auditstatus", "GET", api_get_latest_auditstatus),
    _post("/wxa/get_auditstatus", api_get_auditstatus),
    _post("/wxa/release", api_release),
    _post("/wxa/modify_domain", api_modify_domain),
    _post("/cgi-bin/component/setprivacysetting", api_setprivacysetting),
)
