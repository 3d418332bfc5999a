"""pgviz.figures.style: the article's palette and one colour per setting."""
import pytest

from pgviz import figures as F


def test_palette():
    assert F.COLORS["policy"] == F.COLORS["baseline"] == F.POLICY
    assert len({F.POLICY, F.REWARD, F.GRADIENT}) == 3


def test_every_setting_has_its_own_colour_and_others_get_the_default():
    assert F.setting_color("pg") == F.POLICY and F.setting_color("xent") == "#000000"
    assert F.setting_color("learned-V") == F.POLICY and F.setting_color("optimal-constant") == F.REWARD
    settings = ["xent", "pg-exact", "pg", "pg-no-baseline", "rloo-2", "rloo-4", "rloo-8", "grpo-4", "value"]
    assert len({F.setting_color(s) for s in settings}) == len(settings)
    assert F.setting_color("no-such-setting") is None and F.setting_color("no-such-setting", "C3") == "C3"
