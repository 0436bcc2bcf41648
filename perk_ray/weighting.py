"""The token weighting model: per-token weights of the inner loss, from the model's last hidden states."""

from __future__ import annotations

import torch
from torch import Tensor, nn

ACTIVATIONS = {
    "softplus": lambda x: nn.functional.softplus(x, beta=3.0),
    "sigmoid": torch.sigmoid,
    "exp": torch.exp,
    "gelu": nn.functional.gelu,
}


class TokenWeighting(nn.Module):
    """hidden -> width, GELU, -> 1 (zero-initialised), then an activation, times the mask.

    With ``normalize`` each chunk's weights are rescaled to mean 1 over its loss tokens, so at initialisation the
    weighted loss equals the plain loss.
    """

    def __init__(self, hidden_size: int, width: int = 128, activation: str = "softplus", normalize: bool = True):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(hidden_size, width), nn.GELU(), nn.Linear(width, 1))
        nn.init.zeros_(self.net[2].weight)
        nn.init.zeros_(self.net[2].bias)
        self.activation = activation
        self.normalize = normalize

    def forward(self, hidden: Tensor, mask: Tensor) -> Tensor:
        weights = ACTIVATIONS[self.activation](self.net(hidden.to(self.net[0].weight.dtype)).squeeze(-1)) * mask
        if self.normalize:
            count = mask.sum(dim=-1, keepdim=True).clamp_min(1.0)
            weights = weights * count / weights.sum(dim=-1, keepdim=True).clamp_min(1e-12)
        return weights
