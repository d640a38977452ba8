"""Curate: deduplicate (exact, near-duplicate groups, SemDeDup, D4), find leakage between sets, and choose what to
keep of a large set (balanced, sensitivity and representative samples) and in what batches to train on it."""

from embedlab.curate._batches import BATCH_MODES, Batches, stratified_batches
from embedlab.curate._dedup import DEDUP_METHODS, EPS_GRID, Deduplication, dedup_memory, deduplicate
from embedlab.curate._groups import DuplicateGroups, duplicate_groups, relative_threshold
from embedlab.curate._leakage import Leakage, find_leakage
from embedlab.curate._overview import CURVE_EPS, CurationOverview, curation_overview
from embedlab.curate._sample import (
    SAMPLE_METHODS,
    WITHIN_CLUSTER,
    Sample,
    balanced_caps,
    default_levels,
    sample,
    sensitivity_probabilities,
)
from embedlab.curate._semdedup import KEEP_POLICIES, SemDeDup, check_eps, check_fraction, max_similarity_to_earlier

__all__ = [
    "BATCH_MODES",
    "CURVE_EPS",
    "DEDUP_METHODS",
    "EPS_GRID",
    "KEEP_POLICIES",
    "SAMPLE_METHODS",
    "WITHIN_CLUSTER",
    "Batches",
    "CurationOverview",
    "Deduplication",
    "DuplicateGroups",
    "Leakage",
    "Sample",
    "SemDeDup",
    "balanced_caps",
    "check_eps",
    "check_fraction",
    "curation_overview",
    "dedup_memory",
    "deduplicate",
    "default_levels",
    "duplicate_groups",
    "find_leakage",
    "max_similarity_to_earlier",
    "relative_threshold",
    "sample",
    "sensitivity_probabilities",
    "stratified_batches",
]
