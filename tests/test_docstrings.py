"""The public API's docstrings name every argument (classes: their constructor; functions: their parameters)."""
from __future__ import annotations

import importlib
import inspect
import re

import pytest

PUBLIC = ["replay", "replay.priors", "replay.methods", "replay.generators", "replay.models", "replay.plugins"]
#: public functions and classes of modules without ``__all__``
EXTRA = {"replay.strategies": ["GenerativeReplayStrategy", "BrainInspiredReplayStrategy"],
         "replay.cl_metrics": ["average_accuracy_curve", "backward_transfer", "forgetting_per_experience",
                               "average_forgetting", "intransigence", "forward_transfer", "summary"],
         "scenarios.streams": ["split_mnist", "permuted_mnist", "split_cifar100", "build_stream",
                               "class_incremental_benchmark", "seeded_class_order"],
         "replay.quality": ["judge_for", "frechet_distance", "prdc"]}


def public_objects():
    seen = set()
    for name in PUBLIC:
        module = importlib.import_module(name)
        for attribute in module.__all__:
            yield from _new(seen, f"{name}.{attribute}", getattr(module, attribute))
    for name, attributes in EXTRA.items():
        module = importlib.import_module(name)
        for attribute in attributes:
            yield from _new(seen, f"{name}.{attribute}", getattr(module, attribute))


def _new(seen, name, obj):
    if (inspect.isclass(obj) or inspect.isfunction(obj)) and id(obj) not in seen:
        seen.add(id(obj))
        yield name, obj


def undocumented(obj) -> list[str]:
    function = obj.__init__ if inspect.isclass(obj) else obj
    if function is object.__init__:
        return []
    doc = (inspect.getdoc(obj) or "") + (inspect.getdoc(function) or "" if inspect.isclass(obj) else "")
    parameters = [p for p in inspect.signature(function).parameters if p not in ("self", "args", "kwargs")]
    return [p for p in parameters if not re.search(rf"\b{re.escape(p)}\b", doc)]


@pytest.mark.parametrize("name, obj", list(public_objects()), ids=lambda value: value if isinstance(value, str) else "")
def test_the_docstring_names_every_argument(name, obj):
    assert undocumented(obj) == [], f"{name}: the docstring does not name {undocumented(obj)}"
