"""Curate: deduplicate (exact, near-duplicate groups, SemDeDup, D4), find leakage between sets, and choose what to
keep of a large set."""

from embedlab.curate._dedup import DEDUP_METHODS, EPS_GRID, Deduplication, deduplicate
from embedlab.curate._groups import DuplicateGroups, duplicate_groups
from embedlab.curate._leakage import Leakage, find_leakage
from embedlab.curate._semdedup import KEEP_POLICIES, SemDeDup, check_eps, check_fraction, max_similarity_to_earlier

__all__ = [
    "DEDUP_METHODS",
    "EPS_GRID",
    "KEEP_POLICIES",
    "Deduplication",
    "DuplicateGroups",
    "Leakage",
    "SemDeDup",
    "check_eps",
    "check_fraction",
    "deduplicate",
    "duplicate_groups",
    "find_leakage",
    "max_similarity_to_earlier",
]
