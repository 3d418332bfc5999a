"""pgviz: policy gradient estimation, seen, run and measured.

Modules (one idea each): :mod:`pgviz.estimator` (the losses), :mod:`pgviz.exact`
(finite-action exact maths, written once), :mod:`pgviz.objectives`, :mod:`pgviz.data`,
:mod:`pgviz.models`, :mod:`pgviz.training`, :mod:`pgviz.bench`, :mod:`pgviz.gap` (the
gradient-noise probe), :mod:`pgviz.results` (reading finished runs back),
:mod:`pgviz.widgets` (sliders that work in JupyterLab and static HTML), :mod:`pgviz.cli`;
and two subpackages: :mod:`pgviz.sims` (the toy simulations, by topic) and
:mod:`pgviz.figures` (every figure and table, by topic, and the live training panel).
"""

import os as _os

# Idle OpenMP threads that spin-wait make small CPU training runs 5-20x slower on a busy
# machine; this only takes effect if pgviz is imported before torch.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
