"""devtools/ and scripts/ stay small and plain: no module over 500 lines, none changes where Python
looks for modules (the project's roots come from PYTHONPATH: the Makefile, pytest, devtools.project),
devtools imports nothing from tests/ or scripts/, and the SAM CLI fixes are pinned to the installed
SAM CLI.

Read with ``ast``, without importing the modules checked (except devtools.samcli, last).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 500


def _modules(*directories: str) -> list[Path]:
    found = [p for d in directories for p in sorted((ROOT / d).rglob("*.py")) if "__pycache__" not in p.parts]
    assert found, directories
    return found


def _search_path_uses(tree: ast.AST) -> list[int]:
    """Lines that read or change the interpreter's module search path (the ``path`` list of the
    ``sys`` module, however ``sys`` or ``path`` was imported)."""
    sys_names = {"sys"}
    path_names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            sys_names |= {a.asname or a.name for a in node.names if a.name == "sys"}
        elif isinstance(node, ast.ImportFrom) and node.module == "sys":
            path_names |= {a.asname or a.name for a in node.names if a.name == "path"}
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "path":
            if isinstance(node.value, ast.Name) and node.value.id in sys_names:
                lines.append(node.lineno)
        elif isinstance(node, ast.Name) and node.id in path_names:
            lines.append(node.lineno)
    return lines


def _imported_modules(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", _modules("devtools", "scripts"), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_is_longer_than_500_lines(path: Path) -> None:
    lines = len(path.read_text("utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)}: {lines} lines; split it"


@pytest.mark.parametrize(
    "path", _modules("devtools", "scripts", "tests", "bench"), ids=lambda p: str(p.relative_to(ROOT))
)
def test_no_module_touches_the_module_search_path(path: Path) -> None:
    uses = _search_path_uses(ast.parse(path.read_text("utf-8"), str(path)))
    assert not uses, (
        f"{path.relative_to(ROOT)}, lines {uses}: the project's roots come from PYTHONPATH "
        "(Makefile, pytest's pythonpath, devtools.project.child_environment), never from the module itself"
    )


def test_the_search_path_check_sees_each_form() -> None:
    # {sys}: spelled out only here, so that grepping the repository for the attribute finds no sample.
    samples = [
        "import sys\n{sys}.path.insert(0, 'x')",
        "import sys as s\ns.path[:0] = ['x']",
        "from sys import path\npath.append('x')",
        "from sys import path as p\np.append('x')",
        "import os, sys\nenv = {{'PYTHONPATH': os.pathsep.join({sys}.path)}}",
    ]
    assert all(_search_path_uses(ast.parse(code.format(sys="sys"))) for code in samples)
    assert not _search_path_uses(ast.parse("import os\nos.path.join('a', 'b')\nfrom pathlib import Path"))


@pytest.mark.parametrize("path", _modules("devtools"), ids=lambda p: str(p.relative_to(ROOT)))
def test_devtools_imports_nothing_from_tests_or_scripts(path: Path) -> None:
    imported = _imported_modules(ast.parse(path.read_text("utf-8"), str(path)))
    wrong = sorted(m for m in imported if m.split(".")[0] in ("tests", "scripts"))
    assert not wrong, f"{path.relative_to(ROOT)} imports {wrong}: tests and scripts use devtools, not back"


def test_sam_cli_fixes_are_written_for_the_pinned_sam_cli() -> None:
    from devtools import samcli

    pins = re.findall(r"^aws-sam-cli==(\S+)", (ROOT / "requirements-dev.txt").read_text(), re.MULTILINE)
    assert pins == [samcli.SAM_CLI_VERSION]
    samcli.check()


def test_sam_cli_fixes_refuse_another_sam_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    from devtools import samcli

    monkeypatch.setattr(samcli, "SAM_CLI_VERSION", "0.0.1")
    with pytest.raises(samcli.SamCliMismatch, match=r"aws-sam-cli 1\.\d+\.\d+ is installed, .* 0\.0\.1"):
        samcli.check()
    with pytest.raises(SystemExit, match=r"^devtools\.samcli: aws-sam-cli"):
        samcli.main(["--version"])


def test_local_runs_allow_the_sample_h5_page_and_refuse_its_look_alike() -> None:
    """``make local``, the events and ``make demo`` use devtools.samples' page: local/env.json's
    ``H5_ALLOW_LIST`` (the functions' allow-list in local runs) is the sample one, and covers it."""
    from wechat_core.allow_list import AllowList, NotAllowed

    from devtools import samples
    from devtools.project import local_parameters

    configured = local_parameters()["H5_ALLOW_LIST"]
    assert configured == samples.SAMPLE_H5_ALLOW_LIST
    allow_list = AllowList.parse(configured)
    assert allow_list.check(samples.SAMPLE_H5_PAGE) == samples.SAMPLE_H5_PAGE
    with pytest.raises(NotAllowed):
        allow_list.check(samples.SAMPLE_H5_LOOK_ALIKE)


def test_the_demo_masks_query_values_it_shows() -> None:
    from devtools.demo import Demo
    from devtools.demo_h5 import _masked_url

    ticket = "T" * 43
    page = f"https://h5.example.com/demo/index.html?shop=7&ticket={ticket}&state=s%20t#/orders?ticket=x"
    shown = _masked_url(Demo.__new__(Demo), page, "ticket")  # masking needs no running stack
    assert ticket not in shown
    assert shown == (
        f"https://h5.example.com/demo/index.html?shop=7&ticket={Demo.mask(ticket)}&state=s%20t#/orders?ticket=x"
    )
