"""``make demo``'s H5 steps (devtools/demo.py runs them): a page of the authorized Official Account
signs a fan in through web OAuth on the account's behalf and gets its ``wx.config``, against the
local stack, with WeChat's side (the consent page, the JS-SDK client's check) played by the simulator
over HTTP. The page is devtools.samples' sample page, on local/env.json's ``H5_ALLOW_LIST``."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote_plus, urlencode, urlsplit, urlunsplit

from devtools.samples import SAMPLE_H5_LOOK_ALIKE, SAMPLE_H5_PAGE

if TYPE_CHECKING:
    from devtools.demo import Demo


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


def _masked_url(demo: Demo, url: str, *names: str) -> str:
    """``url`` with the values of the query parameters ``names`` masked."""
    parts = urlsplit(url)
    query = re.sub(
        r"(^|&)([^=&]+)=([^&]*)",
        lambda m: f"{m[1]}{m[2]}={demo.mask(unquote_plus(m[3]))}" if unquote_plus(m[2]) in names else m[0],
        parts.query,
    )
    return urlunsplit(parts._replace(query=query))


def _fan_approves(demo: Demo, consent: str, callback_url: str) -> str:
    """The fan's browser on WeChat's consent page (the simulator's), approving as "demo-fan";
    returns where WeChat sends the browser, which must be our callback."""
    parts = urlsplit(consent)
    fan = urlencode({"sim_user": "demo-fan", "sim_action": "approve"})
    approved = demo.hop(urlunsplit(parts._replace(query=f"{parts.query}&{fan}", fragment="")))
    if approved.status_code != 302:
        reason = approved.headers.get("X-Sim-Error", approved.text[:200])
        raise RuntimeError(f"WeChat's consent page answered {approved.status_code}: {reason}")
    back_to_us = str(approved.headers["Location"])
    shown = _masked_url(demo, back_to_us, "code", "state")
    if not back_to_us.startswith(callback_url + "?"):
        raise RuntimeError(f"WeChat sent the browser elsewhere: {shown}")
    demo.say(f"the fan approves; WeChat sends the browser to {shown}")
    return back_to_us


def h5_web_oauth(demo: Demo) -> None:
    """A page of the Official Account asks who the fan is (snsapi_userinfo): the platform sends the
    browser to WeChat, the fan consents (the simulator's page), WeChat sends the browser to the
    platform's callback, which sends it back to the page with a one-time ticket; the page's backend
    redeems it (IAM) for the identity, once. WeChat's OAuth tokens must be in no answer."""
    appid = demo.authorize("official_account", "1", "Demo Coffee")
    page, page_state = SAMPLE_H5_PAGE, "demo-page-state"
    demo.say(f"a page of {appid} inside WeChat, {page} (on H5_ALLOW_LIST), asks who the fan is:")
    params = {"scope": "snsapi_userinfo", "redirect_uri": page, "state": page_state, "format": "json"}
    started = demo.api("GET", f"/wechat/oauth/{appid}/authorize", params=params)
    demo.say(
        f"GET /wechat/oauth/{appid}/authorize?scope=snsapi_userinfo&format=json -> {started.status_code}"
    )
    if started.status_code != 200:
        raise RuntimeError(f"authorize answered {started.status_code}: {started.text[:300]}")
    consent = str(started.json()["url"])
    callback_url = f"{demo.info.api_url}/wechat/oauth/{appid}/callback"
    if urlsplit(consent).fragment != "wechat_redirect" or _query(consent).get("redirect_uri") != callback_url:
        shown = _masked_url(demo, consent, "state")
        raise RuntimeError(f"not WeChat's consent page for our callback {callback_url}: {shown}")
    demo.say(f"  WeChat's consent page: {_masked_url(demo, consent, 'state')}", 4)
    back_to_us = _fan_approves(demo, consent, callback_url)
    callback = demo.hop(back_to_us)
    to_page = callback.headers.get("Location", "")
    if callback.status_code != 302 or not to_page.startswith(page + "?"):
        raise RuntimeError(f"the callback answered {callback.status_code}: {callback.text[:300]}")
    demo.say(f"GET /wechat/oauth/{appid}/callback -> 302, the browser goes back to the page:")
    demo.say(_masked_url(demo, to_page, "ticket"), 6)
    back = _query(to_page)
    if "ticket" not in back or back.get("state") != page_state:
        raise RuntimeError(f"no ticket for the page (error {back.get('error')}) or not its state")
    redeemed = demo.api("POST", "/wechat/oauth/redeem", json={"ticket": back["ticket"]})
    demo.say(f"the page's backend redeems the ticket: POST /wechat/oauth/redeem -> {redeemed.status_code}")
    if redeemed.status_code != 200:
        raise RuntimeError(f"redeem answered {redeemed.status_code}: {redeemed.text[:300]}")
    identity = redeemed.json()
    if identity.get("appid") != appid or not str(identity.get("openid", "")).startswith("o"):
        raise RuntimeError(f"not an identity in {appid}: {sorted(identity)}")
    demo.say(json.dumps(identity, ensure_ascii=False), 6)
    again = demo.api("POST", "/wechat/oauth/redeem", json={"ticket": back["ticket"]})
    demo.say(f"redeemed again -> {again.status_code} {again.text.strip()}")
    if again.status_code != 409:
        raise RuntimeError("a ticket must be redeemed once")
    answers = [started.text, back_to_us, callback.text, to_page, redeemed.text, again.text]
    issued = demo.sim("GET", "/__sim/oauth_tokens")
    if any(token in answer for token in issued for answer in answers):
        raise RuntimeError("an OAuth token of WeChat's is in an answer")
    demo.say(f"WeChat's OAuth tokens ({len(issued)} issued so far) are in no answer and never printed")


def h5_jssdk(demo: Demo) -> None:
    """The page asks for its wx.config; WeChat's client (the simulator) checks the signature."""
    appid = demo.authorize("official_account", "1", "Demo Coffee")
    answer = demo.api("GET", f"/wechat/jssdk/{appid}/config", params={"url": SAMPLE_H5_PAGE})
    demo.say(f"GET /wechat/jssdk/{appid}/config?url={SAMPLE_H5_PAGE} -> {answer.status_code}")
    if answer.status_code != 200:
        raise RuntimeError(answer.text[:300])
    config = answer.json()
    demo.say(json.dumps(config), 6)
    check = {"appid": appid, "url": SAMPLE_H5_PAGE, "timestamp": config["timestamp"]}
    check |= {"nonce_str": config["nonceStr"], "signature": config["signature"]}
    verdict = demo.sim("POST", "/__sim/verify_jssdk", **check)
    accepted = "accepted" if verdict["accepted"] else f"REFUSED ({verdict['reason']})"
    demo.say(f"wx.config in WeChat's client (the simulator's POST /__sim/verify_jssdk): {accepted}")
    if not verdict["accepted"]:
        raise RuntimeError(f"WeChat's client refused the configuration: {verdict['reason']}")
    refused = demo.api("GET", f"/wechat/jssdk/{appid}/config", params={"url": SAMPLE_H5_LOOK_ALIKE})
    demo.say(f"for the look-alike {SAMPLE_H5_LOOK_ALIKE}: {refused.status_code} {refused.text.strip()}")
    if refused.status_code != 400:
        raise RuntimeError("a page off the allow-list must be refused")
