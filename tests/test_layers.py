"""Import layers: low-level modules load without PyTorch and never read the package root."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import pixcolor
from pixcolor._version import __version__

SRC = Path(pixcolor.__file__).parent
LIGHT = ["pixcolor.errors", "pixcolor._version", "pixcolor.atomic", "pixcolor.working_size"]


@pytest.mark.parametrize("module", LIGHT)
def test_light_modules_do_not_load_torch(module: str):
    code = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    assert not {"torch", "numpy", "PIL"} & loaded


def test_no_module_takes_the_version_or_api_from_the_package_root():
    """Submodules (``from pixcolor import checkpoint``) are fine; the root's own names are not,
    except in the web page, which uses the public API as any user would."""
    offenders = []
    for path in SRC.rglob("*.py"):
        if path == SRC / "__init__.py" or SRC / "web" in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "pixcolor":
                for alias in node.names:
                    if not (SRC / f"{alias.name}.py").is_file() and not (SRC / alias.name).is_dir():
                        offenders.append(f"{path.relative_to(SRC)}: {alias.name}")
    assert offenders == []


def test_version_has_one_source():
    assert pixcolor.__version__ == __version__
