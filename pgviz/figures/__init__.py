"""Every figure and table of the book, by topic, in the article's colours.

Figures draw numbers they are given (from :mod:`pgviz.sims`, :mod:`pgviz.exact`,
:mod:`pgviz.results`, :mod:`pgviz.gap` or a :class:`~pgviz.figures.panel.Recorder`); they
run no simulation.  Each draws into an ``ax``/``fig`` it is given (or a new one) and returns
it, so it can be a :func:`pgviz.widgets.interactive` draw callback::

    from pgviz import figures, widgets
    widgets.interactive(
        lambda fig, action, baseline: figures.article_pair(action, baseline=baseline, fig=fig),
        {"action": ["horse", "dog"], "baseline": [0.0, 0.175, 0.5]},
    )

* :mod:`pgviz.figures.style`       the palette, one colour per setting, shared plumbing;
* :mod:`pgviz.figures.tables`      the chapters' small HTML tables;
* :mod:`pgviz.figures.charts`      generic charts (bars, lines, runs, histograms, convergence);
* :mod:`pgviz.figures.article`     the article's horse-image figures (What does it do?);
* :mod:`pgviz.figures.estimates`   Monte Carlo error and variance (The policy gradient, Baselines);
* :mod:`pgviz.figures.collapse`    the collapse stories (Policy regularisation);
* :mod:`pgviz.figures.ab`          the A/B game (Averaging over time);
* :mod:`pgviz.figures.gap`         the gap chapter (Where the gap comes from);
* :mod:`pgviz.figures.comparison`  finished runs over seeds (Training on CIFAR-10);
* :mod:`pgviz.figures.learning`    one run as it goes: curves and policy snapshots;
* :mod:`pgviz.figures.panel`       the live training panel and its recorder.

Every public name of those modules is also available here, as ``pgviz.figures.<name>``.
"""
from . import ab, article, charts, collapse, comparison, estimates, gap, learning, panel, style, tables
from .ab import *  # noqa: F401,F403
from .article import *  # noqa: F401,F403
from .charts import *  # noqa: F401,F403
from .collapse import *  # noqa: F401,F403
from .comparison import *  # noqa: F401,F403
from .estimates import *  # noqa: F401,F403
from .gap import *  # noqa: F401,F403
from .learning import *  # noqa: F401,F403
from .panel import *  # noqa: F401,F403
from .style import *  # noqa: F401,F403
from .tables import *  # noqa: F401,F403

__all__ = [*style.__all__, *tables.__all__, *charts.__all__, *article.__all__, *estimates.__all__,
           *collapse.__all__, *ab.__all__, *gap.__all__, *comparison.__all__, *learning.__all__,
           *panel.__all__]
