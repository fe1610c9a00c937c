"""Start-up: help, argument errors and ``import pixcolor`` never load torch; the command table.

Each check runs in a fresh interpreter (``sys.modules`` of this test process already holds
torch) and reports which heavy modules the command pulled in.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pixcolor import cli

# Runs argv through the CLI in a fresh process; prints the exit code and the heavy modules.
CHILD = r"""
import json, sys
from pixcolor.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
heavy = sorted(m for m in ("torch", "numpy", "pixcolor.pipeline") if m in sys.modules)
print(json.dumps({"code": code, "heavy": heavy}))
"""


def _run(*argv: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *argv], capture_output=True, text=True, timeout=120
    )
    return json.loads(done.stdout.strip().splitlines()[-1]) | {"stderr": done.stderr}


HELP_CASES = [["--help"], ["--version"], []] + [
    pytest.param([name, "--help"], id=f"{name}-help") for name in cli.COMMANDS
]


@pytest.mark.parametrize("argv", HELP_CASES)
def test_help_does_not_import_torch(argv):
    result = _run(*argv)
    assert result["code"] in (0, 2)
    assert "torch" not in result["heavy"], result


@pytest.mark.parametrize(
    "argv",
    [
        ["nonsense"],
        ["colorize"],  # no inputs, no -o
        ["colorize", "a.jpg", "-o", "out", "--size", "big"],
        ["colorize", "a.jpg", "-o", "out", "--format", "gif"],
        ["info", "--frobnicate"],
        ["serve", "--port", "http"],
    ],
)
def test_argument_errors_do_not_import_torch(argv):
    result = _run(*argv)
    assert result["code"] == 2
    assert "error:" in result["stderr"] and "Traceback" not in result["stderr"]
    assert "torch" not in result["heavy"], result


def test_import_pixcolor_is_light_until_a_model_is_used():
    code = (
        "import sys, pixcolor\n"
        "light = 'torch' not in sys.modules and 'pixcolor.pipeline' not in sys.modules\n"
        "names = set(dir(pixcolor))\n"
        "fn = pixcolor.load_model\n"
        "print(light, 'torch' in sys.modules, fn.__module__, pixcolor.__version__,\n"
        "      {'Colorizer', 'available_models', 'colorize', 'load_model', 'upscale'} <= names)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "True", "pixcolor.pipeline", "0.1.0", "True"]


def test_unknown_attribute_is_an_attribute_error():
    import pixcolor

    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        pixcolor.nonsense  # noqa: B018


def test_command_table_matches_what_the_modules_register():
    parser = cli.build_parser()  # every module registered in full
    sub = next(a for a in parser._actions if a.dest == "command")
    listed = {action.dest: action.help for action in sub._choices_actions}
    assert list(listed) == list(cli.COMMANDS), "every registered command is in cli.COMMANDS"
    for name, (_, help_text) in cli.COMMANDS.items():
        assert listed[name] == help_text, f"update the help of {name!r} in cli.COMMANDS"


def test_help_describes_what_ships(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    text = capsys.readouterr().out
    assert "EfficientNet-Lite0" in text and "SRCNN" in text
    assert "Pix2Pix GAN" not in cli.DESCRIPTION


def test_slow_start_up_work_is_announced(capsys):
    import time

    from pixcolor.batch import notice_if_slow

    with notice_if_slow("loading quickly", after=5.0):
        pass
    with notice_if_slow("loading slowly", after=0.05):
        time.sleep(0.3)
    err = capsys.readouterr().err
    assert "loading slowly" in err and "loading quickly" not in err
