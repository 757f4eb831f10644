"""What X-Ray may see. Every handler builds its Tracer with ``Tracer(patch_modules=PATCHED_MODULES)``
and ``capture_lambda_handler(capture_response=False, capture_error=False)``.

Only botocore is patched: the requests patch records a failed call's error text, and for a
WeChat call that text holds the URL with ``access_token=`` or ``js_code=`` in it
(tests/integration/test_no_secrets_in_traces.py reproduces it). Responses and errors of the
handlers are never recorded either: they hold tokens, session tokens and decrypted user data.
"""

from __future__ import annotations

PATCHED_MODULES = ("botocore",)
