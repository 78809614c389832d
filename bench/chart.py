"""Draw the benchmarks' figures: query latency and throughput against corpus size, and latency against history.

Reads the JSON the benchmarks write to bench/out/ (query_latency.json, and scale.json and history_depth.json
when present) and draws one PNG: p50/p99 of ``POST /v1/query`` and of the raw reference against the chunks
in force, the throughput of concurrent clients against the same sizes, and p50/p99 against versions per
document. A figure missing from the JSON is left out of the chart.

    python bench/query_latency.py --sizes 10000,30000,100000 && python bench/scale.py && \\
        python bench/history_depth.py && python bench/chart.py           # writes docs/benchmarks.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
KB_COLOUR, REF_COLOUR = "#1f6fb2", "#8c8c8c"


def _load(folder: Path, name: str) -> dict[str, Any] | None:
    path = folder / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _count(value: float) -> str:
    """10000 -> 10k, 1000000 -> 1M."""
    for unit, size in (("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:g}{unit}"
    return f"{value:g}"


def draw(folder: Path, out: Path) -> list[str]:
    """Draw the chart from the JSON in ``folder`` into ``out``; the names of the files it used."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    latency, scale, depth = (_load(folder, n) for n in ("query_latency", "scale", "history_depth"))
    if latency is None and scale is None:
        raise SystemExit(f"no query_latency.json or scale.json in {folder}: run the benchmarks first")
    used = [n for n, d in (("query_latency", latency), ("scale", scale), ("history_depth", depth)) if d]
    panels = 3 if depth else 2
    fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 4.2), constrained_layout=True)
    _size_panels(axes[0], axes[1], latency, scale)
    if depth:
        _depth_panel(axes[2], depth)
    encoder = next((d.get("encoder") or d.get("points", [{}])[0].get("encoder") for d in (scale, latency) if d), "")
    fig.suptitle(f"kb benchmarks (2-core CPU, encoder {encoder})", fontsize=11)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return used


def _size_panels(lat_ax: Any, qps_ax: Any, latency: dict[str, Any] | None, scale: dict[str, Any] | None) -> None:
    """Latency and throughput against the chunks in force: query_latency.json's points, scale.json's one."""
    points = sorted((latency or {}).get("points", []), key=lambda p: p["chunks_in_force"])
    sizes = [p["chunks_in_force"] for p in points]
    if points:
        for key, colour, who in (("kb", KB_COLOUR, "kb over HTTP"), ("ref", REF_COLOUR, "reference in-process")):
            lat_ax.plot(sizes, [p[f"{key}_p50_ms"] for p in points], "o-", color=colour, label=f"{who} p50")
            lat_ax.plot(sizes, [p[f"{key}_p99_ms"] for p in points], "o--", color=colour, label=f"{who} p99")
        clients = latency.get("clients", 8) if latency else 8
        qps_ax.plot(sizes, [p["kb_qps"] for p in points], "o-", color=KB_COLOUR, label="kb over HTTP")
        qps_ax.plot(sizes, [p["ref_qps"] for p in points], "o-", color=REF_COLOUR, label="reference in-process")
        qps_ax.set_title(f"Throughput, {clients} concurrent clients")
    if scale:
        n = scale["chunks_in_force"]
        lat_ax.plot([n], [scale["all_regions_p50_ms"]], "s", color=KB_COLOUR, label="kb p50, bench/scale.py")
        lat_ax.plot(
            [n], [scale["all_regions_p99_ms"]], "s", mfc="none", color=KB_COLOUR, label="kb p99, bench/scale.py"
        )
    lat_ax.set_title("Query latency, one client")
    lat_ax.set_ylabel("ms")
    qps_ax.set_ylabel("queries/s")
    for ax in (lat_ax, qps_ax):
        _size_axis(ax)


def _size_axis(ax: Any) -> None:
    """A log axis of chunks in force, ticked at the sizes measured."""
    from matplotlib.ticker import NullFormatter

    ax.set_xscale("log")
    ticks = sorted({x for line in ax.lines for x in line.get_xdata()})
    ax.set_xticks(ticks, [_count(x) for x in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("chunks in force")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=8)


def _depth_panel(ax: Any, depth: dict[str, Any]) -> None:
    """Latency against versions per document: history_depth.json."""
    from matplotlib.ticker import NullFormatter

    rows = depth["points"]
    versions = [p["versions_per_document"] for p in rows]
    ax.plot(versions, [p["p50_ms"] for p in rows], "o-", color=KB_COLOUR, label="kb p50")
    ax.plot(versions, [p["p99_ms"] for p in rows], "o--", color=KB_COLOUR, label="kb p99")
    in_force = rows[0]["chunks_in_force"]
    ax.set_title(f"History depth, {in_force:,} chunks in force")
    ax.set_xscale("log")
    ax.set_xticks(versions, [str(v) for v in versions])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("versions per document")
    ax.set_ylabel("ms")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--figures", type=Path, default=ROOT / "bench" / "out", help="folder of the JSON figures")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.png")
    args = parser.parse_args()
    used = draw(args.figures, args.out)
    print(f"{args.out} drawn from {', '.join(f'{n}.json' for n in used)}")


if __name__ == "__main__":
    main()
