"""Lipschitz regularizers: gradient against the closed form, zero at orthogonality."""
import torch
from torch import nn

from xbarsim.training.lipschitz import LipschitzRegularizer, orthogonality_gradient


def _known_matrix():
    return torch.tensor([[1.0, 2.0, 0.0], [0.5, -1.0, 3.0]], dtype=torch.float64)


def test_orthogonality_gradient_matches_autograd_on_a_known_matrix():
    beta = 0.3
    for w0 in (_known_matrix(), _known_matrix().T.contiguous()):  # wide and tall
        lin = nn.Linear(w0.shape[1], w0.shape[0], bias=False).double()
        with torch.no_grad():
            lin.weight.copy_(w0)
        LipschitzRegularizer("orthogonal", beta)(lin).backward()
        assert torch.allclose(lin.weight.grad, orthogonality_gradient(w0, beta), rtol=1e-12, atol=1e-12)


def test_orthogonality_penalty_is_the_frobenius_norm_up_to_the_rank_deficit():
    w = _known_matrix()  # 2 x 3: ||W^T W - I_3||^2 = penalty * 2 / beta + (3 - 2)
    lin = nn.Linear(3, 2, bias=False).double()
    with torch.no_grad():
        lin.weight.copy_(w)
    beta = 2.0
    literal = ((w.T @ w - torch.eye(3, dtype=torch.float64)) ** 2).sum()
    assert torch.allclose(LipschitzRegularizer("orthogonal", beta)(lin) * 2 / beta + 1, literal)


def test_penalties_vanish_for_an_orthogonal_matrix_including_a_reshaped_conv():
    torch.manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(18, 18, dtype=torch.float64))
    conv = nn.Conv2d(2, 4, 3, bias=False).double()  # 4 x 18 after reshaping: orthonormal rows
    lin = nn.Linear(18, 18).double()
    with torch.no_grad():
        conv.weight.copy_(q[:4].reshape(4, 2, 3, 3))
        lin.weight.copy_(q)
    model = nn.Sequential(conv, nn.Flatten(), lin)
    for kind in ("orthogonal", "spectral"):
        assert float(LipschitzRegularizer(kind, 1.0)(model).detach()) < 1e-20
    with torch.no_grad():
        lin.weight.mul_(2.0)  # sigma_max = 2: spectral penalty beta/2 (2 - 1)^2
    assert abs(float(LipschitzRegularizer("spectral", 1.0)(model).detach()) - 0.5) < 1e-10


def test_zero_beta_and_bad_values():
    import pytest
    assert float(LipschitzRegularizer(beta=0.0)(nn.Linear(3, 3))) == 0.0
    with pytest.raises(ValueError):
        LipschitzRegularizer(kind="frobenius")
    with pytest.raises(ValueError):
        LipschitzRegularizer(beta=-1.0)
