"""Train an English→Japanese model: the transformer, or the RNN with attention (--arch rnn).

    python -m model.train --data ../shared/data/small_parallel_enja --out model/checkpoints/en-ja.pt
    python -m model.train --data ../shared/data/small_parallel_enja --out model/checkpoints/en-ja-rnn.pt --arch rnn

Trains on train.* only, picks the best epoch by dev BLEU, and scores the kept model on test.* once
at the end. Writes the checkpoint (fp16 weights, config and vocabularies inside) and a .json card
beside it.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import random
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from model.bleu import corpus_bleu, translation_bleu
from model.checkpoint import LoadedModel, build_model, load_checkpoint, save_checkpoint
from model.data import encode_pairs, length_bucketed_batches, read_parallel
from model.politeness import POLITENESS_LEVELS, target_politeness
from model.rnn import SCORES, AttentionRNN, RNNConfig
from model.transformer import ModelConfig, Seq2SeqTransformer, label_smoothed_loss
from model.translator import Translator, resolve_device
from model.vocab import Vocab

CORPUS_SOURCE = "small_parallel_enja (github.com/odashi/small_parallel_enja, from the Tanaka Corpus)"
# The politeness classifier's loss is per sentence, the translation loss per token; this keeps the
# classifier from pulling the encoder away from translation. The loss shown in training is the sum.
POLITENESS_LOSS_WEIGHT = 0.2


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m model.train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data", required=True, help="folder with train/dev/test .en/.ja files")
    p.add_argument("--out", default="model/checkpoints/en-ja.pt", help="checkpoint path (a .json card is written beside it)")
    p.add_argument("--epochs", type=int, default=18)
    p.add_argument(
        "--time-budget", type=float, default=None, metavar="MINUTES", help="stop after the epoch that would overrun this"
    )
    p.add_argument("--batch-tokens", type=int, default=3000, help="target tokens per batch, padding included")
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate")
    p.add_argument("--warmup", type=int, default=800, help="warm-up steps before linear decay to zero")
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument(
        "--source-word-dropout",
        type=float,
        default=0.0,
        metavar="P",
        help="replace each source word by <unk> with probability P during training, so no rare word carries a decision alone",
    )
    p.add_argument("--min-freq", type=int, default=2, help="rarer training words become <unk>")
    p.add_argument(
        "--skip-unk-targets",
        action="store_true",
        help="leave target words that are <unk> out of the loss, so the model does not learn to produce <unk>",
    )
    p.add_argument(
        "--init-from",
        metavar="CHECKPOINT",
        help="start from this checkpoint's weights, config and vocabularies (the model-shape options are then ignored; "
        "--dropout still applies)",
    )
    p.add_argument(
        "--politeness-control",
        action="store_true",
        help="condition the decoder on each target's politeness (plain or polite) and learn to predict it from the source",
    )
    p.add_argument("--arch", choices=["transformer", "rnn"], default="transformer", help="the network to train from scratch")
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--encoder-layers", type=int, default=3)
    p.add_argument("--decoder-layers", type=int, default=3)
    p.add_argument("--ffn", type=int, default=1024)
    p.add_argument("--dropout", type=float, help="default 0.1, or the --init-from checkpoint's")
    p.add_argument("--positional-encoding", choices=["sinusoidal", "learned"], default="sinusoidal")
    rnn = p.add_argument_group("--arch rnn", "the RNN encoder-decoder with attention (model/rnn.py)")
    rnn.add_argument("--score", choices=SCORES, default="additive", help="additive (Bahdanau) or general (Luong)")
    rnn.add_argument("--embed", type=int, default=RNNConfig.d_embed, help="word embedding size")
    rnn.add_argument("--encoder-hidden", type=int, default=RNNConfig.d_encoder, help="encoder GRU size, per direction")
    rnn.add_argument("--decoder-hidden", type=int, default=RNNConfig.d_decoder, help="decoder GRU size")
    rnn.add_argument("--attention-hidden", type=int, default=RNNConfig.d_attention, help="the additive score's hidden size")
    p.add_argument(
        "--average-last", type=int, default=5, help="also try the average of the last N epochs' weights; 0 turns it off"
    )
    p.add_argument("--beam", type=int, default=4, help="beam size for the final test score reported beside greedy")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="torch CPU threads")
    p.add_argument("--limit", type=int, default=None, help="use only the first N training pairs (smoke tests)")
    args = p.parse_args(argv)
    if args.arch == "rnn" and args.politeness_control:
        p.error("--politeness-control is for the transformer; the RNN model has none")
    return args


def new_config(args: argparse.Namespace, src_vocab: Vocab, tgt_vocab: Vocab) -> ModelConfig | RNNConfig:
    sizes = {"src_vocab_size": len(src_vocab), "tgt_vocab_size": len(tgt_vocab)}
    if args.arch == "rnn":
        return RNNConfig(
            **sizes,
            d_embed=args.embed,
            d_encoder=args.encoder_hidden,
            d_decoder=args.decoder_hidden,
            d_attention=args.attention_hidden,
            d_readout=args.embed,
            score=args.score,
            dropout=RNNConfig.dropout if args.dropout is None else args.dropout,
        )
    return ModelConfig(
        **sizes,
        d_model=args.d_model,
        n_heads=args.heads,
        n_encoder_layers=args.encoder_layers,
        n_decoder_layers=args.decoder_layers,
        d_ff=args.ffn,
        dropout=ModelConfig.dropout if args.dropout is None else args.dropout,
        positional_encoding=args.positional_encoding,
        politeness_levels=POLITENESS_LEVELS if args.politeness_control else (),
    )


def drop_source_words(src: torch.Tensor, p: float) -> torch.Tensor:
    """src: (B, S) ids -> the same with each word (not <pad> or </s>) replaced by <unk> with probability p."""
    is_word = (src != Vocab.pad_id) & (src != Vocab.eos_id)
    return src.masked_fill(is_word & (torch.rand(src.shape, device=src.device) < p), Vocab.unk_id)


def lr_at(step: int, peak: float, warmup: int, total: int) -> float:
    """Linear warm-up to `peak`, then linear decay to zero at `total` steps."""
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * max(0.0, (total - step) / max(1, total - warmup))


def dev_scores(translator: Translator, src: list[list[str]], ref: list[list[str]]) -> tuple[float, float | None]:
    """Greedy BLEU, and how often the predicted politeness is the reference's (None without politeness control)."""
    hyps = translator.translate([" ".join(s) for s in src])
    bleu = corpus_bleu([[t.text for t in h.target_tokens if not t.special] for h in hyps], ref)
    if not translator.config.politeness_levels:
        return bleu, None
    return bleu, sum(h.controls["politeness"] == target_politeness(r) for h, r in zip(hyps, ref, strict=True)) / len(ref)


def average_state_dicts(states: list[dict]) -> dict:
    return {
        k: sum(s[k].float() for s in states) / len(states) if states[0][k].is_floating_point() else states[0][k]
        for k in states[0]
    }


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    device = resolve_device(args.device)
    out = Path(args.out)

    train_src, train_tgt = read_parallel(args.data, "train")
    dev_src, dev_tgt = read_parallel(args.data, "dev")
    if args.limit:
        train_src, train_tgt = train_src[: args.limit], train_tgt[: args.limit]
    if args.init_from:
        start_from = load_checkpoint(args.init_from)
        model, src_vocab, tgt_vocab, cfg = start_from.model, start_from.src_vocab, start_from.tgt_vocab, start_from.model.cfg
        changes = {}
        if args.politeness_control and not cfg.politeness_levels:
            changes["politeness_levels"] = POLITENESS_LEVELS
        if args.dropout is not None and args.dropout != cfg.dropout:
            changes["dropout"] = args.dropout
        if changes:
            cfg = replace(cfg, **changes)
            state = model.state_dict()
            model = build_model(cfg)
            missing, _ = model.load_state_dict(state, strict=False)
            assert all(k.startswith("politeness_") for k in missing), missing
        model.to(device)
    else:
        src_vocab = Vocab.build(train_src, args.min_freq)
        tgt_vocab = Vocab.build(train_tgt, args.min_freq)
        cfg = new_config(args, src_vocab, tgt_vocab)
        model = build_model(cfg).to(device)
    pairs = encode_pairs(train_src, train_tgt, src_vocab, tgt_vocab)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        betas=(0.9, 0.98),
        eps=1e-9,
    )
    rng = random.Random(args.seed)
    steps_per_epoch = len(length_bucketed_batches(pairs, args.batch_tokens, random.Random(0)))
    total_steps = steps_per_epoch * args.epochs
    print(
        f"device {device}, {torch.get_num_threads()} threads; {len(pairs)} training pairs; "
        f"vocab en {len(src_vocab)} ja {len(tgt_vocab)}; "
        f"{model.num_parameters() / 1e6:.2f} M parameters; {steps_per_epoch} steps/epoch × {args.epochs} epochs",
        flush=True,
    )

    metadata = {
        "config": cfg.to_dict(),
        "corpus": CORPUS_SOURCE,
        "train_args": {k: v for k, v in vars(args).items() if k != "data"},
    }
    if args.init_from:
        metadata["initialized_from"] = {k: v for k, v in start_from.metadata.items() if k != "config"}
    history, recent_states = [], []
    best_bleu, best_epoch, step = -1.0, 0, 0
    start = time.time()
    for epoch in range(1, args.epochs + 1):
        model.train()
        batches = length_bucketed_batches(pairs, args.batch_tokens, rng)
        bar = tqdm(batches, desc=f"epoch {epoch}/{args.epochs}", unit="batch", dynamic_ncols=True)
        loss_avg = None
        for batch in bar:
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, args.lr, args.warmup, total_steps)
            src, politeness = batch.src.to(device), batch.politeness.to(device)
            if args.source_word_dropout:
                src = drop_source_words(src, args.source_word_dropout)
            memory, _ = model.encode(src)
            logits, _, _ = model.decode(batch.tgt_in.to(device), memory, src, politeness if cfg.politeness_levels else None)
            targets = batch.tgt_out.to(device)
            if args.skip_unk_targets:
                targets = targets.masked_fill(targets == Vocab.unk_id, Vocab.pad_id)
            loss = label_smoothed_loss(logits, targets, args.label_smoothing, Vocab.pad_id)
            if cfg.politeness_levels:
                loss = loss + POLITENESS_LOSS_WEIGHT * F.cross_entropy(model.politeness_logits(memory, src), politeness)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            step += 1
            loss_avg = loss.item() if loss_avg is None else 0.98 * loss_avg + 0.02 * loss.item()
            elapsed = time.time() - start
            eta_total = elapsed / step * (total_steps - step)
            bar.set_postfix(loss=f"{loss_avg:.3f}", lr=f"{optimizer.param_groups[0]['lr']:.2e}", eta_all=f"{eta_total / 60:.0f}m")
        bar.close()

        bleu, politeness_accuracy = dev_scores(_translator(model, src_vocab, tgt_vocab, device), dev_src, dev_tgt)
        elapsed = time.time() - start
        history.append(
            {"epoch": epoch, "train_loss": round(loss_avg, 4), "dev_bleu": round(bleu, 2), "minutes": round(elapsed / 60, 1)}
            | ({} if politeness_accuracy is None else {"dev_politeness_accuracy": round(politeness_accuracy, 3)})
        )
        improved = bleu > best_bleu
        if improved:
            best_bleu, best_epoch = bleu, epoch
            save_checkpoint(out, model, src_vocab, tgt_vocab, {**metadata, "epoch": epoch, "dev_bleu": round(bleu, 2)})
        print(
            f"epoch {epoch}: loss {loss_avg:.3f}, dev BLEU {bleu:.2f}{' (best, saved)' if improved else ''}, "
            + ("" if politeness_accuracy is None else f"dev politeness accuracy {politeness_accuracy:.3f}, ")
            + f"{elapsed / 60:.1f} min",
            flush=True,
        )
        if args.average_last:
            recent_states = (recent_states + [copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})])[
                -args.average_last :
            ]
        if args.time_budget and elapsed / epoch * (epoch + 1) > args.time_budget * 60 and epoch < args.epochs:
            print(f"stopping: another epoch would overrun the {args.time_budget:.0f}-minute budget", flush=True)
            break

    kept = f"epoch {best_epoch}"
    if len(recent_states) > 1:
        averaged = copy.deepcopy(model)
        averaged.load_state_dict(average_state_dicts(recent_states))
        bleu, _ = dev_scores(_translator(averaged, src_vocab, tgt_vocab, device), dev_src, dev_tgt)
        print(f"average of the last {len(recent_states)} epochs: dev BLEU {bleu:.2f}", flush=True)
        if bleu > best_bleu:
            best_bleu, kept = bleu, f"average of epochs {epoch - len(recent_states) + 1}-{epoch}"
            save_checkpoint(out, averaged, src_vocab, tgt_vocab, {**metadata, "epoch": epoch, "dev_bleu": round(bleu, 2)})

    wall = time.time() - start
    translator = Translator(load_checkpoint(out), device)
    test_src, test_tgt = read_parallel(args.data, "test")
    greedy = translation_bleu(translator, test_src, test_tgt)
    beam = translation_bleu(translator, test_src, test_tgt, args.beam)
    card = {
        "name": out.stem,
        "description": f"English→Japanese {describe_network(cfg)} trained by attnscope",
        "source_language": "en",
        "target_language": "ja",
        "config": cfg.to_dict(),
        "parameters": model.num_parameters(),
        "vocab_sizes": {"source": len(src_vocab), "target": len(tgt_vocab)},
        "epochs": len(history),
        "kept": kept,
        "wall_time_minutes": round(wall / 60, 1),
        "device": f"{device.type} ({torch.get_num_threads()} threads, {platform.processor() or platform.machine()})"
        if device.type == "cpu"
        else torch.cuda.get_device_name(device),
        "dev_bleu": round(best_bleu, 2),
        "test_bleu": {"greedy": round(greedy, 2), f"beam{args.beam}": round(beam, 2)},
        "checkpoint_bytes": out.stat().st_size,
        "corpus": CORPUS_SOURCE,
        "bleu": "sacrebleu corpus BLEU, tokenize=none, on the corpus's own tokenization",
        "train_args": metadata["train_args"],
        **({"initialized_from": metadata["initialized_from"]} if args.init_from else {}),
        "history": history,
    }
    out.with_suffix(".json").write_text(json.dumps(card, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(
        f"kept {kept}: dev BLEU {best_bleu:.2f}; test BLEU greedy {greedy:.2f}, beam {args.beam} {beam:.2f}; "
        f"{out} {out.stat().st_size / 1e6:.1f} MB",
        flush=True,
    )
    return card


def describe_network(cfg: ModelConfig | RNNConfig) -> str:
    if isinstance(cfg, ModelConfig):
        return "transformer"
    source = "Bahdanau et al. 2015" if cfg.score == "additive" else "Luong et al. 2015"
    return f"RNN encoder-decoder with {cfg.score} attention ({source})"


def _translator(model: Seq2SeqTransformer | AttentionRNN, src_vocab: Vocab, tgt_vocab: Vocab, device: torch.device) -> Translator:
    return Translator(LoadedModel(model, src_vocab, tgt_vocab, {}), device)


if __name__ == "__main__":
    main()
