"""Numbers quoted from sources live once in pgviz.sources, and chapters print them from there."""
import json
import re
from pathlib import Path

import pytest

from pgviz import sources

BOOK = Path(__file__).resolve().parent.parent / "book"


def test_companion_notebook_accuracies_and_recipe():
    acc = sources.ORR_NOTEBOOK["test_accuracy"]
    assert acc == {"policy gradient": 0.552, "softmax cross-entropy": 0.644, "value function": 0.618,
                   "sampled softmax": 0.594, "teacher-student": 0.665}
    assert sources.notebook_accuracy("policy gradient") == 0.552
    assert sources.ORR_NOTEBOOK["citation"] == "orr2021notebook"
    assert "training_objectives.ipynb" in sources.NOTEBOOK_URL
    with pytest.raises(KeyError, match="choices"):
        sources.notebook_accuracy("pg")


@pytest.mark.parametrize("path", sorted(BOOK.glob("*.ipynb")), ids=lambda p: p.name)
def test_chapters_do_not_type_the_notebooks_accuracies_in_code(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    typed = re.findall(r"0\.(?:552|644|618|594|665)\b", code)
    assert not typed, f"{path.name} types {typed} in code: print them from pgviz.sources"
