"""No secret reaches X-Ray: the real handlers run with tracing on, as deployed (``Tracing: Active``),
and every trace document the X-Ray SDK emits is searched for every secret the flow produced.

The handlers run in a separate process (tests/support/traced_runtime.py explains why) where
Powertools' Tracer is enabled the way Lambda enables it and has patched what the handlers patch
(botocore; requests is left alone, see wechat_core.tracing); its X-Ray emitter writes every
serialized (sub)segment to a file instead of sending it over UDP.
The tests drive the service over HTTP from here, against the simulator and moto of the usual
fixtures, stop the runtime, and read every document: handler subsegments (annotations, metadata,
``cause``) and DynamoDB and Secrets Manager calls (``aws``); WeChat calls must leave none.

Secrets looked for: every component and authorizer access token and authorizer refresh token the
simulator issued, every component_verify_ticket, authorization code and wx.login code, every
session_key, the session tokens login answered, the decrypted user data, and the platform's
appsecret, token and EncodingAESKey; as issued, URL-quoted and JSON-escaped (base64 ones also as
hex), in the JSON text and in its decoded strings.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, quote_plus, urlsplit

import pytest
import requests
from wechat_core import clock, runtime
from wechat_core.store import keys
from wechat_simulator import Platform, Simulator

from devtools.events import EVENTS_PATH
from devtools.ports import free_port
from devtools.resources import Resources
from tests.support import traced_runtime
from tests.support.flows import add_fault, calls
from tests.support.pushes import signed_push, ticket_plaintext

pytestmark = pytest.mark.integration

HANDLER = "## lambda_handler"  # the subsegment Tracer.capture_lambda_handler opens
WECHAT = "127.0.0.1"  # requests' subsegments are named after the host (the simulator's)


class TracedService:
    """The traced runtime's gateway; counts the handler invocations and keeps the secrets that
    only the answers show."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.secrets: dict[str, str] = {}  # value -> what it is
        self.invocations = 0

    def keep(self, what: str, value: Any) -> None:
        if isinstance(value, str) and value:
            self.secrets[value] = what

    def call(self, method: str, path: str, expect: int, **kwargs: Any) -> requests.Response:
        answer = requests.request(method, self.url + path, timeout=30, allow_redirects=False, **kwargs)
        self.invocations += 1
        assert answer.status_code == expect, f"{method} {path}: {answer.status_code} {answer.text}"
        return answer

    def pushed(self, outcome: dict[str, Any]) -> None:
        """The simulator pushed to the callback (one invocation)."""
        self.invocations += 1
        assert (outcome["status"], outcome["body"]) == (200, "success"), outcome


@contextlib.contextmanager
def traced_service(
    simulator: Simulator, capture_file: Path, fallback_base: str = ""
) -> Iterator[TracedService]:
    """The traced runtime under this process's service environment, WeChat pushing to it; stopped
    (every document written, the file closed) when the block ends."""
    environment = dict(os.environ) | {"WECHAT_API_FALLBACK_BASE": fallback_base}
    process = traced_runtime.start(str(capture_file), environment)
    try:
        assert process.stdout is not None
        ready = process.stdout.readline().split()
        assert ready[:1] == ["READY"], f"the traced runtime did not start: {ready}"
        simulator.callback_url = ready[1] + EVENTS_PATH
        yield TracedService(ready[1])
    finally:
        simulator.callback_url = None
        assert process.stdin is not None
        process.stdin.close()
        try:
            code = process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert code == 0, f"the traced runtime exited with {code}"


# --- the flows ---------------------------------------------------------------------------------------


def authorize_by_link(traced: TracedService, simulator: Simulator, kind: str, *, push_first: bool) -> str:
    """Our link, the owner's approval on WeChat's page, then the ``authorized`` push and the
    redirect (push first), or the redirect alone (the push comes too late to matter)."""
    appid = str(simulator.add_account(kind, unionid_bound=True)["appid"])
    query = {"format": "json", "auth_type": "2" if kind == "mini_program" else "1"}
    link = traced.call("GET", "/wechat/component/authorize", 200, params=query).json()["url"]
    callback = simulator.callback_url
    if not push_first:
        simulator.callback_url = None
    try:
        approved = requests.get(
            link, params={"sim_account": appid, "sim_action": "approve"}, allow_redirects=False, timeout=30
        )
    finally:
        simulator.callback_url = callback
    assert approved.status_code == 302, approved.headers.get("X-Sim-Error")
    if push_first:
        assert approved.headers["X-Sim-Push-Status"] == "200"
        traced.invocations += 1
    landing = urlsplit(approved.headers["Location"])
    traced.keep("authorization code", parse_qs(landing.query)["auth_code"][0])
    traced.call("GET", f"{landing.path}?{landing.query}", 200)
    return appid


def make_due(appid: str) -> None:
    """The stored authorizer token expires in a minute: refreshed on the next request, and due."""
    now = clock.now()
    runtime.store().table.update(
        keys.authorizer_sk(appid), set_values={"expires_at": now + 60, "due_at": now - 1}
    )


def login(traced: TracedService, simulator: Simulator, appid: str, code: str | None = None) -> str:
    answer = traced.call(
        "POST", f"/wechat/miniprogram/{appid}/login", 200, json={"code": code or simulator.wx_login(appid)}
    ).json()
    token = str(answer["session_token"])
    traced.keep("session token", token)
    return token


def a_day_of_the_service(traced: TracedService, simulator: Simulator) -> None:
    traced.pushed(simulator.push_ticket())
    mini = authorize_by_link(traced, simulator, "mini_program", push_first=True)
    official = authorize_by_link(traced, simulator, "official_account", push_first=False)
    simulator.set_rotation(official, enabled=True)

    # The token service: stored tokens, then refreshed ones; the component token; the list.
    for appid in (mini, official):
        traced.call("GET", f"/wechat/authorizers/{appid}/token", 200)
        make_due(appid)
        fresh = traced.call("GET", f"/wechat/authorizers/{appid}/token", 200).json()
        traced.keep("authorizer access token", fresh["authorizer_access_token"])
    served = traced.call("GET", "/wechat/component/token", 200).json()
    traced.keep("component access token", served["component_access_token"])
    traced.call("GET", "/wechat/authorizers", 200)

    # Mini Program login and the user's data.
    session_token = login(traced, simulator, mini)
    (session,) = simulator.session_keys()
    for kind in ("phone", "userinfo"):
        payload = simulator.user_data(kind, session_key=session["session_key"])
        data = traced.call(
            "POST",
            f"/wechat/miniprogram/{mini}/decrypt",
            200,
            json={"encryptedData": payload["encryptedData"], "iv": payload["iv"]},
            headers={"Authorization": f"Bearer {session_token}"},
        ).json()["data"]
        for name in ("phoneNumber", "purePhoneNumber", "nickName", "avatarUrl"):
            traced.keep(f"decrypted {name}", data.get(name))
    # WeChat refuses the component token once (40001): invalidated, refreshed, the call retried.
    add_fault(simulator, api="jscode2session", errcode=40001)
    login(traced, simulator, mini)

    # The scheduled refresher over every due authorizer.
    for appid in (mini, official):
        make_due(appid)
    report = traced.call("POST", traced_runtime.REFRESHER_PATH, 200).json()
    assert (report["refreshed"], report["failed"]) == (2, 0), report

    # Errors. WeChat drops every attempt (requests errors, then UpstreamError, in our chain).
    make_due(mini)
    add_fault(simulator, api="api_authorizer_token", drop=True, times=3)
    traced.call("GET", f"/wechat/authorizers/{mini}/token", 502)
    # WeChat refuses the refresh token (61023), and again when it is tried once more (WeChat still
    # lists it as current).
    make_due(official)
    add_fault(simulator, api="api_authorizer_token", errcode=61023, times=2)
    traced.call("GET", f"/wechat/authorizers/{official}/token", 502)
    # 4xx: a login code used twice, an unknown session, an unknown authorizer, a bad link request,
    # a push carrying a fresh ticket under a forged signature.
    used = simulator.wx_login(mini)
    login(traced, simulator, mini, used)
    traced.call("POST", f"/wechat/miniprogram/{mini}/login", 400, json={"code": used})
    traced.call(
        "POST",
        f"/wechat/miniprogram/{mini}/decrypt",
        401,
        json={"encryptedData": "AAAA", "iv": "AAAA"},
        headers={"Authorization": "Bearer " + "A" * 43},
    )
    traced.call("GET", f"/wechat/authorizers/wx{'0' * 16}/token", 404)
    traced.call("GET", "/wechat/component/authorize", 400, params={"auth_type": "9"})
    plaintext = ticket_plaintext(simulator.state.platform, simulator.state.new_ticket(), int(time.time()))
    query, body = signed_push(simulator, plaintext)
    forged = query | {"msg_signature": "0" * 40}
    traced.call("POST", EVENTS_PATH, 401, params=forged, data=body, headers={"Content-Type": "text/xml"})


def wechat_unreachable(traced: TracedService, simulator: Simulator) -> None:
    """WeChat's host drops the connection and its disaster-recovery host cannot be reached at all
    (connection refused; a DNS failure or connect timeout reads the same)."""
    traced.pushed(simulator.push_ticket())
    appid = authorize_by_link(traced, simulator, "mini_program", push_first=False)
    make_due(appid)
    add_fault(simulator, api="api_authorizer_token", drop=True)
    traced.call("GET", f"/wechat/authorizers/{appid}/token", 502)
    add_fault(simulator, api="jscode2session", drop=True)
    traced.call("POST", f"/wechat/miniprogram/{appid}/login", 502, json={"code": simulator.wx_login(appid)})


# --- reading what was emitted ------------------------------------------------------------------------


def issued_secrets(simulator: Simulator, platform: Platform) -> dict[str, str]:
    """Every credential the simulator issued or accepted, and the platform's own."""
    state = simulator.state
    with state.lock:
        found = dict.fromkeys(state.tickets, "component_verify_ticket")
        found |= {t.value: "component access token" for t in state.component_tokens}
        found |= dict.fromkeys(state.authorization_codes, "authorization code")
        found |= dict.fromkeys(state.js_codes, "wx.login code")
        appids = list(state.accounts)
    for appid in appids:
        account = simulator.account(appid)
        found |= {str(t["value"]): "authorizer access token" for t in account["access_tokens"]}
        found |= {str(t["value"]): "authorizer refresh token" for t in account["refresh_tokens"]}
    found |= {s["session_key"]: "session_key" for s in simulator.session_keys()}
    found[platform.appsecret] = "appsecret"
    found[platform.token] = "message token"
    found[platform.encoding_aes_key] = "encoding_aes_key"
    return found


def forms(secret: str) -> set[str]:
    """A secret as it could be written: as is, URL-quoted, JSON-escaped; base64 also as hex."""
    found = {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}
    with contextlib.suppress(binascii.Error, ValueError):
        found.add(base64.b64decode(secret, validate=True).hex())
    return found


def strings(value: Any) -> Iterator[str]:
    """Every key and scalar value of a JSON document, decoded."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)
    elif value is not None:
        yield str(value)


def entities(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A document's (sub)segment and every subsegment nested in it."""
    yield document
    for child in document.get("subsegments", []):
        yield from entities(child)


def with_parents(document: dict[str, Any], parent: str | None = None) -> Iterator[tuple[dict[str, Any], str]]:
    """(subsegment, its parent's id): a streamed one names it, a nested one is inside it."""
    parent_id = str(document.get("parent_id", parent))
    yield document, parent_id
    for child in document.get("subsegments", []):
        yield from with_parents(child, str(document["id"]))


def read_documents(capture_file: Path) -> list[tuple[str, dict[str, Any]]]:
    return [(line, json.loads(line)) for line in capture_file.read_text("utf-8").splitlines()]


def assert_traced(documents: list[tuple[str, dict[str, Any]]], traced: TracedService) -> None:
    """The tracer really traced: one handler subsegment per invocation, under the Lambda facade
    segment, and the calls made below it (or, in the refresher's worker threads, below that
    thread's facade segment)."""
    assert documents, "the X-Ray emitter received nothing"
    every = [pair for _, d in documents for pair in with_parents(d)]
    names = Counter(e["name"] for e, _ in every)
    print(f"X-Ray documents: {len(documents)}; subsegments by name: {dict(names)}")
    assert {d["trace_id"] for _, d in documents} == {traced_runtime.TRACE_ROOT}
    assert {e["type"] for e, _ in every} == {"subsegment"}  # Lambda emits no segment of its own
    assert names[HANDLER] == traced.invocations, names
    handlers = {e["id"] for e, _ in every if e["name"] == HANDLER}
    known = {e["id"] for e, _ in every} | {traced_runtime.TRACE_PARENT}
    assert all(parent in known for _, parent in every)
    assert {parent for e, parent in every if e["name"] == HANDLER} == {traced_runtime.TRACE_PARENT}
    for name in ("dynamodb", "secretsmanager"):
        assert any(e["name"] == name and parent in handlers for e, parent in every), f"no {name}: {names}"
    # requests is not patched (wechat_core.tracing): its error texts hold WeChat URLs with tokens.
    assert names[WECHAT] == 0, names


def wechat_urls(documents: list[tuple[str, dict[str, Any]]]) -> set[str]:
    return {
        str(e["http"]["request"]["url"])
        for _, d in documents
        for e in entities(d)
        if e["name"] == WECHAT and "request" in e.get("http", {})
    }


def redact(text: str, secrets: dict[str, str]) -> str:
    for secret, what in secrets.items():
        for form in forms(secret):
            text = text.replace(form, f"<{what}>")
    return text


def leaks(documents: list[tuple[str, dict[str, Any]]], secrets: dict[str, str]) -> list[str]:
    """``<what> in <subsegment>.<field>: <the field, secrets redacted>`` for every secret found."""
    found = []
    for line, document in documents:
        text = line + "\n" + "\n".join(strings(document))
        for secret, what in secrets.items():
            if not any(form in text for form in forms(secret)):
                continue
            for entity in entities(document):
                for key, value in entity.items():
                    field = json.dumps(value) + "\n" + "\n".join(strings(value))
                    if key != "subsegments" and any(form in field for form in forms(secret)):
                        excerpt = redact(json.dumps(value), secrets)[:400]
                        found.append(f"{what} in {entity['name']!r}.{key}: {excerpt}")
    return sorted(set(found))


# --- the tests ---------------------------------------------------------------------------------------


def test_no_secret_reaches_xray_in_a_day_of_the_service(
    service: Resources, simulator: Simulator, platform: Platform, tmp_path: Path
) -> None:
    capture_file = tmp_path / "xray.jsonl"
    with traced_service(simulator, capture_file) as traced:
        a_day_of_the_service(traced, simulator)
    documents = read_documents(capture_file)
    assert_traced(documents, traced)
    called = ("api_component_token", "api_create_preauthcode", "api_query_auth", "api_get_authorizer_info")
    for api in (*called, "api_authorizer_token", "jscode2session"):
        assert calls(simulator, api) > 0, api  # the flow made every kind of WeChat call

    secrets = traced.secrets | issued_secrets(simulator, platform)
    kinds = Counter(secrets.values())
    assert kinds["component_verify_ticket"] >= 2
    assert kinds["component access token"] >= 2
    assert kinds["authorizer access token"] >= 4
    assert kinds["authorizer refresh token"] >= 2
    assert kinds["session_key"] >= 3
    assert kinds["session token"] >= 3
    assert kinds["decrypted purePhoneNumber"] + kinds["decrypted phoneNumber"] == 1
    found = leaks(documents, secrets)
    assert not found, f"{len(found)} secret(s) in X-Ray documents:\n" + "\n".join(found)


def test_no_secret_reaches_xray_when_wechat_is_unreachable(
    service: Resources, simulator: Simulator, platform: Platform, tmp_path: Path
) -> None:
    """The requests error for a host that cannot be reached names the URL, query included, and
    with it the access token; the requests patch records that error's text in ``cause``."""
    capture_file = tmp_path / "xray.jsonl"
    unreachable = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    with traced_service(simulator, capture_file, fallback_base=unreachable) as traced:
        wechat_unreachable(traced, simulator)
    documents = read_documents(capture_file)
    assert_traced(documents, traced)
    assert not wechat_urls(documents)

    secrets = traced.secrets | issued_secrets(simulator, platform)
    found = leaks(documents, secrets)
    assert not found, f"{len(found)} secret(s) in X-Ray documents:\n" + "\n".join(found)
