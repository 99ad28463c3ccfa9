"""The built-in transformer (model/) behind the model interface: a NAME.pt checkpoint, its NAME.json
card, its NAME.readings.json table of romaji and its NAME.heads.json head-importance table (`attnscope
heads`), served as one TranslationModel.

Both architectures can switch heads off (model.gates). The RNN's one cross head is its whole attention:
switching it off zeroes the context vector, a "no attention" experiment (its decoder still starts from
the encoder's last backward state, so the translation still depends on the source)."""

from __future__ import annotations

import json
from pathlib import Path

from torch import Tensor

from backends.discovery import read_head_importance
from backends.interface import (
    DEFAULT_SALIENCY,
    AttentionKind,
    AttentionQuery,
    AttentionResult,
    Control,
    HeadExplanation,
    HeadRef,
    InputError,
    KindShape,
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
)
from model.checkpoint import CheckpointError, architecture
from model.methods import methods_of
from model.politeness import POLITENESS_LABELS
from model.readings import load_readings
from model.translator import POLITENESS, Translator
from model.vocab import SPECIALS

FAMILIES = {"transformer": "attnscope-transformer", "rnn": "attnscope-rnn"}  # by model.checkpoint architecture


class BuiltinModel(TranslationModel):
    """One NAME.pt served through backends.interface.TranslationModel."""

    def __init__(
        self, name: str, translator: Translator, card: dict, readings: dict[str, str], head_importance: dict | None = None
    ):
        self.name = name
        self.translator = translator
        self.card = card
        self.readings = readings
        self.head_importance = head_importance
        self._description = self._describe()

    @classmethod
    def load(cls, path: str | Path, device: str = "auto") -> BuiltinModel:
        path = Path(path)
        try:
            translator = Translator.from_checkpoint(path, device)
        except CheckpointError as exc:
            raise ModelLoadError(str(exc)) from None
        card_path = path.with_suffix(".json")
        try:
            card = json.loads(card_path.read_text(encoding="utf-8")) if card_path.is_file() else {}
        except (ValueError, OSError) as exc:
            raise ModelLoadError(f"model card {card_path.name} cannot be read: {exc}") from None
        try:
            readings = load_readings(path)
        except ValueError as exc:
            raise ModelLoadError(f"readings table of {path.name} cannot be used: {exc}") from None
        return cls(path.stem, translator, card, readings, read_head_importance(path))

    def _describe(self) -> ModelDescription:
        cfg, card, network = self.translator.config, self.card, self.translator.model
        controls = ()
        if cfg.politeness_levels:
            controls = (
                Control(
                    name=POLITENESS,
                    label="Politeness",
                    values=("auto", *cfg.politeness_levels),
                    default="auto",
                    help="English does not mark politeness: choose the register of the translation, or let the model "
                    "predict it from the source (a forced target is scored under its own)",
                    value_labels={
                        "auto": "Auto (predicted)",
                        **{level: POLITENESS_LABELS[level] for level in cfg.politeness_levels},
                    },
                ),
            )
        return ModelDescription(
            name=self.name,
            description=card.get("description", ""),
            family=FAMILIES[architecture(network)],
            source_language=language(card.get("source_language", "en")),
            target_language=language(card.get("target_language", "ja")),
            kinds={kind: KindShape(layers, heads) for kind, (layers, heads) in network.attention_shapes.items()},
            controls=controls,
            # Japanese is written without spaces; the corpus's (and so the model's) tokens are whole words.
            tokens=TokenConventions(subword_marker=None, target_joiner="", special_tokens=tuple(SPECIALS), word_level=True),
            limits=ModelLimits(max_source_tokens=cfg.max_positions - 1, max_target_tokens=cfg.max_positions - 1),
            d_model=network.width,
            parameters=card.get("parameters", network.num_parameters()),
            vocab_sizes={"source": len(self.translator.src_vocab), "target": len(self.translator.tgt_vocab)},
            card=card,
            examples=tuple(card.get("examples", ())),
            target_example=card.get("target_example"),
            has_readings=bool(self.readings),
            methods=methods_of(network),
            # the transformer's heads are queries, keys and values, traced (model.explanation); the RNN's
            # additive score is not, so it has no step-by-step explanation
            explains=architecture(network) == "transformer",
            layer_norm="pre" if architecture(network) == "transformer" else None,
            ablation=True,
            head_importance=self.head_importance,
            batching=True,
        )

    def describe(self) -> ModelDescription:
        return self._description

    def _with_readings(self, tokens: list[Token]) -> list[Token]:
        return [Token(t.text, t.id, t.unknown, t.special, reading=self.readings.get(t.text)) for t in tokens]

    @staticmethod
    def _politeness(controls: dict[str, str] | None) -> str:
        return (controls or {}).get(POLITENESS, "auto")

    def source_tokens(self, text: str, controls: dict[str, str] | None = None) -> list[Token]:
        return self.translator.source_tokens(text)

    def target_tokens(self, text: str, controls: dict[str, str] | None = None) -> list[Token]:
        return self._with_readings(self.translator.target_tokens(text))

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
        off = frozenset(check_ablation(self._description, ablate))
        results = self.translator.translate(texts, beam_size, max_length, n_best, self._politeness(controls), stop, off)
        for result in results:
            result.target_tokens = self._with_readings(result.target_tokens)
        return results

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
        off = frozenset(check_ablation(self._description, ablate))
        return self._labelled(
            self.translator.attention(
                source,
                target,
                beam_size,
                max_length,
                self._politeness(controls),
                stop,
                method=method,
                saliency=saliency,
                ablate=off,
            )
        )

    def attention_batch(self, queries: list[AttentionQuery], stops: list[StopCheck]) -> list[AttentionResult | Exception]:
        # the service checked each query's ablate (app.checks); a head the network lacks is that call's ValueError
        results = self.translator.attention_batch(queries, stops)
        return [result if isinstance(result, Exception) else self._labelled(result) for result in results]

    def explain(
        self,
        source: str,
        target: str | None = None,
        *,
        kind: AttentionKind,
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
            raise InputError(f"model {self.name} cannot explain its attention step by step: it has no queries and keys")
        off = frozenset(check_ablation(self._description, ablate))
        return self._labelled(
            self.translator.explain(
                source, target, kind, layer, head, query, beam_size, max_length, self._politeness(controls), stop, off
            )
        )

    def _labelled(self, result: AttentionResult | HeadExplanation) -> AttentionResult | HeadExplanation:
        result.target_tokens = self._with_readings(result.target_tokens)
        result.decoder_input_tokens = self._with_readings(result.decoder_input_tokens)
        return result

    def gate_gradients(
        self, sources: list[str], targets: list[str], *, controls: dict[str, str] | None = None
    ) -> dict[AttentionKind, Tensor]:
        return self.translator.gate_gradients(sources, targets, self._politeness(controls))
