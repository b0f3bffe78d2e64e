#!/usr/bin/python3
"""The tables of docs/manifold-and-alignment.md from the records that
scripts/manifold_experiments.sh writes: one markdown table per sweep of a
setting folder (runs/manifold, runs/fashion-mnist), each row one strength,
every value the mean over the sweep's seeds (± the standard error over seeds
where the spread matters), then the sweep's Spearman correlation.

    /usr/bin/python3 scripts/manifold_tables.py runs/fashion-mnist [runs/manifold ...]
"""
import json
import math
import os
import sys


def mean_se(values):
    n = len(values)
    m = sum(values) / n
    if n < 2:
        return m, 0.0
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1) / n)


def fmt(value):
    return f"{value:.3g}"


def with_se(values, digits=3, scale=1.0):
    m, se = mean_se([v * scale for v in values])
    return f"{m:.{digits}f} ± {se:.{digits}f}"


def conditional_cosine(folder):
    """align --pairing conditional's mean cosine at its summary sigma, or None when it was not run."""
    path = os.path.join(folder, "align-conditional", "alignment.json")
    if not os.path.exists(path):
        return None
    return json.load(open(path))["mean_cosine"]


def sweep_table(path):
    record = json.load(open(os.path.join(path, "sweep.json")))
    if "per_strength" not in record:
        return f"`{path}`: not finished ({len(record['models'])} models so far)"
    distractor = any("item_half" in s for s in record["per_strength"])
    models = record["models"]
    lines = [f"`{path}` (objective {record['options']['objective']}, {record['options']['seeds']} seeds):", ""]
    if distractor:
        lines.append("| strength | accuracy | first order, item half (on) | glyph half (off) | off/on | VAE tangent off/on "
                     "| change at eps 0.3, VAE on / off | alignment, bayes σ 0.5 | conditional σ 0.5 | regime |")
        lines.append("|---|---|---|---|---|---|---|---|---|---|")
    else:
        lines.append("| strength | accuracy | first order, VAE tangent (on) | across it (off) | off/on "
                     "| change at eps 0.3, VAE on / off | alignment, bayes σ 0.5 | conditional σ 0.5 | regime |")
        lines.append("|---|---|---|---|---|---|---|---|---|")
    for summary in record["per_strength"]:
        strength = summary["strength"]
        at_strength = [m for m in models if m["strength"] == strength]
        cells = [f"{strength:g}", with_se(summary["test_accuracy"]["per_seed"], 1, 100) + "%",
                 fmt(summary["first_order_on"]["mean"]), fmt(summary["first_order_off"]["mean"]),
                 with_se(summary["off_to_on_ratio"]["per_seed"], 4)]
        if distractor:
            ratios = [m["tangent"]["first_order"]["off_to_on_ratio"] for m in at_strength]
            cells.append(f"{mean_se(ratios)[0]:.3f}")
        cells.append(f"{summary['on_manifold']['mean']:.4f} / {summary['off_manifold']['mean']:.4f}")
        cells.append(with_se(summary["alignment_cosine"]["per_seed"]))
        conditional = [conditional_cosine(m["folder"]) for m in at_strength]
        cells.append(with_se(conditional) if conditional and None not in conditional else "—")
        cells.append(summary["regime"])
        lines.append("| " + " | ".join(cells) + " |")
    correlation = record.get("alignment_robustness_correlation", {})
    if correlation.get("spearman") is not None:
        low, high = correlation["interval"]
        lines += ["", f"Spearman(alignment, −off-manifold first order) over {correlation['pairs']} models: "
                      f"{correlation['spearman']:.3f} (95% bootstrap [{low:.3f}, {high:.3f}])"]
    return "\n".join(lines)


def main(settings):
    for setting in settings:
        for name in sorted(os.listdir(setting)):
            if name.startswith("sweep-") and os.path.exists(os.path.join(setting, name, "sweep.json")):
                print(sweep_table(os.path.join(setting, name)))
                print()


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
