"""Mini Program code management through the simulator over real HTTP: the template library
(drafts, addtotemplate, gettemplatelist, deletetemplate), commit and its checks, submit_audit
(85086, 85009, the 85085 quota, the 61007 permission knob), each audit outcome pushed as WeChat's
event to the message URL (a loopback receiver checks signatures and decrypts with
wechat_core.protocol), the lost outcome, re-sends, get_latest_auditstatus, release's rules, the
per-account call counts, faults and limits by API name, domains and privacy settings."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from wechat_core.protocol.crypto import MessageCrypto
from wechat_core.protocol.messages import parse_envelope, parse_xml
from wechat_simulator import Platform, SimError, Simulator
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

pytestmark = pytest.mark.integration

WXA = "/wxa/"
COMPONENT = "/cgi-bin/component/"
MESSAGES_PREFIX = "/wechat/authorizers/"


# --- a loopback message URL ------------------------------------------------------------------


@dataclass
class Delivery:
    appid: str  # from the URL path ($APPID$ replaced)
    query: dict[str, str]
    to_user_name: str | None  # the envelope's
    fields: dict[str, Any]  # the decrypted plaintext's


class MessageReceiver:
    """The platform's message URL: checks both signatures, decrypts with the component appid,
    keeps every delivery and answers ``status`` (200 ``success`` by default)."""

    def __init__(self, platform: Platform) -> None:
        self.crypto = MessageCrypto(platform.token, platform.encoding_aes_key, platform.appid)
        self.deliveries: list[Delivery] = []
        self.problems: list[str] = []
        self.status = 200
        self._lock = threading.Lock()
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}{MESSAGES_PREFIX}$APPID$/messages"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        try:
            args = dict(request.args)
            envelope = parse_envelope(request.get_data())
            assert request.headers["Content-Type"] == "text/xml"
            assert args["encrypt_type"] == "aes"
            self.crypto.check_url_signature(args["signature"], args["timestamp"], args["nonce"])
            self.crypto.check_msg_signature(
                args["msg_signature"], args["timestamp"], args["nonce"], envelope.encrypt
            )
            fields = parse_xml(self.crypto.decrypt(envelope.encrypt))
            appid = request.path[len(MESSAGES_PREFIX) : -len("/messages")]
            with self._lock:
                self.deliveries.append(Delivery(appid, args, envelope.to_user_name, fields))
        except Exception as exc:
            self.problems.append(f"{type(exc).__name__}: {exc}")
            return Response("refused", status=400)(environ, start_response)
        return Response("success", status=self.status)(environ, start_response)

    def of(self, appid: str) -> list[Delivery]:
        return [d for d in self.deliveries if d.appid == appid]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver(simulator: Simulator, platform: Platform) -> Iterator[MessageReceiver]:
    received = MessageReceiver(platform)
    simulator.message_url = received.url
    yield received
    received.stop()
    assert not received.problems


@pytest.fixture
def token(simulator: Simulator) -> str:
    return simulator.issue_component_token()


# --- helpers ---------------------------------------------------------------------------------


def api(
    sim: Simulator,
    method: str,
    path: str,
    access_token: str | None,
    body: Any = None,
    *,
    raw: bytes | None = None,
    **params: str,
) -> dict[str, Any]:
    """Call a WeChat API of the simulator; ``body`` as JSON, or ``raw`` bytes (b"" for none)."""
    query = ({"access_token": access_token} if access_token is not None else {}) | params
    url = sim.url + (path if path.startswith("/") else WXA + path)
    if raw is not None:
        response = requests.request(method, url, params=query, data=raw, timeout=10)
    elif body is not None:
        response = requests.request(method, url, params=query, json=body, timeout=10)
    else:
        response = requests.request(method, url, params=query, timeout=10)
    assert response.status_code == 200
    answer: dict[str, Any] = response.json()
    return answer


def errcode(answer: dict[str, Any]) -> int:
    return int(answer.get("errcode", 0))


def authorized(sim: Simulator, kind: str = "mini_program", **options: Any) -> str:
    appid = str(sim.add_account(kind, **options)["appid"])
    sim.query_auth_code(appid)
    return appid


def access_token(sim: Simulator, appid: str) -> str:
    """An authorizer_access_token through api_query_auth, as a service gets one."""
    code = sim.query_auth_code(appid)
    response = requests.post(
        sim.url + COMPONENT + "api_query_auth",
        params={"component_access_token": sim.issue_component_token()},
        json={"component_appid": sim.state.platform.appid, "authorization_code": code},
        timeout=10,
    )
    return str(response.json()["authorization_info"]["authorizer_access_token"])


def ext_json(appid: str, **extra: Any) -> str:
    return json.dumps({"extEnable": True, "extAppid": appid, "ext": {"shop": "s1"}, **extra})


def commit_body(template_id: int, appid: str, version: str = "1.0.0") -> dict[str, Any]:
    return {
        "template_id": template_id,
        "ext_json": ext_json(appid),
        "user_version": version,
        "user_desc": "v",
    }


@dataclass
class MiniProgram:
    appid: str
    token: str


def ready(sim: Simulator, template_id: int, *, commit: bool = True) -> MiniProgram:
    """An authorized Mini Program with a token and (by default) the template committed."""
    appid = authorized(sim)
    mp = MiniProgram(appid, access_token(sim, appid))
    if commit:
        assert errcode(api(sim, "POST", "commit", mp.token, commit_body(template_id, appid))) == 0
    return mp


def submit(sim: Simulator, mp: MiniProgram, body: dict[str, Any] | None = None) -> dict[str, Any]:
    return api(sim, "POST", "submit_audit", mp.token, body if body is not None else {"version_desc": "v"})


def latest(sim: Simulator, mp: MiniProgram) -> dict[str, Any]:
    return api(sim, "GET", "get_latest_auditstatus", mp.token)


def release(sim: Simulator, mp: MiniProgram) -> dict[str, Any]:
    return api(sim, "POST", "release", mp.token, {})


@pytest.fixture
def template_id(simulator: Simulator) -> int:
    return int(simulator.add_template(user_version="2.3.0", user_desc="shop template")["template_id"])


# --- the template library --------------------------------------------------------------------


def test_drafts_become_templates_and_templates_can_be_deleted(simulator: Simulator, token: str) -> None:
    assert api(simulator, "GET", "gettemplatedraftlist", token) == {
        "errcode": 0,
        "errmsg": "ok",
        "draft_list": [],
    }
    created = requests.post(
        simulator.url + "/__sim/drafts", json={"user_version": "1.2.0", "user_desc": "first"}, timeout=10
    )
    assert created.status_code == 201
    draft = created.json()
    [listed] = api(simulator, "GET", "gettemplatedraftlist", token)["draft_list"]
    assert listed == draft
    assert set(listed) == {
        "create_time",
        "user_version",
        "user_desc",
        "draft_id",
        "source_miniprogram_appid",
        "source_miniprogram",
        "developer",
    }
    assert (listed["user_version"], listed["user_desc"]) == ("1.2.0", "first")

    added = api(simulator, "POST", "addtotemplate", token, {"draft_id": draft["draft_id"]})
    assert added == {"errcode": 0, "errmsg": "ok"}
    standard = api(
        simulator, "POST", "addtotemplate", token, {"draft_id": str(draft["draft_id"]), "template_type": 1}
    )
    assert errcode(standard) == 0
    templates = api(simulator, "GET", "gettemplatelist", token)["template_list"]
    assert [t["template_type"] for t in templates] == [0, 1]
    ordinary = templates[0]
    assert ordinary["user_version"] == "1.2.0"
    assert ordinary["source_miniprogram_appid"] == draft["source_miniprogram_appid"]
    assert {"create_time", "user_desc", "template_id", "source_miniprogram", "developer"} <= set(ordinary)
    only_standard = api(simulator, "GET", "gettemplatelist", token, template_type="1")["template_list"]
    assert [t["template_id"] for t in only_standard] == [templates[1]["template_id"]]
    assert errcode(api(simulator, "GET", "gettemplatelist", token, template_type="7")) == 40097
    # The shortcut: a draft added at once.
    shortcut = simulator.add_template(user_version="9.0.0", template_type=1)
    assert shortcut in api(simulator, "GET", "gettemplatelist", token)["template_list"]

    deleted = api(simulator, "POST", "deletetemplate", token, {"template_id": ordinary["template_id"]})
    assert deleted == {"errcode": 0, "errmsg": "ok"}
    remaining = [t["template_id"] for t in api(simulator, "GET", "gettemplatelist", token)["template_list"]]
    assert ordinary["template_id"] not in remaining
    # Unknown ids: 85064 (a draft id is no template id, and the other way round).
    assert (
        errcode(api(simulator, "POST", "deletetemplate", token, {"template_id": ordinary["template_id"]}))
        == 85064
    )
    assert (
        errcode(api(simulator, "POST", "deletetemplate", token, {"template_id": draft["draft_id"]})) == 85064
    )
    assert (
        errcode(api(simulator, "POST", "addtotemplate", token, {"draft_id": shortcut["template_id"]}))
        == 85064
    )
    assert (
        errcode(
            api(
                simulator, "POST", "addtotemplate", token, {"draft_id": draft["draft_id"], "template_type": 2}
            )
        )
        == 40097
    )
    assert errcode(api(simulator, "POST", "addtotemplate", token, raw=b"")) == 44002


def test_the_template_apis_check_the_component_token(simulator: Simulator, token: str) -> None:
    mp = ready(simulator, 0, commit=False)
    assert errcode(api(simulator, "GET", "gettemplatelist", None)) == 41001
    assert errcode(api(simulator, "GET", "gettemplatelist", "sim_cat_never")) == 40001
    assert errcode(api(simulator, "GET", "gettemplatedraftlist", mp.token)) == 40001  # an authorizer token
    assert errcode(api(simulator, "POST", "addtotemplate", None, raw=b"")) == 41001  # before 44002
    # component_access_token= works as well as access_token=.
    both = requests.get(
        simulator.url + WXA + "gettemplatelist", params={"component_access_token": token}, timeout=10
    )
    assert both.json()["errcode"] == 0
    simulator.issue_component_token()
    simulator.advance_clock(301)  # the superseded token's grace is over
    assert errcode(api(simulator, "GET", "gettemplatelist", token)) == 42001


def test_the_library_holds_200_templates(simulator: Simulator, token: str) -> None:
    for _ in range(200):
        simulator.add_template()
    draft = simulator.add_draft()
    assert errcode(api(simulator, "POST", "addtotemplate", token, {"draft_id": draft["draft_id"]})) == 85065
    full = requests.post(simulator.url + "/__sim/templates", json={}, timeout=10)
    assert (full.status_code, full.json()["error"]) == (409, "template_library_full")
    first = api(simulator, "GET", "gettemplatelist", token)["template_list"][0]
    api(simulator, "POST", "deletetemplate", token, {"template_id": first["template_id"]})
    assert errcode(api(simulator, "POST", "addtotemplate", token, {"draft_id": draft["draft_id"]})) == 0


# --- commit ----------------------------------------------------------------------------------


def test_commit_checks_its_body(simulator: Simulator, template_id: int) -> None:
    mp = ready(simulator, template_id, commit=False)
    other = authorized(simulator)
    good = commit_body(template_id, mp.appid)

    def commit(**change: Any) -> int:
        body = {k: v for k, v in (good | change).items() if v is not None}
        return errcode(api(simulator, "POST", "commit", mp.token, body))

    assert commit(template_id=template_id + 1000) == 85014
    assert commit(template_id=None) == 85014
    assert commit(ext_json={"extAppid": mp.appid}) == 47001  # an object, not a string
    assert commit(ext_json=None) == 47001
    assert commit(ext_json="{not json") == 85048
    assert commit(ext_json="[1, 2]") == 85048
    assert commit(ext_json=json.dumps({"ext": {}})) == 85013  # no extAppid
    assert commit(ext_json=ext_json(other)) == 85013  # another Mini Program's
    assert commit(user_version="1" * 65) == 40097
    assert commit(user_version="") == 40097
    assert commit(user_version=None) == 40097
    assert commit(user_desc=None) == 40097
    assert errcode(api(simulator, "POST", "commit", mp.token, raw=b"")) == 44002
    assert simulator.code_state(mp.appid)["dev"] is None
    assert simulator.code_state(mp.appid)["commits"] == []

    assert commit(user_version="v" * 64, template_id=str(template_id)) == 0
    assert commit(user_version="1.0.1") == 0
    state = simulator.code_state(mp.appid)
    assert [c["user_version"] for c in state["commits"]] == ["v" * 64, "1.0.1"]
    dev = state["dev"]
    assert dev["template_id"] == template_id
    assert dev["ext_json"] == json.loads(good["ext_json"])  # kept parsed
    assert (dev["user_version"], dev["user_desc"]) == ("1.0.1", "v")
    assert dev["committed_at"] > 0


# --- submit_audit and the audit's status -----------------------------------------------------


def test_submit_needs_a_commit_and_one_audit_at_a_time(simulator: Simulator, template_id: int) -> None:
    mp = ready(simulator, template_id, commit=False)
    assert errcode(latest(simulator, mp)) == 85058  # no audit ever
    assert errcode(submit(simulator, mp)) == 85086
    api(simulator, "POST", "commit", mp.token, commit_body(template_id, mp.appid, "3.1.4"))
    answer = submit(simulator, mp, {"item_list": [{"address": "pages/index/index", "tag": "shop"}]})
    assert (answer["errcode"], answer["errmsg"]) == (0, "ok")
    auditid = answer["auditid"]
    assert isinstance(auditid, int)
    status = latest(simulator, mp)
    assert status["auditid"] == auditid
    assert status["status"] == 2  # auditing
    assert (status["user_version"], status["user_desc"], status["reason"], status["ScreenShot"]) == (
        "3.1.4",
        "v",
        "",
        "",
    )
    assert isinstance(status["submit_audit_time"], int)
    assert errcode(submit(simulator, mp)) == 85009  # already auditing
    assert errcode(api(simulator, "POST", "submit_audit", mp.token, raw=b"")) == 44002

    one = api(simulator, "POST", "get_auditstatus", mp.token, {"auditid": auditid})
    assert (one["errcode"], one["status"], one["reason"], one["screenshot"]) == (0, 2, "", "")
    other = ready(simulator, template_id)
    assert errcode(api(simulator, "POST", "get_auditstatus", other.token, {"auditid": auditid})) == 85012
    assert errcode(submit(simulator, other, {"item_list": [{}] * 6})) == 85023
    assert simulator.code_state(mp.appid)["audits"][0]["request"]["item_list"][0]["tag"] == "shop"


def test_the_code_permission_set_is_a_knob(simulator: Simulator, template_id: int) -> None:
    mp = ready(simulator, template_id, commit=False)
    assert 18 in simulator.account(mp.appid)["func_info"]
    withheld = requests.post(
        simulator.url + f"/__sim/accounts/{mp.appid}/code_permission", json={"granted": False}, timeout=10
    )
    assert withheld.json()["granted"] is False
    assert 18 not in simulator.account(mp.appid)["func_info"]
    for method, path in [
        ("POST", "commit"),
        ("POST", "submit_audit"),
        ("GET", "get_latest_auditstatus"),
        ("POST", "release"),
    ]:
        answer = api(
            simulator,
            method,
            path,
            mp.token,
            commit_body(template_id, mp.appid) if method == "POST" else None,
        )
        assert errcode(answer) == 61007, path
    assert errcode(api(simulator, "POST", "release", mp.token, raw=b"")) == 61007  # before 44002
    # Re-authorizing does not bring it back: the owner leaves it unticked.
    token = access_token(simulator, mp.appid)
    assert errcode(api(simulator, "POST", "commit", token, commit_body(template_id, mp.appid))) == 61007
    simulator.set_code_permission(mp.appid, True)
    assert 18 in simulator.account(mp.appid)["func_info"]
    assert errcode(api(simulator, "POST", "commit", token, commit_body(template_id, mp.appid))) == 0
    # An Official Account never has it.
    official = authorized(simulator, "official_account")
    assert (
        errcode(api(simulator, "GET", "get_latest_auditstatus", access_token(simulator, official))) == 61007
    )


def test_the_authorizer_token_is_checked_first(simulator: Simulator, template_id: int, token: str) -> None:
    mp = ready(simulator, template_id)
    assert errcode(api(simulator, "POST", "commit", None, {})) == 41001
    assert errcode(api(simulator, "POST", "commit", token, {})) == 40001  # a component token
    assert errcode(api(simulator, "GET", "get_latest_auditstatus", "sim_aat_unknown")) == 40001
    simulator.revoke(mp.appid, push=False)
    assert errcode(api(simulator, "POST", "submit_audit", mp.token, {})) == 40001


def test_the_monthly_submit_quota(simulator: Simulator, template_id: int) -> None:
    first, second = ready(simulator, template_id), ready(simulator, template_id)
    quota = requests.post(simulator.url + "/__sim/audit_quota", json={"limit": 1}, timeout=10).json()
    assert quota == {"limit": 1, "used": 0}
    assert errcode(submit(simulator, first)) == 0
    assert errcode(submit(simulator, second)) == 85085
    assert requests.get(simulator.url + "/__sim/audit_quota", timeout=10).json() == {"limit": 1, "used": 1}
    assert simulator.set_audit_quota(None) == {"limit": None, "used": 0}
    assert errcode(submit(simulator, second)) == 0


# --- outcomes pushed to the message URL ------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "status", "event", "fields"),
    [
        ("success", 0, "weapp_audit_success", {"SuccTime"}),
        ("fail", 1, "weapp_audit_fail", {"Reason", "FailTime", "ScreenShot"}),
        ("delay", 4, "weapp_audit_delay", {"Reason", "DelayTime"}),
    ],
)
def test_each_outcome_is_pushed_as_wechat_pushes_it(
    simulator: Simulator,
    receiver: MessageReceiver,
    template_id: int,
    outcome: str,
    status: int,
    event: str,
    fields: set[str],
) -> None:
    mp = ready(simulator, template_id)
    auditid = submit(simulator, mp)["auditid"]
    reason = None if outcome == "success" else f"{outcome}: 类目不符"
    simulator.set_audit_outcome(mp.appid, outcome, reason)
    [finished] = simulator.finish_audits()
    assert finished["appid"] == mp.appid
    assert finished["auditid"] == auditid
    assert (finished["outcome"], finished["status"], finished["event"]) == (outcome, status, event)
    assert finished["http_status"] == 200
    assert finished["skipped"] is None
    assert finished["delivery"]["body"] == "success"

    [delivery] = receiver.of(mp.appid)
    user_name = simulator.account(mp.appid)["user_name"]
    assert delivery.to_user_name == user_name
    pushed = delivery.fields
    assert set(pushed) == {"ToUserName", "FromUserName", "CreateTime", "MsgType", "Event"} | fields
    assert pushed["ToUserName"] == user_name
    assert pushed["FromUserName"].startswith("o")
    assert pushed["FromUserName"] == delivery.query["openid"]
    assert (pushed["MsgType"], pushed["Event"]) == ("event", event)
    answer = latest(simulator, mp)
    assert (answer["auditid"], answer["status"]) == (auditid, status)
    if outcome == "fail":
        assert pushed["Reason"] == answer["reason"] == reason
        assert pushed["ScreenShot"] == answer["ScreenShot"]
        assert len(pushed["ScreenShot"].split("|")) == 2
        assert int(pushed["FailTime"]) >= int(pushed["CreateTime"])
    elif outcome == "delay":
        assert pushed["Reason"] == answer["reason"] == reason
        assert answer["ScreenShot"] == ""
    else:
        assert int(pushed["SuccTime"]) == int(pushed["CreateTime"])
        assert (answer["reason"], answer["ScreenShot"]) == ("", "")
    outcomes = simulator.code_state(mp.appid)["audits"][0]["outcomes"]
    assert [(o["outcome"], o["event"], o["http_status"]) for o in outcomes] == [(outcome, event, 200)]


def test_a_delayed_audit_stays_pending_until_finished_again(
    simulator: Simulator, receiver: MessageReceiver, template_id: int
) -> None:
    mp = ready(simulator, template_id)
    auditid = submit(simulator, mp)["auditid"]
    simulator.set_audit_outcome(mp.appid, "delay")
    simulator.finish_audits(mp.appid)
    assert latest(simulator, mp)["reason"] == "simulated delay"
    assert errcode(submit(simulator, mp)) == 85009  # still under audit
    assert errcode(release(simulator, mp)) == 85020
    simulator.set_audit_outcome(mp.appid, "success")
    [finished] = simulator.finish_audits(mp.appid)
    assert (finished["auditid"], finished["status"]) == (auditid, 0)
    assert [d.fields["Event"] for d in receiver.of(mp.appid)] == ["weapp_audit_delay", "weapp_audit_success"]
    assert simulator.finish_audits() == []  # nothing pending any more


def test_a_lost_outcome_is_decided_but_never_pushed(
    simulator: Simulator, receiver: MessageReceiver, template_id: int
) -> None:
    mp = ready(simulator, template_id)
    submit(simulator, mp)
    simulator.set_audit_outcome(mp.appid, "lost")
    [finished] = simulator.finish_audits()
    assert (finished["status"], finished["event"], finished["skipped"], finished["http_status"]) == (
        0,
        None,
        "lost",
        None,
    )
    assert receiver.deliveries == []
    assert latest(simulator, mp)["status"] == 0  # the service finds out by polling
    assert release(simulator, mp) == {"errcode": 0, "errmsg": "ok"}
    with pytest.raises(SimError) as nothing:
        simulator.resend_audit_event(mp.appid)
    assert nothing.value.reason == "no_audit_event"


def test_finish_one_account_or_all_over_http(
    simulator: Simulator, receiver: MessageReceiver, template_id: int
) -> None:
    mps = [ready(simulator, template_id) for _ in range(4)]
    for mp in mps:
        submit(simulator, mp)
    set_fail = requests.post(
        simulator.url + f"/__sim/accounts/{mps[1].appid}/audit_outcome",
        json={"outcome": "fail", "reason": "no"},
        timeout=10,
    )
    assert set_fail.json() == {"appid": mps[1].appid, "outcome": "fail", "reason": "no"}
    one = requests.post(
        simulator.url + "/__sim/audits/finish", json={"appid": mps[0].appid}, timeout=10
    ).json()
    assert [f["appid"] for f in one] == [mps[0].appid]
    rest = requests.post(simulator.url + "/__sim/audits/finish", json={"workers": 3}, timeout=10).json()
    assert [f["appid"] for f in rest] == [mp.appid for mp in mps[1:]]  # in the order submitted
    assert [f["event"] for f in rest] == ["weapp_audit_fail", "weapp_audit_success", "weapp_audit_success"]
    assert all(f["http_status"] == 200 for f in rest)
    assert sorted(d.appid for d in receiver.deliveries) == sorted(mp.appid for mp in mps)
    bad = requests.post(simulator.url + "/__sim/audits/finish", json={"workers": 0}, timeout=10)
    assert (bad.status_code, bad.json()["error"]) == (400, "invalid_workers")


def test_the_service_answer_is_reported_and_the_event_can_be_resent(
    simulator: Simulator, receiver: MessageReceiver, template_id: int
) -> None:
    mp = ready(simulator, template_id)
    submit(simulator, mp)
    receiver.status = 500
    [finished] = simulator.finish_audits()
    assert finished["http_status"] == 500
    receiver.status = 200
    resent = requests.post(
        simulator.url + f"/__sim/accounts/{mp.appid}/audit_event/resend", timeout=10
    ).json()
    assert (resent["status"], resent["attempt"], resent["event"]) == (200, 2, "weapp_audit_success")
    first, second = receiver.of(mp.appid)
    assert first.fields == second.fields  # the very same plaintext: a duplicate to recognise
    assert (
        first.query["nonce"] != second.query["nonce"] or first.query["timestamp"] != second.query["timestamp"]
    )


def test_no_message_url_changes_nothing(simulator: Simulator, template_id: int) -> None:
    mp = ready(simulator, template_id)
    submit(simulator, mp)
    with pytest.raises(SimError) as refused:
        simulator.finish_audits()
    assert refused.value.reason == "no_message_url"
    assert latest(simulator, mp)["status"] == 2
    simulator.set_audit_outcome(mp.appid, "lost")  # nothing to push: no URL needed
    assert simulator.finish_audits()[0]["status"] == 0


def test_a_revoked_account_is_audited_but_not_pushed(
    simulator: Simulator, receiver: MessageReceiver, template_id: int
) -> None:
    mp = ready(simulator, template_id)
    submit(simulator, mp)
    simulator.revoke(mp.appid, push=False)
    [finished] = simulator.finish_audits()
    assert (finished["status"], finished["skipped"], finished["event"]) == (0, "not_authorized", None)
    assert receiver.deliveries == []


# --- release ---------------------------------------------------------------------------------


def test_release_rules(simulator: Simulator, receiver: MessageReceiver, template_id: int) -> None:
    mp = ready(simulator, template_id)
    assert errcode(release(simulator, mp)) == 85019  # no audit yet
    submit(simulator, mp)
    assert errcode(api(simulator, "POST", "release", mp.token, raw=b"")) == 44002  # {} is required
    assert errcode(release(simulator, mp)) == 85020  # auditing
    simulator.set_audit_outcome(mp.appid, "fail")
    simulator.finish_audits()
    assert errcode(release(simulator, mp)) == 85019  # rejected
    api(simulator, "POST", "commit", mp.token, commit_body(template_id, mp.appid, "1.0.1"))
    submit(simulator, mp)
    simulator.set_audit_outcome(mp.appid, "success")
    simulator.finish_audits()
    assert api(simulator, "POST", "release", mp.token, raw=b"{}") == {"errcode": 0, "errmsg": "ok"}
    assert errcode(release(simulator, mp)) == 85052  # already released
    state = simulator.code_state(mp.appid)
    released = state["release"]
    assert (released["template_id"], released["user_version"]) == (template_id, "1.0.1")
    assert released["released_at"] > 0
    assert released["auditid"] == state["latest_audit"]["auditid"]
    assert state["latest_audit"]["released"] is True
    assert len(state["releases"]) == 1


# --- calls, faults, limits -------------------------------------------------------------------


def test_calls_are_counted_per_account_and_faults_apply_by_name(
    simulator: Simulator, receiver: MessageReceiver, template_id: int
) -> None:
    mp, other = ready(simulator, template_id), ready(simulator, template_id)
    simulator.add_fault("submit_audit", errcode=45011)
    assert errcode(submit(simulator, mp)) == 45011  # instead of the work: no audit
    assert simulator.code_state(mp.appid)["audits"] == []
    assert errcode(submit(simulator, mp)) == 0
    simulator.finish_audits()
    simulator.add_fault("release", after_effect=True)  # released, but the answer is lost
    response = requests.post(
        simulator.url + WXA + "release", params={"access_token": mp.token}, json={}, timeout=10
    )
    assert response.status_code == 502
    assert simulator.code_state(mp.appid)["release"] is not None
    assert errcode(release(simulator, mp)) == 85052  # the retry learns it was done
    simulator.add_fault("release", errcode=45011)
    assert errcode(release(simulator, other)) == 45011
    assert errcode(release(simulator, other)) == 85019
    counts = requests.get(simulator.url + f"/__sim/accounts/{mp.appid}/code_calls", timeout=10).json()
    # The faulted submit never reached WeChat's handler; the after-effect release did.
    assert counts == {"commit": 1, "submit_audit": 1, "release": 2}
    assert simulator.code_calls(other.appid) == {"commit": 1, "release": 1}
    calls = simulator.state.calls
    assert (calls["submit_audit"], calls["release"], calls["commit"]) == (2, 4, 2)

    requests.post(
        simulator.url + "/__sim/limits", json={"api": "get_latest_auditstatus", "daily_limit": 1}, timeout=10
    )
    assert errcode(latest(simulator, mp)) == 0
    assert errcode(latest(simulator, mp)) == 45009


@pytest.mark.parametrize(
    ("method", "api_name"),
    [
        ("GET", "gettemplatedraftlist"),
        ("GET", "gettemplatelist"),
        ("POST", "addtotemplate"),
        ("POST", "deletetemplate"),
        ("POST", "commit"),
        ("POST", "submit_audit"),
        ("GET", "get_latest_auditstatus"),
        ("POST", "get_auditstatus"),
        ("POST", "release"),
        ("POST", "modify_domain"),
        ("POST", "setprivacysetting"),
    ],
)
def test_every_code_api_can_be_faulted_by_name(simulator: Simulator, method: str, api_name: str) -> None:
    simulator.add_fault(api_name, errcode=-1)
    path = COMPONENT + api_name if api_name == "setprivacysetting" else WXA + api_name
    answer = api(simulator, method, path, "whatever", {} if method == "POST" else None)
    assert errcode(answer) == -1
    assert simulator.state.calls[api_name] == 1


# --- domains and privacy settings ------------------------------------------------------------


def test_domains_and_privacy_settings_are_kept(simulator: Simulator, template_id: int, token: str) -> None:
    mp = ready(simulator, template_id, commit=False)
    domains = {"requestdomain": ["https://api.shop.example"], "wsrequestdomain": ["wss://ws.shop.example"]}
    answer = api(simulator, "POST", "modify_domain", mp.token, {"action": "set", **domains})
    assert answer["errcode"] == 0
    assert answer["requestdomain"] == ["https://api.shop.example"]
    assert answer["uploaddomain"] == []
    assert answer["invalid_requestdomain"] == []
    added = api(
        simulator,
        "POST",
        "modify_domain",
        mp.token,
        {"action": "add", "requestdomain": ["https://b.example"]},
    )
    assert added["requestdomain"] == ["https://api.shop.example", "https://b.example"]
    removed = api(
        simulator,
        "POST",
        "modify_domain",
        mp.token,
        {"action": "delete", "requestdomain": ["https://api.shop.example"]},
    )
    assert removed["requestdomain"] == ["https://b.example"]
    got = api(simulator, "POST", "modify_domain", mp.token, {"action": "get"})
    assert (got["requestdomain"], got["wsrequestdomain"]) == (
        ["https://b.example"],
        ["wss://ws.shop.example"],
    )
    assert errcode(api(simulator, "POST", "modify_domain", mp.token, {"action": "replace"})) == 40097
    assert (
        errcode(api(simulator, "POST", "modify_domain", mp.token, {"action": "add", "requestdomain": "x"}))
        == 40097
    )
    info = requests.post(
        simulator.url + COMPONENT + "api_get_authorizer_info",
        params={"component_access_token": token},
        json={"component_appid": simulator.state.platform.appid, "authorizer_appid": mp.appid},
        timeout=10,
    ).json()
    network = info["authorizer_info"]["MiniProgramInfo"]["network"]
    assert (network["RequestDomain"], network["WsRequestDomain"]) == (
        ["https://b.example"],
        ["wss://ws.shop.example"],
    )

    privacy = {
        "owner_setting": {"contact_email": "a@shop.example", "notice_method": "email"},
        "setting_list": [],
    }
    assert api(simulator, "POST", COMPONENT + "setprivacysetting", mp.token, privacy) == {
        "errcode": 0,
        "errmsg": "ok",
    }
    assert errcode(api(simulator, "POST", COMPONENT + "setprivacysetting", mp.token, raw=b"")) == 44002
    state = requests.get(simulator.url + f"/__sim/accounts/{mp.appid}/code", timeout=10).json()
    assert [p["body"] for p in state["privacy_settings"]] == [privacy]
    assert state["domains"]["requestdomain"] == ["https://b.example"]
    assert state["code_permission"] is True


# --- control refusals ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "spec", "status", "reason"),
    [
        ("/__sim/accounts/MP/audit_outcome", {"outcome": "maybe"}, 400, "invalid_outcome"),
        ("/__sim/accounts/MP/audit_outcome", {"outcome": "fail", "reason": 3}, 400, "invalid_reason"),
        ("/__sim/accounts/OA/audit_outcome", {"outcome": "fail"}, 400, "not_a_mini_program"),
        ("/__sim/accounts/wx0000000000000000/audit_outcome", {"outcome": "fail"}, 404, "unknown_account"),
        ("/__sim/accounts/MP/code_permission", {"granted": "no"}, 400, "invalid_granted"),
        ("/__sim/accounts/MP/audit_event/resend", {}, 404, "no_audit_event"),
        ("/__sim/audits/finish", {"appid": "wx0000000000000000"}, 404, "unknown_account"),
        ("/__sim/audits/finish", {"colour": 1}, 400, "unknown_field"),
        ("/__sim/audit_quota", {"limit": -1}, 400, "invalid_limit"),
        ("/__sim/audit_quota", {}, 400, "missing_parameter"),
        ("/__sim/drafts", {"user_version": 1}, 400, "invalid_field"),
        ("/__sim/templates", {"template_type": 2}, 400, "invalid_template_type"),
        ("/__sim/templates", {"colour": 1}, 400, "unknown_field"),
    ],
)
def test_control_refusals(
    simulator: Simulator, route: str, spec: dict[str, Any], status: int, reason: str
) -> None:
    names = {"MP": authorized(simulator), "OA": authorized(simulator, "official_account")}
    for name, appid in names.items():
        route = route.replace(f"/{name}/", f"/{appid}/")
    response = requests.post(simulator.url + route, json=spec, timeout=10)
    assert (response.status_code, response.json()["error"]) == (status, reason)
