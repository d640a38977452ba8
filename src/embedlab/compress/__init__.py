"""Compress and search: codecs from float16 to RaBitQ, a spec grammar to compose them, their searchers (two-stage
search with exact rescoring), compressed collections on disk, and a planner that finds the fewest bytes for a
recall; collections of sets on disk written shard by shard on any backend."""

from embedlab.compress._codec import CODEC_METRICS, Codec, CompressMetric
from embedlab.compress._collection import MANIFEST as COLLECTION_MANIFEST
from embedlab.compress._collection import CompressedCollection, compression_memory
from embedlab.compress._planner import CompressionPlan, PlanPoint, default_codecs, plan_compression
from embedlab.compress._search import CodecParams, CodecSearcher
from embedlab.compress._sharded import compress_shards
from embedlab.compress._spec import CodecSpec, Stage, parse_spec

__all__ = [
    "CODEC_METRICS",
    "COLLECTION_MANIFEST",
    "Codec",
    "CodecParams",
    "CodecSearcher",
    "CodecSpec",
    "CompressMetric",
    "CompressedCollection",
    "CompressionPlan",
    "PlanPoint",
    "Stage",
    "compress_shards",
    "compression_memory",
    "default_codecs",
    "parse_spec",
    "plan_compression",
]
