"""Concept contributions, type shares, explanations, their size and type agreement, as the explain package uses them.

They are computed in :mod:`dance.model.contributions` (beside the estimator, so that the evaluate stage needs no
``dance.explain`` import); this module only gives them their place among the other explanations.
"""

from __future__ import annotations

from dance.model.contributions import (
    ConceptContribution,
    Explanation,
    _probability,
    contributions,
    explain,
    explain_concepts,
    explanation_size,
    type_agreement,
    type_shares,
)

__all__ = ["ConceptContribution", "Explanation", "_probability", "contributions", "explain", "explain_concepts",
           "explanation_size", "type_agreement", "type_shares"]
