"""The training objectives, one registry entry each: name -> :class:`Objective`.

An entry is everything the rest of pgviz knows about an objective: its step (one batch of
network outputs in, the loss and its named statistics out; the maths is in
:mod:`pgviz.estimator`), the statistics it measures, its own options (each with its
command-line flag, help, default, check and resume rule), how many rewards it asks per
image, what the benchmark times, and its colour and label in figures.  The trainer
(:mod:`pgviz.train`), the command line, the benchmark and the figures read the entries;
none of them names an objective.

``pg``              the article's estimator: one sampled label per image, reward 1 if
                    right, a learned sigmoid baseline trained with BCE, entropy bonus
                    (:func:`pgviz.estimator.pg_loss`, the single-backward surrogate;
                    eq:single-sample, {cite}`williams1992simple`);
``pg-no-baseline``  the same with ``b = 0``;
``xent``            softmax cross-entropy, the supervised comparison (eq:gap-xent);
``pg-exact``        the exact expected-reward gradient over all actions, no sampling:
                    cross-entropy weighted by the detached ``pi_y`` (eq:gap-exact;
                    :func:`pgviz.estimator.pg_exact_loss`);
``rloo``            ``samples = K >= 2`` sampled labels per image, each scored against the
                    mean reward of the other ``K - 1`` (eq:gap-rloo; {cite}`kool2019buy`,
                    {cite}`ahmadian2024back`); ``group_norm`` divides the advantages by
                    the group's standard deviation as GRPO does (eq:gap-group-norm;
                    {cite}`shao2024deepseekmath`) (:func:`pgviz.estimator.rloo_loss`);
``value``           the series' value-function objective: per-action reward predictions
                    trained with BCE on the action taken epsilon-greedily (eq:gap-value;
                    {cite}`orr2021value`; :func:`pgviz.estimator.value_loss`).

A run sets an objective's options in ``TrainConfig.options``, e.g.
``TrainConfig(objective="rloo", options={"samples": 4})`` (``pgviz train --objective rloo
--samples 4``).  Adding an objective is one :func:`register` call (see :class:`Objective` for the fields):
``pgviz train --objective NAME`` with its flags, resuming, the metrics, ``pgviz bench``
and the figures' colour then follow from the entry.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import torch

from . import estimator, supervised
from .estimator import check_labels  # one home for the label checks (the estimator's)

__all__ = ["OBJECTIVES", "STAT_NAMES", "Objective", "Option", "check_option_names", "color", "get", "legacy_options", "measured",
           "objective_step", "option_owners", "prepare", "register", "resolve_options", "reward_queries",
           "stat_names", "unregister"]

#: The statistics every objective's metrics rows carry, in this order (``null`` where an
#: objective does not measure one); an objective's own further statistics follow them.
STAT_NAMES = ("loss", "reward", "baseline", "entropy", "policy_loss", "baseline_loss", "train_acc")
_ALWAYS = ("loss", "train_acc")  # measured for every objective by objective_step itself


@dataclass(frozen=True)
class Option:
    """A setting that belongs to one objective (``TrainConfig.options[name]``).

    ``name`` is the keyword its step receives and, with ``-`` for ``_``, its command-line
    flag (``--name``); ``default`` also fixes its type (bool: a switch; int: a whole number;
    float: a finite number); ``check(value)`` returns a one-line complaint or None.
    ``resume`` says what a resumed run does with it: ``"run"`` (the run's identity: kept from
    the checkpoint, a different value is refused) or ``"session"`` (may change).
    """

    name: str
    default: Any
    help: str
    check: Optional[Callable[[Any], Optional[str]]] = None
    resume: str = "run"
    metavar: Optional[str] = None

    @property
    def flag(self) -> str:
        """The command-line flag, e.g. ``--group-norm``."""
        return "--" + self.name.replace("_", "-")

    def coerce(self, value):
        """``value`` as this option's type (numpy numbers become plain ones), or ValueError."""
        kind = type(self.default)
        if kind is bool:
            if not isinstance(value, bool):
                raise ValueError(f"{self.name} must be True or False, got {value!r}")
            return value
        if kind is int:
            if not isinstance(value, numbers.Integral) or isinstance(value, bool):
                raise ValueError(f"{self.name.replace('_', ' ')} must be a whole number, got {value!r}")
            return int(value)
        if kind is float:
            if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value):
                raise ValueError(f"{self.name.replace('_', ' ')} must be a finite number, got {value!r}")
            return float(value)
        return value


#: ``step(outputs, labels, *, entropy_weight, generator, **options) -> (loss, {stat: tensor})``
Step = Callable[..., Tuple[torch.Tensor, Dict[str, torch.Tensor]]]


@dataclass(frozen=True)
class Objective:
    """One training objective: what :func:`register` takes.

    ``step``     ``(outputs [B, K+1] float32, labels [B], *, entropy_weight, generator,
                 **options) -> (loss to backpropagate, {name: 0-d detached tensor})``; it
                 must not synchronise with the device (no ``.item()``);
    ``stats``    the names of the statistics ``step`` returns: any of :data:`STAT_NAMES`
                 (the others are logged as ``null``), then its own, appended to the rows;
    ``options``  its own settings (:class:`Option`), with their flags and resume rules;
    ``queries``  ``(options, n_actions) -> rewards asked per image`` (None: it reads labels);
    ``bench``    ``{method name: options}`` that ``pgviz bench`` times through ``step``;
    ``color``, ``label``  its colour (hex) and name in figures; ``variants`` gives the
                 colours of named settings of it (``"rloo-4"``) or of the same estimator
                 under other names;
    ``usage``    how the command line's help lists it (default: the name);
    ``prepare``  for an objective that needs more than the outputs and labels (a teacher
                 network): ``(options, *, device, precision, n_classes, standardize) ->
                 {name: value}``, called once per run before training (:func:`prepare`);
                 its step then also receives these values and ``inputs``, the batch of
                 images as the network saw it.
    """

    name: str
    step: Step
    stats: Tuple[str, ...]
    color: str
    label: str
    options: Tuple[Option, ...] = ()
    queries: Callable[[Mapping[str, Any], int], Optional[int]] = lambda options, n_actions: 1
    bench: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    variants: Mapping[str, str] = field(default_factory=dict)
    usage: str = ""
    prepare: Optional[Callable[..., Dict[str, Any]]] = None

    def option(self, name: str) -> Optional[Option]:
        """This objective's option called ``name``, or None."""
        return next((o for o in self.options if o.name == name), None)


#: The registry, in registration order: name -> :class:`Objective`.  Iterating it gives the
#: names; it is what ``TrainConfig.objective`` and ``--objective`` may be.
OBJECTIVES: Dict[str, Objective] = {}


def register(objective: Objective, *, replace: bool = False) -> Objective:
    """Add ``objective`` to the registry (``replace`` an entry of the same name); returns it.

    An option name another objective uses too must have the same type (they share one
    command-line flag); one that a training setting uses is refused when the command line
    is built.
    """
    if objective.name in OBJECTIVES and not replace:
        raise ValueError(f"objective {objective.name!r} is registered already")
    for opt in objective.options:
        for other in OBJECTIVES.values():
            same = other.option(opt.name)
            if other.name != objective.name and same is not None and type(same.default) is not type(opt.default):
                raise ValueError(f"option {opt.name!r} of {objective.name!r} has another type than {other.name!r}'s")
    if not set(_ALWAYS).isdisjoint(objective.stats):
        raise ValueError(f"{objective.name!r}: loss and train_acc are measured for every objective")
    OBJECTIVES[objective.name] = objective
    return objective


def unregister(name: str) -> None:
    """Remove an objective from the registry (for tests and experiments)."""
    OBJECTIVES.pop(name, None)


def get(name: str) -> Objective:
    """The registered objective ``name`` (else ValueError, one line naming the choices)."""
    try:
        return OBJECTIVES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown objective {name!r}; choose one of: {', '.join(OBJECTIVES)}") from None


def option_owners(name: str) -> Tuple[str, ...]:
    """The objectives that have an option called ``name``."""
    return tuple(o.name for o in OBJECTIVES.values() if o.option(name) is not None)


def _shown(opt: Option, value) -> str:
    return opt.flag if isinstance(value, bool) else f"{opt.flag} {value}"


def check_option_names(objective: str, options: Mapping[str, Any]) -> None:
    """ValueError (one line) unless every name in ``options`` is an option of ``objective``."""
    entry = get(objective)
    for name, value in options.items():
        if entry.option(name) is None:
            owners = option_owners(name)
            if not owners:
                raise ValueError(f"unknown option {name!r} of objective {objective}")
            shown = _shown(next(o.option(name) for o in OBJECTIVES.values() if o.name in owners), value)
            raise ValueError(f"{shown} applies to --objective {' or '.join(owners)} only (got {objective})")


def resolve_options(objective: str, options: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """Every option of ``objective``: the given ones checked (types, ranges, that they belong
    to it), the rest at their defaults.  A problem is a ValueError with one line."""
    entry = get(objective)
    options = dict(options or {})
    check_option_names(objective, options)
    out = {}
    for opt in entry.options:
        value = opt.coerce(options.get(opt.name, opt.default))
        problem = opt.check(value) if opt.check is not None else None
        if problem:
            raise ValueError(problem)
        out[opt.name] = value
    return out


def legacy_options(config: Mapping[str, Any]) -> Dict[str, Any]:
    """The options of a config dict written before options had their own dict (top-level
    ``samples``, ``group_norm``, ``epsilon``): those of its objective, merged under any
    ``options`` it has.  The other objectives' keys are dropped: they were at their
    defaults and had no effect."""
    options = dict(config.get("options") or {})
    entry = OBJECTIVES.get(config.get("objective"))
    if entry is not None:
        for opt in entry.options:
            if opt.name in config and opt.name not in options:
                options[opt.name] = config[opt.name]
    return options


def stat_names(objective: str) -> Tuple[str, ...]:
    """The statistics of ``objective``'s metrics rows, in order: :data:`STAT_NAMES`, then its own."""
    return STAT_NAMES + tuple(s for s in get(objective).stats if s not in STAT_NAMES)


def measured(objective: str) -> frozenset:
    """The names of the statistics ``objective`` measures (the others are logged as null)."""
    return frozenset(_ALWAYS) | frozenset(get(objective).stats)


def reward_queries(objective, options: Optional[Mapping[str, Any]] = None, n_actions: int = 10) -> Optional[int]:
    """Rewards the objective asks for per image: 1 for the one-guess game, ``K`` for rloo,
    every action's for ``pg-exact`` (the label, in effect); None for ``xent`` (no rewards).

    ``objective`` is a name (with ``options``), a ``TrainConfig``, or a saved config dict
    (a checkpoint's, or a metrics start line, old or new)."""
    if not isinstance(objective, str):
        config = objective if isinstance(objective, Mapping) else vars(objective)
        objective, options = config["objective"], legacy_options(config)
    return get(objective).queries(resolve_options(objective, options), n_actions)


def color(name: str, default: Optional[str] = None) -> Optional[str]:
    """The colour (hex) of an objective or of one of its named settings (``"rloo-4"``,
    ``"grpo-4"``), the same in every figure; ``default`` for a name no entry knows."""
    if name in OBJECTIVES:
        return OBJECTIVES[name].color
    return next((o.variants[name] for o in OBJECTIVES.values() if name in o.variants), default)


def prepare(objective: str, options: Optional[Mapping[str, Any]] = None, *, device, precision: str = "fp32",
            n_classes: int = 10, standardize: bool = True) -> Dict[str, Any]:
    """What ``objective``'s step needs besides a batch, made once per run (its entry's
    ``prepare``, e.g. the teacher of ``teacher-student``); ``{}`` for most objectives."""
    entry = get(objective)
    if entry.prepare is None:
        return {}
    return entry.prepare(resolve_options(objective, options), device=device, precision=precision,
                         n_classes=n_classes, standardize=standardize)




def objective_step(objective: str, outputs: torch.Tensor, labels: torch.Tensor, *,
                   entropy_weight: float = 0.01, generator: Optional[torch.Generator] = None,
                   inputs: Optional[torch.Tensor] = None, prepared: Optional[Mapping[str, Any]] = None,
                   check_range: bool = True,
                   **options):
    """``(loss to backpropagate, stats)`` for one batch: the entry's step on float32
    outputs, ``stats`` its named statistics plus ``loss`` and ``train_acc`` (the greedy
    accuracy), detached 0-d tensors (no device synchronisation happens here).  Options not
    given take their defaults.  An objective with a ``prepare`` also takes ``inputs`` (the
    images the network saw) and ``prepared`` (what :func:`prepare` made).  Non-finite outputs
    (a diverged network) are a one-line ValueError with ``check_range`` on the CPU (no device
    sync, as for the labels); else the reported ``loss`` is NaN, so that the trainer's finite-loss
    check stops the run as diverged, even for a loss that stays finite (value, sampled softmax)."""
    entry = get(objective)
    for name in options:
        if entry.option(name) is None:
            raise ValueError(f"objective {objective} has no option {name!r}")
    options = {o.name: options.get(o.name, o.default) for o in entry.options}
    check_labels(outputs, labels, check_range=check_range)
    outputs = outputs.float()
    finite = torch.isfinite(outputs).all()
    if check_range:
        estimator.check_outputs(outputs, finite)
    acc = (outputs[:, :-1].argmax(1) == labels).float().mean()
    if entry.prepare is not None:
        if inputs is None or prepared is None:
            raise ValueError(f"objective {objective} needs the batch's inputs and prepared=objectives.prepare(...)")
        options = {**options, **prepared, "inputs": inputs}
    loss, stats = entry.step(outputs, labels, entropy_weight=entropy_weight, generator=generator, **options)
    return loss, {"loss": loss.detach().masked_fill(~finite, float("nan")), **stats, "train_acc": acc}


# ----------------------------------------------------------------------------
# The entries
# ----------------------------------------------------------------------------
def _sampling_log_probs(outputs: torch.Tensor, generator: Optional[torch.Generator]) -> torch.Tensor:
    """The policy to sample from, from NaN-free logits (as the estimators would, but a
    diverged network then reaches the trainer's finite-loss check instead of crashing
    ``torch.multinomial``), on the generator's device (e.g. a CPU generator under MPS)."""
    with torch.no_grad():
        logits = torch.nan_to_num(outputs[:, :-1], nan=0.0, posinf=0.0, neginf=0.0)
        if generator is not None and generator.device != logits.device:
            logits = logits.to(generator.device)
        return torch.log_softmax(logits, 1)


def _surrogate_stats(r: estimator.PGResult, baseline: bool = True) -> Dict[str, torch.Tensor]:
    stats = {"reward": r.rewards.mean(), "entropy": r.entropy, "policy_loss": r.policy_loss,
             "baseline_loss": r.baseline_loss}
    if baseline:
        stats["baseline"] = r.baseline.mean()
    return stats


def _pg_step(use_baseline: bool) -> Step:
    def step(outputs, labels, *, entropy_weight, generator):
        with torch.no_grad():
            actions = estimator.sample_actions(_sampling_log_probs(outputs, generator), generator).to(outputs.device)
        r = estimator.pg_loss(outputs, labels, entropy_weight=entropy_weight, use_baseline=use_baseline,
                              actions=actions)
        return r.loss, _surrogate_stats(r, baseline=use_baseline)
    return step


def _xent_step(outputs, labels, *, entropy_weight, generator):
    return estimator.xent_loss(outputs, labels), {}


def _pg_exact_step(outputs, labels, *, entropy_weight, generator):
    r = estimator.pg_exact_loss(outputs, labels, entropy_weight=entropy_weight)
    return r.loss, _surrogate_stats(r)


def _rloo_step(outputs, labels, *, entropy_weight, generator, samples, group_norm):
    with torch.no_grad():
        actions = estimator.sample_groups(_sampling_log_probs(outputs, generator), samples,
                                          generator).to(outputs.device)
    r = estimator.rloo_loss(outputs, labels, samples=samples, group_norm=group_norm,
                            entropy_weight=entropy_weight, actions=actions)
    return r.loss, _surrogate_stats(r)


def _value_step(outputs, labels, *, entropy_weight, generator, epsilon):
    r = estimator.value_loss(outputs, labels, epsilon=epsilon, generator=generator)
    return r.loss, {"reward": r.rewards.mean(), "policy_loss": r.policy_loss}


def _check_samples(k: int) -> Optional[str]:
    if k < 1:
        return f"samples must be a whole number >= 1, got {k}"
    if k < 2:
        return (f"rloo needs --samples K >= 2 (got {k}): with one sample there is no other "
                f"sample to form the leave-one-out baseline; use --objective pg for one sample")
    return None


_PG_STATS = ("reward", "baseline", "entropy", "policy_loss", "baseline_loss")
_POLICY, _MUTED, _REWARD = "#1f77b4", "#9a9a9a", "#2ca02c"  # the article's blue, grey and green

register(Objective(
    "pg", _pg_step(True), _PG_STATS, color=_POLICY, label="policy gradient",
    # the gradient-noise probe's names for this estimator with its learned and its best constant baseline
    variants={"learned-V": _POLICY, "optimal-constant": _REWARD}))
register(Objective(
    "pg-no-baseline", _pg_step(False), ("reward", "entropy", "policy_loss", "baseline_loss"), color=_MUTED,
    label="policy gradient, no baseline", variants={"no-baseline": _MUTED}))
register(Objective(
    "xent", _xent_step, (), color="#000000", label="cross-entropy", queries=lambda options, n_actions: None))
register(Objective(
    "pg-exact", _pg_exact_step, _PG_STATS, color="#8c564b", label="exact policy gradient",
    queries=lambda options, n_actions: n_actions, bench={"pg_exact": {}}))
register(Objective(
    "rloo", _rloo_step, _PG_STATS, color="#9467bd", label="RLOO",
    options=(Option("samples", 1, "rloo: actions sampled per image, K >= 2", check=_check_samples),
             Option("group_norm", False, "rloo: divide advantages by the group's standard deviation (GRPO)")),
    queries=lambda options, n_actions: options["samples"], bench={"rloo_4": {"samples": 4}},
    variants={"rloo-2": "#c5b0d5", "rloo-4": "#9467bd", "rloo-8": "#5b2c86", "grpo-4": "#e377c2"},
    usage="rloo (with --samples K)"))
register(Objective(
    "value", _value_step, ("reward", "policy_loss"), color="#17becf", label="value function",
    options=(Option("epsilon", 0.2, "value: exploration rate (default 0.2)",
                    check=lambda e: None if 0.0 <= e <= 1.0 else f"epsilon must lie in [0, 1], got {e}"),),
    bench={"value": {}}))

def _teacher_prepare(options, *, device, precision, n_classes, standardize):
    """Load ``--teacher`` (a pgviz checkpoint, e.g. of ``--objective xent``) for teacher-student:
    ``{"teacher_probs": images -> its softmax over the classes}``, no gradient, in the run's
    precision.  A teacher for other classes or other inputs is refused (one line)."""
    from .train.errors import CheckpointError
    from .train.evaluation import inputs_standardized
    from .train.rundir import load_checkpoint, model_from_checkpoint
    from .train.runtime import autocast

    path = options["teacher"]
    ckpt = load_checkpoint(path)
    if ckpt["n_classes"] != n_classes:
        raise CheckpointError(f"--teacher {path}: trained for {ckpt['n_classes']} classes, the data has {n_classes}")
    teacher = model_from_checkpoint(ckpt, device)
    if inputs_standardized(teacher) != standardize:
        kinds = {True: "standardised images", False: "raw [0, 1] pixels"}
        raise CheckpointError(f"--teacher {path}: trained on {kinds[inputs_standardized(teacher)]}, this run feeds "
                              f"{kinds[standardize]}; train the teacher with the same inputs (e.g. the same --recipe)")

    def teacher_probs(inputs: torch.Tensor) -> torch.Tensor:
        with torch.no_grad(), autocast(device, precision):
            return torch.softmax(teacher(inputs).float()[:, :-1], 1)
    return {"teacher_probs": teacher_probs}


def _teacher_student_step(outputs, labels, *, entropy_weight, generator, inputs, teacher_probs, teacher, mix):
    return supervised.teacher_student_loss(outputs, labels, teacher_probs(inputs), mix=mix), {}


def _sampled_softmax_step(outputs, labels, *, entropy_weight, generator, noise_samples):
    return supervised.sampled_softmax_loss(outputs, labels, n_samples=noise_samples, generator=generator), {}


register(Objective(
    "teacher-student", _teacher_student_step, (), color="#d62728", label="teacher-student",
    options=(Option("teacher", "", "teacher-student: the teacher's checkpoint (train it first, e.g. with "
                                   "--objective xent and the same --recipe)", metavar="PATH",
                    check=lambda p: None if isinstance(p, str) and p else
                    "teacher-student needs --teacher PATH, the checkpoint of a trained network "
                    "(e.g. pgviz train --objective xent first)"),
             Option("mix", 0.5, "teacher-student: weight of the teacher's softmax in the target, the rest "
                                "on the one-hot label (default 0.5)",
                    check=lambda m: None if 0.0 <= m <= 1.0 else f"mix must lie in [0, 1], got {m}")),
    queries=lambda options, n_actions: None, prepare=_teacher_prepare,
    usage="teacher-student (with --teacher PATH)"))
register(Objective(
    "sampled-softmax", _sampled_softmax_step, (), color="#bcbd22", label="sampled softmax",
    options=(Option("noise_samples", 5, "sampled-softmax: noise classes drawn per batch, shared by its "
                                        "images (default 5)",
                    check=lambda k: None if k >= 1 else f"noise samples must be a whole number >= 1, got {k}"),),
    queries=lambda options, n_actions: None))
