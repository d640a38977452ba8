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


def test_leftovers_of_dead_writers_on_this_machine_are_removed_by_the_next_write(tmp_path):
    import subprocess
    import sys

    from embedlab.io.writers import _beside, atomic_directory

    target = tmp_path / "out.json"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)  # a process that has ended
    left = _beside(target, "tmp").name.replace(f"-{os.getpid()}.", f"-{pid}.")
    (tmp_path / left).write_text("half")
    live = tmp_path / _beside(target, "tmp").name  # this process's own: still writing, kept
    live.write_text("mine")
    elsewhere = tmp_path / f".out.json.0000beef-{pid}.1234abcd.tmp"  # another machine's: its pids mean nothing here
    elsewhere.write_text("theirs")
    user = tmp_path / ".out.json.notes"  # not a temporary at all
    user.write_text("keep")
    write_json({"v": 1}, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([target.name, live.name, elsewhere.name, user.name])
    folder = tmp_path / "collection"
    stale = tmp_path / _beside(folder, "old").name.replace(f"-{os.getpid()}.", f"-{pid}.")
    (stale / "sub").mkdir(parents=True)
    with atomic_directory(folder, replaceable="manifest.json") as tmp:
        (tmp / "manifest.json").write_text("{}")
    assert not stale.exists() and (folder / "manifest.json").exists()
