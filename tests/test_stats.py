"""Means and 95 % intervals over seeds (modlib.core.stats), and the sparsity measures behind the
sparse control (near_zero_share, ScatteredMaskLoss)."""

import math

import pytest
import torch
from torch import nn

from modlib.core.loss import ClusterabilityLoss, ScatteredMaskLoss
from modlib.core.metrics import near_zero_share
from modlib.core.stats import Interval, mean_interval, t_quantile


@pytest.mark.parametrize("df,want", [(1, 12.7062), (2, 4.3027), (4, 2.7764), (10, 2.2281),
                                     (30, 2.0423), (40, 2.0211), (120, 1.9799), (10**6, 1.96)])
def test_t_quantile_matches_the_tables(df, want):
    assert t_quantile(df) == pytest.approx(want, abs=2e-4)


def test_t_quantile_joins_the_table_and_the_expansion_smoothly():
    values = [t_quantile(df) for df in range(1, 200)]
    # strictly decreasing towards 1.96
    assert all(a > b for a, b in zip(values[:-1], values[1:], strict=True))
    assert values[-1] > 1.959963


def test_mean_interval_is_mean_plus_minus_t_sd_over_root_n():
    iv = mean_interval([1.0, 2.0, 3.0])
    half = 4.302653 * 1.0 / math.sqrt(3)
    assert (iv.mean, iv.n) == (2.0, 3)
    assert iv.low == pytest.approx(2 - half) and iv.high == pytest.approx(2 + half)
    assert iv.half_width == pytest.approx(half)
    assert iv.format(2) == f"2.00 ± {half:.2f}"


def test_one_value_gives_no_interval_and_no_finding():
    iv = mean_interval([0.5], null=0.0)
    assert (iv.mean, iv.low, iv.high, iv.n, iv.finding) == (0.5, None, None, 1, False)
    assert iv.format() == "0.500"
    assert mean_interval([], null=0.0) == Interval(None, None, None, 0, 0.0)
    assert mean_interval([None, float("nan")]).format() == "n/a"


def test_undefined_values_are_left_out():
    iv = mean_interval([1.0, None, float("nan"), 3.0, float("inf")])
    assert iv.n == 2 and iv.mean == 2.0


@pytest.mark.parametrize("values,null,finding", [
    ([-0.010, -0.006, -0.008], 0.0, True),  # all below 0, tight: excludes no effect
    ([-0.010, 0.004, -0.007], 0.0, False),  # straddles 0
    ([0.4, 0.5, 0.45], 1.0, True),  # a ratio well below 1
    ([0.4, 0.5, 0.45], None, False),  # nothing to test against
])
def test_a_finding_needs_an_interval_that_excludes_no_effect(values, null, finding):
    assert mean_interval(values, null=null).finding is finding
    assert mean_interval(values, null=null).to_dict()["finding"] is finding


def test_the_interval_covers_the_true_mean_95_percent_of_the_time():
    gen = torch.Generator().manual_seed(0)
    trials, covered = 4000, 0
    for _ in range(trials):
        xs = (torch.randn(3, generator=gen) + 5.0).tolist()
        iv = mean_interval(xs)
        covered += iv.low <= 5.0 <= iv.high
    assert 0.935 <= covered / trials <= 0.965  # binomial sd 0.0034 around 0.95


def test_near_zero_share_counts_entries_below_a_share_of_the_largest():
    W = torch.tensor([[1.0, 0.04, -0.049], [0.06, 0.0, -1.0]])
    assert near_zero_share(W) == pytest.approx(3 / 6)
    assert near_zero_share(W, rel=0.01) == pytest.approx(1 / 6)
    assert near_zero_share(torch.ones(3, 4)) == 0.0


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(),
                         nn.Linear(16, 3))


def test_scattered_masks_keep_the_block_count_at_other_positions():
    loss = ScatteredMaskLoss(_net(), 4, layers=["2"], seed=1)
    part = loss.partitions["2"]
    mask = loss.masks["2"]
    assert mask.shape == part.mask().shape and mask.dtype == torch.bool
    assert int(mask.sum()) == int(part.mask().sum()) == 64
    overlap = float((mask & part.mask()).sum()) / 64
    assert overlap < 0.5  # about 1/4 by chance; 1 would be the blocks themselves
    again = ScatteredMaskLoss(_net(), 4, layers=["2"], seed=1).masks["2"]
    assert torch.equal(again, mask)  # drawn from the seed
    assert not torch.equal(ScatteredMaskLoss(_net(), 4, layers=["2"], seed=2).masks["2"], mask)


def test_scattered_loss_value_and_gradient_are_the_masked_share():
    net = _net()
    loss = ScatteredMaskLoss(net, 4, layers=["2"], seed=0)
    W, M = net[2].weight, loss.masks["2"].float()
    want = 1 - (W.detach() ** 2 * M).sum() / (W.detach() ** 2).sum()
    value = loss()
    assert float(value.detach()) == pytest.approx(float(want), rel=1e-6)
    value.backward()
    Wd = W.detach().clone().requires_grad_(True)
    (1 - (Wd**2 * M).sum() / (Wd**2).sum()).backward()
    assert torch.allclose(W.grad, Wd.grad, atol=1e-7)
    # training against it sparsifies as the clusterability loss does, but leaves no blocks
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    for _ in range(300):
        opt.zero_grad()
        loss().backward()
        opt.step()
    assert float(loss().detach()) < 0.05
    assert near_zero_share(net[2].weight.detach()) > 0.5
    blocks = ClusterabilityLoss(net, 4, layers=["2"]).clusterability()["2"]
    assert blocks < 0.5  # the block partition of the sparse layer: near chance


def test_scattered_loss_refuses_a_changed_layer():
    net = _net()
    loss = ScatteredMaskLoss(net, 4, layers=["2"])
    net[2].weight = nn.Parameter(torch.zeros(8, 16))
    with pytest.raises(ValueError, match="Build a new ScatteredMaskLoss"):
        loss()
