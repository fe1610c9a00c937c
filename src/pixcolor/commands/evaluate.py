"""``pixcolor evaluate DATA...``: score colorizers and the gray baseline on colour photos.

``--hints 0,1,2,5`` also scores them with that many simulated colour hints per photo, beside
the classical propagation of Levin et al. 2004 (:mod:`pixcolor.evaluate_hints`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pixcolor.commands._flags import add_size_flag

# The default of a bare --hints, the list (pixcolor.evaluate_hints.DEFAULT_COUNTS;
# written out here because parsing loads no torch).
DEFAULT_HINT_COUNTS = "0,1,2,5,10,20,50"
MAX_HINTS = 1000  # pixcolor.hints.MAX_POINTS


def hint_counts(text: str) -> tuple[int, ...]:
    """``"0,1,2,5"`` -> ``(0, 1, 2, 5)``: whole numbers 0-1000, sorted, duplicates dropped."""
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a comma list of hint counts like 0,1,5, got {text!r}"
        ) from None
    if not counts or any(not 0 <= c <= MAX_HINTS for c in counts):
        raise argparse.ArgumentTypeError(
            f"hint counts must be whole numbers 0-{MAX_HINTS}, got {text!r}"
        )
    return tuple(sorted(set(counts)))


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` subcommand."""
    p = sub.add_parser("evaluate", help="score a colorizer against the gray baseline")
    p.add_argument("data", nargs="+", metavar="DATA", help="colour photos: folders, files, globs")
    p.add_argument("--model", default=None, help="shipped name or path (default: shipped)")
    p.add_argument("--compare", nargs="*", default=[], metavar="PATH", help="more models to score")
    add_size_flag(p)
    p.add_argument("--device", default=None, help="cpu / cuda / mps (default: best)")
    p.add_argument("--limit", type=int, default=None, help="use only the first N photos")
    p.add_argument("-o", "--out", type=Path, default=None, help="report folder")
    p.add_argument(
        "--hints",
        type=hint_counts,
        nargs="?",
        const=hint_counts(DEFAULT_HINT_COUNTS),
        default=None,
        metavar="N[,N...]",
        help="also score with N simulated colour hints per photo, and Levin et al. 2004 with "
        f"the same hints (bare: {DEFAULT_HINT_COUNTS})",
    )
    p.add_argument(
        "--hints-seed", type=int, default=0, metavar="S", help="seed of the hints (default: 0)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate, print tables, write metrics.json, distributions.png and report.html
    (with ``--hints`` also hints.csv and hints.png)."""
    import sys

    from pixcolor.errors import PixcolorError
    from pixcolor.evaluate import default_output_dir, evaluate, format_table, summarize
    from pixcolor.files import collect_inputs
    from pixcolor.models.hub import display_name
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
    models = {}  # names unique: --model runs/x/default --compare default gives two rows
    for path in [args.model, *args.compare]:
        name = display_name("pixcolor" if path is None else path, models)
        models[name] = load_model(path, device=args.device)
    plan = None
    if args.hints is not None:
        from pixcolor.evaluate_hints import HintPlan

        plan = HintPlan(args.hints, args.hints_seed)
        if max(plan.counts) > 0:
            for model in models.values():
                model.hint_colorizer()  # no hint model: one clear error before any work
    results, images, failures = evaluate(files, models, size=args.size, hints=plan)
    for path, reason in failures:
        print(f"{path}: {reason}", file=sys.stderr)
    table = summarize(results)
    print(format_table(table))
    curve = None
    if plan is not None:
        from pixcolor.evaluate_hints import format_curve, hint_curve

        curve = hint_curve(table["all"], list(models), plan)
        print(format_curve(curve))
    out = args.out or default_output_dir(args.data[0])
    meta = {
        "data": args.data,
        "models": list(models),
        "size": args.size,
        "images": len(results),
        "failed": len(failures),
        **({"hints": list(plan.counts), "hints_seed": plan.seed} if plan else {}),
    }
    write_metrics_json(out / "metrics.json", table, results, failures, meta, hints=curve)
    plot = plot_distributions(results, out / "distributions.png")
    hints_png = None
    if curve is not None:
        from pixcolor.evaluate_hints import write_curve_csv
        from pixcolor.report import plot_hint_curve

        write_curve_csv(out / "hints.csv", curve)
        hints_png = plot_hint_curve(curve, out / "hints.png")
        print(f"wrote {out / 'hints.csv'} and {hints_png}")
    page = write_html(
        out / "report.html", table, results, images, plot, meta, hints=curve, hints_png=hints_png
    )
    print(f"wrote {out / 'metrics.json'}, {plot} and {page}")
    return 1 if failures or problems else 0
