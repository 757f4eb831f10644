"""The state a sample event in events/ needs before its function gives the expected answer.

Events are static files, so the values they carry are fixed here and told to the WeChat simulator
(which accepts chosen values for tickets and codes) before the event is invoked. Each step runs
the real functions where it can: the ticket and the authorization are stored by invoking the
sample pushes, not by writing the table.

Used by the in-process check (tests/integration/test_events_files.py), the ``sam local`` tests
(tests/e2e) and ``scripts/seed_events.py`` (against ``make local``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests

SAMPLE_TICKET = "ticket@@@sample-ticket-for-local-runs"
SAMPLE_MINI_PROGRAM = "wx5a3e1c9b7d2f4e60"
SAMPLE_AUTHORIZATION_CODE = "queryauthcode@@@sample-authorization-for-local-runs"
SAMPLE_JS_CODE = "sample-jscode-for-local-runs-0001"

# name of an event file -> the function's answer to it
Invoke = Callable[[str], dict[str, Any]]


def _sim(simulator_url: str, path: str, body: dict[str, Any], ok: tuple[int, ...] = (200, 201)) -> None:
    answer = requests.post(simulator_url + path, json=body, timeout=30)
    assert answer.status_code in ok, f"{path}: {answer.status_code} {answer.text}"


def ticket(simulator_url: str, invoke: Invoke) -> None:
    """WeChat knows the sample ticket, and the callback stored it from the sample push."""
    _sim(simulator_url, "/__sim/tickets", {"ticket": SAMPLE_TICKET})
    answer = invoke("callback-ticket-push.json")
    assert (answer.get("statusCode"), answer.get("body")) == (200, "success"), answer


def authorization_code(simulator_url: str, invoke: Invoke) -> None:
    """The sample Mini Program exists at WeChat and approved: the sample code is fresh."""
    _sim(simulator_url, "/__sim/accounts", {"kind": "mini_program", "appid": SAMPLE_MINI_PROGRAM}, (201, 409))
    code = {"appid": SAMPLE_MINI_PROGRAM, "code": SAMPLE_AUTHORIZATION_CODE}
    _sim(simulator_url, "/__sim/query_auth_code", code)


def authorization(simulator_url: str, invoke: Invoke) -> None:
    """The sample Mini Program authorized the platform, through the sample `authorized` push."""
    authorization_code(simulator_url, invoke)
    answer = invoke("callback-authorized-push.json")
    assert (answer.get("statusCode"), answer.get("body")) == (200, "success"), answer


def login_code(simulator_url: str, invoke: Invoke) -> None:
    """A fresh wx.login code with the sample value, for the sample login."""
    _sim(simulator_url, "/__sim/wxlogin", {"appid": SAMPLE_MINI_PROGRAM, "code": SAMPLE_JS_CODE})


STEPS: dict[str, Callable[[str, Invoke], None]] = {
    "ticket": ticket,
    "authorization_code": authorization_code,
    "authorization": authorization,
    "login_code": login_code,
}


def invoke_in_process(name: str) -> dict[str, Any]:
    """The function of events/<name> (per expected.json), called in this process with the file."""
    import json

    from tests.support.lambdas import LambdaContext, load_function
    from tests.support.template import ROOT, template

    function = json.loads((ROOT / "events/expected.json").read_text("utf-8"))[name]["function"]
    code_uri = template()["Resources"][function]["Properties"]["CodeUri"]
    event = json.loads((ROOT / "events" / name).read_text("utf-8"))
    answer: dict[str, Any] = load_function(code_uri).lambda_handler(
        event, LambdaContext(function_name=function)
    )
    return answer


def prepare(steps: list[str], simulator_url: str, invoke: Invoke) -> None:
    for step in steps:
        STEPS[step](simulator_url, invoke)


def check_answer(spec: dict[str, Any], answer: dict[str, Any]) -> None:
    """The answer matches expected.json: ``expect`` (top-level fields, exactly), ``body`` (fields
    of the JSON body, exactly) and ``body_keys`` (the JSON body's field names, exactly)."""
    import json

    assert {k: answer.get(k) for k in spec["expect"]} == spec["expect"], answer
    if "body" in spec or "body_keys" in spec:
        body = json.loads(answer["body"])
        if "body" in spec:
            assert {k: body.get(k) for k in spec["body"]} == spec["body"], body
        if "body_keys" in spec:
            assert sorted(body) == sorted(spec["body_keys"]), body
