"""The companion notebook's experiment in pgviz: its network and its two objectives that
the rest of the library lacked (teacher-student, sampled softmax), each gradient checked
on a case with a known answer."""
import itertools
import math
import warnings

import pytest
import torch
import torch.nn.functional as F

from pgviz import estimator, models, supervised


# ---------------------------------------------------------------------------
# the notebook's network
# ---------------------------------------------------------------------------
def _n_params(net) -> int:
    return sum(p.numel() for p in net.parameters())


def test_notebook_model_has_the_notebooks_shape_and_parameter_count():
    net = models.get_model("notebook", 10)
    # 7x7x3x64 + 64, 8x8x64x64 + 64, (64 * 8 * 8) x 11 + 11: the notebook's network with 11 outputs
    assert _n_params(net) == 316_747 == (7 * 7 * 3 * 64 + 64) + (8 * 8 * 64 * 64 + 64) + (64 * 8 * 8 * 11 + 11)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.kernel_size, c.out_channels, c.stride, c.padding) for c in convs] == \
        [((7, 7), 64, (1, 1), (3, 3)), ((8, 8), 64, (4, 4), (3, 3))]
    assert sum(isinstance(m, torch.nn.LeakyReLU) for m in net.modules()) == 2
    assert [m.out_features for m in net.modules() if isinstance(m, torch.nn.Linear)] == [11]
    x = torch.rand(5, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    assert net(x).shape == (5, 11)
    assert models.get_model("notebook", 4)(x).shape == (5, 5)


def test_lenet_is_the_old_shallow_and_shallow_still_loads_with_a_warning():
    assert "shallow" not in models.MODELS and models.ALIASES == {"shallow": "lenet"}
    torch.manual_seed(0)
    new = models.get_model("lenet")
    torch.manual_seed(0)
    with pytest.warns(FutureWarning, match="'shallow' is deprecated.*'lenet'"):
        old = models.get_model("shallow")
    assert type(old) is type(new) is models.LeNet and _n_params(new) == 62_091
    assert all(torch.equal(a, b) for a, b in zip(old.state_dict().values(), new.state_dict().values()))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert models.canonical_model("notebook") == "notebook"
    with pytest.raises(ValueError, match="unknown model 'resnet'"):
        models.canonical_model("resnet")


# ---------------------------------------------------------------------------
# teacher-student
# ---------------------------------------------------------------------------
def _case(b=6, k=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    outputs = torch.randn(b, k + 1, generator=g, dtype=torch.float64) * 2
    labels = torch.randint(0, k, (b,), generator=g)
    teacher = torch.softmax(torch.randn(b, k, generator=g, dtype=torch.float64), 1)
    return outputs.float().requires_grad_(), labels, teacher.float()


def _grad(loss_fn, outputs):
    outputs.grad = None
    loss = loss_fn(outputs)
    loss.backward()
    return loss.detach(), outputs.grad.clone()


def test_teacher_student_gradient_is_softmax_minus_the_mixed_target():
    outputs, labels, teacher = _case()
    b, k = teacher.shape
    pi = torch.softmax(outputs.detach()[:, :-1], 1)
    onehot = F.one_hot(labels, k).float()
    for mix in (0.0, 0.5, 0.25, 1.0):
        loss, grad = _grad(lambda o: supervised.teacher_student_loss(o, labels, teacher, mix=mix), outputs)
        target = mix * teacher + (1 - mix) * onehot
        torch.testing.assert_close(grad[:, :-1], (pi - target) / b, rtol=1e-5, atol=1e-7)
        assert torch.all(grad[:, -1] == 0)  # the baseline output is not used
        kl = (torch.xlogy(target, target) - target * torch.log(pi)).sum(1).mean()
        torch.testing.assert_close(loss, kl, rtol=1e-5, atol=1e-6)
    # the notebook's default mixes half and half
    assert supervised.teacher_student_loss.__kwdefaults__["mix"] == 0.5


def test_teacher_student_with_the_one_hot_target_is_cross_entropy():
    outputs, labels, teacher = _case(seed=3)
    loss, grad = _grad(lambda o: supervised.teacher_student_loss(o, labels, teacher, mix=0.0), outputs)
    xent, xgrad = _grad(lambda o: estimator.xent_loss(o, labels), outputs)
    torch.testing.assert_close(loss, xent)
    torch.testing.assert_close(grad, xgrad)
    # a teacher that is the one-hot label gives the same, whatever the mix
    loss, grad = _grad(lambda o: supervised.teacher_student_loss(o, labels, F.one_hot(labels, 5).float(),
                                                                mix=0.7), outputs)
    torch.testing.assert_close(grad, xgrad)


def test_teacher_student_rejects_a_bad_mix_or_teacher():
    outputs, labels, teacher = _case()
    with pytest.raises(ValueError, match=r"mix must lie in \[0, 1\]"):
        supervised.teacher_student_loss(outputs, labels, teacher, mix=1.5)
    with pytest.raises(ValueError, match="teacher_probs must be"):
        supervised.teacher_student_loss(outputs, labels, teacher[:, :3])


# ---------------------------------------------------------------------------
# sampled softmax
# ---------------------------------------------------------------------------
def test_sampled_softmax_with_every_class_drawn_once_is_cross_entropy():
    outputs, labels, _ = _case(b=8, k=10)
    noise = torch.arange(10)
    loss, grad = _grad(lambda o: supervised.sampled_softmax_loss(o, labels, noise=noise), outputs)
    xent, xgrad = _grad(lambda o: estimator.xent_loss(o, labels), outputs)
    torch.testing.assert_close(loss, xent)
    torch.testing.assert_close(grad, xgrad)  # softmax - onehot, over the batch
    pi = torch.softmax(outputs.detach()[:, :-1], 1)
    torch.testing.assert_close(grad[:, :-1], (pi - F.one_hot(labels, 10)) / 8)


def test_sampled_softmax_one_noise_class_is_a_two_way_softmax_with_the_correction():
    # labels 0 and 1, noise = [1]: row 0 keeps class 1 (m = 1), row 1 rejects it (m = 0)
    z = torch.tensor([[0.3, -0.2, 1.0, 0.0], [0.5, 0.1, -1.0, 0.0]], requires_grad=True)
    labels = torch.tensor([0, 1])
    loss, grad = _grad(lambda o: supervised.sampled_softmax_loss(o, labels, noise=torch.tensor([1])), z)
    c = 3  # classes
    score = -0.2 + math.log(c - 1)  # the kept class's corrected score
    p = math.exp(score) / (math.exp(0.3) + math.exp(score))  # its share of the two-way softmax
    assert loss.item() == pytest.approx((math.log(math.exp(0.3) + math.exp(score)) - 0.3) / 2, rel=1e-6)
    expected = torch.tensor([[-p / 2, p / 2, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    torch.testing.assert_close(grad, expected)  # row 1 has nothing to compare with: no loss, no gradient


def test_sampled_softmax_correction_makes_the_noise_an_unbiased_sum_over_wrong_classes():
    # Every draw of S = 2 noise classes out of C = 4, equally likely: given at least one kept
    # class, the kept terms' corrected sum exp(L + z_y) - exp(z_y) averages to sum_{a != y} exp(z_a).
    z = torch.tensor([[0.4, -1.0, 0.7, 0.2, 0.0]])
    y = torch.tensor([2])
    totals, kept = [], 0
    for draw in itertools.product(range(4), repeat=2):
        if all(s == 2 for s in draw):
            continue
        loss = supervised.sampled_softmax_loss(z, y, noise=torch.tensor(draw))
        totals.append(math.exp(loss.item() + 0.7) - math.exp(0.7))
    wrong = sum(math.exp(v) for i, v in enumerate([0.4, -1.0, 0.7, 0.2]) if i != 2)
    assert len(totals) == 15 and sum(totals) / len(totals) == pytest.approx(wrong, rel=1e-5)


def test_sampled_softmax_draws_one_shared_sample_from_the_generator():
    outputs, labels, _ = _case(b=16, k=10)
    a = supervised.sampled_softmax_loss(outputs, labels, generator=torch.Generator().manual_seed(7))
    b = supervised.sampled_softmax_loss(outputs, labels, generator=torch.Generator().manual_seed(7))
    noise = supervised.sample_noise(10, 5, generator=torch.Generator().manual_seed(7))
    c = supervised.sampled_softmax_loss(outputs, labels, noise=noise)
    assert noise.shape == (5,) and a.item() == b.item() == c.item()
    assert supervised.sampled_softmax_loss.__kwdefaults__["n_samples"] == 5  # the notebook's count
    with pytest.raises(ValueError, match="n_samples must be a whole number >= 1"):
        supervised.sampled_softmax_loss(outputs, labels, n_samples=0)


def test_notebook_rows_put_the_printed_figures_beside_the_reference_and_our_runs():
    from pgviz import results
    runs = {"pg": [{"epochs": [{"test_acc": 0.40}]}, {"epochs": [{"test_acc": 0.44}]}]}
    reference = {"accuracy": {"pg": {"0": 0.38}, "xent": {"0": 0.5, "1": 0.46}}}
    rows = {r["objective"]: r for r in results.notebook_rows(runs, reference)}
    assert list(rows) == ["xent", "teacher-student", "sampled-softmax", "value", "pg"]
    assert rows["pg"]["printed"] == 0.552 and rows["teacher-student"]["printed"] == 0.665
    assert rows["pg"]["pgviz"]["mean"] == pytest.approx(0.42) and rows["pg"]["pgviz"]["seeds"] == 2
    assert rows["pg"]["pgviz"]["std"] == pytest.approx(0.04 / math.sqrt(2))
    assert rows["xent"]["reference"] == {"mean": pytest.approx(0.48), "std": pytest.approx(0.02 * math.sqrt(2)),
                                         "seeds": 2}
    cells = results.notebook_table_rows(list(rows.values()))
    assert cells[4] == ["pg", "55.2 %", "38.0 % (1)", "42.0 ± 2.8 % (2)"]
    assert cells[1][2:] == ["–", "–"]
    from pgviz import figures
    assert figures.notebook_table(list(rows.values())).rows == cells


# ---------------------------------------------------------------------------
# the recipe and the two objectives through the registry and the trainer
# ---------------------------------------------------------------------------
NOTEBOOK = dict(model="notebook", lr=1e-3, warmup_steps=0, standardize=False, augment=False, ema=0.0,
                epochs=15, batch_size=128, entropy_weight=0.04, drop_last=False, recipe="notebook")


def _settings(config) -> dict:
    return {k: getattr(config, k) for k in NOTEBOOK}


def test_the_notebook_recipe_sets_every_choice_of_the_notebook_and_each_can_be_overridden():
    from pgviz.train import ConfigError, TrainConfig
    assert _settings(TrainConfig.from_recipe("notebook").validate()) == NOTEBOOK
    default = TrainConfig().validate()  # what pgviz does otherwise
    assert (default.model, default.lr, default.warmup_steps, default.standardize, default.augment, default.ema,
            default.epochs, default.entropy_weight, default.drop_last, default.recipe) == \
        ("fast", 2e-3, 100, True, True, 0.99, 40, 0.01, True, None)
    over = TrainConfig.from_recipe("notebook", lr=5e-4, epochs=3, augment=True, objective="teacher-student",
                                   options={"teacher": "t.pt", "mix": 0.25}).validate()
    assert _settings(over) == {**NOTEBOOK, "lr": 5e-4, "epochs": 3, "augment": True}
    assert over.options == {"teacher": "t.pt", "mix": 0.25}
    with pytest.raises(ConfigError, match="unknown recipe 'colab'"):
        TrainConfig.from_recipe("colab")
    with pytest.raises(ConfigError, match="unknown recipe 'colab'"):
        TrainConfig(recipe="colab").validate()


def _cli(capfd, argv):
    from pgviz.cli import main
    capfd.readouterr()
    code = main([str(a) for a in argv])
    out, err = capfd.readouterr()
    return code, out, err


def _start_row(run_dir) -> dict:
    import json
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if r.get("event") == "start"][-1]


def test_train_recipe_notebook_on_the_command_line_is_recorded_and_kept_on_resume(tmp_path, capfd):
    from pgviz.train import load_checkpoint
    out = tmp_path / "pg"
    code, _, err = _cli(capfd, ["train", "--recipe", "notebook", "--objective", "pg", "--data", "synthetic",
                                "--epochs", "0", "--lr", "3e-4", "--out", out, "--quiet"])
    assert code == 0, err
    saved = load_checkpoint(out / "checkpoint.pt")["config"]
    assert {k: saved[k] for k in NOTEBOOK} == {**NOTEBOOK, "epochs": 0, "lr": 3e-4}
    assert saved["objective"] == "pg"
    code, _, err = _cli(capfd, ["train", "--out", out, "--resume", "--epochs", "1", "--quiet"])
    assert code == 0, err
    start = _start_row(out)
    assert {k: start[k] for k in NOTEBOOK} == {**NOTEBOOK, "epochs": 1, "lr": 3e-4}
    assert start["resumed_from_step"] == 0
    # 1,000 synthetic images in batches of 128, the last one (104 images) kept: 8 steps
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 8
    code, _, err = _cli(capfd, ["train", "--out", out, "--resume", "--epochs", "2", "--model", "fast", "--quiet"])
    assert code == 2 and "--model fast differs" in err and len(err.strip().splitlines()) == 1


def test_teacher_student_and_sampled_softmax_train_through_their_registry_entries(tmp_path, capfd):
    from pgviz import objectives
    from pgviz.data import make_synthetic
    from pgviz.train import TrainConfig, model_from_checkpoint, train
    ds = make_synthetic(256, 64)
    base = dict(data="synthetic", epochs=1, progress=False)
    teacher = tmp_path / "xent"
    train(TrainConfig.from_recipe("notebook", objective="xent", out=str(teacher), **base), dataset=ds)
    ckpt = teacher / "checkpoint.pt"
    for objective, options in (("teacher-student", {"teacher": str(ckpt)}), ("sampled-softmax", {})):
        s = train(TrainConfig.from_recipe("notebook", objective=objective, out=str(tmp_path / objective),
                                          options=options, **base), dataset=ds)
        assert s["status"] == "finished" and s["step"] == 2 and 0 <= s["test_acc"] <= 1
        assert objectives.reward_queries(objective, options) is None  # both read the label
    assert objectives.resolve_options("teacher-student", {"teacher": "t.pt"}) == {"teacher": "t.pt", "mix": 0.5}
    assert objectives.resolve_options("sampled-softmax") == {"noise_samples": 5}
    # the step is the estimator's loss with the teacher's softmax on the same inputs
    prepared = objectives.prepare("teacher-student", {"teacher": str(ckpt)}, device="cpu", standardize=False)
    net = model_from_checkpoint(ckpt)
    x = torch.rand(8, 3, 32, 32)
    y = torch.arange(8) % 10
    with torch.no_grad():
        q = torch.softmax(net(x)[:, :-1], 1)
    outputs = torch.randn(8, 11)
    loss, stats = objectives.objective_step("teacher-student", outputs, y, inputs=x, prepared=prepared,
                                            teacher=str(ckpt), mix=0.5)
    torch.testing.assert_close(loss, supervised.teacher_student_loss(outputs, y, q, mix=0.5))
    assert set(stats) == {"loss", "train_acc"}
    loss, _ = objectives.objective_step("sampled-softmax", outputs, y, generator=torch.Generator().manual_seed(3))
    noise = supervised.sample_noise(10, 5, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(loss, supervised.sampled_softmax_loss(outputs, y, noise=noise))


def test_teacher_student_refuses_a_missing_or_mismatched_teacher_in_one_line(tmp_path, capfd):
    from pgviz.data import make_synthetic
    from pgviz.train import TrainConfig, train
    teacher = tmp_path / "t"
    train(TrainConfig.from_recipe("notebook", objective="xent", data="synthetic", epochs=0, out=str(teacher),
                                  progress=False), dataset=make_synthetic(64, 32))
    cases = {
        "no --teacher": ([], "needs --teacher PATH"),
        "missing file": (["--teacher", tmp_path / "nope.pt"], "checkpoint not found"),
        # pgviz's default inputs are standardised; the teacher took the recipe's raw pixels
        "other inputs": (["--teacher", teacher / "checkpoint.pt"], "trained on raw [0, 1] pixels"),
    }
    for name, (extra, match) in cases.items():
        argv = ["train", "--objective", "teacher-student", "--data", "synthetic", "--out", tmp_path / name, "--quiet"]
        code, out, err = _cli(capfd, argv + [str(a) for a in extra])
        assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and match in err, (name, err)
        assert not (tmp_path / name / "checkpoint.pt").exists()


def test_model_shallow_on_the_command_line_trains_the_lenet_with_a_one_line_warning(tmp_path, capfd):
    from pgviz.train import load_checkpoint
    code, _, err = _cli(capfd, ["train", "--model", "shallow", "--data", "synthetic", "--epochs", "0",
                                "--out", tmp_path / "old", "--quiet"])
    assert code == 0 and err.strip().splitlines() == [
        "pgviz: warning: model 'shallow' is deprecated: it is the LeNet, now called 'lenet' "
        "(the companion notebook's network is 'notebook')"]
    assert load_checkpoint(tmp_path / "old" / "checkpoint.pt")["config"]["model"] == "lenet"


def test_raw_inputs_are_pixels_over_255_and_a_checkpoint_is_fed_as_it_was_trained(tmp_path):
    from pgviz import data
    from pgviz.train import TrainConfig, model_from_checkpoint, predict, train
    ds = data.make_synthetic(64, 16)
    img = ds.test_images[:4]
    raw = data.normalize(img, standardize=False)
    torch.testing.assert_close(raw, img.permute(0, 3, 1, 2).float() / 255)
    loader = data.DeviceLoader(ds.train_images, ds.train_labels, 32, standardize=False, augment=False)
    x, _ = next(iter(loader))
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    for standardize in (False, True):
        out = tmp_path / str(standardize)
        train(TrainConfig.from_recipe("notebook", data="synthetic", epochs=1, out=str(out), progress=False,
                                      standardize=standardize), dataset=ds)
        net = model_from_checkpoint(out / "checkpoint.pt")
        assert net.standardize is standardize
        probs, _ = predict(net, img)
        with torch.no_grad():
            expect = torch.softmax(net(data.normalize(img, standardize=standardize))[:, :-1], 1)
        torch.testing.assert_close(probs, expect)
