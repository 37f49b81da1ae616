"""SAM's mask decoder with its prompt-independent first steps computed once per image.

Per click, segment-anything's MaskDecoder repeats work that depends on the image alone: the image
embedding plus the dense prompt embedding (the learned "no mask" embedding when no mask is given),
flattened to 4096 tokens, and, in the first two-way block, three projections of those tokens (the
token-to-image key and value, the image-to-token query): 3 of the decoder's 10 projections over
4096 tokens. ``ImageState`` holds them per image; ``decode`` is MaskDecoder.predict_masks and
TwoWayTransformer.forward with them reused, the same operations in the same order otherwise (its
output equals the package's to float rounding: tests/unit/assist/test_sam_session.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass
class ImageState:
    """The decoder's prompt-independent tensors for one image embedding (batch of one)."""

    keys: Tensor  # 1 x HW x C: the embedding plus the no-mask embedding, as tokens
    key_pe: Tensor  # 1 x HW x C: the positional encoding as tokens
    k0: Tensor  # first block, token-to-image: k_proj(keys + key_pe)
    v0: Tensor  # first block, token-to-image: v_proj(keys)
    q0: Tensor  # first block, image-to-token: q_proj(keys + key_pe)
    hw: tuple[int, int]


def _heads(x: Tensor, n: int) -> Tensor:
    b, t, c = x.shape
    return x.reshape(b, t, n, c // n).transpose(1, 2)


def _attend(att: nn.Module, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """Attention.forward from projected q, k, v."""
    q, k, v = _heads(q, att.num_heads), _heads(k, att.num_heads), _heads(v, att.num_heads)
    attn = torch.softmax(q @ k.permute(0, 1, 3, 2) / math.sqrt(q.shape[-1]), dim=-1)
    out = attn @ v
    b, n, t, c = out.shape
    return att.out_proj(out.transpose(1, 2).reshape(b, t, n * c))


@torch.inference_mode()
def image_state(model: nn.Module, features: Tensor) -> ImageState:
    """What every click on this image shares (computed once, after the embedding is set)."""
    pe = model.prompt_encoder
    dense = pe.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(1, -1, *pe.image_embedding_size)
    src = features + dense
    _, _, h, w = src.shape
    keys = src.flatten(2).permute(0, 2, 1)
    key_pe = pe.get_dense_pe().flatten(2).permute(0, 2, 1)
    first = model.mask_decoder.transformer.layers[0]
    k = keys + key_pe
    return ImageState(
        keys=keys,
        key_pe=key_pe,
        k0=first.cross_attn_token_to_image.k_proj(k),
        v0=first.cross_attn_token_to_image.v_proj(keys),
        q0=first.cross_attn_image_to_token.q_proj(k),
        hw=(h, w),
    )


@torch.inference_mode()
def decode(model: nn.Module, state: ImageState, sparse: Tensor, multimask: bool) -> tuple[Tensor, Tensor]:
    """Low-resolution mask logits and predicted IoUs for one prompt (MaskDecoder.forward, no mask input)."""
    dec = model.mask_decoder
    tr = dec.transformer
    output_tokens = torch.cat([dec.iou_token.weight, dec.mask_tokens.weight], dim=0).unsqueeze(0)
    tokens = torch.cat((output_tokens, sparse), dim=1)
    queries, keys, key_pe = tokens, state.keys, state.key_pe
    for n, layer in enumerate(tr.layers):
        if layer.skip_first_layer_pe:
            queries = layer.self_attn(q=queries, k=queries, v=queries)
        else:
            q = queries + tokens
            queries = queries + layer.self_attn(q=q, k=q, v=queries)
        queries = layer.norm1(queries)
        q = queries + tokens
        t2i = layer.cross_attn_token_to_image
        if n == 0:
            attn_out = _attend(t2i, t2i.q_proj(q), state.k0, state.v0)
        else:
            k = keys + key_pe
            attn_out = _attend(t2i, t2i.q_proj(q), t2i.k_proj(k), t2i.v_proj(keys))
        queries = layer.norm2(queries + attn_out)
        queries = layer.norm3(queries + layer.mlp(queries))
        q = queries + tokens
        i2t = layer.cross_attn_image_to_token
        qk = state.q0 if n == 0 else i2t.q_proj(keys + key_pe)
        keys = layer.norm4(keys + _attend(i2t, qk, i2t.k_proj(q), i2t.v_proj(queries)))
    q = queries + tokens
    queries = tr.norm_final_attn(queries + tr.final_attn_token_to_image(q=q, k=keys + key_pe, v=keys))
    iou_token_out = queries[:, 0, :]
    mask_tokens_out = queries[:, 1 : 1 + dec.num_mask_tokens, :]
    h, w = state.hw
    src = keys.transpose(1, 2).reshape(1, -1, h, w)
    up = dec.output_upscaling(src)
    hyper = torch.stack([mlp(mask_tokens_out[:, i, :]) for i, mlp in enumerate(dec.output_hypernetworks_mlps)], dim=1)
    b, c, hh, ww = up.shape
    masks = (hyper @ up.view(b, c, hh * ww)).view(b, -1, hh, ww)
    iou = dec.iou_prediction_head(iou_token_out)
    sl = slice(1, None) if multimask else slice(0, 1)
    return masks[:, sl], iou[:, sl]
