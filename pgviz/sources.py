"""Numbers the book quotes from its sources rather than measures: kept once, with credit.

The article's worked example (the policy on the horse image, its baseline and gradients)
is :data:`pgviz.estimator.ARTICLE`.  This module holds what the article's *companion
notebook* prints, since the article's text gives no accuracies:

Douglas Orr, ``training_objectives.ipynb``, the companion notebook of the series
*Training Objectives* (2021), on the ``examples`` branch of the GitHub repository
DouglasOrr/DouglasOrr.github.io, folder ``2021-10-training-objectives``
(:data:`NOTEBOOK_URL`; ``orr2021notebook`` in ``book/references.bib``).

:data:`ORR_NOTEBOOK` ``["test_accuracy"]`` maps each objective of the series to the final
test accuracy that notebook prints (a fraction, one run each); the other keys describe
its recipe.  The chapters print these values from here and credit the notebook; nothing
in ``pgviz`` recomputes them (the book's runs use a subset of CIFAR-10; most use a different
network, and ``--recipe notebook`` runs the notebook's, see *Training on CIFAR-10*).
"""
from __future__ import annotations

__all__ = ["NOTEBOOK_URL", "ORR_NOTEBOOK", "notebook_accuracy"]

#: Where the companion notebook lives.
NOTEBOOK_URL = ("https://github.com/DouglasOrr/DouglasOrr.github.io/blob/examples/"
                "2021-10-training-objectives/training_objectives.ipynb")

#: What the companion notebook prints and how it trains (credit: Douglas Orr, 2021).
ORR_NOTEBOOK = {
    "citation": "orr2021notebook",
    "url": NOTEBOOK_URL,
    # final accuracy on the 10,000 CIFAR-10 test images, one run per objective
    "test_accuracy": {
        "policy gradient": 0.552,
        "softmax cross-entropy": 0.644,
        "value function": 0.618,
        "sampled softmax": 0.594,
        "teacher-student": 0.665,
    },
    # the recipe shared by those runs
    "model": "shallow convolutional network (two convolutions and a linear layer)",
    "train_images": 50_000,
    "test_images": 10_000,
    "epochs": 15,
    "batch_size": 128,
    "optimizer": "Adam, default settings",
    "entropy_weight": 0.04,
    "runs_per_objective": 1,
}


def notebook_accuracy(objective: str) -> float:
    """The companion notebook's final test accuracy for ``objective`` (a key of
    ``ORR_NOTEBOOK["test_accuracy"]``), as a fraction; a KeyError names the choices."""
    acc = ORR_NOTEBOOK["test_accuracy"]
    if objective not in acc:
        raise KeyError(f"unknown objective {objective!r}; choices: {', '.join(acc)}")
    return acc[objective]
