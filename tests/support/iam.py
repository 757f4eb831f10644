"""What each function may do (its role, from template.yaml as SAM translates it) and what it did.

``translated()`` is the CloudFormation template SAM deploys; ``FunctionPolicy`` resolves a
function role's policy statements for a given table and secret and answers whether it allows an
action on a resource, the way IAM matches (``*`` and ``?`` wildcards, an explicit Deny wins).

``CallRecorder`` records every AWS call a handler makes in this process: ``attribute`` wraps a
handler module's ``lambda_handler`` (tests/support/lambdas.py ``load_function`` does it for every
handler) so the calls it makes, in its own thread and in the threads it starts, are tagged with the
function's logical id. Each call is kept with its IAM action, the ARN of the resource it acted on,
and the table and secret the function was configured with, so the check binds the template's
``!Ref Table`` and ``${ComponentSecretName}`` the way that deployment would.
"""

from __future__ import annotations

import contextvars
import copy
import fnmatch
import functools
import os
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import Any

from devtools.template import template

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account, and the one its ARNs carry
S3_PREFIX = "s3://packaged-by-sam-package"

# --- the template as SAM translates it ------------------------------------------------------------


class _PolicyMap:
    """SAM's managed-policy name lookup; the template names managed policies only by ARN."""

    def load(self) -> dict[str, str]:
        return {}


@cache
def _translated() -> dict[str, Any]:
    import boto3
    from samtranslator.parser.parser import Parser  # type: ignore[import-untyped]
    from samtranslator.translator.translator import Translator  # type: ignore[import-untyped]

    sam = copy.deepcopy(template())
    # What `sam package` does before the transform runs: local code becomes S3 objects.
    for resource in sam["Resources"].values():
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(properties.get(key), str) and not properties[key].startswith("s3://"):
                properties[key] = f"{S3_PREFIX}/{properties[key]}.zip"
    translator = Translator(None, Parser(), boto_session=boto3.Session(region_name=REGION))
    policies = _PolicyMap()
    result: dict[str, Any] = translator.translate(
        sam,
        parameter_values={"ComponentAppId": "wx0123456789abcdef"},
        get_managed_policy_map=policies.load,
    )
    return result


def translated() -> dict[str, Any]:
    """The CloudFormation template SAM makes of template.yaml (a fresh copy)."""
    return copy.deepcopy(_translated())


def function_code_uris() -> dict[str, str]:
    """Function logical id -> CodeUri, from template.yaml."""
    return {
        name: resource["Properties"]["CodeUri"]
        for name, resource in template()["Resources"].items()
        if resource.get("Type") == "AWS::Serverless::Function"
    }


def function_for(code_uri: str) -> str:
    names = [name for name, uri in function_code_uris().items() if uri.rstrip("/") == code_uri.rstrip("/")]
    assert len(names) == 1, f"{code_uri}: not exactly one function in template.yaml"
    return names[0]


# --- intrinsic functions, resolved for one deployment ---------------------------------------------


class _Resolver:
    def __init__(self, doc: dict[str, Any], values: dict[str, Any]) -> None:
        self.doc = doc
        defaults = {k: v.get("Default") for k, v in doc.get("Parameters", {}).items()}
        self.values = {
            "AWS::Partition": "aws",
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::URLSuffix": "amazonaws.com",
            **defaults,
            **values,
        }

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.doc["Conditions"][name]))

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.resolve(n) for n in node]
        if not isinstance(node, dict):
            return node
        if len(node) != 1:
            return {k: self.resolve(v) for k, v in node.items()}
        ((key, arg),) = node.items()
        if key == "Ref":
            assert arg in self.values, f"no value for Ref {arg}"
            return self.values[arg]
        if key == "Condition":
            return self.condition(arg)
        if key == "Fn::If":
            name, yes, no = arg
            return self.resolve(yes if self.condition(name) else no)
        if key == "Fn::Equals":
            left, right = self.resolve(arg)
            return left == right
        if key == "Fn::GetAtt":
            name = f"{arg[0]}.{arg[1]}" if isinstance(arg, list) else str(arg)
            assert name in self.values, f"no value for GetAtt {name}"
            return self.values[name]
        if key == "Fn::Not":
            return not self.resolve(arg[0])
        if key == "Fn::Join":
            separator, parts = arg
            resolved = self.resolve(parts)
            return separator.join(str(p) for p in (resolved if isinstance(resolved, list) else [resolved]))
        if key == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else arg
            bound = {**self.values, **{k: self.resolve(v) for k, v in variables.items()}}

            def substitute(match: re.Match[str]) -> str:
                assert match.group(1) in bound, f"no value for ${{{match.group(1)}}}"
                return str(bound[match.group(1)])

            return re.sub(r"\$\{([^}!]+)\}", substitute, text)
        return {key: self.resolve(arg)}


# --- what a function's role allows ----------------------------------------------------------------


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _matches(pattern: str, value: str) -> bool:
    """IAM's match: case-insensitive for actions is the caller's job; ``*`` and ``?`` are wildcards."""
    return fnmatch.fnmatchcase(value, pattern.replace("[", "[[]"))


@dataclass(frozen=True)
class FunctionPolicy:
    function: str
    statements: tuple[dict[str, Any], ...]

    @classmethod
    def of(cls, function: str, *, table_name: str, secret_name: str, bus_name: str = "") -> FunctionPolicy:
        """The function's role statements for a deployment with this table, secret and event bus."""
        return _policy(function, table_name, secret_name, bus_name)

    def _applies(self, statement: dict[str, Any], action: str, resource: str) -> bool:
        actions = [a.lower() for a in _listed(statement.get("Action", []))]
        resources = _listed(statement.get("Resource", []))
        return any(_matches(a, action.lower()) for a in actions) and any(
            _matches(r, resource) for r in resources
        )

    def allows(self, action: str, resource: str) -> bool:
        relevant = [s for s in self.statements if self._applies(s, action, resource)]
        return any(s["Effect"] == "Allow" for s in relevant) and not any(
            s["Effect"] == "Deny" for s in relevant
        )


@cache
def _policy(
    function: str, table_name: str, secret_name: str, bus_name: str, queue_name: str = ""
) -> FunctionPolicy:
    values = {
        "Table": table_name,
        "ComponentSecretName": secret_name,
        "SharedTableName": "",
        "EventBus": bus_name,
        "EventBus.Arn": _bus_arn(bus_name),
        "ReleaseQueue.Arn": _queue_arn(queue_name),
    }
    resolver = _Resolver(_translated(), values)
    return FunctionPolicy(function, tuple(resolver.resolve(s) for s in raw_statements(function)))


def raw_statements(function: str) -> list[dict[str, Any]]:
    """Every policy statement of the function's execution role, unresolved: its inline policies and
    the managed policies of this template it attaches (AWS managed ones are named by ARN only)."""
    resources = copy.deepcopy(_translated()["Resources"])
    role = resources[function]["Properties"]["Role"]
    assert set(role) == {"Fn::GetAtt"}, f"{function}: role not made by SAM"
    properties = resources[role["Fn::GetAtt"][0]]["Properties"]
    statements = [
        statement
        for policy in properties.get("Policies", [])
        for statement in _listed(policy["PolicyDocument"]["Statement"])
    ]
    for arn in properties.get("ManagedPolicyArns", []):
        if isinstance(arn, dict) and "Ref" in arn:
            managed = resources[arn["Ref"]]
            assert managed["Type"] == "AWS::IAM::ManagedPolicy", arn
            statements += _listed(managed["Properties"]["PolicyDocument"]["Statement"])
    return statements


def granted_actions(function: str) -> set[str]:
    """Every action the function's role allows, as written (``dynamodb:GetItem``)."""
    return {
        action
        for statement in raw_statements(function)
        if statement["Effect"] == "Allow"
        for action in _listed(statement["Action"])
    }


# --- what a function did --------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    function: str
    action: str  # IAM's name: dynamodb:GetItem, secretsmanager:GetSecretValue
    resource: str  # the ARN IAM checks; "*" when this file does not know the service
    table_name: str  # the deployment the call ran in (TABLE_NAME, COMPONENT_SECRET_ID, EVENT_BUS_NAME)
    secret_name: str
    bus_name: str = ""
    queue_name: str = ""

    def allowed(self) -> bool:
        policy = _policy(self.function, self.table_name, self.secret_name, self.bus_name, self.queue_name)
        return policy.allows(self.action, self.resource)


def _bus_arn(name: str, region: str = REGION) -> str:
    return name if name.startswith("arn:") else f"arn:aws:events:{region}:{ACCOUNT}:event-bus/{name}"


def _queue_arn(name: str, region: str = REGION, account: str = ACCOUNT) -> str:
    return f"arn:aws:sqs:{region}:{account}:{name}"


# IAM authorizes some API operations under another action's name.
IAM_ACTIONS = {"sqs:SendMessageBatch": "sqs:SendMessage"}


CURRENT_FUNCTION: contextvars.ContextVar[str | None] = contextvars.ContextVar("function", default=None)


def _resource(client: Any, operation: str, params: dict[str, Any], response: dict[str, Any] | None) -> str:
    service = client.meta.service_model.signing_name
    region = client.meta.region_name or REGION
    if service == "dynamodb" and "TableName" in params:
        table = str(params["TableName"])
        arn = table if table.startswith("arn:") else f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{table}"
        return arn + (f"/index/{params['IndexName']}" if params.get("IndexName") else "")
    if service == "events" and operation == "PutEvents":
        buses = {str(e.get("EventBusName") or "default") for e in params.get("Entries", [])}
        return _bus_arn(buses.pop(), region) if len(buses) == 1 else "*"
    if service == "sqs" and "QueueUrl" in params:
        # https://sqs.<region>.amazonaws.com/<account>/<name> (moto: http://127.0.0.1:<port>/<account>/<name>)
        account, name = str(params["QueueUrl"]).rstrip("/").split("/")[-2:]
        return _queue_arn(name, region, account)
    if service == "secretsmanager" and "SecretId" in params:
        # IAM checks the full ARN (name + "-" + 6 characters), which only the answer tells.
        if response is not None and "ARN" in response:
            return str(response["ARN"])
        secret = str(params["SecretId"])
        return secret if secret.startswith("arn:") else ""
    return "*"


class CallRecorder:
    """Records every AWS call made while a handler attributed by ``attribute`` runs."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._undo: list[Callable[[], None]] = []

    def install(self) -> CallRecorder:
        from botocore.client import BaseClient

        make_api_call = getattr(BaseClient, "_make_api_call")  # noqa: B009 - private, untyped
        recorder = self

        def recording_api_call(client: Any, operation: str, params: dict[str, Any]) -> Any:
            function = CURRENT_FUNCTION.get()
            if function is None:
                return make_api_call(client, operation, params)
            response = None
            try:
                response = make_api_call(client, operation, params)
            finally:
                resource = _resource(client, operation, params, response)
                if resource:  # "" only for a secret read that failed by name: no ARN to check
                    action = f"{client.meta.service_model.signing_name}:{operation}"
                    recorder._add(function, IAM_ACTIONS.get(action, action), resource)
            return response

        submit = ThreadPoolExecutor.submit

        def submit_in_context(pool: ThreadPoolExecutor, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
            # A handler's worker threads (the refresher's) act as that function too.
            if CURRENT_FUNCTION.get() is None:
                return submit(pool, fn, *args, **kwargs)
            return submit(pool, contextvars.copy_context().run, fn, *args, **kwargs)

        setattr(BaseClient, "_make_api_call", recording_api_call)  # noqa: B010 - private, untyped
        setattr(ThreadPoolExecutor, "submit", submit_in_context)  # noqa: B010
        self._undo += [
            lambda: setattr(BaseClient, "_make_api_call", make_api_call),
            lambda: setattr(ThreadPoolExecutor, "submit", submit),
        ]
        return self

    def uninstall(self) -> None:
        while self._undo:
            self._undo.pop()()

    def _add(self, function: str, action: str, resource: str) -> None:
        call = Call(
            function,
            action,
            resource,
            os.environ.get("TABLE_NAME", ""),
            os.environ.get("COMPONENT_SECRET_ID", ""),
            os.environ.get("EVENT_BUS_NAME", ""),
            os.environ.get("RELEASE_QUEUE_URL", "").rstrip("/").rsplit("/", 1)[-1],
        )
        with self._lock:
            self.calls.append(call)

    def mark(self) -> int:
        with self._lock:
            return len(self.calls)

    def since(self, mark: int) -> list[Call]:
        with self._lock:
            return self.calls[mark:]

    def refused(self, calls: list[Call] | None = None) -> list[Call]:
        """The distinct calls the function's policy in the template does not allow."""
        distinct = set(self.calls if calls is None else calls)
        return sorted((c for c in distinct if not c.allowed()), key=str)


def attribute(module: ModuleType, code_uri: str) -> None:
    """Make the AWS calls of ``module.lambda_handler`` count as the function of ``code_uri``."""
    handler = getattr(module, "lambda_handler", None)
    if handler is None or getattr(handler, "__function__", None):
        return
    function = function_for(code_uri)

    @functools.wraps(handler)
    def run_as_function(event: Any, context: Any) -> Any:
        token = CURRENT_FUNCTION.set(function)
        try:
            return handler(event, context)
        finally:
            CURRENT_FUNCTION.reset(token)

    run_as_function.__function__ = function  # type: ignore[attr-defined]
    module.lambda_handler = run_as_function  # type: ignore[attr-defined]


RECORDER = CallRecorder()  # the session's (tests/conftest.py installs it)
