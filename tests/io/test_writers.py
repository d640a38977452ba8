from __future__ import annotations

import os

import pytest

from embedlab.io.writers import atomic_path, write_json


def test_failure_leaves_previous_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.json"
    write_json({"v": 1}, target)
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert target.read_text().strip().startswith("{") and '"v": 1' in target.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_creates_parent_folders(tmp_path):
    target = tmp_path / "a" / "b" / "c.json"
    write_json([1, 2], target)
    assert target.exists()


def test_output_gets_the_usual_permissions(tmp_path):
    target = write_json({}, tmp_path / "p.json")
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
