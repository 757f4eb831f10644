"""Authorizer tokens over HTTP: one upstream call per lifetime, takeover, rotated refresh tokens never
lost, errors by meaning, the scheduled refresher over the due index, and the token service."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from aws_lambda_powertools import Metrics
from wechat_core import clock, runtime
from wechat_core.errors import LeaseExpired, WeChatRefreshTokenInvalid
from wechat_core.features import refresher, tokens
from wechat_core.features.tokens import AuthorizerToken, AuthorizerUnavailable, ComponentToken
from wechat_core.store import keys
from wechat_simulator import Simulator

from devtools.events import LambdaContext
from devtools.resources import Resources
from tests.conftest import FixedClock
from tests.support import lease_holder
from tests.support.flows import accepted_refresh_tokens, add_fault, authorize, authorizer, calls, give_ticket
from tests.support.gateway import Gateway
from tests.support.lambdas import load_function

pytestmark = pytest.mark.integration


@pytest.fixture
def appid(service: Resources, simulator: Simulator) -> str:
    give_ticket(simulator)
    return authorize(simulator)


def make_due(appid: str, *, expires_in: float = 60) -> None:
    """The stored token expires soon: too soon to hand out, and inside the refresher's horizon."""
    now = clock.now()
    runtime.store().table.update(
        keys.authorizer_sk(appid),
        set_values={"expires_at": now + expires_in, "due_at": now + expires_in - 900},
    )


def rotate_elsewhere(sim: Simulator, appid: str, refresh_token: str) -> None:
    """Another system (a peer library, an old deployment) refreshes the account's token with
    ``refresh_token``, and WeChat rotates it: the one in our table is then refused (61023)."""
    requests.post(
        f"{sim.url}/cgi-bin/component/api_authorizer_token",
        params={"component_access_token": ComponentToken().get()},
        json={
            "component_appid": sim.state.platform.appid,
            "authorizer_appid": appid,
            "authorizer_refresh_token": refresh_token,
        },
        timeout=5,
    ).raise_for_status()


def accepted_access_tokens(sim: Simulator, appid: str) -> set[str]:
    return {str(t["value"]) for t in sim.account(appid)["access_tokens"]}


def test_fifty_concurrent_callers_make_one_authorizer_token_call(appid: str, simulator: Simulator) -> None:
    make_due(appid)
    add_fault(simulator, api="api_authorizer_token", delay=0.5)  # slow, so the others really wait
    barrier = threading.Barrier(50)

    def caller(_: int) -> str:
        barrier.wait()
        return AuthorizerToken(appid).get()

    with ThreadPoolExecutor(max_workers=50) as pool:
        values = set(pool.map(caller, range(50)))
    assert len(values) == 1
    assert calls(simulator, "api_authorizer_token") == 1
    assert values <= accepted_access_tokens(simulator, appid)
    assert authorizer(appid)["access_token"] in values


def test_fresh_token_is_served_without_upstream_calls(appid: str, simulator: Simulator) -> None:
    first = AuthorizerToken(appid).get()
    assert [AuthorizerToken(appid).get() for _ in range(5)] == [first] * 5
    assert calls(simulator, "api_authorizer_token") == 0


@pytest.mark.parametrize("when", ["before-upstream", "after-upstream"])
def test_killed_lease_holder_is_taken_over_and_no_refresh_token_is_lost(
    appid: str, simulator: Simulator, fixed_clock: FixedClock, when: str
) -> None:
    """A refresher dies holding the lease, before calling WeChat or after WeChat rotated the refresh
    token but before our write: the next caller waits out the lease, then refreshes, recovering
    WeChat's current refresh token if it has to."""
    simulator.set_rotation(appid, enabled=True, grace_seconds=0)
    make_due(appid)
    holder = lease_holder.start(f"authorizer:{appid}" + (":fetch" if when == "after-upstream" else ""))
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "LEASED"
    finally:
        holder.kill()
        holder.wait()
    lease = authorizer(appid)
    assert lease["lease_owner"]
    upstream = calls(simulator, "api_authorizer_token")
    assert upstream == (1 if when == "after-upstream" else 0)
    waited = tokens.WAIT_SECONDS
    tokens.WAIT_SECONDS = 0.3
    try:
        with pytest.raises(tokens.TokenBusy):
            AuthorizerToken(appid).get()  # the lease still runs: nobody calls WeChat
    finally:
        tokens.WAIT_SECONDS = waited
    assert calls(simulator, "api_authorizer_token") == upstream
    fixed_clock.value = float(lease["lease_until"]) + 1
    value = AuthorizerToken(appid).get()
    item = authorizer(appid)
    assert value in accepted_access_tokens(simulator, appid)
    assert item["refresh_token"] in accepted_refresh_tokens(simulator, appid)
    assert "lease_owner" not in item
    assert item["status"] == "active"


FAILURES: list[dict[str, Any]] = [
    {"http_status": 502},  # answered, then the gateway failed: our client retries
    {"drop": True},  # the connection closed with no answer
    {"errcode": -1, "times": 3},  # every attempt rotates and fails: retries exhausted
    {"http_status": 503, "times": 3},
    {"drop": True, "times": 2},
]


def test_hundred_rotation_rounds_with_lost_answers_never_lose_the_refresh_token(
    appid: str, simulator: Simulator, fixed_clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rotation on, no grace: an old refresh token dies the moment WeChat issues a new one. Every
    round WeChat rotates and our Lambda does not see (or cannot store) the answer."""
    simulator.set_rotation(appid, enabled=True, grace_seconds=0)
    real_save = tokens.LeasedToken._save
    outcomes: dict[str, int] = {}
    for round_no in range(100):
        make_due(appid)
        kind = round_no % (len(FAILURES) + 1)
        if kind < len(FAILURES):
            spec = FAILURES[kind]
            add_fault(simulator, api="api_authorizer_token", after_effect=True, **({"times": 1} | spec))
        else:
            # WeChat answered, then this Lambda crashed before storing it (the lease stays held).
            def crash(
                self: tokens.LeasedToken, owner: str, values: dict[str, Any], due_at: float | None
            ) -> bool:
                raise SystemExit("killed between WeChat's answer and our write")

            monkeypatch.setattr(tokens.LeasedToken, "_save", crash)
        try:
            AuthorizerToken(appid).get()
            outcome = "served"
        except SystemExit:
            outcome = "crashed"
            monkeypatch.setattr(tokens.LeasedToken, "_save", real_save)
            fixed_clock.advance(tokens.LEASE_SECONDS + 1)  # the dead lease runs out
            AuthorizerToken(appid).get()  # the next caller takes over and recovers
        except Exception as error:
            outcome = type(error).__name__
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        requests.delete(f"{simulator.url}/__sim/faults", timeout=5).raise_for_status()
        item = authorizer(appid)
        assert item["status"] == "active", (round_no, outcome)
        assert item["refresh_token"] in accepted_refresh_tokens(simulator, appid), (round_no, outcome)
        assert "lease_owner" not in item or outcome == "crashed"
    # Every kind of round happened, and the table never needed a re-authorization.
    assert outcomes["served"] >= 40
    assert outcomes["crashed"] == len(range(len(FAILURES), 100, len(FAILURES) + 1))
    assert sum(v for k, v in outcomes.items() if k not in ("served", "crashed")) >= 20
    value = AuthorizerToken(appid).get()
    assert value in accepted_access_tokens(simulator, appid)


def test_61023_marks_needs_reauthorization_and_stops_trying(
    appid: str, simulator: Simulator, capfd: pytest.CaptureFixture[str]
) -> None:
    simulator.revoke(appid, push=False)  # the unauthorized push is lost: we learn it from 61023
    make_due(appid)
    with pytest.raises(WeChatRefreshTokenInvalid):
        AuthorizerToken(appid).get()
    item = authorizer(appid)
    assert item["status"] == "needs_reauth"
    assert item["last_error"] == "61023"
    assert "due_at" not in item  # out of the refresher's index: no retry storm
    assert "lease_owner" not in item
    assert calls(simulator, "api_authorizer_token") == 1
    assert calls(simulator, "api_get_authorizer_info") == 2  # at authorization, then the recovery check
    with pytest.raises(AuthorizerUnavailable):
        AuthorizerToken(appid).get()
    report = refresher.run(lambda: 600_000)
    assert (report.due, report.refreshed) == (0, 0)
    assert calls(simulator, "api_authorizer_token") == 1
    Metrics().flush_metrics()
    assert '"AuthorizerNeedsReauthorization":[1.0]' in capfd.readouterr().out.replace(" ", "")


def test_61023_with_a_refresh_token_rotated_elsewhere_recovers(appid: str, simulator: Simulator) -> None:
    """Another system (a peer library, an old deployment) rotated the refresh token: WeChat still
    has the authorization, so its current refresh token is taken from api_get_authorizer_info."""
    simulator.set_rotation(appid, enabled=True, grace_seconds=0)
    old = authorizer(appid)["refresh_token"]
    rotate_elsewhere(simulator, appid, old)
    assert old not in accepted_refresh_tokens(simulator, appid)
    make_due(appid)
    value = AuthorizerToken(appid).get()
    assert value in accepted_access_tokens(simulator, appid)
    assert authorizer(appid)["refresh_token"] in accepted_refresh_tokens(simulator, appid)
    assert authorizer(appid)["status"] == "active"


def test_holder_whose_lease_ran_out_mid_refresh_makes_no_further_call(
    appid: str, simulator: Simulator, fixed_clock: FixedClock
) -> None:
    """WeChat answers the first call (61023, the refresh token was rotated elsewhere) so slowly that
    the holder's lease is over by then: it must not go on to api_get_authorizer_info and a second
    api_authorizer_token, since another caller may have taken over; that caller does the work."""
    simulator.set_rotation(appid, enabled=True, grace_seconds=0)
    rotate_elsewhere(simulator, appid, authorizer(appid)["refresh_token"])
    make_due(appid)
    before = {api: calls(simulator, api) for api in ("api_authorizer_token", "api_get_authorizer_info")}

    def slow_answer(response: requests.Response, **_: Any) -> None:
        if response.url.split("?")[0].endswith("/api_authorizer_token"):
            fixed_clock.advance(tokens.LEASE_SECONDS)  # the answer took the whole lease

    hooks = runtime.wechat().session.hooks["response"]
    hooks.append(slow_answer)
    try:
        with pytest.raises(LeaseExpired):
            AuthorizerToken(appid).get()
    finally:
        hooks.remove(slow_answer)
    assert calls(simulator, "api_authorizer_token") == before["api_authorizer_token"] + 1
    assert calls(simulator, "api_get_authorizer_info") == before["api_get_authorizer_info"]
    item = authorizer(appid)
    assert item["status"] == "active"  # no false 61023 alarm from a holder that gave up
    assert "lease_owner" not in item
    value = AuthorizerToken(appid).get()  # the next caller recovers and refreshes
    assert value in accepted_access_tokens(simulator, appid)
    assert authorizer(appid)["refresh_token"] in accepted_refresh_tokens(simulator, appid)


def test_40001_invalidates_the_stored_component_token_and_retries_once(
    appid: str, simulator: Simulator, service: Resources
) -> None:
    good = ComponentToken().get()
    runtime.store().table.update(
        keys.COMPONENT_TOKEN_SK, set_values={"access_token": "sim_cat_revoked_elsewhere"}
    )
    runtime.token_memo().clear()  # a Lambda that has not read the token yet
    before = calls(simulator, "api_component_token")
    data = runtime.component_api().api_create_preauthcode(ComponentToken())
    assert str(data["pre_auth_code"]).startswith("preauthcode@@@")
    assert calls(simulator, "api_component_token") == before + 1
    assert calls(simulator, "api_create_preauthcode") == 2  # refused once, then the retry
    stored = runtime.store().tokens.read(keys.COMPONENT_TOKEN_SK)
    assert stored is not None
    assert stored["access_token"] not in ("sim_cat_revoked_elsewhere", good)
    assert simulator.state.component_token_valid(stored["access_token"])


def test_a_remembered_token_that_wechat_refuses_is_dropped_and_refreshed_once(
    appid: str, simulator: Simulator
) -> None:
    """This Lambda reuses the component token without reading the table; WeChat meanwhile made a
    new one (someone else fetched it), and the old one's 5-minute grace ran out: 42001."""
    remembered = ComponentToken().get()
    simulator.issue_component_token()
    simulator.advance_clock(301)
    before = calls(simulator, "api_component_token")
    data = runtime.component_api().api_create_preauthcode(ComponentToken())
    assert str(data["pre_auth_code"]).startswith("preauthcode@@@")
    assert calls(simulator, "api_component_token") == before + 1
    assert ComponentToken().get() != remembered


def test_40001_does_not_throw_away_a_newer_token(appid: str, simulator: Simulator) -> None:
    current = ComponentToken().get()
    ComponentToken().invalidate("sim_cat_some_older_token")  # a caller refused with an older one
    stored = runtime.store().tokens.read(keys.COMPONENT_TOKEN_SK)
    assert stored is not None
    assert stored["access_token"] == current
    assert float(stored["expires_at"]) > clock.now() + 3600


# --- the scheduled refresher ------------------------------------------------------------------


def refresher_handler() -> Any:
    return load_function("functions/refresher")


def scheduled_event() -> dict[str, Any]:
    return {
        "version": "0",
        "id": "e2b8a8b0",
        "detail-type": "Scheduled Event",
        "source": "aws.scheduler",
        "detail": {},
    }


def test_refresher_refreshes_only_what_is_due(service: Resources, simulator: Simulator) -> None:
    give_ticket(simulator)
    appids = [authorize(simulator) for _ in range(5)]
    for appid in appids[:2]:
        make_due(appid, expires_in=600)  # due within the 15-minute window, still valid
    report = refresher_handler().lambda_handler(scheduled_event(), LambdaContext(remaining_millis=300_000))
    assert (report["due"], report["refreshed"], report["failed"]) == (2, 2, 0)
    assert calls(simulator, "api_authorizer_token") == 2
    for appid in appids[:2]:
        item = authorizer(appid)
        assert item["access_token"] in accepted_access_tokens(simulator, appid)
        assert item["due_at"] > clock.now() + 3600
    again = refresher_handler().lambda_handler(scheduled_event(), LambdaContext(remaining_millis=300_000))
    assert (again["due"], again["refreshed"]) == (0, 0)
    assert calls(simulator, "api_authorizer_token") == 2


def test_refresher_refreshes_a_due_component_token_first(service: Resources, simulator: Simulator) -> None:
    give_ticket(simulator)
    first = ComponentToken().get()
    runtime.store().table.update(keys.COMPONENT_TOKEN_SK, set_values={"expires_at": clock.now() + 600})
    runtime.token_memo().clear()  # the scheduled run is another Lambda
    report = refresher.run(lambda: 600_000)
    assert report.component == "refreshed"
    second = ComponentToken().get()
    assert second != first
    assert calls(simulator, "api_component_token") == 2
    assert refresher.run(lambda: 600_000).component == "fresh"
    assert calls(simulator, "api_component_token") == 2


def test_one_failing_authorizer_never_stops_the_others(service: Resources, simulator: Simulator) -> None:
    give_ticket(simulator)
    appids = [authorize(simulator) for _ in range(4)]
    for appid in appids:
        make_due(appid, expires_in=600)
    attempts = runtime.settings().wechat_max_attempts
    add_fault(simulator, api="api_authorizer_token", errcode=-1, times=attempts)  # the first one fails
    report = refresher.run(lambda: 600_000, concurrency=1)
    assert (report.due, report.refreshed, report.failed) == (4, 3, 1)
    assert report.errors == {"-1": 1}
    failed = [a for a in appids if authorizer(a).get("last_error") == "-1"]
    assert len(failed) == 1
    item = authorizer(failed[0])
    assert item["failures"] == 1
    assert clock.now() + 30 < item["due_at"] <= item["expires_at"] - 120  # retried later, before expiry
    assert item["refresh_token"] in accepted_refresh_tokens(simulator, failed[0])


@pytest.mark.parametrize("fault", [{"http_status": 500}, {"delay": 1.5}], ids=["http-5xx", "timeout"])
def test_refresher_retries_5xx_and_timeouts_then_moves_on(
    service: Resources, simulator: Simulator, fault: dict[str, Any]
) -> None:
    give_ticket(simulator)
    appids = [authorize(simulator) for _ in range(2)]
    for appid in appids:
        make_due(appid, expires_in=600)
    add_fault(simulator, api="api_authorizer_token", times=1, **fault)  # one bad answer: retried
    report = refresher.run(lambda: 600_000, concurrency=1)
    assert (report.due, report.refreshed, report.failed) == (2, 2, 0)
    assert calls(simulator, "api_authorizer_token") == 3


def test_45009_stops_the_run_and_backs_off(
    service: Resources, simulator: Simulator, capfd: pytest.CaptureFixture[str]
) -> None:
    give_ticket(simulator)
    appids = [authorize(simulator) for _ in range(5)]
    for appid in appids:
        make_due(appid, expires_in=600)
    requests.post(
        f"{simulator.url}/__sim/limits", json={"api": "api_authorizer_token", "daily_limit": 2}, timeout=5
    ).raise_for_status()
    report = refresher.run(lambda: 600_000, concurrency=1)
    assert report.quota_exceeded
    assert (report.refreshed, report.failed) == (2, 1)
    assert calls(simulator, "api_authorizer_token") == 3  # stopped at the first 45009, not 5 calls
    hit = [a for a in appids if authorizer(a).get("last_error") == "45009"]
    assert len(hit) == 1
    assert authorizer(hit[0])["due_at"] > clock.now() + 60
    Metrics().flush_metrics()
    assert '"QuotaExceeded":[1.0]' in capfd.readouterr().out.replace(" ", "")


def test_refresher_stops_before_its_time_runs_out(service: Resources, simulator: Simulator) -> None:
    give_ticket(simulator)
    appids = [authorize(simulator) for _ in range(3)]
    for appid in appids:
        make_due(appid, expires_in=600)
    report = refresher.run(lambda: 10_000, safety_millis=15_000)
    assert report.stopped_early
    assert (report.due, report.refreshed) == (0, 0)
    assert calls(simulator, "api_authorizer_token") == 0
    later = refresher.run(lambda: 600_000)
    assert (later.due, later.refreshed) == (3, 3)


def test_refresher_without_ticket_asks_for_one_and_stops(service: Resources, simulator: Simulator) -> None:
    report = refresher.run(lambda: 600_000)
    assert report.component == "no_ticket"
    assert calls(simulator, "api_start_push_ticket") == 1
    assert calls(simulator, "api_component_token") == 0


# --- the token service (IAM-authorized admin routes) -------------------------------------------


def test_token_service_hands_out_the_current_token_and_refreshes_when_due(
    appid: str, simulator: Simulator, gateway: Gateway
) -> None:
    answer = requests.get(f"{gateway.url}/wechat/authorizers/{appid}/token", timeout=10)
    assert answer.status_code == 200
    body = answer.json()
    assert body["authorizer_appid"] == appid
    assert body["authorizer_access_token"] == authorizer(appid)["access_token"]
    assert 7000 < body["expires_in"] <= 7200
    assert calls(simulator, "api_authorizer_token") == 0
    make_due(appid)
    fresh = requests.get(f"{gateway.url}/wechat/authorizers/{appid}/token", timeout=10).json()
    assert fresh["authorizer_access_token"] != body["authorizer_access_token"]
    assert fresh["authorizer_access_token"] in accepted_access_tokens(simulator, appid)
    assert calls(simulator, "api_authorizer_token") == 1


def test_token_service_reads_the_table_once_per_call(appid: str, gateway: Gateway) -> None:
    """A valid token and its expiry come from one GetItem; nothing else is read or written."""
    requests.get(f"{gateway.url}/wechat/authorizers/{appid}/token", timeout=10).raise_for_status()
    made: list[str] = []

    def count(model: Any, **_: Any) -> None:
        made.append(str(model.name))

    per_call: list[list[str]] = []
    answers: list[dict[str, Any]] = []
    events = runtime.dynamodb().meta.events
    events.register("after-call.dynamodb", count)
    try:
        for _ in range(3):
            made.clear()
            answer = requests.get(f"{gateway.url}/wechat/authorizers/{appid}/token", timeout=10)
            per_call.append(list(made))
            assert answer.status_code == 200, answer.text
            answers.append(answer.json())
    finally:
        events.unregister("after-call.dynamodb", count)
    assert per_call == [["GetItem"]] * 3
    stored = authorizer(appid)
    assert all(a["authorizer_access_token"] == stored["access_token"] for a in answers)
    assert all(a["expires_at"] == int(stored["expires_at"]) for a in answers)


def test_token_service_lists_and_recovers(service: Resources, simulator: Simulator, gateway: Gateway) -> None:
    give_ticket(simulator)
    appids = sorted(authorize(simulator) for _ in range(3))
    first = requests.get(f"{gateway.url}/wechat/authorizers", params={"limit": "2"}, timeout=10).json()
    assert [row["authorizer_appid"] for row in first["authorizers"]] == appids[:2]
    assert first["next"] == appids[1]
    rest = requests.get(
        f"{gateway.url}/wechat/authorizers", params={"limit": "2", "next": first["next"]}, timeout=10
    ).json()
    assert [row["authorizer_appid"] for row in rest["authorizers"]] == appids[2:]
    for row in first["authorizers"] + rest["authorizers"]:
        assert row["status"] == "active"
        assert not {"access_token", "refresh_token", "lease_owner"} & set(row)
    store = runtime.store()
    store.table.update(keys.authorizer_sk(appids[0]), remove=("refresh_token",))
    recovered = requests.post(f"{gateway.url}/wechat/authorizers/recover", timeout=10)
    assert (recovered.status_code, recovered.json()) == (200, {"listed": 3, "restored": 1})
    assert authorizer(appids[0])["refresh_token"] in accepted_refresh_tokens(simulator, appids[0])


@pytest.mark.parametrize(
    ("path", "params", "status", "reason"),
    [
        ("/wechat/authorizers/not-an-appid/token", {}, 400, "appid must be wx + 16 characters"),
        ("/wechat/authorizers/wx0000000000000000/token", {}, 404, "authorizer not found"),
        ("/wechat/authorizers", {"limit": "x"}, 400, "limit must be an integer"),
        ("/wechat/authorizers", {"limit": "501"}, 400, "limit must be between 1 and 500"),
        ("/wechat/authorizers", {"next": "../../x"}, 400, "next must be an appid from a previous page"),
    ],
)
def test_token_service_bad_requests(
    appid: str,
    simulator: Simulator,
    service: Resources,
    gateway: Gateway,
    path: str,
    params: dict[str, str],
    status: int,
    reason: str,
) -> None:
    before = service.snapshot()
    answer = requests.get(gateway.url + path, params=params, timeout=10)
    assert (answer.status_code, answer.json()) == (status, {"error": reason})
    assert service.snapshot() == before
    assert calls(simulator, "api_authorizer_token") == 0


@pytest.mark.parametrize(
    "fault", [{"errcode": 45009}, {"http_status": 502, "times": 3}], ids=["quota", "5xx"]
)
def test_a_due_token_still_valid_is_served_when_its_refresh_fails(
    appid: str, simulator: Simulator, fault: dict[str, Any]
) -> None:
    """WeChat honours a token until it expires: a failed refresh of one that is due (15 minutes
    ahead) but still valid does not make its callers fail meanwhile; the next caller tries again."""
    make_due(appid, expires_in=600)
    stored = authorizer(appid)["access_token"]
    add_fault(simulator, api="api_authorizer_token", **fault)
    tokens.metrics.clear_metrics()
    assert AuthorizerToken(appid).get() == stored
    assert "TokenServedUnrefreshed" in tokens.metrics.metric_set  # flushed by the handler's decorator
    assert authorizer(appid)["access_token"] == stored
    assert "lease_owner" not in authorizer(appid)  # given back: the next caller refreshes
    assert AuthorizerToken(appid).get() != stored
