"""The evaluation report: a markdown table, the same as JSON, and PNG plots (matplotlib, Agg backend).

A report is a plain dict (built by ``mathray.jobs.evaluation.build_report``)::

    {"provenance": {generator, verifier/PRM scorer, sampling params, split, seeds, inputs, code},
     "num_problems": P, "pool_size": N, "settings": {...},
     "table": [{"selector", "accuracy", "ci_low", "ci_high", "cost"}, ...],
     "curves": {selector: {"n": [...], "mean": [...], "std": [...]}},
     "pass_at_k": {"k": [...], "value": [...]},
     "cost_sweep": {family: [{"k", "accuracy", "cost"}, ...]}}

Files (``write_report(report, out_uri)``, local or s3): ``report.md``, ``report.json``,
``accuracy_vs_n.png`` (accuracy vs N per selector, mean ± std over trials), ``accuracy_vs_cost.png``
(accuracy vs the fraction of candidates scored; one point per selector, lines for the K sweeps).
"""
from __future__ import annotations

import io
import json

from mathray.jobs.step_evaluation import table_markdown
from mathray.runtime.storage import join, write_bytes_atomic

FILES = ("report.md", "report.json", "accuracy_vs_n.png", "accuracy_vs_cost.png")


def markdown_table(report: dict) -> str:
    conf = report["settings"].get("confidence", 0.95)
    lines = [f"| selector | accuracy | {conf:.0%} CI | evaluator cost |", "|---|---|---|---|"]
    for r in report["table"]:
        lines.append(f"| {r['selector']} | {100 * r['accuracy']:.1f} | "
                     f"[{100 * r['ci_low']:.1f}, {100 * r['ci_high']:.1f}] | {r['cost']:.2f} |")
    return "\n".join(lines)


SOURCE_ORDER = ("Liu et al. Table 3", "Liu et al. Table 4", "Lightman et al.", "Math-Shepherd")


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:+.1f}"


def _num(v, fmt: str = ".2f") -> str:
    return "-" if v is None or v != v else format(v, fmt)


def evaluator_markdown(report: dict) -> str:
    """AUROC over all samples and mean within-problem AUROC per evaluator, with intervals."""
    rows = report.get("evaluators") or []
    if not rows:
        return ""
    conf = report["settings"].get("confidence", 0.95)
    lines = [f"| evaluator | AUROC, all samples | {conf:.0%} CI | within-problem AUROC (mean) | {conf:.0%} CI | "
             "problems with both classes |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['evaluator']} | {_num(r['auroc'])} | [{_num(r['auroc_ci_low'])}, "
                     f"{_num(r['auroc_ci_high'])}] | {_num(r['within_auroc'])} | [{_num(r['within_ci_low'])}, "
                     f"{_num(r['within_ci_high'])}] | {r['mixed_problems']} |")
    return "\n".join(lines)


def findings_markdown(report: dict) -> str:
    """Each paper's finding: the paired difference (percentage points) with its interval and the verdict;
    then the Lightman claims along the random-subset curves."""
    rows = report.get("findings") or []
    if not rows:
        return ""
    conf = report["settings"].get("confidence", 0.95)
    order = {s: i for i, s in enumerate(SOURCE_ORDER)}
    main = sorted((r for r in rows if r.get("n") is None), key=lambda r: order.get(r["source"], len(order)))
    lines = [f"| source | finding | difference (points) | paired {conf:.0%} CI | verdict |", "|---|---|---|---|---|"]
    for r in main:
        if "value" in r:   # the gap closure: a ratio, next to the published value
            lines.append(f"| {r['source']} | {r['claim']} = {_num(r['value'])} (published {r['published']:.2f}) | "
                         f"- | [{_num(r['ci_low'])}, {_num(r['ci_high'])}] | {r['verdict']} |")
        else:
            lines.append(f"| {r['source']} | {r['claim']} | {_pct(r['difference'])} | "
                         f"[{_pct(r['ci_low'])}, {_pct(r['ci_high'])}] | {r['verdict']} ({r['reading']}) |")
    curve = [r for r in rows if r.get("n") is not None]
    if curve:
        lines += ["", f"Along the curves (random subsets of N, mean over trials per problem, paired):", "",
                  f"| finding | N | difference (points) | paired {conf:.0%} CI | verdict |", "|---|---|---|---|---|"]
        lines += [f"| {r['claim']} | {r['n']} | {_pct(r['difference'])} | [{_pct(r['ci_low'])}, "
                  f"{_pct(r['ci_high'])}] | {r['verdict']} |" for r in curve]
    return "\n".join(lines)


def render_markdown(report: dict) -> str:
    p, s = report["provenance"], report["settings"]
    prov = "\n".join(f"- **{k}**: {json.dumps(v) if isinstance(v, (dict, list)) else v}" for k, v in p.items())
    sweep = ""
    for family, points in report.get("cost_sweep", {}).items():
        sweep += f"\n\n{family} by K: " + ", ".join(
            f"K={q['k']}: {100 * q['accuracy']:.1f} @ cost {q['cost']:.2f}" for q in points)
    pak = report.get("pass_at_k") or {}
    pak_line = ", ".join(f"pass@{k} {100 * v:.1f}" for k, v in zip(pak.get("k", []), pak.get("value", [])))
    return (f"# Evaluation report\n\n{report['num_problems']} problems, pool of up to {report['pool_size']} "
            f"samples each.\n\n{prov}\n\n"
            f"Accuracy in %, bootstrap CI over problems ({s.get('bootstrap_resamples')} resamples); evaluator "
            f"cost = mean fraction of candidates that needed a verifier/PRM score.\n\n{markdown_table(report)}\n\n"
            f"Unbiased pass@k (Chen et al.): {pak_line}{sweep}\n\n"
            + (f"## Evaluators\n\nHow well each score separates correct from wrong samples: AUROC over all "
               f"samples, and the mean AUROC within each problem over the problems that have both correct and "
               f"wrong samples (the only thing re-ranking uses); bootstrap CIs over problems. The generator's "
               f"mean token log-probability is a free baseline.\n\n{evaluator_markdown(report)}\n\n"
               if report.get("evaluators") else "")
            + (f"## Findings\n\nEach paper's finding as a paired comparison on the same problems and pools: "
               f"the difference of the two rows' accuracies with a paired bootstrap CI; shown when the whole "
               f"interval is above 0. Pass@1 = the sample average of the same pools.\n\n"
               f"{findings_markdown(report)}\n\n" if report.get("findings") else "")
            + (f"## First errors\n\nThe PRM's step scores against the true first wrong step of "
               f"{report['first_error']['labelled']} labelled samples ({report['first_error']['unscored']} not scored): "
               f"the first step scoring below {report['first_error']['threshold']} is the predicted first error; "
               f"F1 of the accuracies on erroneous and on correct samples (ProcessBench's metric).\n\n"
               f"{table_markdown(report['first_error'])}\n\n" if report.get("first_error") else "")
            + f"Curves: random subsets per problem (Lightman protocol), {s.get('trials')} trials, mean ± std: "
            f"`accuracy_vs_n.png`; cost: `accuracy_vs_cost.png`.\n")


def _figure_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def plot_accuracy_vs_n(report: dict) -> bytes:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5))
    ax.set_prop_cycle(color=plt.get_cmap("tab20").colors)   # > 10 selectors: the default cycle repeats
    for name, c in report["curves"].items():
        mean, std = c["mean"], c["std"]
        line, = ax.plot(c["n"], [100 * m for m in mean], marker="o", ms=3, label=name)
        ax.fill_between(c["n"], [100 * (m - s) for m, s in zip(mean, std)],
                        [100 * (m + s) for m, s in zip(mean, std)], color=line.get_color(), alpha=0.12)
    pak = report.get("pass_at_k") or {}
    if pak.get("k"):
        ax.plot(pak["k"], [100 * v for v in pak["value"]], "k--", lw=1, label="pass@k (unbiased)")
    greedy = next((r for r in report["table"] if r["selector"] == "Pass@1 (greedy)"), None)
    if greedy:
        ax.axhline(100 * greedy["accuracy"], color="gray", ls=":", label="Pass@1 (greedy)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("N (samples per problem)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"Accuracy vs N ({report['num_problems']} problems)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    data = _figure_bytes(fig)
    plt.close(fig)
    return data


def plot_accuracy_vs_cost(report: dict) -> bytes:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    for family, points in report.get("cost_sweep", {}).items():
        ax.plot([q["cost"] for q in points], [100 * q["accuracy"] for q in points], marker=".", lw=1,
                label=f"{family} (K sweep)")
        for q in points:
            ax.annotate(f"K={q['k']}", (q["cost"], 100 * q["accuracy"]), fontsize=6)
    for r in report["table"]:
        ax.scatter([r["cost"]], [100 * r["accuracy"]], s=18)
        ax.annotate(r["selector"], (r["cost"], 100 * r["accuracy"]), fontsize=6, xytext=(3, 3),
                    textcoords="offset points")
    ax.set_xlabel("evaluator cost (fraction of candidates scored)")
    ax.set_ylabel("accuracy (%)")
    ax.set_xlim(-0.05, 1.1)
    ax.set_title("Accuracy vs evaluator cost")
    ax.grid(alpha=0.3)
    if report.get("cost_sweep"):
        ax.legend(fontsize=7)
    data = _figure_bytes(fig)
    plt.close(fig)
    return data


def write_report(report: dict, out_uri: str) -> dict[str, str]:
    """Write the four report files under ``out_uri``; returns {file: uri}."""
    contents = {
        "report.md": render_markdown(report).encode(),
        "report.json": json.dumps(report, indent=1).encode(),
        "accuracy_vs_n.png": plot_accuracy_vs_n(report),
        "accuracy_vs_cost.png": plot_accuracy_vs_cost(report),
    }
    out = {}
    for name, data in contents.items():
        out[name] = join(out_uri, name)
        write_bytes_atomic(out[name], data)
    return out
