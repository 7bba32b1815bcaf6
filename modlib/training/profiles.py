"""Experiment sizes: one notebook, four profiles (``ci``, ``cpu``, ``gpu``, ``paper``).

Every notebook asks ``modlib.profile()`` how big to make its data, models and training runs, so
the same code runs in seconds under CI, in minutes on a laptop, within an hour a notebook on a
free Colab T4 (``gpu``), and at the paper's full scale on an A100 or several GPUs (``paper``).
See DESIGN.md ("Profiles"), the syllabus chapter of the book, and benchmarks/RESULTS.md for the
estimated GPU time of every notebook.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Literal, get_args

import torch

from ..validate import check_bool, check_choice, check_int, check_real, describe

__all__ = ["LLM_ALIASES", "LLM_MODELS", "LLMName", "LanguageModel", "PROFILES", "Profile",
           "ProfileName", "profile"]


@dataclass(frozen=True)
class LanguageModel:
    """One language model of the course: its Hugging Face Hub id and how modlib names it.

    Example:
        >>> LLM_MODELS["pythia-70m"].hub_id, LLM_MODELS["pythia-70m"].architecture
        ('EleutherAI/pythia-70m', 'GPT-NeoX')
    """

    hub_id: str  # the Hub id of the real model, e.g. 'EleutherAI/pythia-70m'
    display: str  # how one-line messages name it, e.g. 'Pythia-70m'
    architecture: str  # the family of its offline stand-in: 'GPT-2' or 'GPT-NeoX'
    aliases: tuple[str, ...] = ()  # shorter names that reproduce("llm") and the command line take

    def __post_init__(self) -> None:
        for name in ("hub_id", "display"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise TypeError(f"'{name}' must be a non-empty str. Got {describe(value)}.")
        check_choice(self.architecture, "architecture", ("GPT-2", "GPT-NeoX"))
        if not isinstance(self.aliases, tuple) or not all(
                isinstance(a, str) and a for a in self.aliases):
            raise TypeError(f"'aliases' must be a tuple of non-empty str. "
                            f"Got {describe(self.aliases)}.")


# The language models of the course, by the name modlib.pretrained takes: the one list of them.
# Everything else derives from it: LLMName, the zoo's names, the tokenizer and Hub names.
LLM_MODELS: dict[str, LanguageModel] = {
    "gpt2": LanguageModel("gpt2", "GPT-2", "GPT-2"),
    "pythia-70m": LanguageModel("EleutherAI/pythia-70m", "Pythia-70m", "GPT-NeoX", ("pythia",)),
    "pythia-14m": LanguageModel("EleutherAI/pythia-14m", "Pythia-14m", "GPT-NeoX"),
}
LLM_ALIASES: dict[str, str] = {  # alias -> name in LLM_MODELS, e.g. 'pythia' -> 'pythia-70m'
    alias: name for name, model in LLM_MODELS.items() for alias in model.aliases
}
LLMName = Literal[tuple(LLM_MODELS)]  # the names of LLM_MODELS: 'gpt2', 'pythia-70m', ...

ProfileName = Literal["ci", "cpu", "gpu", "paper"]
ENV_VAR = "MODLIB_PROFILE"
_FLOATS = ("modadd_train_frac", "modadd_lr", "modadd_weight_decay")  # fields that are not counts
_SWEEPS = ("mnist_lams", "mnist_ks", "llm_lams")  # tuples of the values a sweep runs over
_FLAGS = ("resnet18",)  # True or False
_SHOWS_PROGRESS = ("gpu", "paper")  # the profiles whose runs take minutes to hours


@dataclass(frozen=True)
class Profile:
    """Sizes for every experiment of the course; pick one with :func:`profile`.

    ``None`` in a count means "all there is" (the loaders in ``modlib.data`` read it that way).
    Notebooks read these fields, never the profile's name, so that every profile runs every
    cell.
    """

    name: ProfileName  # which profile this is: 'ci', 'cpu', 'gpu' or 'paper'
    mnist_train: int | None  # MNIST training images (None: all)
    mnist_test: int | None  # MNIST test images (None: all)
    cifar_train: int | None  # CIFAR-10 (or offline stand-in) training images (None: all)
    cifar_test: int | None  # CIFAR-10 (or offline stand-in) test images (None: all)
    mnist_epochs: int  # passes over the MNIST training set
    cifar_epochs: int  # passes over the CIFAR-10 training set
    batch_size: int  # mini-batch size for the image tasks
    width: int  # base width of the models: hidden units per layer / channels of the first conv
    modadd_p: int  # the prime p of modular addition (a + b) mod p
    modadd_epochs: int  # full-batch epochs of the modular-addition model (grokking takes many)
    modadd_train_frac: float  # share of the p*p pairs used for training, in (0, 1)
    modadd_lr: float  # AdamW learning rate of the modular-addition runs
    modadd_weight_decay: float  # AdamW weight decay: stronger groks sooner, too strong underfits
    llm_steps: int  # optimiser steps of language-model training / fine-tuning
    llm_seq_len: int  # tokens per training sequence
    llm_batch: int  # sequences per language-model batch
    text_chars: int | None  # characters of training text to use, a tenth of that for
    # validation (None: all)
    n_shuffles: int  # notebook 02: shuffled copies of each layer in the shuffle test
    resnet18: bool  # notebook 02: also test torchvision's pretrained ResNet-18 (a download)
    mnist_lams: tuple[float, ...]  # notebook 03: the λ of the MNIST sweep, from 0 (baseline) up
    mnist_ks: tuple[int, ...]  # notebook 03: the k of the MNIST sweep, increasing
    prune_chunk: int  # notebook 04: most weights greedy pruning removes at once (1: one by one)
    llm_sweep_steps: int  # notebook 07: fine-tuning steps of each run of the λ sweep
    llm_lams: tuple[float, ...]  # notebook 07: the λ of that sweep, from 0 (baseline) up
    n_controls: int  # notebook 07: random control partitions of the ablation by token kind
    llm_model: LLMName = "gpt2"  # notebook 07 and reproduce("llm"): the pretrained model; the
    # cpu profile takes the small real Pythia-14m, which a CPU fine-tunes in minutes
    seeds: int = 1  # reproduce and the notebooks' sweeps: seeds per run, for a 95 % interval
    # (1: a single run, no interval); ci 2, cpu 3, gpu and paper 5

    @property
    def progress(self) -> bool:
        """Whether the notebooks show progress bars: only in ``gpu`` and ``paper`` runs, which
        take minutes to hours. The ``ci`` and ``cpu`` runs stay quiet: their outputs are stored
        in the notebooks and the book, where a finished bar would show nothing but the timing
        of one machine.

        Example:
            >>> profile("gpu").progress, profile("paper").progress, profile("cpu").progress
            (True, True, False)
        """
        return self.name in _SHOWS_PROGRESS

    def __post_init__(self) -> None:
        check_choice(self.name, "name", get_args(ProfileName))
        for f in fields(self):
            if f.name in ("name", "llm_model", *_FLOATS, *_SWEEPS, *_FLAGS):
                continue
            check_int(getattr(self, f.name), f.name, minimum=1, none_ok="None" in str(f.type))
        check_real(self.modadd_train_frac, "modadd_train_frac", minimum=0, maximum=1,
                   low_open=True, high_open=True)
        for name in ("modadd_lr", "modadd_weight_decay"):
            check_real(getattr(self, name), name, minimum=0, low_open=True)
        for name in _FLAGS:
            check_bool(getattr(self, name), name)
        for name in _SWEEPS:
            self._check_sweep(name)
        check_choice(self.llm_model, "llm_model", LLM_MODELS)

    def _check_sweep(self, name: str) -> None:
        """A sweep is a non-empty increasing tuple: of ints >= 1 (k), or of numbers from 0 (λ)."""
        value = getattr(self, name)
        if isinstance(value, list):  # a list after a JSON round trip: keep the profile hashable
            value = tuple(value)
            object.__setattr__(self, name, value)
        ks = name.endswith("_ks")
        what = "ints >= 1" if ks else "numbers that start with 0.0 (the baseline)"
        if not isinstance(value, tuple) or not value:
            raise TypeError(f"'{name}' must be a non-empty tuple of increasing {what}. "
                            f"Got {describe(value)}.")
        for i, v in enumerate(value):
            if ks:
                check_int(v, f"{name}[{i}]", minimum=1)
            else:
                check_real(v, f"{name}[{i}]", minimum=0)
        if list(value) != sorted(set(value)) or (not ks and value[0] != 0):
            raise ValueError(f"'{name}' must be a non-empty tuple of increasing {what}. "
                             f"Got {value!r}.")


_IMAGES_FULL = dict(  # all of MNIST and CIFAR-10, the authors' 10 epochs, a wide CNN
    mnist_train=60_000, mnist_test=10_000, cifar_train=50_000, cifar_test=10_000,
    mnist_epochs=10, cifar_epochs=10, batch_size=128, width=64,
)
_GROKKING_FULL = dict(  # Nanda et al.'s recipe (lr 1e-3, weight decay 1) at 3× the lr
    modadd_p=113, modadd_epochs=20_000, modadd_train_frac=0.3, modadd_lr=3e-3,
    modadd_weight_decay=1.0,
)
_NOTEBOOKS_FULL = dict(  # the notebooks' sweeps and repetitions at full size
    mnist_lams=(0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0), mnist_ks=(2, 4, 8, 16),
    llm_lams=(0.0, 0.5, 2.0, 20.0, 40.0), n_shuffles=49, resnet18=True, prune_chunk=16,
    n_controls=5,
)

PROFILES: dict[str, Profile] = {
    # Seconds per notebook on a 2-core CPU: exercises every code path, learns little.
    "ci": Profile(
        name="ci", mnist_train=1000, mnist_test=1000, cifar_train=1000, cifar_test=500,
        mnist_epochs=8, cifar_epochs=2, batch_size=64, width=16,
        modadd_p=31,
        modadd_epochs=800,  # the baseline groks by epoch 400-650 (depends on the seed)
        modadd_train_frac=0.6, modadd_lr=3e-3, modadd_weight_decay=5.0,
        llm_steps=5, llm_seq_len=32, llm_batch=4, text_chars=20_000,
        n_shuffles=4, resnet18=False, mnist_lams=(0.0, 2.0, 20.0), mnist_ks=(2, 8),
        prune_chunk=16, llm_sweep_steps=5, llm_lams=(0.0, 20.0), n_controls=2, seeds=2,
    ),
    # Minutes per notebook on a laptop; the outputs stored in the notebooks come from here.
    # 4000/1000 is all of the offline 5,000-image MNIST subset (see modlib.data.load_mnist).
    "cpu": Profile(
        name="cpu", mnist_train=4000, mnist_test=1000, cifar_train=5000, cifar_test=1000,
        mnist_epochs=5, cifar_epochs=5, batch_size=64, width=32,
        modadd_p=47,
        modadd_epochs=1000,  # weight decay 5: the modular model groks by ~300, the baseline
        # by 300-600 (depends on the seed)
        modadd_train_frac=0.5, modadd_lr=3e-3,
        modadd_weight_decay=5.0,  # at p = 59 this is too strong: the baseline cannot fit
        llm_steps=300, llm_seq_len=128, llm_batch=8, text_chars=400_000,
        n_shuffles=19, resnet18=False, mnist_lams=(0.0, 0.5, 2.0, 5.0, 20.0, 50.0),
        mnist_ks=(2, 4, 8, 16), prune_chunk=1, llm_sweep_steps=150,
        llm_lams=(0.0, 0.5, 2.0, 20.0), n_controls=5,
        llm_model="pythia-14m",  # GPT-2 small: about 2 h of fine-tuning on a 2-core CPU
        seeds=3,
    ),
    # A free Colab T4 (16 GB, fp16): <= 60 minutes and <= 12 GB a notebook, estimated in
    # benchmarks/RESULTS.md. The paper's image and grokking sizes; GPT-2 fine-tuned for 800
    # steps of 8 x 256 tokens (1.6 M tokens, 2.5 passes over 3 M characters of WikiText-2).
    "gpu": Profile(
        name="gpu", **_IMAGES_FULL, **_GROKKING_FULL,
        llm_steps=800, llm_seq_len=256, llm_batch=8, text_chars=3_000_000,
        llm_sweep_steps=200, **_NOTEBOOKS_FULL, seeds=5,
    ),
    # The paper's full scale: an A100-class GPU or several (accelerate launch); GPT-2
    # fine-tuned for 5,000 steps of 16 x 512 tokens on all of WikiText-2.
    "paper": Profile(
        name="paper", **_IMAGES_FULL, **_GROKKING_FULL,
        llm_steps=5000, llm_seq_len=512, llm_batch=16, text_chars=None,
        llm_sweep_steps=1000, **_NOTEBOOKS_FULL, seeds=5,
    ),
}


def profile(name: str | None = None) -> Profile:
    """Return the experiment sizes for a profile.

    The profile is ``name`` when given, else the environment variable ``MODLIB_PROFILE`` (``make
    test`` sets it to ``ci``), else ``'gpu'`` when CUDA is available and ``'cpu'`` otherwise;
    ``'paper'`` (the paper's full scale, for an A100 or several GPUs) is chosen only by name or
    ``MODLIB_PROFILE``. Every notebook's first cell calls it.

    Args:
        name: ``'ci'``, ``'cpu'``, ``'gpu'`` or ``'paper'``; ``None`` chooses as described
            above.

    Returns:
        The frozen :class:`Profile` of that name.

    Raises:
        TypeError: if ``name`` is neither a str nor None.
        ValueError: if ``name`` (or ``MODLIB_PROFILE``) is not one of the profile names.

    Example:
        >>> profile("ci").mnist_epochs
        8
        >>> profile("gpu").modadd_p
        113
        >>> profile("paper").llm_steps
        5000
    """
    names = get_args(ProfileName)
    if name is not None:
        if not isinstance(name, str):
            raise TypeError(f"'name' must be a str or None. Got {describe(name)}.")
        return PROFILES[check_choice(name, "name", names)]
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        if env not in names:
            raise ValueError(f"environment variable {ENV_VAR} must be one of {names}. Got {env!r}.")
        return PROFILES[env]
    return PROFILES["gpu" if torch.cuda.is_available() else "cpu"]
