"""A Mini Program release to every authorized Mini Program (``all: true``), end to end at scale.

N Mini Programs and N/10 Official Accounts are authorized (stored as the code exchange stores
them), a template is added, and a release is POSTed through the real releases handler. W worker
processes then play the release worker's Lambda instances (``ReleaseWorkerFunction``, W = the
template's ReleaseConcurrency): each receives up to 10 messages from the release queue, invokes
the real handler with the batch and deletes what it did not report as failed, as Lambda's SQS
event source does, until the queue is empty and the fan-out has finished. A worker is a process
because a Lambda instance is one: Powertools' batch processor and metrics keep per-process state
that concurrent invocations in one process would share.

Printed: the time from the POST to the last account auditing, accounts per second, and per
account, side by side by step (fanout, commit, submit) and for the poller: WeChat calls by API,
DynamoDB and SQS requests by operation (counted on the wire, in every process that sends them),
and where a worker's time goes. Checks, as PASS/FAIL lines (exit 1 on a FAIL): every Mini Program
auditing, committed and submitted exactly once (the simulator's per-account counts), no Official
Account touched, nothing in the dead-letter queue. ``--finish`` then approves every audit, pushes
the events to the real messages handler and has the workers release every account.

    make bench                                               # 1,000 Mini Programs, 5 workers
    python bench/release_bench.py --accounts 20 --workers 2  # a smoke run (PYTHONPATH as make sets it)
    python bench/release_bench.py --finish                   # and release them all

DynamoDB is moto's server with every request serialized (devtools/moto_launcher.py): about 3 ms
of one core per request, so it, not WeChat's latency (20 ms per call), sets the pace here; the
counts per account do not depend on it. The release queue is on a second moto server of the
bench's own (``serve_sqs``: see there why). WeChat is the simulator.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import logging
import multiprocessing
import os
import queue
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

os.environ.update(
    {
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "POWERTOOLS_SERVICE_NAME": "wechat-component-bench",
        "POWERTOOLS_METRICS_NAMESPACE": "Bench",
    }
)

import boto3
import requests
from botocore.httpsession import URLLib3Session
from moto.core.utils import unix_time as moto_unix_time
from wechat_core import clock, runtime
from wechat_core.features import releases
from wechat_core.store.keys import RELEASE_ACCOUNT_PREFIX, release_pk
from wechat_simulator import Platform, Simulator
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from bench.seeding import authorization_item, authorized_account, put_all
from devtools import moto_launcher, template
from devtools.events import LambdaContext, rest_event
from devtools.ports import free_port
from devtools.project import REGION, ROOT
from devtools.release_poller import sqs_event
from devtools.resources import (
    MotoServer,
    Resources,
    apply_environment,
    aws_environment,
    create_release_queues,
    create_resources,
    stop_process,
    wait_until_serving,
)

WORKER = "functions/release_worker"
MESSAGES_ROUTE = "/wechat/authorizers/{appid}/messages"
BATCH_SIZE = 10  # the template's BatchSize for the release queue
# A received message stays invisible this long (template: 360 s, six times the worker's timeout):
# long enough that no two workers hold one message here, short enough that a failed one returns.
VISIBILITY_TIMEOUT = 30
POLL_WAIT_SECONDS = 1  # long polling, as Lambda's poller does (it waits up to 20 s)
ROLES = ("api", "messages", "fanout", "commit", "submit", "release", "handler", "poller")
ROLE_TITLES = {"api": "POST", "messages": "events", "handler": "other", "poller": "poller"}
TOKEN_APIS = ("api_component_token", "api_authorizer_token")
USER_VERSION = "2.3.0"


# --- counting on the wire -----------------------------------------------------------------------


def _operation(request: Any) -> tuple[str, str]:
    target = request.headers.get("X-Amz-Target", b"")
    target = target.decode() if isinstance(target, bytes) else str(target)
    prefix, _, operation = target.rpartition(".")
    service = {"DynamoDB_20120810": "DynamoDB", "AmazonSQS": "SQS", "secretsmanager": "Secrets Manager"}
    return service.get(prefix, prefix or "other"), operation or str(request.url)


class WireMeter:
    """Every AWS request botocore sends from this process while the sending thread has a role
    (``with meter.role(...)``), by (role, service, operation); conditional writes DynamoDB refused."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str, str]] = Counter()
        self.refused: Counter[tuple[str, str]] = Counter()
        self.seconds: dict[str, float] = {}  # time waited for the answers, by service
        self._local = threading.local()
        self._lock = threading.Lock()
        original = URLLib3Session.send
        meter = self

        def send(session: URLLib3Session, request: Any) -> Any:
            role, sent = meter.current(), time.perf_counter()
            response = original(session, request)
            if role is not None:
                waited = time.perf_counter() - sent
                service, operation = _operation(request)
                refused = response.status_code == 400 and b"ConditionalCheckFailed" in response.content
                with meter._lock:
                    meter.counts[(role, service, operation)] += 1
                    meter.refused[(role, operation)] += refused
                    if role != "idle":
                        key = "poller" if role == "poller" else service
                        meter.seconds[key] = meter.seconds.get(key, 0.0) + waited
            return response

        URLLib3Session.send = send  # type: ignore[method-assign,assignment]

    def current(self) -> str | None:
        return getattr(self._local, "role", None)

    @contextlib.contextmanager
    def role(self, name: str | None) -> Iterator[None]:
        previous = self.current()
        self._local.role = name
        try:
            yield
        finally:
            self._local.role = previous

    def take(self) -> tuple[Counter[tuple[str, str, str]], Counter[tuple[str, str]], dict[str, float]]:
        with self._lock:
            taken = self.counts, self.refused, self.seconds
            self.counts, self.refused, self.seconds = Counter(), Counter(), {}
        return taken


# --- SQS on a moto server of its own ------------------------------------------------------------


SQS_LOCKED = (
    "send_message",
    "send_message_batch",
    "delete_message",
    "delete_message_batch",
    "change_message_visibility",
    "change_message_visibility_batch",
    "get_queue_attributes",
)


def serve_sqs(port: int) -> None:
    """moto's server, for the release queues alone, with two changes that make it behave as SQS.

    Its clock is read cheaply: moto works out every attribute of a queue, reading the time once per
    message held, on each message sent and each receive: O(queue depth) per message, which SQS is
    not. A fan-out queues a commit for every account at once, so with moto's own clock (a
    datetime per read) its SQS, not the service, would set the pace. Same values, from ``time.time``.

    Its requests are serialized, as devtools/moto_launcher.py does DynamoDB's: moto's SQS checks and
    marks messages without a lock, so two concurrent receives can take one message (whose first
    receipt handle then deletes nothing) and a delete can drop a message sent meanwhile. A long
    poll waits outside the lock."""
    import moto.server
    import moto.sqs.models as sqs_models

    moto_launcher.check_version()  # what is patched below was read in that version

    def unix_time(dt: Any = None) -> float:
        return time.time() if dt is None else float(moto_unix_time(dt))

    namespace = vars(sqs_models)  # where moto's SQS looks its clock up
    namespace["unix_time"] = unix_time
    namespace["unix_time_millis"] = lambda dt=None: unix_time(dt) * 1000.0
    lock = threading.RLock()
    backend = sqs_models.SQSBackend

    def locked(method: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return method(*args, **kwargs)

        return call

    for name in SQS_LOCKED:
        setattr(backend, name, locked(getattr(backend, name)))
    receive = backend.receive_message

    def receive_message(
        self: Any, queue_name: str, count: int, wait_seconds_timeout: int, *args: Any, **kwargs: Any
    ) -> Any:
        end = time.time() + int(wait_seconds_timeout or 0)
        while True:
            with lock:
                result = receive(self, queue_name, count, 0, *args, **kwargs)
            left = end - time.time()
            if result or left <= 0:
                return result
            self.get_queue(queue_name).wait_for_messages(min(left, 0.2))

    backend.receive_message = receive_message  # type: ignore[method-assign]
    moto.server.main(["-H", "127.0.0.1", "-p", str(port)])


class SqsServer:
    """``serve_sqs`` in a process of its own, on a loopback port (started now, ready by ``wait``)."""

    def __init__(self) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        argv = [sys.executable, str(Path(__file__).resolve()), "--serve-sqs", self.url.rsplit(":", 1)[1]]
        self.process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait(self) -> SqsServer:
        wait_until_serving(self.process, self.url, "moto's SQS server")
        return self

    def stop(self) -> None:
        stop_process(self.process)


# --- one worker: a Lambda instance of ReleaseWorkerFunction behind its SQS poller ---------------


def load_module(code_uri: str, name: str) -> ModuleType:
    """``<code_uri>/app.py`` imported under ``name`` (every function's file is app.py)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / code_uri / "app.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class Worker:
    """One Lambda instance of the release worker and its share of the SQS poller, in this process:
    receive up to 10 messages, invoke the real handler, delete what it did not report as failed.
    Counts every AWS request (by step: ``releases.handle`` is wrapped to label them) and WeChat call."""

    def __init__(self, index: int, queue_url: str) -> None:
        self.queue_url = queue_url
        self.meter = WireMeter()
        self.wechat: Counter[tuple[str, str]] = Counter()
        self.waited = {"WeChat": 0.0, "handler": 0.0}
        self.steps: Counter[str] = Counter()
        self.stats: dict[str, Any] = {
            "invocations": 0,
            "failed": 0,
            "empty": 0,
            "errors": [],
            "last_done": None,
        }
        runtime.wechat().session.hooks["response"].append(self._answered)
        handle = releases.handle

        def labelled(message: Mapping[str, Any]) -> None:  # the handler calls releases.handle
            with self.meter.role(str(message.get("step"))):
                handle(message)

        releases.handle = labelled  # in this process only
        self.handler = load_module(WORKER, f"bench_release_worker_{index}").lambda_handler
        self.sqs = boto3.client("sqs", region_name=REGION)  # the poller's own client
        self.cpu = os.times()

    def _answered(self, response: requests.Response, **_: Any) -> None:
        api = str(response.request.path_url).split("?")[0].rstrip("/").rsplit("/", 1)[-1]
        self.wechat[(self.meter.current() or "handler", api)] += 1
        self.waited["WeChat"] += response.elapsed.total_seconds()

    def poll(self) -> None:
        asked = time.perf_counter()
        with self.meter.role("poller"):
            answer = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=BATCH_SIZE,
                WaitTimeSeconds=POLL_WAIT_SECONDS,
                AttributeNames=["ApproximateReceiveCount"],
            )
        messages = answer.get("Messages", [])
        if not messages:  # an idle poller's receive is no account's cost: counted apart
            self.stats["empty"] += 1
            self.meter.counts[("poller", "SQS", "ReceiveMessage")] -= 1
            self.meter.counts[("idle", "SQS", "ReceiveMessage")] += 1
            self.meter.seconds["poller"] -= time.perf_counter() - asked
            return
        self.steps.update(str(json.loads(m["Body"]).get("step")) for m in messages)
        invoked = time.perf_counter()
        try:
            with self.meter.role("handler"):
                context = LambdaContext(function_name="ReleaseWorkerFunction", remaining_millis=60_000)
                result = self.handler(sqs_event(messages, self.queue_url), context)
            failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        except Exception as error:  # the invocation failed: every message comes back
            failed = {m["MessageId"] for m in messages}
            self.stats["errors"].append(repr(error)[:300])
        self.waited["handler"] += time.perf_counter() - invoked
        self.stats["invocations"] += 1
        self.stats["failed"] += len(failed)
        self.stats["last_done"] = time.monotonic()
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            with self.meter.role("poller"):
                self.sqs.delete_message_batch(
                    QueueUrl=self.queue_url,
                    Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(done)],
                )

    def report(self) -> dict[str, Any]:
        spent = os.times()
        counts, refused, seconds = self.meter.take()
        return {
            **self.stats,
            "steps": dict(self.steps),
            "wire": dict(counts),
            "refused": dict(refused),
            "wechat": dict(self.wechat),
            "waited": {**seconds, **self.waited},
            "cpu": spent.user + spent.system - self.cpu.user - self.cpu.system,
        }


def worker_main(index: int, queue_url: str, ready: Any, stop: Any, reports: Any) -> None:
    """A worker process: poll until told to stop, then report what it counted."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # Powertools' EMF metrics and logs: written, as in Lambda, but not shown
    worker = Worker(index, queue_url)
    ready.put(index)
    while not stop.is_set():
        worker.poll()
    reports.put(worker.report())


class WorkerPool:
    """``workers`` worker processes (spawned: each a fresh interpreter, as a Lambda instance)."""

    def __init__(self, workers: int, queue_url: str) -> None:
        context = multiprocessing.get_context("spawn")
        self.ready, self.reports, self.stopping = context.Queue(), context.Queue(), context.Event()
        self.processes = [
            context.Process(
                target=worker_main, args=(n, queue_url, self.ready, self.stopping, self.reports), daemon=True
            )
            for n in range(workers)
        ]
        for process in self.processes:
            process.start()

    def alive(self) -> bool:
        return all(p.is_alive() for p in self.processes)

    def wait_ready(self, seconds: float = 120) -> None:
        waiting, deadline = len(self.processes), time.monotonic() + seconds
        while waiting:
            try:
                self.ready.get(timeout=1)
                waiting -= 1
            except queue.Empty:
                if not self.alive() or time.monotonic() > deadline:
                    raise RuntimeError("a worker process did not start (its error is above)") from None

    def stop(self) -> list[dict[str, Any]]:
        """Tell the workers to stop (each after its current long poll); what they report."""
        self.stopping.set()
        collected = []
        for _ in self.processes:
            with contextlib.suppress(queue.Empty):
                collected.append(self.reports.get(timeout=30))
        return collected

    def close(self) -> None:
        self.stopping.set()
        for process in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()


# --- the audit events' way in: the messages handler behind a loopback gateway -------------------


class _Discard:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


class MessagesGateway:
    """WeChat's pushes to the message URL, to the real messages handler, one at a time (the
    handler module's Powertools state is per process, as a Lambda instance's)."""

    def __init__(self, meter: WireMeter) -> None:
        self.meter = meter
        self.handler = load_module("functions/messages", "bench_messages").lambda_handler
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=False)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        event = rest_event(
            "POST",
            request.path,
            resource=MESSAGES_ROUTE,
            path_parameters={"appid": request.path.split("/")[3]},
            query=list(request.args.items(multi=True)),
            body=request.get_data() or None,
            headers=dict(request.headers),
        )
        with self.meter.role("messages"), contextlib.redirect_stdout(_Discard()):
            result = self.handler(event, LambdaContext(function_name="MessagesFunction"))
        answer = Response(
            result.get("body") or "", status=result["statusCode"], headers=result.get("headers")
        )
        return answer(environ, start_response)


# --- setting up: authorizations, as the exchange stores them ------------------------------------


def authorize(sim: Simulator, resources: Resources, component_appid: str, kind: str, count: int) -> list[str]:
    """``count`` accounts authorized at the simulator and stored as ``onboarding.complete`` leaves
    them (the item ``authorizers.activate`` writes, with the description ``refresh_info`` keeps:
    the fan-out picks Mini Programs by its ``kind``). Written straight, with BatchWriteItem and a
    client no meter counts, as bench/refresher_bench.py seeds; tokens valid for two hours."""
    now = int(clock.now())
    appids: list[str] = []
    items: list[dict[str, Any]] = []
    for _ in range(count):
        account, refresh_token, access_token = authorized_account(sim, kind)
        info = {
            "kind": kind,
            "nick_name": account.nick_name,
            "user_name": account.user_name,
            "principal_name": account.principal_name,
            "head_img": account.head_img,
            "service_type": account.service_type,
            "verify_type": account.verify_type,
            "verified": account.verify_type != -1,
            "account_status": account.account_status,
            "alias": account.alias,
        }
        more = {"refreshed_at": now, "authorized_at": now, "activated_at": now, "info": info, "info_at": now}
        items.append(
            authorization_item(component_appid, account, refresh_token, access_token, now + 7200, **more)
        )
        appids.append(account.appid)
    put_all(resources, items)
    return appids


# --- a phase: workers started, work begun, the queue drained -------------------------------------


@dataclass
class Phase:
    title: str
    workers: int
    accounts: int
    seconds: float
    reports: list[dict[str, Any]]
    timed_out: bool
    wire: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (role, service, operation)
    refused: Counter[tuple[str, str]] = field(default_factory=Counter)  # (role, operation)
    wechat: Counter[tuple[str, str]] = field(default_factory=Counter)  # (role, api)
    waited: Counter[str] = field(default_factory=Counter)  # in the workers: handler, by service, poller
    sim_calls: dict[str, int] = field(default_factory=dict)
    cpu: dict[str, float | None] = field(default_factory=dict)

    def total(self, name: str) -> int:
        return sum(int(r[name]) for r in self.reports)

    @property
    def errors(self) -> list[str]:
        return [e for r in self.reports for e in r["errors"]]

    @property
    def steps(self) -> Counter[str]:
        counted: Counter[str] = Counter()
        for report in self.reports:
            counted.update(report["steps"])
        return counted


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


def _spent(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before


def queued(queue_url: str) -> int:
    """Messages in the queue: visible, received (not yet deleted) or delayed."""
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    sqs: Any = boto3.client("sqs", region_name=REGION)
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)["Attributes"]
    return sum(int(attributes.get(n, 0)) for n in names)


class Bench:
    """moto's servers, the simulator, the table, the queues and the authorized accounts."""

    def __init__(
        self, args: argparse.Namespace, moto: MotoServer, sqs_server: SqsServer, sim: Simulator
    ) -> None:
        self.args, self.sim = args, sim
        self.servers = {"DynamoDB": moto.process.pid, "SQS": sqs_server.process.pid}
        platform = sim.state.platform
        self.component_appid = platform.appid
        secret = {k: getattr(platform, k) for k in ("appsecret", "token", "encoding_aes_key")}
        self.resources = create_resources(secret, platform.appid)
        # The release queue and its dead-letter queue on the SQS server (serve_sqs).
        apply_environment({"AWS_ENDPOINT_URL_SQS": sqs_server.url})
        self.resources.release_queue_url, self.resources.release_dlq_url = create_release_queues(
            boto3.client("sqs", region_name=REGION), "wechat-releases-bench", VISIBILITY_TIMEOUT
        )
        apply_environment(
            {
                "TABLE_NAME": self.resources.table_name,
                "COMPONENT_APPID": platform.appid,
                "COMPONENT_SECRET_ID": self.resources.secret_name,
                "EVENT_BUS_NAME": self.resources.bus_name,
                "RELEASE_QUEUE_URL": self.resources.release_queue_url,
                "WECHAT_API_BASE": sim.url,
                "WECHAT_MP_BASE": sim.url,
                "WECHAT_OPEN_BASE": sim.url,
                "WECHAT_API_FALLBACK_BASE": "",
            }
        )
        runtime.reset()
        self.meter = WireMeter()
        assert runtime.store().tickets.save(sim.state.new_ticket(), int(time.time()), time.time())
        began = time.perf_counter()
        self.minis = authorize(sim, self.resources, platform.appid, "mini_program", args.accounts)
        self.officials = authorize(sim, self.resources, platform.appid, "official_account", args.officials)
        print(
            f"setup: {len(self.minis)} Mini Programs and {len(self.officials)} Official Accounts authorized"
            f" in {time.perf_counter() - began:.1f} s (not measured)"
        )
        self.template_id = int(sim.add_template(user_version=USER_VERSION)["template_id"])
        answer = requests.post(f"{sim.url}/__sim/settings", json={"latency": args.latency}, timeout=5)
        answer.raise_for_status()
        self.release_id = ""
        self.check = Checks()

    def sim_calls(self) -> dict[str, int]:
        answer = requests.get(f"{self.sim.url}/__sim/calls", timeout=5)
        answer.raise_for_status()
        return {str(k): int(v) for k, v in answer.json().items()}

    def phase(
        self, title: str, begin: Callable[[], None], expected: tuple[str, int], finished: Callable[[], bool]
    ) -> Phase:
        """Start the worker processes, ``begin`` the work (timed from here), and wait until the queue
        holds nothing and ``finished`` agrees; the time ends with the last invocation."""
        requests.delete(f"{self.sim.url}/__sim/calls", timeout=5).raise_for_status()
        self.meter.take()
        pool = WorkerPool(self.args.workers, self.resources.release_queue_url)
        try:
            pool.wait_ready()
            own = cpu_seconds()
            servers = {name: cpu_seconds(pid) for name, pid in self.servers.items()}
            started = time.monotonic()
            with self.meter.role("api"):
                begin()
            begun = time.monotonic()
            drained = self.drain(pool, started, expected, finished)
            cpu = {name: _spent(servers[name], cpu_seconds(pid)) for name, pid in self.servers.items()}
            cpu["this process"] = _spent(own, cpu_seconds())
            collected = pool.stop()
        finally:
            pool.close()
        last = max([begun, *(r["last_done"] for r in collected if r["last_done"] is not None)])
        timed_out = not drained or len(collected) < self.args.workers
        phase = Phase(title, self.args.workers, len(self.minis), last - started, collected, timed_out)
        phase.wire, phase.refused, _ = self.meter.take()
        for report in collected:
            phase.wire.update(report["wire"])
            phase.refused.update(report["refused"])
            phase.wechat.update(report["wechat"])
            phase.waited.update(report["waited"])
        phase.sim_calls = self.sim_calls()
        phase.cpu = {**cpu, "workers": sum(r["cpu"] for r in collected)}
        return phase

    def drain(
        self, pool: WorkerPool, started: float, expected: tuple[str, int], finished: Callable[[], bool]
    ) -> bool:
        """Wait until the queue is empty and ``finished`` agrees (True), or time is up (False).

        A message is deleted only after its step has queued the next one, so an empty queue is the
        end. moto answers GetQueueAttributes by walking every message: it is asked once the
        simulator has served the ``expected`` calls, or every few seconds."""
        asked = time.monotonic()
        while True:
            now = time.monotonic()
            if self.sim_calls().get(expected[0], 0) >= expected[1] or now - asked > 5:
                asked = now
                if queued(self.resources.release_queue_url) == 0 and finished():
                    return True
            if now - started > self.args.timeout or not pool.alive():
                return False
            time.sleep(0.25)

    def post_release(self) -> None:
        """``POST /wechat/releases`` with ``all: true``, through the real releases handler."""
        handler = load_module("functions/releases", "bench_releases").lambda_handler
        body = {
            "template_id": self.template_id,
            "user_version": USER_VERSION,
            "user_desc": "spring menu",
            "all": True,
            "ext_json": {"ext": {"theme": "spring"}},
            "audit": {"version_desc": "spring menu", "privacy_api_not_use": True},
        }
        headers = {"Content-Type": "application/json"}
        event = rest_event("POST", "/wechat/releases", body=json.dumps(body), headers=headers)
        with contextlib.redirect_stdout(_Discard()):
            result = handler(event, LambdaContext(function_name="ReleasesFunction"))
        if result["statusCode"] != 202:
            raise SystemExit(f"release refused: {result}")
        self.release_id = str(json.loads(result["body"])["release_id"])

    def fanned_out(self) -> bool:
        item = runtime.store().releases.get(self.release_id) or {}
        return bool(item.get("fanout_done_at"))

    def submit_all(self) -> None:
        phase = self.phase(
            f"commit and submit: {len(self.minis)} Mini Programs, {self.args.workers} workers",
            self.post_release,
            ("submit_audit", len(self.minis)),
            self.fanned_out,
        )
        summary(phase, "time, POST to the last account auditing")
        per_account_table(phase)
        print(
            "design: fanout 1 PutItem per account (and a Query per 100); commit and submit a claim,\n"
            "a token read and a move each, commit an authorization read, submit the current-release Put\n"
        )
        self.verify(phase, "auditing", {"commit": 1, "submit_audit": 1})

    def release_all(self) -> None:
        gateway = MessagesGateway(self.meter)
        self.sim.message_url = f"{gateway.url}/wechat/authorizers/$APPID$/messages"
        pushed: list[dict[str, Any]] = []
        try:
            phase = self.phase(
                f"release: audits approved, events pushed one at a time, {self.args.workers} workers",
                lambda: pushed.extend(self.sim.finish_audits()),
                ("release", len(self.minis)),
                lambda: True,
            )
        finally:
            gateway.stop()
        summary(phase, "time, first audit event to the last account released")
        per_account_table(phase)
        print()
        answered = sum(p.get("http_status") == 200 for p in pushed)
        self.check(
            answered == len(self.minis), f"every audit event answered 200 ({answered}/{len(self.minis)})"
        )
        self.verify(phase, "released", {"commit": 1, "submit_audit": 1, "release": 1})

    def states(self) -> dict[str, str]:
        """The release's accounts and their states, read with a client no meter counts."""
        pk = release_pk(self.component_appid, self.release_id)
        pages = self.resources.dynamodb.get_paginator("query").paginate(
            TableName=self.resources.table_name,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": {"S": pk}, ":prefix": {"S": RELEASE_ACCOUNT_PREFIX}},
        )
        return {item["appid"]["S"]: item["state"]["S"] for page in pages for item in page["Items"]}

    def verify(self, phase: Phase, state: str, calls: dict[str, int]) -> None:
        check, minis, officials, states = self.check, self.minis, self.officials, self.states()
        check(not phase.timed_out, f"the queue drained within {self.args.timeout:.0f} s ({phase.title})")
        in_state = sum(states.get(a) == state for a in minis)
        check(in_state == len(minis), f"every Mini Program {state} ({in_state}/{len(minis)})")
        exact = sum(self.sim.code_calls(a) == calls for a in minis)
        listed = ", ".join(f"{k} once" for k in calls)
        check(exact == len(minis), f"every Mini Program: {listed}, nothing else ({exact}/{len(minis)})")
        touched = sum(bool(self.sim.code_calls(a)) or a in states for a in officials)
        check(touched == 0, f"no Official Account touched ({touched}/{len(officials)} touched)")
        check(len(states) == len(minis), f"the release lists the Mini Programs alone ({len(states)})")
        dead = queued(self.resources.release_dlq_url)
        check(dead == 0, f"nothing in the dead-letter queue ({dead})")
        check(not phase.errors, f"no worker invocation failed as a whole ({len(phase.errors)})")
        for error in phase.errors[:3]:
            print(f"  {error}")


# --- the report -----------------------------------------------------------------------------------


class Checks:
    def __init__(self) -> None:
        self.failed = 0

    def __call__(self, ok: bool, text: str) -> None:
        self.failed += not ok
        print(f"{'PASS' if ok else 'FAIL'} {text}")


def _per(value: float) -> str:
    if value == 0:
        return "-"
    return f"{value:.2f}" if value >= 0.01 else f"{value:.3f}"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _seconds(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.1f} s"


def summary(phase: Phase, what: str) -> None:
    n = max(phase.accounts, 1)
    steps, invocations = phase.steps, phase.total("invocations")
    sim_calls = ", ".join(f"{k} {v}" for k, v in sorted(phase.sim_calls.items())) or "none"
    cpu = " / ".join(_seconds(phase.cpu.get(k)) for k in ("workers", "DynamoDB", "SQS", "this process"))
    rows = [
        (what, f"{phase.seconds:.1f} s"),
        ("accounts per second", f"{phase.accounts / phase.seconds:.1f}"),
        ("workers (Lambda instances)", f"{phase.workers}"),
        (
            "invocations / messages / reported failed",
            f"{invocations} / {sum(steps.values())} / {phase.total('failed')}",
        ),
        ("  messages by step", ", ".join(f"{k} {v}" for k, v in sorted(steps.items())) or "none"),
        ("  mean batch", f"{sum(steps.values()) / max(invocations, 1):.1f} messages"),
        ("  idle receives (no messages)", f"{phase.total('empty')}"),
        ("WeChat calls served (simulator)", sim_calls),
        ("  token calls per account", _per(sum(phase.sim_calls.get(a, 0) for a in TOKEN_APIS) / n)),
        ("worker time per account, in the handler", _ms(phase.waited["handler"] / n)),
        (
            "  waiting on DynamoDB / SQS / WeChat",
            " / ".join(_ms(phase.waited[k] / n) for k in ("DynamoDB", "SQS", "WeChat")),
        ),
        ("  receiving and deleting (poller)", _ms(phase.waited["poller"] / n)),
        ("CPU: workers / moto DynamoDB / moto SQS / this process", cpu),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"\n{phase.title}")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")


def per_account_table(phase: Phase) -> None:
    """Per account, side by side by step (and the poller): WeChat, DynamoDB and SQS requests."""
    n = max(phase.accounts, 1)
    roles = [r for r in ROLES if any(k[0] == r for k in (*phase.wire, *phase.wechat))]
    columns = [ROLE_TITLES.get(r, r) for r in roles] + ["all"]
    rows: list[tuple[str, list[str]]] = []

    def add(name: str, counted: Mapping[str, float]) -> None:
        values = [counted.get(r, 0) / n for r in roles]
        rows.append((name, [_per(v) for v in values] + [_per(sum(values))]))

    def by_role(counts: Mapping[Any, int], *match: str) -> Counter[str]:
        """Counts keyed (role, *rest) summed by role, where rest starts with ``match``."""
        summed: Counter[str] = Counter()
        for key, value in counts.items():
            if key[1 : 1 + len(match)] == match:
                summed[key[0]] += value
        return summed

    for api in sorted({a for _, a in phase.wechat}):
        add(f"WeChat {api}", by_role(phase.wechat, api))
    add("WeChat, all calls", by_role(phase.wechat))
    for service in ("DynamoDB", "SQS", "Secrets Manager"):
        operations = sorted({op for (role, s, op) in phase.wire if s == service and role in roles})
        for op in operations:
            add(f"{service} {op}", by_role(phase.wire, service, op))
        if operations:
            add(f"{service}, all requests", by_role(phase.wire, service))
    add("DynamoDB conditional writes refused", by_role(phase.refused))
    width = max(len(name) for name, _ in rows)
    cells = [max(7, len(c)) for c in columns]
    print(
        f"\n{'per account':<{width}}  " + "  ".join(f"{c:>{w}}" for c, w in zip(columns, cells, strict=True))
    )
    for name, values in rows:
        print(f"{name:<{width}}  " + "  ".join(f"{v:>{w}}" for v, w in zip(values, cells, strict=True)))


def main() -> int:
    concurrency = int(template.template()["Parameters"]["ReleaseConcurrency"]["Default"])
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accounts", type=int, default=1000, help="Mini Programs authorized (1000)")
    parser.add_argument("--officials", type=int, default=None, help="Official Accounts beside them (N/10)")
    parser.add_argument("--workers", type=int, default=concurrency, help=f"worker processes ({concurrency})")
    parser.add_argument("--latency", type=float, default=0.020, help="WeChat latency per call, s (0.020)")
    parser.add_argument("--finish", action="store_true", help="then approve every audit and release all")
    parser.add_argument("--timeout", type=float, default=600, help="give up on a phase after this, s")
    parser.add_argument("--serve-sqs", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_sqs is not None:
        serve_sqs(args.serve_sqs)
        return 0
    if args.officials is None:
        args.officials = max(1, args.accounts // 10)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    sqs_server = SqsServer()  # starting while moto's server does
    try:
        moto = MotoServer()
    except BaseException:
        sqs_server.stop()
        raise
    apply_environment(aws_environment(moto.url))
    sim = Simulator(Platform.generate()).start()
    try:
        sqs_server.wait()
        bench = Bench(args, moto, sqs_server, sim)
        print(
            f"WeChat: the simulator, {args.latency * 1000:.0f} ms per call; DynamoDB: moto's server"
            f" (serialized); batches of up to {BATCH_SIZE}; template ReleaseConcurrency {concurrency}"
        )
        bench.submit_all()
        if args.finish:
            bench.release_all()
        return 1 if bench.check.failed else 0
    finally:
        sim.stop()
        sqs_server.stop()
        moto.stop()


if __name__ == "__main__":
    sys.exit(main())
