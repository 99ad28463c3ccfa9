"""An encoder-decoder transformer that returns every attention map it computes.

The architecture follows "Attention Is All You Need" with pre-layer normalisation (which trains
stably at high learning rates on small data). Every module returns what it computed explicitly
(HeadsTrace, AttentionTrace, LayerTrace; no hooks): encode() and decode() keep the attention weights,
detached, so the maps shown by attnscope are exactly the ones the model used, and trace() keeps
everything else of the same pass (the residual streams, queries, keys, values, scores, head outputs)
for the attribution methods.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model.gates import HeadGates, gate, layer_gates


@dataclass
class ModelConfig:
    src_vocab_size: int
    tgt_vocab_size: int
    d_model: int = 256
    n_heads: int = 4
    n_encoder_layers: int = 3
    n_decoder_layers: int = 3
    d_ff: int = 1024
    dropout: float = 0.1
    max_positions: int = 256
    positional_encoding: str = "sinusoidal"  # "sinusoidal" | "learned"
    tie_target_embeddings: bool = True
    pad_id: int = 0
    # Politeness control (model/politeness.py): the levels the decoder can be asked for,
    # e.g. ("plain", "polite"); empty for a model without it.
    politeness_levels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")
        if self.positional_encoding not in ("sinusoidal", "learned"):
            raise ValueError(f"unknown positional_encoding {self.positional_encoding!r}")
        self.politeness_levels = tuple(self.politeness_levels)  # a checkpoint stores the tuple as a list

    def to_dict(self) -> dict:
        return asdict(self)


def attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Scaled dot-product attention, softmax(QKᵀ/√d_k)·V.

    q: (B, H, Tq, d_k), k and v: (B, H, Tk, d_k); mask broadcasts to (B, H, Tq, Tk) and is True
    where a query may attend. Masked scores become -inf before the softmax, so their weights are
    exactly 0. Returns (out (B, H, Tq, d_k), weights (B, H, Tq, Tk), scores (B, H, Tq, Tk): QKᵀ/√d_k
    before the mask).
    """
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))  # (B, H, Tq, Tk)
    # where(), not masked_fill(~mask): the same values without inverting the mask again at every call (every
    # decoding step of every layer)
    masked = scores if mask is None else torch.where(mask, scores, float("-inf"))
    weights = masked.softmax(dim=-1)
    return weights @ v, weights, scores


@dataclass
class HeadsTrace:
    """What one multi-head attention computed (model.trace() records it; not detached)."""

    q: Tensor  # (B, H, Tq, d_k)
    k: Tensor  # (B, H, Tk, d_k)
    v: Tensor  # (B, H, Tk, d_k)
    scores: Tensor  # (B, H, Tq, Tk) QKᵀ/√d_k, before the mask and the softmax
    mask: Tensor | None  # broadcasts to (B, H, Tq, Tk), True where a query may attend
    weights: Tensor  # (B, H, Tq, Tk)
    head_outputs: Tensor  # (B, H, Tq, d_k) weights @ v, times the head's gate
    attn_out: Tensor  # (B, Tq, D) the heads concatenated, after out_proj (W_O)
    gates: Tensor | None  # (H,) or (B, H) the heads' gates (model.gates); None: every head on

    @property
    def gated_values(self) -> Tensor:
        """v (B, H, Tk, d_k) times each head's gate: what a head passes on (α·(g·v) = g·(α·v)), for the
        methods that read the values (norms, ALTI+), so a switched-off head contributes nothing."""
        return gate(self.v, self.gates)


@dataclass
class AttentionTrace(HeadsTrace):
    """One residual attention block, x + Attention(LayerNorm(x), key_value_in) (pre-LN)."""

    residual_in: Tensor  # (B, Tq, D) the residual stream entering the block
    query_in: Tensor  # (B, Tq, D) LayerNorm(residual_in), which makes the queries
    key_value_in: Tensor  # (B, Tk, D) what keys and values are made from: query_in, or the encoder memory for cross
    residual_out: Tensor  # (B, Tq, D) residual_in + attn_out


@dataclass
class LayerTrace:
    """One encoder or decoder layer: its attention blocks by kind, then the feed-forward block."""

    blocks: dict[str, AttentionTrace]  # "encoder" | "decoder" and "cross"
    ff_in: Tensor  # (B, T, D) the residual stream before the feed-forward block
    ff_normed: Tensor  # (B, T, D) LayerNorm(ff_in)
    ff_out: Tensor  # (B, T, D) FFN(ff_normed), before the residual add
    out: Tensor  # (B, T, D) ff_in + ff_out, the layer's output


@dataclass
class EncoderTrace:
    """The encoder's part of a trace: Seq2SeqTransformer.trace_encoder(), reusable by trace()."""

    embeddings: Tensor  # (B, S, D) token embedding · √D + position, the encoder's input
    layers: list[LayerTrace]
    memory: Tensor  # (B, S, D) encoder_norm of the last layer's output

    @property
    def encoded(self) -> tuple[Tensor, list[Tensor]]:
        """What encode() returns: (memory, per-layer self-attention weights [(B, H, S, S)], detached)."""
        return self.memory, [layer.blocks["encoder"].weights.detach() for layer in self.layers]


@dataclass
class ForwardTrace:
    """Everything one teacher-forced pass computed, from Seq2SeqTransformer.trace()."""

    source_embeddings: Tensor  # (B, S, D) token embedding · √D + position, the encoder's input
    target_embeddings: Tensor  # (B, T, D) the decoder's input, politeness embedding included
    encoder: list[LayerTrace]
    decoder: list[LayerTrace]
    memory: Tensor  # (B, S, D) encoder_norm of the last encoder layer's output
    logits: Tensor  # (B, T, V)


class MultiHeadAttention(nn.Module):
    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.n_heads = n_heads
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def _split_heads(self, x: Tensor) -> Tensor:
        b, t, d = x.shape
        # contiguous: MKL multiplies strided heads of a short sequence differently as the batch grows, contiguous ones
        # the same way (model.translator.Translator.batches_exactly counts on it)
        return x.view(b, t, self.n_heads, d // self.n_heads).transpose(1, 2).contiguous()  # (B, H, T, d_k)

    def keys_values(self, key_value: Tensor) -> tuple[Tensor, Tensor]:
        """key_value: (B, Tk, D) -> keys and values, each (B, H, Tk, d_k)."""
        return self._split_heads(self.k_proj(key_value)), self._split_heads(self.v_proj(key_value))

    def forward(
        self, query: Tensor, key_value: Tensor | tuple[Tensor, Tensor], mask: Tensor | None, gates: Tensor | None = None
    ) -> HeadsTrace:
        """query: (B, Tq, D), key_value: (B, Tk, D), or its keys_values() when already projected; gates: (H,) or
        (B, H) multipliers of each head's output before the output projection (model.gates)
        -> everything computed, attn_out (B, Tq, D) the block's output, head_outputs as gated."""
        q = self._split_heads(self.q_proj(query))
        k, v = key_value if isinstance(key_value, tuple) else self.keys_values(key_value)
        head_outputs, weights, scores = attention(q, k, v, mask)
        head_outputs = gate(head_outputs, gates)  # (B, H, Tq, d_k)
        b, h, t, d_k = head_outputs.shape
        out = self.out_proj(head_outputs.transpose(1, 2).reshape(b, t, h * d_k))  # (B, Tq, D)
        return HeadsTrace(q, k, v, scores, mask, weights, head_outputs, out, gates)


def attention_block(
    x: Tensor,
    norm: nn.LayerNorm,
    attn: MultiHeadAttention,
    memory: Tensor | None,
    mask: Tensor,
    dropout: nn.Dropout,
    gates: Tensor | None = None,
) -> AttentionTrace:
    """The pre-LN residual attention block x + Attention(LayerNorm(x), kv), kv = LayerNorm(x) for
    self-attention or the encoder memory for cross-attention; x: (B, Tq, D), gates as MultiHeadAttention's."""
    h = norm(x)
    key_value = h if memory is None else memory
    heads = attn(h, key_value, mask, gates)
    return AttentionTrace(
        **vars(heads), residual_in=x, query_in=h, key_value_in=key_value, residual_out=x + dropout(heads.attn_out)
    )


def feed_forward_block(
    blocks: dict[str, AttentionTrace], x: Tensor, norm: nn.LayerNorm, ff: FeedForward, dropout: nn.Dropout
) -> LayerTrace:
    """The pre-LN residual feed-forward block x + FFN(LayerNorm(x)) closing a layer; x: (B, T, D)."""
    h = norm(x)
    out = ff(h)
    return LayerTrace(blocks, ff_in=x, ff_normed=h, ff_out=out, out=x + dropout(out))


class FeedForward(nn.Module):
    def __init__(self, d_model: int, d_ff: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d_model, d_ff), nn.ReLU(), nn.Dropout(dropout), nn.Linear(d_ff, d_model))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class EncoderLayer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.self_attn_norm = nn.LayerNorm(cfg.d_model)
        self.self_attn = MultiHeadAttention(cfg.d_model, cfg.n_heads)
        self.ff_norm = nn.LayerNorm(cfg.d_model)
        self.ff = FeedForward(cfg.d_model, cfg.d_ff, cfg.dropout)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, src_mask: Tensor, gates: Tensor | None = None) -> LayerTrace:
        """x: (B, S, D), src_mask: (B, 1, 1, S), gates: (H,) or (B, H) -> the layer's trace, its output in .out (B, S, D)."""
        block = attention_block(x, self.self_attn_norm, self.self_attn, None, src_mask, self.dropout, gates)
        return feed_forward_block({"encoder": block}, block.residual_out, self.ff_norm, self.ff, self.dropout)


class DecoderLayer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.self_attn_norm = nn.LayerNorm(cfg.d_model)
        self.self_attn = MultiHeadAttention(cfg.d_model, cfg.n_heads)
        self.cross_attn_norm = nn.LayerNorm(cfg.d_model)
        self.cross_attn = MultiHeadAttention(cfg.d_model, cfg.n_heads)
        self.ff_norm = nn.LayerNorm(cfg.d_model)
        self.ff = FeedForward(cfg.d_model, cfg.d_ff, cfg.dropout)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(
        self,
        y: Tensor,
        memory: Tensor,
        tgt_mask: Tensor,
        src_mask: Tensor,
        self_gates: Tensor | None = None,
        cross_gates: Tensor | None = None,
    ) -> LayerTrace:
        """y: (B, T, D), memory: (B, S, D), tgt_mask: (B, 1, T, T), src_mask: (B, 1, 1, S); self_gates, cross_gates:
        (H,) or (B, H) -> the layer's trace, its output in .out (B, T, D)."""
        own = attention_block(y, self.self_attn_norm, self.self_attn, None, tgt_mask, self.dropout, self_gates)
        cross = attention_block(
            own.residual_out, self.cross_attn_norm, self.cross_attn, memory, src_mask, self.dropout, cross_gates
        )
        return feed_forward_block({"decoder": own, "cross": cross}, cross.residual_out, self.ff_norm, self.ff, self.dropout)

    def step(self, y: Tensor, cache: LayerCache, self_gates: Tensor | None = None, cross_gates: Tensor | None = None) -> Tensor:
        """y: (B, 1, D), the newest decoder position -> its output (B, 1, D), attending to the
        cached earlier positions; appends this position's keys and values to the cache. Inference
        only, so no dropout. self_gates, cross_gates: (H,) or (B, H)."""
        h = self.self_attn_norm(y)
        cache.append(*self.self_attn.keys_values(h))
        return self.attend_step(
            y, h, (cache.self_k, cache.self_v), (cache.cross_k, cache.cross_v), cache.src_mask, self_gates, cross_gates
        )

    def attend_step(
        self,
        y: Tensor,
        h: Tensor,
        own: tuple[Tensor, Tensor],
        cross: tuple[Tensor, Tensor],
        src_mask: Tensor | None,
        self_gates: Tensor | None,
        cross_gates: Tensor | None,
    ) -> Tensor:
        """The rest of step() once the newest position's keys and values are in `own`: y (B, 1, D) and h its
        self_attn_norm, own: the self-attention keys and values of every position so far, each (B, H, t, d_k),
        cross: the source's (B, H, S, d_k) -> the layer's output (B, 1, D). The decoding step exported to ONNX
        (model.onnx_graphs) runs this same code."""
        y = y + self.self_attn(h, own, None, self_gates).attn_out
        y = y + self.cross_attn(self.cross_attn_norm(y), cross, src_mask, cross_gates).attn_out
        return y + self.ff(self.ff_norm(y))


# Positions a new cache has room for before it grows (twofold): most sentences of the corpus end within 32 tokens.
CACHE_POSITIONS = 32


@dataclass
class LayerCache:
    """What incremental decoding keeps per decoder layer: the self-attention keys and values of
    the positions so far, and the cross-attention keys and values of the source, projected once.

    Keys and values live in buffers with room for more positions, so a step writes one position
    in place instead of copying the whole cache (torch.cat); a full buffer doubles.
    """

    keys: Tensor  # (B, H, capacity, d_k): positions 0 … length - 1 written
    values: Tensor
    length: int
    cross_k: Tensor  # (B, H, S, d_k)
    cross_v: Tensor
    src_mask: Tensor | None  # (B, 1, 1, S); None when no source in the batch has padding (nothing to mask)

    @classmethod
    def empty(cls, cross_k: Tensor, cross_v: Tensor, src_mask: Tensor | None) -> LayerCache:
        b, h, _, d_k = cross_k.shape
        buffer = cross_k.new_empty(b, h, CACHE_POSITIONS, d_k)
        return cls(buffer, torch.empty_like(buffer), 0, cross_k, cross_v, src_mask)

    @property
    def self_k(self) -> Tensor:
        return self.keys[:, :, : self.length]  # (B, H, t, d_k)

    @property
    def self_v(self) -> Tensor:
        return self.values[:, :, : self.length]

    def append(self, k: Tensor, v: Tensor) -> None:
        """k, v: (B, H, 1, d_k) of the newest position."""
        if self.length == self.keys.size(2):
            self.keys = torch.cat([self.keys, torch.empty_like(self.keys)], dim=2)
            self.values = torch.cat([self.values, torch.empty_like(self.values)], dim=2)
        self.keys[:, :, self.length] = k[:, :, 0]
        self.values[:, :, self.length] = v[:, :, 0]
        self.length += 1

    def hold(self, keys: Tensor, values: Tensor) -> None:
        """Take `keys` and `values` (B, H, t, d_k), those of every position so far computed elsewhere (the exported
        step, model.onnx_graphs), as the cache's; a later append() grows it as it grows a full buffer."""
        self.keys, self.values, self.length = keys, values, keys.size(2)

    def select(self, rows: Tensor) -> LayerCache:
        """The cache of the batch rows `rows` (B',), e.g. the beams that survive a step."""
        mask = None if self.src_mask is None else self.src_mask[rows]
        return LayerCache(self.keys[rows], self.values[rows], self.length, self.cross_k[rows], self.cross_v[rows], mask)


@dataclass
class TransformerState:
    """The incremental-decoding state: one LayerCache per decoder layer, and the head gates decoding runs under."""

    layers: list[LayerCache]
    gates: HeadGates | None = None

    @property
    def position(self) -> int:
        return self.layers[0].length

    def select(self, rows: Tensor) -> TransformerState:
        gates = None if self.gates is None else self.gates.select(rows)
        return TransformerState([cache.select(rows) for cache in self.layers], gates)


def sinusoidal_table(max_positions: int, d_model: int) -> Tensor:
    position = torch.arange(max_positions).unsqueeze(1)
    div = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
    table = torch.zeros(max_positions, d_model)
    table[:, 0::2] = torch.sin(position * div)
    table[:, 1::2] = torch.cos(position * div)
    return table  # (P, D)


class TokenEmbedding(nn.Module):
    """Token embedding scaled by √d_model plus positional encoding."""

    def __init__(self, vocab_size: int, cfg: ModelConfig):
        super().__init__()
        self.scale = math.sqrt(cfg.d_model)
        self.tokens = nn.Embedding(vocab_size, cfg.d_model, padding_idx=cfg.pad_id)
        if cfg.positional_encoding == "learned":
            self.positions = nn.Embedding(cfg.max_positions, cfg.d_model)
        else:
            self.register_buffer("table", sinusoidal_table(cfg.max_positions, cfg.d_model), persistent=False)
        self.dropout = nn.Dropout(cfg.dropout)

    def token_vectors(self, ids: Tensor) -> Tensor:
        """ids: (B, T) -> the token part of the embedding, tokens(ids)·√D (B, T, D), positions not added."""
        return self.tokens(ids) * self.scale

    def forward(self, ids: Tensor, start: int | Tensor = 0, token_vectors: Tensor | None = None) -> Tensor:
        """ids: (B, T) at positions start … start + T - 1 (start an int, or a 0-d tensor where the position must
        stay an input of an exported graph); token_vectors: (B, T, D) to use in place of token_vectors(ids) (what
        gradient attributions differentiate)."""
        positions = torch.arange(start, start + ids.size(1), device=ids.device)  # (T,)
        pos = self.positions(positions) if hasattr(self, "positions") else self.table[positions]
        tokens = self.token_vectors(ids) if token_vectors is None else token_vectors
        return self.dropout(tokens + pos)  # (B, T, D)


class Seq2SeqTransformer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.src_embed = TokenEmbedding(cfg.src_vocab_size, cfg)
        self.tgt_embed = TokenEmbedding(cfg.tgt_vocab_size, cfg)
        self.encoder_layers = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.n_encoder_layers))
        self.decoder_layers = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.n_decoder_layers))
        self.encoder_norm = nn.LayerNorm(cfg.d_model)
        self.decoder_norm = nn.LayerNorm(cfg.d_model)
        self.generator = nn.Linear(cfg.d_model, cfg.tgt_vocab_size, bias=False)
        if cfg.politeness_levels:
            # The requested politeness is added to every decoder input, so it never shows in a map.
            self.politeness_embedding = nn.Embedding(len(cfg.politeness_levels), cfg.d_model)
            self.politeness_head = nn.Linear(cfg.d_model, len(cfg.politeness_levels))
        self.apply(self._init_weights)
        if cfg.tie_target_embeddings:
            self.generator.weight = self.tgt_embed.tokens.weight

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=module.embedding_dim**-0.5)
            if module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()

    @property
    def attention_shapes(self) -> dict[str, tuple[int, int]]:
        """The attention kinds this network has, as (layers, heads)."""
        cfg = self.cfg
        return {
            "encoder": (cfg.n_encoder_layers, cfg.n_heads),
            "decoder": (cfg.n_decoder_layers, cfg.n_heads),
            "cross": (cfg.n_decoder_layers, cfg.n_heads),
        }

    @property
    def width(self) -> int:
        return self.cfg.d_model

    @property
    def tied_weights(self) -> tuple[str, ...]:
        """State-dict keys that share another key's tensor, left out of a checkpoint."""
        return ("generator.weight",) if self.cfg.tie_target_embeddings else ()

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def check_politeness_ids(self, politeness: Tensor | None) -> None:
        if (politeness is None) != (not self.cfg.politeness_levels):
            raise ValueError("pass politeness ids exactly when the model has politeness control")

    def source_mask(self, src: Tensor) -> Tensor:
        return (src != self.cfg.pad_id)[:, None, None, :]  # (B, 1, 1, S)

    def target_mask(self, tgt_in: Tensor) -> Tensor:
        t = tgt_in.size(1)
        causal = torch.ones(t, t, dtype=torch.bool, device=tgt_in.device).tril()
        return causal[None, None] & (tgt_in != self.cfg.pad_id)[:, None, None, :]  # (B, 1, T, T)

    def _encoder_pass(self, src: Tensor, token_vectors: Tensor | None = None, gates: HeadGates | None = None) -> EncoderTrace:
        """src: (B, S) ids, token_vectors as TokenEmbedding takes them, gates model.gates (their encoder part applies)."""
        mask = self.source_mask(src)
        x = embedded = self.src_embed(src, token_vectors=token_vectors)
        layers = []
        for i, layer in enumerate(self.encoder_layers):
            layers.append(trace := layer(x, mask, layer_gates(gates, "encoder", i)))
            x = trace.out
        return EncoderTrace(embedded, layers, self.encoder_norm(x))

    def encode(self, src: Tensor, gates: HeadGates | None = None) -> tuple[Tensor, list[Tensor]]:
        """src: (B, S) ids; gates: model.gates (their encoder part applies)
        -> (memory (B, S, D), per-layer self-attention weights [(B, H, S, S)])."""
        return self._encoder_pass(src, gates=gates).encoded

    @torch.no_grad()
    def trace_encoder(self, src: Tensor, gates: HeadGates | None = None) -> EncoderTrace:
        """The encoder's part of trace(), once per sentence: its .encoded is what encode() returns."""
        return self._encoder_pass(src, gates=gates)

    def politeness_logits(self, memory: Tensor, src: Tensor) -> Tensor:
        """memory: (B, S, D), the encoding of src: (B, S) -> (B, P) scores of the politeness level a translation should take."""
        keep = (src != self.cfg.pad_id).unsqueeze(-1).to(memory.dtype)  # (B, S, 1)
        pooled = (memory * keep).sum(1) / keep.sum(1)  # (B, D)
        return self.politeness_head(pooled)

    def _decoder_pass(
        self,
        tgt_in: Tensor,
        memory: Tensor,
        src: Tensor,
        politeness: Tensor | None,
        token_vectors: Tensor | None = None,
        gates: HeadGates | None = None,
    ) -> tuple[Tensor, list[LayerTrace], Tensor]:
        """-> (decoder input embeddings (B, T, D), one trace per layer, the last layer's output (B, T, D));
        arguments as decode(), token_vectors as TokenEmbedding takes them."""
        tgt_mask = self.target_mask(tgt_in)
        src_mask = self.source_mask(src)
        self.check_politeness_ids(politeness)
        y = self.tgt_embed(tgt_in, token_vectors=token_vectors)
        if politeness is not None:
            y = y + self.politeness_embedding(politeness)[:, None, :]  # (B, T, D)
        embedded, layers = y, []
        for i, layer in enumerate(self.decoder_layers):
            layers.append(
                trace := layer(y, memory, tgt_mask, src_mask, layer_gates(gates, "decoder", i), layer_gates(gates, "cross", i))
            )
            y = trace.out
        return embedded, layers, y

    def logits(self, y: Tensor) -> Tensor:
        """The last decoder layer's output (…, D) -> logits (…, V)."""
        return self.generator(self.decoder_norm(y))

    def decode(
        self, tgt_in: Tensor, memory: Tensor, src: Tensor, politeness: Tensor | None = None, gates: HeadGates | None = None
    ) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        """tgt_in: (B, T) decoder inputs (<s> y1 … y_{T-1}), memory: (B, S, D), src: (B, S),
        politeness: (B,) politeness ids, needed exactly when the model has politeness control;
        gates: model.gates (their decoder and cross parts apply)
        -> (logits (B, T, V), self weights [(B, H, T, T)], cross weights [(B, H, T, S)]).

        Row t of every map belongs to the token produced at position t (y_{t+1} predicted from
        inputs up to t); columns of self-attention are the decoder inputs, of cross-attention the
        source tokens.
        """
        _, layers, y = self._decoder_pass(tgt_in, memory, src, politeness, gates=gates)
        logits = self.logits(y)
        self_weights = [layer.blocks["decoder"].weights.detach() for layer in layers]
        cross_weights = [layer.blocks["cross"].weights.detach() for layer in layers]
        return logits, self_weights, cross_weights

    @torch.no_grad()
    def trace(
        self,
        src: Tensor,
        tgt_in: Tensor,
        politeness: Tensor | None = None,
        encoder: EncoderTrace | None = None,
        gates: HeadGates | None = None,
    ) -> ForwardTrace:
        """The teacher-forced pass of encode() then decode() (same code, same numbers) with every
        intermediate it computed; arguments as decode(), `encoder` this src's trace_encoder() (under the
        same gates) where the caller has it. Run it in eval mode for what inference does."""
        encoder = self._encoder_pass(src, gates=gates) if encoder is None else encoder
        target_embeddings, decoder, y = self._decoder_pass(tgt_in, encoder.memory, src, politeness, gates=gates)
        return ForwardTrace(encoder.embeddings, target_embeddings, encoder.layers, decoder, encoder.memory, self.logits(y))

    def token_vectors(self, src: Tensor, tgt_in: Tensor) -> tuple[Tensor, Tensor]:
        """The token part of the source (B, S, D) and decoder-input (B, T, D) embeddings, before positions."""
        return self.src_embed.token_vectors(src), self.tgt_embed.token_vectors(tgt_in)

    def logits_from_token_vectors(
        self,
        src: Tensor,
        tgt_in: Tensor,
        source_vectors: Tensor,
        target_vectors: Tensor,
        politeness: Tensor | None = None,
        positions: Tensor | None = None,
        gates: HeadGates | None = None,
    ) -> Tensor:
        """forward() with token_vectors() given instead of looked up (positions and masks still come from
        the ids): the function gradient attributions (model/saliency.py) differentiate -> logits (B, T, V),
        or with positions (B,) only each row's logits at its position (B, V), sparing the output layer."""
        memory = self._encoder_pass(src, source_vectors, gates).memory
        y = self._decoder_pass(tgt_in, memory, src, politeness, target_vectors, gates)[2]
        if positions is not None:
            y = y[torch.arange(y.size(0), device=y.device), positions]  # (B, D)
        return self.logits(y)

    def start_decoding(self, memory: Tensor, src: Tensor, gates: HeadGates | None = None) -> TransformerState:
        """An empty incremental-decoding cache for each decoder layer; memory: (B, S, D), src: (B, S); decoding
        runs under `gates` (their decoder and cross parts)."""
        return self.decoding_state([layer.cross_attn.keys_values(memory) for layer in self.decoder_layers], src, gates)

    def decoding_state(
        self, source: list[tuple[Tensor, Tensor]], src: Tensor, gates: HeadGates | None = None
    ) -> TransformerState:
        """start_decoding() from each decoder layer's cross-attention keys and values of the source, (B, H, S, d_k)
        each, however they were computed."""
        src_mask = self.source_mask(src)
        if bool(src_mask.all()):
            src_mask = None  # no padding: every step skips the masking
        return TransformerState([LayerCache.empty(k, v, src_mask) for k, v in source], gates)

    def decode_step(self, last_ids: Tensor, state: TransformerState, politeness: Tensor | None = None) -> Tensor:
        """last_ids: (B,) the newest decoder inputs (<s> first) -> logits (B, V) of the next token;
        advances `state` by that position.

        Equal to the last row of decode() on the whole prefix, in O(1) decoder positions a step
        instead of O(t); it returns no attention weights, which the teacher-forced pass collects.
        """
        y = self.step_input(last_ids, state.position, politeness)
        for i, (layer, cache) in enumerate(zip(self.decoder_layers, state.layers, strict=True)):
            y = layer.step(y, cache, layer_gates(state.gates, "decoder", i), layer_gates(state.gates, "cross", i))
        return self.logits(y)[:, 0]  # (B, V)

    def step_input(self, last_ids: Tensor, position: int | Tensor, politeness: Tensor | None) -> Tensor:
        """The decoder input of one step: last_ids (B,) at `position` (an int, or a 0-d tensor in an exported
        graph), politeness (B,) ids exactly when the model has politeness control -> (B, 1, D)."""
        self.check_politeness_ids(politeness)
        y = self.tgt_embed(last_ids[:, None], start=position)  # (B, 1, D)
        return y if politeness is None else y + self.politeness_embedding(politeness)[:, None, :]

    def forward(self, src: Tensor, tgt_in: Tensor, politeness: Tensor | None = None) -> Tensor:
        memory, _ = self.encode(src)
        logits, _, _ = self.decode(tgt_in, memory, src, politeness)
        return logits  # (B, T, V)


def label_smoothed_loss(logits: Tensor, targets: Tensor, smoothing: float, pad_id: int) -> Tensor:
    """Mean cross-entropy over non-pad target tokens."""
    return F.cross_entropy(
        logits.reshape(-1, logits.size(-1)),
        targets.reshape(-1),
        ignore_index=pad_id,
        label_smoothing=smoothing,
    )
