"""One aihwkit measurement, run by the benchmarks in aihwkit's own interpreter; prints one JSON line.

    AIHWKIT_PYTHON benchmarks/_aihwkit_worker.py engine '{"repeats": 30, "threads": 1}'
    AIHWKIT_PYTHON benchmarks/_aihwkit_worker.py epoch  '{"files": {...}, "seed": 0, ...}'

It imports only aihwkit, torch, numpy, the standard library and the benchmarks'
standard-library-only ``_compare`` (never xbarsim),
and mirrors, input for input, what the xbarsim side of the same benchmark does
(see ``bench_engine.py`` and ``bench_train_epoch.py`` for what is measured).
Every configuration is aihwkit 1.2.0's default except what is named here:
``SingleRPUConfig(device=SoftBoundsDevice())``, i.e. its default IO (forward and
backward: 7-bit DAC, 9-bit ADC, out_noise 0.06, abs-max noise management,
iterative bound management), update BL 31 with update and BL management,
digital biases (``mapping.digital_bias=True``), no weight remapping.
"""
from __future__ import annotations

import gzip
import json
import os
import platform
import struct
import sys
import time

import numpy as np
import torch

import _compare  # standard library only: the timing helpers shared with the xbarsim side


def _threads(params: dict) -> dict:
    threads = int(params.get("threads") or 0)
    if threads:
        torch.set_num_threads(threads)
    return {"torch_threads": torch.get_num_threads(), "torch_interop_threads": torch.get_num_interop_threads(),
            **{k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                              "OMP_WAIT_POLICY")}}


def _versions() -> dict:
    import aihwkit
    return {"aihwkit": aihwkit.__version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


def _rpu_config():
    from aihwkit.simulator.configs import SingleRPUConfig
    from aihwkit.simulator.configs.devices import SoftBoundsDevice
    return SingleRPUConfig(device=SoftBoundsDevice())


# ------------------------------------------------------------------ engine
def measure_engine(params: dict) -> dict:
    """(a) forward read 512x512 batch 256 (and a plain matmul, same process); (b) the 256x784 array step."""
    from aihwkit.simulator.tiles import AnalogTile

    repeats = int(params.get("repeats", 30))
    out: dict = {}
    # (a) same weights and inputs as bench_engine's xbarsim side (same numpy generator and draws)
    rng = np.random.default_rng(0)
    w = rng.uniform(-0.1, 0.1, (512, 512)).astype(np.float32)
    x = torch.from_numpy(rng.uniform(-1, 1, (256, 512)).astype(np.float32))
    tile = AnalogTile(512, 512, _rpu_config())
    tile.set_weights(torch.from_numpy(w))
    tile.eval()
    wt = tile.get_weights()[0].contiguous()
    with torch.no_grad():
        t_plain, t_fwd, raw = _compare.paired_median_times(lambda: x @ wt.T, lambda: tile.joint_forward(x, is_test=True),
                                                   repeats)
    out["forward"] = {"seconds": t_fwd, "plain_matmul_seconds": t_plain, "ratio_to_matmul": t_fwd / t_plain,
                      "raw_seconds": raw}
    # (b) forward + backward + update of one 256x784 tile, batch 100
    rng = np.random.default_rng(1)
    w = rng.uniform(-0.1, 0.1, (256, 784)).astype(np.float32)
    xs = rng.uniform(0, 1, (100, 784)).astype(np.float32)
    xs[rng.random(xs.shape) < 0.8] = 0.0
    d = torch.from_numpy(rng.normal(0, 0.1, (100, 256)).astype(np.float32))
    xs = torch.from_numpy(xs)
    tile = AnalogTile(256, 784, _rpu_config())
    tile.set_weights(torch.from_numpy(w))
    tile.set_learning_rate(float(params.get("lr", 0.01)))
    tile.train()

    def step():
        tile.joint_forward(xs, is_test=False)
        tile.backward(d)
        tile.update(xs, d)

    with torch.no_grad():
        t_step, raw = _compare.median_time(step, max(5, repeats // 3))
    out["step"] = {"seconds": t_step, "samples_per_s": 100 / t_step, "raw_seconds": raw}
    return out


# ------------------------------------------------------------------ epoch
def _read_idx(path: str) -> np.ndarray:
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = data[3]
    shape = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _load_data(params: dict) -> dict:
    """The xbarsim loader's arrays: pixels / 255 as float32 (N, 784), int64 labels, the same subsets."""
    if params.get("files"):
        raw = {role: _read_idx(path) for role, path in params["files"].items()}
    else:
        with np.load(params["npz"], allow_pickle=False) as archive:
            raw = {role: archive[role] for role in ("train_images", "train_labels", "test_images", "test_labels")}
    data = {}
    for split in ("train", "test"):
        images = raw[f"{split}_images"]
        data[f"x_{split}"] = torch.from_numpy(images.reshape(len(images), -1).astype(np.float32) / np.float32(255))
        data[f"y_{split}"] = torch.from_numpy(raw[f"{split}_labels"].astype(np.int64))
    # xbarsim.experiments.train.load_train_data: first N of a permutation from default_rng(12345), sorted
    pick = np.random.default_rng(12345)
    n_train, n_test = int(params.get("train_subset", 0)), int(params.get("test_subset", 0))
    if n_train and n_train < len(data["y_train"]):
        idx = torch.from_numpy(np.sort(pick.permutation(len(data["y_train"]))[:n_train]))
        data["x_train"], data["y_train"] = data["x_train"][idx], data["y_train"][idx]
    if n_test and n_test < len(data["y_test"]):
        idx = torch.from_numpy(np.sort(pick.permutation(len(data["y_test"]))[:n_test]))
        data["x_test"], data["y_test"] = data["x_test"][idx], data["y_test"][idx]
    data["x_train"], data["x_test"] = data["x_train"].contiguous(), data["x_test"].contiguous()
    return data


def _build(params: dict, seed: int):
    """xbarsim.experiments.train.build_mlp's float network (same seed, same init), converted by aihwkit."""
    from torch import nn
    from aihwkit.nn.conversion import convert_to_analog
    from aihwkit.optim import AnalogSGD

    torch.manual_seed(seed)
    sizes = (784, *params.get("hidden", (256, 128)), 10)
    layers = []
    for k in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[k], sizes[k + 1]))
        layers.append(nn.Sigmoid() if k < len(sizes) - 2 else nn.LogSoftmax(dim=1))
    model = convert_to_analog(nn.Sequential(*layers), _rpu_config())
    model.train()
    opt = AnalogSGD(model.parameters(), lr=float(params.get("lr", 0.5)))
    opt.regroup_param_groups(model)
    return model, opt


def _train(model, opt, xs, ys, batch_size: int) -> float:
    loss_fn = torch.nn.NLLLoss()
    loss_sum, n = 0.0, len(ys)
    for k in range(0, n, batch_size):
        opt.zero_grad()
        loss = loss_fn(model(xs[k:k + batch_size]), ys[k:k + batch_size])
        loss.backward()
        opt.step()
        loss_sum += float(loss.detach()) * min(batch_size, n - k)
    return loss_sum / max(n, 1)


@torch.no_grad()
def _evaluate(model, x, y, batch_size: int = 1000) -> float:
    model.eval()
    correct = sum(int((model(x[k:k + batch_size]).argmax(1) == y[k:k + batch_size]).sum())
                  for k in range(0, len(y), batch_size))
    model.train()
    return correct / max(len(y), 1)


def measure_epoch(params: dict) -> dict:
    """One epoch of the 784-256-128-10 sigmoid MLP, batch 10, AnalogSGD(lr), timed like xbarsim's run_train."""
    seed, bs = int(params.get("seed", 0)), int(params.get("batch_size", 10))
    data = _load_data(params)
    # warm-up outside the timed region, like the xbarsim side (200 samples, 100 test images)
    model, opt = _build(params, seed)
    _train(model, opt, data["x_train"][:200], data["y_train"][:200], bs)
    _evaluate(model, data["x_test"][:100], data["y_test"][:100])
    model, opt = _build(params, seed)
    n = len(data["y_train"])
    t0 = time.perf_counter()
    # the same data order as xbarsim.experiments.train.epoch_permutation(n, seed, 0)
    perm = torch.from_numpy(np.random.default_rng([seed, 0]).permutation(n))
    train_loss = _train(model, opt, data["x_train"][perm], data["y_train"][perm], bs)
    epoch_seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    acc = _evaluate(model, data["x_test"], data["y_test"])
    return {"epoch_seconds": epoch_seconds, "test_acc": acc, "train_loss": train_loss,
            "eval_seconds": time.perf_counter() - t1, "train_samples": n, "test_samples": len(data["y_test"]),
            "tiles_per_layer": [len(list(m.analog_tiles())) for m in model.analog_layers()]}


def lenet5(seed: int):
    """aihwkit's LeNet-5 example network (float), built from ``torch.manual_seed(seed)``; bench_lenet_epoch.py
    builds the same one on the xbarsim side."""
    from torch import nn

    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 16, 5), nn.Tanh(), nn.MaxPool2d(2), nn.Conv2d(16, 32, 5), nn.Tanh(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(512, 128), nn.Tanh(), nn.Linear(128, 10),
                         nn.LogSoftmax(dim=1))


def measure_lenet(params: dict) -> dict:
    """In-situ LeNet-5 on the first ``train_samples`` images (every layer analog, default SoftBounds), timed."""
    from aihwkit.nn.conversion import convert_to_analog
    from aihwkit.optim import AnalogSGD

    seed, bs, n = int(params.get("seed", 0)), int(params.get("batch_size", 10)), int(params["train_samples"])
    data = _load_data(params)
    xs, ys = data["x_train"][:n].reshape(-1, 1, 28, 28).contiguous(), data["y_train"][:n]

    def build():
        model = convert_to_analog(lenet5(seed), _rpu_config())
        model.train()
        opt = AnalogSGD(model.parameters(), lr=float(params.get("lr", 0.1)))
        opt.regroup_param_groups(model)
        return model, opt

    model, opt = build()
    _train(model, opt, xs[:100], ys[:100], bs)  # warm-up
    model, opt = build()
    t0 = time.perf_counter()
    loss = _train(model, opt, xs, ys, bs)
    seconds = time.perf_counter() - t0
    xt = data["x_test"][:1000].reshape(-1, 1, 28, 28)
    return {"epoch_seconds": seconds, "train_loss": loss, "train_samples": n,
            "test_acc": _evaluate(model, xt, data["y_test"][:1000])}


MEASUREMENTS = {"engine": measure_engine, "epoch": measure_epoch, "lenet": measure_lenet}


def main() -> None:
    if len(sys.argv) != 3 or sys.argv[1] not in MEASUREMENTS:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(MEASUREMENTS)}}} JSON_PARAMS")
    params = json.loads(sys.argv[2])
    threads = _threads(params)
    result = MEASUREMENTS[sys.argv[1]](params)
    result.update(side="aihwkit", measurement=sys.argv[1], versions=_versions(), threads=threads)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
