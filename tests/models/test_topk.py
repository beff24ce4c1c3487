"""Top-k ensembles on real training and a real MLflow store: scored, not copied; registered
beside the single best and loaded by MLflow's own pyfunc client; members in the lineage."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest
import torch
from mlflow import MlflowClient

import tuner
from tests.conftest import TINY_SPACE
from tuner.cli import main
from tuner.config import keys
from tuner.config.trial_attrs import of as attrs_of
from tuner.contract.checkpoints import load_checkpoint
from tuner.contract.registry import get_task
from tuner.models.sources import resolve_source
from tuner.models.topk import assemble
from tuner.storage.locations import default_tracking_uri, resolve_storage
from tuner.storage.studies import load_study

CLASSIFIER = get_task("classification")
FORECASTER = get_task("forecasting")


def _payload(trial) -> dict:
    source = resolve_source(
        f"runs:/{attrs_of(trial)[keys.RUN_ID]}",
        default_tracking_uri(),
        resolve_storage(None),
    )
    return load_checkpoint(source.path)


def _run_count() -> int:
    client = MlflowClient(default_tracking_uri())
    return sum(len(client.search_runs([e.experiment_id])) for e in client.search_experiments())


@pytest.fixture
def vowels(workdir):
    overrides = {**CLASSIFIER.smoke, "folds": 1}
    tuner.search("classification", trials=4, overrides=overrides, pruner="none", quiet=True,
                 study="vowels")  # fmt: skip
    return load_study("vowels")


def test_a_classification_ensemble_averages_probabilities_and_loads_through_pyfunc(
    vowels, capsys, monkeypatch
):
    assert main(["ensemble", "--study", "vowels", "--top", "3"]) == 0
    printed = capsys.readouterr().out
    ranked = sorted(
        (t for t in vowels.trials if t.state.name == "COMPLETE"),
        key=lambda t: (-t.value, attrs_of(t).get(keys.TIE_SCORE, 0), t.number),
    )[:3]
    assert f"ensemble of trials {', '.join(str(t.number) for t in ranked)}" in printed

    # the validation accuracy, recomputed here from the members' own probabilities
    payloads = [_payload(t) for t in ranked]
    data = CLASSIFIER.load_data({"data": CLASSIFIER.default_data})
    settings = {**payloads[0]["settings"], "seed": 0, "fold": 0}
    x, lengths, y = CLASSIFIER.build_datamodule(data, settings).tensors["val"]
    models = [CLASSIFIER.model_class(**p["hyper_parameters"]) for p in payloads]
    probabilities = []
    for model, payload in zip(models, payloads, strict=True):
        model.load_state_dict(payload["state_dict"])
        with torch.no_grad():
            probabilities.append(model.eval()(x, lengths).softmax(-1))
    accuracy = float((torch.stack(probabilities).mean(0).argmax(1) == y).float().mean())
    assert f"val_acc = {accuracy:.4f}" in printed

    client = MlflowClient(default_tracking_uri())
    version = client.get_model_version("vowels-ensemble", "1")
    run = client.get_run(version.run_id)
    assert run.data.metrics["val_acc"] == pytest.approx(accuracy)
    # the alias only where it beats the study's @best (the best trial) on the same rows
    beats = accuracy > run.data.metrics["holder_val_acc"]
    aliases = client.get_registered_model("vowels-ensemble").aliases
    assert aliases == ({"best": "1"} if beats else {}), printed
    assert ("not aliased @best" in printed) != beats
    assert main(["best", "--study", "vowels"]) == 0  # names the ensemble where it is better
    named = "ensemble       models:/vowels-ensemble@best: val_acc"
    better = beats and accuracy > max(t.value for t in vowels.trials if t.value is not None)
    assert (named in capsys.readouterr().out) == better
    assert run.data.tags[keys.MEMBERS_TAG] == ",".join(str(t.number) for t in ranked)
    assert run.data.tags[keys.ROLE_TAG] == "ensemble"

    monkeypatch.setenv("MLFLOW_TRACKING_URI", default_tracking_uri())  # for MLflow's client
    loaded = mlflow.pyfunc.load_model("models:/vowels-ensemble/1")
    example = CLASSIFIER.example(data, settings)
    table = loaded.predict(example, params={"proba": True})
    columns = [f"p_{name}" for name in payloads[0]["hyper_parameters"]["classes"]]
    by_hand = tuner.predict("models:/vowels-ensemble/1", data=example, task="classification",
                            options={"proba": True})  # fmt: skip
    assert np.allclose(table[columns], by_hand[columns]) and np.allclose(
        table[columns].sum(axis=1), 1.0
    )
    assert main(["lineage", "models:/vowels-ensemble/1"]) == 0
    lineage = capsys.readouterr().out
    for trial in ranked:
        assert f"member: trial {trial.number} (run {attrs_of(trial)[keys.RUN_ID]})" in lineage
    _check_mistakes_exit_2_and_log_nothing(vowels, capsys)


def _check_mistakes_exit_2_and_log_nothing(vowels, capsys):
    before = _run_count()
    complete = [t.number for t in vowels.trials if t.state.name == "COMPLETE"]
    cases = [
        (["--top", "1"], "needs 2 trials or more"),
        (["--trials", str(complete[0])], "needs 2 trials or more"),
        (["--trials", f"{complete[0]},99"], "trial(s) 99"),
        (["--trials", "a,b"], "expected trial numbers"),
        (["--combine", "vote"], "--combine 'vote'"),
    ]
    for extra, words in cases:
        assert main(["ensemble", "--study", "vowels", *extra]) == 2, extra
        assert words in capsys.readouterr().err
    assert main(["ensemble", "--study", "nope"]) == 2
    assert _run_count() == before


def test_an_ensemble_of_identical_models_equals_the_model(workdir):
    (workdir / "tiny.yaml").write_text(TINY_SPACE)
    tuner.search("forecasting", trials=1, space="tiny.yaml", pruner="none", quiet=True,
                 study="one")  # fmt: skip
    payload = _payload(load_study("one").trials[0])
    single = FORECASTER.model_class(**payload["hyper_parameters"])
    single.load_state_dict(payload["state_dict"])
    x = torch.randn(5, 12)
    with torch.no_grad():
        for rule in ("", "median"):
            ensemble = assemble([payload] * 3, FORECASTER, rule)
            assert torch.allclose(ensemble(x), single.eval()(x), atol=1e-6)


MIXED_WINDOWS = TINY_SPACE.replace("  input_len: 12\n", "").replace(
    "params:\n", "params:\n  input_len: {type: categorical, choices: [6, 12, 18]}\n"
)


def test_forecasters_of_other_windows_and_transforms_answer_in_the_best_ones_frame(
    workdir, capsys
):
    """A member trained on a shorter window and the other transform joins a better trial:
    the ensemble's validation MAE is the MAE of the mean of each member's OWN forecast (its
    own window, transform and scaling), computed here. A member that needs a longer window
    than the lead reads is refused, with why."""
    (workdir / "mixed.yaml").write_text(MIXED_WINDOWS)
    tuner.search("forecasting", trials=6, space="mixed.yaml", pruner="none", quiet=True,
                 study="air", overrides={"keep_top": 10})  # fmt: skip
    ranked = sorted((t for t in load_study("air").trials if t.state.name == "COMPLETE"),
                    key=lambda t: (t.value, attrs_of(t)[keys.TIE_SCORE], t.number))  # fmt: skip
    lead, member = next(
        (a, b)
        for i, a in enumerate(ranked)
        for b in ranked[i + 1 :]
        if a.params["input_len"] > b.params["input_len"]
        and a.params["transform"] != b.params["transform"]
    )
    assert main(["ensemble", "--study", "air", "--trials", f"{lead.number},{member.number}"]) == 0
    capsys.readouterr()
    client = MlflowClient(default_tracking_uri())
    run = client.get_run(client.get_model_version("air-ensemble", "1").run_id)

    data = FORECASTER.load_data({"data": FORECASTER.default_data})
    forecasts, targets = [], []
    for trial in (lead, member):
        payload = _payload(trial)
        model = FORECASTER.model_class(**payload["hyper_parameters"])
        model.load_state_dict(payload["state_dict"])
        settings = {**payload["settings"], "seed": 0, "fold": 0}
        x, _, loc, scale, y_raw = FORECASTER.build_datamodule(data, settings).tensors["val"]
        with torch.no_grad():
            forecast = model.eval()(x) * scale + loc
        log = trial.params["transform"] == "log"
        forecasts.append(torch.sign(forecast) * torch.expm1(forecast.abs()) if log else forecast)
        targets.append(y_raw)
    assert torch.equal(targets[0], targets[1])
    mae = float((torch.stack(forecasts).mean(0) - targets[0]).abs().mean())
    assert run.data.metrics["val_mae"] == pytest.approx(mae, rel=1e-4)
    exported = tuner.export("models:/air-ensemble/1", register=False)  # members reframed
    assert exported.figures["onnx_val_mae"] == pytest.approx(mae, rel=1e-4)
    assert exported.figures["largest_difference"] < 1e-3

    shorter, longer = next(
        (a, b) for i, a in enumerate(ranked) for b in ranked[i + 1 :]
        if a.params["input_len"] < b.params["input_len"]
    )  # fmt: skip
    assert (
        main(["ensemble", "--study", "air", "--trials", f"{shorter.number},{longer.number}"]) == 2
    )
    assert f"more than the {shorter.params['input_len']} the best reads" in capsys.readouterr().err


def _recogniser(seed: int):
    torch.manual_seed(seed)
    model = get_task("speech").model_class(
        vocabulary="abc", hidden_size=4, num_layers=1, dropout=0.0, lr=1e-3, subsample=2
    )
    return model.eval()


def test_speech_members_average_their_frame_probabilities():
    """Recognisers of one frame rate as one: the per-frame label distribution is the mean
    of theirs (a distribution again), and identical members change nothing."""
    speech = get_task("speech")
    first, second = _recogniser(0), _recogniser(1)
    mels = len(first.mean)  # one per mel band
    x, lengths = torch.randn(3, 10, mels), torch.tensor([10, 8, 6])
    payloads = [
        {"hyper_parameters": dict(m.hparams), "state_dict": m.state_dict(), "members": 0}
        for m in (first, second)
    ]
    with torch.no_grad():
        (one, steps), (two, _) = first(x, lengths), second(x, lengths)
        pair, pair_steps = assemble(payloads, speech, "")(x, lengths)
        same, _ = assemble([payloads[0]] * 2, speech, "")(x, lengths)
    assert torch.equal(pair_steps, steps)
    assert torch.allclose(pair.exp(), (one.exp() + two.exp()) / 2, atol=1e-6)
    assert torch.allclose(pair.exp().sum(-1), torch.ones_like(pair[..., 0]), atol=1e-5)
    assert torch.allclose(same, one, atol=1e-6)


def test_language_models_average_next_characters_each_with_its_own_state():
    """Two chunks of one stream: the ensemble's second answer is the mean of what each model
    says after its OWN state of the first chunk (sharing one state would mix them)."""
    charlm = get_task("charlm")
    models = []
    for seed, hidden in ((0, 6), (1, 4)):
        torch.manual_seed(seed)
        models.append(charlm.model_class(vocabulary="abcd", embed_size=3, hidden_size=hidden,
                                         num_layers=1, dropout=0.0, lr=1e-3).eval())  # fmt: skip
    payloads = [
        {"hyper_parameters": dict(m.hparams), "state_dict": m.state_dict(), "members": 0}
        for m in models
    ]
    ensemble = assemble(payloads, charlm, "")
    first, second = torch.tensor([[0, 1, 2, 3]]), torch.tensor([[3, 2, 1, 0]])
    with torch.no_grad():
        _, state = ensemble(first)
        mixed, _ = ensemble(second, state)
        alone = []
        for model in models:
            _, own = model(first)
            logits, _ = model(second, own)
            alone.append(logits.softmax(-1))
    assert torch.allclose(mixed.softmax(-1), torch.stack(alone).mean(0), atol=1e-6)
    text = ensemble.generate("ab", 5, 1.0, seed=0)
    assert len(text) == 7 and set(text) <= set("abcd")
