"""The `attnscope` command: `serve` runs the web service; `attention` prints one sentence's maps without a server."""

from __future__ import annotations

import argparse
import json
import os
import sys
import unicodedata

from app.settings import Settings, get_settings
from backends.interface import ATTENTION_KINDS, METHODS, SALIENCY_ALGORITHMS


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    # Worker processes build their own app from the environment, so options travel as ATTNSCOPE_* variables.
    overrides = {"ATTNSCOPE_HOST": args.host, "ATTNSCOPE_PORT": args.port, "ATTNSCOPE_MODEL_DIR": args.model_dir}
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
    from app.runner import configure_torch
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
        )
        name, model = registry.get(request.model)
        response = shaping.attention(model, name, checks.check_attention(model, request, settings), never_stop)
    except (RegistryError, UnknownModel, InputError) as exc:
        print(f"attnscope: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        print(f"attnscope: {'; '.join(e['msg'] for e in exc.errors())}", file=sys.stderr)
        return 2
    print(response.model_dump_json(indent=2) if args.json else _summary(response, shaping.alignment_layer(model.describe())))
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
    attention.add_argument("--json", action="store_true", help="print the full JSON, as POST /api/v1/attention returns it")
    attention.set_defaults(run=_attention)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    sys.exit(args.run(args))


if __name__ == "__main__":
    main()
