"""pgviz: policy gradient estimation, seen, run and measured.

Modules (one idea each):

* :mod:`pgviz.estimator` -- the estimator's losses (and cross-entropy); :mod:`pgviz.supervised` --
  the companion notebook's teacher-student and sampled softmax;
* :mod:`pgviz.exact` -- the finite-action exact maths (gradients, variances, optimal baselines), written once;
* :mod:`pgviz.objectives` -- the registry of training objectives (loss, statistics, options, colour);
* :mod:`pgviz.data`, :mod:`pgviz.batches`, :mod:`pgviz.models` -- CIFAR-10 / ``.npz`` / synthetic
  data sets, batches on the device, the networks; :mod:`pgviz.download` -- the deadline of a
  CIFAR-10 download;
* :mod:`pgviz.train` -- the trainer (config, loop, run folder, runtime, evaluation, bench);
* :mod:`pgviz.sims` -- the toy simulations, by topic; :mod:`pgviz.gap` -- the gap chapter's gradient probe;
* :mod:`pgviz.figures` -- every figure and table, by topic, and the live training panel;
  :mod:`pgviz.results` -- finished runs read back; :mod:`pgviz.widgets` -- sliders for
  JupyterLab and static HTML; :mod:`pgviz.sources` -- numbers quoted from the article's companion
  notebook, credited;
* :mod:`pgviz.cli` -- the command line (``pgviz train | eval | probe | bench``).
"""

import os as _os

# Idle OpenMP threads that spin-wait make small CPU training runs 5-20x slower on a busy
# machine (measured here: 2 threads on 2 shared cores); passive waiting costs nothing when
# the CPU is idle.  Read once when torch loads, so it only takes effect if pgviz is imported
# before torch (``python -m pgviz`` always is).  The one place that sets it.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
