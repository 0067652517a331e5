"""The `tabpipe` command: installed as a console script, `--help` everywhere, one error line instead of a traceback."""

import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.core import TyperGroup

from tabpipe.cli.app import app
from tests.support.commands import env
from tests.support.paths import BIN, ROOT


def command_paths(group: TyperGroup, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in group.commands.items():
        found.append((*prefix, name))
        if isinstance(command, TyperGroup):
            found += command_paths(command, (*prefix, name))
    return found


COMMANDS = command_paths(typer.main.get_command(app))  # type: ignore[arg-type]


def tabpipe(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """The installed console script, as a user types it."""
    return subprocess.run([str(BIN / "tabpipe"), *args], cwd=cwd, env=env(), capture_output=True, text=True)


def test_every_command_users_ran_as_a_script_is_a_subcommand() -> None:
    names = {" ".join(path) for path in COMMANDS}
    wanted = {"monitor", "simulate", "store-model", "pr report", "pr comment", "bench serving", "bench pipeline"}
    assert wanted <= names


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_subcommand_has_help(path: tuple[str, ...]) -> None:
    result = tabpipe(*path, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage: tabpipe " + " ".join(path) in " ".join(result.stdout.split())


def test_the_command_runs_as_a_module_too() -> None:
    result = subprocess.run([sys.executable, "-m", "tabpipe", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0 and "simulate" in result.stdout


def test_help_imports_no_dask() -> None:
    """`tabpipe predict --cluster` imports Dask only when a run uses a cluster."""
    command = [sys.executable, "-X", "importtime", "-m", "tabpipe", "predict", "--help"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0 and "--cluster" in result.stdout
    imported = {
        line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")
    }
    assert "tabpipe.cli.app" in imported
    assert not {name for name in imported if name.split(".")[0] in ("dask", "distributed")}


def test_errors_are_one_line_and_exit_one(tmp_path: Path) -> None:
    outside = tabpipe("simulate", "adult", cwd=tmp_path)
    assert (outside.returncode, outside.stderr) == (1, "error: dvc.yaml: not found; run this from the project's root\n")
    bad = tabpipe("simulate", "adult", "--set", "no-equals-sign")
    assert bad.returncode == 1 and bad.stderr.strip().splitlines() == [
        "error: --set 'no-equals-sign': expected KEY=VALUE, e.g. data.fraction=0.05"
    ]
    unknown = tabpipe("simulate", "weather")
    assert unknown.returncode == 1 and "unknown scenario 'weather'; choose from adult, employment" in unknown.stderr
    assert "Traceback" not in outside.stderr + bad.stderr + unknown.stderr


@pytest.mark.parametrize(
    ("args", "option", "kind"),
    [
        (("bench", "serving", "--concurrency", "1", "--concurrency", "x"), "--concurrency", "integer"),
        (("bench", "pipeline", "--dataset", "none", "--scaling", "synthetic", "--rows", "1e6"), "--rows", "integer"),
        (("bench", "pipeline", "--dataset", "none", "--fraction", "half"), "--fraction", "number"),
    ],
)
def test_a_repeatable_option_refuses_a_value_of_the_wrong_kind_naming_it(
    args: tuple[str, ...], option: str, kind: str
) -> None:
    """Click parses each repetition before any work starts: exit 2 and a usage error, not a traceback."""
    result = tabpipe(*args)
    assert result.returncode == 2
    assert f"Invalid value for '{option}': Input should be a valid {kind}" in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr


def test_maintainer_commands_run_but_stay_out_of_users_help() -> None:
    top, bench = tabpipe("--help").stdout, tabpipe("bench", "--help").stdout
    assert "│ extract-raw-data" not in top and "│ monitor" in top
    assert "│ bare" not in bench and "│ pipeline" in bench
    for path in (("extract-raw-data",), ("bench", "bare")):
        assert tabpipe(*path, "--help").returncode == 0
