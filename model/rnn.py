"""An RNN encoder-decoder with attention, as in Bahdanau, Cho & Bengio 2015 ("Neural Machine
Translation by Jointly Learning to Align and Translate"), that returns the attention it computes.

The encoder is a bidirectional GRU: the annotation h_j of source word j is its forward and
backward states side by side. At decoding step i the previous decoder state s_{i-1} is the query
and every annotation a key: a score e_ij, a softmax over the source gives α_ij, and the context
c_i = Σ_j α_ij h_j feeds both the decoder GRU (with the previous word) and the output layer:

    additive (Bahdanau):   e_ij = vᵀ tanh(W s_{i-1} + U h_j)
    general (Luong 2015):  e_ij = s_{i-1}ᵀ W h_j          (the same placement, another score)
    s_i = GRU([E y_{i-1}; c_i], s_{i-1}),    s_0 = tanh(W_s h←_1)
    p(y_i | …) = softmax(W_o maxout(U_o s_i + V_o E y_{i-1} + C_o c_i))

Its attention is one cross map: one layer, one head. There is no self-attention of either side.
Switching that head off (model.gates) zeroes the context c_i, the head's output, wherever it is used: the
decoder then translates from s_0 alone, a "no attention" experiment, not a source-blind one.
The decoding code (model/decoding.py) drives it through the same methods as the transformer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from model.gates import HeadGates, layer_gates

SCORES = ("additive", "general")


@dataclass
class RNNConfig:
    src_vocab_size: int
    tgt_vocab_size: int
    d_embed: int = 256
    d_encoder: int = 256  # per direction; annotations are 2 × d_encoder wide
    d_decoder: int = 512
    d_attention: int = 512  # the additive score's hidden size
    d_readout: int = 256  # after the maxout; tied with the target embedding when equal to d_embed
    score: str = "additive"  # one of SCORES
    dropout: float = 0.2
    max_positions: int = 256  # not a table: the same length limit the transformer has, for the service
    pad_id: int = 0
    politeness_levels: tuple[str, ...] = ()  # this architecture has no politeness control

    def __post_init__(self) -> None:
        if self.score not in SCORES:
            raise ValueError(f"unknown score {self.score!r}: one of {', '.join(SCORES)}")
        if self.politeness_levels:
            raise ValueError("the RNN model has no politeness control")
        self.politeness_levels = tuple(self.politeness_levels)

    def to_dict(self) -> dict:
        return asdict(self)


class Encoder(nn.Module):
    """Bidirectional GRU over the embedded source; padding is packed away, so it never enters a state."""

    def __init__(self, cfg: RNNConfig):
        super().__init__()
        self.embed = nn.Embedding(cfg.src_vocab_size, cfg.d_embed, padding_idx=cfg.pad_id)
        self.rnn = nn.GRU(cfg.d_embed, cfg.d_encoder, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(cfg.dropout)
        self.pad_id = cfg.pad_id

    def forward(self, src: Tensor, token_vectors: Tensor | None = None) -> Tensor:
        """src: (B, S) -> annotations (B, S, 2·d_encoder), zero at padding; token_vectors: (B, S, d_embed)
        to use in place of embed(src) (what gradient attributions differentiate)."""
        lengths = (src != self.pad_id).sum(1).cpu()
        x = self.dropout(self.embed(src) if token_vectors is None else token_vectors)
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.rnn(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=src.size(1))
        return out


class AdditiveScore(nn.Module):
    """e_ij = vᵀ tanh(W s_{i-1} + U h_j); U h_j is computed once per sentence (keys)."""

    def __init__(self, cfg: RNNConfig):
        super().__init__()
        self.query = nn.Linear(cfg.d_decoder, cfg.d_attention, bias=False)
        self.key = nn.Linear(2 * cfg.d_encoder, cfg.d_attention)
        self.v = nn.Linear(cfg.d_attention, 1, bias=False)

    def keys(self, memory: Tensor) -> Tensor:
        return self.key(memory)  # (B, S, A)

    def forward(self, state: Tensor, keys: Tensor) -> Tensor:
        """state: (B, d_decoder), keys: (B, S, A) -> scores (B, S)."""
        return self.v(torch.tanh(self.query(state)[:, None, :] + keys)).squeeze(-1)


class GeneralScore(nn.Module):
    """e_ij = s_{i-1}ᵀ W h_j (Luong et al. 2015's "general"); W h_j is computed once per sentence."""

    def __init__(self, cfg: RNNConfig):
        super().__init__()
        self.key = nn.Linear(2 * cfg.d_encoder, cfg.d_decoder, bias=False)

    def keys(self, memory: Tensor) -> Tensor:
        return self.key(memory)  # (B, S, d_decoder)

    def forward(self, state: Tensor, keys: Tensor) -> Tensor:
        return (keys @ state[:, :, None]).squeeze(-1)  # (B, S)


@dataclass
class RNNState:
    """What incremental decoding keeps: the decoder state and the sentence's annotations and keys."""

    hidden: Tensor  # (B, d_decoder): s_{i-1}
    memory: Tensor  # (B, S, 2·d_encoder)
    keys: Tensor  # (B, S, ·) the annotations projected for scoring, once
    src_mask: Tensor  # (B, S) True where there is a source word
    gate: Tensor | None = None  # (1,) or (B, 1): the cross head's gate on the context (model.gates); None: 1

    def select(self, rows: Tensor) -> RNNState:
        gate = self.gate if self.gate is None or self.gate.dim() == 1 else self.gate[rows]
        return RNNState(self.hidden[rows], self.memory[rows], self.keys[rows], self.src_mask[rows], gate)


class Maxout(nn.Module):
    def __init__(self, pieces: int = 2):
        super().__init__()
        self.pieces = pieces

    def forward(self, x: Tensor) -> Tensor:
        return x.view(*x.shape[:-1], -1, self.pieces).amax(-1)  # (…, D / pieces)


class AttentionRNN(nn.Module):
    def __init__(self, cfg: RNNConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.init_state = nn.Linear(cfg.d_encoder, cfg.d_decoder)
        self.score = AdditiveScore(cfg) if cfg.score == "additive" else GeneralScore(cfg)
        self.tgt_embed = nn.Embedding(cfg.tgt_vocab_size, cfg.d_embed, padding_idx=cfg.pad_id)
        self.decoder = nn.GRUCell(cfg.d_embed + 2 * cfg.d_encoder, cfg.d_decoder)
        # U_o s_i + V_o E y_{i-1} + C_o c_i, as one projection of their concatenation
        self.readout = nn.Linear(cfg.d_decoder + cfg.d_embed + 2 * cfg.d_encoder, 2 * cfg.d_readout)
        self.maxout = Maxout(2)
        self.generator = nn.Linear(cfg.d_readout, cfg.tgt_vocab_size)
        self.dropout = nn.Dropout(cfg.dropout)
        # PyTorch's N(0, 1) embeddings would start the (tied) output layer at logits of ±20; the transformer's
        # N(0, 1/d) keeps the first loss near log V.
        for embedding in (self.encoder.embed, self.tgt_embed):
            nn.init.normal_(embedding.weight, std=cfg.d_embed**-0.5)
            with torch.no_grad():
                embedding.weight[cfg.pad_id].zero_()
        if cfg.d_readout == cfg.d_embed:
            self.generator.weight = self.tgt_embed.weight

    @property
    def attention_shapes(self) -> dict[str, tuple[int, int]]:
        """The attention kinds this network has, as (layers, heads): one cross map."""
        return {"cross": (1, 1)}

    @property
    def width(self) -> int:
        return self.cfg.d_decoder

    @property
    def tied_weights(self) -> tuple[str, ...]:
        """State-dict keys that share another key's tensor, left out of a checkpoint."""
        return ("generator.weight",) if self.cfg.d_readout == self.cfg.d_embed else ()

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def _no_politeness(self, politeness: Tensor | None) -> None:
        if politeness is not None:
            raise ValueError("the RNN model has no politeness control: pass politeness=None")

    def _only_cross(self, gates: HeadGates | None) -> None:
        if gates is not None and (gates.encoder is not None or gates.decoder is not None):
            raise ValueError("the RNN model has only a cross-attention head to gate")

    def encode(self, src: Tensor, gates: HeadGates | None = None) -> tuple[Tensor, list[Tensor]]:
        """src: (B, S) -> (annotations (B, S, 2·d_encoder), []: no encoder self-attention)."""
        self._only_cross(gates)
        return self.encoder(src), []

    def start_decoding(self, memory: Tensor, src: Tensor, gates: HeadGates | None = None) -> RNNState:
        self._only_cross(gates)
        backward_first = memory[:, 0, self.cfg.d_encoder :]  # h←_1: the backward GRU's state after the whole source
        hidden = torch.tanh(self.init_state(backward_first))  # (B, d_decoder)
        gate = layer_gates(gates, "cross", 0)
        return RNNState(hidden, memory, self.score.keys(memory), src != self.cfg.pad_id, gate)

    def recur(self, embedded: Tensor, state: RNNState) -> tuple[Tensor, Tensor]:
        """The recurrent half of a step: embedded y_{i-1} (B, d_embed) -> (context c_i (B, 2·d_encoder),
        attention α_i (B, S)); advances state from s_{i-1} to s_i."""
        scores = torch.where(state.src_mask, self.score(state.hidden, state.keys), float("-inf"))  # (B, S)
        weights = scores.softmax(-1)
        context = (weights[:, None, :] @ state.memory).squeeze(1)  # (B, 2·d_encoder)
        if state.gate is not None:
            context = context * state.gate
        state.hidden = self.decoder(torch.cat([embedded, context], -1), state.hidden)
        return context, weights

    def output(self, hidden: Tensor, embedded: Tensor, context: Tensor) -> Tensor:
        """The output half: s_i, E y_{i-1}, c_i (…, ·) -> logits (…, V). It needs no recurrence, so a
        teacher-forced pass runs it once over every position."""
        readout = self.maxout(self.readout(torch.cat([hidden, embedded, context], -1)))  # (…, d_readout)
        return self.generator(self.dropout(readout))

    def decode_step(self, last_ids: Tensor, state: RNNState, politeness: Tensor | None = None) -> Tensor:
        self._no_politeness(politeness)
        embedded = self.dropout(self.tgt_embed(last_ids))  # (B, d_embed)
        context, _ = self.recur(embedded, state)
        return self.output(state.hidden, embedded, context)

    def _recurrence(
        self, tgt_in: Tensor, memory: Tensor, src: Tensor, token_vectors: Tensor | None, gates: HeadGates | None = None
    ) -> tuple[Tensor, ...]:
        """Every decoding step of a teacher-forced pass -> (states s_i (B, T, d_decoder), embedded inputs
        (B, T, d_embed), contexts (B, T, 2·d_encoder), attention (B, T, S))."""
        state = self.start_decoding(memory, src, gates)
        embedded = self.dropout(self.tgt_embed(tgt_in) if token_vectors is None else token_vectors)  # (B, T, d_embed)
        hidden, contexts, weights = [], [], []
        for t in range(tgt_in.size(1)):
            context, alpha = self.recur(embedded[:, t], state)
            hidden.append(state.hidden)
            contexts.append(context)
            weights.append(alpha)
        return torch.stack(hidden, 1), embedded, torch.stack(contexts, 1), torch.stack(weights, 1)

    def decode(
        self, tgt_in: Tensor, memory: Tensor, src: Tensor, politeness: Tensor | None = None, gates: HeadGates | None = None
    ) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        """tgt_in: (B, T) decoder inputs (<s> y1 … y_{T-1}) -> (logits (B, T, V), [] (no decoder self-attention),
        [cross (B, 1, T, S)]): one layer of one head, row t the attention of the step that produced target t."""
        self._no_politeness(politeness)
        hidden, embedded, contexts, weights = self._recurrence(tgt_in, memory, src, None, gates)
        return self.output(hidden, embedded, contexts), [], [weights[:, None].detach()]  # logits (B, T, V)

    def token_vectors(self, src: Tensor, tgt_in: Tensor) -> tuple[Tensor, Tensor]:
        """The source (B, S, d_embed) and decoder-input (B, T, d_embed) embeddings."""
        return self.encoder.embed(src), self.tgt_embed(tgt_in)

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
        """forward() with token_vectors() given instead of looked up (lengths and masks still come from the
        ids): the function gradient attributions (model/saliency.py) differentiate -> logits (B, T, V), or with
        positions (B,) only each row's logits at its position (B, V)."""
        self._no_politeness(politeness)
        hidden, embedded, contexts, _ = self._recurrence(tgt_in, self.encoder(src, source_vectors), src, target_vectors, gates)
        if positions is not None:
            rows = torch.arange(hidden.size(0), device=hidden.device)
            hidden, embedded, contexts = hidden[rows, positions], embedded[rows, positions], contexts[rows, positions]
        return self.output(hidden, embedded, contexts)

    def forward(self, src: Tensor, tgt_in: Tensor, politeness: Tensor | None = None) -> Tensor:
        memory, _ = self.encode(src)
        return self.decode(tgt_in, memory, src, politeness)[0]  # (B, T, V)
