"""Every key of the table, in one place (``pk`` / ``sk``, both strings).

- per platform, pk ``component#<component appid>``:
  - ``ticket``: the newest component_verify_ticket (by CreateTime);
  - ``token``: the component_access_token (version, lease, expiry);
  - ``ticket_push_request``: when api_start_push_ticket was last asked for;
  - ``authorizer#<appid>``: an authorization (refresh and access token, version, lease, due index);
  - ``jsapi_ticket#<appid>``: an Official Account's JS-SDK ticket (version, lease, due index), made
    on first use and deleted when the account revokes;
  - ``event#<appid>#<CreateTime>#<InfoType>``: the audit trail of authorization pushes (TTL);
  - ``state#<state>``, ``authcode#<hash of the code>``, ``session#<hash of the session token>``,
    ``oauthstate#<hash of the state>``, ``oauthticket#<hash of the ticket>``: short-lived items under
    the ``expiration`` TTL;
  - ``release#<release id>``: a Mini Program release (template, version, targets, options);
  - ``wxacode#<appid>``: the release whose audit a Mini Program waits for (audit events find it);
- delivery keys (``store.deliveries``): pk ``delivery#<component appid>#<kind>#<hash of the key>``,
  sk ``delivery``, under the TTL;
- a release's accounts (``store.releases``): pk ``release#<component appid>#<release id>``, sk
  ``account#<appid>``: one item per account and release, its state moved by conditional writes.

Items whose token must be refreshed carry ``due_pk`` = ``due#<component appid>`` and ``due_at``;
the sparse ``due`` index (KEYS_ONLY) lists them by due time. Release accounts waiting for an
audit carry ``due_pk`` = ``auditdue#<component appid>`` and the time to ask WeChat about it.
"""

from __future__ import annotations

import hashlib

TTL_ATTRIBUTE = "expiration"
DUE_INDEX = "due"
TICKET_SK = "ticket"
COMPONENT_TOKEN_SK = "token"  # noqa: S105 - a sort key, not a credential
TICKET_PUSH_REQUEST_SK = "ticket_push_request"
AUTHORIZER_PREFIX = "authorizer#"
JSAPI_TICKET_PREFIX = "jsapi_ticket#"
DELIVERY_SK = "delivery"


def component_pk(component_appid: str) -> str:
    return f"component#{component_appid}"


def due_pk(component_appid: str) -> str:
    return f"due#{component_appid}"


def delivery_pk(component_appid: str, kind: str, key_hash: str) -> str:
    return f"delivery#{component_appid}#{kind}#{key_hash}"


def authorizer_sk(authorizer_appid: str) -> str:
    return f"{AUTHORIZER_PREFIX}{authorizer_appid}"


def authorizer_appid_of(sk: str) -> str:
    return sk.removeprefix(AUTHORIZER_PREFIX)


def jsapi_ticket_sk(authorizer_appid: str) -> str:
    return f"{JSAPI_TICKET_PREFIX}{authorizer_appid}"


def event_sk(authorizer_appid: str, create_time: int, info_type: str) -> str:
    return f"event#{authorizer_appid}#{create_time:012d}#{info_type}"


def state_sk(state: str) -> str:
    return f"state#{state}"


def code_sk(code_hash: str) -> str:
    return f"authcode#{code_hash}"


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def session_sk(session_token: str) -> str:
    # A hash, so a table dump reveals no usable session token.
    return "session#" + _digest(session_token)


def oauth_state_sk(state: str) -> str:
    return "oauthstate#" + _digest(state)


def oauth_ticket_sk(ticket: str) -> str:
    # A hash: the ticket is a bearer credential for an identity until it is redeemed.
    return "oauthticket#" + _digest(ticket)


RELEASE_PREFIX = "release#"
RELEASE_ACCOUNT_PREFIX = "account#"


def release_sk(release_id: str) -> str:
    return f"{RELEASE_PREFIX}{release_id}"


def release_pk(component_appid: str, release_id: str) -> str:
    return f"release#{component_appid}#{release_id}"


def release_account_sk(appid: str) -> str:
    return f"{RELEASE_ACCOUNT_PREFIX}{appid}"


def current_code_sk(appid: str) -> str:
    return f"wxacode#{appid}"


def audit_due_pk(component_appid: str) -> str:
    return f"auditdue#{component_appid}"
