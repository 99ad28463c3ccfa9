"""An encoder-decoder transformer that returns every attention map it computes.

The architecture follows "Attention Is All You Need" with pre-layer normalisation (which trains
stably at high learning rates on small data). Every attention module returns its weights next to
its output, detached, so the maps shown by attnscope are exactly the ones the model used.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


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


def attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Scaled dot-product attention, softmax(QKᵀ/√d_k)·V.

    q: (B, H, Tq, d_k), k and v: (B, H, Tk, d_k); mask broadcasts to (B, H, Tq, Tk) and is True
    where a query may attend. Masked scores become -inf before the softmax, so their weights are
    exactly 0. Returns (out (B, H, Tq, d_k), weights (B, H, Tq, Tk)).
    """
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))  # (B, H, Tq, Tk)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.softmax(dim=-1)
    return weights @ v, weights


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
        return x.view(b, t, self.n_heads, d // self.n_heads).transpose(1, 2)  # (B, H, T, d_k)

    def keys_values(self, key_value: Tensor) -> tuple[Tensor, Tensor]:
        """key_value: (B, Tk, D) -> keys and values, each (B, H, Tk, d_k)."""
        return self._split_heads(self.k_proj(key_value)), self._split_heads(self.v_proj(key_value))

    def forward(self, query: Tensor, key_value: Tensor | tuple[Tensor, Tensor], mask: Tensor | None) -> tuple[Tensor, Tensor]:
        """query: (B, Tq, D), key_value: (B, Tk, D), or its keys_values() when already projected
        -> (out (B, Tq, D), weights (B, H, Tq, Tk))."""
        q = self._split_heads(self.q_proj(query))
        k, v = key_value if isinstance(key_value, tuple) else self.keys_values(key_value)
        out, weights = attention(q, k, v, mask)
        b, h, t, d_k = out.shape
        out = out.transpose(1, 2).reshape(b, t, h * d_k)  # (B, Tq, D)
        return self.out_proj(out), weights.detach()


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

    def forward(self, x: Tensor, src_mask: Tensor) -> tuple[Tensor, Tensor]:
        """x: (B, S, D), src_mask: (B, 1, 1, S) -> (x, self-attention weights (B, H, S, S))."""
        h = self.self_attn_norm(x)
        attn_out, weights = self.self_attn(h, h, src_mask)
        x = x + self.dropout(attn_out)
        x = x + self.dropout(self.ff(self.ff_norm(x)))
        return x, weights


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

    def forward(self, y: Tensor, memory: Tensor, tgt_mask: Tensor, src_mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """y: (B, T, D), memory: (B, S, D), tgt_mask: (B, 1, T, T), src_mask: (B, 1, 1, S)
        -> (y, self weights (B, H, T, T), cross weights (B, H, T, S))."""
        h = self.self_attn_norm(y)
        attn_out, self_weights = self.self_attn(h, h, tgt_mask)
        y = y + self.dropout(attn_out)
        attn_out, cross_weights = self.cross_attn(self.cross_attn_norm(y), memory, src_mask)
        y = y + self.dropout(attn_out)
        y = y + self.dropout(self.ff(self.ff_norm(y)))
        return y, self_weights, cross_weights

    def step(self, y: Tensor, cache: LayerCache) -> Tensor:
        """y: (B, 1, D), the newest decoder position -> its output (B, 1, D), attending to the
        cached earlier positions; appends this position's keys and values to the cache. Inference
        only, so no dropout."""
        h = self.self_attn_norm(y)
        cache.append(*self.self_attn.keys_values(h))
        y = y + self.self_attn(h, (cache.self_k, cache.self_v), None)[0]
        y = y + self.cross_attn(self.cross_attn_norm(y), (cache.cross_k, cache.cross_v), cache.src_mask)[0]
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

    def select(self, rows: Tensor) -> LayerCache:
        """The cache of the batch rows `rows` (B',), e.g. the beams that survive a step."""
        mask = None if self.src_mask is None else self.src_mask[rows]
        return LayerCache(self.keys[rows], self.values[rows], self.length, self.cross_k[rows], self.cross_v[rows], mask)


@dataclass
class TransformerState:
    """The incremental-decoding state: one LayerCache per decoder layer."""

    layers: list[LayerCache]

    @property
    def position(self) -> int:
        return self.layers[0].length

    def select(self, rows: Tensor) -> TransformerState:
        return TransformerState([cache.select(rows) for cache in self.layers])


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

    def forward(self, ids: Tensor, start: int = 0) -> Tensor:
        """ids: (B, T) at positions start … start + T - 1."""
        t = ids.size(1)
        if hasattr(self, "positions"):
            pos = self.positions(torch.arange(start, start + t, device=ids.device))
        else:
            pos = self.table[start : start + t]
        return self.dropout(self.tokens(ids) * self.scale + pos)  # (B, T, D)


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

    def source_mask(self, src: Tensor) -> Tensor:
        return (src != self.cfg.pad_id)[:, None, None, :]  # (B, 1, 1, S)

    def target_mask(self, tgt_in: Tensor) -> Tensor:
        t = tgt_in.size(1)
        causal = torch.ones(t, t, dtype=torch.bool, device=tgt_in.device).tril()
        return causal[None, None] & (tgt_in != self.cfg.pad_id)[:, None, None, :]  # (B, 1, T, T)

    def encode(self, src: Tensor) -> tuple[Tensor, list[Tensor]]:
        """src: (B, S) ids -> (memory (B, S, D), per-layer self-attention weights [(B, H, S, S)])."""
        mask = self.source_mask(src)
        x = self.src_embed(src)
        weights = []
        for layer in self.encoder_layers:
            x, w = layer(x, mask)
            weights.append(w)
        return self.encoder_norm(x), weights

    def politeness_logits(self, memory: Tensor, src: Tensor) -> Tensor:
        """memory: (B, S, D), the encoding of src: (B, S) -> (B, P) scores of the politeness level a translation should take."""
        keep = (src != self.cfg.pad_id).unsqueeze(-1).to(memory.dtype)  # (B, S, 1)
        pooled = (memory * keep).sum(1) / keep.sum(1)  # (B, D)
        return self.politeness_head(pooled)

    def decode(
        self, tgt_in: Tensor, memory: Tensor, src: Tensor, politeness: Tensor | None = None
    ) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        """tgt_in: (B, T) decoder inputs (<s> y1 … y_{T-1}), memory: (B, S, D), src: (B, S),
        politeness: (B,) politeness ids, needed exactly when the model has politeness control
        -> (logits (B, T, V), self weights [(B, H, T, T)], cross weights [(B, H, T, S)]).

        Row t of every map belongs to the token produced at position t (y_{t+1} predicted from
        inputs up to t); columns of self-attention are the decoder inputs, of cross-attention the
        source tokens.
        """
        tgt_mask = self.target_mask(tgt_in)
        src_mask = self.source_mask(src)
        if (politeness is None) != (not self.cfg.politeness_levels):
            raise ValueError("pass politeness ids exactly when the model has politeness control")
        y = self.tgt_embed(tgt_in)
        if politeness is not None:
            y = y + self.politeness_embedding(politeness)[:, None, :]  # (B, T, D)
        self_weights, cross_weights = [], []
        for layer in self.decoder_layers:
            y, sw, cw = layer(y, memory, tgt_mask, src_mask)
            self_weights.append(sw)
            cross_weights.append(cw)
        return self.generator(self.decoder_norm(y)), self_weights, cross_weights

    def start_decoding(self, memory: Tensor, src: Tensor) -> TransformerState:
        """An empty incremental-decoding cache for each decoder layer; memory: (B, S, D), src: (B, S)."""
        src_mask = self.source_mask(src)
        if bool(src_mask.all()):
            src_mask = None  # no padding: every step skips the masking
        caches = []
        for layer in self.decoder_layers:
            cross_k, cross_v = layer.cross_attn.keys_values(memory)
            caches.append(LayerCache.empty(cross_k, cross_v, src_mask))
        return TransformerState(caches)

    def decode_step(self, last_ids: Tensor, state: TransformerState, politeness: Tensor | None = None) -> Tensor:
        """last_ids: (B,) the newest decoder inputs (<s> first) -> logits (B, V) of the next token;
        advances `state` by that position.

        Equal to the last row of decode() on the whole prefix, in O(1) decoder positions a step
        instead of O(t); it returns no attention weights, which the teacher-forced pass collects.
        """
        if (politeness is None) != (not self.cfg.politeness_levels):
            raise ValueError("pass politeness ids exactly when the model has politeness control")
        y = self.tgt_embed(last_ids[:, None], start=state.position)  # (B, 1, D)
        if politeness is not None:
            y = y + self.politeness_embedding(politeness)[:, None, :]
        for layer, cache in zip(self.decoder_layers, state.layers, strict=True):
            y = layer.step(y, cache)
        return self.generator(self.decoder_norm(y))[:, 0]  # (B, V)

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
