"""The README's plugin example runs as written (with 3 iterations per experience instead of 2000 or 1000, and 2
importance samples instead of 100)."""
from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_plugin_example_trains_gr_bir_and_the_generative_classifier_through_every_experience(mnist_root, monkeypatch):
    section = README.read_text().split("## Using the plugins in your own Avalanche pipeline")[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert code.count("IterationBudget(2000)") == 2 and code.count("IterationBudget(1000)") == 1
    monkeypatch.setenv("REPLAY_DATA", str(mnist_root))
    namespace: dict = {}
    code = code.replace("IterationBudget(2000)", "IterationBudget(3)").replace("IterationBudget(1000)", "IterationBudget(3)")
    exec(compile(code.replace("samples=100", "samples=2"), str(README), "exec"), namespace)
    for name in ("gr", "bir", "gc"):
        strategy = namespace[name]
        assert strategy.clock.train_exp_counter == 5  # trained on all five experiences
        assert strategy.clock.train_iterations == 15  # 3 each: the budget applied
    gr_plugin = namespace["gr"].plugins[0]
    assert gr_plugin.method.frozen_generator is not None and set(gr_plugin.last_losses) == {"current", "replay", "generator"}
    assert set(namespace["gc"].plugins[0].last_losses) == {"recon", "reg"}
    assert bool(namespace["classifier"].trained.all())
    assert 0.0 <= namespace["accuracy"] <= 1.0
