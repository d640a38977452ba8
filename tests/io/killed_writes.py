"""The killed-write harness: a writer of each output kind is killed with SIGKILL at a random moment while it
writes, and the target must then hold a complete output (the previous one or the new one) or nothing.

Each kind's two versions are made once in this process and written once to reference paths through the real
writer (``EmbeddingSet.to_parquet``, ``CompressedCollection.save``, ``Index.save``, ``write_html``,
``Adapter.save``, ``write_table`` of a curation table, and an import's checkpoint written by
``import_store``). A trial forks a child (no start-up cost, everything already built) that writes the two
versions to the target in turn until it is killed after a random delay; the target is then compared byte for
byte with the references. The import runs as ``embedlab store import`` in a process of its own. Two children
writing the same target at once must leave one of the versions whole.

``tests/io/test_killed_writes.py`` runs a few trials of each kind in ``make test``; ``benchmarks/killed_writes.py``
runs 200 or more and reports the counts.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from embedlab import EmbeddingSet

ROWS, DIM = 4000, 32
#: Rows an import writes between two checkpoints (small: most of a run is then spent writing batches).
CHECKPOINT_BATCH = 50


def digest(path: Path) -> str | None:
    """SHA-256 of a file, or of a folder's files and their names; None when nothing is there."""
    if not path.exists():
        return None
    hasher = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        hasher.update(str(file.relative_to(path) if file != path else "").encode() + b"\0")
        hasher.update(file.read_bytes())
    return hasher.hexdigest()


@dataclass
class Kind:
    """An output kind: ``write(target, version)`` writes version 0 or 1 through embedlab's own writer."""

    name: str
    write: Callable[[Path, int], object]
    suffix: str = ""
    references: list[str | None] = field(default_factory=list)
    #: For a writer that cannot run in a forked child: the command line that writes ``(target, version)``.
    command: Callable[[Path, int], list[str]] | None = None


def _sets() -> list[EmbeddingSet]:
    rng = np.random.default_rng(0)
    ids = np.array([f"row-{i}" for i in range(ROWS)], dtype=object)
    return [EmbeddingSet(rng.normal(size=(ROWS, DIM)).astype(np.float32), ids) for _ in range(2)]


def _parquet() -> Kind:
    sets = _sets()
    return Kind("parquet", lambda target, v: sets[v].to_parquet(target), ".parquet")


def _collection() -> Kind:
    from embedlab.compress import CompressedCollection

    collections = [CompressedCollection.build(s, "pca:16+int8", keep_vectors=True) for s in _sets()]
    return Kind("collection", lambda target, v: collections[v].save(target))


def _index() -> Kind:
    from embedlab.search import build_index

    indexes = [build_index(s.take(np.arange(2000)), target_recall=0.9, n_queries=100) for s in _sets()]
    return Kind("index", lambda target, v: indexes[v].save(target))


def _report() -> Kind:
    from embedlab.report import build_report, write_html

    first = build_report(_sets()[0].take(np.arange(300)), compression=False, k_values=[2, 3], random_state=0)
    reports = [first, dataclasses.replace(first, name="the other version")]
    return Kind("report", lambda target, v: write_html(reports[v], target), ".html")


def _adapter() -> Kind:
    from embedlab.align import RidgeAdapter

    first, second = _sets()
    adapters = [RidgeAdapter(alpha=a).fit(first.vectors, second.vectors) for a in (0.1, 1.0)]
    return Kind("adapter", lambda target, v: adapters[v].save(target), ".json")


def _curation_table() -> Kind:
    from embedlab.curate import deduplicate
    from embedlab.io.writers import write_table

    tables = [deduplicate(s, method="semdedup", eps=0.3, random_state=0).to_table(s.ids) for s in _sets()]
    return Kind("curation table", lambda target, v: write_table(tables[v], target), ".parquet")


def _checkpoint() -> Kind:
    """An import's checkpoint, rewritten after every batch: the target is the checkpoint file itself. The
    writer is ``embedlab store import`` in a process of its own (lancedb's runtime does not survive a fork)."""
    sets = _sets()

    def command(target: Path, version: int) -> list[str]:
        source = target.with_name(f"source-{version}.parquet")
        if not source.exists():
            sets[version].to_parquet(source)
        store = f"lancedb://{target.parent / f'store-{time.monotonic_ns()}'}/t"
        batches = ["--batch-size", str(CHECKPOINT_BATCH), "--checkpoint", str(target), "--quiet"]
        return [sys.executable, "-m", "embedlab", "store", "import", str(source), store, *batches]

    def write(target: Path, version: int) -> None:
        subprocess.run(command(target, version), check=True, stdin=subprocess.DEVNULL)

    return Kind("checkpoint", write, ".json", command=command)


KINDS: dict[str, Callable[[], Kind]] = {
    "parquet": _parquet,
    "collection": _collection,
    "index": _index,
    "report": _report,
    "adapter": _adapter,
    "curation table": _curation_table,
    "checkpoint": _checkpoint,
}


def valid_checkpoint(path: Path) -> bool:
    """Whether ``path`` is a whole checkpoint document (it changes with every batch, so it has no reference)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(document, dict) and document.get("rows_done", -1) % CHECKPOINT_BATCH == 0


@dataclass
class Counts:
    """Trials of one kind: how the target was found after each kill."""

    kind: str
    trials: int = 0
    previous: int = 0
    new: int = 0
    nothing: int = 0
    partial: int = 0
    previous_gone: int = 0
    litter: int = 0
    litter_after_next_write: int = 0
    concurrent: int = 0
    concurrent_partial: int = 0
    failures: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if k != "failures"} | {"failures": self.failures[:20]}


class Harness:
    """One kind's references and trials in ``folder``."""

    def __init__(self, name: str, folder: Path) -> None:
        self.kind = KINDS[name]()
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        if name != "checkpoint":
            for version in (0, 1):
                reference = folder / f"reference-{version}{self.kind.suffix}"
                self.kind.write(reference, version)
                self.kind.references.append(digest(reference))
            assert self.kind.references[0] != self.kind.references[1], "the two versions must differ"
        self.counts = Counts(name)
        self.previous = 0

    def _child(self, target: Path, first: int) -> int:
        """Fork a writer of ``target`` (versions in turn, from ``first``); return once it has begun writing."""
        if self.kind.command is not None:
            return subprocess.Popen(self.kind.command(target, first), stdin=subprocess.DEVNULL).pid
        started, ready = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child writes until it is killed
            code = 0
            try:
                os.close(started)
                os.write(ready, b"1")
                version = first
                for _ in range(100_000):
                    self.kind.write(target, version)
                    version = 1 - version
            except BaseException:  # a child reports by its exit code only
                code = 1
            os._exit(code)
        os.close(ready)
        os.read(started, 1)
        os.close(started)
        return pid

    def _outcome(self, target: Path) -> str:
        if self.kind.name == "checkpoint":
            if not target.exists():
                return "nothing"
            return "new" if valid_checkpoint(target) else "partial"
        found = digest(target)
        if found is None:
            return "nothing"
        if found in self.kind.references:
            return "previous" if found == self.kind.references[self.previous] else "new"
        return "partial"

    def trial(self, seed: int, max_delay: float) -> str:
        """Write, kill after a random delay, and classify what the target holds."""
        rng = random.Random(seed)
        target = self.folder / f"trial-{seed}{self.kind.suffix}"
        self.previous = rng.randrange(2)
        had_previous = rng.random() < 0.5 and self.kind.name != "checkpoint"
        if had_previous:
            self.kind.write(target, self.previous)  # a complete earlier output the killed write must not spoil
        pid = self._child(target, 1 - self.previous)
        time.sleep(rng.uniform(0, max_delay))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        outcome = self._outcome(target)
        self.counts.trials += 1
        setattr(self.counts, outcome, getattr(self.counts, outcome) + 1)
        if outcome == "partial":
            self.counts.failures.append(f"seed {seed}: {target} is a partial output")
        # allowed ("the previous output or nothing"), but counted: a folder is replaced by two renames, and a kill
        # between them leaves the previous output only in a hidden .old folder beside the target
        self.counts.previous_gone += had_previous and outcome == "nothing"
        self.counts.litter += self._litter(target)
        if self.kind.name != "checkpoint":  # the next write of the target removes what the killed one left
            self.kind.write(target, self.previous)
            self.counts.litter_after_next_write += self._litter(target)
        return outcome

    def _litter(self, target: Path) -> int:
        return sum(1 for p in self.folder.iterdir() if p.name.startswith(f".{target.name}."))

    def concurrent(self, seed: int) -> str:
        """Two writers of the same target at once, each writing its version a few times: one whole version."""
        target = self.folder / f"both-{seed}{self.kind.suffix}"
        pids = [self._child(target, version) for version in (0, 1)]
        time.sleep(random.Random(seed).uniform(0.05, 0.5))
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        outcome = self._outcome(target)
        self.counts.concurrent += 1
        if outcome == "partial":
            self.counts.concurrent_partial += 1
            self.counts.failures.append(f"concurrent seed {seed}: {target} mixes the two writers")
        return outcome

    def write_seconds(self) -> float:
        """How long one write of this kind takes, so that kills are spread over whole writes."""
        started = time.perf_counter()
        self.kind.write(self.folder / f"timing{self.kind.suffix}", 0)
        return time.perf_counter() - started

    def max_delay(self) -> float:
        """The longest wait before a kill: three writes of a forked child (which writes on until it is killed),
        one run of a command (which writes once, then removes its checkpoint)."""
        return (1 if self.kind.command is not None else 3) * self.write_seconds()
