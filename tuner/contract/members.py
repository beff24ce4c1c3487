"""Several models of one architecture kept as one: the first carries the others, and its
forward combines all their outputs (the task's `combine`: the mean by default, averaged
probabilities for classes). A K-fold trial keeps its fold models this way: on JapaneseVowels
and the airline, averaged fold models scored better on the test part than a refit on all
non-test data for the folds' median best epoch count (benchmarks/RESULTS.md and JOURNAL.md).

The carrier stays an instance of the task's own LightningModule, so everything that uses a
model (its test step, `predict`, MLflow's pyfunc, a fine-tune) uses the combined outputs
without knowing; a checkpoint says how many members it carries (`MEMBERS`) and
`tuner.contract.checkpoints.restore_model` rebuilds them.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from tuner.errors import UsageError

MEMBERS = "members"  # the checkpoint key (and attribute) holding the carried models
MEMBER_HPARAMS = "member_hyper_parameters"  # each carried model's own (a top-k ensemble's)
RULE = "combine"  # the checkpoint key naming a combine rule other than the task's own

Combine = Callable[[list[torch.Tensor]], torch.Tensor]


def mean_of(outputs: list[torch.Tensor]) -> torch.Tensor:
    """The default way to combine outputs (forecasts, scores): their mean."""
    return torch.stack(outputs).mean(0)


def median_of(outputs: list[torch.Tensor]) -> torch.Tensor:
    """Forecasts combined by their median: robust to one member that is far off."""
    return torch.stack(outputs).median(0).values


RULES: dict[str, Combine] = {"median": median_of}  # besides each task's own `combine`


def carry(
    lead: nn.Module, others: Sequence[nn.Module], combine: Combine | None, rule: str = ""
) -> nn.Module:
    """`lead` answers for itself and `others` from now on: its forward combines their
    outputs with its own (the task's `combine`, or the named `rule`). The others are
    registered submodules (saved with it, moved to its device, switched to eval with it).
    With no others, `lead` stays as it is."""
    if not others:
        return lead
    setattr(lead, MEMBERS, nn.ModuleList(others))
    if "forward" in lead.__dict__:  # its own forward replaced (an exported graph): kept
        lead.own_forward = lead.__dict__.pop("forward")
    lead.combine_rule = rule
    lead.combine_outputs = RULES[rule] if rule else combine or mean_of
    lead.forward = types.MethodType(_combined_forward, lead)
    return lead


def forward_slot(model: nn.Module) -> str:
    """Where a model's own forward is put when replaced (an exported graph): a carrier's
    `forward` combines its members, so its own is `own_forward`."""
    return "own_forward" if carried(model) else "forward"


def own_forward(model: nn.Module) -> Any:
    """The forward a model runs for itself: one put in its place, or its class's."""
    return model.__dict__.get(forward_slot(model)) or types.MethodType(type(model).forward, model)


class MemberStates(tuple):
    """The recurrent states of a carrier's models, one each: a stateful model (a language
    model reading a stream) gets its own state back, never another member's."""


def _combined_forward(self: nn.Module, *inputs: Any) -> torch.Tensor:
    members = getattr(self, MEMBERS)
    if inputs and isinstance(inputs[-1], MemberStates):  # the last input is the state
        each = [(*inputs[:-1], state) for state in inputs[-1]]
    else:
        each = [inputs] * (1 + len(members))
    own = own_forward(self)(*each[0])
    others = [member(*args) for member, args in zip(members, each[1:], strict=True)]
    try:
        return self.combine_outputs([own, *others])
    except RuntimeError as exc:  # members that emit other shapes (another vocabulary)
        shapes = ", ".join(str(tuple(getattr(o, "shape", ()))) for o in [own, *others])
        raise UsageError(
            f"the members' outputs cannot be combined ({shapes}): {str(exc).splitlines()[0]}"
        ) from None


def detached(state: Any) -> Any:
    """A recurrent state (a tensor, a tuple of them, or MemberStates of those) cut from
    the graph (truncated backpropagation through time)."""
    if isinstance(state, torch.Tensor):
        return state.detach()
    return type(state)(detached(part) for part in state)


def carried(model: nn.Module) -> list[nn.Module]:
    """The models `model` carries besides itself (none for a single model)."""
    members = getattr(model, MEMBERS, None)
    return list(members) if isinstance(members, nn.ModuleList) else []


def split(model: nn.Module) -> list[nn.Module]:
    """A carrier as its separate models (itself plain again first), a single model as
    itself: the members of a larger ensemble are never carriers themselves."""
    members = carried(model)
    if members:
        delattr(model, MEMBERS)
        for name in ("forward", "combine_outputs", "combine_rule"):
            model.__dict__.pop(name, None)
        if "own_forward" in model.__dict__:
            model.forward = model.__dict__.pop("own_forward")
    return [model, *members]
