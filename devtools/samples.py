"""The fixed values the sample events of events/ carry (``make events``), and that their setup steps
(tests/support/event_setups.py) make valid at the simulator and in the table before an invoke."""

from __future__ import annotations

import base64

# Every sample push and message is signed at this time, with this nonce (each file its own, from
# here up), and encrypted with this "random" prefix: regenerating events/ gives the same files.
SIGNED_AT = 1763856000  # 2025-11-23T00:00:00Z
NONCE = "1590219412"
RANDOM16 = b"sample-events-16"

SAMPLE_TICKET = "ticket@@@sample-ticket-for-local-runs"
SAMPLE_MINI_PROGRAM = "wx5a3e1c9b7d2f4e60"
SAMPLE_AUTHORIZATION_CODE = "queryauthcode@@@sample-authorization-for-local-runs"
SAMPLE_JS_CODE = "sample-jscode-for-local-runs-0001"
SAMPLE_STATE = "sample-state-for-local-runs-0001"  # of an authorization link we made
SAMPLE_SESSION_TOKEN = "sample-session-token-for-local-runs-0001"  # what login would have answered
SAMPLE_SESSION_KEY = base64.b64encode(b"sample-sessionky").decode()  # AES-128, as WeChat gives it
SAMPLE_OPENID = "oSampleOpenidForLocalRuns001"
NEVER_AUTHORIZED = "wx0123456789abcdef"  # an appid that never authorized the platform

# Messages to the message URL (POST /wechat/authorizers/{appid}/messages).
SAMPLE_MINI_PROGRAM_USER_NAME = "gh_5a3e1c9b7d2f"  # the sample Mini Program's gh_ id (ToUserName)
SAMPLE_FAN_OPENID = "oSampleFanOpenidForLocalRun1"  # a user writing to it (FromUserName)
SAMPLE_MESSAGE_CONTENT = "Hello from a sample fan"
SAMPLE_MSG_ID = 24300000000000001
# WeChat's full-network release test: group 1's Official Account and its test fan, as captured.
RELEASE_TEST_ACCOUNT = "wx570bc396a51b8ff8"
RELEASE_TEST_USER_NAME = "gh_3c884a361561"
RELEASE_TEST_FAN = "ozy4qt5QUADNXORxCVipKMV9dss0"

# H5 pages of an authorized Official Account (web OAuth, JS-SDK): the sample Official Account, its
# gh_ id and the authorization code its sample `authorized` push carries.
SAMPLE_OFFICIAL_ACCOUNT = "wx3c7e9a1b5d2f8e04"
SAMPLE_OFFICIAL_ACCOUNT_USER_NAME = "gh_3c7e9a1b5d2f"
SAMPLE_OFFICIAL_ACCOUNT_CODE = "queryauthcode@@@sample-official-account-authorization-for-local-runs"
# The H5 allow-list of local runs (H5_ALLOW_LIST in local/env.json) and a page on it; the look-alike
# host is refused.
SAMPLE_H5_ALLOW_LIST = "https://h5.example.com"
SAMPLE_H5_PAGE = "https://h5.example.com/demo/index.html"
SAMPLE_H5_LOOK_ALIKE = "https://h5.example.com.evil.com/"
SAMPLE_PAGE_STATE = "sample-page-state"  # the page's own state, given back to it
SAMPLE_UNKNOWN_OAUTH_STATE = "0123456789abcdef0123456789abcdef"  # well formed, never issued
SAMPLE_OAUTH_TICKET = "sample-oauth-ticket-for-local-runs-00000001"  # what a callback would have given
SAMPLE_FAN_NICKNAME = "Sample Fan"  # the identity behind it (the openid is SAMPLE_OPENID)
SAMPLE_UNIONID = "oSampleUnionidForLocalRuns01"

# Mini Program releases (ReleasesFunction, ReleaseWorkerFunction): the sample template the setup steps
# find or put in the simulator's library, a release of it to the sample Mini Program under a fixed id
# (stored by a setup step, for the worker's sample batch), and a well-formed id of no release.
SAMPLE_TEMPLATE_VERSION = "1.0.0"
SAMPLE_TEMPLATE_DESC = "sample template for local runs"
SAMPLE_RELEASE_ID = "1763856000-5a3e1c9b"
UNKNOWN_RELEASE_ID = "1763856000-00000000"
SAMPLE_RELEASE_MESSAGE_ID = "5a3e1c9b-7d2f-4e60-8000-000000000001"  # SQS's id of the sample message
