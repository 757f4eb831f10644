"""Each function's role in template.yaml allows what the function does, and nothing it never does.

Every function is driven through its routes (or its schedule) from a cold start, as its own Lambda
would run: no secret, token or setting cached from another function. Before each one the component
token is made due, since every function may be the one that refreshes it. tests/support/iam.py
records every AWS call each handler makes (action and resource ARN); each must be allowed by the
function's role as SAM translates the template, and each action the role grants must have been
needed by one of the calls. The session-wide check in tests/conftest.py holds every other test's
calls to the same roles.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from wechat_core import clock, runtime
from wechat_core.bus import EventBus, PublishFailed
from wechat_core.features import tokens
from wechat_core.store import keys
from wechat_core.work_queue import QueueUnavailable, WorkQueue
from wechat_simulator import Platform, Simulator

from devtools.events import LambdaContext
from devtools.message_events import message_plaintext
from devtools.resources import Resources
from tests.conftest import reset_service_caches
from tests.support import iam, release_queue
from tests.support.flows import add_fault, authorize, authorizer, give_ticket
from tests.support.gateway import Gateway
from tests.support.lambdas import load_function
from tests.support.pushes import (
    authorized_plaintext,
    invoke_callback,
    signed_message,
    signed_push,
    ticket_plaintext,
)

pytestmark = pytest.mark.integration


class Run:
    """One function's calls, from a cold start."""

    def __init__(self, function: str) -> None:
        self.function = function
        reset_service_caches()
        # Due: whichever function runs next fetches the component token (lease, api_component_token).
        runtime.store().table.update(keys.COMPONENT_TOKEN_SK, set_values={"expires_at": 0})
        self.mark = iam.RECORDER.mark()

    def calls(self) -> list[iam.Call]:
        return [c for c in iam.RECORDER.since(self.mark) if c.function == self.function]


@pytest.fixture
def component_token_stored(service: Resources, simulator: Simulator) -> None:
    give_ticket(simulator)
    tokens.ComponentToken().get()


def make_due(appid: str) -> None:
    now = clock.now()
    runtime.store().table.update(
        keys.authorizer_sk(appid), set_values={"expires_at": now + 60, "due_at": now - 1}
    )


def callback(simulator: Simulator, platform: Platform) -> list[iam.Call]:
    step = Run("CallbackFunction")
    ticket = simulator.state.new_ticket()
    assert invoke_callback(*signed_push(simulator, ticket_plaintext(platform, ticket, int(time.time())))) == (
        200,
        "success",
    )
    appid = str(simulator.add_account("official_account")["appid"])
    push = signed_push(
        simulator, authorized_plaintext(platform, appid, simulator.query_auth_code(appid), int(time.time()))
    )
    # WeChat cannot be reached for the exchange: the push fails (its delivery key stays) ...
    add_fault(simulator, api="api_query_auth", http_status=500, times=10)
    status, _ = invoke_callback(*push)
    assert status >= 500
    requests.delete(f"{simulator.url}/__sim/faults", timeout=5).raise_for_status()
    # ... so WeChat's retry of the same delivery is processed.
    assert invoke_callback(*push) == (200, "success")
    assert authorizer(appid)["status"] == "active"
    # A push naming another account than the one WeChat exchanges its code for: its pending item goes.
    real, named = (str(simulator.add_account("official_account")["appid"]) for _ in range(2))
    other = authorized_plaintext(platform, named, simulator.query_auth_code(real), int(time.time()))
    assert invoke_callback(*signed_push(simulator, other)) == (200, "success")
    assert authorizer(real)["status"] == "active"
    return step.calls()


def preauth(gateway: Gateway, simulator: Simulator, monkeypatch: pytest.MonkeyPatch) -> list[iam.Call]:
    monkeypatch.setenv("PUBLIC_BASE_URL", gateway.url)
    step = Run("PreAuthFunction")
    answer = requests.get(f"{gateway.url}/wechat/component/authorize", params={"format": "json"}, timeout=10)
    assert answer.status_code == 200, answer.text
    appid = str(simulator.add_account("official_account")["appid"])
    approved = requests.get(
        answer.json()["url"],
        params={"sim_account": appid, "sim_action": "approve"},
        allow_redirects=False,
        timeout=10,
    )
    assert approved.status_code == 302, approved.headers.get("X-Sim-Error")
    redirect = urlsplit(approved.headers["Location"])
    query = {k: v[0] for k, v in parse_qs(redirect.query).items()}
    finished = requests.get(f"{gateway.url}{redirect.path}", params=query, timeout=10)
    assert finished.status_code == 200, finished.text
    assert authorizer(appid)["status"] == "active"
    return step.calls()


def jscode2session(gateway: Gateway, simulator: Simulator) -> list[iam.Call]:
    mini = authorize(simulator, "mini_program")
    step = Run("JsCode2SessionFunction")
    url = f"{gateway.url}/wechat/miniprogram/{mini}"
    answer = requests.post(f"{url}/login", json={"code": simulator.wx_login(mini)}, timeout=10)
    assert answer.status_code == 200, answer.text
    unknown = requests.post(
        f"{url}/decrypt",
        json={"encryptedData": "AAAAAAAAAAAAAAAAAAAAAA==", "iv": "AAAAAAAAAAAAAAAAAAAAAA=="},
        headers={"Authorization": "Bearer " + "x" * 43},
        timeout=10,
    )
    assert unknown.status_code == 401, unknown.text
    return step.calls()


def refresher(simulator: Simulator) -> list[iam.Call]:
    appid = authorize(simulator)
    make_due(appid)
    step = Run("RefresherFunction")
    report = load_function("functions/refresher").lambda_handler(
        {"detail-type": "Scheduled Event", "source": "aws.scheduler", "detail": {}},
        LambdaContext(function_name="RefresherFunction", remaining_millis=300_000),
    )
    assert (report["component"], report["refreshed"], report["failed"]) == ("refreshed", 1, 0)
    return step.calls()


def admin(gateway: Gateway, simulator: Simulator, service: Resources) -> list[iam.Call]:
    appid = authorize(simulator)
    make_due(appid)
    lost = authorize(simulator)
    service.dynamodb.delete_item(
        TableName=service.table_name,
        Key={
            "pk": {"S": f"component#{runtime.settings().component_appid}"},
            "sk": {"S": f"authorizer#{lost}"},
        },
    )
    step = Run("AdminFunction")
    token = requests.get(f"{gateway.url}/wechat/authorizers/{appid}/token", timeout=10)
    assert token.status_code == 200, token.text
    ticket = requests.get(f"{gateway.url}/wechat/authorizers/{appid}/jsapi-ticket", timeout=10)
    assert ticket.status_code == 200, ticket.text
    redeemed = requests.post(f"{gateway.url}/wechat/oauth/redeem", json={"ticket": "a" * 43}, timeout=10)
    assert redeemed.status_code == 404, redeemed.text
    listed = requests.get(f"{gateway.url}/wechat/authorizers", params={"limit": "10"}, timeout=10)
    assert listed.status_code == 200, listed.text
    recovered = requests.post(f"{gateway.url}/wechat/authorizers/recover", timeout=10)
    assert recovered.status_code == 200, recovered.text
    assert recovered.json()["restored"] == 1
    return step.calls()


def h5(gateway: Gateway, simulator: Simulator, monkeypatch: pytest.MonkeyPatch) -> list[iam.Call]:
    monkeypatch.setenv("H5_ALLOW_LIST", "https://h5.example.com")
    monkeypatch.setenv("PUBLIC_BASE_URL", gateway.url)
    appid = authorize(simulator)
    step = Run("H5Function")
    page = "https://h5.example.com/"
    # the JS-SDK ticket (Get, Update: lease and store), with the authorizer and component tokens
    config = requests.get(f"{gateway.url}/wechat/jssdk/{appid}/config", params={"url": page}, timeout=10)
    assert config.status_code == 200, config.text
    # a state (Put), the callback's claim (Update) and the identity (Put)
    started = requests.get(
        f"{gateway.url}/wechat/oauth/{appid}/authorize",
        params={"scope": "snsapi_userinfo", "redirect_uri": page},
        allow_redirects=False,
        timeout=10,
    )
    assert started.status_code == 302, started.text
    back = requests.get(
        simulator.oauth_consent(started.headers["Location"]), allow_redirects=False, timeout=10
    )
    assert back.status_code == 302, back.text
    assert "ticket=" in back.headers["Location"]
    return step.calls()


def releases(gateway: Gateway, simulator: Simulator, monkeypatch: pytest.MonkeyPatch) -> list[iam.Call]:
    step = Run("ReleasesFunction")
    url = f"{gateway.url}/wechat"
    draft = simulator.add_draft()
    for path in ("templates", "templates/drafts"):  # the component token (Get, Update)
        assert requests.get(f"{url}/{path}", timeout=10).status_code == 200
    assert (
        requests.post(f"{url}/templates", json={"draft_id": draft["draft_id"]}, timeout=10).status_code == 200
    )
    template = simulator.add_template()
    assert requests.delete(f"{url}/templates/{template['template_id']}", timeout=10).status_code == 200
    body = {"template_id": 1, "user_version": "1.0", "appids": ["wx" + "7" * 16]}
    created = requests.post(f"{url}/releases", json=body, timeout=10)  # the release (Put), SendMessage
    assert created.status_code == 202, created.text
    release_id = created.json()["release_id"]
    assert requests.get(f"{url}/releases/{release_id}", timeout=10).status_code == 200  # Get, Query
    assert requests.get(f"{url}/releases", timeout=10).status_code == 200  # Query

    def refuse(*_: object, **__: object) -> None:
        raise QueueUnavailable

    monkeypatch.setattr(WorkQueue, "send", refuse)
    assert requests.post(f"{url}/releases", json=body, timeout=10).status_code == 503  # Delete
    monkeypatch.undo()
    release_queue.drain()  # (the worker's, not counted here)
    return step.calls()


def release_worker(simulator: Simulator, gateway: Gateway) -> tuple[list[iam.Call], str]:
    """A release to one Mini Program, up to its audit; returns the calls and the Mini Program."""
    mini = authorize(simulator, "mini_program")
    template = simulator.add_template()
    body = {"template_id": template["template_id"], "user_version": "1.0", "all": True}
    assert requests.post(f"{gateway.url}/wechat/releases", json=body, timeout=10).status_code == 202
    make_due(mini)  # its token refreshed with the component token, fetched with the secret
    step = Run("ReleaseWorkerFunction")
    # the authorizers (Query), accounts (Put, Get, Update), the release (Get, Update), tokens, SendMessage
    release_queue.drain()
    assert release_queue.scheduled_run() == {"audit_checks_queued": 0}  # the due index (Query)
    return step.calls(), mini


def messages(
    gateway: Gateway, simulator: Simulator, monkeypatch: pytest.MonkeyPatch, mini: str
) -> list[iam.Call]:
    appid = authorize(simulator)
    user_name = str(simulator.account(appid)["user_name"])
    step = Run("MessagesFunction")

    def deliver(msg_type: str, to: str = appid, **fields: str | int) -> int:
        account = str(simulator.account(to)["user_name"])
        plaintext = message_plaintext(account, "o-fan", msg_type, int(time.time()), **fields)
        query, body = signed_message(simulator, plaintext, account)
        url = f"{gateway.url}/wechat/authorizers/{to}/messages"
        return requests.post(
            url, params=query, data=body, headers={"Content-Type": "text/xml"}, timeout=10
        ).status_code

    assert user_name
    assert deliver("text", Content="hi", MsgId=1) == 200  # authorization (Get), key (Put), PutEvents
    assert deliver("event", Event="weapp_audit_success", SuccTime=1) == 200  # ... and the audit (Update)
    # An audit a release waits for: the account moves on (Update) and its release is queued (SendMessage).
    assert deliver("event", to=mini, Event="weapp_audit_success", SuccTime=2) == 200

    def refuse(*_: object, **__: object) -> None:
        raise PublishFailed

    monkeypatch.setattr(EventBus, "publish", refuse)
    assert deliver("text", Content="hi", MsgId=2) == 503  # the key is removed (Delete)
    monkeypatch.undo()
    return step.calls()


def component_token(gateway: Gateway) -> list[iam.Call]:
    step = Run("ComponentTokenFunction")
    answer = requests.get(f"{gateway.url}/wechat/component/token", timeout=10)
    assert answer.status_code == 200, answer.text
    return step.calls()


@pytest.mark.usefixtures("component_token_stored")
def test_each_function_is_allowed_what_it_does_and_nothing_more(
    gateway: Gateway,
    simulator: Simulator,
    platform: Platform,
    service: Resources,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run: dict[str, list[iam.Call]] = {}
    run["CallbackFunction"] = callback(simulator, platform)
    run["PreAuthFunction"] = preauth(gateway, simulator, monkeypatch)
    run["JsCode2SessionFunction"] = jscode2session(gateway, simulator)
    run["RefresherFunction"] = refresher(simulator)
    run["AdminFunction"] = admin(gateway, simulator, service)
    run["ComponentTokenFunction"] = component_token(gateway)
    run["ReleasesFunction"] = releases(gateway, simulator, monkeypatch)
    run["ReleaseWorkerFunction"], mini = release_worker(simulator, gateway)
    run["MessagesFunction"] = messages(gateway, simulator, monkeypatch, mini)
    run["H5Function"] = h5(gateway, simulator, monkeypatch)
    assert sorted(run) == sorted(iam.function_code_uris()), "every function of template.yaml is driven"

    refused = {f: iam.RECORDER.refused(calls) for f, calls in run.items()}
    assert refused == {f: [] for f in run}, "calls the function's role does not allow"
    performed = {f: {c.action for c in calls} for f, calls in run.items()}
    assert performed == {f: iam.granted_actions(f) for f in run}, "granted actions no call needed"
    # The secret is read by its full ARN, which the role's "<name>-??????" pattern covers.
    assert all(
        c.resource.rsplit(":", 1)[-1].startswith(service.secret_name + "-")
        for calls in run.values()
        for c in calls
        if c.action == "secretsmanager:GetSecretValue"
    )
