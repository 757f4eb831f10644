"""A WeChat Open Platform simulator for local runs and tests.

It plays WeChat's side over real HTTP: it holds a third-party platform's appid, secret, token
and EncodingAESKey, pushes encrypted ``component_verify_ticket``s and authorization events to
a callback URL, sends fans' messages and events to the authorizers' message URL (and checks the
encrypted replies), serves the platform APIs with WeChat's request and response shapes and error
codes, plays simulated official accounts and mini programs (their owners approving or refusing
an authorization, their users logging in, fans signing in to web pages through web OAuth),
issues JS-SDK tickets and checks ``wx.config`` signatures, manages Mini Program code (template
library, commit, audits whose outcome it pushes as events, release), runs WeChat's full-network
release test, counts every call, and can be told to fail
(errcode, HTTP status, delay, a dropped answer, an answer lost after the work was done).
"""

from wechat_simulator.protocol import SimError
from wechat_simulator.records import Platform
from wechat_simulator.server import Simulator
from wechat_simulator.state import SimState

__all__ = ["Platform", "SimError", "SimState", "Simulator"]
