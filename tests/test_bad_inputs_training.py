"""Every public name of modlib.training refuses bad input up front.

The companion of ``tests/test_bad_inputs.py`` (core, analysis, hooks) for the modules of
modlib.training, in the same scikit-learn ``test_common`` style: one table of bad calls, each
with the exception it must raise and the words its message must hold (the argument's name and
what is expected), so that no bad input ends in an error from inside torch, numpy or Python, in
a silent NaN or empty result, or after work (a download, a training run) has begun.
:func:`test_every_public_name_has_a_bad_input_row` fails when a new public name (one in an
``__all__`` of a module of modlib.training) comes without a row here.

No row reaches the network or trains: every bad argument is refused before the first download
or step (``pretrained`` is called only with arguments that are refused at once).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import os
import pkgutil
import tempfile
import typing
from pathlib import Path
from unittest import mock

import pytest
import torch
from torch import nn

import modlib.training
from modlib.training.bimt import (
    BIMTLoss,
    connection_cost,
    connection_lengths,
    place_costs,
    swap_deltas,
)
from modlib.training.data import (
    ByteTokenizer,
    get_tokenizer,
    load,
    load_cifar10,
    load_mnist,
    load_text,
    loaders,
    make_cifar_standin,
    modular_addition,
    token_blocks,
)
from modlib.training.hub import (
    display_name,
    from_hub,
    hub_id,
    load_causal_lm,
    load_tokenizer,
    unreadable,
)
from modlib.training.models import (
    MnistCNN,
    ModAddTransformer,
    PaperCifarCNN,
    PaperMLP,
    tiny_gpt2,
    tiny_gpt_neox,
)
from modlib.training.precision import amp_plan, autocast, grad_scaler
from modlib.training.profiles import PROFILES, LanguageModel, Profile, profile
from modlib.training.sources import (
    cannot_reach,
    caused_by,
    load_saved,
    reachable,
    reason,
    save_atomic,
    say_offline,
    unusable,
)
from modlib.training.train import History, TrainConfig, evaluate, fit, load_checkpoint, world_size
from modlib.training.vision import imagenet_resnet18
from modlib.training.zoo import pretrained
from tests.badinput import assert_every_name_has_a_row, assert_refused, row_ids

# Public names that take no argument to check.
ALLOWED_WITHOUT_ROW = {
    "Precision", "Plan", "LLMName", "ProfileName", "Name",  # typing.Literal aliases
    "NETWORK_ERRORS", "WIKITEXT",  # constant tuples (of exception classes; of Hub names)
    "LLM_MODELS", "LLM_ALIASES", "PROFILES", "LABELS",  # constant dicts of the course's names
    "DataSplits", "TextData", "Pretrained",  # result records (dataclasses) the loaders return
    "Unreachable",  # an exception class the loaders raise
    # functions of no argument (they read the environment or the Hugging Face cache):
    "cache_dir", "hub_unavailable", "load_wikitext", "is_main_process",
}


def training_modules() -> list:
    """Every module of modlib.training."""
    package = modlib.training
    return [importlib.import_module(f"{package.__name__}.{info.name}")
            for info in pkgutil.iter_modules(package.__path__)]


def public_names() -> set[str]:
    """Every name in the ``__all__`` of each module of modlib.training."""
    return {name for m in training_modules() for name in getattr(m, "__all__", ())}


# --- small inputs, built once -------------------------------------------------------------------

NAN = float("nan")
INF = float("inf")
CPU = torch.device("cpu")
TOK = ByteTokenizer()
X = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
Y = torch.tensor([0, 1, 0, 1])
BATCHES = [(X, Y)]


@functools.cache
def linear() -> nn.Linear:
    torch.manual_seed(0)
    return nn.Linear(3, 2)


@functools.cache
def splits():
    return modular_addition(5)


def with_env(name: str, value: str, call):
    """Run ``call`` with the environment variable ``name`` set to ``value``."""
    def run():
        with mock.patch.dict(os.environ, {name: value}):
            return call()
    return run


def in_folder(call):
    """Run ``call(folder)`` with a fresh temporary folder."""
    def run():
        with tempfile.TemporaryDirectory() as folder:
            return call(Path(folder))
    return run


def empty_file(folder: Path) -> Path:
    path = folder / "last.pt"
    path.write_bytes(b"")
    return path


def ci(**changes) -> Profile:
    """The ``ci`` profile with some fields changed (its checks run again)."""
    return dataclasses.replace(PROFILES["ci"], **changes)


# (name covered, call, exception, regex of the message)
CASES = [
    ("BIMTLoss", lambda: BIMTLoss("net"), TypeError, r"'model' must be a torch.nn.Module"),
    ("BIMTLoss", lambda: BIMTLoss(linear(), gap=-1.0), ValueError,
     r"'gap' must be a finite real > 0. Got -1.0"),
    ("connection_lengths", lambda: connection_lengths(0, 3), ValueError,
     r"'n_out' must be an int >= 1. Got 0"),
    ("connection_lengths", lambda: connection_lengths(2, 3, gap=float("nan")), ValueError,
     r"'gap' must be a finite real >= 0. Got nan"),
    ("connection_cost", lambda: connection_cost(torch.ones(3)), ValueError,
     r"'W' must be 2-D \(n_out, n_in\)"),
    ("connection_cost", lambda: connection_cost([[1.0]]), TypeError,
     r"'W' must be a torch.Tensor"),
    ("place_costs", lambda: place_costs(torch.ones(3, 2), torch.ones(4, 2)), ValueError,
     r"'W_out' must have one column per neuron of the line \(W_in has 3 rows\)"),
    ("place_costs", lambda: place_costs(torch.ones(3, 2), torch.ones(4, 3), gap=-0.1),
     ValueError, r"'gap' must be a finite real >= 0. Got -0.1"),
    ("swap_deltas", lambda: swap_deltas(torch.ones(2, 3), 0), ValueError,
     r"'C' must be square \(places by places\). Got shape \(2, 3\)"),
    ("swap_deltas", lambda: swap_deltas(torch.ones(3, 3), 3), ValueError,
     r"'s' must be an int >= 0 and <= 2. Got 3"),
    # --- modlib.training.precision -----------------------------------------------------------
    ("amp_plan", lambda: amp_plan("cpu", "fp8"), ValueError,
     r"'precision' must be one of \('auto', 'bf16', 'fp16', 'fp32'\). Got 'fp8'"),
    ("amp_plan", lambda: amp_plan("gpu"), ValueError,
     r"'device' must name a device such as 'cpu', 'cuda' or 'cuda:1'. Got 'gpu'"),
    ("amp_plan", lambda: amp_plan(None), TypeError,
     r"'device' must be a torch.device or a str such as 'cpu' or 'cuda'. Got None"),
    ("amp_plan", lambda: amp_plan("cuda", capability=(8,)), ValueError,
     r"'capability' must be a pair \(major, minor\) of ints or None. Got \(8,\)"),
    ("amp_plan", lambda: amp_plan("cuda", capability="8.0"), TypeError,
     r"'capability' must be a pair \(major, minor\) of ints or None. Got str '8.0'"),
    ("amp_plan", lambda: amp_plan("cuda", capability=(8.0, 0)), TypeError,
     r"'capability\[0\]' must be an int >= 0. Got float 8.0"),
    ("amp_plan", lambda: amp_plan("cuda", "bf16", capability=(7, 5)), ValueError,
     r"'precision' 'bf16' needs a GPU of compute capability >= 8.0"),
    ("autocast", lambda: autocast("cpu", "bf16"), TypeError,
     r"'device' must be a torch.device. Got str 'cpu'"),
    ("autocast", lambda: autocast(CPU, "fp8"), ValueError,
     r"'plan' must be one of \('bf16', 'fp16', 'fp32'\). Got 'fp8'"),
    ("autocast", lambda: autocast(CPU, None), ValueError, r"'plan' must be one of .* Got None"),
    ("grad_scaler", lambda: grad_scaler(CPU, "auto"), ValueError,
     r"'plan' must be one of \('bf16', 'fp16', 'fp32'\). Got 'auto'"),
    ("grad_scaler", lambda: grad_scaler(None, "fp16"), TypeError,
     r"'device' must be a torch.device. Got None"),
    # --- modlib.training.train ---------------------------------------------------------------
    ("TrainConfig", lambda: TrainConfig(epochs=0), ValueError,
     r"'epochs' must be an int >= 1. Got 0"),
    ("TrainConfig", lambda: TrainConfig(epochs=1.5), TypeError,
     r"'epochs' must be an int >= 1. Got float 1.5"),
    ("TrainConfig", lambda: TrainConfig(lr=NAN), ValueError,
     r"'lr' must be a finite real > 0. Got nan"),
    ("TrainConfig", lambda: TrainConfig(lr=0), ValueError, r"'lr' must be a finite real > 0"),
    ("TrainConfig", lambda: TrainConfig(weight_decay=INF), ValueError,
     r"'weight_decay' must be a finite real >= 0. Got inf"),
    ("TrainConfig", lambda: TrainConfig(betas=(0.9,)), ValueError,
     r"'betas' must be a pair \(beta1, beta2\). Got \(0.9,\)"),
    ("TrainConfig", lambda: TrainConfig(betas="ab"), TypeError,
     r"'betas' must be a pair \(beta1, beta2\). Got str 'ab'"),
    ("TrainConfig", lambda: TrainConfig(betas=(0.9, 1.0)), ValueError,
     r"'betas\[1\]' must be a finite real >= 0 and < 1. Got 1.0"),
    ("TrainConfig", lambda: TrainConfig(lam=-1.0), ValueError,
     r"'lam' must be a finite real >= 0. Got -1.0"),
    ("TrainConfig", lambda: TrainConfig(clip_grad=0.0), ValueError,
     r"'clip_grad' must be a finite real > 0"),
    ("TrainConfig", lambda: TrainConfig(task="regress"), ValueError,
     r"'task' must be one of \('classify', 'lm'\). Got 'regress'"),
    ("TrainConfig", lambda: TrainConfig(precision="fp8"), ValueError,
     r"'precision' must be one of .* Got 'fp8'"),
    ("TrainConfig", lambda: TrainConfig(max_steps=0), ValueError,
     r"'max_steps' must be an int >= 1 or None. Got 0"),
    ("TrainConfig", lambda: TrainConfig(log_every=None), TypeError,
     r"'log_every' must be an int >= 1. Got None"),
    ("TrainConfig", lambda: TrainConfig(checkpoint_dir=5), TypeError,
     r"'checkpoint_dir' must be a folder \(str or path\) or None. Got 5"),
    ("TrainConfig", lambda: TrainConfig(checkpoint_dir=""), ValueError,
     r"'checkpoint_dir' must be a folder \(str or path\) or None. Got ''"),
    ("TrainConfig", lambda: TrainConfig.from_dict([("epochs", 1)]), TypeError,
     r"'d' must be a dict of TrainConfig fields. Got list"),
    ("TrainConfig", lambda: TrainConfig.from_dict({"epoch": 1}), ValueError,
     r"Unknown TrainConfig fields: \['epoch'\]"),
    ("History", lambda: History().column(5), TypeError, r"'key' must be a str. Got 5"),
    ("History", lambda: History().column("task_loss", per="batches"), ValueError,
     r"'per' must be one of \('steps', 'epochs'\). Got 'batches'"),
    ("fit", lambda: fit(linear(), BATCHES, accelerator="gpu"), TypeError,
     r"'accelerator' must be an accelerate.Accelerator or None. Got str 'gpu', which has no "
     r"prepare, backward"),
    ("fit", lambda: fit(None, BATCHES), TypeError,
     r"'model' must be a torch.nn.Module. Got None"),
    ("fit", lambda: fit(nn.ReLU(), BATCHES), ValueError,
     r"'model' has no parameters to train"),
    ("fit", lambda: fit(linear(), 5), TypeError,
     r"'train_loader' must be a DataLoader \(or another iterable of batches\). Got 5"),
    ("fit", lambda: fit(linear(), []), ValueError, r"'train_loader' is empty"),
    ("fit", lambda: fit(linear(), BATCHES, eval_loader=3.0), TypeError,
     r"'eval_loader' must be a DataLoader .* Got float 3.0"),
    ("fit", lambda: fit(linear(), BATCHES, config={"epochs": 1}), TypeError,
     r"'config' must be a TrainConfig or None. Got dict .*build one with TrainConfig"),
    ("fit", lambda: fit(linear(), BATCHES, progress="yes"), TypeError,
     r"'progress' must be True or False. Got str 'yes'"),
    ("fit", lambda: fit(linear(), BATCHES, loss=3), TypeError,
     r"'loss' must be a ClusterabilityLoss or BIMTLoss of 'model' or None. Got 3"),
    ("fit", lambda: fit(linear(), BATCHES, resume=5), TypeError,
     r"'resume' must be the path of a checkpoint \(str or os.PathLike\) or None. Got 5"),
    ("fit", lambda: fit(linear(), [(X, Y[:3])], progress=False), ValueError,
     r"'train_loader' must yield batches \(X, y\) of two tensors with the same number"),
    ("fit", lambda: fit(linear(), BATCHES, config=TrainConfig(task="lm"), progress=False),
     ValueError, r"'train_loader' must yield token blocks"),
    ("evaluate", lambda: evaluate("model", BATCHES), TypeError,
     r"'model' must be a torch.nn.Module. Got str 'model'"),
    ("evaluate", lambda: evaluate(nn.ReLU(), BATCHES), ValueError,
     r"'model' has no parameters to evaluate"),
    ("evaluate", lambda: evaluate(linear(), 5), TypeError,
     r"'loader' must be a DataLoader \(or another iterable of batches\). Got 5"),
    ("evaluate", lambda: evaluate(linear(), []), ValueError,
     r"'loader' yielded no data to evaluate on"),
    ("evaluate", lambda: evaluate(linear(), BATCHES, task="regress"), ValueError,
     r"'task' must be one of \('classify', 'lm'\). Got 'regress'"),
    ("evaluate", lambda: evaluate(linear(), [X]), ValueError,
     r"'loader' must yield batches \(X, y\)"),
    ("load_checkpoint", lambda: load_checkpoint(5), TypeError,
     r"'path' must be a file path \(str or os.PathLike\). Got 5"),
    ("load_checkpoint", lambda: load_checkpoint(None), TypeError,
     r"'path' must be a file path \(str or os.PathLike\). Got None"),
    ("load_checkpoint", in_folder(lambda d: load_checkpoint(empty_file(d))), ValueError,
     r"The checkpoint .*last.pt cannot be used: it is empty \(0 bytes\)"),
    ("load_checkpoint", in_folder(load_checkpoint), ValueError,
     r"The checkpoint .* cannot be used: it is a folder, not a file"),
    ("world_size", with_env("WORLD_SIZE", "two", world_size), ValueError,
     r"The environment variable WORLD_SIZE must be an integer. Got 'two'"),
    # --- modlib.training.models --------------------------------------------------------------
    ("MnistCNN", lambda: MnistCNN(width=0), ValueError, r"'width' must be an int >= 1. Got 0"),
    ("MnistCNN", lambda: MnistCNN(n_classes=2.5), TypeError,
     r"'n_classes' must be an int >= 1. Got float 2.5"),
    ("MnistCNN", lambda: MnistCNN()(torch.zeros(2, 784)), ValueError,
     r"'X' must have shape \(B, 1, 28, 28\) with B >= 1. Got \(2, 784\)"),
    ("MnistCNN", lambda: MnistCNN()(torch.zeros(2, 1, 28, 28, dtype=torch.long)), TypeError,
     r"'X' must be a floating-point tensor \(B, 1, 28, 28\). Got Tensor of dtype torch.int64"),
    ("MnistCNN", lambda: MnistCNN()(torch.zeros(0, 1, 28, 28)), ValueError,
     r"'X' must have shape \(B, 1, 28, 28\) with B >= 1. Got \(0, 1, 28, 28\)"),
    ("PaperMLP", lambda: PaperMLP(hidden=None), TypeError,
     r"'hidden' must be an int >= 1. Got None"),
    ("PaperMLP", lambda: PaperMLP()(torch.zeros(2, 10)), ValueError,
     r"'X' must have shape \(B, 1, 28, 28\) or \(B, 784\) with B >= 1. Got \(2, 10\)"),
    ("PaperMLP", lambda: PaperMLP()([[0.0] * 784]), TypeError,
     r"'X' must be a floating-point tensor \(B, 1, 28, 28\) or \(B, 784\). Got list"),
    ("PaperCifarCNN", lambda: PaperCifarCNN(hidden=-1), ValueError,
     r"'hidden' must be an int >= 1. Got -1"),
    ("PaperCifarCNN", lambda: PaperCifarCNN()(torch.zeros(2, 1, 28, 28)), ValueError,
     r"'X' must have shape \(B, 3, 32, 32\) with B >= 1. Got \(2, 1, 28, 28\)"),
    ("PaperCifarCNN", lambda: PaperCifarCNN()(None), TypeError,
     r"'X' must be a floating-point tensor \(B, 3, 32, 32\). Got None"),
    ("ModAddTransformer", lambda: ModAddTransformer(p=1), ValueError,
     r"'p' must be an int >= 2. Got 1"),
    ("ModAddTransformer", lambda: ModAddTransformer(5, d_model=10, n_heads=4), ValueError,
     r"'d_model' must be a multiple of the number of heads 4. Got 10"),
    ("ModAddTransformer", lambda: ModAddTransformer(5, d_mlp="16"), TypeError,
     r"'d_mlp' must be an int >= 1. Got str '16'"),
    ("ModAddTransformer", lambda: ModAddTransformer(5, d_model=8)(torch.zeros(2, 3)),
     TypeError, r"'tokens' must be an integer tensor. Got Tensor of dtype torch.float32"),
    ("ModAddTransformer",
     lambda: ModAddTransformer(5, d_model=8)(torch.zeros(2, 4, dtype=torch.long)),
     ValueError, r"'tokens' must have shape \(B, 3\). Got \(2, 4\)"),
    ("ModAddTransformer",
     lambda: ModAddTransformer(5, d_model=8)(torch.tensor([[1, 6, 5]])),
     ValueError, r"'tokens' must be ids in \[0, 5\] \(p = 5 is '='\)\. Got values in \[1, 6\]"),
    ("ModAddTransformer",
     lambda: ModAddTransformer(5, d_model=8)(torch.tensor([[-1, 2, 5]])),
     ValueError, r"'tokens' must be ids in \[0, 5\]"),
    ("tiny_gpt2", lambda: tiny_gpt2(0), ValueError, r"'vocab_size' must be an int >= 1. Got 0"),
    ("tiny_gpt2", lambda: tiny_gpt2(50, n_head=4, n_embd=10), ValueError,
     r"'n_embd' must be a multiple of the number of heads 4. Got 10"),
    ("tiny_gpt2", lambda: tiny_gpt2(50, n_positions=None), TypeError,
     r"'n_positions' must be an int >= 1. Got None"),
    ("tiny_gpt_neox", lambda: tiny_gpt_neox(50, n_layer=0), ValueError,
     r"'n_layer' must be an int >= 1. Got 0"),
    ("tiny_gpt_neox", lambda: tiny_gpt_neox(50.0), TypeError,
     r"'vocab_size' must be an int >= 1. Got float 50.0"),
    # --- modlib.training.standin, .data -------------------------------------------------------
    ("make_cifar_standin", lambda: make_cifar_standin(0), ValueError,
     r"'n_train' must be an int >= 1. Got 0"),
    ("make_cifar_standin", lambda: make_cifar_standin(10, 1.5), TypeError,
     r"'n_test' must be an int >= 1. Got float 1.5"),
    ("make_cifar_standin", lambda: make_cifar_standin(10, 10, seed=-2), ValueError,
     r"'seed' must be an int >= 0. Got -2"),
    ("load_mnist", lambda: load_mnist(0), ValueError, r"'n_train' must be an int >= 1"),
    ("load_mnist", lambda: load_mnist(n_test=1.5), TypeError,
     r"'n_test' must be an int >= 1 or None. Got float 1.5"),
    ("load_mnist", lambda: load_mnist(seed=-1), ValueError, r"'seed' must be an int >= 0"),
    ("load_mnist", lambda: load_mnist(root=5), TypeError,
     r"'root' must be a folder \(str or os.PathLike\) or None. Got 5"),
    ("load_cifar10", lambda: load_cifar10(n_train=-3), ValueError,
     r"'n_train' must be an int >= 1 or None. Got -3"),
    ("load_cifar10", lambda: load_cifar10(seed=None), TypeError,
     r"'seed' must be an int >= 0. Got None"),
    ("load_cifar10", lambda: load_cifar10(root=["data"]), TypeError,
     r"'root' must be a folder \(str or os.PathLike\) or None. Got list"),
    ("modular_addition", lambda: modular_addition(4), ValueError, r"'p' must be a prime. Got 4"),
    ("modular_addition", lambda: modular_addition(1), ValueError,
     r"'p' must be an int >= 2. Got 1"),
    ("modular_addition", lambda: modular_addition(5.0), TypeError,
     r"'p' must be an int >= 2. Got float 5.0"),
    ("modular_addition", lambda: modular_addition(5, train_frac=NAN), ValueError,
     r"'train_frac' must be a finite real > 0 and < 1. Got nan"),
    ("modular_addition", lambda: modular_addition(5, train_frac=1.0), ValueError,
     r"'train_frac' must be a finite real > 0 and < 1. Got 1.0"),
    ("modular_addition", lambda: modular_addition(5, seed="0"), TypeError,
     r"'seed' must be an int >= 0. Got str '0'"),
    ("loaders", lambda: loaders(5, 4), TypeError, r"'data' must be a DataSplits. Got 5"),
    ("loaders", lambda: loaders(splits(), 0), ValueError,
     r"'batch_size' must be an int >= 1. Got 0"),
    ("loaders", lambda: loaders(splits(), 4, seed=-1), ValueError,
     r"'seed' must be an int >= 0. Got -1"),
    ("load", lambda: load("imagenet"), ValueError,
     r"'name' must be one of \('mnist', 'cifar10', 'modular_addition', 'text'\). "
     r"Got 'imagenet'"),
    ("load", lambda: load(None), ValueError, r"'name' must be one of .* Got None"),
    ("load", lambda: load("modular_addition", p=5, q=3), TypeError,
     r"'q' is not an argument of modular_addition \(for name='modular_addition'\); "
     r"it takes p, train_frac, seed"),
    ("load", lambda: load("text", n_chars=0), ValueError, r"'n_chars' must be an int >= 1"),
    # --- modlib.training.text ----------------------------------------------------------------
    ("ByteTokenizer", lambda: TOK.encode(5), TypeError, r"'text' must be a str. Got 5"),
    ("ByteTokenizer", lambda: TOK.encode(None), TypeError, r"'text' must be a str. Got None"),
    ("ByteTokenizer", lambda: TOK.decode("hi"), TypeError,
     r"'ids' must be a sequence of token ids \(ints\). Got str 'hi'"),
    ("ByteTokenizer", lambda: TOK.decode([104, 1.5]), TypeError,
     r"'ids' must hold token ids \(ints\). Got float 1.5"),
    ("ByteTokenizer", lambda: TOK.decode([104, -1]), ValueError,
     r"'ids' must hold token ids >= 0. Got -1"),
    ("ByteTokenizer", lambda: TOK.decode(None), TypeError,
     r"'ids' must be a sequence of token ids \(ints\). Got None"),
    ("load_text", lambda: load_text(0), ValueError, r"'n_chars' must be an int >= 1 or None"),
    ("load_text", lambda: load_text(seed=1.0), TypeError,
     r"'seed' must be an int >= 0. Got float 1.0"),
    ("get_tokenizer", lambda: get_tokenizer(None), TypeError,
     r"'name' must be a str \(a Hugging Face Hub id\). Got None"),
    ("get_tokenizer", lambda: get_tokenizer(""), ValueError,
     r"'name' must be a model name or Hugging Face Hub id .*, not empty. Got ''"),
    ("token_blocks", lambda: token_blocks(5, TOK, 2), TypeError, r"'text' must be a str. Got 5"),
    ("token_blocks", lambda: token_blocks("abcdef", TOK, 0), ValueError,
     r"'seq_len' must be an int >= 1. Got 0"),
    ("token_blocks", lambda: token_blocks("ab", TOK, 2), ValueError,
     r"'text' must hold at least seq_len \+ 1 = 3 tokens. Got 2 tokens"),
    ("token_blocks", lambda: token_blocks("", TOK, 1), ValueError,
     r"'text' must hold at least seq_len \+ 1 = 2 tokens. Got 0 tokens"),
    ("token_blocks", lambda: token_blocks("abcdef", None, 2), TypeError,
     r"'tokenizer' must have a method encode\(text\) -> list\[int\] .*Got None"),
    # --- modlib.training.sources -------------------------------------------------------------
    ("say_offline", lambda: say_offline(5), TypeError, r"'message' must be a str. Got 5"),
    ("say_offline", lambda: say_offline("x", who=""), ValueError,
     r"'who' must be a str, not empty. Got ''"),
    ("reason", lambda: reason("no internet"), TypeError,
     r"'exc' must be an exception. Got str 'no internet'"),
    ("caused_by", lambda: caused_by(None, OSError), TypeError,
     r"'exc' must be an exception. Got None"),
    ("caused_by", lambda: caused_by(OSError(), "OSError"), TypeError,
     r"'kinds' must be an exception class or a non-empty tuple of them. Got str 'OSError'"),
    ("caused_by", lambda: caused_by(OSError(), ()), TypeError,
     r"'kinds' must be an exception class or a non-empty tuple of them. Got tuple \(\)"),
    ("cannot_reach", lambda: cannot_reach(None), TypeError,
     r"'exc' must be an exception. Got None"),
    ("cannot_reach", lambda: cannot_reach(ConnectionError), TypeError,
     r"'exc' must be an exception. Got type"),
    ("reachable", lambda: reachable(5), TypeError,
     r"'url' must be a URL such as 'https://huggingface.co'. Got 5"),
    ("reachable", lambda: reachable("huggingface.co"), ValueError,
     r"'url' must be a URL with a host, such as 'https://huggingface.co'. Got 'huggingface.co'"),
    ("reachable", lambda: reachable("https://huggingface.co", timeout=0), ValueError,
     r"'timeout' must be a finite real > 0. Got 0"),
    ("reachable", lambda: reachable("https://huggingface.co", timeout=NAN), ValueError,
     r"'timeout' must be a finite real > 0. Got nan"),
    ("save_atomic", lambda: save_atomic({"step": 1}, 5), TypeError,
     r"'path' must be a file path \(str or os.PathLike\). Got 5"),
    ("save_atomic", lambda: save_atomic({"step": 1}, None), TypeError,
     r"'path' must be a file path \(str or os.PathLike\). Got None"),
    ("unusable", lambda: unusable(None, "checkpoint", "it is empty", "Delete it."), TypeError,
     r"'path' must be a file path \(str or os.PathLike\). Got None"),
    ("unusable", lambda: unusable("last.pt", "checkpoint", "", "Delete it."), ValueError,
     r"'problem' must be a str, not empty. Got ''"),
    ("unusable", lambda: unusable("last.pt", 3, "it is empty", "Delete it."), TypeError,
     r"'what' must be a str. Got 3"),
    ("load_saved", lambda: load_saved(5, what="checkpoint", remedy="Delete it."), TypeError,
     r"'path' must be a file path \(str or os.PathLike\). Got 5"),
    ("load_saved", lambda: load_saved("last.pt", what="", remedy="Delete it."), ValueError,
     r"'what' must be a str, not empty. Got ''"),
    ("load_saved", lambda: load_saved("last.pt", what="checkpoint", remedy=None), TypeError,
     r"'remedy' must be a str. Got None"),
    ("load_saved", lambda: load_saved("last.pt", what="checkpoint", remedy="Delete it.",
                                      keys="model"), TypeError,
     r"'keys' must be an iterable of str \(the keys the dict must hold\). Got str 'model'"),
    ("load_saved", lambda: load_saved("last.pt", what="checkpoint", remedy="Delete it.",
                                      keys=["model", 1]), TypeError,
     r"'keys\[1\]' must be a str. Got 1"),
    ("load_saved", lambda: load_saved("last.pt", what="checkpoint", remedy="Delete it.",
                                      check=3), TypeError, r"'check' must be callable. Got 3"),
    # --- modlib.training.hub -----------------------------------------------------------------
    ("hub_id", lambda: hub_id(5), TypeError,
     r"'name' must be a model name or Hugging Face Hub id such as 'pythia-70m' \(a str\). "
     r"Got 5"),
    ("hub_id", lambda: hub_id(["gpt2"]), TypeError, r"'name' must be a model name .* Got list"),
    ("hub_id", lambda: hub_id(""), ValueError, r"'name' must be a model name .*, not empty"),
    ("display_name", lambda: display_name(None), TypeError,
     r"'repo' must be a Hugging Face Hub id such as 'gpt2' \(a str\). Got None"),
    ("display_name", lambda: display_name(""), ValueError,
     r"'repo' must be a Hugging Face Hub id .*, not empty. Got ''"),
    ("from_hub", lambda: from_hub("gpt2", None), TypeError, r"'load' must be callable. Got None"),
    ("from_hub", lambda: from_hub(5, lambda **kw: None), TypeError,
     r"'repo' must be a Hugging Face Hub id .* Got 5"),
    ("load_tokenizer", lambda: load_tokenizer(None), TypeError,
     r"'repo' must be a Hugging Face Hub id .* Got None"),
    ("load_tokenizer", lambda: load_tokenizer(""), ValueError,
     r"'repo' must be a Hugging Face Hub id .*, not empty"),
    ("load_causal_lm", lambda: load_causal_lm("gpt2", "float32"), TypeError,
     r"'dtype' must be a torch.dtype such as torch.float32. Got str 'float32'"),
    ("load_causal_lm", lambda: load_causal_lm("gpt2", torch.int64), ValueError,
     r"'dtype' must be a floating-point torch.dtype. Got torch.int64"),
    ("load_causal_lm", lambda: load_causal_lm(0, torch.float32), TypeError,
     r"'repo' must be a Hugging Face Hub id .* Got 0"),
    ("unreadable", lambda: unreadable("/tmp/snapshot", "gpt2"), TypeError,
     r"'folder' must be a pathlib.Path or None. Got str '/tmp/snapshot'"),
    ("unreadable", lambda: unreadable(None, 5), TypeError, r"'what' must be a str. Got 5"),
    # --- modlib.training.vision --------------------------------------------------------------
    ("imagenet_resnet18", lambda: imagenet_resnet18(progress="yes"), TypeError,
     r"'progress' must be True or False. Got str 'yes'"),
    ("imagenet_resnet18", lambda: imagenet_resnet18(progress=None), TypeError,
     r"'progress' must be True or False. Got None"),
    # --- modlib.training.profiles ------------------------------------------------------------
    ("profile", lambda: profile(5), TypeError, r"'name' must be a str or None. Got 5"),
    ("profile", lambda: profile("laptop"), ValueError,
     r"'name' must be one of \('ci', 'cpu', 'gpu', 'paper'\). Got 'laptop'"),
    ("profile", with_env("MODLIB_PROFILE", "laptop", profile), ValueError,
     r"environment variable MODLIB_PROFILE must be one of .* Got 'laptop'"),
    ("Profile", lambda: ci(name="laptop"), ValueError, r"'name' must be one of .* Got 'laptop'"),
    ("Profile", lambda: ci(mnist_train=0), ValueError,
     r"'mnist_train' must be an int >= 1 or None. Got 0"),
    ("Profile", lambda: ci(batch_size=None), TypeError,
     r"'batch_size' must be an int >= 1. Got None"),
    ("Profile", lambda: ci(modadd_train_frac=NAN), ValueError,
     r"'modadd_train_frac' must be a finite real > 0 and < 1. Got nan"),
    ("Profile", lambda: ci(modadd_lr=0.0), ValueError,
     r"'modadd_lr' must be a finite real > 0. Got 0.0"),
    ("Profile", lambda: ci(resnet18="no"), TypeError,
     r"'resnet18' must be True or False. Got str 'no'"),
    ("Profile", lambda: ci(mnist_ks=(8, 2)), ValueError,
     r"'mnist_ks' must be a non-empty tuple of increasing ints >= 1. Got \(8, 2\)"),
    ("Profile", lambda: ci(mnist_lams=()), TypeError,
     r"'mnist_lams' must be a non-empty tuple of increasing numbers .* Got tuple \(\)"),
    ("Profile", lambda: ci(llm_lams=(1.0, 2.0)), ValueError,
     r"'llm_lams' must be a non-empty tuple of increasing numbers that start with 0.0"),
    ("Profile", lambda: ci(mnist_lams=(0.0, INF)), ValueError,
     r"'mnist_lams\[1\]' must be a finite real >= 0. Got inf"),
    ("Profile", lambda: ci(llm_model="gpt3"), ValueError,
     r"'llm_model' must be one of .* Got 'gpt3'"),
    ("LanguageModel", lambda: LanguageModel(5, "GPT-2", "GPT-2"), TypeError,
     r"'hub_id' must be a non-empty str. Got 5"),
    ("LanguageModel", lambda: LanguageModel("gpt2", "", "GPT-2"), TypeError,
     r"'display' must be a non-empty str. Got str ''"),
    ("LanguageModel", lambda: LanguageModel("gpt2", "GPT-2", "GPT-3"), ValueError,
     r"'architecture' must be one of \('GPT-2', 'GPT-NeoX'\). Got 'GPT-3'"),
    ("LanguageModel", lambda: LanguageModel("gpt2", "GPT-2", "GPT-2", ["g"]), TypeError,
     r"'aliases' must be a tuple of non-empty str. Got list"),
    # --- modlib.training.zoo -----------------------------------------------------------------
    ("pretrained", lambda: pretrained("resnet"), ValueError,
     r"'name' must be one of \('mnist-cnn', 'mnist-mlp', 'cifar-cnn', 'gpt2'.* Got 'resnet'"),
    ("pretrained", lambda: pretrained(None), ValueError, r"'name' must be one of .* Got None"),
    ("pretrained", lambda: pretrained("mnist-cnn", dtype=torch.int64), ValueError,
     r"'dtype' must be a floating-point torch.dtype. Got torch.int64"),
    ("pretrained", lambda: pretrained("gpt2", dtype="float16"), TypeError,
     r"'dtype' must be a torch.dtype such as torch.float32. Got str 'float16'"),
    ("pretrained", lambda: pretrained("mnist-cnn", progress="yes"), TypeError,
     r"'progress' must be True or False. Got str 'yes'"),
    ("pretrained", lambda: pretrained("mnist-cnn", retrain=1), TypeError,
     r"'retrain' must be True or False. Got 1"),
    ("pretrained", lambda: pretrained("mnist-cnn", profile=5), TypeError,
     r"'profile' must be a profile name \(str\), a Profile or None. Got 5"),
    ("pretrained", lambda: pretrained("gpt2", profile="laptop"), ValueError,
     r"'profile' must be one of \('ci', 'cpu', 'gpu', 'paper'\). Got 'laptop'"),
]


@pytest.mark.parametrize("name, call, error, match", CASES, ids=row_ids(CASES))
def test_bad_input_is_refused_with_a_message_that_names_it(name, call, error, match):
    assert_refused(call, error, match)


def test_every_public_name_has_a_bad_input_row():
    """A public name (in an ``__all__``) without a row here, and not allow-listed, fails."""
    assert_every_name_has_a_row(CASES, public_names(), ALLOWED_WITHOUT_ROW)


def test_allow_list_holds_only_types_aliases_constants_and_argumentless_functions():
    """The allow-list is not a way around a row: every entry takes no argument to check."""
    modules = training_modules()
    for name in ALLOWED_WITHOUT_ROW:
        value = next(getattr(m, name) for m in modules if name in getattr(m, "__all__", ()))
        is_alias = typing.get_origin(value) is not None
        is_record = isinstance(value, type) and hasattr(value, "__dataclass_fields__")
        is_error = isinstance(value, type) and issubclass(value, BaseException)
        is_constant = isinstance(value, (tuple, dict))
        no_argument = (inspect.isfunction(value)
                       and not inspect.signature(value).parameters)
        assert is_alias or is_record or is_error or is_constant or no_argument, name


def test_every_row_is_well_formed():
    """Rows are (name, call, TypeError or ValueError, regex quoting the argument it names)."""
    for name, call, error, match in CASES:
        assert isinstance(name, str) and callable(call), name
        assert error in (TypeError, ValueError), name
        # the message names the argument in quotes, or the file it cannot use
        assert "'" in match or match.startswith("The checkpoint "), (name, match)
