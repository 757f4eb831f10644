"""``make demo``'s release step (devtools/demo.py runs it): a template of the platform's library
released to three Mini Programs, one of which WeChat's reviewers reject.

Everything goes the way it goes when deployed: ``POST /wechat/releases`` (start-api) stores the
release and queues its fan-out; the release worker (``ReleaseWorkerFunction`` in its warm container
behind ``sam local start-lambda``, fed from the release queue by devtools/release_poller.py as
Lambda's SQS event source feeds it) takes each account through ``commit`` and ``submit_audit``;
WeChat's reviewers (the simulator's ``POST /__sim/audits/finish``) push each result to the message
URL, whose function moves the account on and queues the release of the approved ones, which the
worker releases. The demo only watches ``GET /wechat/releases/{release_id}``, with a deadline.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devtools.stack_info import DEFAULT_WORK_DIR

if TYPE_CHECKING:
    from devtools.demo import Demo

DEADLINE_SECONDS = 60.0  # for each wait: the worker takes a few seconds locally
POLL_SECONDS = 0.5
VERSION = "1.2.0"
DESCRIPTION = "demo: spring menu"
REJECTION = "页面内容不完整 (demo: the reviewers found an empty page)"
SHOPS = ("Demo Bakery", "Demo Florist", "Demo Bookshop")  # the last one is rejected
WORKER_LOG = DEFAULT_WORK_DIR / "logs" / "worker.log"


def _status(demo: Demo, release_id: str) -> dict[str, Any]:
    answer = demo.api("GET", f"/wechat/releases/{release_id}", params={"limit": "100"})
    if answer.status_code != 200:
        raise RuntimeError(f"GET /wechat/releases/{release_id}: {answer.status_code} {answer.text[:300]}")
    status: dict[str, Any] = answer.json()
    return status


def _states(status: dict[str, Any]) -> dict[str, str]:
    return {str(a["appid"]): str(a["state"]) for a in status["accounts"]}


def _wait_for(
    demo: Demo, release_id: str, started: float, what: str, reached: Callable[[dict[str, str]], bool]
) -> dict[str, Any]:
    """Poll the release until ``reached`` holds for its accounts' states, printing each change of
    its counts; RuntimeError when an account fails or the deadline passes."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    shown: dict[str, int] | None = None
    while True:
        status = _status(demo, release_id)
        if status["counts"] != shown:
            shown = status["counts"]
            counts = ", ".join(f"{state} {n}" for state, n in status["counts"].items()) or "no accounts yet"
            demo.say(f"+{time.monotonic() - started:5.1f}s  {counts}", 6)
        states = _states(status)
        failed = [a for a in status["accounts"] if a["state"] == "failed"]
        if failed:
            raise RuntimeError(f"accounts failed: {json.dumps(failed, ensure_ascii=False)}")
        if reached(states):
            return status
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not reached within {DEADLINE_SECONDS:.0f}s: {states}")
        time.sleep(POLL_SECONDS)


def _worker_log_from(offset: int) -> list[str]:
    """The poller's lines written since ``offset`` (the local stack's log; [] when not there)."""
    try:
        with open(WORKER_LOG, "rb") as log:
            log.seek(offset)
            return log.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return []


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def template_release(demo: Demo) -> None:
    """A template released to three Mini Programs: two approved and released, one rejected."""
    from devtools.demo import Skip  # noqa: PLC0415 - devtools.demo imports this module

    info = demo.info
    if not info.lambda_url or not info.release_queue_url:
        raise Skip("this local stack runs no release worker: restart `make local`")
    template = demo.sim("POST", "/__sim/templates", user_version=VERSION, user_desc=DESCRIPTION)
    template_id = int(template["template_id"])
    demo.say(f"a developer uploads version {VERSION}; the platform adds it to its template library")
    listed = demo.api("GET", "/wechat/templates")
    ids = (
        [t.get("template_id") for t in listed.json().get("templates", [])]
        if listed.status_code == 200
        else []
    )
    demo.say(
        f"GET /wechat/templates -> {listed.status_code}: {len(ids)} template(s), {template_id} among them"
    )
    if template_id not in ids:
        raise RuntimeError(f"template {template_id} is not in the library: {listed.text[:300]}")

    appids = [demo.authorize("mini_program", "2", shop, key=f"release:{shop}") for shop in SHOPS]
    names = dict(zip(appids, SHOPS, strict=True))
    approved, rejected = appids[:2], appids[2]
    demo.sim("POST", f"/__sim/accounts/{rejected}/audit_outcome", outcome="fail", reason=REJECTION)
    demo.say(f"(WeChat's reviewers will reject {rejected}, {names[rejected]}: {REJECTION})")

    demo.info.published()  # earlier events, out of the way
    worker_log = _size(WORKER_LOG)
    body = {
        "template_id": template_id,
        "user_version": VERSION,
        "user_desc": DESCRIPTION,
        "ext_json": {"ext": {"theme": "spring"}},
        "appids": appids,
        "audit": {"version_desc": DESCRIPTION},
    }
    started = time.monotonic()
    created = demo.api("POST", "/wechat/releases", json=body)
    demo.say(
        f"POST /wechat/releases (template {template_id} to the three) -> {created.status_code} {created.text}"
    )
    if created.status_code != 202:
        raise RuntimeError(f"the release was not accepted: {created.text[:300]}")
    release_id = str(created.json()["release_id"])
    demo.say("the worker takes each account through commit and submit_audit:")
    _wait_for(
        demo,
        release_id,
        started,
        "all three auditing",
        lambda s: [s.get(a) for a in appids] == ["auditing"] * 3,
    )

    demo.say("WeChat's reviewers finish the three audits; each result is pushed to the message URL:")
    for appid in appids:
        for finished in demo.sim("POST", "/__sim/audits/finish", appid=appid):
            demo.say(f"{appid} ({names[appid]}): {finished['event']} -> {finished['http_status']}", 6)
            if finished["http_status"] != 200:
                raise RuntimeError(f"the message URL answered {finished['http_status']} for {appid}'s audit")
    final = dict.fromkeys(approved, "released") | {rejected: "rejected"}
    status = _wait_for(demo, release_id, started, "two released, one rejected", lambda s: s == final)
    _show(demo, release_id, status, names, worker_log)


def _show(
    demo: Demo, release_id: str, status: dict[str, Any], names: dict[str, str], worker_log: int
) -> None:
    """The release's counts and accounts, the WeChat calls per account, the worker's batches and the
    audit events on the bus; RuntimeError when a call was made other than once."""
    demo.say(
        f"GET /wechat/releases/{release_id}: counts {json.dumps(status['counts'])}, total {status['total']}"
    )
    for account in status["accounts"]:
        appid = str(account["appid"])
        reason = f"  reason: {account['reason']}" if account.get("reason") else ""
        demo.say(
            f"{appid} {names[appid]:14} {account['state']:9} auditid {account.get('auditid')}{reason}", 6
        )
    if status["counts"] != {"released": 2, "rejected": 1}:
        raise RuntimeError(f"expected two released and one rejected: {status['counts']}")
    demo.say("WeChat calls per Mini Program (the simulator's /__sim/accounts/<appid>/code_calls):")
    for account in status["accounts"]:
        appid = str(account["appid"])
        calls = demo.sim("GET", f"/__sim/accounts/{appid}/code_calls")
        demo.say(f"{appid} {', '.join(f'{api} x{n}' for api, n in sorted(calls.items()))}", 6)
        expected = {"commit": 1, "submit_audit": 1} | (
            {"release": 1} if account["state"] == "released" else {}
        )
        if calls != expected:
            raise RuntimeError(f"{appid}: WeChat calls {calls}, expected {expected}")
    batches = [line for line in _worker_log_from(worker_log) if "batch of" in line]
    if batches:
        demo.say("the worker's batches (.local/logs/worker.log):")
        for line in batches:
            demo.say(line, 6)
    events = Counter(str(e.get("detail", {}).get("event")) for e in demo.info.published())
    demo.say(
        "on the event bus too: " + (", ".join(f"{e} x{n}" for e, n in sorted(events.items())) or "nothing")
    )
