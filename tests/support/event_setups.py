"""The state a sample event in events/ needs before its function gives the expected answer, and the
check of that answer against events/expected.json.

Events are static files, so the values they carry are fixed (devtools.samples), told to the WeChat simulator
(which accepts chosen values for tickets and codes) before the event is invoked. Each step runs
the real functions where it can: the ticket and the authorization are stored by invoking the
sample pushes, not by writing the table. What no function can make with a chosen value (the
``state`` of an authorization link, a login session, a web OAuth identity) is written to the table
the way the service writes it, through ``wechat_core``: the caller points the service's environment
at the table (``service_environment``).

Used by the in-process check (tests/integration/test_events_files.py), the ``sam local`` tests
(tests/e2e) and ``scripts/seed_events.py`` (against ``make local``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable, Iterator
from typing import Any

import requests

from devtools.samples import (
    SAMPLE_AUTHORIZATION_CODE,
    SAMPLE_FAN_NICKNAME,
    SAMPLE_FAN_OPENID,
    SAMPLE_H5_PAGE,
    SAMPLE_JS_CODE,
    SAMPLE_MESSAGE_CONTENT,
    SAMPLE_MINI_PROGRAM,
    SAMPLE_MINI_PROGRAM_USER_NAME,
    SAMPLE_MSG_ID,
    SAMPLE_OAUTH_TICKET,
    SAMPLE_OFFICIAL_ACCOUNT,
    SAMPLE_OFFICIAL_ACCOUNT_CODE,
    SAMPLE_OFFICIAL_ACCOUNT_USER_NAME,
    SAMPLE_OPENID,
    SAMPLE_PAGE_STATE,
    SAMPLE_RELEASE_ID,
    SAMPLE_SESSION_KEY,
    SAMPLE_SESSION_TOKEN,
    SAMPLE_STATE,
    SAMPLE_TEMPLATE_DESC,
    SAMPLE_TEMPLATE_VERSION,
    SAMPLE_TICKET,
    SAMPLE_UNIONID,
)

# name of an event file -> the function's answer to it
Invoke = Callable[[str], dict[str, Any]]


def _sim(simulator_url: str, path: str, body: dict[str, Any], ok: tuple[int, ...] = (200, 201)) -> None:
    answer = requests.post(simulator_url + path, json=body, timeout=30)
    assert answer.status_code in ok, f"{path}: {answer.status_code} {answer.text}"


def _store() -> Any:
    from wechat_core import runtime

    return runtime.store()


def ticket(simulator_url: str, invoke: Invoke) -> None:
    """WeChat knows the sample ticket, and the callback stored it from the sample push."""
    _sim(simulator_url, "/__sim/tickets", {"ticket": SAMPLE_TICKET})
    answer = invoke("callback-ticket-push.json")
    assert (answer.get("statusCode"), answer.get("body")) == (200, "success"), answer


def _approved_at_wechat(simulator_url: str, kind: str, appid: str, user_name: str, code: str) -> None:
    """The sample account ``appid`` (with its sample gh_ id) exists at WeChat and approved: the
    sample authorization ``code`` is fresh."""
    account = {"kind": kind, "appid": appid, "user_name": user_name}
    _sim(simulator_url, "/__sim/accounts", account, (201, 409))
    known = requests.get(f"{simulator_url}/__sim/accounts/{appid}", timeout=30).json()
    assert (known.get("kind"), known.get("user_name")) == (kind, user_name), (
        f"the simulator has {appid} as {known.get('kind')} {known.get('user_name')}, not {kind} "
        f"{user_name} (made before the sample had a gh_ id: restart the simulator)"
    )
    _sim(simulator_url, "/__sim/query_auth_code", {"appid": appid, "code": code})


def authorization_code(simulator_url: str, invoke: Invoke) -> None:
    """The sample Mini Program (with its sample gh_ id) exists at WeChat and approved: the sample
    code is fresh."""
    _approved_at_wechat(
        simulator_url,
        "mini_program",
        SAMPLE_MINI_PROGRAM,
        SAMPLE_MINI_PROGRAM_USER_NAME,
        SAMPLE_AUTHORIZATION_CODE,
    )


def authorization(simulator_url: str, invoke: Invoke) -> None:
    """The sample Mini Program authorized the platform, through the sample `authorized` push: an
    active authorization whose account (``info.user_name``) is the sample messages' ToUserName."""
    authorization_code(simulator_url, invoke)
    answer = invoke("callback-authorized-push.json")
    assert (answer.get("statusCode"), answer.get("body")) == (200, "success"), answer
    authorization_stored()
    info = _store().authorizers.get(SAMPLE_MINI_PROGRAM).get("info") or {}
    assert info.get("user_name") == SAMPLE_MINI_PROGRAM_USER_NAME, f"stored user_name {info.get('user_name')}"


def official_account_code(simulator_url: str, invoke: Invoke) -> None:
    """The sample Official Account (for the H5 samples) exists at WeChat and approved: its sample
    code is fresh."""
    _approved_at_wechat(
        simulator_url,
        "official_account",
        SAMPLE_OFFICIAL_ACCOUNT,
        SAMPLE_OFFICIAL_ACCOUNT_USER_NAME,
        SAMPLE_OFFICIAL_ACCOUNT_CODE,
    )


def official_account(simulator_url: str, invoke: Invoke) -> None:
    """The sample Official Account authorized the platform, through its sample `authorized` push:
    an active authorization of an Official Account, for which the H5 routes work."""
    official_account_code(simulator_url, invoke)
    answer = invoke("callback-authorized-push-official-account.json")
    assert (answer.get("statusCode"), answer.get("body")) == (200, "success"), answer
    official_account_stored()


def oauth_identity(simulator_url: str, invoke: Invoke) -> None:
    """A fan of the sample Official Account signed in on the sample page: the identity a callback
    keeps for the page's backend, under the sample ticket (as the callback stores it)."""
    from wechat_core import clock
    from wechat_core.features import h5

    identity = {
        "appid": SAMPLE_OFFICIAL_ACCOUNT,
        "openid": SAMPLE_OPENID,
        "scope": "snsapi_userinfo",
        "user": {"nickname": SAMPLE_FAN_NICKNAME, "sex": 0, "headimgurl": "", "privilege": []},
        "unionid": SAMPLE_UNIONID,
        "authorized_at": int(clock.now()),
    }
    _store().transient.put_identity(SAMPLE_OAUTH_TICKET, identity, h5.TICKET_TTL_SECONDS, clock.now())


def login_code(simulator_url: str, invoke: Invoke) -> None:
    """A fresh wx.login code with the sample value, for the sample login."""
    _sim(simulator_url, "/__sim/wxlogin", {"appid": SAMPLE_MINI_PROGRAM, "code": SAMPLE_JS_CODE})


def state(simulator_url: str, invoke: Invoke) -> None:
    """The sample ``state`` is one of ours, as if an authorization link (auth_type 2) had been made
    with it."""
    from wechat_core import clock
    from wechat_core.features import onboarding
    from wechat_core.store.keys import state_sk

    now = clock.now()
    item = {"kind": "authorization", "created_at": now, "auth_type": 2, "biz_appid": ""}
    _store().transient.put(state_sk(SAMPLE_STATE), item, 1800 + onboarding.STATE_GRACE, now, only_new=False)


def session(simulator_url: str, invoke: Invoke) -> None:
    """A login session of the sample Mini Program under the sample session token, as login stores
    it (the session_key under a hash of the token)."""
    from wechat_core import clock
    from wechat_core.features import miniprogram

    item = {
        "kind": "miniprogram_session",
        "appid": SAMPLE_MINI_PROGRAM,
        "openid": SAMPLE_OPENID,
        "unionid": None,
        "session_key": SAMPLE_SESSION_KEY,
        "created_at": clock.now(),
    }
    _store().transient.put_session(SAMPLE_SESSION_TOKEN, item, miniprogram.SESSION_TTL_SECONDS, clock.now())


def authorizer_due(simulator_url: str, invoke: Invoke) -> None:
    """The sample authorizer's token is due now (as it is some 110 minutes after authorization)."""
    from wechat_core.store.keys import authorizer_sk

    _store().table.update(authorizer_sk(SAMPLE_MINI_PROGRAM), set_values={"due_at": 0})


def authorization_lost(simulator_url: str, invoke: Invoke) -> None:
    """The table lost the sample authorization (a wiped table); WeChat still has it."""
    from wechat_core.store.keys import authorizer_sk

    _store().table.delete(authorizer_sk(SAMPLE_MINI_PROGRAM))


def no_ticket(simulator_url: str, invoke: Invoke) -> None:
    """No component_verify_ticket and no component token stored, as on a fresh table (and no recent
    request for a ticket push, so the function makes one)."""
    from wechat_core.store import keys

    for sk in (keys.TICKET_SK, keys.COMPONENT_TOKEN_SK, keys.TICKET_PUSH_REQUEST_SK):
        _store().table.delete(sk)


def _sample_template_id(simulator_url: str) -> int:
    """The sample template's id in WeChat's template library (the simulator's): the one listed
    (``gettemplatelist`` with the component token, as the service lists it), else a new one."""
    from wechat_core import runtime
    from wechat_core.features.tokens import ComponentToken

    for listed in runtime.wxa_api().templates(ComponentToken()):
        if (listed.get("user_version"), listed.get("user_desc")) == (
            SAMPLE_TEMPLATE_VERSION,
            SAMPLE_TEMPLATE_DESC,
        ):
            return int(listed["template_id"])
    answer = requests.post(
        simulator_url + "/__sim/templates",
        json={"user_version": SAMPLE_TEMPLATE_VERSION, "user_desc": SAMPLE_TEMPLATE_DESC},
        timeout=30,
    )
    assert answer.status_code == 201, f"/__sim/templates: {answer.status_code} {answer.text}"
    return int(answer.json()["template_id"])


def template(simulator_url: str, invoke: Invoke) -> None:
    """The sample template is in the platform's template library at WeChat (needs the ticket step:
    listing the library takes the component token)."""
    _sample_template_id(simulator_url)


def release(simulator_url: str, invoke: Invoke) -> None:
    """The sample release: the sample template to the sample Mini Program (after ``ticket`` and
    ``authorization``), stored as ``POST /wechat/releases`` stores it, fanned out (its account
    queued, waiting for the commit message), as again after a repeat of this step."""
    from wechat_core import clock
    from wechat_core.store.keys import release_account_sk, release_pk, release_sk

    template_id = _sample_template_id(simulator_url)
    now = clock.now()
    table = _store().table
    release_item = {
        "kind": "release",
        "release_id": SAMPLE_RELEASE_ID,
        "template_id": template_id,
        "user_version": SAMPLE_TEMPLATE_VERSION,
        "user_desc": SAMPLE_TEMPLATE_DESC,
        "ext_json": {},
        "audit": {},
        "privacy": {},
        "domains": {},
        "auto_release": True,
        "target": "list",
        "appids": [SAMPLE_MINI_PROGRAM],
        "created_at": now,
        "fanout_done_at": now,
    }
    table.put(release_sk(SAMPLE_RELEASE_ID), release_item)
    account = {
        "appid": SAMPLE_MINI_PROGRAM,
        "release_id": SAMPLE_RELEASE_ID,
        "state": "queued",
        "created_at": now,
        "changed_at": now,
    }
    pk = release_pk(table.component_appid, SAMPLE_RELEASE_ID)
    table.put(release_account_sk(SAMPLE_MINI_PROGRAM), account, pk=pk)


STEPS: dict[str, Callable[[str, Invoke], None]] = {
    "ticket": ticket,
    "authorization_code": authorization_code,
    "authorization": authorization,
    "official_account_code": official_account_code,
    "official_account": official_account,
    "oauth_identity": oauth_identity,
    "login_code": login_code,
    "state": state,
    "session": session,
    "authorizer_due": authorizer_due,
    "authorization_lost": authorization_lost,
    "no_ticket": no_ticket,
    "template": template,
    "release": release,
}


# --- what must hold after the invoke (expected.json "then") ----------------------------------------


def ticket_stored() -> None:
    stored = _store().tickets.get()
    assert stored is not None, "no component_verify_ticket stored"
    assert stored.ticket == SAMPLE_TICKET, "another ticket stored"


def no_ticket_stored() -> None:
    assert _store().tickets.get() is None, "a ticket was stored"


def authorization_stored() -> None:
    item = _store().authorizers.get(SAMPLE_MINI_PROGRAM)
    assert item is not None, "no authorization stored"
    assert item.get("status") == "active", item.get("status")
    assert str(item.get("refresh_token", "")).startswith("refreshtoken@@@"), "no refresh token stored"


def official_account_stored() -> None:
    item = _store().authorizers.get(SAMPLE_OFFICIAL_ACCOUNT)
    assert item is not None, "no authorization of the sample Official Account stored"
    assert item.get("status") == "active", item.get("status")
    info = item.get("info") or {}
    assert (info.get("kind"), info.get("user_name")) == (
        "official_account",
        SAMPLE_OFFICIAL_ACCOUNT_USER_NAME,
    ), info


def _items(kind: str) -> list[dict[str, Any]]:
    """The items of one ``kind`` (web OAuth states, tickets: their keys are hashes of random values)."""
    from boto3.dynamodb.types import TypeDeserializer

    store = _store()
    scanned = store.table.client.scan(TableName=store.table_name)["Items"]
    items = [{k: TypeDeserializer().deserialize(v) for k, v in i.items()} for i in scanned]
    return [i for i in items if i.get("kind") == kind]


def oauth_state_stored() -> None:
    """One web OAuth state of ours, remembering the sample page, its state and the account."""
    states = _items("oauth_state")
    assert len(states) == 1, f"{len(states)} web OAuth states stored"
    expected = {
        "appid": SAMPLE_OFFICIAL_ACCOUNT,
        "scope": "snsapi_userinfo",
        "page": SAMPLE_H5_PAGE,
        "client_state": SAMPLE_PAGE_STATE,
    }
    assert {k: states[0].get(k) for k in expected} == expected, states[0]
    assert "used_at" not in states[0], "the state is used already"


def jsapi_ticket_stored() -> None:
    """The sample Official Account's jsapi_ticket, taken from WeChat, kept for the next caller."""
    from wechat_core.store.keys import jsapi_ticket_sk

    item = _store().table.get(jsapi_ticket_sk(SAMPLE_OFFICIAL_ACCOUNT))
    assert item is not None, "no jsapi_ticket stored"
    assert item.get("ticket"), "a jsapi_ticket item without a ticket"


def identity_redeemed() -> None:
    """The sample ticket is redeemed: its identity left the table, a second redemption is refused."""
    from wechat_core import clock

    (ticket,) = _items("oauth_ticket")
    assert "redeemed_at" in ticket, ticket
    assert "identity" not in ticket, "the identity is still in the table"
    assert _store().transient.redeem_identity(SAMPLE_OAUTH_TICKET, clock.now()) == (None, True)


def table_empty() -> None:
    store = _store()
    items = store.table.client.scan(TableName=store.table_name, Select="COUNT")
    assert items["Count"] == 0, f"{items['Count']} items written"


def ticket_push_requested() -> None:
    """The function asked WeChat to push a ticket (api_start_push_ticket), and noted when."""
    from wechat_core.store import keys

    assert _store().table.get(keys.TICKET_PUSH_REQUEST_SK) is not None, "no ticket push requested"


def _published() -> list[dict[str, Any]]:
    """What the service published on its bus (EVENT_BUS_NAME) since last read, from the queue a rule
    subscribes to that bus (devtools.resources.create_bus_and_queue), through moto."""
    import boto3

    from devtools.project import REGION
    from devtools.resources import queue_name, receive_all

    bus = os.environ.get("EVENT_BUS_NAME", "")
    assert bus, "EVENT_BUS_NAME is not set: no bus to read"
    sqs = boto3.client("sqs", region_name=REGION)
    return receive_all(sqs, sqs.get_queue_url(QueueName=queue_name(bus))["QueueUrl"])


def nothing_published() -> None:
    published = _published()
    assert not published, f"{len(published)} event(s) published: {published}"


def message_published_once() -> None:
    """The sample fan's text to the sample Mini Program is on the bus, once, with what WeChat sent."""
    published = _published()
    assert len(published) == 1, f"{len(published)} events published, expected 1: {published}"
    entry = published[0]
    assert entry["source"] == f"wechat.component.{os.environ['COMPONENT_APPID']}", entry["source"]
    assert entry["detail-type"] == "WeChat message", entry["detail-type"]
    detail = entry["detail"]
    expected = {
        "authorizer_appid": SAMPLE_MINI_PROGRAM,
        "account": SAMPLE_MINI_PROGRAM_USER_NAME,
        "type": "text",
        "msg_type": "text",
        "from": SAMPLE_FAN_OPENID,
        "msg_id": str(SAMPLE_MSG_ID),
    }
    assert {k: detail.get(k) for k in expected} == expected, detail
    assert detail["fields"].get("Content") == SAMPLE_MESSAGE_CONTENT, detail["fields"]


def _release_messages() -> list[dict[str, Any]]:
    """The messages waiting in the service's release queue (RELEASE_QUEUE_URL), taken from it."""
    import boto3

    from devtools.project import REGION
    from devtools.resources import receive_all

    queue = os.environ.get("RELEASE_QUEUE_URL", "")
    assert queue, "RELEASE_QUEUE_URL is not set: no release queue to read"
    return receive_all(boto3.client("sqs", region_name=REGION), queue)


def nothing_queued() -> None:
    queued = _release_messages()
    assert not queued, f"{len(queued)} message(s) on the release queue: {queued}"


def release_fanout_queued() -> None:
    """The release is stored, for the sample Mini Program, and its fan-out is queued, once."""
    queued = _release_messages()
    assert [m.get("step") for m in queued] == ["fanout"], queued
    stored = _store().releases.get(str(queued[0]["release_id"]))
    assert stored is not None, f"no release {queued[0]['release_id']} stored"
    assert (stored.get("target"), stored.get("appids")) == ("list", [SAMPLE_MINI_PROGRAM]), stored


def release_account_committed() -> None:
    """The sample Mini Program's account of the sample release moved to ``committed`` (claim given
    back), WeChat holds the commit (the sample template, ext_json naming the account), and the
    account's submit message is queued, once."""
    account = _store().releases.account(SAMPLE_RELEASE_ID, SAMPLE_MINI_PROGRAM)
    assert account is not None, "the sample release has no account for the sample Mini Program"
    assert account.get("state") == "committed", account
    assert "claim_owner" not in account, account
    assert _release_messages() == [
        {"step": "submit", "release_id": SAMPLE_RELEASE_ID, "appid": SAMPLE_MINI_PROGRAM}
    ]
    release_item = _store().releases.get(SAMPLE_RELEASE_ID) or {}
    simulator = os.environ["WECHAT_API_BASE"]
    code = requests.get(f"{simulator}/__sim/accounts/{SAMPLE_MINI_PROGRAM}/code", timeout=30).json()
    dev = code.get("dev") or {}
    assert (dev.get("template_id"), dev.get("user_version")) == (
        int(release_item["template_id"]),
        SAMPLE_TEMPLATE_VERSION,
    ), dev
    assert dev.get("ext_json") == {"extAppid": SAMPLE_MINI_PROGRAM}, dev


CHECKS: dict[str, Callable[[], None]] = {
    "ticket_stored": ticket_stored,
    "no_ticket_stored": no_ticket_stored,
    "authorization_stored": authorization_stored,
    "official_account_stored": official_account_stored,
    "oauth_state_stored": oauth_state_stored,
    "jsapi_ticket_stored": jsapi_ticket_stored,
    "identity_redeemed": identity_redeemed,
    "table_empty": table_empty,
    "ticket_push_requested": ticket_push_requested,
    "nothing_published": nothing_published,
    "message_published_once": message_published_once,
    "nothing_queued": nothing_queued,
    "release_fanout_queued": release_fanout_queued,
    "release_account_committed": release_account_committed,
}


def invoke_in_process(name: str) -> dict[str, Any]:
    """The function of events/<name> (per expected.json), called in this process with the file."""
    from devtools.events import LambdaContext
    from devtools.template import ROOT, template
    from tests.support.lambdas import load_function

    function = json.loads((ROOT / "events/expected.json").read_text("utf-8"))[name]["function"]
    properties = template()["Resources"][function]["Properties"]
    # The time a Lambda has left is its Timeout (the refresher plans its run by it).
    timeout = properties.get("Timeout", template()["Globals"]["Function"]["Timeout"])
    event = json.loads((ROOT / "events" / name).read_text("utf-8"))
    context = LambdaContext(function_name=function, remaining_millis=int(timeout) * 1000)
    answer: dict[str, Any] = load_function(properties["CodeUri"]).lambda_handler(event, context)
    return answer


def prepare(steps: list[str], simulator_url: str, invoke: Invoke) -> None:
    for step in steps:
        STEPS[step](simulator_url, invoke)


def verify(checks: list[str]) -> None:
    for check in checks:
        CHECKS[check]()


def service_environment(
    *,
    moto_url: str,
    simulator_url: str,
    table_name: str,
    component_appid: str,
    secret_name: str,
    event_bus_name: str = "",
    release_queue_url: str = "",
) -> dict[str, str]:
    """The environment under which the service's code, in this process, uses that table, moto and
    simulator (and that event bus, whose queue the checks read, and that release queue), configured
    as local/env.json configures ``make local``."""
    from devtools.project import ROOT
    from devtools.resources import aws_environment

    local = json.loads((ROOT / "local/env.json").read_text("utf-8"))["Parameters"]
    return aws_environment(moto_url) | {
        "TABLE_NAME": table_name,
        "COMPONENT_APPID": component_appid,
        "COMPONENT_SECRET_ID": secret_name,
        "EVENT_BUS_NAME": event_bus_name,
        "RELEASE_QUEUE_URL": release_queue_url,
        "WECHAT_API_BASE": simulator_url,
        "WECHAT_MP_BASE": simulator_url,
        "WECHAT_OPEN_BASE": simulator_url,
        "WECHAT_API_FALLBACK_BASE": "",
        "TIMESTAMP_TOLERANCE_SECONDS": local["TIMESTAMP_TOLERANCE_SECONDS"],
        "H5_ALLOW_LIST": local["H5_ALLOW_LIST"],
    }


@contextlib.contextmanager
def service_context(environment: dict[str, str]) -> Iterator[None]:
    """Run the service's code in this process under ``environment``, with fresh caches."""
    from devtools.resources import apply_environment, restore_environment
    from tests.conftest import reset_service_caches

    previous = apply_environment(environment)
    reset_service_caches()
    try:
        yield
    finally:
        restore_environment(previous)
        reset_service_caches()


# --- the answer --------------------------------------------------------------------------------------


def _first_header(answer: dict[str, Any], name: str) -> str | None:
    for key, values in (answer.get("multiValueHeaders") or {}).items():
        if key.lower() == name.lower() and values:
            return str(values[0])
    for key, value in (answer.get("headers") or {}).items():
        if key.lower() == name.lower():
            return str(value)
    return None


def _subset(expected: Any, actual: Any, where: str) -> None:
    """``actual`` holds ``expected``: dicts by the listed keys, lists item by item (same length)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: {actual!r} is not an object"
        for key, value in expected.items():
            assert key in actual, f"{where}.{key} missing"
            _subset(value, actual[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{where}: {actual!r} is not a list"
        assert len(actual) == len(expected), f"{where}: {len(actual)} items, expected {len(expected)}"
        for index, (want, got) in enumerate(zip(expected, actual, strict=True)):
            _subset(want, got, f"{where}[{index}]")
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


def _holds(expected: Any, actual: Any) -> bool:
    try:
        _subset(expected, actual, "item")
    except AssertionError:
        return False
    return True


def _passive_reply(body: str) -> dict[str, Any]:
    """The fields of an encrypted passive reply, as WeChat reads it: ``<xml><Encrypt/><MsgSignature/>
    <TimeStamp/><Nonce/></xml>``, signed with the platform's token, encrypted for the platform."""
    from wechat_core.protocol.crypto import MessageCrypto
    from wechat_core.protocol.messages import parse_xml

    from devtools.project import sample_platform

    platform = sample_platform()
    crypto = MessageCrypto(platform["token"], platform["encoding_aes_key"], platform["appid"])
    outer = parse_xml(body)
    assert set(outer) == {"Encrypt", "MsgSignature", "TimeStamp", "Nonce"}, f"not a passive reply: {body!r}"
    signature = crypto.signature(outer["TimeStamp"], outer["Nonce"], outer["Encrypt"])
    assert signature == outer["MsgSignature"], "the reply's MsgSignature does not match"
    reply: dict[str, Any] = parse_xml(crypto.decrypt(outer["Encrypt"]))
    return reply


def check_answer(spec: dict[str, Any], answer: dict[str, Any]) -> None:
    """The answer matches expected.json:

    - ``expect``: top-level fields of the answer, exactly (``statusCode``; ``body`` for text answers;
      every field of the refresher's report);
    - ``headers``: response headers, each a regular expression the value must match in full;
    - ``body``: fields of the JSON body, exactly (objects by the keys listed, lists item by item);
    - ``body_keys``: the JSON body's field names, exactly;
    - ``body_match``: fields of the JSON body, each a regular expression its value must match in full;
    - ``body_contains``: texts the (text) body must contain;
    - ``body_includes``: lists in the JSON body, each given item matched (as ``body``) by one of
      the list's items, whatever else the list holds;
    - ``encrypted_reply``: fields of the passive reply in the body, exactly: the envelope's
      MsgSignature checked and its Encrypt decrypted with the sample platform.
    """
    assert {k: answer.get(k) for k in spec["expect"]} == spec["expect"], answer
    for name, pattern in spec.get("headers", {}).items():
        value = _first_header(answer, name)
        assert value is not None, f"no {name} header: {answer}"
        assert re.fullmatch(pattern, value), f"{name}: {value!r} does not match {pattern!r}"
    for text in spec.get("body_contains", []):
        assert text in str(answer.get("body")), f"{text!r} not in {answer.get('body')!r}"
    if "encrypted_reply" in spec:
        _subset(spec["encrypted_reply"], _passive_reply(str(answer.get("body"))), "reply")
    if not {"body", "body_keys", "body_match", "body_includes"} & set(spec):
        return
    body = json.loads(answer["body"])
    if "body" in spec:
        _subset(spec["body"], body, "body")
    for name, wanted in spec.get("body_includes", {}).items():
        listed = body.get(name)
        assert isinstance(listed, list), f"body.{name}: {listed!r} is not a list"
        for item in wanted:
            assert any(_holds(item, got) for got in listed), f"body.{name}: no item holds {item}: {listed}"
    if "body_keys" in spec:
        assert sorted(body) == sorted(spec["body_keys"]), body
    for name, pattern in spec.get("body_match", {}).items():
        assert name in body, f"body.{name} missing: {body}"
        assert re.fullmatch(pattern, str(body[name])), f"body.{name}: {body[name]!r} !~ {pattern!r}"
