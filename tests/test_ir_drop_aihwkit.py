"""aihwkit's approximate IR drop, xbarsim's implementation against aihwkit 1.2.0 itself (where installed)."""
import numpy as np
import pytest

from xbarsim.crossbar.ir_drop_approx import ir_drop_approx


@pytest.mark.parametrize("n_out, n_in, g_ratio", [(16, 64, 2000.0), (32, 256, 5.7143e5), (8, 128, 300.0)])
def test_approximation_equals_aihwkits_forward(n_out, n_in, g_ratio):
    pytest.importorskip("aihwkit")
    import torch
    from aihwkit.simulator.configs import SingleRPUConfig
    from aihwkit.simulator.configs.devices import IdealDevice
    from aihwkit.simulator.parameters.enums import BoundManagementType, NoiseManagementType
    from aihwkit.simulator.tiles import AnalogTile

    cfg = SingleRPUConfig(device=IdealDevice())
    f = cfg.forward  # no DAC, ADC, noise or management: the IR-drop correction alone
    f.is_perfect, f.inp_res, f.out_res, f.out_noise, f.inp_noise, f.w_noise = False, -1, -1, 0.0, 0.0, 0.0
    f.noise_management, f.bound_management = NoiseManagementType.NONE, BoundManagementType.NONE
    f.inp_bound, f.out_bound, f.ir_drop, f.ir_drop_g_ratio = 1e6, 1e9, 1.0, g_ratio
    tile = AnalogTile(n_out, n_in, cfg)
    rng = np.random.default_rng(0)
    w = rng.uniform(-1, 1, (n_out, n_in)).astype(np.float32)
    x = rng.uniform(-1, 1, (5, n_in)).astype(np.float32)
    tile.set_weights(torch.from_numpy(w))
    ref = tile.forward(torch.from_numpy(x)).detach().numpy().astype(np.float64)
    ours = ir_drop_approx(w.astype(np.float64), x.astype(np.float64), 1.0, g_ratio)
    assert np.abs(ours - x @ w.T).max() > 0.1  # the correction is large enough to matter
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-5 * np.abs(ref).max())  # float32 in aihwkit
