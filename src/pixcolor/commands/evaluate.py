"""``pixcolor evaluate DATA...``: score colorizers and the gray baseline on colour photos."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` subcommand."""
    p = sub.add_parser("evaluate", help="score a colorizer against the gray baseline")
    p.add_argument("data", nargs="+", metavar="DATA", help="colour photos: folders, files, globs")
    p.add_argument("--model", default=None, help="shipped name or path (default: shipped)")
    p.add_argument("--compare", nargs="*", default=[], metavar="PATH", help="more models to score")
    p.add_argument("--size", type=int, default=None, help="working size (default: the model's)")
    p.add_argument("--device", default=None, help="cpu / cuda / mps (default: best)")
    p.add_argument("--limit", type=int, default=None, help="use only the first N photos")
    p.add_argument("-o", "--out", type=Path, default=None, help="report folder")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate, print tables, write metrics.json, distributions.png and report.html."""
    import sys

    from pixcolor.errors import PixcolorError
    from pixcolor.evaluate import default_output_dir, evaluate, format_table, summarize
    from pixcolor.files import collect_inputs
    from pixcolor.pipeline import load_model
    from pixcolor.report import plot_distributions, write_html, write_metrics_json
    from pixcolor.working_size import check_size

    if args.size is not None:
        check_size(args.size, "--size")
    files, problems = collect_inputs(args.data)
    for raw, reason in problems:
        print(f"{raw}: {reason}", file=sys.stderr)
    files = files[: args.limit] if args.limit else files
    if not files:
        raise PixcolorError("no photos to evaluate")
    main_name = "pixcolor" if args.model is None else Path(str(args.model)).name
    models = {main_name: load_model(args.model, device=args.device)}
    for path in args.compare:
        models[Path(path).name or str(path)] = load_model(path, device=args.device)
    results, images, failures = evaluate(files, models, size=args.size)
    for path, reason in failures:
        print(f"{path}: {reason}", file=sys.stderr)
    table = summarize(results)
    print(format_table(table))
    out = args.out or default_output_dir(args.data[0])
    meta = {
        "data": args.data,
        "models": list(models),
        "size": args.size,
        "images": len(results),
        "failed": len(failures),
    }
    write_metrics_json(out / "metrics.json", table, results, failures, meta)
    plot = plot_distributions(results, out / "distributions.png")
    page = write_html(out / "report.html", table, results, images, plot, meta)
    print(f"wrote {out / 'metrics.json'}, {plot} and {page}")
    return 1 if failures or problems else 0
