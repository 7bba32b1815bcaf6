"""Models of the course: the paper's reproduction networks and the course's own small CNN.

- :class:`MnistCNN`: the course's small MNIST CNN, the "pretrained CNN" of notebook 02.
- :class:`PaperMLP`: the authors' MNIST MLP 784→64→64→64→10 without biases.
- :class:`PaperCifarCNN`: the authors' CIFAR-10 CNN (one conv, four fc layers without biases).

Shapes follow PAPER.md; introduced in notebooks 02–03 and 05.
"""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["MnistCNN", "PaperMLP", "PaperCifarCNN"]


class MnistCNN(nn.Module):
    """Two 3×3 conv layers and three fc layers for 28×28 digits.

    Args:
        width: channels of the first conv layer (the second has twice as many); fc hidden
            sizes are ``8 * width`` and ``4 * width``.
        n_classes: number of output classes.

    Example:
        >>> MnistCNN()(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """

    def __init__(self, width: int = 16, n_classes: int = 10) -> None:
        super().__init__()
        if width < 1:
            raise ValueError(f"'width' must be an int >= 1. Got {width!r}.")
        self.conv1 = nn.Conv2d(1, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1)
        self.fc1 = nn.Linear(2 * width * 7 * 7, 8 * width)
        self.fc2 = nn.Linear(8 * width, 4 * width)
        self.fc3 = nn.Linear(4 * width, n_classes)
        self.pool, self.act = nn.MaxPool2d(2), nn.ReLU()

    def forward(self, X: Tensor) -> Tensor:
        """X: (B, 1, 28, 28) → logits (B, n_classes)."""
        h = self.pool(self.act(self.conv1(X)))  # (B, w, 14, 14)
        h = self.pool(self.act(self.conv2(h)))  # (B, 2w, 7, 7)
        h = self.act(self.fc1(h.flatten(1)))  # (B, 8w)
        return self.fc3(self.act(self.fc2(h)))


class PaperMLP(nn.Module):
    """The authors' MNIST MLP: 784→64→64→64→10, ReLU, no biases.

    Example:
        >>> PaperMLP()(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """

    def __init__(self, hidden: int = 64, n_classes: int = 10) -> None:
        super().__init__()
        self.fc1 = nn.Linear(784, hidden, bias=False)
        self.fc2 = nn.Linear(hidden, hidden, bias=False)
        self.fc3 = nn.Linear(hidden, hidden, bias=False)
        self.fc4 = nn.Linear(hidden, n_classes, bias=False)
        self.act = nn.ReLU()

    def forward(self, X: Tensor) -> Tensor:
        """X: (B, 1, 28, 28) or (B, 784) → logits (B, n_classes)."""
        h = self.act(self.fc1(X.flatten(1)))
        h = self.act(self.fc2(h))
        return self.fc4(self.act(self.fc3(h)))


class PaperCifarCNN(nn.Module):
    """The authors' CIFAR-10 CNN: Conv(3→16, 3×3, pad 1) → ReLU → MaxPool 2 → 4096→64→64→64→10.

    Example:
        >>> PaperCifarCNN()(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """

    def __init__(self, hidden: int = 64, n_classes: int = 10) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.fc1 = nn.Linear(16 * 16 * 16, hidden, bias=False)
        self.fc2 = nn.Linear(hidden, hidden, bias=False)
        self.fc3 = nn.Linear(hidden, hidden, bias=False)
        self.fc4 = nn.Linear(hidden, n_classes, bias=False)
        self.pool, self.act = nn.MaxPool2d(2), nn.ReLU()

    def forward(self, X: Tensor) -> Tensor:
        """X: (B, 3, 32, 32) → logits (B, n_classes)."""
        h = self.pool(self.act(self.conv(X))).flatten(1)  # (B, 4096)
        h = self.act(self.fc2(self.act(self.fc1(h))))
        return self.fc4(self.act(self.fc3(h)))
