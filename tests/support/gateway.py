"""A loopback HTTP server that plays API Gateway for the template's routes, calling the real handlers.

Integration tests send real HTTP (from the simulator, or from requests) to it; it turns each
request into the REST proxy event API Gateway would build and answers with the handler's response.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from devtools.events import LambdaContext, rest_event
from devtools.template import api_routes
from tests.support.lambdas import decode_body, load_function


class Gateway:
    def __init__(self) -> None:
        self.routes = []
        for method, path, name, code_uri in api_routes():
            pattern = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path) + "$")
            self.routes.append((method, pattern, path, name, code_uri))
        self.answers: list[str] = []  # every response's status, headers and body, for leak checks
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> Gateway:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        for method, pattern, resource, name, code_uri in self.routes:
            match = pattern.match(request.path)
            if match and method == request.method:
                event = rest_event(
                    request.method,
                    request.path,
                    resource=resource,
                    path_parameters=match.groupdict() or None,
                    query=list(request.args.items(multi=True)),
                    body=request.get_data() or None,
                    headers=dict(request.headers),
                    source_ip=request.remote_addr or "127.0.0.1",
                )
                module = load_function(code_uri)
                result = module.lambda_handler(event, LambdaContext(function_name=name))
                body = decode_body(result).decode("utf-8", "replace")
                headers = f"{result.get('headers')} {result.get('multiValueHeaders')}"
                self.answers.append(f"{result['statusCode']} {headers} {body}")
                response = Response(
                    decode_body(result),
                    status=result["statusCode"],
                    headers=(
                        result.get("multiValueHeaders")
                        and [(k, v) for k, vs in result["multiValueHeaders"].items() for v in vs]
                    )
                    or result.get("headers"),
                )
                return response(environ, start_response)
        return Response('{"message":"Missing Authentication Token"}', status=403)(environ, start_response)
