"""Token embeddings from the bundled MiniLM: the tokens the tokenizer makes, unit vectors, and (the ground
truth) their mean with the special tokens is the model's own sentence embedding."""

from __future__ import annotations

import json

import numpy as np
import pytest

from embedlab import ConfigurationError
from embedlab.embed import embed_file, embed_tokens, load_encoder
from embedlab.multivector import load_multivector

TEXTS = ["a dog barks at the mailman", "Quantum chromodynamics!", "x"]


@pytest.fixture(scope="module")
def encoder():
    return load_encoder()


def test_tokens_are_the_tokenizers_and_pool_to_the_sentence_embedding(encoder):
    vectors, offsets = embed_tokens(TEXTS, encoder, batch_size=2)
    counts = [len(encoder.tokenizer(text, add_special_tokens=False)["input_ids"]) for text in TEXTS]
    assert np.diff(offsets).tolist() == counts
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    raw, with_special = embed_tokens(TEXTS, encoder, keep_special=True, normalize=False)
    assert np.diff(with_special).tolist() == [c + 2 for c in counts]
    sentence = encoder.encode(TEXTS, convert_to_numpy=True)
    for i in range(len(TEXTS)):
        mean = raw[with_special[i] : with_special[i + 1]].mean(axis=0)
        np.testing.assert_allclose(mean / np.linalg.norm(mean), sentence[i], atol=2e-5)


def test_empty_texts_are_refused(encoder):
    with pytest.raises(ConfigurationError, match="text 1.*no tokens"):
        embed_tokens(["fine", ""], encoder)
    with pytest.raises(ConfigurationError, match="no texts"):
        embed_tokens([], encoder)


def test_embed_file_writes_a_multivector_file(tmp_path, encoder):
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"id": f"t{i}", "text": t}) + "\n" for i, t in enumerate(TEXTS)))
    report = embed_file(source, tmp_path / "tokens.parquet", token_embeddings=True, shard_size=2)
    assert report.dim == 384
    rows = load_multivector(tmp_path / "tokens.parquet")
    vectors, offsets = embed_tokens(TEXTS, encoder)
    assert rows.ids.tolist() == ["t0", "t1", "t2"] and rows.offsets.tolist() == offsets.tolist()
    np.testing.assert_allclose(rows.vectors, vectors, atol=1e-5)
    assert rows.metadata.column("text").to_pylist() == TEXTS
