"""The controls of an interactive figure: the discrete values a slider steps through."""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence, Union

__all__ = ["Control", "MAX_FRAMES", "Alt"]

#: Refuse to precompute more frames than this (a page would become heavy).
MAX_FRAMES = 200

_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

#: ``alt=`` of :func:`interactive`: a sentence, a template of the controls' names
#: (``"{n:,} samples"``), or a function of the controls' values returning a sentence.
Alt = Union[None, str, Callable[..., str]]


def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _equals(a: Any, b: Any) -> bool:
    """Equality used by the sliders: numbers compare with a small tolerance,
    so ``slider.value = 0.3`` selects ``0.30000000000000004``."""
    if _is_number(a) and _is_number(b):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return a == b


@dataclass
class Control:
    """A discrete control: the values a slider can take.

    Parameters
    ----------
    values:
        The allowed values, in slider order (numbers or strings).
    value:
        The initial value; defaults to the middle of ``values``.
    label:
        Text shown next to the slider; defaults to the control's name.
    fmt:
        Format string for numeric values (strings are shown as they are).
    """

    values: Sequence[Any]
    value: Any = None
    label: Optional[str] = None
    fmt: str = "{:.2f}"
    _index: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        vals = list(self.values)
        if not vals:
            raise ValueError("a Control needs at least one value")
        # plain Python scalars (numpy scalars do not serialise to JSON)
        self.values = [v.item() if hasattr(v, "item") else v for v in vals]
        if self.value is None:
            self._index = (len(self.values) - 1) // 2
        else:
            self._index = self.index_of(self.value)
        self.value = self.values[self._index]

    @property
    def index(self) -> int:
        """Index of the initial value in :attr:`values`."""
        return self._index

    def index_of(self, value: Any) -> int:
        for i, v in enumerate(self.values):
            if _equals(v, value):
                return i
        raise ValueError(f"{value!r} is not one of the control's values {self.values!r}")

    def format(self, value: Any) -> str:
        if _is_number(value):
            try:
                return self.fmt.format(value)
            except (ValueError, TypeError):
                return str(value)
        return str(value)


def _as_control(name: str, spec: Any) -> Control:
    if isinstance(spec, Control):
        ctrl = Control(spec.values, value=spec.value, label=spec.label, fmt=spec.fmt)
    else:
        ctrl = Control(list(spec))
    if ctrl.label is None:
        ctrl.label = name
    return ctrl


