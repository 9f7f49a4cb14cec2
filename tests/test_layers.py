"""Imports point one way, down the layers (priors <- generators <- models <- methods <- plugins <- metrics,
strategies <- bench), and the lower layers load without Avalanche."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

#: package or module prefix -> layer (lowest first); a module may import from its own layer or below
LAYERS = [
    ("replay.errors", 0), ("replay.checks", 0), ("replay.files", 0), ("replay.schema", 0), ("replay.random_state", 0), ("replay.optim", 0),
    ("replay.nets", 0), ("replay.compat", 0), ("replay.cl_metrics", 0), ("scenarios", 0),
    ("replay.priors", 1), ("replay.generators", 2), ("replay.models", 3), ("replay.methods", 4), ("replay.plugins", 5),
    ("replay.metrics", 6), ("replay.quality", 6), ("replay.strategies", 6), ("replay.bench", 7), ("replay", 8),
]


def layer(module: str) -> int:
    """The layer of a dotted module name (the longest matching prefix)."""
    matches = [(len(prefix), rank) for prefix, rank in LAYERS if module == prefix or module.startswith(prefix + ".")]
    assert matches, f"{module} is in no layer: add it to LAYERS"
    return max(matches)[1]


def project_modules() -> dict[str, Path]:
    modules = {}
    for path in [*(REPO / "replay").rglob("*.py"), *(REPO / "scenarios").rglob("*.py")]:
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def imported(path: Path, module: str, modules: dict[str, Path]) -> set[str]:
    """Every project module that ``path`` imports, at any depth of its code (function-level imports too)."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                kept = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(kept + ([base] if base else []))
            candidates = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for name in candidates:
            while name and name not in modules:  # an attribute of a module: its module
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def test_imports_point_down_the_layers():
    modules = project_modules()
    upward = [f"{module} imports {target}" for module, path in modules.items()
              for target in imported(path, module, modules) if layer(target) > layer(module)]
    assert not upward, "imports against the layers:\n" + "\n".join(sorted(upward))


def test_the_check_catches_an_upward_import(tmp_path):
    bad = tmp_path / "refit.py"
    bad.write_text("from replay.methods.lifecycle import frozen_copy\n")
    targets = imported(bad, "replay.generators.refit", project_modules())
    assert targets == {"replay.methods.lifecycle"} and layer("replay.methods.lifecycle") > layer("replay.generators")


def test_priors_generators_and_methods_load_without_avalanche_or_ray():
    code = ("import sys, replay.priors, replay.generators, replay.models, replay.methods; "
            "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('avalanche', 'ray')); "
            "assert not loaded, loaded")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=120)


def test_the_cli_help_and_reading_a_config_load_neither_avalanche_nor_ray():
    code = ("import sys; from replay.bench.cli import main; from replay.bench.config import resolve; resolve({}, [])\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('avalanche', 'ray')); assert not loaded, loaded")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "usage: replay-bench" in done.stdout


def test_ranges_are_checked_wherever_a_prior_or_method_is_constructed():
    """Direct construction checks what ``build`` and the config check, with the same line (once, by the outermost
    constructor)."""
    import pytest

    from replay.errors import UserInputError
    from replay.generators import mlp_vae
    from replay.methods import BrainInspiredReplayMethod, GenerativeReplayMethod
    from replay.priors import CGBPEF, BinarizedGMM, build

    cases = [
        (lambda: CGBPEF(4, 2, anneal_steps=0), "prior.anneal_steps must be an integer >= 1, got 0"),
        (lambda: BinarizedGMM(4, 2, r=-1.0), "prior.r must be a number >= 0, got -1.0"),
        (lambda: BinarizedGMM(4, 2, soft="exact"), "prior.soft: 'exact' is not allowed"),
        (lambda: GenerativeReplayMethod(mlp_vae((4,), build("gaussian", 2)), temperature=0.0),
         "method.temperature must be a number > 0, got 0.0"),
        (lambda: BrainInspiredReplayMethod(replay_chunk=0), "method.replay_chunk must be an integer >= 1, got 0"),
    ]
    for make, message in cases:
        with pytest.raises(UserInputError, match=message.replace("(", r"\(").replace("[", r"\[")):
            make()
