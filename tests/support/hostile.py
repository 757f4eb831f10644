"""Hostile requests to every route, and what must hold after each (tests/integration/test_hostile_input.py).

- ``World``: one deployed service for a whole test module (the table, secret, event bus and release
  queue on moto, the WeChat simulator, the loopback gateway), with the state the routes act on: a
  stored ticket, an Official Account and a Mini Program authorized, a revoked Mini Program, a Mini
  Program session, the component and authorizer tokens and a JS-SDK ticket already fetched, a
  template and a release. Built once: the cases only read it, and each checks it did not change.
- ``Req`` and ``send``: one request sent byte for byte over a raw HTTP connection (no client
  normalises its path, repeated parameters or body), and the ``Answer``.
- ``Case``: a named request builder with what it must get; the builders at the end make the
  variants every route of a kind gets (WeChat's signed XML pushes, JSON bodies, query
  parameters, path parameters).
- ``problems``: everything wrong with one case's outcome: not a 4xx, no reason, something written,
  published or queued, WeChat called, or a secret in the answer.
"""

from __future__ import annotations

import base64
import contextlib
import html
import http.client
import json
import re
import secrets
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import boto3
import requests
from wechat_core import clock, runtime
from wechat_core.protocol.crypto import MessageCrypto
from wechat_core.protocol.messages import build_xml
from wechat_simulator import Platform, Simulator

from devtools.resources import (
    REGION,
    MotoServer,
    Resources,
    receive_all,
    restore_environment,
)
from tests.support.deployment import deploy
from tests.support.flows import authorize, give_ticket
from tests.support.gateway import Gateway

# --- one request, byte for byte ------------------------------------------------------------------


@dataclass(frozen=True)
class Req:
    """A request as sent: ``path`` and ``query`` already encoded (sent as they are)."""

    method: str
    path: str
    query: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None

    def target(self) -> str:
        return self.path + (f"?{self.query}" if self.query else "")


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def send(base_url: str, req: Req) -> Answer:
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        connection.putrequest(req.method, req.target(), skip_accept_encoding=True)
        headers = list(req.headers)
        if req.body is not None and not any(k.lower() == "content-length" for k, _ in headers):
            headers.append(("Content-Length", str(len(req.body))))
        for name, value in headers:
            connection.putheader(name, value)
        connection.endheaders(req.body)
        response = connection.getresponse()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        connection.close()


def q(*pairs: tuple[str, str]) -> str:
    """A query string from pairs, in order (a name may repeat)."""
    return urlencode(list(pairs), quote_via=quote)


JSON = (("Content-Type", "application/json"),)
XML = (("Content-Type", "text/xml"),)


Items = list[dict[str, Any]]

# --- the service under test ----------------------------------------------------------------------

ALLOW_LIST = "https://h5.example.com/app"
PAGE = "https://h5.example.com/app/index.html"
ORIGIN = "https://h5.example.com"
UNKNOWN_APPID = "wx" + "0" * 16
JSCODE2SESSION = "functions/jscode2session"


@dataclass
class World:
    sim: Simulator
    platform: Platform
    resources: Resources
    gateway: Gateway
    oa: str = ""  # an authorized Official Account
    oa_user: str = ""  # its gh_ user name
    mini: str = ""  # an authorized Mini Program
    mini_user: str = ""
    mini2: str = ""  # another authorized Mini Program, with a session of its own
    session2: str = ""
    revoked: str = ""  # a Mini Program whose authorization was revoked
    session: dict[str, Any] = field(default_factory=dict)  # a login of `mini`: openid, session_token
    session_key: str = ""  # WeChat's key of that session (the service keeps it; never answered)
    template_id: int = 0
    draft_id: int = 0
    release_id: str = ""
    issued: list[str] = field(default_factory=list)  # values our answers gave out (session tokens)

    clients: dict[str, Any] = field(default_factory=dict)
    writes: list[int] = field(default_factory=lambda: [0])  # write calls to AWS so far (any thread)
    table: Items | None = None  # the table as last read, while no write call was made since
    table_at: int = -1

    @property
    def url(self) -> str:
        return self.gateway.url

    def client(self, service: str) -> Any:
        """One boto3 client per service for the module (making one costs more than a case)."""
        if service not in self.clients:
            self.clients[service] = boto3.client(service, region_name=REGION)
        return self.clients[service]

    def snapshot(self) -> Items:
        """Every item of the table, in a stable order (``Resources.snapshot`` with one client)."""
        pages = self.client("dynamodb").get_paginator("scan").paginate(TableName=self.resources.table_name)
        return sorted(
            (i for page in pages for i in page["Items"]), key=lambda i: (i["pk"]["S"], i["sk"]["S"])
        )

    def current(self) -> Items:
        """The table now: read again only when a write call was made since it was last read (a
        scan of moto's table costs more than the rest of a case)."""
        if self.table is None or self.table_at != self.writes[0]:
            self.table_at = self.writes[0]
            self.table = self.snapshot()
        return self.table

    def published(self) -> list[dict[str, Any]]:
        """What went on the bus since last asked (``Resources.published`` with one client)."""
        return receive_all(self.client("sqs"), self.resources.queue_url)

    def queued(self) -> list[dict[str, Any]]:
        """What is on the release queue, taken off it."""
        url = self.resources.release_queue_url
        sqs = self.client("sqs")
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", []
        )
        for message in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return list(messages)

    @property
    def crypto(self) -> MessageCrypto:
        p = self.platform
        return MessageCrypto(p.token, p.encoding_aes_key, p.appid)

    def calls(self) -> dict[str, int]:
        """Every WeChat API the simulator served, with its count."""
        answer: dict[str, int] = requests.get(f"{self.sim.url}/__sim/calls", timeout=5).json()
        return answer

    def secrets(self, items: Sequence[dict[str, Any]]) -> set[str]:
        """What no answer may contain: the platform's credentials, every token, ticket, refresh
        token and session_key the table holds (``items``) or the simulator issued, and the session
        tokens our logins gave out."""
        found = {self.platform.token, self.platform.encoding_aes_key, self.platform.appsecret}
        found |= {str(k["session_key"]) for k in self.sim.session_keys()}
        found |= set(self.sim.oauth_tokens())
        found |= set(self.issued)
        for item in items:
            _secret_values(item, found)
        return {s for s in found if len(s) >= 12}


# Attribute names (at any depth) whose values are credentials.
SECRET_NAMES = (
    "access_token",
    "refresh_token",
    "session_key",
    "ticket",
    "component_verify_ticket",
    "authorizer_access_token",
    "authorizer_refresh_token",
    "jsapi_ticket",
    "value",
)


def _secret_values(value: Any, found: set[str], name: str = "") -> None:
    if isinstance(value, dict):
        if set(value) <= {"S", "N", "B", "M", "L", "SS", "NS", "BS", "BOOL", "NULL"} and len(value) == 1:
            ((kind, inner),) = value.items()
            if kind == "S":
                if name in SECRET_NAMES or name.endswith(("_token", "_ticket")):
                    found.add(str(inner))
                return
            _secret_values(inner, found, name)
            return
        for key, inner in value.items():
            _secret_values(inner, found, key)
    elif isinstance(value, list):
        for inner in value:
            _secret_values(inner, found, name)


# AWS operations that change something: the table, the bus, the release queue.
WRITE_OPERATIONS = frozenset(
    {
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "BatchWriteItem",
        "TransactWriteItems",
        "PutEvents",
        "SendMessage",
        "SendMessageBatch",
    }
)


@contextlib.contextmanager
def counting_writes(count: list[int]) -> Iterator[None]:
    """Count every write call any boto3 client makes, from any thread, before it is made
    (conditional writes that fail count too: they only make the next read of the table happen)."""
    from botocore.client import BaseClient

    make_api_call = getattr(BaseClient, "_make_api_call")  # noqa: B009 - private, untyped

    def counted(client: Any, operation: str, params: dict[str, Any]) -> Any:
        if operation in WRITE_OPERATIONS:
            count[0] += 1
        return make_api_call(client, operation, params)

    setattr(BaseClient, "_make_api_call", counted)  # noqa: B010
    try:
        yield
    finally:
        setattr(BaseClient, "_make_api_call", make_api_call)  # noqa: B010


@contextlib.contextmanager
def world(moto_server: MotoServer) -> Iterator[World]:
    """The service deployed as conftest's ``service`` and ``gateway`` fixtures deploy it, for a whole
    module, with ``H5_ALLOW_LIST`` and CORS origins set, and the state the routes act on."""
    del moto_server  # its environment is applied for the session
    platform = Platform.generate()
    sim = Simulator(platform).start()
    resources, previous = deploy(platform, sim.url, H5_ALLOW_LIST=ALLOW_LIST, ALLOWED_ORIGINS=ORIGIN)
    # The Mini Program function reads its CORS origins when it is imported: a fresh import here,
    # and the module as it was afterwards (as test_miniprogram_login's cors_gateway does).
    module_name = "fn_" + JSCODE2SESSION.replace("/", "_")
    original = sys.modules.pop(module_name, None)
    runtime.reset()
    gateway = Gateway().start()
    try:
        w = World(sim, platform, resources, gateway)
        with counting_writes(w.writes):
            _populate(w)
            yield w
    finally:
        gateway.stop()
        sim.stop()
        restore_environment(previous)
        runtime.reset()
        if original is not None:
            sys.modules[module_name] = original
        else:
            sys.modules.pop(module_name, None)


def _ok(answer: requests.Response, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    return answer.json()


def _populate(w: World) -> None:
    sim, url = w.sim, w.url
    give_ticket(sim)
    w.oa = authorize(sim, "official_account")
    w.oa_user = str(sim.account(w.oa)["user_name"])
    w.mini = authorize(sim, "mini_program")
    w.mini_user = str(sim.account(w.mini)["user_name"])
    w.revoked = authorize(sim, "mini_program")
    sim.revoke(w.revoked, push=False)
    assert runtime.store().authorizers.revoke(w.revoked, int(clock.now()), clock.now())
    w.mini2 = authorize(sim, "mini_program")
    w.session = login(w, w.mini)
    w.session_key = str(sim.session_keys()[-1]["session_key"])
    w.session2 = str(login(w, w.mini2)["session_token"])
    # Every token a route would fetch is fetched now, so a case that writes nothing can be told.
    _ok(requests.get(f"{url}/wechat/component/token", timeout=10))
    for appid in (w.oa, w.mini):
        _ok(requests.get(f"{url}/wechat/authorizers/{appid}/token", timeout=10))
    _ok(requests.get(f"{url}/wechat/authorizers/{w.oa}/jsapi-ticket", timeout=10))
    w.template_id = int(sim.add_template(user_version="1.0.0")["template_id"])
    w.draft_id = int(sim.add_draft(user_version="1.0.1")["draft_id"])
    created = _ok(
        requests.post(
            f"{url}/wechat/releases",
            json={"template_id": w.template_id, "user_version": "1.0.0", "appids": [w.mini]},
            timeout=10,
        ),
        202,
    )
    w.release_id = str(created["release_id"])
    settle(w)


def login(w: World, appid: str) -> dict[str, Any]:
    """A Mini Program user's login through the route (its session token is a secret from then on)."""
    body = {"code": w.sim.wx_login(appid)}
    answer = _ok(requests.post(f"{w.url}/wechat/miniprogram/{appid}/login", json=body, timeout=10))
    w.issued.append(str(answer["session_token"]))
    return dict(answer)


def settle(w: World) -> None:
    """Empty what a case must leave empty: the bus's queue and the release queue."""
    w.published()
    while w.queued():
        pass


# --- cases and what must hold after each ----------------------------------------------------------

Build = Callable[[World], Req]


@dataclass(frozen=True)
class Case:
    """One hostile request. ``build`` makes it, and may first arrange what it needs (a delivery
    to replay, a used state): the table is compared from after ``build`` on.

    A refusal (the default) must be a 4xx in ``status`` (any 4xx when empty) whose reason contains
    ``reason``: JSON ``{"error": reason}``, or with ``page`` an HTML page showing it. ``wechat``:
    only WeChat can tell this input is wrong (a well-formed but unknown code or id), so the case
    may call it. ``accepted`` documents why this request is rightly answered 2xx or 3xx instead;
    ``expect`` then checks that answer, and ``writes`` what it may change in the table (nothing by
    default) and ``publishes`` how many messages it may put on the bus."""

    name: str
    build: Build
    status: tuple[int, ...] = ()
    reason: str = ""
    page: bool = False
    wechat: bool = False
    accepted: str = ""
    expect: Callable[[World, Answer], None] | None = None
    writes: Callable[[Items], bool] | None = None
    publishes: int = 0
    cleanup: Callable[[World], None] | None = None
    defect: str = ""  # a known defect in code this suite may not change: the case is expected to fail


def refused(
    name: str, build: Build, status: int | tuple[int, ...] = (), reason: str = "", **options: Any
) -> Case:
    return Case(name, build, (status,) if isinstance(status, int) else status, reason, **options)


def accepted(
    name: str, build: Build, why: str, expect: Callable[[World, Answer], None], **options: Any
) -> Case:
    assert why, "an accepted case says why"
    return Case(name, build, accepted=why, expect=expect, **options)


@dataclass
class Outcome:
    answer: Answer
    before: Items
    after: Items
    calls_before: dict[str, int]
    calls_after: dict[str, int]
    published: list[dict[str, Any]]
    queued: list[dict[str, Any]]


def run(w: World, case: Case) -> Outcome:
    req = case.build(w)
    try:
        before, calls_before, mark = w.current(), w.calls(), w.writes[0]
        answer = send(w.url, req)
        calls_after = w.calls()
        if w.writes[0] == mark:  # no write call at all: nothing can have changed
            after, published, queued = before, [], []
        else:
            after, published, queued = w.current(), w.published(), w.queued()
    finally:
        if case.cleanup is not None:
            case.cleanup(w)
    return Outcome(answer, before, after, calls_before, calls_after, published, queued)


def changed(before: Items, after: Items) -> Items:
    """The items ``after`` holds that ``before`` did not hold as they are (new or changed), and
    the removed ones (as they were)."""

    def key(i: dict[str, Any]) -> tuple[str, str]:
        return (i["pk"]["S"], i["sk"]["S"])

    old = {key(i): i for i in before}
    new = {key(i): i for i in after}
    return [i for k, i in new.items() if old.get(k) != i] + [i for k, i in old.items() if k not in new]


def reason_of(answer: Answer, page: bool) -> str | None:
    """The reason a refusal gives, or None when it gives none in the route's form."""
    content_type = answer.headers.get("content-type", "")
    if page:
        if not content_type.startswith("text/html"):
            return None
        found = re.search(r"<p>(.*?)</p>", answer.text, re.S)
        return html.unescape(found.group(1)) if found else None
    body = answer.json() if content_type.startswith("application/json") else None
    if not isinstance(body, dict) or set(body) != {"error"} or not isinstance(body["error"], str):
        return None
    return body["error"]


def problems(w: World, case: Case, outcome: Outcome) -> list[str]:
    """Everything wrong with ``case``'s outcome, in words (empty: all held)."""
    found: list[str] = []
    answer = outcome.answer
    shown = f"{answer.status} {answer.headers.get('content-type', '')} {answer.text[:300]!r}"
    if case.accepted:
        if not 200 <= answer.status < 400:
            found.append(f"documented as accepted ({case.accepted}) but answered {shown}")
        elif case.expect is not None:
            try:
                case.expect(w, answer)
            except AssertionError as error:
                found.append(f"accepted, but not as documented: {error} (answer {shown})")
    else:
        if not 400 <= answer.status < 500:
            found.append(f"expected a 4xx refusal, got {shown}")
        elif case.status and answer.status not in case.status:
            found.append(f"expected status {'/'.join(map(str, case.status))}, got {shown}")
        reason = reason_of(answer, case.page)
        form = "an HTML page with <p>reason</p>" if case.page else 'JSON {"error": reason}'
        if not reason:
            found.append(f"no reason given as {form}: {shown}")
        elif case.reason and case.reason not in reason:
            found.append(f"reason {reason!r} does not say {case.reason!r}")
    diff = changed(outcome.before, outcome.after)
    if diff and not (case.writes is not None and case.writes(diff)):
        found.append(f"the table changed: {[(i['pk']['S'], i['sk']['S']) for i in diff]}")
    if len(outcome.published) != case.publishes:
        found.append(f"{len(outcome.published)} message(s) published (expected {case.publishes})")
    if outcome.queued:
        found.append(f"{len(outcome.queued)} message(s) put on the release queue")
    if outcome.calls_after != outcome.calls_before and not case.wechat:
        before = outcome.calls_before
        called = {k: v - before.get(k, 0) for k, v in outcome.calls_after.items() if v != before.get(k, 0)}
        found.append(f"WeChat was called: {called}")
    echoed = _echoed(w.secrets(outcome.after), answer, case)
    if echoed:
        found.append(f"the answer holds {len(echoed)} secret(s) (starting {[s[:6] for s in echoed]})")
    return found


def _echoed(secret_values: set[str], answer: Answer, case: Case) -> list[str]:
    haystack = answer.text + " " + " ".join(f"{k}: {v}" for k, v in answer.headers.items())
    forms = {form for value in secret_values for form in (value, quote(value, safe=""))}
    return sorted({s for s in forms if s in haystack and s not in _served(case, answer)})


def _served(case: Case, answer: Answer) -> set[str]:
    """What an accepted answer rightly holds: the token the route serves, a session it gives."""
    if not case.accepted:
        return set()
    body = answer.json()
    if not isinstance(body, dict):
        return set()
    served = ("component_access_token", "authorizer_access_token", "jsapi_ticket", "session_token")
    return {str(body[k]) for k in served if k in body}


# --- WeChat's signed, encrypted XML pushes --------------------------------------------------------


@dataclass(frozen=True)
class PushRoute:
    """A route WeChat pushes to: its path, a valid plaintext (new at each call), and the envelope's
    ``ToUserName`` (the message URL's; None: the authorization-event URL's ``<AppId>``)."""

    path: Callable[[World], str]
    plaintext: Callable[[World], str]
    to_user: Callable[[World], str] | None = None


def sign(w: World, encrypt: str, *, timestamp: int | None = None, nonce: str | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    n = nonce or str(secrets.randbelow(10**10))
    return {
        "timestamp": ts,
        "nonce": n,
        "encrypt_type": "aes",
        "msg_signature": w.crypto.signature(ts, n, encrypt),
    }


def envelope(w: World, route: PushRoute, encrypt: str, **fields: str) -> bytes:
    head = {"ToUserName": route.to_user(w)} if route.to_user else {"AppId": w.platform.appid}
    return build_xml({**head, "Encrypt": encrypt, **fields}).encode()


def push_req(
    w: World,
    route: PushRoute,
    query: dict[str, str] | Sequence[tuple[str, str]],
    body: bytes | None,
    content_type: str = "text/xml",
) -> Req:
    pairs = list(query.items()) if isinstance(query, dict) else list(query)
    return Req("POST", route.path(w), q(*pairs), (("Content-Type", content_type),), body)


def delivery(
    w: World,
    route: PushRoute,
    *,
    plaintext: str | bytes | None = None,
    crypto: MessageCrypto | None = None,
    timestamp: int | None = None,
    nonce: str | None = None,
) -> tuple[dict[str, str], str, bytes]:
    """(query, Encrypt, body) of a correctly signed delivery (of ``plaintext``, encrypted with
    ``crypto``: ours by default)."""
    plain = route.plaintext(w) if plaintext is None else plaintext
    encrypt = (crypto or w.crypto).encrypt(plain)
    return sign(w, encrypt, timestamp=timestamp, nonce=nonce), encrypt, envelope(w, route, encrypt)


def signed_body(
    route: PushRoute,
    body: Callable[[World, str], bytes | None],
    encrypt: Callable[[World], str] | None = None,
) -> Build:
    """A request whose body is ``body(w, encrypt)``, correctly signed over ``encrypt``."""

    def build(w: World) -> Req:
        value = encrypt(w) if encrypt else delivery(w, route)[1]
        return push_req(w, route, sign(w, value), body(w, value))

    return build


def resigned(route: PushRoute, encrypt: Callable[[World], str]) -> Build:
    """A well-formed envelope around ``encrypt(w)``, signed with our token over it: only the
    decryption can tell."""

    def build(w: World) -> Req:
        value = encrypt(w)
        return push_req(w, route, sign(w, value), envelope(w, route, value))

    return build


def with_query(route: PushRoute, change: Callable[[dict[str, str]], Sequence[tuple[str, str]]]) -> Build:
    """A correctly signed delivery whose query is then changed by ``change``."""

    def build(w: World) -> Req:
        query, _, body = delivery(w, route)
        return push_req(w, route, change(dict(query)), body)

    return build


def _without(name: str) -> Callable[[dict[str, str]], Sequence[tuple[str, str]]]:
    return lambda query: [(k, v) for k, v in query.items() if k != name]


def _set(name: str, value: str) -> Callable[[dict[str, str]], Sequence[tuple[str, str]]]:
    return lambda query: list((query | {name: value}).items())


def _plaintext(route: PushRoute, change: Callable[[str], str | bytes]) -> Build:
    """A delivery of the route's valid plaintext changed by ``change``, encrypted and signed right."""

    def build(w: World) -> Req:
        query, _, body = delivery(w, route, plaintext=change(route.plaintext(w)))
        return push_req(w, route, query, body)

    return build


LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>'
)
EXTERNAL = b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
PARAMETER = b'<!DOCTYPE xml [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x.dtd"> %p;]>'
ANOTHER_AES_KEY = "B" * 43
ANOTHER_APPID = "wx" + "1" * 16


def _entities_in(plain: str, prolog: bytes, reference: str) -> bytes:
    body = plain.replace("<xml>", f"<xml><X>{reference}</X>", 1)
    return prolog + body.encode()


def push_cases(route: PushRoute) -> list[Case]:
    """What every push route refuses: bodies that are not WeChat's XML, signatures that do not
    match, ciphertexts that are not ours, stale or malformed query parameters."""

    def good_body(w: World, encrypt: str) -> bytes:
        return envelope(w, route, encrypt)

    return [
        # malformed, truncated, oversized
        refused("no-body", signed_body(route, lambda w, e: None), 400, "XML"),
        refused("empty-body", signed_body(route, lambda w, e: b""), 400, "XML"),
        refused("not-xml", signed_body(route, lambda w, e: b"this is not xml"), 400, "malformed XML"),
        refused(
            "truncated",
            signed_body(route, lambda w, e: good_body(w, e)[: len(good_body(w, e)) // 2]),
            400,
            "malformed XML",
        ),
        refused(
            "unclosed-tags",
            signed_body(route, lambda w, e: good_body(w, e).replace(b"</xml>", b"")),
            400,
            "malformed XML",
        ),
        refused(
            "oversized",
            signed_body(route, lambda w, e: good_body(w, e).replace(b"<xml>", b"<xml>" + b" " * 65536, 1)),
            413,
            "body over",
        ),
        refused(
            "other-root",
            signed_body(route, lambda w, e: good_body(w, e).replace(b"xml>", b"doc>")),
            400,
            "<xml>",
        ),
        refused(
            "no-encrypt",
            signed_body(route, lambda w, e: good_body(w, e).replace(b"Encrypt>", b"Encrypted>")),
            400,
            "Encrypt",
        ),
        refused(
            "empty-encrypt",
            signed_body(route, lambda w, e: envelope(w, route, ""), lambda w: ""),
            400,
            "Encrypt",
        ),
        refused(
            "encrypt-twice",
            signed_body(
                route,
                lambda w, e: good_body(w, e).replace(
                    b"</xml>", b"<Encrypt>" + e.encode() + b"</Encrypt></xml>"
                ),
            ),
            400,
            "Encrypt",
        ),
        refused(
            "encrypt-with-children",
            signed_body(route, lambda w, e: good_body(w, e).replace(b"<Encrypt>", b"<Encrypt><a>1</a>")),
            400,
            "Encrypt",
        ),
        # entity-laden
        refused(
            "doctype",
            signed_body(route, lambda w, e: b'<!DOCTYPE xml [<!ENTITY e "x">]>' + good_body(w, e)),
            400,
            "DTD",
        ),
        refused(
            "billion-laughs",
            signed_body(
                route, lambda w, e: LAUGHS + good_body(w, e).replace(b"<xml>", b"<xml><X>&d;</X>", 1)
            ),
            400,
            "DTD",
        ),
        refused(
            "external-entity",
            signed_body(
                route, lambda w, e: EXTERNAL + good_body(w, e).replace(b"<xml>", b"<xml><X>&e;</X>", 1)
            ),
            400,
            "DTD",
        ),
        refused("parameter-entity", signed_body(route, lambda w, e: PARAMETER + good_body(w, e)), 400, "DTD"),
        refused(
            "undeclared-entity",
            signed_body(route, lambda w, e: good_body(w, e).replace(b"<xml>", b"<xml><X>&x;</X>", 1)),
            400,
            "malformed XML",
        ),
        refused(
            "billion-laughs-inside", _plaintext(route, lambda p: _entities_in(p, LAUGHS, "&d;")), 400, "DTD"
        ),
        refused(
            "external-entity-inside",
            _plaintext(route, lambda p: _entities_in(p, EXTERNAL, "&e;")),
            400,
            "DTD",
        ),
        # non-UTF-8
        refused(
            "non-utf8-envelope",
            signed_body(route, lambda w, e: good_body(w, e).replace(b"<xml>", b"<xml><X>\xff\xfe</X>", 1)),
            400,
            "UTF-8",
        ),
        refused(
            "latin1-declared",
            signed_body(
                route,
                lambda w, e: (
                    b'<?xml version="1.0" encoding="ISO-8859-1"?>'
                    + good_body(w, e).replace(b"<xml>", b"<xml><X>caf\xe9</X>", 1)
                ),
            ),
            400,
            "UTF-8",
        ),
        refused(
            "utf16-body",
            signed_body(route, lambda w, e: good_body(w, e).decode().encode("utf-16")),
            400,
            "UTF-8",
        ),
        refused(
            "non-utf8-inside",
            _plaintext(route, lambda p: p.encode().replace(b"<xml>", b"<xml><X>\xff\xfe</X>", 1)),
            400,
            "UTF-8",
        ),
        # wrongly signed
        refused("forged-signature", with_query(route, _set("msg_signature", "0" * 40)), 401, "signature"),
        refused(
            "signature-of-another-message",
            lambda w: push_req(w, route, sign(w, delivery(w, route)[1]), delivery(w, route)[2]),
            401,
            "signature",
        ),
        refused("signature-with-another-token", lambda w: _other_token(w, route), 401, "signature"),
        refused(
            "url-signature-only",
            with_query(
                route,
                lambda query: list((query | {"msg_signature": query.get("signature", "0" * 40)}).items()),
            ),
            401,
            "signature",
        ),
        refused(
            "signature-over-other-timestamp",
            with_query(
                route, lambda query: list((query | {"timestamp": str(int(query["timestamp"]) - 1)}).items())
            ),
            401,
            "signature",
        ),
        # wrongly encrypted (signed right over what is there)
        refused("encrypt-not-base64", resigned(route, lambda w: "this is *not* base64!"), 400, "base64"),
        refused("encrypt-partial-block", resigned(route, lambda w: b64(b"x" * 20)), 400, "AES blocks"),
        refused(
            "encrypt-under-another-key",
            resigned(
                route,
                lambda w: MessageCrypto(w.platform.token, ANOTHER_AES_KEY, w.platform.appid).encrypt(
                    route.plaintext(w)
                ),
            ),
            400,
        ),
        refused(
            "encrypt-cut-short",
            resigned(route, lambda w: b64(base64.b64decode(delivery(w, route)[1])[:-32])),
            (400, 403),
        ),
        refused("encrypt-overlong", resigned(route, lambda w: b64(b"\0" * 49_000)), (400, 413)),
        # wrong AppId (the receive id inside the ciphertext)
        refused(
            "another-receive-id",
            resigned(
                route,
                lambda w: MessageCrypto(w.platform.token, w.platform.encoding_aes_key, ANOTHER_APPID).encrypt(
                    route.plaintext(w)
                ),
            ),
            403,
            "receive id",
        ),
        # stale
        refused(
            "stale-timestamp",
            lambda w: push_req(w, route, *_at(w, route, int(time.time()) - 3600)),
            401,
            "timestamp",
        ),
        refused(
            "future-timestamp",
            lambda w: push_req(w, route, *_at(w, route, int(time.time()) + 3600)),
            401,
            "timestamp",
        ),
        refused("epoch-timestamp", lambda w: push_req(w, route, *_at(w, route, 0)), 401, "timestamp"),
        # missing, malformed, overlong, repeated parameters
        *[
            refused(f"missing-{n}", with_query(route, _without(n)), 400, f"missing query parameter {n}")
            for n in ("timestamp", "nonce", "msg_signature")
        ],
        refused("no-query", with_query(route, lambda query: []), 400, "missing query parameter"),
        refused("encrypt-type-raw", with_query(route, _set("encrypt_type", "raw")), 400, "encrypt_type"),
        refused("malformed-timestamp", with_query(route, _set("timestamp", "12ab")), 400, "timestamp"),
        refused("negative-timestamp", with_query(route, _set("timestamp", "-100")), 400, "timestamp"),
        refused("overlong-timestamp", with_query(route, _set("timestamp", "9" * 40)), 400, "timestamp"),
        refused("malformed-nonce", with_query(route, _set("nonce", "<script>")), 400, "nonce"),
        refused("overlong-nonce", with_query(route, _set("nonce", "1" * 5000)), 400, "nonce"),
        refused(
            "malformed-signature", with_query(route, _set("msg_signature", "z" * 40)), 400, "msg_signature"
        ),
        refused(
            "overlong-signature", with_query(route, _set("msg_signature", "a" * 5000)), 400, "msg_signature"
        ),
        refused(
            "non-utf8-nonce",
            lambda w: _raw_query(w, route, lambda query: query.replace("nonce=", "nonce=%FF%FE", 1)),
            400,
            "nonce",
        ),
        refused(
            "nul-in-nonce",
            lambda w: _raw_query(w, route, lambda query: query.replace("nonce=", "nonce=%00", 1)),
            400,
            "nonce",
        ),
        refused(
            "repeated-timestamp",
            with_query(
                route, lambda query: [("timestamp", str(int(query["timestamp"]) - 7200)), *query.items()]
            ),
            400,
            "more than once",
        ),
        refused(
            "repeated-signature",
            with_query(route, lambda query: [*query.items(), ("msg_signature", "0" * 40)]),
            400,
        ),
        # wrong content type (what is sent is not WeChat's XML)
        refused("json-body", lambda w: _as_json(w, route), 400, "XML"),
        refused(
            "form-body",
            lambda w: push_req(
                w, route, delivery(w, route)[0], b"Encrypt=abc&AppId=wx", "application/x-www-form-urlencoded"
            ),
            400,
            "XML",
        ),
    ]


def _at(w: World, route: PushRoute, timestamp: int) -> tuple[dict[str, str], bytes]:
    query, _, body = delivery(w, route, timestamp=timestamp)
    return query, body


def _other_token(w: World, route: PushRoute) -> Req:
    query, encrypt, body = delivery(w, route)
    forged = MessageCrypto("another-token", w.platform.encoding_aes_key, w.platform.appid)
    return push_req(
        w,
        route,
        query | {"msg_signature": forged.signature(query["timestamp"], query["nonce"], encrypt)},
        body,
    )


def _raw_query(w: World, route: PushRoute, change: Callable[[str], str]) -> Req:
    query, _, body = delivery(w, route)
    return Req("POST", route.path(w), change(q(*query.items())), XML, body)


def _as_json(w: World, route: PushRoute) -> Req:
    query, encrypt, _ = delivery(w, route)
    body = json.dumps({"AppId": w.platform.appid, "Encrypt": encrypt}).encode()
    return push_req(w, route, query, body, "application/json")


# --- JSON bodies ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class JsonRoute:
    """A route taking a JSON object: its path, a valid body (or one whose refusal needs WeChat
    or a lookup, for the generic variants to be refused before), and its body limit in bytes."""

    path: Callable[[World], str]
    body: Callable[[World], dict[str, Any]]
    limit: int
    headers: tuple[tuple[str, str], ...] = ()


def json_req(
    w: World, route: JsonRoute, body: bytes | None, content_type: str | None = "application/json"
) -> Req:
    headers = route.headers + ((("Content-Type", content_type),) if content_type else ())
    return Req("POST", route.path(w), "", headers, body)


def with_body(route: JsonRoute, body: Callable[[World], Any]) -> Build:
    """The route's request with ``body(w)`` as JSON (``bytes`` are sent as they are)."""

    def build(w: World) -> Req:
        value = body(w)
        raw = value if isinstance(value, bytes) else json.dumps(value, allow_nan=True).encode()
        return json_req(w, route, raw)

    return build


def changed_body(route: JsonRoute, change: dict[str, Any]) -> Build:
    """The route's valid body with fields replaced (``None``: removed)."""
    return with_body(route, lambda w: {k: v for k, v in {**route.body(w), **change}.items() if v is not None})


def _nested(depth: int) -> bytes:
    return b'{"x": ' + b"[" * depth + b"]" * depth + b"}"


def json_cases(route: JsonRoute, *, unknown_fields: Case | None = None) -> list[Case]:
    """What every JSON route refuses: anything but a JSON object sent as application/json within
    its limit, numbers JSON has not got or no store can hold, nesting no parser should follow.
    ``unknown_fields``: the route's own case for a body with a field it does not know (refused
    by default)."""
    good = lambda w: json.dumps(route.body(w)).encode()  # noqa: E731
    depth = min(100_000, (route.limit - 64) // 2)
    cases = [
        refused("no-body", lambda w: json_req(w, route, None), 400, "JSON"),
        refused("empty-body", lambda w: json_req(w, route, b""), 400, "JSON"),
        refused("not-json", lambda w: json_req(w, route, b"{code: 'x'}"), 400, "JSON"),
        refused("truncated", lambda w: json_req(w, route, good(w)[: len(good(w)) // 2]), 400, "JSON"),
        refused("trailing-garbage", lambda w: json_req(w, route, good(w) + b"}{"), 400, "JSON"),
        *[
            refused(f"non-object-{name}", lambda w, raw=raw: json_req(w, route, raw), 400, "JSON object")
            for name, raw in (
                ("array", b"[]"),
                ("string", b'"x"'),
                ("number", b"1"),
                ("null", b"null"),
                ("true", b"true"),
            )
        ],
        refused("deeply-nested", lambda w: json_req(w, route, _nested(depth)), (400, 413)),
        refused(
            "nan", with_body(route, lambda w: json.dumps({**route.body(w), "x": float("nan")}).encode()), 400
        ),
        refused(
            "infinity",
            with_body(route, lambda w: json.dumps(route.body(w))[:-1].encode() + b', "x": 1e400}'),
            400,
        ),
        refused(
            "huge-integer-literal",
            lambda w: json_req(w, route, b'{"x": ' + b"9" * min(5000, route.limit - 10) + b"}"),
            (400, 413),
        ),
        refused("non-utf8", lambda w: json_req(w, route, good(w)[:-1] + b', "x": "\xff\xfe"}'), 400, "JSON"),
        refused(
            "oversized",
            lambda w: json_req(w, route, good(w)[:-1] + b', "x": "' + b"a" * route.limit + b'"}'),
            413,
            "body over",
        ),
        refused("no-content-type", lambda w: json_req(w, route, good(w), None), 415, "application/json"),
        refused("text-plain", lambda w: json_req(w, route, good(w), "text/plain"), 415, "application/json"),
        refused(
            "form",
            lambda w: json_req(w, route, b"code=abc", "application/x-www-form-urlencoded"),
            415,
            "application/json",
        ),
        refused(
            "xml",
            lambda w: json_req(w, route, b"<xml><code>abc</code></xml>", "text/xml"),
            415,
            "application/json",
        ),
        refused(
            "json-lookalike-type",
            lambda w: json_req(w, route, good(w), "application/jsonp"),
            415,
            "application/json",
        ),
    ]
    cases.append(
        unknown_fields
        or refused("unknown-field", changed_body(route, {"zzz_unknown": 1}), 400, "unknown field zzz_unknown")
    )
    return cases


def field_cases(
    route: JsonRoute, name: str, values: Sequence[tuple[str, Any]], reason: str, status: int = 400
) -> list[Case]:
    """``name`` set to each of ``values`` (``None``: left out) in the route's valid body."""
    return [
        refused(f"{name}-{label}", changed_body(route, {name: value}), status, reason)
        for label, value in values
    ]


WRONG_TYPES: list[tuple[str, Any]] = [
    ("list", ["x"]),
    ("object", {"x": 1}),
    ("true", True),
    ("number", 12),
    ("float", 1.5),
    ("null", None),
]
BAD_STRINGS: list[tuple[str, Any]] = [
    ("empty", ""),
    ("overlong", "a" * 3000),
    ("script", "<script>alert(1)</script>"),
    ("path", "../../etc/passwd"),
    ("nul", "abc\u0000def"),
    ("non-ascii", "中文中文中文中文中文"),
]


# --- query parameters ----------------------------------------------------------------------------


@dataclass(frozen=True)
class QueryRoute:
    """A GET route: its path and valid query parameters (in order)."""

    path: Callable[[World], str]
    query: Callable[[World], list[tuple[str, str]]]
    page: bool = False


def get(
    route: QueryRoute,
    change: Callable[[World, list[tuple[str, str]]], list[tuple[str, str]]] | None = None,
    raw: Callable[[str], str] | None = None,
) -> Build:
    def build(w: World) -> Req:
        pairs = route.query(w)
        if change is not None:
            pairs = change(w, pairs)
        text = q(*pairs)
        return Req("GET", route.path(w), raw(text) if raw else text)

    return build


def replaced(name: str, value: str | None) -> Callable[[World, list[tuple[str, str]]], list[tuple[str, str]]]:
    """The query with ``name`` set to ``value`` (``None``: removed)."""

    def change(w: World, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        kept = [(k, v) for k, v in pairs if k != name]
        return kept if value is None else [*kept, (name, value)]

    return change


def repeated(name: str, value: str) -> Callable[[World, list[tuple[str, str]]], list[tuple[str, str]]]:
    """The query with ``name`` given again after its valid value (twice when it has none)."""
    return lambda w, pairs: [*pairs, *([(name, value)] * (1 if any(k == name for k, _ in pairs) else 2))]


def repeated_first(name: str, value: str) -> Callable[[World, list[tuple[str, str]]], list[tuple[str, str]]]:
    """The query with ``name`` given before its valid value (a reader taking the last one is fooled)."""
    return lambda w, pairs: [*([(name, value)] * (1 if any(k == name for k, _ in pairs) else 2)), *pairs]


def query_cases(
    route: QueryRoute,
    name: str,
    *,
    required: str = "",
    values: Sequence[tuple[str, str]] = (),
    reason: str = "",
    status: int = 400,
    overlong: str = "too long",
    repeat: str = "more than once",
    overrides: dict[str, Case] | None = None,
) -> list[Case]:
    """The variants of one parameter: missing (when ``required`` gives the reason), overlong,
    repeated either way round, non-UTF-8, NUL, and each of ``values`` (refused with ``reason``);
    ``overrides`` replaces variants by name (``non-utf8`` for ``{name}-non-utf8``)."""
    page = route.page
    cases = [
        refused(f"{name}-overlong", get(route, replaced(name, "a" * 5000)), 400, overlong, page=page),
        refused(f"{name}-repeated", get(route, repeated(name, "x")), 400, repeat, page=page),
        refused(f"{name}-repeated-first", get(route, repeated_first(name, "x")), 400, repeat, page=page),
        refused(
            f"{name}-non-utf8",
            get(route, replaced(name, None), lambda text: f"{text}&{name}=%FF%FE%FD"),
            400,
            reason,
            page=page,
        ),
        refused(f"{name}-nul", get(route, replaced(name, "a\u0000b")), 400, reason, page=page),
    ]
    if required:
        cases.append(refused(f"{name}-missing", get(route, replaced(name, None)), 400, required, page=page))
    cases += [
        refused(f"{name}-{label}", get(route, replaced(name, value)), status, reason, page=page)
        for label, value in values
    ]
    for variant, case in (overrides or {}).items():
        at = next(n for n, c in enumerate(cases) if c.name == f"{name}-{variant}")
        cases[at] = case
    return cases


# --- path parameters -----------------------------------------------------------------------------

MALFORMED_APPIDS: list[tuple[str, str]] = [
    ("word", "not-an-appid"),
    ("dot-dot", ".."),
    ("encoded-dot-dot", "%2e%2e"),
    ("short", "wx" + "a" * 15),
    ("long", "wx" + "a" * 17),
    ("overlong", "wx" + "a" * 3000),
    ("upper-prefix", "WX" + "a" * 16),
    ("gh-name", "gh_" + "a" * 12),
    ("sql", "wx'%20OR%20'1'='1"),
    ("chinese", "wx%E4%B8%AD" + "a" * 15),
    ("space", "wx" + "a" * 15 + "%20"),
]
# Characters the route patterns take no part of: the resolver finds no route (a 404 with a reason).
UNROUTABLE: list[tuple[str, str]] = [
    ("quote-and-angle-brackets", "wx%22%3C%3E" + "a" * 13),
    ("nul", "wx" + "a" * 15 + "%00"),
    ("newline", "wx" + "a" * 15 + "%0A"),
    ("non-utf8", "wx%FF%FE" + "a" * 14),
]


def path_cases(
    method: str,
    path: str,
    name: str,
    valid: Callable[[World], dict[str, str]],
    values: Sequence[tuple[str, str]],
    reason: str,
    *,
    rest: Callable[[World], tuple[str, bytes | None]] = lambda w: ("", None),
    headers: tuple[tuple[str, str], ...] = (),
    page: bool = False,
) -> list[Case]:
    """``path`` with the parameter ``name`` set to each of ``values`` (sent as they are, already
    encoded), the others valid, and ``rest`` giving the (query, body) of an otherwise valid
    request: refused with ``reason``; and to each of ``UNROUTABLE``: no route matches (a 404 with
    a reason in JSON, from the resolver)."""

    def build(value: str) -> Build:
        def make(w: World) -> Req:
            params = {**valid(w), name: value}
            target = path
            for key, v in params.items():
                target = target.replace("{" + key + "}", v)
            query, body = rest(w)
            return Req(method, target, query, headers, body)

        return make

    cases = [refused(f"path-{name}-{label}", build(value), 400, reason, page=page) for label, value in values]
    cases += [refused(f"path-{name}-{label}", build(value), (400, 404)) for label, value in UNROUTABLE]
    return cases


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
