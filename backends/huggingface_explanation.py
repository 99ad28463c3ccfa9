"""One head of a Hugging Face BART-style layer opened up: the intermediates of one attention row.

BART, mBART, Marian and M2M100 / NLLB share BART's layer code (transformers copies it between them): an attention
module with q_proj, k_proj, v_proj, out_proj and `scaling` (head_dim ** -0.5, applied to q·k, not inside q_proj),
the eager softmax(q Kᵀ · scaling + mask) V, the block's LayerNorm (self_attn_layer_norm, encoder_attn_layer_norm)
either before the block (pre-LN: mBART, M2M100) or after its residual add (post-LN: BART, Marian), then
fc1, activation_fn, fc2 around final_layer_norm in the same order. Pre-LN encoders end with a final layer_norm:
cross-attention reads the encoder output after it.

Forward hooks on the explained layer catch what each step reads during one teacher-forced pass: the attention
module's input and mask (and key_value_states, the encoder output, for cross-attention), the residual stream
entering the block, and the stream entering the feed-forward block. Every later step is recomputed from those with
the layer's own modules, in the model's dtype and in the order of the model's code, so the softmax row is the row
of the map attention() returns.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from backends.interface import (
    AttentionKind,
    FeedForwardStep,
    HeadExplanation,
    InputError,
    LayerNormPlacement,
    PositionTable,
    Token,
)
from model.explanation import POSITION_ROWS

# model_type -> where its layers put the LayerNorms, as each family's modeling code has it (transformers 5):
# BART and Marian normalise after the residual add, mBART and M2M100 (NLLB's model_type too) before the block.
# Other BART-like families (Pegasus, PLBart, Blenderbot …) are not checked here, so they do not explain.
LAYER_NORMS: dict[str, LayerNormPlacement] = {"bart": "post", "marian": "post", "mbart": "pre", "m2m_100": "pre"}
# config.activation_function -> its name as the page writes it; a name missing here is shown as the config has it
ACTIVATION_NAMES = {"relu": "ReLU", "gelu": "GELU", "gelu_new": "GELU", "swish": "Swish", "silu": "SiLU", "tanh": "tanh"}
ATTENTION_PARTS = ("q_proj", "k_proj", "v_proj", "out_proj", "scaling", "head_dim")
LAYER_PARTS = ("self_attn", "self_attn_layer_norm", "fc1", "fc2", "activation_fn", "final_layer_norm")


def layer_norm_placement(model) -> LayerNormPlacement | None:
    """Where `model`'s LayerNorms sit, when its family explains (explainable()); None otherwise."""
    return LAYER_NORMS.get(model.config.model_type) if explainable(model) else None


def explainable(model) -> bool:
    """A checkpoint of a checked family, loaded with eager attention, whose layers have every part explain reads."""
    if model.config.model_type not in LAYER_NORMS or model.config._attn_implementation != "eager":
        return False
    encoder_layers, decoder_layers = model.get_encoder().layers, model.get_decoder().layers
    attentions = [layer.self_attn for layer in [*encoder_layers, *decoder_layers]]
    attentions += [getattr(layer, "encoder_attn", None) for layer in decoder_layers]
    layers_ok = all(hasattr(layer, part) for layer in [*encoder_layers, *decoder_layers] for part in LAYER_PARTS)
    decoder_ok = all(hasattr(layer, "encoder_attn_layer_norm") for layer in decoder_layers)
    return layers_ok and decoder_ok and all(hasattr(attention, part) for attention in attentions for part in ATTENTION_PARTS)


class _Catch:
    """What forward hooks on one layer caught during a pass; each value is the module's own input."""

    def __init__(self):
        self.values: dict[str, Tensor | None] = {}
        self.handles: list = []

    def input_of(self, module: nn.Module, name: str) -> None:
        def hook(_module, args, kwargs):
            self.values[name] = args[0] if args else kwargs["hidden_states"]

        self.handles.append(module.register_forward_pre_hook(hook, with_kwargs=True))

    def attention_inputs(self, module: nn.Module) -> None:
        def hook(_module, args, kwargs):
            self.values["x"] = args[0] if args else kwargs["hidden_states"]
            self.values["key_value_states"] = kwargs.get("key_value_states")
            self.values["mask"] = kwargs.get("attention_mask")

        self.handles.append(module.register_forward_pre_hook(hook, with_kwargs=True))

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def _allowed(mask: Tensor | None, scores: Tensor) -> Tensor:
    """(1, H, Tq, Tk) bool from the mask the attention module was given: None (nothing masked), boolean (True where
    allowed) or additive (0 where allowed, the dtype's minimum where not)."""
    if mask is None:
        return torch.ones_like(scores, dtype=torch.bool)
    if mask.dtype == torch.bool:
        return mask.expand_as(scores)
    return (mask > torch.finfo(mask.dtype).min / 2).expand_as(scores)


def position_table(embed_positions: nn.Module, side: str, rows: int = POSITION_ROWS) -> PositionTable:
    """The vectors added at positions 0 … rows-1: Marian's sinusoidal nn.Embedding from row 0, M2M100's sinusoidal
    `weights` buffer from row padding_idx + 1 (its first position), BART's and mBART's learned table from its offset 2."""
    sinusoidal = "Sinusoidal" in type(embed_positions).__name__
    if hasattr(embed_positions, "weights"):  # M2M100
        table, start = embed_positions.weights, embed_positions.padding_idx + 1
    else:
        table, start = embed_positions.weight, getattr(embed_positions, "offset", 0)
    return PositionTable("sinusoidal" if sinusoidal else "learned", side, table[start : start + rows].detach().float().cpu())


@torch.inference_mode()
def explain_head(
    model,
    inputs: dict[str, Tensor],
    kind: AttentionKind,
    layer: int,
    head: int,
    query: int,
    *,
    source_tokens: list[Token],
    target_tokens: list[Token],
    decoder_input_tokens: list[Token],
    translation: str,
    forced: bool,
    controls: dict[str, str],
    gates: Tensor | None = None,
) -> HeadExplanation:
    """Row `query` of `head` in `layer` of the `kind` attention, over one teacher-forced pass of `inputs`
    (input_ids, attention_mask, decoder_input_ids: a batch of one); `gates` (H,) this layer's head gates,
    where heads are switched off (the pass itself runs under the adapter's gates)."""
    placement = LAYER_NORMS[model.config.model_type]
    side = model.get_encoder() if kind == "encoder" else model.get_decoder()
    if not 0 <= layer < len(side.layers):
        raise InputError(f"{kind} layer {layer} out of range: valid layers are 0 to {len(side.layers) - 1}")
    block = side.layers[layer]
    attention = block.encoder_attn if kind == "cross" else block.self_attn
    block_norm = block.encoder_attn_layer_norm if kind == "cross" else block.self_attn_layer_norm
    heads = attention.out_proj.weight.size(0) // attention.head_dim
    if not 0 <= head < heads:
        raise InputError(f"{kind} head {head} out of range: valid heads are 0 to {heads - 1}")
    queries = len(source_tokens) if kind == "encoder" else len(target_tokens)
    if not 0 <= query < queries:
        raise InputError(f"query {query} out of range: valid queries are 0 to {queries - 1}")

    catch = _Catch()
    catch.attention_inputs(attention)
    catch.input_of(block_norm, "block_norm_in")  # pre-LN: the residual stream entering the block
    # the stream entering the feed-forward block: pre-LN, what final_layer_norm reads; post-LN, what fc1 reads
    catch.input_of(block.final_layer_norm if placement == "pre" else block.fc1, "ff_in")
    try:
        model(**inputs, use_cache=False)
    finally:
        catch.remove()
    caught = catch.values

    x = caught["x"]  # (1, Tq, D) what the queries are projected from
    memory = caught["key_value_states"] if kind == "cross" else x  # (1, Tk, D)
    d_k = attention.head_dim

    def split(states: Tensor) -> Tensor:  # (1, T, D) -> (1, H, T, d_k)
        return states.view(*states.shape[:2], -1, d_k).transpose(1, 2)

    q, k, v = split(attention.q_proj(x)), split(attention.k_proj(memory)), split(attention.v_proj(memory))
    scores = torch.matmul(q, k.transpose(2, 3)) * attention.scaling  # (1, H, Tq, Tk), the model's order of operations
    mask = caught["mask"]
    if mask is None:
        masked = scores
    elif mask.dtype == torch.bool:
        masked = scores.masked_fill(~mask, -torch.inf)
    else:  # additive, as eager_attention_forward adds it
        masked = scores + mask
    weights = masked.softmax(dim=-1)  # (1, H, Tq, Tk)
    head_outputs = torch.matmul(weights, v)  # (1, H, Tq, d_k)
    if gates is not None:  # a switched-off head's output is zero, as the out_proj pre-hook makes it in the pass
        head_outputs = head_outputs * gates.to(head_outputs.dtype)[None, :, None, None]
    concatenated = head_outputs.transpose(1, 2).reshape(*x.shape[:2], -1)  # (1, Tq, D)
    attention_output = attention.out_proj(concatenated)  # (1, Tq, D)
    if placement == "pre":  # x + Block(LayerNorm(x))
        residual_in = caught["block_norm_in"]
        residual_out = residual_in + attention_output
    else:  # LayerNorm(x + Block(x))
        residual_in = x
        residual_out = block_norm(residual_in + attention_output)

    ff_in = caught["ff_in"]  # (1, Tq, D)
    ff_normed = block.final_layer_norm(ff_in) if placement == "pre" else ff_in
    ff_out = block.fc2(block.activation_fn(block.fc1(ff_normed)))
    ff_result = ff_in + ff_out if placement == "pre" else block.final_layer_norm(ff_in + ff_out)

    def at_query(tensor: Tensor) -> Tensor:  # (1, T, D) -> (D,)
        return tensor[0, query].float().cpu()

    def of_head(tensor: Tensor) -> Tensor:  # (1, H, T, ·) -> (T, ·)
        return tensor[0, head].float().cpu()

    return HeadExplanation(
        kind=kind,
        layer=layer,
        head=head,
        query=query,
        source_tokens=source_tokens,
        target_tokens=target_tokens,
        decoder_input_tokens=decoder_input_tokens,
        translation=translation,
        forced=forced,
        controls=controls,
        d_ff=block.fc1.out_features,
        query_input=at_query(x),
        key_inputs=memory[0].float().cpu(),
        queries=of_head(q),
        keys=of_head(k),
        values=of_head(v),
        scores=of_head(scores)[query],
        allowed=_allowed(mask, scores)[0, head, query].cpu(),
        weights=of_head(weights)[query],
        head_outputs=head_outputs[0, :, query].float().cpu(),
        attention_output=at_query(attention_output),
        residual_in=at_query(residual_in),
        residual_out=at_query(residual_out),
        feed_forward=FeedForwardStep(
            input=at_query(ff_in), normed=at_query(ff_normed), output=at_query(ff_out), result=at_query(ff_result)
        ),
        positions=position_table(side.embed_positions, "source" if kind == "encoder" else "target"),
        activation=ACTIVATION_NAMES.get(model.config.activation_function, model.config.activation_function),
    )
