"""Tiny random Hugging Face checkpoints, built offline from configs, for the backend tests (and the app's).

`write_tiny_hf_model(directory, family)` trains the family's own kind of tokenizer on the first lines of the
corpus (sentencepiece for Marian, T5 and M2M100, byte-level BPE for BART), builds a randomly initialised model
from a small config and writes both with save_pretrained: the directory is what a user would download.
"""

from __future__ import annotations

import io
import json
import os
from itertools import islice
from pathlib import Path

import pytest
import torch

os.environ["HF_HUB_OFFLINE"] = "1"  # the tests build every model they load; nothing may reach a hub

CORPUS = Path(__file__).resolve().parents[2].parent / "shared/data/small_parallel_enja"
# "nllb" is an M2M100 model (model_type m2m_100) with NLLB's tokenizer and its 202 language codes;
# "mbart50" an mBART model with mBART-50's tokenizer and its 52 codes
FAMILIES = ("marian", "bart", "t5", "m2m_100", "nllb", "mbart50")

# Per-kind counts differ on purpose (Marian: 2 encoder / 1 decoder layers, 4 / 2 heads; T5: 2 / 3 layers, 2 heads;
# NLLB: 1 / 2 layers, 2 / 4 heads)
# so a test that mixes up kinds fails.
# The BART-style families share one shape (2 + 2 layers, 2 heads); Marian and NLLB change what the comment says.
BART_STYLE = dict(
    d_model=32,
    encoder_layers=2,
    decoder_layers=2,
    encoder_attention_heads=2,
    decoder_attention_heads=2,
    encoder_ffn_dim=64,
    decoder_ffn_dim=64,
    max_position_embeddings=64,
)
TINY_CONFIGS: dict[str, dict] = {
    "marian": {**BART_STYLE, "decoder_layers": 1, "encoder_attention_heads": 4},
    "bart": BART_STYLE,
    "t5": dict(d_model=32, d_kv=16, d_ff=64, num_layers=2, num_decoder_layers=3, num_heads=2, relative_attention_num_buckets=8),
    "m2m_100": BART_STYLE,
    "mbart50": BART_STYLE,
    "nllb": {**BART_STYLE, "encoder_layers": 1, "decoder_attention_heads": 4},
}


def corpus_lines(language: str, count: int, split: str = "train") -> list[str]:
    path = CORPUS / f"{split}.{language}"
    with path.open(encoding="utf-8") as lines:
        return [line.strip() for line in islice(lines, count)]


def _train_sentencepiece(lines: list[str], vocab_size: int, **options) -> bytes:
    import sentencepiece

    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=model,
        vocab_size=vocab_size,
        hard_vocab_limit=False,
        character_coverage=1.0,
        num_threads=1,
        minloglevel=2,
        **options,
    )
    return model.getvalue()


def _pieces(spm_model: bytes) -> list[tuple[str, float]]:
    import sentencepiece

    processor = sentencepiece.SentencePieceProcessor(model_proto=spm_model)
    return [(processor.id_to_piece(i), processor.get_score(i)) for i in range(processor.get_piece_size())]


def _marian_tokenizer(work: Path, lines: int, vocab_size: int):
    from transformers import MarianTokenizer

    specials = ("</s>", "<unk>", "<pad>")
    (work / "source.spm").write_bytes(_train_sentencepiece(corpus_lines("en", lines), vocab_size))
    (work / "target.spm").write_bytes(_train_sentencepiece(corpus_lines("ja", lines), vocab_size))
    # One vocabulary shared by both sides, as the OPUS-MT checkpoints have: </s> 0, <unk> 1, pieces, <pad> last.
    vocab = {"</s>": 0, "<unk>": 1}
    for side in ("source.spm", "target.spm"):
        for piece, _ in _pieces((work / side).read_bytes()):
            if piece not in specials and piece not in ("<s>",):
                vocab.setdefault(piece, len(vocab))
    vocab["<pad>"] = len(vocab)
    (work / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    return MarianTokenizer(
        source_spm=str(work / "source.spm"),
        target_spm=str(work / "target.spm"),
        vocab=str(work / "vocab.json"),
        source_lang="en",
        target_lang="ja",
    )


def _bart_tokenizer(work: Path, lines: int, vocab_size: int):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import BartTokenizer

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size + 256,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(corpus_lines("en", lines) + corpus_lines("ja", lines), trainer)
    return BartTokenizer(vocab=bpe.get_vocab(), merges=_merges(bpe))


def _merges(bpe) -> list[tuple[str, str]]:
    merges = json.loads(bpe.to_str())["model"]["merges"]
    return [tuple(merge) if isinstance(merge, list) else tuple(merge.split(" ")) for merge in merges]


def _t5_tokenizer(work: Path, lines: int, vocab_size: int):
    from transformers import T5Tokenizer

    # T5's own id layout: <pad> 0, </s> 1, <unk> 2, no <s>.
    spm = _train_sentencepiece(
        corpus_lines("en", lines) + corpus_lines("ja", lines),
        vocab_size,
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
    )
    return T5Tokenizer(vocab=_pieces(spm), extra_ids=0)


def _m2m_100_tokenizer(work: Path, lines: int, vocab_size: int):
    from transformers import M2M100Tokenizer

    spm = _train_sentencepiece(corpus_lines("en", lines) + corpus_lines("ja", lines), vocab_size, model_type="bpe")
    (work / "sentencepiece.bpe.model").write_bytes(spm)
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for piece, _ in _pieces(spm):
        vocab.setdefault(piece, len(vocab))
    (work / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    # "wmt21" is M2M100's 8-language code set (en, ha, is, ja, cs, ru, zh, de): a multilingual vocabulary, kept small.
    return M2M100Tokenizer(
        vocab_file=str(work / "vocab.json"),
        spm_file=str(work / "sentencepiece.bpe.model"),
        language_codes="wmt21",
        src_lang="en",
        tgt_lang="ja",
    )


def _nllb_tokenizer(work: Path, lines: int, vocab_size: int):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import NllbTokenizer

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<s>", "<pad>", "</s>", "<unk>"], show_progress=False)
    bpe.train_from_iterator(corpus_lines("en", lines) + corpus_lines("ja", lines), trainer)
    return NllbTokenizer(vocab=bpe.get_vocab(), merges=_merges(bpe), src_lang="eng_Latn", tgt_lang="jpn_Jpan")


def _mbart50_tokenizer(work: Path, lines: int, vocab_size: int):
    from transformers import MBart50Tokenizer

    spm = _train_sentencepiece(corpus_lines("en", lines) + corpus_lines("ja", lines), vocab_size)
    return MBart50Tokenizer(vocab=_pieces(spm), src_lang="en_XX", tgt_lang="ja_XX")


TOKENIZER_BUILDERS = {
    "marian": _marian_tokenizer,
    "bart": _bart_tokenizer,
    "t5": _t5_tokenizer,
    "m2m_100": _m2m_100_tokenizer,
    "nllb": _nllb_tokenizer,
    "mbart50": _mbart50_tokenizer,
}


def _config(family: str, tokenizer, overrides: dict):
    from transformers import BartConfig, M2M100Config, MarianConfig, MBartConfig, T5Config

    common = dict(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        dropout=0.0,
        **{**TINY_CONFIGS[family], **overrides},
    )
    if family == "marian":
        return MarianConfig(decoder_start_token_id=tokenizer.pad_token_id, forced_eos_token_id=tokenizer.eos_token_id, **common)
    if family == "bart":
        # as facebook/bart-*: the decoder starts from </s>
        return BartConfig(bos_token_id=tokenizer.bos_token_id, decoder_start_token_id=tokenizer.eos_token_id, **common)
    if family == "t5":
        common.pop("dropout")
        return T5Config(dropout_rate=0.0, decoder_start_token_id=tokenizer.pad_token_id, **common)
    if family == "mbart50":  # as facebook/mbart-large-50-many-to-many-mmt: start from </s>, then the language code
        return MBartConfig(bos_token_id=0, decoder_start_token_id=tokenizer.eos_token_id, **common)
    if family == "nllb":
        return M2M100Config(bos_token_id=tokenizer.bos_token_id, decoder_start_token_id=tokenizer.eos_token_id, **common)
    if family == "m2m_100":
        # language tokens and M2M100's made-up words come after the sentencepiece vocabulary, as in facebook/m2m100_418M
        common["vocab_size"] = tokenizer.encoder_size + len(tokenizer.lang_code_to_id) + tokenizer.num_madeup_words
        return M2M100Config(bos_token_id=tokenizer.bos_token_id, decoder_start_token_id=tokenizer.eos_token_id, **common)
    raise ValueError(f"no tiny model for family {family!r}; one of {', '.join(FAMILIES)}")


def write_tiny_hf_model(
    directory: Path, family: str, *, lines: int = 300, vocab_size: int = 1000, seed: int = 0, **config
) -> Path:
    """A randomly initialised `family` checkpoint with a tokenizer trained on `lines` corpus lines, saved in `directory`.

    `config` overrides the tiny config (the bench builds a model of the built-in model's size this way).
    """
    from transformers import AutoModelForSeq2SeqLM

    if not CORPUS.is_dir():
        pytest.skip(f"the corpus is not at {CORPUS}")
    directory = Path(directory)
    work = directory / "_tokenizer_sources"
    work.mkdir(parents=True, exist_ok=True)
    tokenizer = TOKENIZER_BUILDERS[family](work, lines, vocab_size)
    torch.manual_seed(seed)
    model = AutoModelForSeq2SeqLM.from_config(_config(family, tokenizer, config))
    if family == "bart":
        model.generation_config.forced_bos_token_id = tokenizer.bos_token_id  # as facebook/bart-large: outputs begin <s>
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    for path in work.iterdir():
        path.unlink()
    work.rmdir()
    return directory


@pytest.fixture(scope="session")
def tiny_hf_dirs(tmp_path_factory) -> dict[str, Path]:
    """One saved tiny checkpoint per family, built once per session."""
    pytest.importorskip("transformers", reason="the hf extra is not installed")
    root = tmp_path_factory.mktemp("hf")
    return {family: write_tiny_hf_model(root / family, family) for family in FAMILIES}


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models lose more to handing work between threads than they gain: this directory ran in 5.7 s with one
    thread against 23 s with two on the shared 2-core machine. The count is put back for the tests elsewhere."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
