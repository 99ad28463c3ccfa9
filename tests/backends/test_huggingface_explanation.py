"""backends.huggingface_explanation through HuggingFaceModel.explain, on tiny random checkpoints of the families it
explains (post-LN BART and Marian, pre-LN mBART and M2M100 / NLLB), against the checkpoint loaded with transformers
alone: every step's value is caught there by this test's own forward hooks and output_attentions."""

from __future__ import annotations

import pytest
import torch

from backends.interface import ATTENTION_KINDS, InputError

transformers = pytest.importorskip("transformers", reason="the hf extra is not installed")

from backends.huggingface import HuggingFaceModel  # noqa: E402

SOURCE = "i can 't tell who will arrive first ."
TARGET = "誰 が 一番 に 着 く か 私 に は 分か り ま せ ん 。"
LAYER_NORMS = {"marian": "post", "bart": "post", "mbart50": "pre", "m2m_100": "pre", "nllb": "pre"}
FAMILIES = tuple(LAYER_NORMS)


@pytest.fixture(scope="module")
def models(tiny_hf_dirs) -> dict[str, HuggingFaceModel]:
    return {family: HuggingFaceModel.load(tiny_hf_dirs[family]) for family in (*FAMILIES, "t5")}


def own_values(directory, source_ids: list[int], decoder_ids: list[int], kind: str, layer: int, placement: str) -> dict:
    """What the layer's modules themselves computed in one pass of the checkpoint loaded apart: caught by hooks on
    q_proj, k_proj, v_proj, out_proj (its input is the heads concatenated), the block's LayerNorm, fc1, fc2,
    final_layer_norm, the next block's LayerNorm and the layer; with the pass's attentions and encoder output."""
    model = transformers.AutoModelForSeq2SeqLM.from_pretrained(directory, attn_implementation="eager").eval()
    block = (model.get_encoder() if kind == "encoder" else model.get_decoder()).layers[layer]
    attention = block.encoder_attn if kind == "cross" else block.self_attn
    block_norm = block.encoder_attn_layer_norm if kind == "cross" else block.self_attn_layer_norm
    seen: dict[str, torch.Tensor] = {}

    def output_of(module, name):
        return module.register_forward_hook(
            lambda _m, _args, out: seen.__setitem__(name, out[0] if isinstance(out, tuple) else out)
        )

    def input_of(module, name):
        return module.register_forward_pre_hook(lambda _m, args: seen.__setitem__(name, args[0]) if args else None)

    def input_or_kwarg_of(module, name):
        return module.register_forward_pre_hook(
            lambda _m, args, kwargs: seen.__setitem__(name, args[0] if args else kwargs["hidden_states"]), with_kwargs=True
        )

    hooks = [
        output_of(attention.q_proj, "q"),
        output_of(attention.k_proj, "k"),
        output_of(attention.v_proj, "v"),
        input_of(attention.out_proj, "concatenated"),
        output_of(attention.out_proj, "attention_output"),
        input_or_kwarg_of(block_norm, "norm_in"),
        output_of(block_norm, "norm_out"),
        input_or_kwarg_of(attention, "attention_in"),
        input_of(block.fc1, "fc1_in"),
        output_of(block.fc2, "fc2_out"),
        input_or_kwarg_of(block.final_layer_norm, "final_norm_in"),
        # pre-LN, the stream after the block is what the next block's LayerNorm reads
        input_or_kwarg_of(block.encoder_attn_layer_norm if kind == "decoder" else block.final_layer_norm, "next_norm_in"),
        output_of(block.final_layer_norm, "final_norm_out"),
        output_of(block, "layer_out"),
    ]
    try:
        with torch.no_grad():
            output = model(
                input_ids=torch.tensor([source_ids]),
                decoder_input_ids=torch.tensor([decoder_ids]),
                output_attentions=True,
                use_cache=False,
            )
    finally:
        for hook in hooks:
            hook.remove()
    maps = {"encoder": output.encoder_attentions, "decoder": output.decoder_attentions, "cross": output.cross_attentions}
    seen["map"] = maps[kind][layer][0]  # (H, Tq, Tk)
    seen["memory"] = output.encoder_last_hidden_state[0]  # after a pre-LN encoder's final layer_norm
    if placement == "pre":  # x + Block(LayerNorm(x)): the next LayerNorm reads the sum
        seen["residual_in"], seen["residual_out"] = seen["norm_in"], seen["next_norm_in"]
        seen["ff_in"], seen["ff_normed"], seen["ff_result"] = seen["final_norm_in"], seen["final_norm_out"], seen["layer_out"]
    else:  # LayerNorm(x + Block(x))
        seen["residual_in"], seen["residual_out"] = seen["attention_in"], seen["norm_out"]
        seen["ff_in"] = seen["ff_normed"] = seen["fc1_in"]
        seen["ff_result"] = seen["layer_out"]
    return seen


def own_activation(directory) -> str:
    return transformers.AutoConfig.from_pretrained(directory).activation_function


def close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    torch.testing.assert_close(actual.double(), expected.double(), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("family", FAMILIES)
def test_describe_declares_explains_and_where_the_layer_norms_sit(models, family):
    description = models[family].describe()
    assert (description.explains, description.layer_norm) == (True, LAYER_NORMS[family])


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("kind", ATTENTION_KINDS)
def test_every_step_equals_what_the_checkpoints_own_modules_computed(models, tiny_hf_dirs, family, kind):
    model = models[family]
    shape = model.describe().kinds[kind]
    layer, head, query = shape.layers - 1, shape.heads - 1, 3
    e = model.explain(SOURCE, TARGET, kind=kind, layer=layer, head=head, query=query)
    source_ids = [t.id for t in e.source_tokens]
    decoder_ids = [t.id for t in e.decoder_input_tokens]
    own = own_values(tiny_hf_dirs[family], source_ids, decoder_ids, kind, layer, LAYER_NORMS[family])
    d_k = e.queries.size(1)
    columns = slice(head * d_k, (head + 1) * d_k)

    # the softmax recomputed here, in float64, from the explanation's scores and mask is the row of both maps
    row = e.scores.double().masked_fill(~e.allowed, float("-inf")).softmax(-1)
    close(row, own["map"][head, query])
    close(row, model.attention(SOURCE, TARGET).maps[kind][layer, head, query])
    close(e.weights, own["map"][head, query])
    # q, K, V are this head's columns of what q_proj, k_proj and v_proj returned; the scores their scaled products
    close(e.queries, own["q"][0, :, columns])
    close(e.keys, own["k"][0, :, columns])
    close(e.values, own["v"][0, :, columns])
    close(e.scores, e.keys.double() @ e.queries[query].double() / d_k**0.5)
    # the inputs: what the attention module read; cross-attention's keys come from the encoder's final output
    close(e.query_input, own["attention_in"][0, query])
    close(e.key_inputs, own["memory"] if kind == "cross" else own["attention_in"][0])
    # every head's Σ α v, concatenated, is what out_proj read; W_O's output, the residual add and its LayerNorm
    close(e.head_outputs.flatten(), own["concatenated"][0, query])
    close(e.head_outputs[head], e.weights.double() @ e.values.double())
    close(e.attention_output, own["attention_output"][0, query])
    close(e.residual_in, own["residual_in"][0, query])
    close(e.residual_out, own["residual_out"][0, query])
    # the feed-forward block: its input, what fc1 read, fc2's output and the layer's output
    close(e.feed_forward.input, own["ff_in"][0, query])
    close(e.feed_forward.normed, own["fc1_in"][0, query])
    close(e.feed_forward.normed, own["ff_normed"][0, query])
    close(e.feed_forward.output, own["fc2_out"][0, query])
    close(e.feed_forward.result, own["ff_result"][0, query])
    assert e.d_ff == 64 and e.head_outputs.shape == (shape.heads, d_k)
    activation = own_activation(tiny_hf_dirs[family])
    assert e.activation == {"gelu": "GELU", "swish": "Swish", "relu": "ReLU"}[activation]


@pytest.mark.parametrize("family", FAMILIES)
def test_the_decoder_mask_hides_the_future_and_the_position_table_is_what_the_model_adds(models, tiny_hf_dirs, family):
    model = models[family]
    e = model.explain(SOURCE, TARGET, kind="decoder", layer=0, head=0, query=2)
    assert e.allowed.tolist() == [True] * 3 + [False] * (len(e.decoder_input_tokens) - 3)
    assert (e.weights[3:] == 0).all()
    encoder = model.explain(SOURCE, TARGET, kind="encoder", layer=0, head=0, query=0)
    assert encoder.allowed.all()  # one sentence: no padding
    # the table's first rows are what embed_positions returned for the source, caught in a pass of its own
    direct = transformers.AutoModelForSeq2SeqLM.from_pretrained(tiny_hf_dirs[family], attn_implementation="eager").eval()
    added = []
    hook = direct.get_encoder().embed_positions.register_forward_hook(lambda _m, _args, out: added.append(out))
    try:
        with torch.no_grad():
            direct.get_encoder()(input_ids=torch.tensor([[t.id for t in encoder.source_tokens]]))
    finally:
        hook.remove()
    positions = added[0].reshape(-1, added[0].size(-1))  # (S, D)
    close(encoder.positions.table[: positions.size(0)], positions)
    expected = "sinusoidal" if family in ("marian", "m2m_100", "nllb") else "learned"
    assert (encoder.positions.encoding, encoder.positions.side, e.positions.side) == (expected, "source", "target")


def test_without_a_target_it_explains_the_translation_the_model_decodes(models):
    model = models["bart"]
    e = model.explain(SOURCE, None, kind="cross", layer=0, head=1, query=0, max_length=6)
    result = model.attention(SOURCE, None, max_length=6)
    assert e.forced is False and [t.id for t in e.target_tokens] == [t.id for t in result.target_tokens]
    close(e.weights, result.maps["cross"][0, 1, 0])


def test_out_of_range_and_unexplained_families_are_refused(models):
    model = models["marian"]  # 2 encoder layers of 4 heads, 1 decoder layer of 2
    with pytest.raises(InputError, match="decoder layer 1 out of range: valid layers are 0 to 0"):
        model.explain(SOURCE, TARGET, kind="decoder", layer=1, head=0, query=0)
    with pytest.raises(InputError, match="encoder head 4 out of range: valid heads are 0 to 3"):
        model.explain(SOURCE, TARGET, kind="encoder", layer=0, head=4, query=0)
    with pytest.raises(InputError, match="query 99 out of range"):
        model.explain(SOURCE, TARGET, kind="cross", layer=0, head=0, query=99)
    t5 = models["t5"]  # relative position buckets and its own module names: not explained
    assert (t5.describe().explains, t5.describe().layer_norm) == (False, None)
    with pytest.raises(InputError, match="cannot explain its attention step by step"):
        t5.explain(SOURCE, TARGET, kind="cross", layer=0, head=0, query=0)
