"""pgviz: policy gradient estimation, seen, run and measured.

Modules (one idea each):

* :mod:`pgviz.estimator` -- the estimator's losses and its exact finite-action maths;
* :mod:`pgviz.objectives` -- the registry of training objectives (loss, statistics, options, colour);
* :mod:`pgviz.data`, :mod:`pgviz.models` -- CIFAR-10 / ``.npz`` / synthetic data, the networks;
* :mod:`pgviz.train` -- the trainer (config, loop, run folder, runtime, evaluation, bench);
* :mod:`pgviz.bandit`, :mod:`pgviz.gap` -- the toy simulations, the gap chapter's gradient probe;
* :mod:`pgviz.plots`, :mod:`pgviz.results`, :mod:`pgviz.dashboard`, :mod:`pgviz.widgets` --
  figures and tables, finished runs read back, the live training panel, sliders;
* :mod:`pgviz.cli` -- the command line (``pgviz train | eval | probe | bench``).
"""

import os as _os

# Idle OpenMP threads that spin-wait make small CPU training runs 5-20x slower on a busy
# machine (measured here: 2 threads on 2 shared cores); passive waiting costs nothing when
# the CPU is idle.  Read once when torch loads, so it only takes effect if pgviz is imported
# before torch (``python -m pgviz`` always is).  The one place that sets it.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
