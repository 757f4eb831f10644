"""The scheduled refresher at scale: N due authorizers (and M not due) against the WeChat simulator
with 20 ms of latency per call, DynamoDB on moto's server.

Runs ``wechat_core.refresher.run`` as the Lambda does (the template's concurrency, lookahead and
300-second timeout), run after run until nothing is due, and prints the time taken, refreshes per
second and, per due authorizer: upstream calls, DynamoDB requests, items read and estimated
capacity units (counted on the service's own boto3 client). Exits non-zero when a due authorizer
was not refreshed, an upstream call was repeated, a not-due authorizer was touched, or the table
holds a refresh token WeChat would refuse.

    make bench                                      # 10,000 due + 10,000 not due
    python bench/refresher_bench.py --quick         # 500 + 500, a smoke run (PYTHONPATH as make sets it)

moto serves DynamoDB from one Python process (one core at most, its Query reads the whole table),
so on most machines it, not WeChat's latency, sets the pace: the rows under "where a refresher
thread's time goes" and the CPU row show it. The counts per due authorizer do not depend on it.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import math
import os
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.update(
    {
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "POWERTOOLS_SERVICE_NAME": "wechat-component-bench",
        "POWERTOOLS_METRICS_NAMESPACE": "Bench",
    }
)

import requests
from wechat_core import clock, runtime
from wechat_core.features import refresher
from wechat_core.features.tokens import REFRESH_BEFORE_SECONDS
from wechat_core.store.keys import authorizer_sk
from wechat_simulator import Platform, Simulator

from bench.seeding import authorization_item, authorized_account, put_all
from devtools import template
from devtools.resources import (
    MotoServer,
    Resources,
    apply_environment,
    aws_environment,
    create_resources,
)

WRITES = frozenset({"UpdateItem", "PutItem", "DeleteItem"})
MAX_RUNS = 50  # a refresher that never finishes must not keep the benchmark going forever


@dataclass(frozen=True)
class LambdaSettings:
    """The refresher function as template.yaml configures it."""

    timeout_seconds: int
    concurrency: int
    lookahead_seconds: float

    @classmethod
    def from_template(cls) -> LambdaSettings:
        props = template.template()["Resources"]["RefresherFunction"]["Properties"]
        env = props["Environment"]["Variables"]
        return cls(
            int(props["Timeout"]), int(env["REFRESH_CONCURRENCY"]), float(env["REFRESH_LOOKAHEAD_SECONDS"])
        )


class FakeLambdaContext:
    """The one thing the refresher asks of Lambda's context: the time left."""

    def __init__(self, timeout_seconds: float) -> None:
        self.deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return int((self.deadline - time.monotonic()) * 1000)


def item_size(attributes: dict[str, Any]) -> int:
    """An item's size as DynamoDB bills it (names plus values), from the wire format."""

    def value_size(value: dict[str, Any]) -> int:
        ((kind, raw),) = value.items()
        if kind in ("S", "B"):
            return len(raw.encode()) if isinstance(raw, str) else len(raw)
        if kind == "N":
            return (len(raw.lstrip("-").replace(".", "")) + 1) // 2 + 1
        if kind in ("BOOL", "NULL"):
            return 1
        if kind == "L":
            return 3 + sum(value_size(v) + 1 for v in raw)
        if kind == "M":
            return 3 + sum(len(k.encode()) + value_size(v) + 1 for k, v in raw.items())
        return sum(len(str(v)) for v in raw)  # sets

    return sum(len(name.encode()) + value_size(value) for name, value in attributes.items())


@dataclass
class DynamoDBMeter:
    """Requests, items read and capacity, per operation, from the client the service itself uses.

    Items read: GetItem items found, Query/Scan ``Count``, BatchGetItem ``Responses``. Items
    returned by writes: ``Attributes`` of UpdateItem with ReturnValues, and the item a failed
    condition answers with ReturnValuesOnConditionCheckFailure. Capacity is estimated from item
    sizes (moto answers a constant): reads 4 KB units (half for eventually consistent), writes
    1 KB units of the larger of the old and new item (``write_item_bytes`` when unseen).
    """

    watched: frozenset[str] = frozenset()  # sort keys whose every touch is counted (not due)
    requests: Counter[str] = field(default_factory=Counter)
    items_read: Counter[str] = field(default_factory=Counter)
    items_returned_by_writes: Counter[str] = field(default_factory=Counter)
    conditional_failures: Counter[str] = field(default_factory=Counter)
    read_units: float = 0.0
    writes_unsized: int = 0
    write_units_sized: float = 0.0
    seconds: dict[str, float] = field(default_factory=dict)  # time waited, summed over threads
    due_keys_seen: Counter[str] = field(default_factory=Counter)
    watched_touches: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def attach(self) -> None:
        events = runtime.dynamodb().meta.events
        events.register("provide-client-params.dynamodb", self._before)
        events.register("after-call.dynamodb", self._after)

    def _before(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["bench_started"] = time.perf_counter()
        context["bench_consistent"] = bool(params.get("ConsistentRead"))
        key = params.get("Key") or {}
        context["bench_sk"] = key.get("sk", {}).get("S")

    def _after(self, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        waited = time.perf_counter() - context.get("bench_started", time.perf_counter())
        with self.lock:  # the refresher's threads all call through here
            self._count(str(model.name), parsed, context, waited)

    def _count(self, operation: str, parsed: dict[str, Any], context: dict[str, Any], waited: float) -> None:
        self.seconds[operation] = self.seconds.get(operation, 0.0) + waited
        self.requests[operation] += 1
        touched: list[str | None] = [context.get("bench_sk")]
        read_factor = 1.0 if context.get("bench_consistent") else 0.5
        if operation == "GetItem":
            item = parsed.get("Item")
            self.items_read[operation] += int(bool(item))
            self.read_units += read_factor * max(1, math.ceil(item_size(item or {}) / 4096))
        elif operation in ("Query", "Scan"):
            items = parsed.get("Items", [])
            self.items_read[operation] += int(parsed.get("Count", len(items)))
            size = sum(item_size(i) for i in items)
            self.read_units += read_factor * max(1, math.ceil(size / 4096))
            for item in items:
                sk = item.get("sk", {}).get("S")
                touched.append(sk)
                if "due_pk" in item:  # the due index answers its keys
                    self.due_keys_seen[sk] += 1
        elif operation == "BatchGetItem":
            for items in parsed.get("Responses", {}).values():
                self.items_read[operation] += len(items)
                self.read_units += read_factor * sum(max(1, math.ceil(item_size(i) / 4096)) for i in items)
        elif operation in WRITES:
            error = parsed.get("Error", {})
            returned = parsed.get("Attributes") or parsed.get("Item")
            if error.get("Code") == "ConditionalCheckFailedException":
                self.conditional_failures[operation] += 1
            if returned:
                self.items_returned_by_writes[operation] += 1
                self.write_units_sized += max(1, math.ceil(item_size(returned) / 1024))
            else:
                self.writes_unsized += 1
        self.watched_touches += sum(1 for sk in touched if sk in self.watched)

    def write_units(self, write_item_bytes: int) -> float:
        return self.write_units_sized + self.writes_unsized * max(1, math.ceil(write_item_bytes / 1024))

    @property
    def due_keys_repeated(self) -> int:
        return sum(count - 1 for count in self.due_keys_seen.values())


@dataclass
class WeChatMeter:
    """Time from sending each WeChat request to its answer, on the service's own HTTP session."""

    seconds: float = 0.0
    answers: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def attach(self) -> None:
        runtime.wechat().session.hooks["response"].append(self._response)

    def _response(self, response: requests.Response, **_: Any) -> None:
        with self.lock:
            self.seconds += response.elapsed.total_seconds()
            self.answers += 1


@dataclass
class Seeded:
    due: list[str]
    not_due: list[str]


def seed(sim: Simulator, resources: Resources, component_appid: str, due: int, not_due: int) -> Seeded:
    """Authorized accounts at the simulator, stored as ``authorization.complete()`` stores them.

    Written straight into the simulator's state and with BatchWriteItem (a separate client, so
    the meter sees only the refresher). Due tokens expire over the next 1 to 15 minutes (due
    now); the others in 1 to 2 hours, beyond any horizon the benchmark's runs reach.
    """
    now = clock.now()
    seeded = Seeded([], [])
    items: list[dict[str, Any]] = []
    for index in range(due + not_due):
        is_due = index < due
        account, refresh_token, access_token = authorized_account(sim, "official_account")
        if is_due:
            expires_at = int(now + 60 + (REFRESH_BEFORE_SECONDS - 60) * index / max(due, 1))
            seeded.due.append(account.appid)
        else:
            expires_at = int(now + 3600 + 3600 * (index - due) / max(not_due, 1))
            seeded.not_due.append(account.appid)
        items.append(
            authorization_item(
                component_appid,
                account,
                refresh_token,
                access_token,
                expires_at,
                refreshed_at=expires_at - 7200,
                authorized_at=expires_at - 7200,
            )
        )
    put_all(resources, items)
    return seeded


def run_until_done(settings: LambdaSettings, concurrency: int) -> tuple[list[refresher.Report], float]:
    """Scheduled runs back to back, each with a fresh Lambda's time, until nothing is left due."""
    runs: list[refresher.Report] = []
    started = time.perf_counter()
    while len(runs) < MAX_RUNS:
        context = FakeLambdaContext(settings.timeout_seconds)
        with contextlib.redirect_stdout(io.StringIO()):  # Powertools prints metrics every 100 values
            report = refresher.run(
                context.get_remaining_time_in_millis,
                lookahead_seconds=settings.lookahead_seconds,
                concurrency=concurrency,
            )
        runs.append(report)
        if report.due == 0 or not report.stopped_early:
            break
    return runs, time.perf_counter() - started


@dataclass
class Checked:
    refused: int = 0  # refresh tokens in the table the simulator would not accept
    stale: int = 0  # due authorizers whose access token was not renewed
    not_due_changed: int = 0  # not-due authorizer items written to
    largest_item: int = 0
    authorizers: int = 0  # authorizer items in the table


def check(sim: Simulator, resources: Resources, seeded: Seeded) -> Checked:
    """Every authorizer item in the table, read with a client the meter does not count."""
    due, not_due = set(seeded.due), set(seeded.not_due)
    checked = Checked()
    now = clock.now()
    pages = resources.dynamodb.get_paginator("scan").paginate(TableName=resources.table_name)
    with sim.state.lock:
        sim_now = sim.state.now()
        for page in pages:
            for item in page["Items"]:
                sk = item["sk"]["S"]
                if not sk.startswith("authorizer#"):
                    continue
                appid = sk.removeprefix("authorizer#")
                checked.authorizers += 1
                checked.largest_item = max(checked.largest_item, item_size(item))
                refresh_token = item.get("refresh_token", {}).get("S")
                checked.refused += not sim.state.accounts[appid].accepts_refresh_token(refresh_token, sim_now)
                if appid in due:
                    checked.stale += float(item["expires_at"]["N"]) < now + 3600
                elif appid in not_due:
                    checked.not_due_changed += item["version"]["N"] != "1"
    return checked


def cpu_seconds(pid: int | None = None) -> float | None:
    """CPU time (user + system) of this process, or of another one where /proc tells."""
    if pid is None:
        times = os.times()
        return times.user + times.system
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def set_latency(sim: Simulator, seconds: float) -> None:
    """Through the control route, as a test would; every WeChat API call then waits this long."""
    response = requests.post(f"{sim.url}/__sim/settings", json={"latency": seconds}, timeout=5)
    response.raise_for_status()
    if float(response.json()["latency"]) != seconds:
        raise RuntimeError(f"simulator latency not applied: {response.json()}")


@dataclass
class Outcome:
    due: int
    not_due: int
    latency: float
    concurrency: int
    settings: LambdaSettings
    runs: list[refresher.Report]
    elapsed: float
    calls: dict[str, int]
    meter: DynamoDBMeter
    wechat: WeChatMeter
    checked: Checked
    cpu: tuple[float | None, float | None]  # during the runs: this process, moto's server

    @property
    def refreshed(self) -> int:
        return sum(r.refreshed for r in self.runs)

    def total(self, name: str) -> int:
        return sum(int(getattr(r, name)) for r in self.runs)

    def figures(self) -> list[tuple[str, str]]:
        meter, per, elapsed = self.meter, max(self.due, 1), self.elapsed
        refreshed = max(self.refreshed, 1)
        requests_made = sum(meter.requests.values())
        waited = sum(meter.seconds.values())
        items_read = sum(meter.items_read.values())
        items_returned = sum(meter.items_returned_by_writes.values())
        write_units = meter.write_units(self.checked.largest_item)

        def by_operation(counts: Counter[str]) -> str:
            return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"

        return [
            ("authorizers due / not due", f"{self.due} / {self.not_due}"),
            ("WeChat latency / refresher threads", f"{self.latency * 1000:.0f} ms / {self.concurrency}"),
            (
                f"refresher runs ({self.settings.timeout_seconds} s Lambda)",
                f"{len(self.runs)} (stopped early: {self.total('stopped_early')})",
            ),
            (
                "refreshed / skipped / failed",
                f"{self.refreshed} / {self.total('skipped')} / {self.total('failed')}",
            ),
            ("time", f"{elapsed:.1f} s"),
            ("refreshes per second", f"{self.refreshed / elapsed:.0f}"),
            ("bound: due x latency / threads", f"{self.due * self.latency / self.concurrency:.1f} s"),
            (
                "upstream api_authorizer_token per due",
                f"{self.calls.get('api_authorizer_token', 0) / per:.2f}",
            ),
            ("  all upstream calls", by_operation(Counter(self.calls))),
            ("DynamoDB requests per due authorizer", f"{requests_made / per:.2f}"),
            ("  by operation", by_operation(meter.requests)),
            ("  conditional writes refused", by_operation(meter.conditional_failures)),
            ("DynamoDB items read per due authorizer", f"{(items_read + items_returned) / per:.2f}"),
            ("  read (Query, GetItem)", f"{items_read / per:.2f}  ({by_operation(meter.items_read)})"),
            (
                "  returned by conditional writes",
                f"{items_returned / per:.2f}  ({by_operation(meter.items_returned_by_writes)})",
            ),
            ("  due-index keys read more than once", f"{meter.due_keys_repeated}"),
            ("  not-due authorizer items touched", f"{meter.watched_touches}"),
            (
                "capacity units per due authorizer (est.)",
                f"read {meter.read_units / per:.3f}, write {write_units / per:.2f}"
                f"  (largest authorizer item {self.checked.largest_item} B)",
            ),
            ("where a refresher thread's time goes", ""),
            ("  per refresh", f"{elapsed * self.concurrency / refreshed * 1000:.0f} ms"),
            ("  waiting on DynamoDB", f"{waited / refreshed * 1000:.0f} ms"),
            (
                "  waiting on WeChat",
                f"{self.wechat.seconds / refreshed * 1000:.0f} ms"
                f"  (mean answer {self.wechat.seconds / max(self.wechat.answers, 1) * 1000:.1f} ms,"
                f" latency set {self.latency * 1000:.0f} ms)",
            ),
            ("DynamoDB requests per second", f"{requests_made / elapsed:.0f}"),
            ("mean DynamoDB request time", f"{waited / max(requests_made, 1) * 1000:.1f} ms"),
            (
                "  by operation",
                ", ".join(
                    f"{k} {meter.seconds[k] / meter.requests[k] * 1000:.1f} ms" for k in sorted(meter.seconds)
                ),
            ),
            ("CPU during the runs: this process / moto", " / ".join(_seconds(c) for c in self.cpu)),
        ]

    def failures(self) -> list[str]:
        upstream = int(self.calls.get("api_authorizer_token", 0))
        checked, touched = self.checked, self.meter.watched_touches
        bound = self.refreshed * self.latency / self.concurrency
        seeded = self.due + self.not_due
        checks = [
            (self.refreshed != self.due, f"{self.due - self.refreshed} due authorizers not refreshed"),
            (upstream != self.due, f"{upstream} api_authorizer_token calls for {self.due} due"),
            (checked.refused > 0, f"{checked.refused} refresh tokens in the table refused by WeChat"),
            (checked.stale > 0, f"{checked.stale} due access tokens not renewed"),
            (checked.not_due_changed > 0, f"{checked.not_due_changed} not-due authorizers written"),
            (touched > 0, f"{touched} DynamoDB reads or writes of not-due authorizers"),
            (self.elapsed < bound, "faster than the latency allows: latency not applied"),
            (
                checked.authorizers != seeded,
                f"{checked.authorizers} authorizer items in the table, {seeded} seeded",
            ),
        ]
        return [message for failed, message in checks if failed]


def _spent(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before


def _seconds(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.0f} s"


def main() -> int:

    settings = LambdaSettings.from_template()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--authorizers", type=int, default=10_000, help="authorizers due (default 10000)")
    parser.add_argument("--not-due", type=int, default=None, help="authorizers not due (default: as many)")
    parser.add_argument("--latency", type=float, default=0.020, help="WeChat latency per call, s (0.020)")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=settings.concurrency,
        help=f"refresher threads (template: {settings.concurrency}; the refresher caps it at "
        f"{refresher.MAX_CONCURRENCY})",
    )
    parser.add_argument("--quick", action="store_true", help="500 due + 500 not due, a smoke run")
    args = parser.parse_args()
    due = 500 if args.quick else args.authorizers
    not_due = (500 if args.quick else due) if args.not_due is None else args.not_due
    concurrency = max(1, min(args.concurrency, refresher.MAX_CONCURRENCY))
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
        seeded = seed(sim, resources, platform.appid, due, not_due)
        print(f"seeded {due} due + {not_due} not-due authorizers in {time.perf_counter() - started:.1f} s")
        # A ticket WeChat accepts; the first run fetches the component token with it.
        assert runtime.store().tickets.save(sim.state.new_ticket(), int(time.time()), time.time())
        set_latency(sim, args.latency)
        meter = DynamoDBMeter(watched=frozenset(authorizer_sk(a) for a in seeded.not_due))
        meter.attach()
        wechat = WeChatMeter()
        wechat.attach()
        requests.delete(f"{sim.url}/__sim/calls", timeout=5).raise_for_status()

        own, server = cpu_seconds(), cpu_seconds(moto.process.pid)
        runs, elapsed = run_until_done(settings, concurrency)
        cpu = (_spent(own, cpu_seconds()), _spent(server, cpu_seconds(moto.process.pid)))
        calls = requests.get(f"{sim.url}/__sim/calls", timeout=5).json()
        checked = check(sim, resources, seeded)
        outcome = Outcome(
            due,
            not_due,
            args.latency,
            concurrency,
            settings,
            runs,
            elapsed,
            calls,
            meter,
            wechat,
            checked,
            cpu,
        )
        rows = outcome.figures()
        width = max(len(name) for name, _ in rows)
        for name, value in rows:
            print(f"{name:<{width}}  {value}".rstrip())
        failures = outcome.failures()
        if failures:
            print("FAILED: " + "; ".join(failures))
            return 1
        print("OK: every due authorizer refreshed once; every refresh token in the table is accepted")
        return 0
    finally:
        sim.stop()
        moto.stop()


if __name__ == "__main__":
    sys.exit(main())
