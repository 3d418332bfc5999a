"""pgviz: policy gradient estimation, seen, run and measured.

Modules (one idea each): :mod:`pgviz.estimator` (the estimator and its exact math),
:mod:`pgviz.data`, :mod:`pgviz.models`, :mod:`pgviz.training`, :mod:`pgviz.bandit`
(toy simulations), :mod:`pgviz.plots`, :mod:`pgviz.widgets`, :mod:`pgviz.cli`.
"""

import os as _os

# Idle OpenMP threads that spin-wait make small CPU training runs 5-20x slower on a busy
# machine; this only takes effect if pgviz is imported before torch.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
