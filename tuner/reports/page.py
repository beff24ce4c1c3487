"""The report's HTML page: one self-contained file (figures inlined as PNG) whose sections a
person reads top-down: the best trial beside its baselines, then how the search went, then
the trials. Each section is a `<section id=...>`, so tests and links can find it."""

from __future__ import annotations

import base64
import html
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import optuna
import pandas as pd

from tuner.config import keys, trial_attrs
from tuner.reports.ranking import best_trial, ranked_trials, trial_state, value_of

FEW_TRIALS = 10  # below this many complete trials, importances and coordinates are anecdotes
STYLE = """body{font-family:sans-serif;margin:2em auto;padding:0 2em;max-width:1100px;color:#222}
img{max-width:100%}table{border-collapse:collapse;font-size:13px;margin:.5em 0}
td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}.caveat{color:#a15c00}
.wide{overflow-x:auto}section{margin-bottom:2em}"""


@dataclass(frozen=True)
class Section:
    """One part of the page: its id, heading, and body (HTML)."""

    id: str
    title: str
    body: str


def figure(path: Path, title: str, caveat: str = "") -> str:
    """A PNG inlined, with a caveat below it where the figure may mislead."""
    data = base64.b64encode(path.read_bytes()).decode()
    note = f"<p class='caveat'>{html.escape(caveat)}</p>" if caveat else ""
    return f"<img alt='{html.escape(title)}' src='data:image/png;base64,{data}'>{note}"


def few_trials_caveat(study: optuna.Study) -> str:
    complete = len(ranked_trials(study))
    if complete >= FEW_TRIALS:
        return ""
    return (f"Drawn from {complete} complete trial(s): below {FEW_TRIALS}, which parameter "
            f"matters is mostly chance; read it as a hint, not a finding.")  # fmt: skip


def render(study: optuna.Study, sections: list[Section]) -> str:
    name = html.escape(study.study_name)
    body = "\n".join(
        f"<section id='{s.id}'><h2>{html.escape(s.title)}</h2>\n{s.body}</section>"
        for s in sections
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Study {name}</title><style>{STYLE}</style></head>
<body><h1>Study {name}</h1>
<p>{html.escape(_headline(study))}</p>
<p>{html.escape(_fixed(study))}</p>
{body}
</body></html>
"""


def _headline(study: optuna.Study) -> str:
    best, metric = best_trial(study), keys.study_attr(study, keys.METRIC)
    counts = Counter(trial_state(trial).lower() for trial in study.get_trials(deepcopy=False))
    shown = ", ".join(f"{n} {state}" for state, n in counts.items())
    task = keys.study_attr(study, keys.TASK) or "?"
    found = f"best {metric} = {value_of(best):.4g} (trial {best.number})" if best else ""
    return f"Task {task}; {len(study.trials)} trials ({shown}); {found or 'no complete trial'}."


def _fixed(study: optuna.Study) -> str:
    """The settings every trial shared (the space's fixed ones and the command's --set)."""
    fixed = keys.study_attr(study, keys.SPACE).get("fixed") or {}
    shown = ", ".join(f"{k} = {v}" for k, v in fixed.items())
    return f"Every trial with: {shown}." if shown else "No fixed settings: the task's defaults."


def baselines_section(study: optuna.Study) -> Section:
    """The best trial's figures beside the simple baselines on the same rows: validation
    (what selection read) and the held-out test part."""
    best = best_trial(study)
    if best is None:
        return Section("best", "Best trial", "<p>No complete trial yet.</p>")
    attrs, metric = trial_attrs.of(best), keys.study_attr(study, keys.METRIC)
    rows = [(f"{metric} (trial {best.number})", "validation", value_of(best))]
    rows += [(k, "validation, same rows", v) for k, v in sorted(attrs.items())
             if k.startswith("val_") and k != metric]  # fmt: skip
    declared = set(attrs.get(keys.BASELINE_KEYS, []))
    statistical = study.user_attrs.get(keys.STUDY_BASELINES) or {}
    tests = {k: v for k, v in attrs.items() if k.startswith("test_") and k != "test_loss"}
    tests.update({k: v for k, v in statistical.items() if k not in tests})
    kind = {**dict.fromkeys(declared, ", baseline"), **dict.fromkeys(statistical, ", statistical")}
    rows += [(k, ("validation" if k.startswith("val_") else "test part") + kind.get(k, ""), v)
             for k, v in sorted(tests.items(), key=lambda kv: kv[0] in kind)]  # fmt: skip
    table = pd.DataFrame(rows, columns=["figure", "rows", "value"])
    note = "" if declared else "<p>No baseline declared by the task (docs/custom.md).</p>"
    params = ", ".join(f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {v}"
                       for k, v in best.params.items())  # fmt: skip
    return Section(
        "best",
        "Best trial beside its baselines",
        f"<p>Trial {best.number}: {html.escape(params)}</p>{_table(table)}{note}",
    )


def trials_sections(study: optuna.Study, table: pd.DataFrame, top: int) -> list[Section]:
    """The complete trials ranked (only the params that vary, and the figures), and the
    pruned, failed and interrupted ones apart, each with where or why it stopped."""
    params = [c for c in _param_columns(study) if c in table and table[c].nunique() > 1]
    ranked = [t.number for t in ranked_trials(study)][:top]
    complete = table.set_index("number").loc[ranked].reset_index() if ranked else table[:0]
    tests = [c for c in table if c.startswith("test_") and c not in _baseline_keys(study)][:3]
    shown = complete[["number", "value", *params, "duration_s", *tests]]
    others = table[~table["state"].isin(["COMPLETE"])]
    why = others.apply(_why_stopped, axis=1) if len(others) else pd.Series(dtype=str)
    rest = pd.DataFrame({"number": others["number"], "state": others["state"], "why": why})
    return [
        Section("top", f"Top {len(shown)} complete trials, best first", _table(shown)),
        Section("others", "Pruned, failed and interrupted trials",
                _table(rest) if len(rest) else "<p>None.</p>"),
    ]  # fmt: skip


def _baseline_keys(study: optuna.Study) -> set[str]:
    """The test figures that are baselines, not the trial's own (and test_loss, which is
    in the model's training units)."""
    best = best_trial(study)
    declared = set(trial_attrs.of(best).get(keys.BASELINE_KEYS, [])) if best else set()
    return {"test_loss", *declared, *(study.user_attrs.get(keys.STUDY_BASELINES) or {})}


def _why_stopped(row: pd.Series) -> str:
    if row["state"] == "PRUNED" and pd.notna(row.get("pruned_at_epoch")):
        fold = row.get("pruned_at_fold")
        where = f"fold {int(fold)}, " if pd.notna(fold) else ""
        return f"pruned at {where}epoch {int(row['pruned_at_epoch'])}"
    return str(row.get("fail_reason") or row.get("infeasible") or "")[:160]


def _param_columns(study: optuna.Study) -> list[str]:
    return list(keys.study_attr(study, keys.SPACE).get("params") or {})


def _table(frame: pd.DataFrame) -> str:
    text = frame.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="")
    return f"<div class='wide'>{text}</div>"
