"""Config resolution and strict validation: one line naming the key and what is allowed."""
from __future__ import annotations

import pytest

from replay.bench.config import ConfigError, resolve


def test_defaults_follow_each_streams_protocol():
    split = resolve({"stream": {"name": "split_mnist"}, "method": {"name": "gr"}, "prior": {"name": "binarized_gaussian"}})
    assert split["iterations_per_experience"] == 2000 and split["batch_size"] == 128
    assert split["optimizer"]["lr"] == 0.001 and split["model"]["hidden"] == [400, 400]
    assert split["prior"] == {"name": "binarized_gaussian", "r": 0.01, "sampling": "reduced_bias"}
    permuted = resolve({"stream": {"name": "permuted_mnist"}, "method": {"name": "bir"}})
    assert permuted["batch_size"] == 256 and permuted["optimizer"]["lr"] == 0.0001
    assert permuted["stream"]["n_experiences"] == 10 and permuted["model"]["hidden"] == [2000, 2000]
    cifar = resolve({"stream": {"name": "split_cifar100"}, "method": {"name": "naive"}})
    assert cifar["iterations_per_experience"] == 5000 and cifar["prior"] is None


def test_overrides_by_dotted_path():
    config = resolve({"method": {"name": "bir"}}, ["prior.name=binarized_gmm", "prior.r=0.01", "model.hidden=[64, 64]",
                                                   "method.distill=false", "seed=3"])
    assert config["prior"]["r"] == 0.01 and config["model"]["hidden"] == [64, 64]
    assert config["method"]["distill"] is False and config["seed"] == 3


@pytest.mark.parametrize("user, overrides, message", [
    ({"stream": {"nmae": "x"}}, [], "unknown key 'stream.nmae' (stream); allowed: name, n_experiences, scenario, root"),
    ({"optimiser": {}}, [], "unknown key 'optimiser' (top level); allowed:"),
    ({}, ["method.name=ewc"], "method.name: unknown method 'ewc'; allowed: naive, joint, gr, bir"),
    ({}, ["prior.name=vamp"], "prior.name: unknown prior 'vamp'; allowed: gaussian, binarized_gaussian, gmm"),
    ({}, ["stream.name=cifar10"], "stream.name: unknown stream 'cifar10'; allowed:"),
    ({}, ["batch_size=big"], "batch_size: expected int, got str ('big')"),
    ({}, ["iterations_per_experience=2.5"], "iterations_per_experience: expected int, got float"),
    ({}, ["method.distill=3"], "method.distill: expected bool, got int"),
    ({}, ["method.gate_prop=high"], "method.gate_prop: expected float, got str"),
    ({}, ["device=tpu"], "device: 'tpu' is not allowed; allowed: cpu, cuda"),
    ({}, ["precision=fp16"], "precision: 'fp16' is not allowed; allowed: fp32, bf16"),
    ({"method": {"name": "gr"}}, ["method.targets=medium"], "method.targets: 'medium' is not allowed; allowed: hard, soft"),
    ({"method": {"name": "gr"}, "prior": {"name": "gaussian"}}, ["prior.r=0.1"], "unknown key 'prior.r' (prior); allowed: name"),
    ({"method": {"name": "naive"}}, ["method.distill=true"], "unknown key 'method.distill' (method); allowed: name"),
    ({}, ["seed"], "--set expects key=value"),
])
def test_bad_configs_fail_with_one_line(user, overrides, message):
    with pytest.raises(ConfigError) as error:
        resolve(user, overrides)
    assert message in str(error.value) and "\n" not in str(error.value)
