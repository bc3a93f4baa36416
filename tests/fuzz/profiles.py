"""How many inputs each fuzz property gets, and how they are chosen.

CI runs the ``ci`` profile: a fixed number of inputs, derandomized, no example database, so every
run tries the same inputs. ``python -m tests.fuzz --examples N`` selects ``long`` through
``VENUS_FUZZ_EXAMPLES``: N inputs shared out by :func:`examples`, with fresh random seeds.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# Generated inputs are large by design and each one is a real RPC: the size and speed checks
# hypothesis applies to ordinary unit tests do not fit.
_RELAXED = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example,
            HealthCheck.filter_too_much]
CI_EXAMPLES = 400  # all fuzz tests together, in the CI profile
settings.register_profile("ci", derandomize=True, database=None, deadline=None, suppress_health_check=_RELAXED,
                          print_blob=True)
settings.register_profile("long", database=None, deadline=None, suppress_health_check=_RELAXED, print_blob=True)
_LONG_EXAMPLES = int(os.environ.get("VENUS_FUZZ_EXAMPLES", "0"))

PROFILE = "long" if _LONG_EXAMPLES else "ci"
settings.load_profile(PROFILE)


def examples(share: float) -> settings:
    """Settings giving a property ``share`` of all the inputs of this run."""
    return settings(max_examples=max(1, round(share * (_LONG_EXAMPLES or CI_EXAMPLES))))
