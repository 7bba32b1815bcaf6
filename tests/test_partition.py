import pytest
import torch

from modlib import Partition, contiguous_labels, contiguous_partition


def test_partition_basics():
    p = Partition(torch.tensor([0, 0, 1]), torch.tensor([1, 0]), k=2)
    assert p.shape == (3, 2)
    assert p.mask().tolist() == [[False, True], [False, True], [True, False]]
    rows, cols = p.sizes()
    assert rows.tolist() == [2, 1] and cols.tolist() == [1, 1]


def test_permute_gives_block_diagonal():
    rows, cols = torch.tensor([1, 0, 1, 0]), torch.tensor([0, 1, 0])
    p = Partition(rows, cols, 2)
    W = p.mask().float()
    Wp = p.permute(W)
    assert torch.equal(Wp, torch.block_diag(torch.ones(2, 2), torch.ones(2, 1)))


def test_equality_and_device():
    p = contiguous_partition(6, 4, 2)
    assert p == contiguous_partition(6, 4, 2)
    assert p != contiguous_partition(6, 4, 3)
    assert p.to("cpu") == p


@pytest.mark.parametrize("n,k", [(10, 3), (7, 7), (64, 4), (5, 1), (13, 4)])
def test_contiguous_labels_equal_and_contiguous(n, k):
    labels = contiguous_labels(n, k)
    counts = torch.bincount(labels, minlength=k)
    assert int(counts.max() - counts.min()) <= 1
    assert torch.all(labels[1:] >= labels[:-1])


def test_contiguous_partition_aligns_consecutive_layers():
    first = contiguous_partition(30, 10, 4)
    second = contiguous_partition(7, 30, 4)
    assert torch.equal(first.rows, second.cols)


def test_contiguous_partition_groups_flattened_channels():
    p = contiguous_partition(8, 6 * 5, 4, in_groups=6)
    channel = contiguous_labels(6, 4)
    assert torch.equal(p.cols.view(6, 5), channel[:, None].expand(6, 5))


@pytest.mark.parametrize("kwargs,err,match", [
    (dict(rows=torch.tensor([0, 2]), cols=torch.tensor([0]), k=2), ValueError,
     r"'rows' labels must lie in \[0, 2\) for k=2. Got values in \[0, 2\]"),
    (dict(rows=torch.tensor([0]), cols=torch.tensor([-1]), k=2), ValueError, r"'cols' labels"),
    (dict(rows=torch.tensor([[0]]), cols=torch.tensor([0]), k=1), ValueError,
     r"'rows' must be 1-D. Got shape \(1, 1\)"),
    (dict(rows=torch.tensor([0.0]), cols=torch.tensor([0]), k=1), TypeError,
     r"'rows' must hold integer labels. Got dtype torch.float32"),
    (dict(rows=[0], cols=torch.tensor([0]), k=1), TypeError, r"'rows' must be a torch.Tensor"),
    (dict(rows=torch.tensor([0]), cols=torch.tensor([0]), k=0), ValueError,
     r"'k' must be an int >= 1. Got 0"),
    (dict(rows=torch.tensor([0]), cols=torch.tensor([0]), k=1.0), TypeError,
     r"'k' must be an int >= 1\. Got float"),
])
def test_partition_errors(kwargs, err, match):
    with pytest.raises(err, match=match):
        Partition(**kwargs)


@pytest.mark.parametrize("call,match", [
    (lambda: contiguous_labels(3, 4), r"'k' must be an int in \[1, 3\] for 3 neurons. Got 4"),
    (lambda: contiguous_labels(0, 1), r"'n' must be an int >= 1. Got 0"),
    (lambda: contiguous_partition(4, 10, 2, in_groups=3),
     r"'in_groups' must be a positive divisor of n_in=10. Got 3"),
    (lambda: Partition(torch.tensor([0]), torch.tensor([0]), 1).permute(torch.ones(2, 1)),
     r"'W' of shape \(2, 1\) does not fit a partition of 1 rows and 1 columns"),
])
def test_contiguous_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()
