"""The simulator's HTTP server and its Python façade, ``Simulator``.

One server plays every WeChat host: the API host (``WECHAT_API_BASE``), the mp host of the PC
authorization page (``WECHAT_MP_BASE``) and the open host of the mobile one and of the web-OAuth
page (``WECHAT_OPEN_BASE``). ``build_app`` registers every route explicitly. The ``/__sim`` control
routes (control.py) and the ``Simulator`` methods call the same feature functions, so tests can
use either.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from typing import Any

from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from wechat_simulator import (
    accounts,
    authorization,
    code_management,
    component,
    control,
    dispatch,
    full_network,
    harness,
    jssdk,
    messages,
    miniprogram,
    oauth,
    pages,
    pusher,
)
from wechat_simulator.records import GRACE_SECONDS, AuthorizationRequest, Platform
from wechat_simulator.state import SimState

DEFAULT_REDIRECT_URI = "http://localhost/wechat/component/authorized"
# Query values the request log hides: tests check that no token or code reaches any log.
_SECRET_QUERY_VALUE = re.compile(
    r"(?<=[?&])(access_token|component_access_token|refresh_token|code|js_code)=[^&#]*"
)

# Every WeChat API the simulator serves, by the module that implements it.
APIS = (
    *component.APIS,
    *accounts.APIS,
    *authorization.APIS,
    *miniprogram.APIS,
    *oauth.APIS,
    *jssdk.APIS,
    *messages.APIS,
    *code_management.APIS,
)


def _listed(domains: Iterable[str] | None) -> Any:
    """Web-authorization domains as ``harness.set_oauth_domains`` checks them (a lone string is
    passed on, to be refused, rather than read as a list of characters)."""
    return domains if domains is None or isinstance(domains, str) else list(domains)


def build_app(state: SimState) -> Flask:
    """The WSGI app: the WeChat APIs, the authorization pages, the ``/__sim`` control routes."""
    app = Flask("wechat_simulator")
    dispatch.register(app, state, APIS)
    pages.register(app, state)
    control.register(app, state)
    return app


class _RedactingRequestHandler(WSGIRequestHandler):
    """Werkzeug's request log line, with token and code values in the query replaced by ``***``."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        path = getattr(self, "path", None)
        if path is None:
            super().log_request(code, size)
            return
        self.path = _SECRET_QUERY_VALUE.sub(r"\1=***", path)
        try:
            super().log_request(code, size)
        finally:
            self.path = path


class Simulator:
    """Runs the simulator on a loopback port in a background thread (or in the foreground)."""

    def __init__(
        self,
        platform: Platform | None = None,
        *,
        callback_url: str | None = None,
        message_url: str | None = None,
        oauth_domains: Iterable[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
    ) -> None:
        self.state = SimState(
            platform or Platform.generate(),
            latency=latency,
            callback_url=callback_url,
            message_url=message_url,
        )
        harness.set_oauth_domains(self.state, _listed(oauth_domains))
        self.app = build_app(self.state)
        self._server: BaseWSGIServer = make_server(
            host, port, self.app, threaded=True, request_handler=_RedactingRequestHandler
        )
        self._server.daemon_threads = True  # type: ignore[attr-defined]  # threaded=True
        self.url = f"http://{host}:{self._server.server_port}"
        self._thread: threading.Thread | None = None
        self._timer_stop = threading.Event()

    @property
    def callback_url(self) -> str | None:
        """The authorization-event URL pushes go to (tickets, authorized, unauthorized)."""
        return self.state.callback_url

    @callback_url.setter
    def callback_url(self, url: str | None) -> None:
        harness.set_callback_url(self.state, url)

    @property
    def message_url(self) -> str | None:
        """The authorizers' message URL, ``$APPID$`` in it: the one set, else derived from the
        callback URL (``/wechat/component/events`` -> ``/wechat/authorizers/$APPID$/messages``)."""
        return harness.message_url_template(self.state)

    @message_url.setter
    def message_url(self, url: str | None) -> None:
        """Set it; None derives it from the callback URL again."""
        harness.set_message_url(self.state, url)

    @property
    def oauth_domains(self) -> list[str]:
        """The platform's web-authorization domains (网页授权域名): hosts a web-OAuth redirect_uri
        may use (``name`` any port, ``name:port`` that port); empty: any host."""
        return list(self.state.oauth_domains)

    @oauth_domains.setter
    def oauth_domains(self, domains: Iterable[str] | None) -> None:
        harness.set_oauth_domains(self.state, _listed(domains))

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> Simulator:
        # A short poll interval: stop() (shutdown) waits for the next poll.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="wechat-sim", daemon=True
        )
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

    # --- clock and faults ------------------------------------------------------------------

    def advance_clock(self, seconds: float) -> float:
        """Move the simulator's clock (every lifetime it checks) forward; return its new now."""
        return harness.advance_clock(self.state, seconds)

    def add_fault(self, api: str, **spec: Any) -> dict[str, Any]:
        """Same as ``POST /__sim/faults``; see ``records.Fault`` for the fields."""
        return harness.add_fault(self.state, {"api": api, **spec})

    def issue_component_token(self) -> str:
        """A component_access_token as api_component_token gives it (not counted as a call); like
        a real fetch, it starts the previous token's five-minute grace."""
        return self.state.issue_component_token().value

    # --- pushes ----------------------------------------------------------------------------

    def push_ticket(self, url: str | None = None, create_time: int | None = None) -> dict[str, Any]:
        return pusher.push_ticket(self.state, url, create_time)

    def push_xml(self, plaintext: str, url: str | None = None, **kwargs: Any) -> dict[str, Any]:
        return pusher.push_xml(self.state, plaintext, url, **kwargs)

    def wait_for_pushes(self, count: int, timeout: float = 10.0) -> bool:
        """Wait until ``count`` pushes in all were made (delivered or failed); False on timeout.
        Only api_start_push_ticket pushes in the background; every other push is done by the
        time the call that caused it answers."""
        return self.state.wait_for_pushes(count, timeout)

    # --- accounts --------------------------------------------------------------------------

    def add_account(
        self,
        kind: str = "official_account",
        *,
        appid: str | None = None,
        nick_name: str | None = None,
        unionid_bound: bool = False,
        **profile: Any,
    ) -> dict[str, Any]:
        """A new simulated official account or mini program (not yet authorized)."""
        return accounts.create_account(
            self.state, kind, appid=appid, nick_name=nick_name, unionid_bound=unionid_bound, **profile
        )

    def account(self, appid: str) -> dict[str, Any]:
        """The account and its authorization: accepted refresh and access tokens, func_info."""
        return accounts.describe_account(self.state, appid)

    def set_rotation(
        self, appid: str, enabled: bool = True, grace_seconds: float = GRACE_SECONDS
    ) -> dict[str, Any]:
        return accounts.set_rotation(self.state, appid, enabled, grace_seconds)

    def set_jscode_limit(self, appid: str, per_minute: int | None) -> dict[str, Any]:
        return accounts.set_jscode_limit(self.state, appid, per_minute)

    def revoke(self, appid: str, *, push: bool = True) -> dict[str, Any]:
        return accounts.revoke(self.state, appid, push=push)

    # --- authorization ---------------------------------------------------------------------

    def create_pre_auth_code(self) -> str:
        """A pre_auth_code as api_create_preauthcode gives it (not counted as a call)."""
        return authorization.new_pre_auth_code(self.state).value

    def approve(
        self,
        pre_auth_code: str,
        account_appid: str,
        *,
        redirect_uri: str = DEFAULT_REDIRECT_URI,
        auth_type: int = 3,
        biz_appid: str | None = None,
        category_id_list: tuple[int, ...] | list[int] = (),
        push: bool = True,
    ) -> str:
        """The account owner approves the link; return where the browser is redirected
        (``redirect_uri?auth_code=…&expires_in=3600``). Raises SimError where the page refuses."""
        link = self._link(pre_auth_code, redirect_uri, auth_type, biz_appid, category_id_list)
        return authorization.approve(self.state, link, account_appid, push=push).redirect

    def refuse(
        self,
        pre_auth_code: str,
        account_appid: str,
        *,
        redirect_uri: str = DEFAULT_REDIRECT_URI,
        auth_type: int = 3,
        biz_appid: str | None = None,
    ) -> str:
        link = self._link(pre_auth_code, redirect_uri, auth_type, biz_appid, ())
        return authorization.refuse(self.state, link, account_appid)

    def _link(
        self,
        pre_auth_code: str,
        redirect_uri: str,
        auth_type: int,
        biz_appid: str | None,
        category_id_list: tuple[int, ...] | list[int],
    ) -> AuthorizationRequest:
        """The link as given to approve/refuse, read as ``POST /__sim/authorize`` reads it."""
        spec = {
            "pre_auth_code": pre_auth_code,
            "redirect_uri": redirect_uri,
            "auth_type": str(auth_type),
            "biz_appid": biz_appid,
            "category_id_list": list(category_id_list),
        }
        return authorization.link_from_spec(self.state, spec)

    def query_auth_code(self, appid: str, *, push: bool = False) -> str:
        """A fresh authorization code for ``appid`` without the page (authorizing it if needed)."""
        return str(authorization.query_auth_code(self.state, appid, push=push)["authorization_code"])

    # --- mini programs ---------------------------------------------------------------------

    def wx_login(self, appid: str, user: str | None = None) -> str:
        """The code ``wx.login`` gives ``user`` (default: one default user) in mini program ``appid``."""
        return miniprogram.wx_login(self.state, appid, user)

    def session_keys(self) -> list[dict[str, Any]]:
        """Every session_key jscode2session issued, with its appid, openid and user."""
        return miniprogram.session_keys(self.state)

    def user_data(self, kind: str, **options: Any) -> dict[str, Any]:
        """Encrypted user data (``phone`` or ``userinfo``): ``{encryptedData, iv, plain, session_key}``;
        options: session_key, or openid and appid; watermark_appid; fields."""
        return miniprogram.user_data(self.state, kind, **options)

    # --- web OAuth on behalf of Official Accounts and JS-SDK tickets ------------------------

    def oauth_consent(self, authorize_url: str, user: str | None = None, action: str = "approve") -> str:
        """The fan ``user`` (the default user when None) opens ``authorize_url`` (the full
        ``connect/oauth2/authorize…#wechat_redirect`` link a service produced, whatever its host)
        and approves or refuses, over HTTP on this simulator; return the Location WeChat redirects
        to (``redirect_uri?code=…&state=…&appid=…``, no code when refused). An error page raises
        SimError with its ``X-Sim-Error`` reason."""
        return oauth.follow_authorize_url(self.url, authorize_url, user, action)

    def oauth_tokens(self) -> list[str]:
        """Every user access token and refresh token sns/oauth2/component/access_token issued."""
        return oauth.oauth_tokens(self.state)

    def jsapi_tickets(self, appid: str) -> list[dict[str, Any]]:
        """The JS-SDK tickets getticket issued for ``appid``: ``[{ticket, appid, type, issued_at,
        expires_at, valid}]``, oldest first (jsapi and wx_card)."""
        return jssdk.jsapi_tickets(self.state, appid)

    def verify_jssdk(
        self, appid: str, url: str, timestamp: int | str, nonce_str: str, signature: str
    ) -> bool:
        """Whether WeChat's client accepts ``wx.config`` with these values on the page at ``url``
        (its fragment dropped): the signature matches one of ``appid``'s valid jsapi tickets and
        the timestamp is within ``jssdk.TIMESTAMP_TOLERANCE`` (300 s) of the simulator's clock.
        ``POST /__sim/verify_jssdk`` also says why not."""
        verdict = jssdk.verify(
            self.state, appid, url=url, timestamp=timestamp, nonce_str=nonce_str, signature=signature
        )
        return bool(verdict["accepted"])

    # --- messages to authorizers -----------------------------------------------------------

    def send_message(
        self,
        appid: str,
        msg_type: str = "text",
        *,
        fields: dict[str, Any] | None = None,
        user: str | None = None,
        resend_of: str | None = None,
    ) -> dict[str, Any]:
        """A fan (``user``) sends a message to account ``appid``: posted to its message URL;
        answers what was sent and what came back (``messages.send_message``). ``fields``
        change, add or (None) remove plaintext fields."""
        return messages.send_message(
            self.state,
            appid,
            None if resend_of else msg_type,
            fields=fields,
            user=user,
            resend_of=resend_of,
        )

    def send_event(
        self, appid: str, event: str, *, fields: dict[str, Any] | None = None, user: str | None = None
    ) -> dict[str, Any]:
        """An event (MsgType event, ``Event`` = ``event``) to account ``appid``'s message URL."""
        return messages.send_message(self.state, appid, "event", event=event, fields=fields, user=user)

    def resend_message(self, message_id: str) -> dict[str, Any]:
        """Send an earlier message (its answer's ``id``) again, as WeChat does after 5 s of
        silence: the same plaintext, a new timestamp and nonce."""
        return messages.resend_message(self.state, message_id)

    def fan_openid(self, appid: str, user: str | None = None) -> str:
        """``user``'s openid in account ``appid`` (the default user when None)."""
        return messages.fan_openid(self.state, appid, user)

    def custom_messages(self, appid: str | None = None) -> list[dict[str, Any]]:
        """The customer-service messages accepted by ``custom/send`` (to ``appid`` only when given)."""
        return messages.custom_messages(self.state, appid)

    def full_network_test(
        self, group: int | None = None, kinds: list[str] | tuple[str, ...] | None = None
    ) -> dict[str, Any]:
        """WeChat's full-network release test against the callback and message URLs;
        ``{"passed", "group", "kinds", "accounts", "steps": [{"name", "passed", "detail", "seconds"}]}``."""
        return full_network.run(self.state, group, list(kinds) if kinds is not None else None)

    # --- Mini Program code management ------------------------------------------------------

    def add_draft(
        self, user_version: str = "1.0.0", user_desc: str = "simulated draft", **source: Any
    ) -> dict[str, Any]:
        """A draft in the component's draft box (a developer uploaded code), as
        ``gettemplatedraftlist`` lists it; ``source``: source_miniprogram_appid,
        source_miniprogram, developer."""
        return code_management.add_draft(self.state, user_version=user_version, user_desc=user_desc, **source)

    def add_template(
        self,
        user_version: str = "1.0.0",
        user_desc: str = "simulated draft",
        template_type: int = 0,
        **source: Any,
    ) -> dict[str, Any]:
        """A draft added to the template library at once: the template, as ``gettemplatelist``
        lists it (``template_id``)."""
        return code_management.add_template(
            self.state, template_type, user_version=user_version, user_desc=user_desc, **source
        )

    def set_audit_outcome(self, appid: str, outcome: str, reason: str | None = None) -> dict[str, Any]:
        """What WeChat's review decides for this Mini Program's audits from now on: ``success``
        (the default), ``fail``, ``delay`` or ``lost`` (approved, but the event never pushed)."""
        return code_management.set_audit_outcome(self.state, appid, outcome, reason)

    def finish_audits(self, appid: str | None = None, *, workers: int = 1) -> list[dict[str, Any]]:
        """Finish the pending audits (all, or ``appid``'s) with each account's outcome, pushing
        the events to the message URL; what was pushed and how the service answered."""
        return code_management.finish_audits(self.state, appid, workers=workers)

    def resend_audit_event(self, appid: str) -> dict[str, Any]:
        """Push the account's last audit event again (WeChat's re-send: the same plaintext)."""
        return code_management.resend_audit_event(self.state, appid)

    def code_state(self, appid: str) -> dict[str, Any]:
        """The Mini Program's development version, commits, audits, releases, domains, privacy
        settings, audit knobs and per-account call counts."""
        return code_management.code_state(self.state, appid)

    def code_calls(self, appid: str) -> dict[str, int]:
        """Calls of the code-management APIs made with this account's token, by API name."""
        return code_management.code_calls(self.state, appid)

    def set_code_permission(self, appid: str, granted: bool = True) -> dict[str, Any]:
        """Whether the Mini Program grants permission set 18 (withheld: the APIs answer 61007)."""
        return code_management.set_code_permission(self.state, appid, granted)

    def set_audit_quota(self, limit: int | None) -> dict[str, Any]:
        """The component's monthly submit_audit quota (None: unlimited; 85085 once spent); the
        count starts again from 0."""
        return code_management.set_audit_quota(self.state, limit)

    def audit_quota(self) -> dict[str, Any]:
        """``{"limit", "used"}`` of the monthly submit_audit quota."""
        return code_management.audit_quota(self.state)
