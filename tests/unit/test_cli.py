"""The `tabpipe` command: installed as a console script, `--help` everywhere, one error line instead of a traceback."""

import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.core import TyperGroup

from tabpipe.cli.app import app
from tests.helpers import BIN, ROOT, env


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


def test_errors_are_one_line_and_exit_one(tmp_path: Path) -> None:
    outside = tabpipe("simulate", "adult", cwd=tmp_path)
    assert (outside.returncode, outside.stderr) == (1, "error: dvc.yaml: not found; run this from the project's root\n")
    bad = tabpipe("simulate", "adult", "--set", "no-equals-sign")
    assert bad.returncode == 1 and bad.stderr.strip().splitlines() == [
        "error: --set 'no-equals-sign': expected KEY=VALUE, e.g. data.fraction=0.05"
    ]
    unknown = tabpipe("simulate", "weather")
    assert unknown.returncode == 1 and "unknown scenario 'weather'; choose from adult, employment" in unknown.stderr
    levels = tabpipe("bench", "serving", "--concurrency", "1,x")
    assert (
        levels.returncode == 1 and levels.stderr.strip() == "error: '1,x': expected whole numbers separated by commas"
    )
    rows = tabpipe("bench", "pipeline", "--datasets", "", "--scaling", "synthetic", "--rows", "1e6")
    assert rows.returncode == 1 and rows.stderr.strip() == "error: '1e6': expected whole numbers separated by commas"
    shares = tabpipe("bench", "pipeline", "--datasets", "", "--fractions", "half")
    assert shares.returncode == 1 and shares.stderr.strip() == "error: 'half': expected numbers separated by commas"
    assert "Traceback" not in outside.stderr + bad.stderr + unknown.stderr + levels.stderr
