"""Hugging Face encoder-decoder checkpoints behind the model interface.

Any `AutoModelForSeq2SeqLM` directory in save_pretrained layout (config.json, weights, tokenizer files) is one
model: Marian (OPUS-MT), BART / mBART, T5 / mT5, M2M100 / NLLB and the like. Decoding is `model.generate`; the
maps come from one teacher-forced forward pass with `output_attentions=True` over the produced tokens, so they are
exactly what the checkpoint computes. BART, Marian, mBART and M2M100 / NLLB checkpoints also explain one head
step by step, from hooks on one such pass (backends.huggingface_explanation).

What a checkpoint does not say about itself may be written beside it in `attnscope.json`:

    {"name": "opus-en-de", "description": "OPUS-MT English to German",
     "source_language": {"code": "en", "name": "English"}, "target_language": "de",
     "target_joiner": " ", "examples": ["This is an example."], "target_example": "Das ist ein Beispiel.",
     "card": {"test_bleu": {"beam4": 30.1}}}

Head ablation (and the gradients of head gates) works wherever the attention modules' output projections can be
found by name: BART-style models (Marian, BART, mBART, M2M100 / NLLB: `self_attn` / `encoder_attn.out_proj`) and
T5-style ones (`SelfAttention` / `EncDecAttention.o`). transformers 5 has no `head_mask` arguments any more, so a
forward pre-hook on each output projection multiplies each head's slice of its input by that head's gate. The
hooks stay in place and read the gates of the call running in their thread (a ContextVar), so concurrent requests
never see each other's. describe().ablation is False for any other layout.

transformers is imported only when a model is loaded: attnscope serves its built-in model without the `hf` extra.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from pathlib import Path

import torch
import torch.nn.functional as F

from backends.discovery import read_head_importance
from backends.huggingface_explanation import explain_head, explainable, layer_norm_placement
from backends.interface import (
    DEFAULT_SALIENCY,
    AttentionKind,
    AttentionResult,
    Control,
    HeadExplanation,
    HeadRef,
    Hypothesis,
    InputError,
    KindShape,
    Language,
    Method,
    ModelDescription,
    ModelLimits,
    ModelLoadError,
    SaliencyOptions,
    StopCheck,
    Token,
    TokenConventions,
    Translation,
    TranslationModel,
    check_ablation,
    language,
    never_stop,
    resolve_controls,
)
from model.norms import norm_maps
from model.translator import resolve_device

__all__ = ["HuggingFaceModel", "ModelLoadError"]

CARD_FILE = "attnscope.json"
# A directory without one of these has no tokenizer (transformers would build an empty one without complaint).
TOKENIZER_FILES = ("tokenizer.json", "spiece.model", "source.spm", "sentencepiece.bpe.model", "vocab.json", "vocab.txt")
# T5-style models have relative position buckets, so no config field bounds the length: 512 is what T5 was trained on.
RELATIVE_POSITIONS_CAP = 512
# How tokenizers mark word pieces: "▁" (sentencepiece) and "Ġ" (byte-level BPE) begin a word, "</w>" ends one.
WORD_START_MARKERS = ("▁", "Ġ")
WORD_END_MARKER = "</w>"
# NLLB's language codes are its language tokens ("eng_Latn"); M2M100 and mBART-50 map codes to ids themselves.
NLLB_CODE = re.compile(r"[a-z]{3}_[A-Z][a-z]{3}")
UNKNOWN_LANGUAGE = Language("und", "unknown")
# Families whose layers are BART's (self_attn and encoder_attn with v_proj and out_proj, the values made from the
# layer's input or, pre-LN, from its self_attn_layer_norm): the adapter computes method norms from their weights.
# T5's attention (no biases, relative positions, its own module names) is left at weights.
NORMS_FAMILIES = ("bart", "marian", "mbart", "m2m_100")
# The output projection of each attention module, by kind, in BART-style and T5-style module names; group 1 is the layer.
HEAD_OUTPUTS: dict[AttentionKind, re.Pattern] = {
    "encoder": re.compile(r"(?:^|\.)encoder\.(?:layers|block)\.(\d+)\.(?:self_attn\.out_proj|layer\.0\.SelfAttention\.o)"),
    "decoder": re.compile(r"(?:^|\.)decoder\.(?:layers|block)\.(\d+)\.(?:self_attn\.out_proj|layer\.0\.SelfAttention\.o)"),
    "cross": re.compile(r"(?:^|\.)decoder\.(?:layers|block)\.(\d+)\.(?:encoder_attn\.out_proj|layer\.1\.EncDecAttention\.o)"),
}
GRADIENT_BATCH = 16  # pairs per backward pass of gate_gradients
# The head gates of the call running in this thread: (kind, layer) -> (H,) or (B, H); None: every head on.
_GATES: ContextVar[dict[tuple[str, int], torch.Tensor] | None] = ContextVar("attnscope_head_gates", default=None)


def _head_outputs(model, kinds: dict[str, KindShape]) -> dict[tuple[str, int], torch.nn.Linear] | None:
    """(kind, layer) -> the output projection of that attention, for every layer of every kind; None when the
    module names are not a layout HEAD_OUTPUTS knows, or a projection's input does not split into the heads."""
    found: dict[tuple[str, int], torch.nn.Linear] = {}
    for name, module in model.named_modules():
        for kind, pattern in HEAD_OUTPUTS.items():
            match = pattern.search(name)
            if match and match.end() == len(name) and isinstance(module, torch.nn.Linear):
                found[(kind, int(match.group(1)))] = module
    wanted = {(kind, layer) for kind, shape in kinds.items() for layer in range(shape.layers)}
    if set(found) != wanted or any(found[(kind, layer)].in_features % kinds[kind].heads for kind, layer in wanted):
        return None
    return found


def _gate_hook(kind: str, layer: int, heads: int):
    """A forward pre-hook for an output projection: its input (…, T, H·d) times the running call's gates."""

    def hook(module, args):
        gates = _GATES.get()
        g = None if gates is None else gates.get((kind, layer))
        if g is None:
            return None
        x = args[0]
        split = x.view(*x.shape[:-1], heads, x.size(-1) // heads)  # (B, T, H, d)
        shape = (g.size(0), 1, heads, 1) if g.dim() == 2 else (1, 1, heads, 1)
        return (((split * g.reshape(shape).to(x.dtype)).reshape(x.shape)), *args[1:])

    return hook


@contextmanager
def _gated(gates: dict[tuple[str, int], torch.Tensor] | None) -> Iterator[None]:
    token = _GATES.set(gates)
    try:
        yield
    finally:
        _GATES.reset(token)


def _transformers():
    try:
        import transformers
    except ImportError as error:
        raise ModelLoadError("Hugging Face models need the hf extra: pip install 'attnscope[hf]'") from error
    return transformers


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


@cache
def _stop_criteria():
    from transformers import StoppingCriteria, StoppingCriteriaList

    class CallStopEachStep(StoppingCriteria):
        """Calls the request's StopCheck once per decoding step; its exception ends `generate`."""

        def __init__(self, stop: StopCheck):
            self.stop = stop

        def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
            self.stop()
            return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

    return lambda stop: StoppingCriteriaList([CallStopEachStep(stop)])


@cache
def _byte_level_decoder() -> dict[str, int]:
    """GPT-2's byte-level alphabet (printable characters standing for bytes) -> the byte each stands for."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    characters = {byte: chr(byte) for byte in printable}
    shifted = 256
    for byte in range(256):
        if byte not in characters:
            characters[byte], shifted = chr(shifted), shifted + 1
    return {character: byte for byte, character in characters.items()}


def _byte_level_text(piece: str) -> str:
    """A byte-level piece as text; bytes of a character split across pieces show as \\xNN."""
    decoder = _byte_level_decoder()
    raw = bytes(decoder[character] for character in piece if character in decoder)
    return raw.decode("utf-8", errors="backslashreplace").strip()


def _read_card(directory: Path | None) -> dict:
    path = directory / CARD_FILE if directory else None
    if path is None or not path.is_file():
        return {}
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"{path}: not a readable JSON card: {_one_line(error)}") from error
    if not isinstance(card, dict):
        raise ModelLoadError(f"{path}: the card must be a JSON object")
    return card


def _card_language(value) -> Language | None:
    """A language as a card or tokenizer gives it: a code ("en"), or {"code": "en", "name": "English"}."""
    if isinstance(value, str):
        return language(value)
    if isinstance(value, dict) and "code" in value:
        return Language(value["code"], value.get("name") or language(value["code"]).name)
    return None


def _config_value(config, *names: str) -> int:
    for name in names:
        value = getattr(config, name, None)
        if value is not None:
            return int(value)
    raise ModelLoadError(f"{config.model_type} config has none of {', '.join(names)}")


def _kind_shapes(config) -> dict[str, KindShape]:
    """Per-kind layer and head counts: BART-style configs name each side, T5-style ones use num_layers / num_heads."""
    encoder = KindShape(
        layers=_config_value(config, "encoder_layers", "num_layers", "num_hidden_layers"),
        heads=_config_value(config, "encoder_attention_heads", "num_heads", "num_attention_heads"),
    )
    decoder = KindShape(
        layers=_config_value(config, "decoder_layers", "num_decoder_layers", "num_layers", "num_hidden_layers"),
        heads=_config_value(config, "decoder_attention_heads", "num_heads", "num_attention_heads"),
    )
    # cross-attention sits in every decoder layer, with the decoder's heads
    return {"encoder": encoder, "decoder": decoder, "cross": decoder}


def _language_codes(tokenizer) -> dict[str, int]:
    """A multilingual tokenizer's language codes -> the token id that selects each; {} for a one-pair model."""
    if not hasattr(tokenizer, "src_lang"):
        return {}
    code_to_id = getattr(tokenizer, "lang_code_to_id", None)
    if code_to_id:
        return {code: int(token_id) for code, token_id in code_to_id.items()}
    return {code: tokenizer.convert_tokens_to_ids(code) for code in tokenizer.all_special_tokens if NLLB_CODE.fullmatch(code)}


def _subword_marker(tokenizer) -> str | None:
    """The marker most of the vocabulary carries; None when no piece carries one."""
    vocabulary = tokenizer.get_vocab()
    counts = {marker: sum(piece.startswith(marker) for piece in vocabulary) for marker in WORD_START_MARKERS}
    counts[WORD_END_MARKER] = sum(piece.endswith(WORD_END_MARKER) for piece in vocabulary)
    marker = max(counts, key=counts.get)
    return marker if counts[marker] else None


class HuggingFaceModel(TranslationModel):
    """One AutoModelForSeq2SeqLM checkpoint and its tokenizer, as a `TranslationModel`."""

    def __init__(self, model, tokenizer, name: str, card: dict, source: str, directory: Path | None = None):
        self._model = model
        self._tokenizer = tokenizer
        self._card = card
        self._directory = directory  # where a head-importance table may lie; None for a hub id
        config = model.config
        self._decoder_start = model.generation_config.decoder_start_token_id
        if self._decoder_start is None:
            self._decoder_start = config.decoder_start_token_id
        if self._decoder_start is None:
            raise ModelLoadError(f"{source}: the config has no decoder_start_token_id")
        self._languages = _language_codes(tokenizer)
        # a multilingual tokenizer holds the language pair as state: one request's languages at a time
        self._tokenizer_lock = threading.Lock()
        # <unk> stands for a word the user typed: flagged unknown, not special
        self._special_ids = (set(tokenizer.all_special_ids) | set(self._languages.values())) - {tokenizer.unk_token_id}
        self._marker = _subword_marker(tokenizer)
        kinds = _kind_shapes(config)
        head_outputs = _head_outputs(model, kinds)
        if head_outputs is not None:
            for (kind, layer), module in head_outputs.items():
                module.register_forward_pre_hook(_gate_hook(kind, layer, kinds[kind].heads))
        self._description = self._describe(name, source, ablation=head_outputs is not None)
        cache_layers = getattr(config.get_text_config(decoder=True), "num_hidden_layers", None)
        self._needs_growing_cache = self._description.kinds["decoder"].layers != cache_layers

    @classmethod
    def load(cls, path_or_hub_id: str | Path, name: str | None = None, device: str = "auto") -> HuggingFaceModel:
        """Load a save_pretrained directory (or a hub id, when the hub is reachable); ModelLoadError says why not."""
        transformers = _transformers()
        source = str(path_or_hub_id)
        directory = Path(path_or_hub_id) if Path(path_or_hub_id).exists() else None
        if directory is not None:
            if not directory.is_dir():
                raise ModelLoadError(f"{directory}: not a directory; a Hugging Face model is a save_pretrained folder")
            if not (directory / "config.json").is_file():
                raise ModelLoadError(f"{directory}: not a Hugging Face model (no config.json)")
        try:
            config = transformers.AutoConfig.from_pretrained(source)
        except (OSError, ValueError, KeyError) as error:
            raise ModelLoadError(f"{source}: cannot read the model config: {_one_line(error)}") from error
        if not getattr(config, "is_encoder_decoder", False):
            raise ModelLoadError(
                f"{source}: {config.model_type} is not an encoder-decoder model (attnscope needs encoder and decoder)"
            )
        if directory is not None and not any((directory / file).is_file() for file in TOKENIZER_FILES):
            raise ModelLoadError(
                f"{directory}: no tokenizer (none of {', '.join(TOKENIZER_FILES)}); save the tokenizer beside the model"
            )
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(source)
        except (OSError, ValueError, KeyError, TypeError, ImportError) as error:
            raise ModelLoadError(f"{source}: cannot load the tokenizer: {_one_line(error)}") from error
        try:
            # eager attention: the fused kernels return no weights
            model = transformers.AutoModelForSeq2SeqLM.from_pretrained(source, attn_implementation="eager")
        except (OSError, ValueError, KeyError, RuntimeError) as error:
            raise ModelLoadError(f"{source}: cannot load the model: {_one_line(error)}") from error
        model.to(resolve_device(device)).eval()
        card = _read_card(directory)
        default_name = directory.resolve().name if directory is not None else source.rsplit("/", 1)[-1]
        return cls(model, tokenizer, name or card.get("name") or default_name, card, source, directory)

    # --- describe ---------------------------------------------------------------------------------

    def describe(self) -> ModelDescription:
        return self._description

    def _describe(self, name: str, source: str, ablation: bool) -> ModelDescription:
        config, tokenizer, card = self._model.config, self._tokenizer, self._card
        controls = self._language_controls()
        defaults = {control.name: control.default for control in controls}
        source_language = _card_language(card.get("source_language"))
        target_language = _card_language(card.get("target_language"))
        if controls:  # a multilingual model translates between the languages its controls select
            source_language = language(defaults["source_language"])
            target_language = language(defaults["target_language"])
        source_language = source_language or _card_language(getattr(tokenizer, "source_lang", None)) or UNKNOWN_LANGUAGE
        target_language = target_language or _card_language(getattr(tokenizer, "target_lang", None)) or UNKNOWN_LANGUAGE
        max_positions = getattr(config, "max_position_embeddings", None) or RELATIVE_POSITIONS_CAP
        # the limits count the tokens a user typed, as the service does: the model adds its specials (</s>, a code)
        added_to_source = sum(token_id in self._special_ids for token_id in self._encode(defaults, text="a"))
        added_to_target = sum(token_id in self._special_ids for token_id in self._encode(defaults, text_target="a"))
        vocab_size = len(tokenizer)
        target_vocab = getattr(tokenizer, "target_encoder", None) if getattr(tokenizer, "separate_vocabs", False) else None
        return ModelDescription(
            name=name,
            description=card.get("description") or f"Hugging Face {config.model_type} model from {source}",
            family=config.model_type,
            source_language=source_language,
            target_language=target_language,
            kinds=_kind_shapes(config),
            controls=controls,
            tokens=TokenConventions(
                subword_marker=self._marker,
                target_joiner=card.get("target_joiner", " "),
                special_tokens=tuple(tokenizer.convert_ids_to_tokens(sorted(self._special_ids))),
                word_level=False,
            ),
            limits=ModelLimits(
                max_source_tokens=max_positions - added_to_source, max_target_tokens=max_positions - added_to_target
            ),
            d_model=_config_value(config, "d_model", "hidden_size"),
            parameters=sum(parameter.numel() for parameter in self._model.parameters()),
            vocab_sizes={"source": vocab_size, "target": len(target_vocab) if target_vocab else vocab_size},
            card=card.get("card", {}),
            examples=tuple(card.get("examples", ())),
            target_example=card.get("target_example"),
            methods=("weights", "norms") if config.model_type in NORMS_FAMILIES else ("weights",),
            ablation=ablation,
            head_importance=read_head_importance(self._directory) if self._directory is not None else None,
            explains=explainable(self._model),
            layer_norm=layer_norm_placement(self._model),
        )

    def _language_controls(self) -> tuple[Control, ...]:
        if not self._languages:
            return ()
        codes = tuple(self._languages)
        names = {code: language(code).name for code in codes if language(code).name != code}
        card = self._card

        def default(card_key: str, tokenizer_value: str | None) -> str:
            for candidate in (_card_language(card.get(card_key)), _card_language(tokenizer_value)):
                if candidate and candidate.code in self._languages:
                    return candidate.code
            return codes[0]

        return (
            Control(
                name="source_language",
                label="Source language",
                values=codes,
                default=default("source_language", self._tokenizer.src_lang),
                help="The language of the source text: the code the tokenizer adds to it.",
                value_labels=names,
            ),
            Control(
                name="target_language",
                label="Target language",
                values=codes,
                default=default("target_language", getattr(self._tokenizer, "tgt_lang", None)),
                help="The language to translate into: the decoder is made to begin with its code.",
                value_labels=names,
            ),
        )

    # --- tokens -----------------------------------------------------------------------------------

    def source_tokens(self, text: str, controls: dict[str, str] | None = None) -> list[Token]:
        values = resolve_controls(self._description, controls)
        return self._typed_tokens(text, self._source_ids(text, values), values)

    def target_tokens(self, text: str, controls: dict[str, str] | None = None) -> list[Token]:
        return self._tokens(self._target_ids(text, resolve_controls(self._description, controls)))

    def _encode(self, controls: dict[str, str], **text) -> list[int]:
        with self._tokenizer_lock:
            if self._languages:
                self._tokenizer.src_lang = controls["source_language"]
                self._tokenizer.tgt_lang = controls["target_language"]
            return self._tokenizer(**text).input_ids

    def _source_ids(self, text: str, controls: dict[str, str]) -> list[int]:
        if not text.strip():
            raise InputError(f"the source is empty: type a sentence in {self._description.source_language.name}")
        ids = self._encode(controls, text=text)
        self._check_length("source", ids, self._description.limits.max_source_tokens)
        return ids

    def _target_ids(self, text: str, controls: dict[str, str]) -> list[int]:
        if not text.strip():
            raise InputError(f"the target is empty: type a {self._description.target_language.name} translation or leave it out")
        ids = self._encode(controls, text_target=text)
        self._check_length("target", ids, self._description.limits.max_target_tokens)
        return ids

    def _check_length(self, what: str, ids: list[int], limit: int) -> None:
        count = sum(token_id not in self._special_ids for token_id in ids)  # what the user typed, as the limits count
        if count > limit:
            raise InputError(f"the {what} has {count} tokens; the limit is {limit}: shorten it")

    def _typed_tokens(self, text: str, ids: list[int], controls: dict[str, str]) -> list[Token]:
        """The tokens of the source `text` (encoded as `ids`), an unknown piece shown as the text it stands for
        (the piece the tokenizer cut, 茶 rather than <unk>), so warnings and the page can name it."""
        pieces = self._tokenizer.convert_ids_to_tokens(ids)
        with self._tokenizer_lock:
            if self._languages:
                self._tokenizer.src_lang = controls["source_language"]
            cut = self._tokenizer.tokenize(text)
        typed = [position for position, token_id in enumerate(ids) if token_id not in self._special_ids]
        if len(cut) == len(typed):  # the tokenizer's pieces line up with the ids it gave: take their text
            for position, piece in zip(typed, cut, strict=True):
                if ids[position] == self._tokenizer.unk_token_id:
                    pieces[position] = piece
        return self._tokens(ids, pieces)

    def _tokens(self, ids: list[int], pieces: list[str] | None = None) -> list[Token]:
        """Tokens as shown: markers stripped, word_start from the marker convention; `pieces` are the ids' own
        unless given."""
        pieces = self._tokenizer.convert_ids_to_tokens(ids) if pieces is None else pieces
        tokens: list[Token] = []
        after_word_end = True  # the first piece, and the piece after a special token or a "</w>", begin a word
        for token_id, piece in zip(ids, pieces, strict=True):
            special = token_id in self._special_ids
            text, word_start = piece, True
            if not special and self._marker == WORD_END_MARKER:
                text, word_start = piece.removesuffix(WORD_END_MARKER) or piece, after_word_end
            elif not special and self._marker == "Ġ":
                text, word_start = _byte_level_text(piece) or piece, after_word_end or piece.startswith("Ġ")
            elif not special and self._marker:
                text, word_start = piece.removeprefix(self._marker) or piece, after_word_end or piece.startswith(self._marker)
            after_word_end = special or (self._marker == WORD_END_MARKER and piece.endswith(WORD_END_MARKER))
            tokens.append(
                Token(
                    text=text,
                    id=token_id,
                    unknown=token_id == self._tokenizer.unk_token_id,
                    special=special,
                    word_start=word_start,
                )
            )
        return tokens

    def _text(self, ids: list[int]) -> str:
        # not skip_special_tokens: some tokenizers (M2M100) do not count their language codes as special
        return self._tokenizer.decode([token_id for token_id in ids if token_id not in self._special_ids])

    def _produced(self, sequence: torch.Tensor) -> list[int]:
        """The tokens `generate` produced after the decoder start token, up to and including the first </s>."""
        ids = sequence.tolist()[1:]
        eos = self._model.generation_config.eos_token_id
        eos_ids = set(eos) if isinstance(eos, list) else {eos}
        for position, token_id in enumerate(ids):
            if token_id in eos_ids:
                return ids[: position + 1]
        return ids

    # --- decoding ---------------------------------------------------------------------------------

    def _generation_options(self, beam_size: int, max_length: int | None, controls: dict[str, str], stop: StopCheck) -> dict:
        limit = self._description.limits.max_target_tokens
        max_length = limit if max_length is None else max_length
        if not 1 <= max_length <= limit:
            raise InputError(f"max_length must be between 1 and {limit}")
        if beam_size < 1:
            raise InputError("beam_size must be at least 1")
        options = dict(
            num_beams=beam_size,
            do_sample=False,
            max_new_tokens=max_length,
            stopping_criteria=_stop_criteria()(stop),
        )
        if self._needs_growing_cache:
            # generate sizes its cache by the decoder config's num_hidden_layers, which T5-style configs alias to the
            # encoder's layer count: a deeper decoder overflows it. A cache without a config grows with its layers.
            import transformers

            cache = transformers.EncoderDecoderCache(transformers.DynamicCache(), transformers.DynamicCache())
            options["cache" if int(transformers.__version__.split(".")[0]) >= 5 else "past_key_values"] = cache
        if self._languages:
            options["forced_bos_token_id"] = self._languages[controls["target_language"]]
        return options

    def _batch(self, sources: list[list[int]]) -> dict[str, torch.Tensor]:
        length = max(map(len, sources))
        pad = self._tokenizer.pad_token_id
        input_ids = torch.tensor([ids + [pad] * (length - len(ids)) for ids in sources])  # (B, S)
        attention_mask = torch.tensor([[1] * len(ids) + [0] * (length - len(ids)) for ids in sources])  # (B, S)
        return {"input_ids": input_ids.to(self._model.device), "attention_mask": attention_mask.to(self._model.device)}

    def translate(
        self,
        texts: list[str],
        *,
        beam_size: int = 1,
        max_length: int | None = None,
        n_best: int = 1,
        controls: dict[str, str] | None = None,
        stop: StopCheck = never_stop,
        ablate: frozenset[HeadRef] = frozenset(),
    ) -> list[Translation]:
        values = resolve_controls(self._description, controls)
        gates = self._gates(ablate)
        if not 1 <= n_best <= beam_size:
            raise InputError(f"n_best must be between 1 and beam_size ({beam_size})")
        sources = [self._source_ids(text, values) for text in texts]
        if not sources:
            return []
        options = self._generation_options(beam_size, max_length, values, stop)
        with torch.inference_mode(), _gated(gates):
            output = self._model.generate(
                **self._batch(sources),
                **options,
                num_return_sequences=n_best,
                return_dict_in_generate=True,
                output_scores=beam_size > 1,  # beam: sequences_scores
                output_logits=beam_size == 1,  # greedy: the raw logits, before any logits processor
            )
        produced = [self._produced(sequence) for sequence in output.sequences]
        if beam_size == 1:  # greedy: the sum of the model's own log-probabilities of the produced tokens
            chosen = output.sequences[:, 1:]  # (B, T)
            token_log_probs = torch.stack(
                [
                    logits.float().log_softmax(-1).gather(1, chosen[:, [step]]).squeeze(1)
                    for step, logits in enumerate(output.logits)
                ],
                dim=1,
            ).cpu()  # (B, T)
            scores = [token_log_probs[row, : len(ids)].sum().item() for row, ids in enumerate(produced)]
        else:  # beam: generate's length-penalised sequence scores
            scores = output.sequences_scores.tolist()
        translations = []
        for index, (text, source) in enumerate(zip(texts, sources, strict=True)):
            hypotheses = [
                Hypothesis(
                    translation=self._text(produced[row]),
                    tokens=[token.text for token in self._tokens(produced[row])],
                    score=scores[row],
                )
                for row in range(index * n_best, (index + 1) * n_best)
            ]
            best = hypotheses[0]
            translations.append(
                Translation(
                    source_tokens=self._typed_tokens(text, source, values),
                    target_tokens=self._tokens(produced[index * n_best]),
                    translation=best.translation,
                    score=best.score,
                    n_best=hypotheses,
                    controls=values,
                    predictions={},
                )
            )
        return translations

    def attention(
        self,
        source: str,
        target: str | None = None,
        *,
        beam_size: int = 1,
        max_length: int | None = None,
        controls: dict[str, str] | None = None,
        method: Method = "weights",
        saliency: SaliencyOptions = DEFAULT_SALIENCY,
        stop: StopCheck = never_stop,
        ablate: frozenset[HeadRef] = frozenset(),
    ) -> AttentionResult:
        values = resolve_controls(self._description, controls)
        if method not in self._description.methods:
            methods = ", ".join(self._description.methods)
            raise InputError(f"model {self._description.name} has no method {method}; its methods are {methods}")
        gates = self._gates(ablate)
        with _gated(gates):
            source_ids, target_ids, batch = self._pair(source, target, beam_size, max_length, values, stop)
            decoder_input_ids = batch["decoder_input_ids"][0].tolist()
            with torch.inference_mode():
                output = self._model(**batch, output_attentions=True, output_hidden_states=method == "norms")
        produced = torch.tensor(target_ids, device=output.logits.device)[:, None]  # (T, 1)
        score = output.logits[0].float().log_softmax(-1).gather(1, produced).sum().item()
        maps = {
            "encoder": output.encoder_attentions,  # L x (1, H, S, S)
            "decoder": output.decoder_attentions,  # L x (1, H, T, T)
            "cross": output.cross_attentions,  # L x (1, H, T, S)
        }
        layer_maps = {}
        if method == "norms":
            maps, layer_maps = self._norms(output)
        return AttentionResult(
            source_tokens=self._typed_tokens(source, source_ids, values),
            target_tokens=self._tokens(target_ids),
            decoder_input_tokens=self._tokens(decoder_input_ids),
            translation=self._text(target_ids),
            forced=target is not None,
            score=score,
            maps={kind: torch.cat(layers).float().cpu() for kind, layers in maps.items()},  # (L, H, Tq, Tk)
            controls=values,
            predictions={},
            method=method,
            layer_maps={kind: torch.cat(layers).float().cpu() for kind, layers in layer_maps.items()},  # (L, Tq, Tk)
        )

    @torch.inference_mode()
    def _norms(self, output) -> tuple[dict[str, list[torch.Tensor]], dict[str, list[torch.Tensor]]]:
        """Method norms (model/norms.py, Kobayashi et al. 2020) of a forward pass with attentions and hidden states,
        from each layer's own v_proj and out_proj -> (per head [(1, H, Tq, Tk)], per layer [(1, Tq, Tk)]) by kind.

        hidden_states[l] is layer l's input. BART and Marian normalise after each block (post-LN): the values are made
        from that input. mBART and M2M100 / NLLB normalise first (pre-LN, and they end with a final layer_norm, which
        is how they are told apart): from its self_attn_layer_norm. Cross-attention values are made from the
        encoder's output either way."""
        encoder, decoder = self._model.get_encoder(), self._model.get_decoder()
        normalise_first = getattr(encoder, "layer_norm", None) is not None
        memory = output.encoder_last_hidden_state

        def values_in(layer, hidden: torch.Tensor) -> torch.Tensor:
            return layer.self_attn_layer_norm(hidden) if normalise_first else hidden

        blocks = {"encoder": [], "decoder": [], "cross": []}  # (weights, what the values are made from, the attention)
        encoder_side = zip(encoder.layers, output.encoder_hidden_states[:-1], output.encoder_attentions, strict=True)
        for layer, hidden, weights in encoder_side:
            blocks["encoder"].append((weights, values_in(layer, hidden), layer.self_attn))
        decoder_side = zip(
            decoder.layers, output.decoder_hidden_states[:-1], output.decoder_attentions, output.cross_attentions, strict=True
        )
        for layer, hidden, own, cross in decoder_side:
            blocks["decoder"].append((own, values_in(layer, hidden), layer.self_attn))
            blocks["cross"].append((cross, memory, layer.encoder_attn))
        per_head, per_layer = {}, {}
        for kind, entries in blocks.items():
            per_head[kind], per_layer[kind] = [], []
            for weights, inputs, attention in entries:
                n_heads = weights.size(1)
                values = attention.v_proj(inputs)  # (1, Tk, D)
                values = values.view(*values.shape[:2], n_heads, -1).transpose(1, 2)  # (1, H, Tk, d_k)
                heads, layer = norm_maps(weights, values, attention.out_proj)
                per_head[kind].append(heads)
                per_layer[kind].append(layer)
        return per_head, per_layer

    def explain(
        self,
        source: str,
        target: str | None = None,
        *,
        kind: str,
        layer: int,
        head: int,
        query: int,
        beam_size: int = 1,
        max_length: int | None = None,
        controls: dict[str, str] | None = None,
        stop: StopCheck = never_stop,
        ablate: frozenset[HeadRef] = frozenset(),
    ) -> HeadExplanation:
        if not self._description.explains:
            raise InputError(f"model {self._description.name} cannot explain its attention step by step (explains: false)")
        values = resolve_controls(self._description, controls)
        if kind not in self._description.kinds:
            raise InputError(f"model {self._description.name} has no {kind} attention")
        gates = self._gates(ablate)
        with _gated(gates):
            source_ids, target_ids, batch = self._pair(source, target, beam_size, max_length, values, stop)
            return explain_head(
                self._model,
                batch,
                kind,
                layer,
                head,
                query,
                source_tokens=self._typed_tokens(source, source_ids, values),
                target_tokens=self._tokens(target_ids),
                decoder_input_tokens=self._tokens(batch["decoder_input_ids"][0].tolist()),
                translation=self._text(target_ids),
                forced=target is not None,
                controls=values,
                gates=None if gates is None else gates.get((kind, layer)),
            )

    def _pair(
        self, source: str, target: str | None, beam_size: int, max_length: int | None, controls: dict[str, str], stop: StopCheck
    ) -> tuple[list[int], list[int], dict[str, torch.Tensor]]:
        """The source's ids, the target's (decoded, unless given) and the teacher-forced batch of the two
        (input_ids, attention_mask, decoder_input_ids: the start token, then the target but its last token)."""
        source_ids = self._source_ids(source, controls)
        batch = self._batch([source_ids])
        if target is None:
            options = self._generation_options(beam_size, max_length, controls, stop)
            with torch.inference_mode():
                target_ids = self._produced(self._model.generate(**batch, **options)[0])
        else:
            target_ids = self._target_ids(target, controls)
        stop()
        decoder_input_ids = [self._decoder_start] + target_ids[:-1]
        batch["decoder_input_ids"] = torch.tensor([decoder_input_ids], device=self._model.device)
        return source_ids, target_ids, batch

    # --- head gates ---------------------------------------------------------------------------------

    def _gates(self, ablate: frozenset[HeadRef]) -> dict[tuple[str, int], torch.Tensor] | None:
        """The gates that switch `ablate` off, by (kind, layer); None (no gate at all) when it is empty."""
        gates: dict[tuple[str, int], torch.Tensor] = {}
        for ref in check_ablation(self._description, ablate):
            key = (ref.kind, ref.layer)
            if key not in gates:
                gates[key] = torch.ones(self._description.kinds[ref.kind].heads, device=self._model.device)
            gates[key][ref.head] = 0.0
        return gates or None

    def gate_gradients(
        self, sources: list[str], targets: list[str], *, controls: dict[str, str] | None = None
    ) -> dict[AttentionKind, torch.Tensor]:
        if not self._description.ablation:
            name = self._description.name
            raise InputError(f"model {name} cannot gate its heads: its attention modules are not ones attnscope knows")
        if len(sources) != len(targets):
            raise InputError(f"{len(sources)} sources but {len(targets)} targets: give one target per source")
        values = resolve_controls(self._description, controls)
        kinds = self._description.kinds
        sums = {kind: torch.zeros(shape.layers, shape.heads) for kind, shape in kinds.items()}
        for start in range(0, len(sources), GRADIENT_BATCH):
            chunk = range(start, min(start + GRADIENT_BATCH, len(sources)))
            source_ids = [self._source_ids(sources[i], values) for i in chunk]
            target_ids = [self._target_ids(targets[i], values) for i in chunk]
            device = self._model.device
            ones = {
                kind: torch.ones(len(chunk), shape.layers, shape.heads, device=device, requires_grad=True)
                for kind, shape in kinds.items()
            }
            gates = {(kind, layer): ones[kind][:, layer] for kind in ones for layer in range(kinds[kind].layers)}  # (B, H) each
            pad = self._tokenizer.pad_token_id
            length = max(map(len, target_ids))
            decoder_inputs = torch.tensor([[self._decoder_start, *ids[:-1]] + [pad] * (length - len(ids)) for ids in target_ids])
            labels = torch.tensor([ids + [-100] * (length - len(ids)) for ids in target_ids])  # (B, T), -100 ignored
            with torch.enable_grad(), _gated(gates):
                logits = self._model(**self._batch(source_ids), decoder_input_ids=decoder_inputs.to(self._model.device)).logits
                labels = labels.to(logits.device)
                nll = F.cross_entropy(logits.float().transpose(1, 2), labels, ignore_index=-100, reduction="none")  # (B, T)
                per_pair = nll.sum(1) / (labels != -100).sum(1)
                grads = torch.autograd.grad(per_pair.sum(), list(ones.values()))
            for kind, grad in zip(ones, grads, strict=True):
                sums[kind] += grad.abs().sum(0).cpu()
        return sums
