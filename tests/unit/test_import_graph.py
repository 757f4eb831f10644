"""Module import graphs: the simulator package has no import cycle, and its records import none
of it.

``module_graph`` reads a package's imports with ``ast``, without importing anything. Counted:
``import pkg.x``, ``from pkg.x import y``, ``from pkg import x``, relative imports (``from . import
x``, ``from .x import y``, ``from ..x import y``), at module level or anywhere inside functions,
classes, ``try`` and ``if`` blocks, and by default those under ``if TYPE_CHECKING:`` too: they do
not run, but a cycle through them is still a cycle between the modules (the simulator's old
cycles, state <-> accounts and control <-> server, ran through them). ``type_checking=False``
ignores the body of ``if TYPE_CHECKING:`` / ``if typing.TYPE_CHECKING:`` (its ``else:`` still
counts). Never counted: dynamic imports (``importlib.import_module``, ``__import__``), the
implicit import of a parent package's ``__init__`` that every submodule import makes, and a
module importing itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SIMULATOR = ROOT / "simulator" / "wechat_simulator"


# --- reading a package's import graph -------------------------------------------------------


def package_modules(package_dir: Path, package: str) -> dict[str, tuple[Path, bool]]:
    """Every module of the package by dotted name: (file, is a package's ``__init__``)."""
    modules: dict[str, tuple[Path, bool]] = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        modules[".".join([package, *parts])] = (path, is_package)
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


class _Imports(ast.NodeVisitor):
    """Collects (base module, imported names, relative level) of every import statement."""

    def __init__(self, type_checking: bool) -> None:
        self.type_checking = type_checking
        self.found: list[tuple[str, list[str], int]] = []

    def visit_If(self, node: ast.If) -> None:
        if not self.type_checking and _is_type_checking(node.test):
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.found.extend((alias.name, [], 0) for alias in node.names)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        self.found.append((node.module or "", [alias.name for alias in node.names], node.level))


def _absolute(module: str, is_package: bool, base: str, level: int) -> str:
    """The absolute name of ``from <level dots><base> import ...`` written in ``module``."""
    if level == 0:
        return base
    parts = module.split(".")
    if not is_package:
        parts.pop()  # a module's relative imports start from its package
    if level > 1:
        parts = parts[: len(parts) - (level - 1)]
    return ".".join([*parts, base] if base else parts)


def _nearest_module(name: str, modules: dict[str, tuple[Path, bool]]) -> str | None:
    """``name`` if it is a module of the package, else its longest prefix that is, else None."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def module_graph(package_dir: Path, package: str, *, type_checking: bool = True) -> dict[str, set[str]]:
    """Module (dotted name) -> the modules of the same package it imports (see the docstring at
    the top of this file for what counts; ``type_checking=False`` leaves out the imports under
    ``if TYPE_CHECKING:``). Every module of the package is a key."""
    modules = package_modules(package_dir, package)
    graph: dict[str, set[str]] = {}
    for module, (path, is_package) in modules.items():
        imports = _Imports(type_checking)
        imports.visit(ast.parse(path.read_text("utf-8"), filename=str(path)))
        targets: set[str] = set()
        for base, names, level in imports.found:
            absolute = _absolute(module, is_package, base, level)
            if absolute != package and not absolute.startswith(package + "."):
                continue  # another package
            if not names:  # import pkg.x.y
                target = _nearest_module(absolute, modules)
                if target:
                    targets.add(target)
                continue
            for name in names:  # from pkg.x import y: y is a submodule, or a name in pkg.x
                submodule = f"{absolute}.{name}"
                target = submodule if submodule in modules else _nearest_module(absolute, modules)
                if target:
                    targets.add(target)
        targets.discard(module)
        graph[module] = targets
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path that ends where it starts (``[a, b, a]``), or None."""
    done: set[str] = set()
    path: list[str] = []
    on_path: set[str] = set()

    def visit(node: str) -> list[str] | None:
        path.append(node)
        on_path.add(node)
        for target in sorted(graph.get(node, ())):
            if target in on_path:
                return [*path[path.index(target) :], target]
            if target not in done:
                cycle = visit(target)
                if cycle:
                    return cycle
        path.pop()
        on_path.discard(node)
        done.add(node)
        return None

    for start in sorted(graph):
        if start not in done:
            cycle = visit(start)
            if cycle:
                return cycle
    return None


# --- the readers themselves -----------------------------------------------------------------


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")


def test_module_graph_sees_every_kind_of_import(tmp_path: Path) -> None:
    _write(
        tmp_path / "pkg",
        {
            "__init__.py": "from pkg.a import A\n",
            "a.py": "import os\nfrom pkg.b import thing\nA = 1\n",
            "b.py": "def later():\n    from . import c\n    return c\n",
            "c.py": "import pkg.sub.e\nfrom .sub import e as _e\n",
            "d.py": (
                "from typing import TYPE_CHECKING\nimport typing\n"
                "if TYPE_CHECKING:\n    from pkg import a\nelse:\n    from pkg import b\n"
                "if typing.TYPE_CHECKING:\n    import pkg.c\n"
                "try:\n    from pkg.missing import x\nexcept ImportError:\n    pass\n"
            ),
            "sub/__init__.py": "from . import e\nfrom .. import d\n",
            "sub/e.py": "from ..a import A\nfrom . import *\nimport pkg\n",
        },
    )
    expected = {
        "pkg": {"pkg.a"},
        "pkg.a": {"pkg.b"},
        "pkg.b": {"pkg.c"},
        "pkg.c": {"pkg.sub.e"},
        "pkg.d": {"pkg.b", "pkg"},  # pkg.missing is not a module: the nearest one is pkg
        "pkg.sub": {"pkg.sub.e", "pkg.d"},
        "pkg.sub.e": {"pkg.a", "pkg.sub", "pkg"},
    }
    assert module_graph(tmp_path / "pkg", "pkg", type_checking=False) == expected
    assert module_graph(tmp_path / "pkg", "pkg") == expected | {"pkg.d": {"pkg.a", "pkg.b", "pkg.c", "pkg"}}


def test_find_cycle_names_the_modules_of_one_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None  # a diamond is no cycle
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"x": {"y"}, "y": {"z"}, "z": {"y"}}) == ["y", "z", "y"]


# --- the simulator ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def simulator_graph() -> dict[str, set[str]]:
    return module_graph(SIMULATOR, "wechat_simulator")


def test_the_simulator_has_no_import_cycle(simulator_graph: dict[str, set[str]]) -> None:
    assert "wechat_simulator.records" in simulator_graph  # the graph did read the package
    cycle = find_cycle(simulator_graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_simulator_records_import_nothing_of_the_package(simulator_graph: dict[str, set[str]]) -> None:
    assert simulator_graph["wechat_simulator.records"] == set()


def test_simulator_layers_records_state_features_control_server(
    simulator_graph: dict[str, set[str]],
) -> None:
    """state holds records only; only the server imports the control routes; nothing but the
    package's entry points imports the server."""
    assert simulator_graph["wechat_simulator.state"] <= {"wechat_simulator.records"}
    importers = {
        name: {m for m, targets in simulator_graph.items() if name in targets} for name in simulator_graph
    }
    assert importers["wechat_simulator.control"] == {"wechat_simulator.server"}
    assert importers["wechat_simulator.server"] <= {"wechat_simulator", "wechat_simulator.__main__"}


# --- wechat_core: layers a reader can see ----------------------------------------------------------

CORE = ROOT / "layers" / "wechat_core" / "wechat_core"
FUNCTIONS = ROOT / "functions"
# Lower layers never import higher ones: features -> runtime -> wechat/store/bus -> protocol -> base.
CORE_LAYERS = {
    "base": {
        "wechat_core.clock",
        "wechat_core.errors",
        "wechat_core.tracing",
        "wechat_core.config",
        "wechat_core.aws",
        "wechat_core.allow_list",
    },
    "protocol": {"wechat_core.protocol"},
    "wechat": {"wechat_core.wechat"},
    "store": {"wechat_core.store"},
    "bus": {"wechat_core.bus", "wechat_core.work_queue"},
    "runtime": {"wechat_core.runtime"},
    "features": {"wechat_core.features", "wechat_core.web"},
}
MAY_IMPORT = {
    "base": {"base"},
    "protocol": {"base", "protocol"},
    "wechat": {"base", "wechat"},
    "store": {"base", "store"},
    "bus": {"base", "bus"},
    "runtime": {"base", "protocol", "wechat", "store", "bus", "runtime"},
    "features": {"base", "protocol", "wechat", "store", "bus", "runtime", "features"},
}


def core_layer(module: str) -> str:
    for layer, prefixes in CORE_LAYERS.items():
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return layer
    assert module == "wechat_core", f"{module} belongs to no layer: add it to CORE_LAYERS"
    return "base"


@pytest.fixture(scope="module")
def core_graph() -> dict[str, set[str]]:
    return module_graph(CORE, "wechat_core")


def test_wechat_core_has_no_import_cycle(core_graph: dict[str, set[str]]) -> None:
    cycle = find_cycle(core_graph)
    assert cycle is None, " -> ".join(cycle or [])


def test_wechat_core_imports_point_down_the_layers(core_graph: dict[str, set[str]]) -> None:
    wrong = [
        f"{module} ({core_layer(module)}) imports {target} ({core_layer(target)})"
        for module, targets in core_graph.items()
        for target in targets
        if core_layer(target) not in MAY_IMPORT[core_layer(module)]
    ]
    assert not wrong, "\n".join(wrong)


# Spelled only in wechat_core/store/: expression syntax, the condition builder, and key prefixes.
DYNAMODB_WORDS = (
    "attribute_exists",
    "attribute_not_exists",
    "if_not_exists",
    "begins_with",
    "ConditionExpression",
    "UpdateExpression",
    "ExpressionAttribute",
    "boto3.dynamodb",
)
KEY_PREFIXES = (
    "authorizer#",
    "state#",
    "session#",
    "authcode#",
    "component#",
    "due#",
    "event#",
    "delivery#",
)


def _strings_and_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text("utf-8"))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.append(node.value)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.Dict):  # DynamoDB's wire format written by hand: {"S": ...}
            found.extend(
                f"wire format {k.value}"
                for k in node.keys
                if isinstance(k, ast.Constant) and k.value in ("S", "N", "M", "L", "BOOL", "NULL", "SS")
            )
    return found


def test_only_the_store_speaks_dynamodb() -> None:
    outside = [p for p in CORE.rglob("*.py") if "store" not in p.relative_to(CORE).parts]
    outside += list(FUNCTIONS.rglob("*.py"))
    offences = [
        f"{path.relative_to(ROOT)}: {text!r}"
        for path in outside
        for text in _strings_and_imports(path)
        if any(word in text for word in DYNAMODB_WORDS)
        or text.startswith(KEY_PREFIXES)
        or text.startswith("wire format")
    ]
    assert not offences, "\n".join(offences)


def test_no_hand_written_dynamodb_types_in_the_store() -> None:
    """Only the codec converts values, through boto3's TypeSerializer/TypeDeserializer."""
    offences = [
        f"{path.relative_to(ROOT)}: {text}"
        for path in (CORE / "store").rglob("*.py")
        if path.name != "codec.py"
        for text in _strings_and_imports(path)
        if text.startswith("wire format") or text == "boto3.dynamodb.types"
    ]
    assert not offences, "\n".join(offences)


def test_the_dynamodb_checks_see_what_they_look_for(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        'from boto3.dynamodb.conditions import Attr\nkey = {"S": "authorizer#wx"}\n'
        'cond = "attribute_not_exists(pk)"\n',
        "utf-8",
    )
    found = _strings_and_imports(sample)
    assert "boto3.dynamodb.conditions" in found
    assert "wire format S" in found
    assert "authorizer#wx" in found
    assert "attribute_not_exists(pk)" in found
