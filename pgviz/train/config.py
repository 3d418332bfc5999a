"""What a run depends on: :class:`TrainConfig`, its checks, and the rules for resuming.

Every field is saved in the checkpoint.  Its metadata (:func:`setting`) says how the
command line offers it (flag, help, choices; ``pgviz train``'s arguments are made from
these fields and the objectives' options, :mod:`pgviz.cli`) and what a resumed run does
with it (:data:`RUN`, :data:`EXTEND`, :data:`SESSION`; :meth:`TrainConfig.resumed` is the
one place that applies the rule).
"""
from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Optional

from .. import objectives
from ..data import canonical_source
from ..models import ALIASES, MODELS, canonical_model
from .errors import ConfigError
from .runtime import DEVICES, PRECISIONS, check_device_name, check_precision_name

__all__ = ["EXTEND", "RECIPES", "RUN", "SESSION", "ConfigError", "TrainConfig", "cli_settings", "setting"]

#: Resume rules.  ``RUN``: the run's identity, kept from the checkpoint (a different value
#: given on the command line is refused).  ``EXTEND``: kept from the checkpoint unless given
#: (``epochs``: train on up to that many).  ``SESSION``: where and how this process runs;
#: given, or the default (device, precision, output, progress).
RUN, EXTEND, SESSION = "run", "extend", "session"


def setting(default, help: Optional[str] = None, *, resume: str = RUN, cli: bool = True,
            flag: Optional[str] = None, choices: Optional[Callable[[], Any]] = None,
            required: bool = False, normalize: Optional[Callable[[Any], Any]] = None):
    """A :class:`TrainConfig` field with what the command line and a resumed run need:
    ``help`` (a string, or a function of nothing that makes one), ``flag`` (default
    ``--name-with-dashes``; a bool that defaults to True gets ``--no-name``), ``choices``
    (a function giving them, read when the parser is built), ``required`` on the command
    line, ``normalize`` (applied to a given value, e.g. a data path made absolute), the
    ``resume`` rule, and ``cli=False`` for settings only the Python API offers."""
    meta = {"help": help, "resume": resume, "cli": cli, "flag": flag, "choices": choices,
            "required": required, "normalize": normalize}
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


def _objective_help() -> str:
    names = [(o.usage or o.name) + (" (default)" if o.name == TrainConfig.objective else "")
             for o in objectives.OBJECTIVES.values()]
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]


def _whole(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _real(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


@dataclass
class TrainConfig:
    """Everything a run depends on (saved in the checkpoint).  ``options`` holds the
    objective's own settings by name (its entry in :mod:`pgviz.objectives` lists them and
    checks them); left out, they take their defaults when the config is validated."""

    objective: str = setting("pg", _objective_help, choices=lambda: objectives.OBJECTIVES)
    data: Optional[str] = setting(None, "cifar10, synthetic or PATH.npz (default: $PGVIZ_DATA or cifar10)",
                                  normalize=canonical_source)
    out: Optional[str] = setting(None, "output directory", resume=SESSION, required=True)  # None: keep nothing
    epochs: int = setting(40, "epochs in total (a resumed run goes on up to this many)", resume=EXTEND)
    batch_size: int = setting(128, "images per step")
    lr: float = setting(2e-3, "Adam learning rate")
    entropy_weight: float = setting(0.01, "weight of the entropy bonus")
    seed: int = setting(0, "seed of the weights, the data order and the sampled labels")
    device: str = setting("auto", "auto (default): cuda, else mps, else cpu", resume=SESSION, choices=lambda: DEVICES)
    model: str = setting("fast", "the network (shallow: the old name of lenet, deprecated)",
                         choices=lambda: tuple(MODELS) + tuple(ALIASES))
    augment: bool = setting(True, "train on the images as they are (no random crops and flips)")
    standardize: bool = setting(True, "feed the raw pixels in [0, 1] (no per-channel standardisation)")
    drop_last: bool = setting(True, "keep each epoch's last, smaller batch (every training image every epoch)",
                              flag="--keep-last-batch")
    warmup_steps: int = setting(100, cli=False)  # linear learning-rate warm-up, then constant
    ema: float = setting(0.99, cli=False)        # per-step decay of the weight average that is evaluated; 0: off
    precision: str = setting("auto", "auto (default): bfloat16 autocast on CUDA and on CPUs with native bf16, "
                                     "else fp32", resume=SESSION, choices=lambda: PRECISIONS)
    log_every: int = setting(0, cli=False)       # steps per metrics line; 0: 1 on CPU, 10 on accelerators
    progress: bool = setting(True, "no progress (a bar on a terminal, else a plain line every 10 s)",
                             resume=SESSION, flag="--quiet")
    data_dir: Optional[str] = setting(None, "download/cache directory for cifar10 (default ~/.cache/pgviz)",
                                      resume=SESSION)
    options: dict = setting({}, "the objective's own settings (pgviz.objectives)")
    recipe: Optional[str] = setting(None, lambda: "start from a recipe's settings (the options given override "
                                    "them): " + "; ".join(f"{k}: {v['about']}" for k, v in RECIPES.items()),
                                    choices=lambda: tuple(RECIPES))

    @classmethod
    def from_recipe(cls, name: str, **overrides) -> "TrainConfig":
        """The config of recipe ``name`` (:data:`RECIPES`), with ``overrides`` on top; the
        recipe's name is kept in the config (so in the checkpoint and the metrics), e.g.
        ``TrainConfig.from_recipe("notebook", objective="xent", seed=1)``."""
        if name not in RECIPES:
            raise ConfigError(f"unknown recipe {name!r}; choose one of: {', '.join(RECIPES)}")
        settings = {k: v for k, v in RECIPES[name].items() if k != "about"}
        options = {**settings.pop("options", {}), **(overrides.pop("options", None) or {})}
        return cls(**{**settings, **overrides, "recipe": name, "options": options})


    def validate(self) -> "TrainConfig":
        """Check every field's type and range (raises :class:`ConfigError`); numbers of
        numpy types become plain ``int``/``float``, paths become strings."""
        def bad(msg):
            raise ConfigError(msg)
        labels = {"lr": "learning rate (lr)", "ema": "ema decay"}
        for f in fields(self):
            v, kind, label = getattr(self, f.name), type(f.default), labels.get(f.name, f.name.replace("_", " "))
            if f.name == "options":
                continue
            if f.default is None:  # a path or a name, or nothing
                if isinstance(v, os.PathLike):
                    setattr(self, f.name, os.fspath(v))
                elif v is not None and not isinstance(v, str):
                    bad(f"{f.name} must be a string or None, got {v!r}")
            elif kind is bool and not isinstance(v, bool):
                bad(f"{f.name} must be True or False, got {v!r}")
            elif kind is int:
                if not _whole(v):
                    bad(f"{label} must be a whole number, got {v!r}")
                setattr(self, f.name, int(v))
            elif kind is float:
                if not _real(v):
                    bad(f"{label} must be a number, got {v!r}")
                setattr(self, f.name, float(v))
            elif kind is str and not isinstance(v, str):
                bad(f"{f.name} must be a string, got {v!r}")
        if isinstance(self.data, str) and not self.data.strip():
            bad("data must be cifar10, synthetic or a path to an .npz, got an empty string")
        if self.objective not in objectives.OBJECTIVES:
            bad(f"unknown objective {self.objective!r}; choose one of: {', '.join(objectives.OBJECTIVES)}")
        if self.recipe is not None and self.recipe not in RECIPES:
            bad(f"unknown recipe {self.recipe!r}; choose one of: {', '.join(RECIPES)}")
        if self.model in ALIASES:
            self.model = canonical_model(self.model)  # with a FutureWarning
        if self.model not in MODELS:
            bad(f"unknown model {self.model!r}; choose one of: {', '.join(MODELS)}")
        if self.epochs < 0:
            bad(f"epochs must be a whole number >= 0, got {self.epochs}")
        if self.batch_size < 1:
            bad(f"batch size must be a whole number >= 1, got {self.batch_size}")
        if not 0 <= self.seed < 2 ** 63:
            bad(f"seed must lie in 0 .. 2**63 - 1, got {self.seed}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            bad(f"learning rate must be a finite number > 0, got {self.lr}")
        if not (math.isfinite(self.entropy_weight) and self.entropy_weight >= 0):
            bad(f"entropy weight must be a finite number >= 0, got {self.entropy_weight}")
        check_device_name(self.device)
        if self.warmup_steps < 0 or self.log_every < 0:
            bad("warmup_steps and log_every must be >= 0")
        check_precision_name(self.precision)
        if not 0 <= self.ema < 1:
            bad(f"ema decay must lie in [0, 1), got {self.ema}")
        if not isinstance(self.options, Mapping):
            bad(f"options must be a dict, got {self.options!r}")
        try:
            self.options = objectives.resolve_options(self.objective, self.options)
        except ValueError as exc:
            bad(str(exc))
        return self

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """The config a saved dict describes (a checkpoint's or a metrics start line's);
        keys that are not settings are ignored.  A dict written before the objectives had
        their own ``options`` (with them at its top level) reads the same
        (:func:`pgviz.objectives.legacy_options`)."""
        if not isinstance(d, dict):
            raise ConfigError(f"a config must be a dict, got {type(d).__name__}")
        if not isinstance(d.get("options", {}), Mapping):
            raise ConfigError(f"options must be a dict, got {d['options']!r}")
        names = {f.name for f in fields(cls)}
        return cls(**{**{k: v for k, v in d.items() if k in names}, "options": objectives.legacy_options(d)})

    @classmethod
    def resumed(cls, saved: Mapping, given: Mapping, *, refuse: bool = True) -> "TrainConfig":
        """The config of a run continued from a checkpoint whose config is ``saved``, with
        ``given`` settings (``options`` among them as a dict): each field by its resume rule
        (:data:`RUN` from the checkpoint, :data:`EXTEND` given or the checkpoint's,
        :data:`SESSION` given or the default), each objective option by its own.  With
        ``refuse``, a :data:`RUN` setting given with another value than the checkpoint's is
        a :class:`ConfigError` (one line naming its flag)."""
        old = cls.from_dict(dict(saved)).validate()
        entry = objectives.get(old.objective)
        given_options = dict(given.get("options") or {})
        try:  # an option the run's objective does not have: the one-line reason
            objectives.check_option_names(old.objective, given_options)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        rules = [(f.name, f.metadata.get("resume", RUN), f.metadata.get("normalize"), _flag(f), f.default)
                 for f in fields(cls) if f.name != "options"]
        rules += [(o.name, o.resume, None, o.flag, o.default) for o in entry.options]
        current = {**{f.name: getattr(old, f.name) for f in fields(cls)}, **old.options}
        values = {**{k: v for k, v in given.items() if k != "options"}, **given_options}
        out = {}
        for name, rule, normalize, flag, default in rules:
            if rule == RUN:
                if refuse and name in values and _normal(normalize, values[name]) != _normal(normalize, current[name]):
                    shown = flag if isinstance(values[name], bool) else f"{flag} {values[name]}"
                    raise ConfigError(f"{shown} differs from the checkpoint's {current[name]!r}; a resumed run "
                                      f"keeps its settings (only {_may_change()} may change)")
                out[name] = current[name]
            elif rule == EXTEND:
                out[name] = values.get(name, current[name])
            else:
                out[name] = values.get(name, default)
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in out.items() if k in names},
                   options={k: v for k, v in out.items() if k not in names})

    def session(self) -> dict:
        """The settings a resumed run takes from this config rather than from the checkpoint
        (everything but the :data:`RUN` ones), for :meth:`resumed`."""
        values = {f.name: getattr(self, f.name) for f in fields(self)
                  if f.name != "options" and f.metadata.get("resume", RUN) != RUN}
        entry = objectives.OBJECTIVES.get(self.objective)
        values["options"] = {o.name: self.options[o.name] for o in (entry.options if entry else ())
                             if o.resume != RUN and o.name in self.options}
        return values


#: Named sets of settings, ``pgviz train --recipe NAME`` or :meth:`TrainConfig.from_recipe`.
#: ``notebook`` is every choice of the article's companion notebook ({cite}`orr2021notebook`):
#: its network, Adam at PyTorch's defaults (learning rate 1e-3, no warm-up), the raw [0, 1]
#: pixels, no augmentation, no weight average, 15 epochs of batch 128 over every training
#: image (the last, smaller batch kept), and its policy-gradient entropy weight 0.04 (its
#: other objectives' settings are the objectives' defaults: mix 0.5, 5 noise samples,
#: epsilon 0.2).
RECIPES = {
    "notebook": {"about": "the companion notebook's network and training (Adam 1e-3, raw inputs, 15 epochs)",
                 "model": "notebook", "lr": 1e-3, "warmup_steps": 0, "standardize": False, "augment": False,
                 "ema": 0.0, "epochs": 15, "batch_size": 128, "entropy_weight": 0.04, "drop_last": False},
}


def _normal(normalize, value):
    return normalize(value) if normalize is not None and isinstance(value, str) else value


def _flag(f) -> str:
    """The command-line flag of a :class:`TrainConfig` field."""
    if f.metadata.get("flag"):
        return f.metadata["flag"]
    name = f.name.replace("_", "-")
    return f"--no-{name}" if f.default is True else f"--{name}"


def _may_change() -> str:
    flags = [_flag(f) for f in fields(TrainConfig) if f.metadata.get("cli") and f.name != "out"
             and f.metadata.get("resume", RUN) != RUN]
    return ", ".join(flags[:-1]) + " and " + flags[-1]


def cli_settings() -> list:
    """What the command line offers for a run, in order: one dict per :class:`TrainConfig`
    field it shows, then one per objective option (objectives may share one), with
    ``name``, ``flag``, ``default``, ``help``, ``choices`` and ``required``."""
    out = []
    for f in fields(TrainConfig):
        meta = f.metadata
        if f.name == "options" or not meta.get("cli"):
            continue
        help_text = meta.get("help")
        out.append({"name": f.name, "flag": _flag(f), "default": f.default, "required": meta.get("required", False),
                    "help": help_text() if callable(help_text) else help_text,
                    "choices": meta["choices"]() if meta.get("choices") else None,
                    "normalize": meta.get("normalize")})
    seen = {}
    for entry in objectives.OBJECTIVES.values():
        for opt in entry.options:
            if opt.name in seen:
                seen[opt.name]["help"] += f"; {opt.help}"
                continue
            seen[opt.name] = {"name": opt.name, "flag": opt.flag, "default": opt.default, "required": False,
                              "help": opt.help, "choices": None, "normalize": None, "option": True}
    return out + list(seen.values())

