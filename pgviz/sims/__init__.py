"""The book's toy simulations: one image, ten labels, a policy over them, by topic.

Each module computes and returns numbers (float64 tensors and plain dicts, one explicit seed
per call); the figures that draw them are in :mod:`pgviz.figures`, and the exact maths they
run on is :mod:`pgviz.exact`.

* :mod:`pgviz.sims.policies`   the chapters' policies and rewards (the article's horse image);
* :mod:`pgviz.sims.estimates`  Monte Carlo against the exact gradient (The policy gradient) and
  the estimator's variance (Baselines);
* :mod:`pgviz.sims.loop`       the training-loop simulator, many runs at once;
* :mod:`pgviz.sims.collapse`   two collapse stories (Policy regularisation);
* :mod:`pgviz.sims.ab`         the A/B game (Averaging over time).

Every public name of those modules is also available here, as ``pgviz.sims.<name>``.
"""
from . import ab, collapse, estimates, loop, policies
from .ab import *  # noqa: F401,F403
from .collapse import *  # noqa: F401,F403
from .estimates import *  # noqa: F401,F403
from .loop import *  # noqa: F401,F403
from .policies import *  # noqa: F401,F403

__all__ = [*policies.__all__, *estimates.__all__, *loop.__all__, *collapse.__all__, *ab.__all__]
