"""pgviz.figures.tables: the chapters' tables format numbers and render HTML."""
import pytest
import torch

from pgviz import figures as F


def test_table_renders_numbers_and_html():
    t = F.table(["n", "error"], [[10, torch.tensor(-0.0)], [100, 0.25]], fmt=["{:,}", "{:.3f}"])
    assert t.rows == [["10", "0.000"], ["100", "0.250"]]
    html = t._repr_html_()
    assert html.count("<tr>") == 3 and "error</th>" in html
    assert "| 100 | 0.250 |" in t._repr_markdown_()
