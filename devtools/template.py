"""Reading template.yaml: the table's definition, the API routes and the schedules, so tests, the
local stack and the sample events cannot drift from it."""

from __future__ import annotations

from functools import cache
from typing import Any

import yaml

from devtools.project import ROOT

__all__ = [
    "ROOT",
    "api_routes",
    "binary_media_types",
    "has_route",
    "scheduled_functions",
    "table_definition",
    "template",
    "ttl_attribute",
]


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that keeps CloudFormation's short-form tags (!Ref, !Sub, ...) as plain values."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {f"Fn::{suffix}" if suffix not in ("Ref", "Condition") else suffix: value}


_CfnLoader.add_multi_constructor("!", _tag)


@cache
def template() -> dict[str, Any]:
    with open(ROOT / "template.yaml", encoding="utf-8") as f:
        loaded: dict[str, Any] = yaml.load(f, Loader=_CfnLoader)
    return loaded


def table_definition() -> dict[str, Any]:
    """``create_table`` arguments from the template's table resource."""
    props = template()["Resources"]["Table"]["Properties"]
    args: dict[str, Any] = {
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props["BillingMode"],
    }
    if "GlobalSecondaryIndexes" in props:
        args["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    return args


def ttl_attribute() -> str:
    spec = template()["Resources"]["Table"]["Properties"]["TimeToLiveSpecification"]
    assert spec["Enabled"] is True
    return str(spec["AttributeName"])


def api_routes() -> list[tuple[str, str, str, str]]:
    """(method, path, function logical id, CodeUri) for every Api event in the template."""
    routes = []
    for name, resource in template()["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        for event in props.get("Events", {}).values():
            if event.get("Type") == "Api":
                ep = event["Properties"]
                routes.append((ep["Method"].upper(), ep["Path"], name, props["CodeUri"]))
    return routes


def binary_media_types() -> list[str]:
    types = template()["Resources"]["Api"]["Properties"].get("BinaryMediaTypes", [])
    return [t.replace("~1", "/") for t in types]


def has_route(method: str, path: str) -> bool:
    """Whether template.yaml serves ``method path`` (the routes others add appear here by themselves)."""
    return any(m == method.upper() and p == path for m, p, _, _ in api_routes())


def scheduled_functions() -> list[str]:
    """Logical ids of functions with a schedule (the refresher)."""
    names = []
    for name, resource in template()["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        events = resource.get("Properties", {}).get("Events", {}) or {}
        if any(e.get("Type") in ("Schedule", "ScheduleV2") for e in events.values()):
            names.append(name)
    return names
