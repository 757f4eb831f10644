"""The real handlers in Lambda containers: WeChat's pushes and fans' messages through ``sam local
start-api`` into the table and onto the event bus on moto, WeChat's full-network release test
through it, an H5 page's web OAuth and JS-SDK configuration through it, a Mini Program release
through it and the release worker (``sam local start-lambda``, fed from the release queue by the
stack's poller), and ``sam local invoke`` with every file in events/."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from wechat_simulator import Platform, SimState
from wechat_simulator.oauth import follow_authorize_url
from wechat_simulator.pusher import envelope, signed_query, ticket_xml

from devtools.project import ROOT, sample_platform
from devtools.samples import SAMPLE_H5_ALLOW_LIST, SAMPLE_H5_PAGE
from devtools.stack_info import StackInfo
from tests.support.event_setups import (
    check_answer,
    invoke_in_process,
    prepare,
    service_context,
    service_environment,
    verify,
)
from tests.support.pushes import RELEASE_TEST_STEPS

pytestmark = pytest.mark.e2e

EXPECTED: dict[str, dict[str, Any]] = json.loads((ROOT / "events/expected.json").read_text("utf-8"))


# The start-api tests come first: event files whose function finds no ticket ask WeChat to push one,
# and the simulator pushes it to start-api, into the stack's own table, a moment later.


def test_simulator_ticket_push_through_start_api_is_stored(local_stack: StackInfo) -> None:
    result = requests.post(local_stack.simulator_url + "/__sim/push/ticket", timeout=60).json()
    assert (result["status"], result["body"]) == (200, "success")
    item = local_stack.stored_ticket()
    assert item is not None
    assert item["component_verify_ticket"]["S"] == result["ticket"]


def _push_parts() -> tuple[dict[str, str], str, str]:
    """(query, Encrypt, envelope XML) of a ticket push signed as WeChat (the simulator) signs it."""
    state = SimState(Platform(**sample_platform()))
    encrypt, body = envelope(state, ticket_xml(state, "ticket@@@tampered-" + uuid.uuid4().hex))
    return signed_query(state, encrypt), encrypt, body


def _flip(text: str, index: int) -> str:
    return text[:index] + ("B" if text[index] == "A" else "A") + text[index + 1 :]


def _tampered_body() -> tuple[dict[str, str], str]:
    query, encrypt, body = _push_parts()
    return query, body.replace(encrypt, _flip(encrypt, len(encrypt) // 2))


def _tampered_signature() -> tuple[dict[str, str], str]:
    query, _, body = _push_parts()
    signature = query["msg_signature"]
    return query | {"msg_signature": signature[:-1] + ("0" if signature[-1] != "0" else "1")}, body


@pytest.mark.parametrize("tamper", [_tampered_body, _tampered_signature], ids=["ciphertext", "signature"])
def test_tampered_push_through_start_api_is_refused_and_stores_nothing(
    local_stack: StackInfo, tamper: Any
) -> None:
    query, body = tamper()
    before = local_stack.items()
    answer = requests.post(
        local_stack.callback_url,
        params=query,
        data=body.encode(),
        headers={"Content-Type": "text/xml"},
        timeout=60,
    )
    assert answer.status_code == 401
    assert local_stack.items() == before


def _sim(stack: StackInfo, path: str, **body: Any) -> Any:
    """A control route of the simulator (it plays WeChat toward start-api and answers what it saw)."""
    answer = requests.post(stack.simulator_url + path, json=body, timeout=180)
    assert answer.status_code < 300, f"{path}: {answer.status_code} {answer.text}"
    return answer.json()


def _authorized_at_wechat(stack: StackInfo) -> set[str]:
    answer = requests.get(stack.simulator_url + "/__sim/accounts", timeout=30)
    answer.raise_for_status()
    return {a["appid"] for a in answer.json() if a["authorized"]}


@pytest.fixture
def wechat_authorizations_undone(local_stack: StackInfo) -> Iterator[None]:
    """The simulator is the session's WeChat: authorizations a test makes there are revoked after it
    (without a push), so that WeChat's list of authorizers is the event files' own again
    (admin-recover.json expects exactly the sample authorization; the H5 files authorize the sample
    Official Account, each file's setup authorizes what it needs again)."""
    before = _authorized_at_wechat(local_stack)
    yield
    for appid in sorted(_authorized_at_wechat(local_stack) - before):
        _sim(local_stack, f"/__sim/accounts/{appid}/revoke", push=False)


@pytest.mark.usefixtures("wechat_authorizations_undone")
def test_fans_message_through_start_api_is_published_once(local_stack: StackInfo) -> None:
    """An Official Account authorizes the platform (WeChat's `authorized` push to the callback, the
    code exchanged), a fan writes to it: the message goes to its message URL, onto the bus, and
    arrives in the queue once; WeChat's re-send of it is answered and not published again."""
    _sim(local_stack, "/__sim/push/ticket")  # the code exchange needs the component token
    appid = _sim(local_stack, "/__sim/accounts", kind="official_account")["appid"]
    pushed = _sim(local_stack, "/__sim/query_auth_code", appid=appid, push=True)["push"]
    assert (pushed["status"], pushed["body"]) == (200, "success"), pushed
    local_stack.published()  # whatever earlier tests left
    content = "Hello from a fan, through sam local " + uuid.uuid4().hex[:8]
    sent = _sim(local_stack, "/__sim/messages", appid=appid, msg_type="text", fields={"Content": content})
    assert (sent["url"], sent["status"], sent["body"]) == (
        local_stack.message_url.replace("$APPID$", appid),
        200,
        "success",
    ), sent
    published = local_stack.published()
    assert len(published) == 1, published
    entry = published[0]
    assert (entry["source"], entry["detail-type"]) == (
        f"wechat.component.{local_stack.component_appid}",
        "WeChat message",
    )
    detail = entry["detail"]
    assert {k: detail[k] for k in ("authorizer_appid", "from", "msg_type", "msg_id")} == {
        "authorizer_appid": appid,
        "from": sent["openid"],
        "msg_type": "text",
        "msg_id": str(sent["msg_id"]),
    }
    assert detail["fields"]["Content"] == content
    again = _sim(local_stack, "/__sim/messages", resend_of=sent["id"])
    assert (again["status"], again["body"]) == (200, "success"), again
    assert local_stack.published() == []


@pytest.mark.usefixtures("wechat_authorizations_undone")
def test_full_network_release_test_through_start_api_passes(local_stack: StackInfo) -> None:
    """WeChat's full-network test (全网发布接入检测) against the callback and the message URL: every
    step passes within WeChat's 5 seconds, and none of its messages is published."""
    local_stack.published()
    report = _sim(local_stack, "/__sim/full-network-test", group=1)
    assert report["passed"], json.dumps(report["steps"], indent=2, ensure_ascii=False)
    assert [s["name"] for s in report["steps"]] == RELEASE_TEST_STEPS
    assert local_stack.published() == []


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


@pytest.mark.usefixtures("wechat_authorizations_undone")
def test_web_oauth_and_jssdk_through_start_api(local_stack: StackInfo) -> None:
    """A page of an authorized Official Account signs a fan in (snsapi_userinfo) through start-api:
    authorize -> WeChat's consent page (the simulator, whose only web-authorization domain is
    start-api's host) -> our callback -> the page with a ticket, which its backend redeems once;
    then the page's wx.config, accepted by WeChat's client, twice from one getticket. No OAuth token
    WeChat issued is in any answer or in the table."""
    _sim(local_stack, "/__sim/push/ticket")  # the code exchanges need the component token
    appid = _sim(local_stack, "/__sim/accounts", kind="official_account", unionid_bound=True)["appid"]
    pushed = _sim(local_stack, "/__sim/query_auth_code", appid=appid, push=True)["push"]
    assert (pushed["status"], pushed["body"]) == (200, "success"), pushed

    query = {"scope": "snsapi_userinfo", "redirect_uri": SAMPLE_H5_PAGE, "state": "e2e-page-state"}
    authorize_url = local_stack.url("/wechat/oauth/{appid}/authorize", appid=appid)
    started = requests.get(authorize_url, params=query, allow_redirects=False, timeout=60)
    assert started.status_code == 302, started.text
    consent = started.headers["Location"]
    callback_url = local_stack.url("/wechat/oauth/{appid}/callback", appid=appid)
    assert consent.startswith(f"{local_stack.simulator_url}/connect/oauth2/authorize?"), consent
    assert _query(consent)["redirect_uri"] == callback_url
    back_to_us = follow_authorize_url(local_stack.simulator_url, consent, "e2e-fan", "approve")
    assert back_to_us.startswith(callback_url + "?")
    callback = requests.get(back_to_us, allow_redirects=False, timeout=60)
    assert callback.status_code == 302, callback.text
    to_page = callback.headers["Location"]
    assert to_page.startswith(SAMPLE_H5_PAGE + "?")
    back = _query(to_page)
    assert sorted(back) == ["state", "ticket"]
    assert back["state"] == "e2e-page-state"

    redeem_url = local_stack.url("/wechat/oauth/redeem")
    first = requests.post(redeem_url, json={"ticket": back["ticket"]}, timeout=60)
    assert first.status_code == 200, first.text
    identity = first.json()
    assert (identity["appid"], identity["scope"]) == (appid, "snsapi_userinfo")
    assert re.fullmatch(r"o[A-Za-z0-9_-]{27}", identity["openid"]), identity["openid"]
    assert identity["unionid"]
    assert identity["user"]["nickname"]
    again = requests.post(redeem_url, json={"ticket": back["ticket"]}, timeout=60)
    assert again.status_code == 409
    assert again.json() == {"error": "ticket already redeemed"}

    config_url = local_stack.url("/wechat/jssdk/{appid}/config", appid=appid)
    configs = []
    for _ in range(2):
        answer = requests.get(
            config_url, params={"url": SAMPLE_H5_PAGE}, headers={"Origin": SAMPLE_H5_ALLOW_LIST}, timeout=60
        )
        assert answer.status_code == 200, answer.text
        assert answer.headers["Access-Control-Allow-Origin"] == SAMPLE_H5_ALLOW_LIST
        configs.append(answer)
        config = answer.json()
        verdict = _sim(
            local_stack,
            "/__sim/verify_jssdk",
            appid=appid,
            url=SAMPLE_H5_PAGE,
            timestamp=config["timestamp"],
            nonce_str=config["nonceStr"],
            signature=config["signature"],
        )
        assert verdict == {"accepted": True, "reason": None}, verdict
    tickets = requests.get(f"{local_stack.simulator_url}/__sim/accounts/{appid}/jsapi_tickets", timeout=30)
    assert [t["type"] for t in tickets.json()] == ["jsapi"]  # one getticket for both pages

    issued = requests.get(f"{local_stack.simulator_url}/__sim/oauth_tokens", timeout=30).json()
    assert issued
    seen = json.dumps(
        [started.text, consent, back_to_us, callback.text, to_page, first.text, again.text]
        + [c.text for c in configs]
        + [local_stack.items()],
        default=str,
    )
    assert not [t for t in issued if t in seen], "an OAuth token WeChat issued left the callback"


def _release(stack: StackInfo, release_id: str) -> dict[str, Any]:
    answer = requests.get(stack.url("/wechat/releases/{release_id}", release_id=release_id), timeout=60)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _wait_for_states(
    stack: StackInfo, release_id: str, wanted: dict[str, str], seconds: float = 60
) -> dict[str, Any]:
    """The release once its accounts are in the ``wanted`` states (polled, bounded by ``seconds``)."""
    deadline = time.monotonic() + seconds
    while True:
        release = _release(stack, release_id)
        states = {a["appid"]: a["state"] for a in release["accounts"]}
        if states == wanted:
            return release
        assert "failed" not in states.values(), release["accounts"]
        assert time.monotonic() < deadline, f"after {seconds:.0f}s: {states}, waiting for {wanted}"
        time.sleep(0.5)


@pytest.mark.usefixtures("wechat_authorizations_undone")
def test_a_release_through_start_api_and_the_local_release_worker(local_stack: StackInfo) -> None:
    """A template released to two Mini Programs through start-api: the worker in its container (sam
    local start-lambda), fed from the release queue by the stack's poller, commits and submits both;
    WeChat's reviewers approve one and reject the other, their events reach the message URL, and the
    approved one is released. Each WeChat call is made once per account."""
    _sim(local_stack, "/__sim/push/ticket")  # the code exchanges and the worker need the component token
    approved, rejected = (
        _sim(local_stack, "/__sim/accounts", kind="mini_program")["appid"] for _ in range(2)
    )
    for appid in (approved, rejected):
        pushed = _sim(local_stack, "/__sim/query_auth_code", appid=appid, push=True)["push"]
        assert (pushed["status"], pushed["body"]) == (200, "success"), pushed
    reason = "e2e: 页面内容不完整"
    _sim(local_stack, f"/__sim/accounts/{rejected}/audit_outcome", outcome="fail", reason=reason)
    template = _sim(local_stack, "/__sim/templates", user_version="3.1.0", user_desc="e2e")["template_id"]

    started = time.monotonic()
    body = {"template_id": template, "user_version": "3.1.0", "appids": [approved, rejected]}
    created = requests.post(local_stack.url("/wechat/releases"), json=body, timeout=60)
    assert created.status_code == 202, created.text
    release_id = created.json()["release_id"]
    _wait_for_states(local_stack, release_id, {approved: "auditing", rejected: "auditing"})
    submitted = time.monotonic() - started

    for appid, event in ((approved, "weapp_audit_success"), (rejected, "weapp_audit_fail")):
        (finished,) = _sim(local_stack, "/__sim/audits/finish", appid=appid)
        assert (finished["event"], finished["http_status"]) == (event, 200), finished
    release = _wait_for_states(local_stack, release_id, {approved: "released", rejected: "rejected"})
    done = time.monotonic() - started
    print(f"release {release_id}: both auditing after {submitted:.1f}s, released/rejected after {done:.1f}s")

    assert release["counts"] == {"released": 1, "rejected": 1}
    accounts = {a["appid"]: a for a in release["accounts"]}
    assert accounts[rejected]["reason"] == reason
    assert accounts[rejected]["screenshots"]
    code = requests.get(f"{local_stack.simulator_url}/__sim/accounts/{approved}/code", timeout=30).json()
    assert code["dev"]["template_id"] == template
    assert code["dev"]["ext_json"] == {"extAppid": approved}
    calls = {
        appid: requests.get(
            f"{local_stack.simulator_url}/__sim/accounts/{appid}/code_calls", timeout=30
        ).json()
        for appid in (approved, rejected)
    }
    assert calls == {
        approved: {"commit": 1, "submit_audit": 1, "release": 1},
        rejected: {"commit": 1, "submit_audit": 1},
    }
    # Everything was taken from the queue: nothing left, nothing in the dead-letter queue.
    sqs = local_stack.sqs()
    for queue in (local_stack.release_queue_url, local_stack.release_dlq_url):
        attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
        assert attributes["ApproximateNumberOfMessages"] == "0", (queue, attributes)


def test_every_event_file_has_an_expectation() -> None:
    files = sorted(p.name for p in (ROOT / "events").glob("*.json") if p.name != "expected.json")
    assert files == sorted(EXPECTED)


@pytest.mark.usefixtures("wechat_authorizations_undone")
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_event_file_through_sam_local_invoke(local_stack: StackInfo, name: str) -> None:
    """Each file gets its expected answer from the function in its Lambda container, on a fresh
    table and event bus, after the setup steps it names (tests/support/event_setups.py); then what
    it names must hold in the table and on the bus (read from the queue subscribed to it). The
    setup steps run the handlers in this process, against the stack's moto and simulator (a
    container per step would double the run's time); the file itself goes through ``sam local
    invoke``."""
    spec = EXPECTED[name]
    table = f"e2e-{uuid.uuid4().hex[:10]}"
    local_stack.create_table(table)
    local_stack.create_bus(table)
    # A release queue of its own too: what the file makes the function send stays out of the stack's
    # queue, whose poller would hand it to the worker of the stack's table.
    release_queue, _ = local_stack.create_release_queues(f"{table}-releases")
    environment = service_environment(
        moto_url=local_stack.moto_url,
        simulator_url=local_stack.simulator_url,
        table_name=table,
        component_appid=local_stack.component_appid,
        secret_name=local_stack.secret_name,
        event_bus_name=table,
        release_queue_url=release_queue,
    )
    with service_context(environment):
        prepare(spec.get("setup", []), local_stack.simulator_url, invoke_in_process)
    answer = local_stack.invoke(
        spec["function"],
        ROOT / "events" / name,
        table_name=table,
        bus_name=table,
        release_queue_url=release_queue,
    )
    check_answer(spec, answer)
    with service_context(environment):
        verify(spec.get("then", []))
