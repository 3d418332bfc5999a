"""pgviz: policy gradient estimation, seen, run and measured.

Modules (one idea each): :mod:`pgviz.estimator` (the estimator and its exact math),
:mod:`pgviz.data`, :mod:`pgviz.models`, :mod:`pgviz.training`, :mod:`pgviz.bandit`
(toy simulations), :mod:`pgviz.plots`, :mod:`pgviz.widgets`, :mod:`pgviz.cli`.
"""

__version__ = "0.1.0"
