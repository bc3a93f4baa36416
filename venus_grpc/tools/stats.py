"""Latency figures, computed one way wherever they are printed or checked."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` percentile (0-100) of already sorted values; 0 when there are none.

    Nearest rank returns a value that was measured (no interpolation) and never one below the
    share ``q`` asks for, so a bound checked against it is not loosened by rounding.
    """
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]
