"""The authorization pages, where a simulated account owner sees a link and acts on it, and the
web-OAuth page, where a simulated fan does.

``GET /cgi-bin/componentloginpage`` (PC, WeChat's mp host) and ``GET /wxaopen/safe/bindcomponent``
(mobile, the open host, ``action=bindcomponent&no_scan=1``; the older ``/safe/bindcomponent``
too) check the link and list the accounts that may authorize it. ``sim_account=<appid>&
sim_action=approve|refuse`` acts as that account's owner: 302 to where WeChat redirects
(``authorization.approve``/``refuse``), or a 4xx error page with ``X-Sim-Error: <reason>``.

``GET /connect/oauth2/authorize`` (the open host; web OAuth on behalf of an Official Account)
checks the link (``oauth.parse_request``/``check_request``) and shows the user's choices;
``sim_user=<name>&sim_action=approve|refuse`` acts as that fan (the default user without
``sim_user``): 302 to where WeChat redirects (``oauth.consent``), or the same error page.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from urllib.parse import urlencode

from flask import Flask, Response, request

from wechat_simulator import authorization, oauth, users
from wechat_simulator.protocol import SimError
from wechat_simulator.records import AuthorizationRequest, OAuthRequest
from wechat_simulator.state import SimState

_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title></head>
<body>
<h1>{title}</h1>
{body}
</body></html>
"""


def _html(title: str, body: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    text = _PAGE.format(title=html.escape(title), body=body)
    return Response(text, status=status, mimetype="text/html", headers=headers)


def _error_page(problem: SimError) -> Response:
    body = f'<p id="error" data-reason="{html.escape(problem.reason)}">{html.escape(problem.message)}</p>'
    return _html("授权失败 (authorization refused)", body, problem.status, {"X-Sim-Error": problem.reason})


def _consent_page(state: SimState, link: AuthorizationRequest, args: Mapping[str, str]) -> Response:
    rows = []
    for account in authorization.eligible_accounts(state, link):
        links = []
        for action in ("approve", "refuse"):
            query = urlencode({**args, "sim_account": account.appid, "sim_action": action})
            links.append(f'<a href="?{html.escape(query)}" data-action="{action}">{action}</a>')
        rows.append(
            f'<li data-appid="{html.escape(account.appid)}">{html.escape(account.nick_name)} '
            f"({html.escape(account.kind)}, {html.escape(account.appid)}): {' | '.join(links)}</li>"
        )
    body = (
        f"<p>Component {html.escape(link.component_appid)} asks for authorization "
        f"(auth_type {link.auth_type}).</p>"
        f"<ul>{''.join(rows) or '<li>no simulated account may authorize this link</li>'}</ul>"
    )
    return _html("授权 (simulated WeChat authorization)", body)


def page(state: SimState, args: Mapping[str, str], *, mobile: bool) -> Response:
    """One of the authorization pages: check the link; show it, or act as the account owner."""
    state.record("bindcomponent" if mobile else "componentloginpage", {"query": dict(args)})
    try:
        link = authorization.parse_link(args, mobile=mobile)
        action = args.get("sim_action")
        if action is None:
            authorization.check_request(state, link)
            return _consent_page(state, link, args)
        account_appid = args.get("sim_account")
        if not account_appid:
            raise SimError("missing_parameter", "sim_action needs sim_account")
        if action == "approve":
            approval = authorization.approve(state, link, account_appid)
            headers = {"Location": approval.redirect}
            if approval.push is not None:
                headers["X-Sim-Push-Status"] = str(approval.push.get("status", "error"))
            return Response(status=302, headers=headers)
        if action == "refuse":
            redirect = authorization.refuse(state, link, account_appid)
            return Response(status=302, headers={"Location": redirect})
        raise SimError("invalid_sim_action", "sim_action must be approve or refuse")
    except SimError as problem:
        return _error_page(problem)


def _oauth_consent_page(state: SimState, link: OAuthRequest, args: Mapping[str, str], user: str) -> Response:
    silent = link.scope == "snsapi_base"
    with state.lock:
        account = oauth.check_request(state, link)
        nick_name = account.nick_name
    links = []
    for action in ("approve",) if silent else oauth.ACTIONS:
        query = urlencode({**args, "sim_user": user, "sim_action": action})
        links.append(f'<a href="?{html.escape(query)}" data-action="{action}">{action}</a>')
    note = (
        "snsapi_base: WeChat shows no screen and redirects at once (approve is the only choice)."
        if silent
        else "snsapi_userinfo: the user is asked for their nickname, avatar and region."
    )
    body = (
        f'<p data-appid="{html.escape(link.appid)}" data-scope="{html.escape(link.scope)}">'
        f"{html.escape(nick_name)} ({html.escape(link.appid)}) asks user "
        f'<span data-user="{html.escape(user)}">{html.escape(user)}</span> to sign in '
        f"({html.escape(link.scope)}).</p><p>{html.escape(note)}</p><p>{' | '.join(links)}</p>"
    )
    return _html("网页授权 (simulated WeChat web authorization)", body)


def oauth_page(state: SimState, args: Mapping[str, str]) -> Response:
    """The web-OAuth page: check the link; show it, or act as the fan (``sim_user``)."""
    state.record("authorize", {"query": dict(args)})
    try:
        link = oauth.parse_request(args)
        user = users.user_name(args.get("sim_user"))
        action = args.get("sim_action")
        if action is None:
            return _oauth_consent_page(state, link, args, user)
        return Response(status=302, headers={"Location": oauth.consent(state, link, user, action)})
    except SimError as problem:
        return _error_page(problem)


def register(app: Flask, state: SimState) -> None:
    """Serve the pages (their views are counted in calls; faults and latency do not apply)."""

    @app.get("/cgi-bin/componentloginpage")
    def pc_authorization_page() -> Response:
        return page(state, request.args, mobile=False)

    @app.get("/wxaopen/safe/bindcomponent")
    @app.get("/safe/bindcomponent")
    def mobile_authorization_page() -> Response:
        return page(state, request.args, mobile=True)

    @app.get(oauth.AUTHORIZE_PATH)
    def web_oauth_page() -> Response:
        return oauth_page(state, request.args)
