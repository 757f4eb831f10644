"""Per-request cost of WeChat's pushes: our real handler against a minimal reference, side by side.

The same signed pushes go through ``functions/callback/app.py`` (the real handler, its
Powertools resolver, logger and metrics, DynamoDB on moto's server) and through
``bench/reference/wechatpy_app.py`` (wechatpy's crypto, xmltodict and one conditional boto3
write on the same server). For each kind of push it prints, per push: CPU time in the calling
thread (what Lambda bills while the handler runs; moto's work is in another process), wall
time, and AWS requests (counted on the wire, by operation). Rounds alternate between the two
handlers and the medians are shown, so a noisy machine shifts both alike.

The crypto path alone (envelope, signature, AES, push XML) is then timed against wechatpy's
``WeChatCrypto`` + xmltodict on the same push.

    make bench                                  # as below, with PYTHONPATH set
    python bench/push_bench.py [--pushes 200] [--rounds 7]
    python bench/push_bench.py --profile        # pyinstrument over our handler's ticket pushes
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import importlib.util
import io
import os
import statistics
import sys
import time
import timeit
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

os.environ.update(
    {
        "POWERTOOLS_TRACE_DISABLED": "1",  # no X-Ray daemon here; in Lambda the tracer adds its own cost
        "POWERTOOLS_SERVICE_NAME": "wechat-component-bench",
        "POWERTOOLS_METRICS_NAMESPACE": "Bench",
    }
)

import xmltodict
from botocore.httpsession import URLLib3Session
from wechat_core.protocol.crypto import MessageCrypto
from wechat_core.protocol.messages import build_xml
from wechatpy.crypto import WeChatCrypto
from wechatpy.utils import to_text

from devtools.events import LambdaContext, message_event, push_event
from devtools.project import ROOT
from devtools.resources import MotoServer, apply_environment, aws_environment, create_resources

APPID = "wx134c8103faa5a59e"
PLATFORM = {"appsecret": "s" * 32, "token": "benchtoken", "encoding_aes_key": "A1b2C3d4" * 5 + "xyz"}
Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
ACCOUNT = {"appid": "wx570bc396a51b8ff9", "user_name": "gh_3c884a361562"}


class WireMeter:
    """Every HTTP request botocore sends from this process, by operation (its X-Amz-Target)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._send = URLLib3Session.send
        meter = self

        def send(session: URLLib3Session, request: Any) -> Any:
            target = request.headers.get("X-Amz-Target", b"")
            meter.counts[(target.decode() if isinstance(target, bytes) else target).split(".")[-1]] += 1
            return meter._send(session, request)

        URLLib3Session.send = send  # type: ignore[method-assign]

    def take(self) -> Counter[str]:
        counts, self.counts = self.counts, Counter()
        return counts


def load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class Pushes:
    """Signed pushes as WeChat sends them, each with its own nonce and a newer CreateTime."""

    def __init__(self) -> None:
        self.crypto = MessageCrypto(PLATFORM["token"], PLATFORM["encoding_aes_key"], APPID)
        self.create_time = int(time.time())
        self.serial = 0

    def _signed(self, plaintext: str, addressee: dict[str, str]) -> tuple[dict[str, str], str]:
        """(query, body) of ``plaintext`` in its envelope, signed now with a fresh nonce."""
        self.serial += 1
        timestamp, nonce = str(int(time.time())), f"n{self.serial:09d}"
        encrypt = self.crypto.encrypt(plaintext)
        body = build_xml({**addressee, "Encrypt": encrypt})
        query = {
            "signature": "0" * 40,
            "timestamp": timestamp,
            "nonce": nonce,
            "encrypt_type": "aes",
            "msg_signature": self.crypto.signature(timestamp, nonce, encrypt),
        }
        return query, body

    def _event(self, plaintext: str) -> dict[str, Any]:
        return push_event(*self._signed(plaintext, {"AppId": APPID}))

    def ticket(self) -> dict[str, Any]:
        self.create_time += 1
        fields: dict[str, str | int] = {
            "AppId": APPID,
            "CreateTime": self.create_time,
            "InfoType": "component_verify_ticket",
            "ComponentVerifyTicket": "ticket@@@" + uuid.uuid4().hex * 3,
        }
        return self._event(build_xml(fields))

    def message(self, appid: str, user_name: str) -> dict[str, Any]:
        """A fan's text to an authorized account, through its message URL."""
        self.create_time += 1
        fields: dict[str, str | int] = {
            "ToUserName": user_name,
            "FromUserName": "o" + uuid.uuid4().hex[:27],
            "CreateTime": self.create_time,
            "MsgType": "text",
            "Content": "你好",
            "MsgId": uuid.uuid4().int % 2**63,
        }
        return message_event(appid, *self._signed(build_xml(fields), {"ToUserName": user_name}))

    def unauthorized(self) -> dict[str, Any]:
        self.create_time += 1
        fields: dict[str, str | int] = {
            "AppId": APPID,
            "CreateTime": self.create_time,
            "InfoType": "unauthorized",
            "AuthorizerAppid": "wx" + uuid.uuid4().hex[:16],
        }
        return self._event(build_xml(fields))


@dataclass
class Figures:
    cpu_us: list[float] = field(default_factory=list)  # per round: mean per push
    wall_us: list[float] = field(default_factory=list)
    requests: Counter[str] = field(default_factory=Counter)
    pushes: int = 0

    def requests_per_push(self) -> float:
        return sum(self.requests.values()) / max(self.pushes, 1)


def run_round(handler: Handler, events: list[dict[str, Any]], meter: WireMeter, figures: Figures) -> None:
    cpu = wall = 0.0
    meter.take()
    for event in events:
        context = LambdaContext(function_name="bench")
        c0, w0 = time.thread_time(), time.perf_counter()
        answer = handler(event, context)
        cpu += time.thread_time() - c0
        wall += time.perf_counter() - w0
        if answer["statusCode"] != 200:
            raise SystemExit(f"push refused: {answer}")
    figures.requests.update(meter.take())
    figures.pushes += len(events)
    figures.cpu_us.append(cpu / len(events) * 1e6)
    figures.wall_us.append(wall / len(events) * 1e6)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Powertools writes a log line and an EMF metrics document per push; the writing is part of the
    cost, the terminal is not (the logger holds the original stdout, so file descriptors move)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def compare(
    kind: str, make: Callable[[], dict[str, Any]], handlers: dict[str, Handler], meter: WireMeter, args: Any
) -> dict[str, Figures]:
    figures = {name: Figures() for name in handlers}
    with quiet():
        for handler in handlers.values():  # warm: the secret, clients, connections
            run_round(handler, [make() for _ in range(20)], meter, Figures())
        for _ in range(args.rounds):
            for name, handler in handlers.items():
                run_round(handler, [make() for _ in range(args.pushes)], meter, figures[name])
    print(f"\n{kind}: {args.rounds} rounds x {args.pushes} pushes per handler, medians per push")
    ours, ref = figures["ours"], figures["reference"]
    rows = [
        ("CPU in the calling thread", statistics.median(ours.cpu_us), statistics.median(ref.cpu_us), "us"),
        (
            "wall time (moto on loopback)",
            statistics.median(ours.wall_us),
            statistics.median(ref.wall_us),
            "us",
        ),
        ("AWS requests", ours.requests_per_push(), ref.requests_per_push(), ""),
    ]
    print(f"  {'':32s} {'ours':>10s} {'reference':>10s} {'ours/ref':>9s}")
    for label, a, b, unit in rows:
        fmt = "{:10.0f}" if unit else "{:10.2f}"
        print(f"  {label:32s} {fmt.format(a)} {fmt.format(b)} {a / b:8.2f}x  {unit}")
    for name, fig in figures.items():
        by_op = ", ".join(f"{op} {n / fig.pushes:.2f}" for op, n in sorted(fig.requests.items()))
        print(f"  requests by operation, {name}: {by_op}")
    return figures


def crypto_path(number: int = 5000, repeat: int = 7) -> tuple[float, float]:
    """Microseconds per push for our path and wechatpy's on the same ticket push."""
    from wechat_core.protocol import push
    from wechat_core.protocol.messages import parse_component_event

    ours = MessageCrypto(PLATFORM["token"], PLATFORM["encoding_aes_key"], APPID)
    theirs = WeChatCrypto(PLATFORM["token"], PLATFORM["encoding_aes_key"], APPID)
    event = Pushes().ticket()
    body = base64.b64decode(event["body"]) if event["isBase64Encoded"] else event["body"].encode()
    query = event["queryStringParameters"]
    tolerance = 10**9  # the push is signed once; the window is not what is measured

    def path_ours() -> None:
        delivery = push.verify_delivery(query, body, ours, tolerance)
        parse_component_event(ours.decrypt(delivery.envelope.encrypt))

    def path_wechatpy() -> None:
        xml = theirs.decrypt_message(body, query["msg_signature"], query["timestamp"], query["nonce"])
        xmltodict.parse(to_text(xml))["xml"]

    path_ours()
    path_wechatpy()
    a: list[float] = []
    b: list[float] = []
    for _ in range(repeat):  # alternate, so both see the same machine
        a.append(timeit.timeit(path_ours, number=number) / number * 1e6)
        b.append(timeit.timeit(path_wechatpy, number=number) / number * 1e6)
    return statistics.median(a), statistics.median(b)


def authorize_account() -> None:
    """An active authorization for the messages, as an exchange leaves it (the service's own store)."""
    from wechat_core import runtime
    from wechat_core.store.keys import authorizer_sk

    runtime.store().table.update(
        authorizer_sk(ACCOUNT["appid"]),
        set_values={"status": "active", "info": {"user_name": ACCOUNT["user_name"]}},
    )


def profile(handler: Handler, pushes: Pushes, count: int) -> None:
    from pyinstrument import Profiler

    events = [pushes.ticket() for _ in range(count)]
    with quiet():
        for event in [pushes.ticket() for _ in range(20)]:
            handler(event, LambdaContext(function_name="bench"))
        profiler = Profiler(interval=0.0001)
        profiler.start()
        for event in events:
            handler(event, LambdaContext(function_name="bench"))
        profiler.stop()
    print(profiler.output_text(unicode=False, color=False, show_all=False))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pushes", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()

    server = MotoServer()
    try:
        apply_environment(aws_environment(server.url))
        resources = create_resources(PLATFORM, APPID)
        apply_environment(
            {
                "TABLE_NAME": resources.table_name,
                "COMPONENT_APPID": APPID,
                "COMPONENT_SECRET_ID": resources.secret_name,
                "EVENT_BUS_NAME": resources.bus_name,
                "WECHAT_API_BASE": "http://127.0.0.1:9",  # no push measured here calls WeChat
            }
        )
        meter = WireMeter()
        ours = load(ROOT / "functions/callback/app.py", "bench_callback_app").lambda_handler
        ours_messages = load(ROOT / "functions/messages/app.py", "bench_messages_app").lambda_handler
        reference = load(ROOT / "bench/reference/wechatpy_app.py", "bench_reference_app").lambda_handler
        authorize_account()
        pushes = Pushes()
        if args.profile:
            profile(ours, pushes, args.pushes * args.rounds)
            return 0
        handlers = {"ours": ours, "reference": reference}
        ticket = compare("ticket push (component_verify_ticket)", pushes.ticket, handlers, meter, args)
        compare("authorization event (unauthorized)", pushes.unauthorized, handlers, meter, args)
        compare(
            "message to an account (text, published on the bus)",
            lambda: pushes.message(ACCOUNT["appid"], ACCOUNT["user_name"]),
            {"ours": ours_messages, "reference": reference},
            meter,
            args,
        )
        ours_us, wechatpy_us = crypto_path()
        print("\ncrypto path (envelope, msg_signature, AES, push XML), median of 7 x 5000 pushes")
        print(
            f"  ours {ours_us:.1f} us/push, wechatpy {wechatpy_us:.1f} us/push:"
            f" ours has {wechatpy_us / ours_us:.2f}x wechatpy's throughput"
        )
        cpu = statistics.median(ticket["ours"].cpu_us) / statistics.median(ticket["reference"].cpu_us)
        requests = ticket["ours"].requests_per_push()
        print(
            "\ntargets (issue 11): ticket push 1 AWS request, CPU <= 1.3x reference; crypto >= 1.5x wechatpy"
        )
        print(f"  ticket push: {requests:.2f} requests, CPU {cpu:.2f}x; crypto {wechatpy_us / ours_us:.2f}x")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
