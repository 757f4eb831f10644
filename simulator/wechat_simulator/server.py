"""The simulator's HTTP server: WeChat's API routes plus a ``/__sim`` control API."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.serving import BaseWSGIServer, make_server

from wechat_simulator import pusher
from wechat_simulator.state import Fault, Platform, SimState

ApiHandler = Callable[[SimState, dict[str, Any], dict[str, str]], dict[str, Any]]

# WeChat API handlers, by path. Modules register theirs with ``api``.
API_ROUTES: dict[str, tuple[str, ApiHandler]] = {}


def api(path: str, method: str = "POST") -> Callable[[ApiHandler], ApiHandler]:
    def register(handler: ApiHandler) -> ApiHandler:
        API_ROUTES[path] = (method, handler)
        return handler

    return register


def wechat_error(errcode: int, errmsg: str) -> dict[str, Any]:
    return {"errcode": errcode, "errmsg": f"{errmsg} rid: {time.time_ns():x}"}


ERRMSG = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40125: "invalid appsecret",
    41004: "appsecret missing",
    42001: "access_token expired",
    45009: "reach max api daily quota limit",
    47001: "data format error",
    61005: "component ticket is expired",
    61006: "component ticket is invalid",
    61011: "invalid component",
}


def error(errcode: int) -> dict[str, Any]:
    return wechat_error(errcode, ERRMSG.get(errcode, "error"))


class Simulator:
    """Runs the simulator on a loopback port in a background thread (or in the foreground)."""

    def __init__(
        self,
        platform: Platform | None = None,
        *,
        callback_url: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
    ) -> None:
        from wechat_simulator import apis  # noqa: F401, PLC0415 - registers the API routes

        self.state = SimState(platform or Platform.generate(), latency=latency)
        self.callback_url = callback_url
        self.app = self._build_app()
        self._server: BaseWSGIServer = make_server(host, port, self.app, threaded=True)
        self._server.daemon_threads = True  # type: ignore[attr-defined]  # threaded=True
        self.url = f"http://{host}:{self._server.server_port}"
        self._thread: threading.Thread | None = None
        self._timer_stop = threading.Event()

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> Simulator:
        self._thread = threading.Thread(target=self._server.serve_forever, name="wechat-sim", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._timer_stop.set()
        if self._thread is not None:  # shutdown() waits for serve_forever, so only when it runs
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def push_tickets_every(self, seconds: float) -> None:
        """Push a ticket now and then every ``seconds``, like WeChat's 10-minute push."""

        def loop() -> None:
            while not self._timer_stop.is_set():
                try:
                    self.push_ticket()
                except Exception as exc:
                    print(f"ticket push failed: {exc}", flush=True)
                self._timer_stop.wait(seconds)

        threading.Thread(target=loop, name="wechat-sim-ticket-timer", daemon=True).start()

    # --- pushes ----------------------------------------------------------------------------

    def _callback(self, url: str | None) -> str:
        target = url or self.callback_url
        if not target:
            raise ValueError("no callback URL configured")
        return target

    def push_ticket(self, url: str | None = None, create_time: int | None = None) -> dict[str, Any]:
        ticket = self.state.new_ticket()
        result = pusher.push(
            self.state, self._callback(url), pusher.ticket_xml(self.state, ticket, create_time)
        )
        return result | {"ticket": ticket}

    def push_xml(self, plaintext: str, url: str | None = None, **kwargs: Any) -> dict[str, Any]:
        return pusher.push(self.state, self._callback(url), plaintext, **kwargs)

    # --- HTTP ------------------------------------------------------------------------------

    def _build_app(self) -> Flask:
        app = Flask("wechat_simulator")
        state = self.state

        def call_api(path: str) -> Response:
            method, handler = API_ROUTES[path]
            if request.method != method:
                return jsonify(error(-1)), 405  # type: ignore[return-value]
            name = path.rsplit("/", 1)[-1]
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
            fault = state.take_fault(name)
            if fault is not None:
                if fault.delay:
                    time.sleep(fault.delay)
                if fault.http_status:
                    return Response("simulated failure", status=fault.http_status)
                if fault.errcode is not None:
                    return jsonify(error(fault.errcode))
            with state.lock:
                over = state.over_quota(name)
            if over:
                return jsonify(error(45009))
            return jsonify(handler(state, body, query))

        for path in API_ROUTES:
            app.add_url_rule(
                path,
                endpoint=path,
                view_func=lambda path=path: call_api(path),
                methods=["GET", "POST"],
            )
        self._add_control_routes(app)
        return app

    def _add_control_routes(self, app: Flask) -> None:
        state = self.state

        @app.get("/__sim/platform")
        def platform() -> Any:
            p = state.platform
            return jsonify(
                appid=p.appid, appsecret=p.appsecret, token=p.token, encoding_aes_key=p.encoding_aes_key
            )

        @app.get("/__sim/calls")
        def calls() -> Any:
            with state.lock:
                return jsonify(dict(state.calls))

        @app.delete("/__sim/calls")
        def reset_calls() -> Any:
            with state.lock:
                state.calls.clear()
                state.requests.clear()
            return jsonify(ok=True)

        @app.get("/__sim/requests")
        def requests_made() -> Any:
            api_name = request.args.get("api")
            with state.lock:
                rows = [r for r in state.requests if api_name in (None, r["api"])]
            return jsonify(rows)

        @app.post("/__sim/faults")
        def add_fault() -> Any:
            spec = request.get_json(force=True)
            fault = Fault(**spec)
            with state.lock:
                state.faults.append(fault)
            return jsonify(fault.describe())

        @app.delete("/__sim/faults")
        def clear_faults() -> Any:
            with state.lock:
                state.faults.clear()
            return jsonify(ok=True)

        @app.post("/__sim/limits")
        def set_limit() -> Any:
            spec = request.get_json(force=True)
            with state.lock:
                state.daily_limits[str(spec["api"])] = int(spec["daily_limit"])
            return jsonify(ok=True)

        @app.post("/__sim/clock")
        def advance_clock() -> Any:
            spec = request.get_json(force=True)
            with state.lock:
                state.clock_offset += float(spec.get("advance", 0))
            return jsonify(now=state.now())

        @app.post("/__sim/push/ticket")
        def push_ticket() -> Any:
            spec = request.get_json(silent=True) or {}
            return jsonify(self.push_ticket(spec.get("url"), spec.get("create_time")))

        @app.post("/__sim/push/xml")
        def push_xml() -> Any:
            spec = request.get_json(force=True)
            return jsonify(self.push_xml(spec["xml"], spec.get("url"), to_user_name=spec.get("to_user_name")))
