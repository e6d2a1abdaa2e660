"""cached_artifact: built once, loaded back with weights_only=True (no arbitrary pickle)."""
import hashlib
import pickle

import numpy as np
import pytest
import torch

from xbarsim.experiments.repro.base import ARTIFACT_DIR_ENV, cached_artifact
from xbarsim.experiments.sweeps.spec import canonical_json


class NotAllowed:
    """A class a weights_only load must refuse."""


def artifact_path(folder, tag: str, key: dict):
    digest = hashlib.sha256(canonical_json({"tag": tag, "key": key}).encode()).hexdigest()[:16]
    return folder / f"{tag}-{digest}.pt"


def test_an_artifact_is_built_once_and_loads_back_with_its_numpy_values(tmp_path, monkeypatch):
    monkeypatch.setenv(ARTIFACT_DIR_ENV, str(tmp_path))
    value = {"state": {"w": torch.arange(6.0).reshape(2, 3)}, "loss": [np.float64(0.5), 0.25],
             "curve": np.linspace(0, 1, 5, dtype=np.float32), "labels": np.array([1, 2], dtype=np.int64),
             "acc": np.float32(0.75), "n": np.int64(3), "name": "net"}
    calls = []

    def build():
        calls.append(1)
        return value

    assert cached_artifact("t", {"a": 1}, build) is value
    again = cached_artifact("t", {"a": 1}, build)
    assert len(calls) == 1
    assert torch.equal(again["state"]["w"], value["state"]["w"])
    np.testing.assert_array_equal(again["curve"], value["curve"])
    assert again["curve"].dtype == np.float32 and again["labels"].dtype == np.int64
    assert again["loss"] == value["loss"] and again["acc"] == value["acc"] and again["n"] == 3
    assert again["name"] == "net"


def test_an_artifact_holding_an_arbitrary_object_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv(ARTIFACT_DIR_ENV, str(tmp_path))
    torch.save({"obj": NotAllowed()}, artifact_path(tmp_path, "t", {"a": 2}))
    with pytest.raises(pickle.UnpicklingError, match="NotAllowed"):
        cached_artifact("t", {"a": 2}, lambda: {})
