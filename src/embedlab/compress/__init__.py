"""Compress and search: codecs from float16 to RaBitQ, a spec grammar to compose them, two-stage search with
exact rescoring, compressed collections on disk, and a planner that finds the fewest bytes for a recall."""

from embedlab.compress._codec import Codec, CompressMetric
from embedlab.compress._collection import CompressedCollection
from embedlab.compress._planner import CompressionPlan, PlanPoint, default_codecs, plan_compression
from embedlab.compress._search import SearchResult, two_stage_search
from embedlab.compress._spec import CodecSpec, Stage, parse_spec

__all__ = [
    "Codec",
    "CodecSpec",
    "CompressMetric",
    "CompressedCollection",
    "CompressionPlan",
    "PlanPoint",
    "SearchResult",
    "Stage",
    "default_codecs",
    "parse_spec",
    "plan_compression",
    "two_stage_search",
]
