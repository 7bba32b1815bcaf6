"""Models of the course: the paper's reproduction networks and the course's own small CNN.

- :class:`MnistCNN`: the course's small MNIST CNN, the "pretrained CNN" of notebook 02.
- :class:`PaperMLP`: the authors' MNIST MLP 784→64→64→64→10 without biases.
- :class:`PaperCifarCNN`: the authors' CIFAR-10 CNN (one conv, four fc layers without biases).
- :class:`ModAddTransformer`: the paper's one-layer transformer for ``(a + b) mod p``, built like
  Nanda et al.'s grokking model (*Progress measures for grokking via mechanistic
  interpretability*, 2023): no LayerNorm, ReLU MLP, logits read at the last position.
- :func:`tiny_gpt2`: a small GPT-2-architecture causal LM (Hugging Face), the offline stand-in.

Shapes follow PAPER.md. Introduced in notebooks 02–03, 05 (CIFAR), 06 (modular addition) and
07 (language models).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from ..validate import check_int, describe

if TYPE_CHECKING:
    from transformers import GPT2LMHeadModel

__all__ = ["MnistCNN", "PaperMLP", "PaperCifarCNN", "ModAddTransformer", "tiny_gpt2",
           "tiny_gpt_neox"]


class MnistCNN(nn.Module):
    """Two 3×3 conv layers and three fc layers for 28×28 digits.

    Args:
        width: channels of the first conv layer (the second has twice as many); fc hidden
            sizes are ``8 * width`` and ``4 * width``.
        n_classes: number of output classes.

    Raises:
        TypeError: a size that is not an int.
        ValueError: a size < 1.

    Example:
        >>> MnistCNN()(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """

    def __init__(self, width: int = 16, n_classes: int = 10) -> None:
        super().__init__()
        check_int(width, "width", minimum=1)
        check_int(n_classes, "n_classes", minimum=1)
        self.conv1 = nn.Conv2d(1, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1)
        self.fc1 = nn.Linear(2 * width * 7 * 7, 8 * width)
        self.fc2 = nn.Linear(8 * width, 4 * width)
        self.fc3 = nn.Linear(4 * width, n_classes)
        self.pool, self.act = nn.MaxPool2d(2), nn.ReLU()

    def forward(self, X: Tensor) -> Tensor:
        """X: (B, 1, 28, 28) → logits (B, n_classes)."""
        _check_images(X, (1, 28, 28))
        h = self.pool(self.act(self.conv1(X)))  # (B, w, 14, 14)
        h = self.pool(self.act(self.conv2(h)))  # (B, 2w, 7, 7)
        h = self.act(self.fc1(h.flatten(1)))  # (B, 8w)
        return self.fc3(self.act(self.fc2(h)))


class PaperMLP(nn.Module):
    """The authors' MNIST MLP: 784→64→64→64→10, ReLU, no biases.

    Args:
        hidden: units of each of the three hidden layers.
        n_classes: number of output classes.

    Raises:
        TypeError: a size that is not an int.
        ValueError: a size < 1.

    Example:
        >>> PaperMLP()(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """

    def __init__(self, hidden: int = 64, n_classes: int = 10) -> None:
        super().__init__()
        check_int(hidden, "hidden", minimum=1)
        check_int(n_classes, "n_classes", minimum=1)
        self.fc1 = nn.Linear(784, hidden, bias=False)
        self.fc2 = nn.Linear(hidden, hidden, bias=False)
        self.fc3 = nn.Linear(hidden, hidden, bias=False)
        self.fc4 = nn.Linear(hidden, n_classes, bias=False)
        self.act = nn.ReLU()

    def forward(self, X: Tensor) -> Tensor:
        """X: (B, 1, 28, 28) or (B, 784) → logits (B, n_classes)."""
        if not isinstance(X, Tensor) or not X.is_floating_point():
            raise TypeError(f"'X' must be a floating-point tensor (B, 1, 28, 28) or (B, 784). "
                            f"Got {describe(X)}.")
        if X.ndim < 2 or len(X) == 0 or X[0].numel() != 784:
            raise ValueError(f"'X' must have shape (B, 1, 28, 28) or (B, 784) with B >= 1. "
                             f"Got {tuple(X.shape)}.")
        h = self.act(self.fc1(X.flatten(1)))
        h = self.act(self.fc2(h))
        return self.fc4(self.act(self.fc3(h)))


class PaperCifarCNN(nn.Module):
    """The authors' CIFAR-10 CNN: Conv(3→16, 3×3, pad 1) → ReLU → MaxPool 2 → 4096→64→64→64→10.

    Args:
        hidden: units of each of the three hidden fc layers.
        n_classes: number of output classes.

    Raises:
        TypeError: a size that is not an int.
        ValueError: a size < 1.

    Example:
        >>> PaperCifarCNN()(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """

    def __init__(self, hidden: int = 64, n_classes: int = 10) -> None:
        super().__init__()
        check_int(hidden, "hidden", minimum=1)
        check_int(n_classes, "n_classes", minimum=1)
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.fc1 = nn.Linear(16 * 16 * 16, hidden, bias=False)
        self.fc2 = nn.Linear(hidden, hidden, bias=False)
        self.fc3 = nn.Linear(hidden, hidden, bias=False)
        self.fc4 = nn.Linear(hidden, n_classes, bias=False)
        self.pool, self.act = nn.MaxPool2d(2), nn.ReLU()

    def forward(self, X: Tensor) -> Tensor:
        """X: (B, 3, 32, 32) → logits (B, n_classes)."""
        _check_images(X, (3, 32, 32))
        h = self.pool(self.act(self.conv(X))).flatten(1)  # (B, 4096)
        h = self.act(self.fc2(self.act(self.fc1(h))))
        return self.fc4(self.act(self.fc3(h)))


def _check_images(X: object, item: tuple[int, int, int]) -> None:
    """Refuse a batch that is not a floating-point tensor (B, *item) with B >= 1."""
    shape = "(B, " + ", ".join(map(str, item)) + ")"
    if not isinstance(X, Tensor) or not X.is_floating_point():
        raise TypeError(f"'X' must be a floating-point tensor {shape}. Got {describe(X)}.")
    if X.ndim != 4 or tuple(X.shape[1:]) != item or len(X) == 0:
        raise ValueError(f"'X' must have shape {shape} with B >= 1. Got {tuple(X.shape)}.")


def _check_heads(width_name: str, width: int, n_heads: int) -> None:
    if width % n_heads:
        raise ValueError(f"'{width_name}' must be a multiple of the number of heads {n_heads}. "
                         f"Got {width}.")


class _Attention(nn.Module):
    """Causal multi-head self-attention, Q, K, V, O each its own bias-free ``nn.Linear``.

    Separate modules (not one fused QKV matrix) so that each is a weight graph of its own, and
    k contiguous blocks of ``d_model`` line up with heads when k divides ``n_heads``.
    """

    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads, self.d_head = n_heads, d_model // n_heads
        self.q = nn.Linear(d_model, d_model, bias=False)
        self.k = nn.Linear(d_model, d_model, bias=False)
        self.v = nn.Linear(d_model, d_model, bias=False)
        self.o = nn.Linear(d_model, d_model, bias=False)

    def _heads(self, h: Tensor) -> Tensor:
        B, T, _ = h.shape
        return h.view(B, T, self.n_heads, self.d_head).transpose(1, 2)  # (B, H, T, d_head)

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, T, d_model) → (B, T, d_model)."""
        B, T, _ = x.shape
        q, k, v = self._heads(self.q(x)), self._heads(self.k(x)), self._heads(self.v(x))
        scores = q @ k.transpose(-2, -1) / self.d_head**0.5  # (B, H, T, T)
        future = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)  # (T, T)
        pattern = scores.masked_fill(future, float("-inf")).softmax(-1)  # (B, H, T, T)
        z = (pattern @ v).transpose(1, 2).reshape(B, T, -1)  # (B, H, T, d_head) -> (B, T, d_model)
        return self.o(z)


class _MLP(nn.Module):
    """``fc_out(relu(fc_in(x)))``: the d_mlp hidden neurons are fc_in's rows, fc_out's columns."""

    def __init__(self, d_model: int, d_mlp: int) -> None:
        super().__init__()
        self.fc_in = nn.Linear(d_model, d_mlp)
        self.fc_out = nn.Linear(d_mlp, d_model)
        self.act = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, T, d_model) → (B, T, d_model)."""
        return self.fc_out(self.act(self.fc_in(x)))


class ModAddTransformer(nn.Module):
    """The paper's one-layer transformer for ``(a + b) mod p`` on the sequence ``a b =``.

    Token and learned position embeddings, one causal attention layer, one ReLU MLP, both added
    to the residual stream, no LayerNorm (as Nanda et al.'s grokking model), and an unembedding
    to the p answers read at the last position (the '=' token). Every matrix that is clustered
    is its own ``nn.Linear``: ``attn.q``, ``attn.k``, ``attn.v``, ``attn.o``, ``mlp.fc_in``,
    ``mlp.fc_out`` (and ``unembed``), so :func:`modlib.weight_layers` and
    :class:`modlib.ClusterabilityLoss` see them by name.

    Args:
        p: the modulus; tokens ``0..p-1`` are numbers and token ``p`` is '='.
        d_model: width of the residual stream.
        n_heads: attention heads; ``d_head = d_model // n_heads``.
        d_mlp: hidden neurons of the MLP.
        n_ctx: context length (3 for ``a b =``).

    Raises:
        TypeError: a size that is not an int.
        ValueError: a size < 1 (``p`` < 2), or ``d_model`` not a multiple of ``n_heads``.

    Example:
        >>> model = ModAddTransformer(p=7, d_model=16, n_heads=4, d_mlp=16)
        >>> model(torch.tensor([[3, 5, 7]])).shape  # 3 + 5 = ?
        torch.Size([1, 7])

    Introduced in notebook 06.
    """

    def __init__(self, p: int = 113, *, d_model: int = 128, n_heads: int = 4, d_mlp: int = 128,
                 n_ctx: int = 3) -> None:
        super().__init__()
        check_int(p, "p", minimum=2)
        for name, value in [("d_model", d_model), ("n_heads", n_heads), ("d_mlp", d_mlp),
                            ("n_ctx", n_ctx)]:
            check_int(value, name, minimum=1)
        _check_heads("d_model", d_model, n_heads)
        self.p, self.n_ctx = p, n_ctx
        self.equals_token = p  # the '=' token
        self.embed = nn.Embedding(p + 1, d_model)
        self.pos = nn.Embedding(n_ctx, d_model)
        self.attn = _Attention(d_model, n_heads)
        self.mlp = _MLP(d_model, d_mlp)
        self.unembed = nn.Linear(d_model, p, bias=False)

    def forward(self, tokens: Tensor) -> Tensor:
        """tokens: (B, n_ctx) integer token ids in ``[0, p]`` → logits (B, p).

        Raises:
            TypeError: tokens that are not an integer tensor.
            ValueError: tokens not of shape (B, n_ctx), or ids outside ``[0, p]``.
        """
        if not isinstance(tokens, Tensor) or tokens.dtype.is_floating_point \
                or tokens.dtype == torch.bool:
            raise TypeError(f"'tokens' must be an integer tensor. Got {describe(tokens)}.")
        if tokens.ndim != 2 or tokens.shape[1] != self.n_ctx:
            raise ValueError(f"'tokens' must have shape (B, {self.n_ctx}). "
                             f"Got {tuple(tokens.shape)}.")
        if tokens.numel() and not 0 <= int(tokens.min()) <= int(tokens.max()) <= self.p:
            raise ValueError(f"'tokens' must be ids in [0, {self.p}] (p = {self.p} is '='). "
                             f"Got values in [{int(tokens.min())}, {int(tokens.max())}].")
        x = self.embed(tokens) + self.pos.weight  # (B, T, d_model) + (T, d_model)
        x = x + self.attn(x)  # (B, T, d_model)
        x = x + self.mlp(x)  # (B, T, d_model)
        return self.unembed(x[:, -1])  # (B, d_model) -> (B, p)


def _check_lm(vocab_size: int, n_layer: int, n_head: int, n_embd: int, n_positions: int) -> None:
    """Validate the sizes of a small causal LM, and that transformers (the [llm] extra) exists."""
    for name, value in [("vocab_size", vocab_size), ("n_layer", n_layer), ("n_head", n_head),
                        ("n_embd", n_embd), ("n_positions", n_positions)]:
        check_int(value, name, minimum=1)
    _check_heads("n_embd", n_embd, n_head)
    try:
        import transformers  # noqa: F401
    except ImportError as err:
        raise ImportError("The small language models need transformers: install the course "
                          "library with its [llm] extra (see the README).") from err


def tiny_gpt2(vocab_size: int, *, n_layer: int = 2, n_head: int = 4, n_embd: int = 128,
              n_positions: int = 256) -> GPT2LMHeadModel:
    """A small, randomly initialised GPT-2-architecture causal LM (no download).

    The offline stand-in for GPT-2 small: the same modules (``transformer.h.{i}.mlp.c_fc`` …,
    see :mod:`modlib.analysis.llm`), only fewer and narrower. The MLP is ``4 * n_embd`` wide as in
    GPT-2.
    Its beginning- and end-of-text token is the last id, ``vocab_size - 1``, as GPT-2's
    ``<|endoftext|>`` is.

    Args:
        vocab_size: number of token ids.
        n_layer: transformer blocks.
        n_head: attention heads; must divide ``n_embd``.
        n_embd: width of the residual stream.
        n_positions: longest context.

    Returns:
        A ``transformers.GPT2LMHeadModel`` in training mode.

    Raises:
        ImportError: transformers is not installed
            (``pip install "modular-training-course[llm]"``).
        TypeError: a size that is not an int.
        ValueError: a size < 1, or ``n_embd`` not a multiple of ``n_head``.

    Example:
        >>> model = tiny_gpt2(50, n_layer=1, n_head=2, n_embd=16, n_positions=8)
        >>> model(torch.zeros(2, 8, dtype=torch.long)).logits.shape
        torch.Size([2, 8, 50])

    Introduced in notebook 07.
    """
    _check_lm(vocab_size, n_layer, n_head, n_embd, n_positions)
    from transformers import GPT2Config, GPT2LMHeadModel
    config = GPT2Config(vocab_size=vocab_size, n_positions=n_positions, n_embd=n_embd,
                        n_layer=n_layer, n_head=n_head, bos_token_id=vocab_size - 1,
                        eos_token_id=vocab_size - 1)
    return GPT2LMHeadModel(config)


def tiny_gpt_neox(vocab_size: int, *, n_layer: int = 2, n_head: int = 4, n_embd: int = 128,
                  n_positions: int = 256) -> nn.Module:
    """A small, randomly initialised GPT-NeoX (Pythia) causal LM: the offline Pythia stand-in.

    Same arguments and errors as :func:`tiny_gpt2`; modules are named like Pythia's
    (``gpt_neox.layers.{i}.mlp.dense_h_to_4h`` …). Introduced in notebook 07.

    Example:
        >>> model = tiny_gpt_neox(50, n_layer=1, n_head=2, n_embd=16, n_positions=8)
        >>> model(torch.zeros(2, 8, dtype=torch.long)).logits.shape
        torch.Size([2, 8, 50])
    """
    _check_lm(vocab_size, n_layer, n_head, n_embd, n_positions)
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM
    config = GPTNeoXConfig(vocab_size=vocab_size, hidden_size=n_embd, num_hidden_layers=n_layer,
                           num_attention_heads=n_head, intermediate_size=4 * n_embd,
                           max_position_embeddings=n_positions, bos_token_id=vocab_size - 1,
                           eos_token_id=vocab_size - 1)
    return GPTNeoXForCausalLM(config)
