"""One head of the transformer opened up: the intermediates of one attention row, cut from a traced pass.

Everything comes from Seq2SeqTransformer.trace(), the same code and numbers as encode() and decode(),
so the row explained is the row of the map attnscope shows; nothing here recomputes the model's maths.
"""

from __future__ import annotations

from backends.interface import AttentionKind, FeedForwardStep, HeadExplanation, InputError, PositionTable, Token
from model.transformer import ForwardTrace, Seq2SeqTransformer, TokenEmbedding

# Rows of the position table an explanation carries: enough to see the sinusoids' slow dimensions turn.
POSITION_ROWS = 64


def position_table(embedding: TokenEmbedding, side: str, rows: int = POSITION_ROWS) -> PositionTable:
    if hasattr(embedding, "positions"):
        return PositionTable("learned", side, embedding.positions.weight[:rows].detach().cpu())
    return PositionTable("sinusoidal", side, embedding.table[:rows].cpu())


def explain_head(
    model: Seq2SeqTransformer,
    trace: ForwardTrace,
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
) -> HeadExplanation:
    """Row `query` of `head` in `layer` of the `kind` attention of a traced batch of one."""
    layers = trace.encoder if kind == "encoder" else trace.decoder
    if kind not in ("encoder", "decoder", "cross") or not 0 <= layer < len(layers):
        raise InputError(f"{kind} layer {layer} out of range: valid layers are 0 to {len(layers) - 1}")
    if not 0 <= head < model.cfg.n_heads:
        raise InputError(f"{kind} head {head} out of range: valid heads are 0 to {model.cfg.n_heads - 1}")
    traced = layers[layer]
    block = traced.blocks[kind]
    if not 0 <= query < block.q.size(2):
        raise InputError(f"query {query} out of range: valid queries are 0 to {block.q.size(2) - 1}")
    allowed = block.mask.expand_as(block.scores) if block.mask is not None else block.scores.isfinite()  # (B, H, Tq, Tk)

    def at_query(tensor):  # (B, T, D) -> (D,) at the query's position
        return tensor[0, query].cpu()

    embedding = model.src_embed if kind == "encoder" else model.tgt_embed
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
        d_ff=model.cfg.d_ff,
        query_input=at_query(block.query_in),
        key_inputs=block.key_value_in[0].cpu(),
        queries=block.q[0, head].cpu(),
        keys=block.k[0, head].cpu(),
        values=block.v[0, head].cpu(),
        scores=block.scores[0, head, query].cpu(),
        allowed=allowed[0, head, query].cpu(),
        weights=block.weights[0, head, query].cpu(),
        head_outputs=block.head_outputs[0, :, query].cpu(),
        attention_output=at_query(block.attn_out),
        residual_in=at_query(block.residual_in),
        residual_out=at_query(block.residual_out),
        feed_forward=FeedForwardStep(
            input=at_query(traced.ff_in),
            normed=at_query(traced.ff_normed),
            output=at_query(traced.ff_out),
            result=at_query(traced.out),
        ),
        positions=position_table(embedding, "source" if kind == "encoder" else "target"),
    )
