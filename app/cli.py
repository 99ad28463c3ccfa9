"""The `attnscope` command: `serve` runs the web service; `attention` prints one sentence's maps without a server;
`align` scores the model's cross maps as word alignments (AER) against reference alignments;
`heads` measures which heads matter over a corpus (analysis.heads) and writes the model's NAME.heads.json."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import unicodedata
from pathlib import Path

from app.settings import Settings, get_settings
from backends.interface import ATTENTION_KINDS, METHODS, SALIENCY_ALGORITHMS


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    # Worker processes build their own app from the environment, so options travel as ATTNSCOPE_* variables.
    overrides = {
        "ATTNSCOPE_HOST": args.host,
        "ATTNSCOPE_PORT": args.port,
        "ATTNSCOPE_MODEL_DIR": args.model_dir,
        "ATTNSCOPE_WORKERS": args.workers,
    }
    if args.model:
        overrides["ATTNSCOPE_MODELS"] = json.dumps(args.model)
    if args.workers > 1 and "ATTNSCOPE_CONCURRENCY" not in os.environ:
        overrides["ATTNSCOPE_CONCURRENCY"] = max(1, (os.cpu_count() or 1) // args.workers)
    os.environ.update({key: str(value) for key, value in overrides.items() if value is not None})
    get_settings.cache_clear()
    settings = get_settings()
    # Load once here, so a folder that is not a model, or a truncated checkpoint, is one clear line and
    # exit status 2, not a lifespan traceback from every worker.
    from app.registry import ModelRegistry, RegistryError

    try:
        ModelRegistry.load(settings.model_dir, "cpu", settings.default_model, settings.models)
    except RegistryError as exc:
        print(f"attnscope: cannot serve: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    from app.server import uvicorn_options

    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=args.workers,
        **uvicorn_options(settings),
    )
    return 0


def _pad(text: str, width: int) -> str:
    """Left-align in a terminal, where CJK characters take two columns."""
    columns = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(0, width - columns)


def _summary(response, alignment_layer) -> str:
    lines = [
        f"model:       {response.model}",
        f"source:      {' '.join(t.text for t in response.source_tokens)}",
        f"target:      {' '.join(t.text for t in response.target_tokens)}{'  (forced)' if response.forced else ''}",
        f"translation: {response.translation}",
        f"log-prob:    {response.score:.3f}",
    ]
    if response.ablated:
        lines.append(f"heads off:   {', '.join(f'{h.kind} L{h.layer} H{h.head}' for h in response.ablated)}")
    for control, value in response.controls.items():
        predicted = response.predictions.get(control)
        guess = f" (predicted: {', '.join(f'{v} {p:.2f}' for v, p in predicted.items())})" if predicted else ""
        lines.append(f"{control + ':':<12} {value}{guess}")
    for warning in response.warnings:
        lines.append(f"warning:     {warning.message}")
    lines.append(f"method:      {response.method}")
    for kind, m in response.attention.items():
        heads = f"{len(m.heads)} heads" if m.heads else "the layer's map"
        shape = f"{len(m.layers)} layers × {heads} × {len(m.query_tokens)} × {len(m.key_tokens)}"
        lines.append(f"{kind + ':':<12} {shape}{'  (causal)' if m.causal else ''}")
    cross = response.attention.get("cross")
    if cross is not None and alignment_layer is not None and alignment_layer.layer in cross.layers:
        index = cross.layers.index(alignment_layer.layer)
        what = "mean of heads" if cross.heads else "the layer's map"
        lines.append(f"alignment (cross, {response.method}, layer {alignment_layer.layer}, {what}; {alignment_layer.note}):")
        for q, query in enumerate(cross.query_tokens):
            if cross.heads:
                layer = cross.weights[index]
                row = [sum(head[q][k] for head in layer) / len(layer) for k in range(len(cross.key_tokens))]
            else:
                row = cross.layer_weights[index][q]
            best = max(range(len(row)), key=row.__getitem__)
            lines.append(f"  {_pad(query, 8)} → {_pad(cross.key_tokens[best], 12)} {row[best]:.2f}")
    if response.contributions is not None:
        lines.append(f"source share ({response.method}): what the source gave each produced token, the rest from the prefix")
        for token, share in zip(response.target_tokens, response.contributions.source_share, strict=True):
            lines.append(f"  {_pad(token.text, 8)} {share:.2f}")
    return "\n".join(lines)


def _attention(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from app import checks, shaping
    from app.registry import ModelRegistry, RegistryError, UnknownModel
    from app.runner import answer_json, configure_torch
    from app.schemas import AttentionRequest, SaliencyRequest
    from backends.interface import InputError, never_stop

    settings = Settings(**({"model_dir": args.model_dir} if args.model_dir else {}))
    configure_torch(settings.model_copy(update={"concurrency": 1}))
    try:
        registry = ModelRegistry.load(settings.model_dir, settings.device, settings.default_model, args.add_model or ())
        request = AttentionRequest(
            model=args.model,
            source=args.text,
            target=args.target,
            beam_size=args.beam,
            controls=dict(args.control or ()),
            kinds=args.kinds,
            layers=args.layers,
            heads=args.heads,
            granularity=args.granularity,
            method=args.method,
            saliency=None
            if args.saliency is None and args.steps is None
            else SaliencyRequest(algorithm=args.saliency or "integrated_gradients", steps=args.steps),
            ablate=[dict(zip(("kind", "layer", "head"), head, strict=True)) for head in args.ablate or ()],
        )
        name, model = registry.get(request.model)
        response = shaping.attention(model, name, checks.check_attention(model, request, settings), never_stop)
    except (RegistryError, UnknownModel, InputError) as exc:
        print(f"attnscope: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        print(f"attnscope: {'; '.join(e['msg'] for e in exc.errors())}", file=sys.stderr)
        return 2
    print(
        answer_json(response, indent=True).decode()
        if args.json
        else _summary(response, shaping.alignment_layer(model.describe()))
    )
    return 0


def _head_name(head) -> str:
    return {"mean": "mean of heads", "layer": "layer map", "contributions": "contributions"}.get(head, f"head {head}")


def _align_summary(tables: dict) -> str:
    """Per reference and method: a grid of AER, layers down, heads (then the mean and the layer map) across."""
    lines = []
    for name, reference in tables.items():
        lines.append(f"AER against {name} ({reference['reference']}, {reference['sentences']} sentences; {reference['rule']}):")
        for method, table in reference["methods"].items():
            lines.append(f"  {method}")
            scores = {(row["layer"], row["head"]): row["aer"] for row in table["scores"]}
            layers = sorted({layer for layer, _ in scores if layer is not None})
            columns = list(dict.fromkeys(head for layer, head in scores if layer is not None))
            if layers:
                lines.append("    layer  " + "  ".join(f"{str(h) if isinstance(h, str) else f'head {h}':>6}" for h in columns))
                for layer in layers:
                    cells = "  ".join(f"{scores[layer, h]:6.3f}" if (layer, h) in scores else " " * 6 for h in columns)
                    lines.append(f"    {layer:5d}  {cells}")
            if (None, "contributions") in scores:
                lines.append(f"    contributions (every layer composed): {scores[None, 'contributions']:.3f}")
            best = table["best"]
            where = "" if best["layer"] is None else f"layer {best['layer']}, "
            line = (
                f"    best: {where}{_head_name(best['head'])}: AER {best['aer']:.3f} "
                f"(precision {best['precision']:.3f}, recall {best['recall']:.3f})"
            )
            if "best_mean" in table:
                line += f"; best layer mean: layer {table['best_mean']['layer']}, AER {table['best_mean']['aer']:.3f}"
            lines.append(line)
    return "\n".join(lines)


def _align(args: argparse.Namespace) -> int:
    try:
        from tqdm import tqdm
    except ImportError:
        print("attnscope: align needs the align extra: pip install -e '.[align]'", file=sys.stderr)
        return 2
    from app.registry import ModelRegistry, RegistryError, UnknownModel
    from app.runner import configure_torch
    from backends.alignment import PharaohError, read_pharaoh
    from backends.alignment_table import AlignmentRule, Reference, aer_tables, read_corpus
    from backends.interface import InputError, SaliencyOptions

    if args.gold is None and args.silver is None:
        print("attnscope: give a reference: --gold FILE (sure i-j, possible i?j) and/or --silver FILE", file=sys.stderr)
        return 2
    if args.saliency_steps < 0:
        print(f"attnscope: --saliency-steps {args.saliency_steps}: use 1 or more, or 0 for input × gradient", file=sys.stderr)
        return 2
    if args.threshold is not None and not 0 <= args.threshold < 1:
        print(f"attnscope: --threshold {args.threshold} is not a share of a row: use 0 to 1 (exclusive)", file=sys.stderr)
        return 2
    settings = Settings(**({"model_dir": args.model_dir} if args.model_dir else {}))
    configure_torch(settings.model_copy(update={"concurrency": 1}))
    try:
        references = []
        if args.gold is not None:
            gold = read_pharaoh(args.gold, args.possible)
            references.append(Reference("gold", args.gold, gold, args.start))
        if args.silver is not None:
            references.append(Reference("silver", args.silver, read_pharaoh(args.silver), args.start))
        registry = ModelRegistry.load(settings.model_dir, settings.device, settings.default_model, args.add_model or ())
        _, model = registry.get(args.model)
        corpus = read_corpus(args.data, args.split, model.describe())
        lines = range(args.start, args.start + args.limit) if args.limit is not None else None
        steps = args.saliency_steps
        saliency = SaliencyOptions(steps=steps) if steps else SaliencyOptions("input_x_gradient", None)
        bar = lambda todo: tqdm(todo, desc="force-decoding", unit="pair", dynamic_ncols=True, file=sys.stderr)  # noqa: E731
        tables = aer_tables(
            model,
            corpus,
            references,
            methods=args.methods,
            rule=AlignmentRule(args.threshold, args.shift_att),
            saliency=saliency,
            lines=lines,
            progress=bar,
        )
    except (RegistryError, UnknownModel, InputError, PharaohError) as exc:
        print(f"attnscope: {exc}", file=sys.stderr)
        return 2
    if args.json == "-":
        print(json.dumps(tables, ensure_ascii=False, indent=2))
        return 0
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            out.write(json.dumps(tables, ensure_ascii=False, indent=2) + "\n")
    print(_align_summary(tables))
    return 0


def _head(text: str) -> tuple[str, int, int]:
    kind, _, rest = text.partition(":")
    layer, _, head = rest.partition(":")
    if kind not in ATTENTION_KINDS or not layer.isdigit() or not head.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not KIND:LAYER:HEAD (KIND one of {', '.join(ATTENTION_KINDS)})")
    return kind, int(layer), int(head)


def _heads(args: argparse.Namespace) -> int:
    from analysis.heads import Study, read_corpus, run_study, summary
    from analysis.scale import executor
    from backends.alignment import read_pharaoh
    from backends.discovery import find_model, head_importance_path
    from backends.interface import InputError, ModelLoadError

    settings = Settings(**({"model_dir": args.model_dir} if args.model_dir else {}))
    try:
        path = find_model(settings.model_dir, args.model)
        corpus = read_corpus(args.data, args.split, args.limit)
        if args.gold is not None:
            read_pharaoh(args.gold)  # a missing or malformed file stops here, not after the decodes
    except (ModelLoadError, OSError, ValueError) as exc:
        print(f"attnscope: {exc}", file=sys.stderr)
        return 2
    study = Study(str(path), args.model, corpus, args.shard_size, args.threads, args.device, dict(args.control or ()), args.gold)
    out = Path(args.out) if args.out else head_importance_path(path)
    where = f"Ray at {args.ray}" if args.ray else f"{args.workers} local process{'es' if args.workers > 1 else ''}"
    started = time.perf_counter()
    try:
        with executor(args.ray, args.workers) as run:
            table = run_study(study, run, prune=args.prune)
    except (InputError, ModelLoadError, RuntimeError, ValueError) as exc:
        print(f"attnscope: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    wall = time.perf_counter() - started
    out.write_text(json.dumps(table, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(summary(table))
    print(f"wrote {out} in {wall:.0f} s ({where}, {args.threads} torch thread{'s' if args.threads > 1 else ''} each)")
    return 0


def _control(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    return name, value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="attnscope", description="See what an encoder-decoder translation model attends to.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the web service (page at /, API at /api/v1, docs at /docs)")
    serve.add_argument("--host", help="default 127.0.0.1 (ATTNSCOPE_HOST)")
    serve.add_argument("--port", type=int, help="default 8000 (ATTNSCOPE_PORT)")
    serve.add_argument("--workers", type=int, default=1, help="server processes, each with its own copy of the models")
    serve.add_argument(
        "--model-dir",
        help="folder of NAME.pt checkpoints and Hugging Face NAME/ directories (ATTNSCOPE_MODEL_DIR; default the built-in model)",
    )
    serve.add_argument(
        "--model", action="append", metavar="PATH_OR_HUB_ID", help="serve this model too (repeatable; ATTNSCOPE_MODELS)"
    )
    serve.set_defaults(run=_serve)

    attention = commands.add_parser("attention", help="translate TEXT and print its attention maps, without a server")
    attention.add_argument("text", help='text in the model\'s source language, e.g. "This is an example."')
    attention.add_argument("--target", help="a translation to force instead of decoding")
    attention.add_argument("--model", help="model name (default: the default model)")
    attention.add_argument("--model-dir", help="folder of models (default the built-in model)")
    attention.add_argument("--add-model", action="append", metavar="PATH_OR_HUB_ID", help="load this model too (repeatable)")
    attention.add_argument("--beam", type=int, default=1, help="beam size; 1 is greedy")
    attention.add_argument(
        "--control",
        action="append",
        type=_control,
        metavar="NAME=VALUE",
        help="a decoding control the model declares, e.g. politeness=plain for the built-in model (repeatable)",
    )
    attention.add_argument("--granularity", default="token", choices=["token", "word"], help="word merges subword pieces")
    attention.add_argument("--kinds", nargs="+", choices=ATTENTION_KINDS, help="default: every kind the model has")
    attention.add_argument("--layers", nargs="+", type=int, help="layer indices (default all)")
    attention.add_argument("--heads", nargs="+", type=int, help="head indices (default all)")
    attention.add_argument("--method", default="weights", choices=METHODS, help="what the maps measure (default weights)")
    attention.add_argument(
        "--saliency", choices=SALIENCY_ALGORITHMS, help="with --method saliency: the algorithm (default integrated_gradients)"
    )
    attention.add_argument("--steps", type=int, help="with --saliency integrated_gradients: its step count (default 20)")
    attention.add_argument(
        "--ablate", action="append", type=_head, metavar="KIND:LAYER:HEAD", help="switch this head off (repeatable)"
    )
    attention.add_argument("--json", action="store_true", help="print the full JSON, as POST /api/v1/attention returns it")
    attention.set_defaults(run=_attention)

    align = commands.add_parser(
        "align",
        help="AER of the model's cross maps (per method, layer and head) against reference word alignments",
        description="Force-decode corpus pairs with their reference translations, read every cross map as word "
        "alignments and print AER = 1 - (|A∩S| + |A∩P|) / (|A| + |S|) per method, layer and head, and the best. "
        "Reference files are Pharaoh/TALP: line n for corpus line n (from --start), `i-j` a sure link, `i?j` a possible "
        "one, i the source token and j the target token, 0-based over the corpus's tokens (split on spaces).",
    )
    align.add_argument("--gold", metavar="FILE", help="hand alignments: i-j sure, i?j possible (e.g. alignments/gold.talp)")
    align.add_argument("--possible", metavar="FILE", help="the gold's possible links in a file of their own (--gold all sure)")
    align.add_argument("--silver", metavar="FILE", help="a second reference, all links sure (e.g. alignments/silver.talp)")
    align.add_argument("--data", required=True, metavar="DIR", help="corpus folder with SPLIT.en and SPLIT.ja (language codes)")
    align.add_argument("--split", default="test", help="the corpus split the references align (default test)")
    align.add_argument("--start", type=int, default=0, help="the corpus line (0-based) of the references' first line")
    align.add_argument("--limit", type=int, help="run only this many lines from --start")
    align.add_argument("--model", help="model name (default: the default model)")
    align.add_argument("--model-dir", help="folder of models (default the built-in model)")
    align.add_argument("--add-model", action="append", metavar="PATH_OR_HUB_ID", help="load this model too (repeatable)")
    align.add_argument("--methods", nargs="+", help="the model's methods to score (default every one it declares)")
    align.add_argument("--threshold", type=float, help="every link over this share of its row, not the argmax")
    align.add_argument("--shift-att", action="store_true", help="Shift-Att: target token t from row t + 1 (Chen et al. 2020)")
    align.add_argument(
        "--saliency-steps", type=int, default=20, help="integrated gradients' steps for method saliency (0: input × gradient)"
    )
    align.add_argument("--json", metavar="FILE", help="write the tables as JSON to FILE (- prints only the JSON)")
    align.set_defaults(run=_align)

    heads = commands.add_parser(
        "heads",
        help="which heads matter over a corpus: BLEU with each head off, gradient importance, confidence, entropy, "
        "distance; writes NAME.heads.json beside the model",
    )
    heads.add_argument("--model", required=True, help="model name: NAME.pt or NAME/ in the model folder")
    heads.add_argument("--model-dir", help="folder of models (default the built-in model's)")
    heads.add_argument("--data", required=True, help="folder with SPLIT.en and SPLIT.ja, one tokenized sentence a line")
    heads.add_argument("--split", default="test", help="which split to measure on (default test)")
    heads.add_argument("--limit", type=int, help="only the first N sentences")
    heads.add_argument("--prune", action="store_true", help="then switch heads off one by one, least important first")
    heads.add_argument("--shard-size", type=int, default=64, help="sentences per unit of work (default 64)")
    heads.add_argument("--workers", type=int, default=1, help="local processes (or the CPUs of --ray local); default 1")
    heads.add_argument("--threads", type=int, default=1, help="torch threads per unit (default 1)")
    heads.add_argument("--ray", metavar="ADDRESS", help="run the units as Ray tasks on this cluster; 'local' starts one")
    heads.add_argument("--device", default="cpu", help="where each worker runs the model (default cpu)")
    heads.add_argument("--control", action="append", type=_control, metavar="NAME=VALUE", help="a decoding control")
    heads.add_argument(
        "--gold",
        metavar="FILE",
        help="gold word alignments of the corpus's first lines, for the cross heads' AER "
        "(Pharaoh/TALP, e.g. alignments/gold.talp for the built-in model's test set)",
    )
    heads.add_argument("--out", help="where to write the table (default NAME.heads.json beside the model)")
    heads.set_defaults(run=_heads)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    sys.exit(args.run(args))


if __name__ == "__main__":
    main()
