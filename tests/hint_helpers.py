"""Tiny hint-conditioned colorizers for tests (random encoder, no download)."""

from __future__ import annotations

from pathlib import Path

import torch

from pixcolor.checkpoint import save_model
from pixcolor.models.effunet import EffUNet

TINY_KWARGS = {"head": "bins", "hints": True, "decoder_channels": [8, 8, 8, 8, 8]}


def tiny_hint_network(*, spread: bool = True, seed: int = 0) -> EffUNet:
    """A tiny hint model whose hint inputs matter: the hinted ab drives the logits near it.

    The hint input weights of the last stage are set so that a hinted cell's logits follow the
    hint's bin; ``spread=False`` turns the propagation off (its "no hint" key always wins), so a
    hint then acts only within the decoder's receptive field.
    """
    torch.manual_seed(seed)
    net = EffUNet(**TINY_KWARGS).eval()
    with torch.no_grad():
        for up in net.ups:
            torch.nn.init.normal_(up.block[0].weight[:, -6:], std=2.0)
        if not spread:
            net.hint_propagation.no_hint.fill_(1e4)
            net.hint_head.propagation.no_hint.fill_(1e4)
    return net


def save_tiny_hint_model(folder: Path, *, spread: bool = True, size: int = 64) -> Path:
    """Save :func:`tiny_hint_network` as a model folder (``model.safetensors`` + ``config.json``)."""
    return save_model(
        tiny_hint_network(spread=spread), folder, "effunet", TINY_KWARGS, extra={"size": size}
    )
