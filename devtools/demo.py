"""`make demo`: walk through the product in the terminal, against the stack `make local` runs.

Each step drives the real handlers through ``sam local`` and WeChat's side through the simulator,
then shows what happened: the upstream WeChat API calls the functions made (the simulator's
``/__sim/calls``), the items in the table and what was published on the event bus (both read
through moto; the bus through the queue a rule sends it all to). A step runs only when template.yaml
has its route (or scheduled function); the others are listed as not available yet.

    make local     # in one terminal
    make demo      # in another (python -m devtools.demo)
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

from devtools.demo_h5 import h5_jssdk, h5_web_oauth
from devtools.demo_releases import template_release
from devtools.errors import StackError
from devtools.stack_info import DEFAULT_WORK_DIR, STATE_FILE, StackInfo
from devtools.template import has_route, scheduled_functions

TIMEOUT = 60


class Skip(Exception):
    """The step cannot run here (yet); the message says why."""


def mask(value: object) -> str:
    text = str(value)
    return text if len(text) <= 16 else f"{text[:12]}…({len(text)} chars)"


def item_kind(item: dict[str, Any]) -> str:
    pk = str(item.get("pk", {}).get("S", ""))
    sk = str(item.get("sk", {}).get("S", ""))
    if pk.startswith("delivery#"):  # delivery#<component appid>#<kind>#<hash>
        parts = pk.split("#")
        return f"delivery key ({parts[2]})" if len(parts) > 3 else "delivery key"
    named = {"ticket": "component_verify_ticket", "token": "component_access_token"}
    if sk in named:
        return named[sk]
    prefix = sk.split("#", 1)[0]
    named = {
        "authorizer": "authorization",
        "event": "authorization event",
        "oauthstate": "web OAuth state",
        "oauthticket": "web OAuth ticket",
        "release": "release",
        "account": "release account",
        "wxacode": "Mini Program's current release",
    }
    return named.get(prefix, prefix or "other")


@dataclass
class Step:
    title: str
    routes: list[tuple[str, str]] = field(default_factory=list)
    schedule: bool = False
    run: Callable[[Demo], None] | None = None

    def missing(self) -> str | None:
        absent = [f"{m} {p}" for m, p in self.routes if not has_route(m, p)]
        if absent:
            return "needs " + ", ".join(absent) + " in template.yaml"
        if self.schedule and not scheduled_functions():
            return "needs a scheduled function (the refresher) in template.yaml"
        return None


class Demo:
    def __init__(self, info: StackInfo) -> None:
        self.info = info
        self.http = requests.Session()
        self.authorized: dict[str, str] = {}  # kind -> authorizer appid
        self.start_calls = info.simulator_calls()
        self.start_items = Counter(item_kind(i) for i in info.items())

    # --- output --------------------------------------------------------------------------------------

    @staticmethod
    def say(text: str = "", indent: int = 4) -> None:
        print(textwrap.indent(text, " " * indent) if text else "", flush=True)

    mask = staticmethod(mask)

    # --- the simulator and the API ---------------------------------------------------------------------

    def sim(self, method: str, path: str, **body: Any) -> Any:
        answer = self.http.request(method, self.info.simulator_url + path, json=body or None, timeout=TIMEOUT)
        if answer.status_code == 404 and "<" in answer.text[:1]:
            raise Skip(f"the simulator has no {method} {path} yet")
        if answer.status_code >= 400:
            raise RuntimeError(f"simulator {method} {path}: {answer.status_code} {answer.text[:300]}")
        return answer.json()

    def api(
        self, method: str, path: str, *, params: dict[str, str] | None = None, **kw: Any
    ) -> requests.Response:
        return self.http.request(method, self.info.api_url + path, params=params, timeout=TIMEOUT, **kw)

    def hop(self, url: str) -> requests.Response:
        """One step of a browser: GET ``url``, redirects not followed."""
        return self.http.get(url, allow_redirects=False, timeout=TIMEOUT)

    def authorize(self, kind: str, auth_type: str, nick_name: str, *, key: str | None = None) -> str:
        """An account owner opens the platform's authorization link and approves it; returns the appid.
        One account per ``key`` (default: the kind) for the whole demo."""
        key = key or kind
        if key in self.authorized:
            return self.authorized[key]
        account = self.sim("POST", "/__sim/accounts", kind=kind, nick_name=nick_name)
        appid = str(account["appid"])
        self.say(f"the simulator plays the owner of {kind} {appid} ({nick_name})")
        link = self.api(
            "GET", "/wechat/component/authorize", params={"format": "json", "auth_type": auth_type}
        )
        if link.status_code != 200:
            raise RuntimeError(f"GET /wechat/component/authorize: {link.status_code} {link.text[:300]}")
        url = str(link.json()["url"])
        self.say(f"GET /wechat/component/authorize?format=json -> the link: {url[:110]}…")
        page = self.http.get(
            url + "&" + urlencode({"sim_account": appid, "sim_action": "approve"}),
            allow_redirects=False,
            timeout=TIMEOUT,
        )
        if page.status_code == 404:
            raise Skip("the simulator has no authorization page yet")
        if page.status_code != 302:
            reason = page.headers.get("X-Sim-Error", page.text[:200])
            raise RuntimeError(f"the authorization page answered {page.status_code}: {reason}")
        redirect = page.headers["Location"]
        code = parse_qs(urlsplit(redirect).query).get("auth_code", ["?"])[0]
        self.say(f"the owner approves: WeChat redirects to the platform with auth_code {mask(code)}")
        done = self.http.get(redirect, allow_redirects=False, timeout=TIMEOUT)
        self.say(f"GET /wechat/component/authorized -> {done.status_code}")
        if done.status_code >= 400:
            raise RuntimeError(f"/wechat/component/authorized answered {done.status_code}: {done.text[:300]}")
        self.authorized[key] = appid
        return appid

    def authorization_item(self, appid: str) -> dict[str, Any] | None:
        for item in self.info.items():
            if item.get("sk", {}).get("S") == f"authorizer#{appid}":
                return item
        return None

    # --- numbers ---------------------------------------------------------------------------------------

    def run_step(self, number: int, step: Step) -> str:
        print(f"\n[{number}] {step.title}", flush=True)
        why = step.missing()
        if why is not None or step.run is None:
            self.say(f"not available yet ({why or 'no demo for it'}); skipped")
            return "not available yet"
        calls = self.info.simulator_calls()
        items = Counter(item_kind(i) for i in self.info.items())
        try:
            step.run(self)
        except Skip as why_not:
            self.say(f"skipped: {why_not}")
            return "skipped"
        except (requests.RequestException, RuntimeError, KeyError, ValueError) as exc:
            self.say(f"FAILED: {exc}")
            return "failed"
        self.say(self.changes(calls, items))
        return "done"

    def changes(self, calls_before: dict[str, int], items_before: Counter[str]) -> str:
        calls = self.info.simulator_calls()
        items = Counter(item_kind(i) for i in self.info.items())
        made = {k: v - calls_before.get(k, 0) for k, v in calls.items() if v != calls_before.get(k, 0)}
        stored = {k: items[k] - items_before[k] for k in items | items_before if items[k] != items_before[k]}
        upstream = ", ".join(f"{k} x{v}" for k, v in sorted(made.items())) or "none"
        table = ", ".join(f"{k} {v:+d}" for k, v in sorted(stored.items())) or "no change"
        return f"upstream WeChat calls: {upstream}\ntable: {table} (now {sum(items.values())} items)"


# --- the steps ----------------------------------------------------------------------------------------


def ticket_arrives(demo: Demo) -> None:
    info = demo.info
    demo.say("WeChat pushes a component_verify_ticket every 10 minutes; the simulator pushes one now:")
    result = demo.sim("POST", "/__sim/push/ticket")
    demo.say(f"POST {info.callback_url} (signed, AES-encrypted) -> {result['status']} {result['body']!r}")
    item = info.stored_ticket()
    if item is None:
        raise RuntimeError("no ticket in the table")
    stored = item["component_verify_ticket"]["S"]
    same = "the one just pushed" if stored == result["ticket"] else "an older one is kept (newer wins)"
    demo.say(f"stored in {info.table_name}: pk component#{info.component_appid}, sk ticket")
    demo.say(f"  ticket {mask(stored)} ({same}), create_time {item.get('create_time', {}).get('N', '?')}")


def account_authorizes(demo: Demo) -> None:
    appid = demo.authorize("official_account", "1", "Demo Coffee")
    item = demo.authorization_item(appid)
    if item is None:
        raise RuntimeError(f"no authorization for {appid} in the table")
    shown = {k: v for k, v in item.items() if "token" not in k and k not in ("pk", "sk")}
    demo.say(f"authorization stored: sk authorizer#{appid}, attributes {', '.join(sorted(shown))}")
    demo.say("(its refresh and access tokens are stored too; not printed)")


def token_service(demo: Demo) -> None:
    appid = demo.authorized.get("official_account")
    if appid is None:
        raise Skip("needs the authorized account of the step before")
    answer = demo.api("GET", f"/wechat/authorizers/{appid}/token")
    demo.say("a business system asks for the account's access token (IAM-authorized when deployed;")
    demo.say("sam local does not check IAM):")
    demo.say(f"GET /wechat/authorizers/{appid}/token -> {answer.status_code}")
    if answer.status_code != 200:
        raise RuntimeError(answer.text[:300])
    body = answer.json()
    demo.say(json.dumps({k: mask(v) if "token" in k else v for k, v in body.items()}, ensure_ascii=False))


def refresher_runs(demo: Demo) -> None:
    # The refresher by name: template.yaml may schedule other functions too.
    function = "RefresherFunction"
    if function not in scheduled_functions():
        raise Skip(f"template.yaml schedules no {function}")
    demo.say(f"the schedule fires: sam local invoke {function} (a fresh container, ~15 s)")
    report = demo.info.invoke(function, {"source": "aws.scheduler", "detail-type": "Scheduled Event"})
    demo.say(f"report: {json.dumps(report, ensure_ascii=False)[:400]}")


def miniprogram_login(demo: Demo) -> None:
    appid = demo.authorize("mini_program", "2", "Demo Mini Program")
    code = demo.sim("POST", "/__sim/wxlogin", appid=appid)["code"]
    demo.say(f"a user opens the Mini Program; wx.login() gives code {mask(code)}")
    answer = demo.api("POST", f"/wechat/miniprogram/{appid}/login", json={"code": code})
    demo.say(f"POST /wechat/miniprogram/{appid}/login -> {answer.status_code}")
    if answer.status_code != 200:
        raise RuntimeError(answer.text[:300])
    body = answer.json()
    demo.say(json.dumps({k: mask(v) if "token" in k else v for k, v in body.items()}, ensure_ascii=False))
    if "session_key" in answer.text:
        raise RuntimeError("the answer contains the session_key")
    demo.say("the session_key stays on the server")


def fan_message(demo: Demo) -> None:
    info = demo.info
    if not info.queue_url:
        raise Skip("this local stack has no event bus queue: restart `make local`")
    appid = demo.authorize("official_account", "1", "Demo Coffee")
    earlier = info.published()
    if earlier:
        demo.say(f"({len(earlier)} earlier event(s) taken from the queue first)")
    demo.say(f"a fan writes to {appid}; WeChat delivers it to the account's message URL:")
    sent = demo.sim(
        "POST", "/__sim/messages", appid=appid, msg_type="text", fields={"Content": "One flat white, please"}
    )
    demo.say(f"POST {sent['url']} (signed, AES-encrypted) -> {sent['status']} {sent['body']!r}")
    if sent["status"] != 200:
        raise RuntimeError(f"the message URL answered {sent['status']}: {sent.get('error') or sent['body']}")
    published = info.published()
    demo.say(f"on event bus {info.bus_name}; the queue subscribed to it received {len(published)} event(s):")
    for event in published:
        demo.say(json.dumps(event, indent=2, ensure_ascii=False), indent=6)
    if len(published) != 1:
        raise RuntimeError(f"expected the message once on the bus, got {len(published)} events")
    again = demo.sim("POST", "/__sim/messages", resend_of=sent["id"])
    demo.say(f"WeChat re-sends it (same MsgId) -> {again['status']} {again['body']!r}")
    demo.say(f"published again: {len(info.published())} event(s) (a re-send is answered, not published)")


def _masked_codes(text: str) -> str:
    """Authorization codes in a report's text, masked (the service keeps them only as hashes)."""
    return re.sub(r"queryauthcode@@@[\w-]+", lambda found: mask(found.group()), text)


def full_network_test(demo: Demo) -> None:
    demo.say("before a platform is released, WeChat runs its full-network test (全网发布接入检测)")
    demo.say("against the authorization event URL and the message URL; the simulator runs it now:")
    demo.info.published()  # earlier events, out of the way
    report = demo.sim("POST", "/__sim/full-network-test")
    accounts = ", ".join(f"{kind} {a['appid']} ({a['user_name']})" for kind, a in report["accounts"].items())
    demo.say(f"test group {report['group']}: {accounts}")
    for step in report["steps"]:
        outcome = "passed" if step["passed"] else "FAILED"
        demo.say(f"{step['name']:34} {outcome:6} {step['seconds']:6.2f}s  {_masked_codes(step['detail'])}", 6)
    demo.say(f"result: {'passed' if report['passed'] else 'FAILED'}")
    published = demo.info.published()
    demo.say(f"the test's messages are answered, not published: {len(published)} event(s) on the bus")
    if not report["passed"]:
        raise RuntimeError("WeChat's full-network test did not pass")


STEPS = [
    Step(
        "A ticket arrives at the authorization-event URL",
        [("POST", "/wechat/component/events")],
        run=ticket_arrives,
    ),
    Step(
        "An Official Account owner authorizes the platform through its link",
        [("GET", "/wechat/component/authorize"), ("GET", "/wechat/component/authorized")],
        run=account_authorizes,
    ),
    Step(
        "A business system takes the account's access token from the token service",
        [("GET", "/wechat/authorizers/{appid}/token")],
        run=token_service,
    ),
    Step("The scheduled refresher keeps the tokens alive", schedule=True, run=refresher_runs),
    Step(
        "Mini Program login through the platform",
        [
            ("GET", "/wechat/component/authorize"),
            ("GET", "/wechat/component/authorized"),
            ("POST", "/wechat/miniprogram/{appid}/login"),
        ],
        run=miniprogram_login,
    ),
    Step(
        "A fan's message to the account arrives on the event bus",
        [
            ("GET", "/wechat/component/authorize"),
            ("GET", "/wechat/component/authorized"),
            ("POST", "/wechat/authorizers/{appid}/messages"),
        ],
        run=fan_message,
    ),
    Step(
        "WeChat's full-network release test passes",
        [("POST", "/wechat/component/events"), ("POST", "/wechat/authorizers/{appid}/messages")],
        run=full_network_test,
    ),
    Step(
        "H5: web OAuth on behalf of the Official Account, the identity redeemed once",
        [
            ("GET", "/wechat/component/authorize"),
            ("GET", "/wechat/component/authorized"),
            ("GET", "/wechat/oauth/{appid}/authorize"),
            ("GET", "/wechat/oauth/{appid}/callback"),
            ("POST", "/wechat/oauth/redeem"),
        ],
        run=h5_web_oauth,
    ),
    Step(
        "H5: a JS-SDK configuration for the page, accepted by WeChat's client",
        [
            ("GET", "/wechat/component/authorize"),
            ("GET", "/wechat/component/authorized"),
            ("GET", "/wechat/jssdk/{appid}/config"),
        ],
        run=h5_jssdk,
    ),
    Step(
        "A template released to three Mini Programs, one rejected",
        [
            ("GET", "/wechat/component/authorize"),
            ("GET", "/wechat/component/authorized"),
            ("GET", "/wechat/templates"),
            ("POST", "/wechat/releases"),
            ("GET", "/wechat/releases/{release_id}"),
            ("POST", "/wechat/authorizers/{appid}/messages"),
        ],
        run=template_release,
    ),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--state", type=Path, default=DEFAULT_WORK_DIR / STATE_FILE, help="written by make local"
    )
    args = parser.parse_args(argv)
    try:
        info = StackInfo.load(args.state)
    except (OSError, ValueError, TypeError):
        print("No local stack found: run `make local` in another terminal first.", file=sys.stderr)
        return 2
    if not info.running():
        print("The local stack is not running: start `make local` in another terminal.", file=sys.stderr)
        return 2

    print(f"Demo against the local stack: API {info.api_url}, simulator {info.simulator_url}")
    print(f"component appid {info.component_appid}, table {info.table_name} (on moto, {info.moto_url})")
    try:
        demo = Demo(info)
        outcomes = [demo.run_step(n, step) for n, step in enumerate(STEPS, 1)]
    except (requests.RequestException, StackError) as exc:
        print(f"\nThe local stack does not answer as expected: {exc}", file=sys.stderr)
        return 1

    calls = info.simulator_calls()
    items = Counter(item_kind(i) for i in info.items())
    print("\nSummary")
    for n, (step, outcome) in enumerate(zip(STEPS, outcomes, strict=True), 1):
        print(f"    [{n}] {outcome:18} {step.title}")
    made = {k: v - demo.start_calls.get(k, 0) for k, v in calls.items() if v != demo.start_calls.get(k, 0)}
    print(f"    upstream WeChat calls during the demo: {sum(made.values())}")
    for name, count in sorted(made.items()):
        print(f"        {name:32} {count}")
    print(
        f"    items in the table: {sum(items.values())} (before the demo: {sum(demo.start_items.values())})"
    )
    for kind, count in sorted(items.items()):
        print(f"        {kind:32} {count}")
    return 1 if "failed" in outcomes else 0


if __name__ == "__main__":
    sys.exit(main())
