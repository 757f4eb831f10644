"""Serving the WeChat APIs over HTTP: each call is counted and recorded, then meets the added
latency, an injected fault (instead of, or after, its work) and its daily limit, and only then
its handler (``protocol.ApiRoute``; a request without any body meets the route's
``empty_body`` handler when it has one)."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterable
from typing import Any

from flask import Flask, Response, jsonify, request

from wechat_simulator import harness
from wechat_simulator.protocol import ApiRoute, api_name, error
from wechat_simulator.records import Fault
from wechat_simulator.state import SimState


def register(app: Flask, state: SimState, apis: Iterable[ApiRoute]) -> None:
    """Serve every API in ``apis`` at its path (GET and POST; the wrong one answers 405)."""
    for route in apis:
        app.add_url_rule(
            route.path,
            endpoint=route.path,
            view_func=lambda route=route: call_api(state, route),
            methods=["GET", "POST"],
        )


def call_api(state: SimState, route: ApiRoute) -> Response:
    if request.method != route.method:
        return Response(json.dumps(error(-1)), status=405, mimetype="application/json")
    name = api_name(route.path)
    body: dict[str, Any] = {}
    raw = request.get_data()
    if raw:
        try:
            parsed = json.loads(raw)
        except ValueError:
            return jsonify(error(47001))
        if not isinstance(parsed, dict):
            return jsonify(error(47001))
        body = parsed
    query = dict(request.args)
    state.record(name, {"query": query, "body": body})
    if state.latency:
        time.sleep(state.latency)
    fault = harness.take_fault(state, name)
    if fault is not None and not fault.after_effect:
        failed = failure(fault)
        if failed is not None:
            return failed
    if harness.over_quota(state, name):
        return jsonify(error(45009))
    handler = route.empty_body if not raw and route.empty_body is not None else route.handler
    answer = handler(state, body, query)
    if fault is not None and fault.after_effect:
        # The work is done (a token rotated, a code used up); the caller never sees it.
        failed = failure(fault, default_status=502)
        assert failed is not None
        return failed
    return jsonify(answer)


def failure(fault: Fault, default_status: int | None = None) -> Response | None:
    """The fault's answer, after its delay; None when it only delays."""
    if fault.delay:
        time.sleep(fault.delay)
    if fault.drop:
        return drop_connection()
    if fault.http_status:
        return Response("simulated failure", status=fault.http_status)
    if fault.errcode is not None:
        return jsonify(error(fault.errcode))
    if default_status is not None:
        return Response("simulated failure", status=default_status)
    return None


def drop_connection() -> Response:
    """Close the client's connection without an answer (the response below never arrives)."""
    sock = request.environ.get("werkzeug.socket")
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    return Response("", status=502)
