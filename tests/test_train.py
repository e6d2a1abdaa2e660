"""The main job: `xbarsim train` end to end, its HDF5 output, and bit-identical resume."""
import json
import os

import h5py
import numpy as np
import pytest
import torch

from xbarsim.experiments.cli import main
from xbarsim.experiments.train import TrainConfig, preset_config, run_train

TINY = dict(train_subset=400, test_subset=200, epochs=2, batch_size=10, lr=0.5, lr_schedule="constant")


def test_smoke_preset_trains_well_above_chance(tmp_path, capsys):
    out = tmp_path / "smoke.h5"
    rc = main(["train", "--preset", "smoke", "--out", str(out), "--json", "--no-progress", "--seed", "1"])
    assert rc == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    result = json.loads(line)
    assert len(result["test_acc"]) == result["config"]["epochs"] == len(result["epoch_seconds"])
    # 10 classes: chance is 0.1
    assert result["test_acc"][-1] > 0.4
    with h5py.File(out) as f:
        run = f["run"]
        assert run.attrs["status"] == "complete"
        assert json.loads(run.attrs["config"])["device"] == "SoftBounds"
        np.testing.assert_allclose(run["test_acc"][()], result["test_acc"])
        pulses = json.loads(run.attrs["pulses"])
        n_layers = len(result["config"]["hidden"]) + 1
        assert len(pulses) == n_layers and all(p["pulse_total"] > 0 for p in pulses.values())


def test_resume_after_interruption_is_bit_identical(tmp_path):
    config = preset_config("smoke", **TINY)
    straight = run_train(config, seed=3, checkpoint_path=str(tmp_path / "a.pt"))

    class Stop(Exception):
        pass

    def stop_after_first(epoch, history):
        if epoch == 0:
            raise Stop

    ckpt = str(tmp_path / "b.pt")
    with pytest.raises(Stop):
        run_train(config, seed=3, checkpoint_path=ckpt, on_epoch=stop_after_first)
    resumed = run_train(config, seed=3, checkpoint_path=ckpt, resume=True)
    assert resumed["test_acc"] == straight["test_acc"]
    assert resumed["train_loss"] == straight["train_loss"]
    a, b = torch.load(tmp_path / "a.pt", weights_only=False), torch.load(ckpt, weights_only=False)
    for key, value in a["model"].items():
        if torch.is_tensor(value):
            assert torch.equal(value, b["model"][key]), key


def test_resume_refuses_a_different_config(tmp_path):
    ckpt = str(tmp_path / "c.pt")
    run_train(preset_config("smoke", **dict(TINY, epochs=1)), seed=0, checkpoint_path=ckpt)
    with pytest.raises(ValueError, match="different configuration"):
        run_train(preset_config("smoke", **dict(TINY, epochs=1, lr=0.2)), seed=0, checkpoint_path=ckpt,
                  resume=True)


def test_floating_point_and_hwa_modes_run(tmp_path):
    fp = run_train(preset_config("smoke", **dict(TINY, fp=True)), seed=0)
    assert fp["test_acc"][-1] > 0.3 and fp["pulses"] == {}
    hwa = run_train(preset_config("smoke", **dict(TINY, hwa=True, epochs=1)), seed=0)
    assert 0.0 <= hwa["test_acc"][-1] <= 1.0


@pytest.mark.parametrize("argv,message", [
    (["--epochs", "0"], "train.epochs = 0 is outside the allowed range"),
    (["--set", "dw_min=-1"], "SoftBounds.dw_min = -1 is outside"),
    (["--set", "io.out_noise=-0.1"], "IOConfig.out_noise = -0.1 is outside"),
    (["--set", "io.bogus=1"], "IOConfig has no field 'bogus'"),
    (["--set", "nonsense"], "--set expects FIELD=VALUE"),
    (["--device", "Memristor"], "train.device = 'Memristor' is unknown"),
    (["--set", "lr_schedule=cosine"], "train.lr_schedule = 'cosine' is not allowed"),
])
def test_bad_flags_get_clear_errors(argv, message, tmp_path, capsys):
    rc = main(["train", "--preset", "smoke", "--out", str(tmp_path / "x.h5"), *argv])
    assert rc == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.h5").exists()


def test_unwritable_out_and_empty_data_dir_are_one_line_errors(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # root ignores permission bits: use a path under a file instead
            out = tmp_path / "a_file" / "x.h5"
            (tmp_path / "a_file").write_text("")
        else:
            out = locked / "x.h5"
        assert main(["train", "--preset", "smoke", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert "cannot write the results file" in err and "Traceback" not in err
    finally:
        locked.chmod(0o700)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["train", "--preset", "smoke", "--out", str(tmp_path / "y.h5"), "--data-dir", str(empty)]) == 2
    err = capsys.readouterr().err
    assert "in the data_dir you named" in err and "Traceback" not in err


def test_config_round_trip():
    c = preset_config("default", device_params={"up_down": 0.3}, io_params={"out_noise": 0.0})
    assert TrainConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    with pytest.raises(ValueError, match=r"train has no field\(s\) \['epoch'\]"):
        TrainConfig.from_dict({"epoch": 3})


def test_activation_choice():
    from torch import nn

    from xbarsim.experiments.train import build_mlp
    model = build_mlp(preset_config("smoke", activation="tanh"), seed=0)
    assert any(isinstance(m, nn.Tanh) for m in model) and not any(isinstance(m, nn.Sigmoid) for m in model)
    with pytest.raises(ValueError, match="train.activation = 'relu' is not allowed"):
        preset_config("smoke", activation="relu")


@pytest.mark.parametrize("preset", ["default", "smoke", "aihwkit"])
def test_in_situ_presets_take_the_fused_step(preset):
    """xbarsim train's in-situ networks qualify for MLPStep; its float baseline does not."""
    from torch import nn

    from xbarsim.experiments.train import build_model, make_optimizer
    from xbarsim.training import MLPStep
    for fp in (False, True):
        config = preset_config(preset).replace(fp=fp)
        model, _ = build_model(config, seed=0)
        step = MLPStep.build(model, nn.NLLLoss(), make_optimizer(model, config))
        assert (step is not None) == (not fp)
