"""template.yaml passes cfn-lint, `sam validate --lint` and checkov with no errors or warnings."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from devtools.template import ROOT, api_routes, template
from tests.support import iam

pytestmark = pytest.mark.unit


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert found, f"{name} is not installed (make venv installs it)"
    return found


def test_cfn_lint_clean() -> None:
    result = subprocess.run(
        [_tool("cfn-lint"), "template.yaml"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert (result.returncode, result.stdout) == (0, "")


def test_sam_validate_lint_clean() -> None:
    env = os.environ | {"SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "us-east-1"}
    result = subprocess.run(
        [_tool("sam"), "validate", "--lint"], cwd=ROOT, capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


def _checkov() -> str:
    """checkov from its own venv (make venv: .venv/tools/checkov; its pins conflict with ours)."""
    own = Path(sys.prefix) / "tools" / "checkov" / "bin" / "checkov"
    found = str(own) if own.is_file() else shutil.which("checkov")
    assert found, "checkov is not installed (make venv installs it from requirements-checkov.txt)"
    return found


def _declared_skips() -> dict[tuple[str, str], str]:
    """(resource, check id) -> reason, for every checkov skip in the template's Metadata."""
    skips = {}
    for name, resource in template()["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            skips[(name, skip["id"])] = skip.get("comment", "")
    return skips


def test_checkov_clean_and_every_skip_has_its_reason() -> None:
    result = subprocess.run(
        [_checkov(), "-f", "template.yaml", "--framework", "cloudformation", "--skip-download", "-o", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    report = json.loads(result.stdout)
    summary = report["summary"]
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert (result.returncode, failed, summary["parsing_errors"]) == (0, [], 0), result.stderr[-2000:]
    assert summary["passed"] > 0
    assert summary["resource_count"] == len(template()["Resources"])
    skipped = {
        (c["resource"].split(".")[-1], c["check_id"]): c["check_result"].get("suppress_comment", "")
        for c in report["results"]["skipped_checks"]
    }
    declared = _declared_skips()
    # Every skip is declared on its resource in the template, with a reason, and still needed.
    assert set(skipped) == set(declared)
    for key, reason in declared.items():
        assert len(reason) >= 40, f"{key}: say why the rule does not apply"
        assert skipped[key] == reason, key


def test_every_function_uses_the_layer_and_has_a_handler_file() -> None:
    resources = template()["Resources"]
    functions = {k: v for k, v in resources.items() if v["Type"] == "AWS::Serverless::Function"}
    assert functions
    for props in (f["Properties"] for f in functions.values()):
        assert (ROOT / props["CodeUri"] / "app.py").is_file()
        assert props["Handler"] == "app.lambda_handler"
    assert template()["Globals"]["Function"]["Layers"] == [{"Ref": "WechatCoreLayer"}]


def test_public_contract_routes_exist() -> None:
    routes = {(m, p) for m, p, _, _ in api_routes()}
    assert ("POST", "/wechat/component/events") in routes


def test_layer_has_no_boto3_and_is_pinned() -> None:
    lines = [
        line.strip()
        for line in (ROOT / "layers/wechat_core/requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines
    assert all("==" in line for line in lines)
    assert not any(line.lower().startswith(("boto3", "botocore")) for line in lines)

    def normal(text: str) -> str:
        return text.lower().replace("_", "-")

    dev = normal((ROOT / "requirements-dev.txt").read_text())
    for line in lines:
        assert normal(line) in dev, f"{line} differs between the layer and requirements-dev.txt"


IAM_FUNCTIONS = {"AdminFunction", "ComponentTokenFunction", "ReleasesFunction"}


def test_admin_routes_need_iam_and_public_routes_do_not() -> None:
    resources = template()["Resources"]
    for name, resource in resources.items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for event in resource["Properties"].get("Events", {}).values():
            if event["Type"] != "Api":
                continue
            auth = event["Properties"].get("Auth", {})
            where = (name, event["Properties"]["Path"])
            assert (auth.get("Authorizer") == "AWS_IAM") == (name in IAM_FUNCTIONS), where
            if name in IAM_FUNCTIONS:
                # Without it SAM makes API Gateway invoke with the caller's own credentials.
                assert auth.get("InvokeRole") == "NONE", where


def _translated_methods() -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """(method, path, operation, securityDefinitions) of every method the translated API serves."""
    methods = []
    for resource in iam.translated()["Resources"].values():
        if resource["Type"] != "AWS::ApiGateway::RestApi":
            continue
        body = resource["Properties"]["Body"]
        assert not body.get("security"), "no API-wide authorization"
        for path, operations in body["paths"].items():
            for method, operation in operations.items():
                methods.append((method.upper(), path, operation, body.get("securityDefinitions", {})))
    return methods


def test_translated_api_passes_no_caller_credentials_and_authorizes_as_declared() -> None:
    """The API as SAM translates it: no integration runs with credentials (with the caller's, anyone
    allowed lambda:InvokeFunction could call the admin functions with any event, and a caller with
    only execute-api:Invoke would get a 500); IAM routes are AWS_IAM, the others NONE."""
    resources = iam.translated()["Resources"]
    for resource in resources.values():  # methods SAM or a later edit might declare as resources
        if resource["Type"] == "AWS::ApiGateway::Method":
            assert "Credentials" not in resource["Properties"].get("Integration", {})
    iam_routes = {(m, p) for m, p, name, _ in api_routes() if name in IAM_FUNCTIONS}
    methods = _translated_methods()
    assert {(m, p) for m, p, _, _ in methods} == {(m, p) for m, p, _, _ in api_routes()}
    for method, path, operation, definitions in methods:
        assert "credentials" not in operation["x-amazon-apigateway-integration"], (method, path)
        kinds = {
            definitions[name]["x-amazon-apigateway-authtype"]
            for requirement in operation.get("security", [])
            for name in requirement
        }
        authorization_type = {frozenset(): "NONE", frozenset({"awsSigv4"}): "AWS_IAM"}[frozenset(kinds)]
        expected = "AWS_IAM" if (method, path) in iam_routes else "NONE"
        assert authorization_type == expected, (method, path)


# Each function's DynamoDB item operations, as its code performs them (proved by
# tests/integration/test_least_privilege.py, which drives every function and records its calls).
ACTIONS = {
    # pushes: ticket (Put), authorization events (Put + Update) and their delivery keys (Put), the
    # code exchange, the component token; a push naming another account than WeChat's answer
    # (its pending item deleted)
    "CallbackFunction": {"GetItem", "PutItem", "UpdateItem", "DeleteItem"},
    # messages: the authorization (Get), delivery keys (Put, Delete when publishing failed), audit
    # results (Update); the release test's code exchange and tokens (Get, Put, Update)
    "MessagesFunction": {"GetItem", "PutItem", "UpdateItem", "DeleteItem"},
    # a link's state (Put), the redirect's state (Get), the exchange (Update, Put), the component token
    "PreAuthFunction": {"GetItem", "PutItem", "UpdateItem"},
    # the authorization (Get), a session (Put, Get), the component token (Get, Update)
    "JsCode2SessionFunction": {"GetItem", "PutItem", "UpdateItem"},
    # due tokens from the due index (Query), leases and tokens (Get, Update)
    "RefresherFunction": {"GetItem", "UpdateItem", "Query"},
    # tokens and JS-SDK tickets (Get, Update), the authorizer list (Query on the table), recovery
    # (Update), OAuth tickets redeemed (Update)
    "AdminFunction": {"GetItem", "UpdateItem", "Query"},
    # the authorization (Get), OAuth states and tickets (Put, Update), the component token and
    # JS-SDK tickets with the authorizer tokens they need (Get, Update)
    "H5Function": {"GetItem", "PutItem", "UpdateItem"},
    # releases (Put, Get, Query on the table; Delete when the fan-out could not be queued), the
    # template library's component token (Get, Update)
    "ReleasesFunction": {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query"},
    # accounts (Put, Update), releases and authorizations (Get, Query), tokens, the due index
    "ReleaseWorkerFunction": {"GetItem", "PutItem", "UpdateItem", "Query"},
    "ComponentTokenFunction": {"GetItem", "UpdateItem"},
}
ITEM_ACTIONS = {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query"}
PUBLISHERS = {"MessagesFunction"}  # the functions that put events on the bus
QUEUE_SENDERS = {"MessagesFunction", "ReleasesFunction", "ReleaseWorkerFunction"}
TABLE_ARN = "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${Name}"
SECRET_ARN = "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:" + (
    "${ComponentSecretName}-??????"
)


def _sub(resource: Any) -> str:
    """The ARN pattern of a ``!Sub`` resource; its table is the one of this stack or the shared one."""
    assert set(resource) == {"Fn::Sub"}, resource
    value = resource["Fn::Sub"]
    if isinstance(value, str):
        return value
    text, variables = value
    assert variables == {"Name": {"Fn::If": ["CreateTable", {"Ref": "Table"}, {"Ref": "SharedTableName"}]}}
    return str(text)


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_each_function_has_its_own_least_privilege_policy() -> None:
    resources = template()["Resources"]
    assert not [n for n, r in resources.items() if r["Type"] == "AWS::IAM::ManagedPolicy"], "no shared policy"
    functions = {n: r["Properties"] for n, r in resources.items() if r["Type"] == "AWS::Serverless::Function"}
    assert set(functions) == set(ACTIONS)
    for name, props in functions.items():
        (policy,) = props["Policies"]  # one inline policy document, this function's own
        dynamodb: dict[str, set[str]] = {}
        secrets: set[str] = set()
        events: list[Any] = []
        sends: list[Any] = []
        for statement in policy["Statement"]:
            assert statement["Effect"] == "Allow"
            actions = _listed(statement["Action"])
            if any(a.startswith("sqs:") for a in actions):
                # Sending only, to the release queue (the worker's receive and delete are granted
                # by SAM's SQS event source through AWS's AWSLambdaSQSQueueExecutionRole).
                assert (actions, statement["Resource"]) == (
                    ["sqs:SendMessage"],
                    {"Fn::GetAtt": "ReleaseQueue.Arn"},
                )
                sends.append(statement)
                continue
            if any(a.startswith("events:") for a in actions):
                # Publishing only, on the stack's own bus (never the account's default bus or "*").
                assert (actions, statement["Resource"]) == (
                    ["events:PutEvents"],
                    {"Fn::GetAtt": "EventBus.Arn"},
                )
                events.append(statement)
                continue
            arns = [_sub(r) for r in _listed(statement["Resource"])]
            for action in actions:
                service, _, operation = action.partition(":")
                assert "*" not in action, (name, action)
                assert "?" not in action, (name, action)
                if service == "secretsmanager":
                    # The secret by its exact ARN pattern: the name and the 6 characters Secrets Manager
                    # appends ("-*" would also match every secret whose name starts the same).
                    assert (operation, arns) == ("GetSecretValue", [SECRET_ARN]), name
                    secrets.add(operation)
                    continue
                # Items only: no Scan, no batch or table-level actions.
                assert service == "dynamodb", (name, action)
                assert operation in ITEM_ACTIONS, (name, action)
                for arn in arns:
                    dynamodb.setdefault(operation, set()).add(arn)
        assert set(dynamodb) == ACTIONS[name], name
        assert secrets == {"GetSecretValue"}, name
        assert len(events) == (1 if name in PUBLISHERS else 0), name
        assert len(sends) == (1 if name in QUEUE_SENDERS else 0), name
        for operation, allowed in dynamodb.items():
            # The due index only for its readers (Query); the refresher never queries the table itself.
            expected = {
                ("RefresherFunction", "Query"): {TABLE_ARN + "/index/due"},
                ("ReleaseWorkerFunction", "Query"): {TABLE_ARN, TABLE_ARN + "/index/due"},
            }.get((name, operation), {TABLE_ARN})
            assert allowed == expected, (name, operation)


def test_secret_pattern_matches_only_the_platform_secret() -> None:
    policy = iam.FunctionPolicy.of("CallbackFunction", table_name="t", secret_name="wechat-component")
    prefix = "arn:aws:secretsmanager:us-east-1:123456789012:secret:"
    assert policy.allows("secretsmanager:GetSecretValue", prefix + "wechat-component-Ab12Cd")
    for other in ("wechat-component-prod-Ab12Cd", "wechat-componentX-Ab12Cd", "wechat-component-Ab12Cde"):
        assert not policy.allows("secretsmanager:GetSecretValue", prefix + other), other
    table = "arn:aws:dynamodb:us-east-1:123456789012:table/t"
    assert policy.allows("dynamodb:GetItem", table)
    assert not policy.allows("dynamodb:GetItem", table + "x")
    assert not policy.allows("dynamodb:Scan", table)


def _parameter_default(value: Any) -> float:
    assert set(value) == {"Ref"}, value
    return float(template()["Parameters"][value["Ref"]]["Default"])


def _method_settings() -> dict[tuple[str, str], dict[str, Any]]:
    """(HttpMethod, ResourcePath) -> setting, from the Api's stage as SAM translates it."""
    (stage,) = [r for r in iam.translated()["Resources"].values() if r["Type"] == "AWS::ApiGateway::Stage"]
    return {(s["HttpMethod"], s["ResourcePath"]): s for s in stage["Properties"]["MethodSettings"]}


def _encoded(path: str) -> str:
    """A resource path as MethodSettings names it: "/" + the path with every "/" written "~1"."""
    return "/" + path.replace("/", "~1")


def test_method_settings_name_methods_the_api_serves() -> None:
    served = {(m, _encoded(p)) for m, p, _, _ in api_routes()}
    for method, path in _method_settings():
        assert (method, path) in served or (method, path) == ("*", "/*"), (method, path)


QUOTA_SPENDING_ANONYMOUS_ROUTES = [
    ("GET", "/wechat/component/authorize"),  # api_create_preauthcode
    ("GET", "/wechat/component/authorized"),  # api_query_auth
    ("POST", "/wechat/miniprogram/{appid}/login"),  # jscode2session
]


def test_anonymous_routes_that_spend_wechat_quota_are_throttled_at_most_at_the_default() -> None:
    settings = _method_settings()
    default = settings[("*", "/*")]
    rate, burst = (_parameter_default(default[k]) for k in ("ThrottlingRateLimit", "ThrottlingBurstLimit"))
    assert rate > 0
    assert burst > 0
    for method, path in QUOTA_SPENDING_ANONYMOUS_ROUTES:
        assert (method, path) in {(m, p) for m, p, _, _ in api_routes()}
        own = settings.get((method, _encoded(path)))
        assert own is not None, f"{method} {path} has no method-level throttle"
        assert 0 < _parameter_default(own["ThrottlingRateLimit"]) <= rate, path
        assert 0 < _parameter_default(own["ThrottlingBurstLimit"]) <= burst, path
    # WeChat's pushes keep the default bucket of their own method, whatever floods other routes (their
    # own setting, for detailed metrics, says the default's values again: it replaces the default).
    for (_, path), own in settings.items():
        if path == _encoded("/wechat/component/events"):
            for key in ("ThrottlingRateLimit", "ThrottlingBurstLimit"):
                assert own[key] == default[key], "push route throttled differently"


def test_authorize_access_is_configurable_and_links_are_signed_behind_iam() -> None:
    parameter = template()["Parameters"]["AuthorizeAccess"]
    assert (parameter["Default"], parameter["AllowedValues"]) == ("open", ["open", "signed"])
    preauth = template()["Resources"]["PreAuthFunction"]["Properties"]["Environment"]["Variables"]
    assert preauth["AUTHORIZE_ACCESS"] == {"Ref": "AuthorizeAccess"}
    routes = {(m, p): name for m, p, name, _ in api_routes()}
    assert routes[("POST", "/wechat/component/authorize-links")] == "AdminFunction"
    assert routes[("GET", "/wechat/component/token")] == "ComponentTokenFunction"


def test_tracer_never_captures_responses_or_errors() -> None:
    variables = template()["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"
    assert variables["POWERTOOLS_TRACER_CAPTURE_ERROR"] == "false"


def test_every_wechat_host_is_configurable() -> None:
    variables = template()["Globals"]["Function"]["Environment"]["Variables"]
    assert {"WECHAT_API_BASE", "WECHAT_MP_BASE", "WECHAT_OPEN_BASE"} <= set(variables)
