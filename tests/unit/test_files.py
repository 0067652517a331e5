"""Atomic writes: a failing writer leaves the previous file intact and no temporary behind."""

from pathlib import Path

import pytest

from tabpipe.core import files


def test_failed_write_keeps_previous_file(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    files.write_json(target, {"a": 1})

    def half_then_fail(tmp: Path) -> None:
        tmp.write_text('{"a": ')
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        files.write_with(target, half_then_fail)
    assert files.read_json(target) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_json_is_stable_bytes(tmp_path: Path) -> None:
    files.write_json(tmp_path / "a.json", {"b": 1, "a": [1, 2]})
    files.write_json(tmp_path / "b.json", {"a": [1, 2], "b": 1})
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()


def test_written_files_get_the_usual_mode(tmp_path: Path) -> None:
    files.write_text(tmp_path / "x.txt", "x")
    assert (tmp_path / "x.txt").stat().st_mode & 0o044 == 0o044
