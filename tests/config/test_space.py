from __future__ import annotations

import optuna
import pytest

from tests.conftest import REPO
from tuner.config.overrides import parse_overrides
from tuner.config.space_file import load_space, parse_space
from tuner.errors import SpaceError, UsageError
from tuner.tasks.forecasting.spec import SPEC

SHIPPED = REPO / "search_spaces"  # read from any working directory

GOOD = {
    "metric": "val_mae",
    "direction": "minimize",
    "params": {
        "hidden_size": {"type": "int", "low": 8, "high": 64, "log": True},
        "dropout": {"type": "float", "low": 0.0, "high": 0.5},
        "input_len": {"type": "int", "low": 12, "high": 36, "step": 12},
        "transform": {"type": "categorical", "choices": ["none", "log"]},
    },
    "fixed": {"max_epochs": 3, "horizon": 6},
}


def _with(**changes):
    raw = {**GOOD, "params": {**GOOD["params"]}, "fixed": {**GOOD["fixed"]}}
    for dotted, value in changes.items():
        section, _, key = dotted.partition("__")
        if key:
            raw[section][key] = value
        else:
            raw[section] = value
    return raw


def test_good_space_parses_and_suggests_every_kind():
    space = parse_space(GOOD, SPEC, "good.yaml")
    assert [p.name for p in space.params] == ["hidden_size", "dropout", "input_len", "transform"]
    assert space.fixed == {"max_epochs": 3, "horizon": 6}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(20):
        params = space.suggest(study.ask())
        assert 8 <= params["hidden_size"] <= 64 and isinstance(params["hidden_size"], int)
        assert 0.0 <= params["dropout"] <= 0.5
        assert params["input_len"] in (12, 24, 36)
        assert params["transform"] in ("none", "log")


def test_shipped_space_is_valid():
    space = load_space(SHIPPED / "forecasting.yaml", SPEC)
    assert space.metric == "val_mae" and space.direction == "minimize"
    assert {"hidden_size", "num_layers", "dropout", "lr", "batch_size"} <= {
        p.name for p in space.params
    }


@pytest.mark.parametrize(
    "raw, match",
    [
        (
            _with(params__hiden_size={"type": "int", "low": 1, "high": 2}),
            r"params.hiden_size: unknown setting \(did you mean 'hidden_size'\?\)",
        ),
        (
            _with(params__dropout={"type": "float", "low": 0.5, "high": 0.1}),
            r"params.dropout: low \(0.5\) must not be greater than high \(0.1\)",
        ),
        (
            _with(params__transform={"type": "categorical", "choices": []}),
            r"params.transform.choices: expected a non-empty list",
        ),
        (
            _with(params__dropout={"type": "uniform", "low": 0, "high": 1}),
            r"params.dropout.type: unknown type 'uniform'",
        ),
        (
            _with(params__hidden_size={"type": "int", "low": "8", "high": 64}),
            r"params.hidden_size.low: expected an integer, found '8'",
        ),
        (
            _with(params__lr={"type": "float", "low": 0, "high": 1, "log": True}),
            r"params.lr: a log range needs low > 0",
        ),
        (
            _with(params__dropout={"type": "float", "low": 0, "high": 1, "lo": 2}),
            r"params.dropout: unknown key 'lo' for a float param \(did you mean 'low'\?\)",
        ),
        (
            _with(fixed__max_epochs="ten"),
            r"fixed.max_epochs: expected an integer >= 1 and <= 100000, found .ten.",
        ),
        (_with(fixed__epochs=3), r"fixed.epochs: unknown setting"),
        (_with(direction="down"), r"direction: expected minimize or maximize"),
        (_with(metrc="x"), r"metrc: unknown key \(did you mean 'metric'\?\)"),
        (_with(first={"lr": 0.01}), r"first.lr: not a searched param; expected one of hidden"),
        (_with(first={"hidden_size": 65}), r"found 65; expected an integer from 8 to 64"),
        (_with(first={"input_len": 18}), r"found 18; expected an integer from 12 to 36 in steps"),
        (_with(first={"transform": "exp"}), r"first.transform: found 'exp'; expected one of none"),
        (_with(first=[8]), r"first: expected a mapping of searched param -> value"),
    ],
)
def test_bad_space_names_file_key_and_reason(raw, match):
    with pytest.raises(SpaceError, match=match) as caught:
        parse_space(raw, SPEC, "bad.yaml")
    assert str(caught.value).startswith("bad.yaml: ")


def test_every_problem_is_reported_at_once():
    raw = _with(fixed__max_epochs="ten", direction="down")
    with pytest.raises(SpaceError) as caught:
        parse_space(raw, SPEC, "bad.yaml")
    assert "fixed.max_epochs" in str(caught.value) and "direction" in str(caught.value)


def test_not_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "space.yaml"
    bad.write_text("params: [unclosed\n  - x: {")
    with pytest.raises(SpaceError, match="not valid YAML"):
        load_space(bad, SPEC)
    with pytest.raises(SpaceError, match="not found"):
        load_space(tmp_path / "nope.yaml", SPEC)


def test_overrides_pin_a_param_and_type_check():
    space = parse_space(GOOD, SPEC, "good.yaml")
    overrides = parse_overrides(["hidden_size=32", "max_epochs=7", "transform=log"], SPEC)
    assert overrides == {"hidden_size": 32, "max_epochs": 7, "transform": "log"}
    pinned = space.with_fixed(overrides)
    assert pinned.param("hidden_size") is None
    assert pinned.fixed["hidden_size"] == 32 and pinned.fixed["max_epochs"] == 7
    with pytest.raises(UsageError, match="expected key=value"):
        parse_overrides(["max_epochs"], SPEC)
    with pytest.raises(UsageError, match="unknown setting"):
        parse_overrides(["max_epoch=3"], SPEC)


def test_tie_break_defaults_to_val_loss_and_takes_a_logged_metric_or_none():
    space = parse_space({"metric": "val_mae"}, SPEC, "s.yaml")
    assert space.tie_break == "val_loss" and space.tie_breaker(SPEC) == ("val_loss", 1.0)
    assert "tie_break" not in space.to_dict()  # studies stored before keep their setup
    rmse = parse_space({"tie_break": "val_rmse"}, SPEC, "s.yaml")
    assert (
        rmse.tie_breaker(SPEC) == ("val_rmse", 1.0) and rmse.to_dict()["tie_break"] == "val_rmse"
    )
    assert parse_space({"tie_break": "none"}, SPEC, "s.yaml").tie_breaker(SPEC) is None
    assert parse_space({"metric": "val_loss"}, SPEC, "s.yaml").tie_breaker(SPEC) is None
    with pytest.raises(SpaceError, match="s.yaml: tie_break: expected one of .*found 'val_acc'"):
        parse_space({"tie_break": "val_acc"}, SPEC, "s.yaml")


def test_device_section_replaces_what_it_names_for_that_device_only():
    raw = _with(
        cpu={
            "params": {
                "hidden_size": {"type": "int", "low": 8, "high": 16},
                "horizon": {"type": "categorical", "choices": [6, 12]},
            },
            "fixed": {"max_epochs": 2, "dropout": 0.1},
        }
    )
    space = parse_space(raw, SPEC, "sized.yaml")
    on_cpu = space.for_accelerator("cpu")
    assert on_cpu.profile == "cpu" and on_cpu.param("hidden_size").high == 16
    assert on_cpu.param("dropout") is None and on_cpu.fixed["dropout"] == 0.1
    assert on_cpu.param("horizon").choices == (6, 12) and "horizon" not in on_cpu.fixed
    assert on_cpu.fixed["max_epochs"] == 2 and "cpu" not in on_cpu.to_dict()
    on_gpu = space.for_accelerator("gpu")
    assert on_gpu.profile == "" and on_gpu.param("hidden_size").high == 64
    assert on_gpu.fixed == {"max_epochs": 3, "horizon": 6}


def test_first_trial_follows_the_params_it_names():
    space = parse_space(_with(first={"hidden_size": 8, "input_len": 24}), SPEC, "first.yaml")
    assert space.first == {"hidden_size": 8, "input_len": 24}
    assert space.to_dict()["first"] == {"hidden_size": 8, "input_len": 24}
    assert "first" not in parse_space(GOOD, SPEC, "plain.yaml").to_dict()
    assert space.with_fixed({"hidden_size": 32}).first == {"input_len": 24}  # --set pins it
    cpu = {"params": {"hidden_size": {"type": "int", "low": 16, "high": 32}}}
    narrowed = _with(first={"hidden_size": 8, "input_len": 24}, cpu=cpu)
    on_cpu = parse_space(narrowed, SPEC, "first.yaml").for_accelerator("cpu")
    assert on_cpu.first == {"input_len": 24}  # 8 is outside the CPU section's range


@pytest.mark.parametrize(
    "section, match",
    [
        (
            {"params": {"hiden_size": {"type": "int", "low": 1, "high": 2}}},
            r"cpu.params.hiden_size: unknown setting",
        ),
        ({"fixed": {"max_epochs": 0}}, r"cpu.fixed.max_epochs: expected an integer >= 1"),
        ({"fixd": {}}, r"cpu.fixd: unknown key \(did you mean 'fixed'\?\)"),
        ([1, 2], r"cpu: expected a mapping with params and/or fixed"),
    ],
)
def test_bad_device_section_names_its_key(section, match):
    with pytest.raises(SpaceError, match=match):
        parse_space(_with(cpu=section), SPEC, "bad.yaml")


def test_shipped_charlm_space_is_sized_for_cpu_and_says_so(tmp_path, monkeypatch):
    from tuner.study._config import SearchConfig
    from tuner.study._prepare import prepare

    monkeypatch.chdir(tmp_path)
    prepared = prepare(SearchConfig(task="charlm", devices="cpu"))
    assert prepared.space.fixed["batches_per_epoch"] == 85
    assert prepared.space.param("hidden_size").high == 512  # the section names no params
    assert any("sized for CPU trials" in note for note in prepared.notes)
    assert not (tmp_path / "mlruns").exists()  # checking creates nothing


@pytest.mark.parametrize("task", ["charlm", "classification"])
def test_shipped_first_trial_names_every_searched_param(task):
    """Naming them all keeps the sampler's random start-up draws after it as they would be
    without it (tests/study/test_warmstart.py), so a small first trial adds a result, not a
    different sweep; a param added to the space (or by the data) without a first value would
    break that."""
    from tuner.contract.registry import get_task

    found = get_task(task)
    shipped = load_space(SHIPPED / f"{task}.yaml", found.spec)
    assert shipped.for_accelerator("cpu").first == shipped.first
    space, _ = found.fit_space(shipped, found.load_data({"data": found.default_data}))
    assert set(space.first) == {p.name for p in space.params}


def test_distribution_is_what_suggest_records():
    space = parse_space(GOOD, SPEC, "good.yaml")
    study = optuna.create_study()
    trial = study.ask()
    space.suggest(trial)
    recorded = study._storage.get_trial(trial._trial_id).distributions
    assert {p.name: p.distribution() for p in space.params} == recorded
