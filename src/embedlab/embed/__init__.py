"""Embedding texts: the offline default model, batched and resumable embedding of text files."""

from embedlab.embed.encoder import DEFAULT_MODEL_NAME, default_model_path, embed_texts, embed_tokens, load_encoder
from embedlab.embed.pipeline import EmbedReport, embed_file

__all__ = [
    "DEFAULT_MODEL_NAME",
    "EmbedReport",
    "default_model_path",
    "embed_file",
    "embed_texts",
    "embed_tokens",
    "load_encoder",
]
