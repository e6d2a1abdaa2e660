"""The main job: `xbarsim train` end to end, its HDF5 output, and bit-identical resume."""
import json
import math
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
        clipping = json.loads(run.attrs["clipped_at_programming"])
        assert set(clipping) == set(pulses)
        assert clipping["0"]["cells"] == 64 * 784 and clipping["2"]["cells"] == 10 * 64
        assert run.attrs["clipped_fraction"] == pytest.approx(
            sum(c["clipped"] for c in clipping.values()) / (64 * 784 + 10 * 64))


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
    a, b = torch.load(tmp_path / "a.pt", weights_only=True), torch.load(ckpt, weights_only=True)
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


# ------------------------------------------------------------------ diverging runs
DIVERGING = ["--preset", "smoke", "--no-progress", "--seed", "0", "--set", "train_subset=400", "test_subset=200",
             "epochs=3", "lr_schedule=constant"]


def test_a_diverging_run_stops_names_epoch_and_batch_and_keeps_the_last_good_checkpoint(tmp_path, capsys,
                                                                                        monkeypatch):
    """Float baseline, learning rate inf from epoch 2: the first update of epoch 2 makes the weights
    non-finite, so batch 2 of epoch 2 is the first whose loss is not finite."""
    from xbarsim.experiments import train
    monkeypatch.setattr(train, "learning_rate", lambda config, epoch: math.inf if epoch == 1 else config.lr)
    out = tmp_path / "run.h5"
    rc = main(["train", "--fp", "--out", str(out), *DIVERGING])
    assert rc == 1
    err = capsys.readouterr().err.strip().splitlines()
    stop = [line for line in err if "stopped" in line]
    assert stop == [f"xbarsim train: stopped: training diverged: non-finite loss (nan) in epoch 2 of 3, batch 2 of 40; "
                    f"the checkpoint of epoch 1 is kept in {out}.ckpt.pt; recorded as failed in {out}"]
    assert "Traceback" not in "\n".join(err)
    with h5py.File(out) as f:
        run = f["run"]
        assert run.attrs["status"] == "failed"
        assert run.attrs["failure"] == "training diverged: non-finite loss (nan) in epoch 2 of 3, batch 2 of 40"
        assert (run.attrs["failed_epoch"], run.attrs["failed_batch"]) == (2, 2)
        assert run["test_acc"].shape == (1,) and np.isfinite(run["train_loss"][()]).all()
    ckpt = torch.load(f"{out}.ckpt.pt", weights_only=True)
    assert ckpt["epoch"] == 0 and len(ckpt["history"]["test_acc"]) == 1
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if torch.is_tensor(v))


def test_the_compiled_loop_names_the_first_non_finite_batch(tmp_path, monkeypatch):
    """In-situ (compiled MLP loop, checked per chunk of batches): a monkeypatched loop returns a
    non-finite loss for the batches holding one marked sample, in epoch 2 only. The chunk is
    replayed batch by batch from its saved state, so the message names that sample's batch."""
    from xbarsim.experiments import train
    from xbarsim.training import MLPStep
    marker, sample, epoch_now = 0.123456, 77, {}
    real_load, real_perm, real_batches = train.load_train_data, train.epoch_permutation, MLPStep.train_batches

    def load(config):
        data = real_load(config)
        data.x_train[sample, 0] = marker
        return data

    def permutation(n, seed, epoch):
        epoch_now["epoch"] = epoch
        return real_perm(n, seed, epoch)

    def batches(self, xs, ys, batch_size, on_batch=None):
        loss = real_batches(self, xs, ys, batch_size, on_batch=on_batch)
        return math.nan if epoch_now["epoch"] == 1 and bool((xs[:, 0] == marker).any()) else loss

    monkeypatch.setattr(train, "load_train_data", load)
    monkeypatch.setattr(train, "epoch_permutation", permutation)
    monkeypatch.setattr(MLPStep, "train_batches", batches)
    monkeypatch.setattr(train, "DIVERGENCE_CHUNK", 7)  # several chunks per epoch, the bad one replayed
    config = preset_config("smoke", **dict(TINY, epochs=3))
    with pytest.raises(train.TrainingDiverged) as info:
        run_train(config, seed=2, checkpoint_path=str(tmp_path / "c.pt"))
    position = int((real_perm(400, 2, 1) == sample).nonzero()[0][0])
    assert str(info.value) == f"training diverged: non-finite loss (nan) in epoch 2 of 3, batch {position // 10 + 1} of 40"
    assert (info.value.epoch, info.value.batch, info.value.last_good_epoch) == (1, position // 10, 0)
    assert len(info.value.history["test_acc"]) == 1
    assert torch.load(tmp_path / "c.pt", weights_only=True)["epoch"] == 0


def test_chunked_compiled_calls_give_the_same_run(monkeypatch):
    from xbarsim.experiments import train
    config = preset_config("smoke", **dict(TINY, epochs=1))
    whole = run_train(config, seed=4)
    monkeypatch.setattr(train, "DIVERGENCE_CHUNK", 3)
    chunked = run_train(config, seed=4)
    assert chunked["test_acc"] == whole["test_acc"]
    np.testing.assert_allclose(chunked["train_loss"], whole["train_loss"], rtol=1e-12)  # summed in another order
    assert chunked["pulses"] == whole["pulses"]


def test_a_diverging_sweep_point_is_stored_as_failed_with_the_reason(monkeypatch):
    from xbarsim.experiments import train
    from xbarsim.experiments.sweeps.run import run_point
    monkeypatch.setattr(train, "learning_rate", lambda config, epoch: math.inf if epoch == 1 else config.lr)
    params = dict(preset_config("smoke", **dict(TINY, fp=True)).to_dict())
    out = run_point(train.run_train_task, params, 0)
    assert out["status"] == "failed"
    assert out["traceback"].strip().splitlines()[-1] == (
        "xbarsim.experiments.train.TrainingDiverged: training diverged: non-finite loss (nan) in epoch 2 of 2, "
        "batch 2 of 40")


# ------------------------------------------------------------------ clipping at programming
@pytest.mark.parametrize("n_out_of_range,level", [(1, "INFO"), (3, "WARNING")])
def test_clipping_at_programming_is_counted_and_logged_by_its_fraction(n_out_of_range, level, caplog):
    """2000 cells with exact bounds +-0.6 (no d2d spread): 1 clipped cell is 0.05 % (INFO),
    3 are 0.15 % (WARNING)."""
    import logging

    from torch import nn

    from xbarsim.devices import SoftBounds
    from xbarsim.mapping import AnalogConfig, convert_to_analog
    from xbarsim.training import convert_to_hwa, program
    device = SoftBounds(w_max=0.6, w_min=-0.6, w_max_dtod=0.0, w_min_dtod=0.0)
    linear = nn.Linear(100, 20, bias=False)
    with torch.no_grad():
        linear.weight.uniform_(-0.5, 0.5)
        linear.weight.view(-1)[:n_out_of_range] = 5.0
    config = AnalogConfig(device=device, programming_noise=0.0)
    with caplog.at_level(logging.INFO):
        layer = convert_to_analog(nn.Sequential(linear), config, seed=0)[0]
        hwa = program(convert_to_hwa(nn.Sequential(linear), config, seed=0), seed=0)[0]
    assert layer.clipped_at_programming == n_out_of_range == hwa.clipped_at_programming
    clip_logs = [r for r in caplog.records if "were clipped to the device bounds" in r.getMessage()]
    assert len(clip_logs) == 2 and {r.levelname for r in clip_logs} == {level}
    assert clip_logs[0].getMessage().startswith(f"{n_out_of_range} of 2000 weights")
