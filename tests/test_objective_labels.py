"""Every objective's step refuses labels it cannot use, in one clear line."""
import pytest
import torch

from pgviz import objectives


def usable_options(objective, n=4):
    """The objective's options, made valid (rloo's group size; teacher-student's teacher, a
    stand-in that is uniform over the classes), the rest at their defaults."""
    given = {"rloo": {"samples": 2}, "teacher-student": {"teacher": "teacher.pt"}}.get(objective, {})
    options = objectives.resolve_options(objective, given)
    if objectives.get(objective).prepare is not None:
        options = {**options, "inputs": torch.zeros(n, 3, 32, 32),
                   "prepared": {"teacher_probs": lambda x: torch.full((len(x), 10), 0.1)}}
    return options


@pytest.mark.parametrize("objective", list(objectives.OBJECTIVES))
@pytest.mark.parametrize("labels,match", [
    (torch.tensor([0, -1, 2, 3]), "lie in 0..9"),
    (torch.tensor([0, 10, 2, 3]), "lie in 0..9"),
    (torch.tensor([0.0, 1.0, 2.0, 3.0]), "integer tensor"),
    (torch.tensor([True, False, True, False]), "integer tensor"),
    (torch.zeros(0, dtype=torch.long), "one per image"),
    (torch.tensor([0, 1, 2]), "one per image"),
])
def test_bad_labels_are_refused_by_every_objective(objective, labels, match):
    outputs = torch.randn(4 if len(labels) else 0, 11, requires_grad=True)
    with pytest.raises(ValueError, match=match) as err:
        objectives.objective_step(objective, outputs, labels, generator=torch.Generator().manual_seed(0),
                                        **usable_options(objective, len(labels)))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("objective", list(objectives.OBJECTIVES))
def test_good_labels_pass(objective):
    loss, _ = objectives.objective_step(objective, torch.randn(4, 11, requires_grad=True),
                                        torch.tensor([0, 9, 2, 3]), generator=torch.Generator().manual_seed(0),
                                        **usable_options(objective))
    assert torch.isfinite(loss)
