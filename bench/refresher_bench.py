"""The scheduled refresher at scale: N due authorizers (and M not due) against the WeChat simulator
with 20 ms of latency per call, DynamoDB on moto's server.

Prints the time taken, refreshes per second, and per due authorizer: upstream calls, DynamoDB
requests and DynamoDB items read (counted on the service's own boto3 client). Exits non-zero when
an authorizer was not refreshed or the table holds a refresh token WeChat would refuse.

    python bench/refresher_bench.py                 # 10,000 due + 10,000 not due
    python bench/refresher_bench.py --quick         # 500 + 500, a smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "layers/wechat_core"), str(ROOT / "simulator")]
os.environ.update(
    {
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "POWERTOOLS_SERVICE_NAME": "wechat-component-bench",
        "POWERTOOLS_METRICS_NAMESPACE": "Bench",
    }
)

from boto3.dynamodb.types import TypeSerializer  # noqa: E402
from wechat_core import aws, clock, refresher, runtime  # noqa: E402
from wechat_core.store import authorizer_sk, due_pk  # noqa: E402
from wechat_simulator import Platform, Simulator  # noqa: E402
from wechat_simulator import accounts as sim_accounts  # noqa: E402

from tests.support.aws import MotoServer, apply_environment, aws_environment, create_resources  # noqa: E402

LAMBDA_TIMEOUT_MS = 300_000  # the template's RefresherFunction timeout


class DynamoDBCounter:
    """Requests and items read, per operation, from the client the service itself uses."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.items_read: Counter[str] = Counter()
        aws.dynamodb().meta.events.register("after-call.dynamodb", self._after_call)

    def _after_call(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        operation = model.name
        self.requests[operation] += 1
        if operation == "GetItem":
            self.items_read[operation] += int("Item" in parsed)
        elif operation in ("Query", "Scan"):
            self.items_read[operation] += int(parsed.get("Count", 0))
        elif operation == "BatchGetItem":
            self.items_read[operation] += sum(len(v) for v in parsed.get("Responses", {}).values())

    def reset(self) -> None:
        self.requests.clear()
        self.items_read.clear()


def seed(sim: Simulator, table: str, component_appid: str, due: int, not_due: int) -> list[str]:
    """Authorized accounts at the simulator, stored as authorization.complete() stores them."""
    client = aws.dynamodb()
    serialize = TypeSerializer().serialize
    now = clock.now()
    appids: list[str] = []
    requests: list[dict[str, Any]] = []
    for index in range(due + not_due):
        account = sim_accounts.add_account(sim.state, "official_account")
        with sim.state.lock:
            account.authorize(sim.state.now(), None)
            refresh_token = account.issue_refresh_token(sim.state.now(), 0).value
            access = account.issue_access_token(sim.state.now()).value
        expires_at = int(now + (600 if index < due else 7000))
        item = {
            "pk": f"component#{component_appid}",
            "sk": authorizer_sk(account.appid),
            "authorizer_appid": account.appid,
            "status": "active",
            "refresh_token": refresh_token,
            "access_token": access,
            "expires_at": expires_at,
            "due_pk": due_pk(component_appid),
            "due_at": expires_at - 900,
            "version": 1,
            "func_info": [1, 15],
        }
        requests.append({"PutRequest": {"Item": {k: serialize(v) for k, v in item.items()}}})
        if index < due:
            appids.append(account.appid)
    for start in range(0, len(requests), 25):
        pending: dict[str, Any] = {table: requests[start : start + 25]}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
    return appids


def run_until_done(concurrency: int) -> tuple[list[refresher.Report], float]:
    """Scheduled runs, each with a 300-second Lambda's time, until nothing is left due."""
    runs: list[refresher.Report] = []
    started = time.perf_counter()
    while True:
        deadline = time.monotonic() + LAMBDA_TIMEOUT_MS / 1000
        with contextlib.redirect_stdout(io.StringIO()):  # Powertools flushes metrics every 100 values
            report = refresher.run(
                lambda d=deadline: int((d - time.monotonic()) * 1000), concurrency=concurrency
            )
        runs.append(report)
        if report.due == 0 or not report.stopped_early:
            return runs, time.perf_counter() - started


def check(sim: Simulator, appids: list[str]) -> tuple[int, int]:
    """(refresh tokens WeChat would refuse, access tokens not renewed) among the due authorizers."""
    table = runtime.store()
    refused = renewed_not = 0
    for appid in appids:
        item = table.get(authorizer_sk(appid), consistent=False) or {}
        refused += not sim.state.accounts[appid].accepts_refresh_token(
            item.get("refresh_token"), sim.state.now()
        )
        renewed_not += float(item.get("expires_at", 0)) < clock.now() + 3600
    return refused, renewed_not


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--authorizers", type=int, default=10_000, help="authorizers due (default 10000)")
    parser.add_argument("--not-due", type=int, default=None, help="authorizers not due (default: as many)")
    parser.add_argument("--latency", type=float, default=0.020, help="simulator latency per call, seconds")
    parser.add_argument("--concurrency", type=int, default=16, help="refresher threads (template: 16)")
    parser.add_argument("--quick", action="store_true", help="500 due + 500 not due")
    args = parser.parse_args()
    due = 500 if args.quick else args.authorizers
    not_due = due if args.not_due is None else args.not_due
    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    moto = MotoServer()
    apply_environment(aws_environment(moto.url))
    platform = Platform.generate()
    sim = Simulator(platform).start()
    try:
        secret = {
            "appsecret": platform.appsecret,
            "token": platform.token,
            "encoding_aes_key": platform.encoding_aes_key,
        }
        resources = create_resources(secret)
        apply_environment(
            {
                "TABLE_NAME": resources.table_name,
                "COMPONENT_APPID": platform.appid,
                "COMPONENT_SECRET_ID": resources.secret_name,
                "WECHAT_API_BASE": sim.url,
                "WECHAT_API_FALLBACK_BASE": "",
            }
        )
        started = time.perf_counter()
        appids = seed(sim, resources.table_name, platform.appid, due, not_due)
        print(f"seeded {due} due + {not_due} not-due authorizers in {time.perf_counter() - started:.1f} s")
        assert runtime.store().save_ticket(sim.state.new_ticket(), int(time.time()))
        counter = DynamoDBCounter()
        sim.state.latency = args.latency
        sim.state.calls.clear()

        runs, elapsed = run_until_done(args.concurrency)
        refreshed = sum(r.refreshed for r in runs)
        upstream = int(sim.state.calls.get("api_authorizer_token", 0))
        by_request, by_read = dict(counter.requests), dict(counter.items_read)
        requests_made, items_read = sum(by_request.values()), sum(by_read.values())
        refused, renewed_not = check(sim, appids)

        per = max(due, 1)
        rows = [
            ("authorizers due / not due", f"{due} / {not_due}"),
            ("refresher runs (300 s Lambda)", f"{len(runs)}"),
            ("refreshed / failed", f"{refreshed} / {sum(r.failed for r in runs)}"),
            ("time", f"{elapsed:.1f} s"),
            ("refreshes per second", f"{refreshed / elapsed:.0f}"),
            ("bound: due x latency / concurrency", f"{due * args.latency / args.concurrency:.1f} s"),
            ("upstream calls per due authorizer", f"{upstream / per:.2f}"),
            ("DynamoDB requests per due authorizer", f"{requests_made / per:.2f}"),
            ("DynamoDB items read per due authorizer", f"{items_read / per:.2f}"),
            ("  requests by operation", ", ".join(f"{k} {v}" for k, v in sorted(by_request.items()))),
            (
                "  items read by operation",
                ", ".join(f"{k} {v}" for k, v in sorted(by_read.items())),
            ),
        ]
        width = max(len(name) for name, _ in rows)
        for name, value in rows:
            print(f"{name:<{width}}  {value}")
        if refreshed != due or refused or renewed_not:
            print(
                f"FAILED: {due - refreshed} not refreshed, {refused} refresh tokens refused,"
                f" {renewed_not} stale"
            )
            return 1
        return 0
    finally:
        sim.stop()
        moto.stop()


if __name__ == "__main__":
    sys.exit(main())
