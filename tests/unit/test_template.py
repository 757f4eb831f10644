"""template.yaml passes cfn-lint and `sam validate --lint` with no errors or warnings."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.template import ROOT, api_routes, template

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


def test_admin_routes_need_iam_and_public_routes_do_not() -> None:
    resources = template()["Resources"]
    for name, resource in resources.items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for event in resource["Properties"].get("Events", {}).values():
            if event["Type"] != "Api":
                continue
            auth = event["Properties"].get("Auth", {}).get("Authorizer")
            assert (auth == "AWS_IAM") == (name == "AdminFunction"), (name, event["Properties"]["Path"])


def test_functions_share_one_least_privilege_policy() -> None:
    resources = template()["Resources"]
    statements = resources["ServiceAccessPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    actions = {
        a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert actions == {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:Query",
        "secretsmanager:GetSecretValue",
    }
    for resource in resources.values():
        if resource["Type"] == "AWS::Serverless::Function":
            assert resource["Properties"]["Policies"] == [{"Ref": "ServiceAccessPolicy"}]


def test_every_wechat_host_is_configurable() -> None:
    variables = template()["Globals"]["Function"]["Environment"]["Variables"]
    assert {"WECHAT_API_BASE", "WECHAT_MP_BASE", "WECHAT_OPEN_BASE"} <= set(variables)
