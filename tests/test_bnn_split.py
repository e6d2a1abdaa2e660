"""BNN input splitting: layers, threshold folding, majority merge, deployment on arrays, ADC counting."""
import math

import numpy as np
import pytest
import torch

from xbarsim.devices import BinaryCellConfig
from xbarsim.mapping.bnn_cost import BlockGeometry, bnn_geometry, mapping_cost
from xbarsim.mapping.bnn_deploy import deploy_bnn
from xbarsim.mapping.bnn_layers import (BinaryActivation, BinaryBlock, MajorityMerge, equal_group_count,
                                        fold_threshold, group_bounds, threshold_decisions)
from xbarsim.mapping.bnn_networks import bnn_cnn, bnn_mlp
from xbarsim.mapping.bnn_split import split_layer, split_network
from xbarsim.training.bnn import BNNTrainConfig, clamp_bnn_parameters, squared_hinge_loss, train_bnn


def _trained_stats(model, x, steps=3):
    """Run a few training-mode forwards so the BatchNorms hold non-trivial running statistics."""
    model.train()
    with torch.no_grad():
        for _ in range(steps):
            model(x)
    return model.eval()


# ----------------------------------------------------------------------------- groups
def test_groups_are_contiguous_slices_of_at_most_A_inputs():
    assert group_bounds(2048, 128) == [(a, a + 128) for a in range(0, 2048, 128)]
    assert group_bounds(300, 128) == [(0, 128), (128, 256), (256, 300)]
    assert group_bounds(100, 128) == [(0, 100)] == group_bounds(100, None)


def test_equal_group_rule_is_smallest_divisor_at_least_ceil_N_over_A():
    # the authors' CIFAR conv layers at A = 128: 128C3 -> 1152 inputs: 9 groups; 256C3 -> 2304: 18; 512C3 -> 4608: 36
    assert [equal_group_count(n, 128) for n in (1152, 2304, 4608)] == [9, 18, 36]
    assert equal_group_count(288, 128) == 3 and equal_group_count(1568, 128) == 14  # 13 does not divide 1568
    assert group_bounds(1568, 128, equal_groups=True) == [(a, a + 112) for a in range(0, 1568, 112)]


def test_conv_groups_follow_torch_fan_in_order_and_may_cut_a_kernel():
    torch.manual_seed(0)
    blk = BinaryBlock("conv", 3, 4, groups=[(0, 10), (10, 20), (20, 27)])  # 10 does not split a 3x3 kernel
    x = torch.randn(2, 3, 5, 5).sign()
    s = blk.preactivation(x).view(2, 3, 4, 5, 5)
    wb = blk.binary_weight()
    rows = torch.nn.functional.unfold(x, 3, padding=1)  # (B, 27, L): rows in (C_in, kh, kw) order
    for g, (a, b) in enumerate(blk.groups):
        ref = (wb[:, a:b] @ rows[:, a:b, :]).view(2, 4, 5, 5)
        assert torch.equal(s[:, g], ref)
    assert torch.equal(s.sum(1), torch.nn.functional.conv2d(x, wb.view(4, 3, 3, 3), padding=1))


# ----------------------------------------------------------------------------- folding
@pytest.mark.parametrize("gamma_sign", [1.0, -1.0])
def test_folded_threshold_equals_batchnorm_then_sign(gamma_sign):
    torch.manual_seed(1)
    bn = torch.nn.BatchNorm1d(64).eval()
    with torch.no_grad():
        bn.weight.copy_(gamma_sign * torch.empty(64).uniform_(0.05, 2.0))
        bn.bias.copy_(torch.empty(64).uniform_(-3, 3))  # beta of both signs
        bn.running_mean.copy_(torch.empty(64).uniform_(-20, 20))  # running means of both signs
        bn.running_var.copy_(torch.empty(64).uniform_(0.5, 50))
    s = torch.arange(-60, 61, dtype=torch.float32)[:, None].expand(-1, 64).contiguous()  # integer currents
    theta, sign = fold_threshold(bn)
    bn64 = (s.double() - bn.running_mean.double()) / torch.sqrt(bn.running_var.double() + bn.eps) \
        * bn.weight.double() + bn.bias.double()
    expected = torch.where(bn64 >= 0, 1.0, -1.0).float()
    assert torch.equal(threshold_decisions(s, theta, sign), expected)
    assert torch.all(sign == gamma_sign)
    assert (expected == 1).any() and (expected == -1).any()


def test_folded_threshold_exact_ties_and_zero_gamma():
    bn = torch.nn.BatchNorm1d(4).eval()
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([0.5, -0.5, 0.0, 0.0]))
        bn.bias.copy_(torch.tensor([0.0, 0.0, 0.3, -0.3]))
        bn.running_mean.copy_(torch.tensor([3.0, 3.0, 0.0, 0.0]))
    theta, sign = fold_threshold(bn)
    s = torch.tensor([[3.0, 3.0, -100.0, 100.0], [2.0, 4.0, 100.0, -100.0]])
    # BN(3) = 0 exactly: +1 for both signs of gamma; gamma = 0: the sign of beta whatever s is
    assert torch.equal(threshold_decisions(s, theta, sign), torch.tensor([[1.0, 1.0, 1.0, -1.0],
                                                                          [-1.0, -1.0, 1.0, -1.0]]))


def test_eval_decisions_match_float_batchnorm_on_a_trained_layer():
    torch.manual_seed(2)
    blk = BinaryBlock("linear", 200, 50)
    x = torch.randn(300, 200).sign()
    _trained_stats(blk, x)
    s = blk.preactivation(x)
    bn = blk.bn(s)
    far = bn.abs() > 1e-4  # away from float32 ties, BN then sign must agree with the folded threshold
    assert torch.equal(blk(x)[far], torch.where(bn >= 0, 1.0, -1.0)[far])


# ----------------------------------------------------------------------------- merge and STEs
def test_majority_tie_at_even_G_goes_to_plus_one_and_backward_copies_gradient():
    a = torch.tensor([[[1.0], [-1.0], [1.0], [-1.0]], [[-1.0], [-1.0], [1.0], [-1.0]]], requires_grad=True)
    y = MajorityMerge.apply(a)  # (B=2, G=4, out=1): sums 0 (tie) and -2
    assert torch.equal(y, torch.tensor([[1.0], [-1.0]]))
    y.backward(torch.tensor([[2.0], [-3.0]]))
    assert torch.equal(a.grad, torch.tensor([[2.0] * 4, [-3.0] * 4]).unsqueeze(-1))


def test_split_block_with_even_groups_resolves_ties_to_plus_one():
    blk = BinaryBlock("linear", 4, 1, groups=[(0, 2), (2, 4)]).eval()
    with torch.no_grad():
        blk.weight.fill_(1.0)
    blk.bn.running_mean.zero_()  # theta = 0 for both groups: group sums 2 -> +1, -2 -> -1
    x = torch.tensor([[1.0, 1.0, -1.0, -1.0]])
    assert torch.equal(blk(x), torch.tensor([[1.0]]))


def test_binary_activation_is_sign_with_clipped_straight_through_gradient():
    y = torch.tensor([-2.0, -1.0, -0.3, 0.0, 0.5, 1.0, 1.5], requires_grad=True)
    out = BinaryActivation.apply(y)
    assert torch.equal(out, torch.tensor([-1.0, -1.0, -1.0, 1.0, 1.0, 1.0, 1.0]))
    out.sum().backward()
    assert torch.equal(y.grad, torch.tensor([0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0]))


def test_split_layer_without_retraining_gives_each_group_its_share_of_the_threshold():
    torch.manual_seed(3)
    blk = BinaryBlock("linear", 300, 20)
    _trained_stats(blk, torch.randn(200, 300).sign())
    with torch.no_grad():
        blk.bn.bias.uniform_(-1, 1)
    split = split_layer(blk, 128)
    assert split.n_groups == 3 and torch.equal(split.weight, blk.weight)
    std = torch.sqrt(blk.bn.running_var.double() + blk.bn.eps)
    theta = blk.bn.running_mean.double() - blk.bn.bias.double() * std / blk.bn.weight.double()
    for g, (a, b) in enumerate(split.groups):
        sl = slice(20 * g, 20 * (g + 1))
        std_g = torch.sqrt(split.bn.running_var[sl].double() + split.bn.eps)
        theta_g = split.bn.running_mean[sl].double() - split.bn.bias[sl].double() * std_g / split.bn.weight[sl]
        torch.testing.assert_close(theta_g, theta * (b - a) / 300, rtol=1e-5, atol=1e-4)


def test_split_network_keeps_first_layer_and_classifier_unsplit():
    net = split_network(bnn_mlp((784, 300, 300, 10)), 128)
    assert [b.n_groups for b in net if isinstance(b, BinaryBlock)] == [1, 3, 1]
    cnn = split_network(bnn_cnn(), 128, equal_groups=True)
    assert [b.n_groups for b in cnn if isinstance(b, BinaryBlock)] == [1, 2, 2, 3, 14, 1]


# ----------------------------------------------------------------------------- deployment
@pytest.mark.parametrize("A", [None, 128, 100])
def test_ideal_deployment_reproduces_the_torch_mlp_bit_for_bit(A):
    torch.manual_seed(4)
    x = torch.rand(200, 784)
    net = _trained_stats(split_network(_trained_stats(bnn_mlp((784, 300, 300, 10)), x), A,
                                       equal_groups=A == 100), x)
    with torch.no_grad():
        ref = net(x)
    dep = deploy_bnn(net, BinaryCellConfig(), seed=0)
    out = dep(x)
    assert torch.equal(out, ref)
    c = dep.counters()
    assert c["sense_amp"] > 0 and c["adc"] == 0


def test_ideal_deployment_reproduces_the_torch_cnn_bit_for_bit():
    torch.manual_seed(5)
    x = torch.rand(16, 1, 28, 28)
    net = _trained_stats(split_network(_trained_stats(bnn_cnn((8, 8, 16, 16), 32), x), 64, equal_groups=True), x)
    with torch.no_grad():
        assert torch.equal(deploy_bnn(net)(x), net(x))


def test_deployment_programs_complementary_pairs_and_folded_thresholds():
    torch.manual_seed(6)
    net = _trained_stats(bnn_mlp((784, 40, 30, 10)), torch.rand(50, 784))
    cells = BinaryCellConfig(g_on=2.0, on_off_ratio=10.0)
    dep = deploy_bnn(net, cells)
    arr, blk = dep.stages[2].arrays[0], dep.stages[2].block
    wb = blk.binary_weight().detach().numpy()
    g_plus = arr.get_conductances()
    np.testing.assert_allclose(g_plus, np.where(wb > 0, 2.0, 0.2), rtol=1e-6)
    np.testing.assert_allclose(arr.reference, np.where(wb > 0, 0.2, 2.0), rtol=1e-6)
    theta, sign = fold_threshold(blk.bn)
    np.testing.assert_allclose(arr.sense_amp_threshold[0], theta.numpy() * 1.8, rtol=1e-6)
    np.testing.assert_array_equal(arr.sense_amp_sign[0], sign.numpy())


def test_variation_is_lognormal_with_the_configured_sigma():
    cells = BinaryCellConfig(variation=0.2)
    gp, gm = cells.sample_pairs(np.ones((200, 200)), seed=1)
    logs = np.log(gp.ravel())
    n = logs.size
    assert abs(logs.mean()) < 4 * 0.2 / math.sqrt(n)
    assert abs(logs.std() - 0.2) < 4 * 0.2 / math.sqrt(2 * n)
    assert np.all(gm == 0)  # infinite on/off ratio: G_off = 0


def test_stuck_cells_follow_their_probabilities():
    cells = BinaryCellConfig(on_off_ratio=100.0, stuck_on_prob=0.1, stuck_off_prob=0.05)
    gp, gm = cells.sample_pairs(np.full((300, 300), -1.0), seed=2)  # G+ programmed off, G- on
    n = gp.size
    p_on = float(np.mean(gp == 1.0))
    p_off = float(np.mean(gm == 0.01))
    assert abs(p_on - 0.1) < 4 * math.sqrt(0.1 * 0.9 / n)
    assert abs(p_off - 0.05) < 4 * math.sqrt(0.05 * 0.95 / n)


def test_binary_cell_config_is_validated():
    with pytest.raises(ValueError, match="on_off_ratio"):
        BinaryCellConfig(on_off_ratio=0.5)
    with pytest.raises(ValueError, match="variation"):
        BinaryCellConfig(variation=-0.1)
    with pytest.raises(ValueError, match="stuck"):
        BinaryCellConfig(stuck_on_prob=0.7, stuck_off_prob=0.6)
    c = BinaryCellConfig(on_off_ratio=10.0, variation=0.1)
    assert BinaryCellConfig.from_dict(c.to_dict()) == c and BinaryCellConfig().ideal


# ----------------------------------------------------------------------------- cost
def test_conventional_adc_count_on_a_hand_computed_two_layer_case():
    # hidden layer: 300 inputs, 4 outputs on 128-row arrays: 3 tiles (128, 128, 44) -> 3 x 4 ADCs of
    # ceil(log2(129)) = 8 bits, 2 x 4 partial-sum adds + 4 compares; classifier 4 -> 2: one tile,
    # 2 ADCs of ceil(log2(5)) = 3 bits.  Arrays: 3 x ceil(8/128) + 1.
    geo = [BlockGeometry(300, 4, 1, (300,)), BlockGeometry(4, 2, 1, (4,), classifier=True)]
    conv = mapping_cost(geo, 128, "conventional")
    assert conv["inventory"].n_adcs == {8: 12, 3: 2}
    assert conv["counts"].adc_conversions == {8: 12, 3: 2}
    assert conv["counts"].digital_adds == 2 * 4 + 4 and conv["inventory"].n_arrays == 4
    assert conv["hidden_adc_count"] == 12
    split_geo = [BlockGeometry(300, 4, 1, (128, 128, 44)), geo[1]]
    split = mapping_cost(split_geo, 128, "split")
    assert split["inventory"].n_adcs == {3: 2} and split["hidden_adc_count"] == 0
    assert split["counts"].sense_amp_decisions == 12 and split["inventory"].n_sense_amps == 12
    assert split["report"].energy_j["adc"] < conv["report"].energy_j["adc"]


def test_geometry_of_the_paper_mlp_and_split_mlp_needs_no_hidden_adc():
    net = split_network(bnn_mlp(), 128)
    geo = bnn_geometry(net, (784,))
    assert [g.groups for g in geo][1] == (128,) * 16
    assert mapping_cost(geo, 128, "split")["hidden_adc_count"] == 0
    assert mapping_cost(bnn_geometry(bnn_mlp(), (784,)), 128, "conventional")["hidden_adc_count"] == 2 * 16 * 2048


# ----------------------------------------------------------------------------- training
def test_squared_hinge_loss_against_pm1_targets():
    logits = torch.tensor([[0.5, -2.0, 1.5]])
    # targets (+1, -1, -1) for label 0: (1-0.5)^2 + 0 + (1+1.5)^2, mean over 3
    assert math.isclose(float(squared_hinge_loss(logits, torch.tensor([0]))), (0.25 + 6.25) / 3, rel_tol=1e-6)


def test_training_clamps_latent_weights_and_bn_and_learns_a_separable_task():
    torch.manual_seed(7)
    x = torch.rand(400, 784)
    y = (x[:, :392].sum(1) > x[:, 392:].sum(1)).long()
    net = bnn_mlp((784, 64, 64, 2))
    hist = train_bnn(net, x, y, BNNTrainConfig(epochs=3, batch_size=50, lr=2 ** -6), seed=0, x_test=x, y_test=y)
    for m in net.modules():
        if isinstance(m, BinaryBlock):
            assert m.weight.abs().max() <= 1 and m.bn.weight.abs().max() <= 1 and m.bn.bias.abs().max() <= 1
    assert hist["test_acc"][-1] > 0.75
    with torch.no_grad():
        net[1].weight.mul_(5)
    clamp_bnn_parameters(net)
    assert net[1].weight.abs().max() <= 1
