"""Experiment sizes: one notebook, three profiles (``ci``, ``cpu``, ``gpu``).

Every notebook asks ``modlib.profile()`` how big to make its data, models and training runs, so
the same code runs in seconds under CI, in minutes on a laptop and at the paper's scale on a GPU.
See DESIGN.md ("Profiles") and the syllabus chapter of the book.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Literal, get_args

import torch

__all__ = ["PROFILES", "Profile", "ProfileName", "profile"]

ProfileName = Literal["ci", "cpu", "gpu"]
ENV_VAR = "MODLIB_PROFILE"
_FLOATS = ("modadd_train_frac", "modadd_lr", "modadd_weight_decay")  # fields that are not counts


@dataclass(frozen=True)
class Profile:
    """Sizes for every experiment of the course; pick one with :func:`profile`.

    ``None`` in a count means "all there is" (the loaders in ``modlib.data`` read it that way).
    """

    name: ProfileName  # which profile this is: 'ci', 'cpu' or 'gpu'
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
    text_chars: int | None  # characters of training text to use (None: all)

    @property
    def progress(self) -> bool:
        """Whether the notebooks show progress bars: only in ``gpu`` runs, which take minutes to
        hours. The ``ci`` and ``cpu`` runs stay quiet: their outputs are stored in the notebooks
        and the book, where a finished bar would show nothing but the timing of one machine.

        Example:
            >>> profile("gpu").progress, profile("cpu").progress
            (True, False)
        """
        return self.name == "gpu"

    def __post_init__(self) -> None:
        names = get_args(ProfileName)
        if self.name not in names:
            raise ValueError(f"'name' must be one of {names}. Got {self.name!r}.")
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("name", *_FLOATS) or value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"'{f.name}' must be a positive int. Got {value!r}.")
        if not 0.0 < self.modadd_train_frac < 1.0:
            raise ValueError(
                f"'modadd_train_frac' must be in (0, 1). Got {self.modadd_train_frac!r}."
            )
        for name in ("modadd_lr", "modadd_weight_decay"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"'{name}' must be a positive number. Got {value!r}.")


PROFILES: dict[str, Profile] = {
    # Seconds per notebook on a 2-core CPU: exercises every code path, learns little.
    "ci": Profile(
        name="ci",
        mnist_train=1000,
        mnist_test=1000,
        cifar_train=1000,
        cifar_test=500,
        mnist_epochs=8,
        cifar_epochs=2,
        batch_size=64,
        width=16,
        modadd_p=31,
        modadd_epochs=800,  # the baseline groks by epoch 400-650 (depends on the seed)
        modadd_train_frac=0.6,
        modadd_lr=3e-3,
        modadd_weight_decay=5.0,
        llm_steps=5,
        llm_seq_len=32,
        llm_batch=4,
        text_chars=20_000,
    ),
    # Minutes per notebook on a laptop; the outputs stored in the notebooks come from here.
    # 4000/1000 is all of the offline 5,000-image MNIST subset (see modlib.data.load_mnist).
    "cpu": Profile(
        name="cpu",
        mnist_train=4000,
        mnist_test=1000,
        cifar_train=5000,
        cifar_test=1000,
        mnist_epochs=5,
        cifar_epochs=5,
        batch_size=64,
        width=32,
        modadd_p=47,
        modadd_epochs=1000,  # weight decay 5: the modular model groks by ~300, the baseline
        # by 300-600 (depends on the seed)
        modadd_train_frac=0.5,
        modadd_lr=3e-3,
        modadd_weight_decay=5.0,  # at p = 59 this is too strong: the baseline cannot fit
        llm_steps=300,
        llm_seq_len=128,
        llm_batch=8,
        text_chars=400_000,
    ),
    # The paper's scale: full MNIST and CIFAR-10, p = 113, thousands of LLM steps.
    "gpu": Profile(
        name="gpu",
        mnist_train=60_000,
        mnist_test=10_000,
        cifar_train=50_000,
        cifar_test=10_000,
        mnist_epochs=10,
        cifar_epochs=10,
        batch_size=128,
        width=64,
        modadd_p=113,
        modadd_epochs=20_000,
        modadd_train_frac=0.3,
        modadd_lr=3e-3,  # Nanda et al.'s recipe (lr 1e-3, weight decay 1) at 3× the lr
        modadd_weight_decay=1.0,
        llm_steps=5000,
        llm_seq_len=512,
        llm_batch=16,
        text_chars=None,
    ),
}


def profile(name: str | None = None) -> Profile:
    """Return the experiment sizes for a profile.

    The profile is ``name`` when given, else the environment variable ``MODLIB_PROFILE`` (``make
    test`` sets it to ``ci``), else ``'gpu'`` when CUDA is available and ``'cpu'`` otherwise.
    Every notebook's first cell calls it.

    Args:
        name: ``'ci'``, ``'cpu'`` or ``'gpu'``; ``None`` chooses as described above.

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
    """
    names = get_args(ProfileName)
    if name is not None:
        if not isinstance(name, str):
            raise TypeError(f"'name' must be a str or None. Got {type(name).__name__}.")
        if name not in names:
            raise ValueError(f"'name' must be one of {names}. Got {name!r}.")
        return PROFILES[name]
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        if env not in names:
            raise ValueError(f"environment variable {ENV_VAR} must be one of {names}. Got {env!r}.")
        return PROFILES[env]
    return PROFILES["gpu" if torch.cuda.is_available() else "cpu"]
