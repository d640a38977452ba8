"""Curate: deduplicate (SemDeDup), and choose what to keep of a large set."""

from embedlab.curate._semdedup import KEEP_POLICIES, SemDeDup, check_eps, check_fraction, max_similarity_to_earlier

__all__ = ["KEEP_POLICIES", "SemDeDup", "check_eps", "check_fraction", "max_similarity_to_earlier"]
