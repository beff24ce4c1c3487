"""Where a user's model comes from: the reference given to `--task` (or the Python API) and
the parts its module exposes.

A reference is one of
- a dotted module path, `mypkg.mytask`, importable from `sys.path` (an installed package,
  or the working folder: `python -m` and `tuner` put it first);
- a `.py` file path, `./mytask.py`, loaded from that file wherever it lives;
- `module:Model` or `module:Model+module:Data` (the classes given to `tuner.search(model=...,
  datamodule=...)`; also accepted by `--task`).

A module exposes `MODEL` (a LightningModule class) and, optionally, `DATA` (a
LightningDataModule class, or a function of the data settings returning one), `SPACE` (a
search space as a mapping, else `<module file stem>.yaml` beside the module is read),
`METRIC` / `DIRECTION`, `predict(model, frame) -> DataFrame` and `EXAMPLE` (a DataFrame, or a
function returning one). Only the user's own `--task` (or code logged with the model, run by
MLflow's pyfunc) reaches this module: a checkpoint never names code to run.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from tuner.errors import UsageError, did_you_mean


@dataclass(frozen=True)
class UserParts:
    """What a user's module provides, and where its code lives (to log it with the model)."""

    name: str  # the reference the study records and --task takes
    model: type
    data: Callable[..., Any] | None = None
    space: Mapping[str, Any] | str | None = None  # a mapping, or a YAML file's path
    metric: str | None = None
    direction: str | None = None
    predict: Callable[..., Any] | None = None
    example: Any = None
    code: tuple[Path, ...] = ()  # files or top package folders to log beside the model


def is_custom_reference(name: str) -> bool:
    return name.endswith(".py") or ":" in name


def load_parts(reference: str, module: ModuleType | None = None) -> UserParts:
    """The parts a reference names (`module` when the caller imported it already)."""
    if ":" in reference and not reference.endswith(".py"):
        return _from_classes(reference)
    if module is None and reference.endswith(".py"):
        module = import_file(Path(reference))
    elif module is None:
        module = import_user_module(reference)
    model = getattr(module, "MODEL", None)
    if not isinstance(model, type):
        raise UsageError(
            f"--task {reference!r}: module {module.__name__!r} defines neither TASK nor MODEL "
            f"(a LightningModule class); see docs/custom.md"
        )
    name = reference
    if reference.endswith(".py"):
        name = str(Path(reference).expanduser().resolve())
    return UserParts(name, model, getattr(module, "DATA", None), *_optional(module),
                     code=(code_of(module),))  # fmt: skip


def _optional(module: ModuleType) -> tuple[Any, ...]:
    """SPACE (or the .yaml beside the module), METRIC, DIRECTION, predict and EXAMPLE."""
    space = getattr(module, "SPACE", None)
    beside = Path(module.__file__ or "").with_suffix(".yaml")
    if space is None and beside.is_file():
        space = str(beside)
    predict = getattr(module, "predict", None)
    return (space, getattr(module, "METRIC", None), getattr(module, "DIRECTION", None),
            predict if callable(predict) else None, getattr(module, "EXAMPLE", None))  # fmt: skip


def reference_of(model: type, datamodule: type | Callable[..., Any] | None) -> str:
    """The reference of classes given to the Python API: `module:Model[+module:Data]`;
    classes defined in `__main__` (a notebook, the running script) are refused, since
    workers and MLflow's pyfunc must import them again."""
    parts = [model] + ([datamodule] if datamodule is not None else [])
    for part in parts:
        if part.__module__ == "__main__" or "<locals>" in part.__qualname__:
            raise UsageError(
                f"{part.__qualname__} is defined in {part.__module__} (a notebook, a script "
                f"or a function): put it in a module file, so that workers and MLflow's "
                f"pyfunc can import it"
            )
    return "+".join(f"{part.__module__}:{part.__qualname__}" for part in parts)


def _from_classes(reference: str) -> UserParts:
    model_ref, _, data_ref = reference.partition("+")
    model = _attribute(model_ref)
    data = _attribute(data_ref) if data_ref else None
    code = {code_of(sys.modules[part.__module__]) for part in (model, data) if part is not None}
    module = sys.modules[model.__module__]  # its METRIC, SPACE...: where it is the MODEL
    own = _optional(module) if getattr(module, "MODEL", model) is model else ()
    return UserParts(reference, model, data, *own, code=tuple(sorted(code)))


def _attribute(reference: str) -> Any:
    module_name, _, attribute = reference.partition(":")
    module = import_user_module(module_name)
    try:
        found: Any = module
        for part in attribute.split("."):
            found = getattr(found, part)
    except AttributeError:
        raise UsageError(f"--task {reference!r}: {module_name} has no {attribute!r}") from None
    return found


def import_user_module(name: str) -> ModuleType:
    """A dotted module, found on `sys.path` and then in the working folder (as `python -m`
    would; appended, so an installed package of the same name wins)."""
    on_path(Path.cwd())
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        raise UsageError(
            f"--task {name!r}: cannot import module {name!r} ({exc}); run from the folder "
            f"that holds it, install its package, or pass the .py file's path"
        ) from None
    except Exception as exc:  # the user's code: one line that says where
        raise UsageError(f"--task {name!r}: importing it failed: {_where(exc)}") from None


def import_file(path: Path, name: str | None = None) -> ModuleType:
    """A module loaded from a `.py` file outside `sys.path`, under a name of its own (its
    stem and a digest of its path: two files of one name never meet). Loaded once per
    process."""
    path = path.expanduser().resolve()
    if not path.is_file():
        near = did_you_mean(path.name, [p.name for p in path.parent.glob("*.py")])
        raise UsageError(f"--task {str(path)!r}: no such file{near} (expected a .py file)")
    name = name or f"tuner_user_{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
    if name in sys.modules:
        return sys.modules[name]
    on_path(path.parent)  # the modules beside it import as they do when it runs there
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"--task {str(path)!r}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before running it: dataclasses and pickling look it up
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's code: one line that says where
        del sys.modules[name]
        raise UsageError(f"--task {str(path)!r}: importing it failed: {_where(exc)}") from None
    return module


def _where(exc: Exception) -> str:
    """An import's error in one line, with the file and line it came from."""
    frame = traceback.extract_tb(exc.__traceback__)[-1:] or None
    if isinstance(exc, SyntaxError):
        return f"SyntaxError: {exc.msg} ({exc.filename}, line {exc.lineno})"
    at = f" ({frame[0].filename}, line {frame[0].lineno})" if frame else ""
    return f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}{at}"


def on_path(folder: Path) -> None:
    if str(folder) not in sys.path:
        sys.path.append(str(folder))


def code_of(module: ModuleType) -> Path:
    """What to log beside the model so that it imports the module again: a file task's
    file (imported by its stem there), or a dotted module's top package folder (or its
    single file)."""
    file = Path(module.__file__ or "").resolve()
    root = file.parent if file.name == "__init__.py" else file
    if module.__name__.startswith("tuner_user_"):  # a .py file given by path
        return file
    for _ in range(module.__name__.count(".")):
        root = root.parent
    return root
