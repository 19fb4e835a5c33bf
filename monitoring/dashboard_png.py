"""Draw the dashboard's panels from the series the monitoring integration test saved.

    FINPIPE_DASHBOARD_DATA=/tmp/night.json pytest tests/integration/test_monitoring.py
    python monitoring/dashboard_png.py /tmp/night.json docs/dashboard.png

One small chart per panel of ``monitoring/dashboard.json``, time in seconds from the run's start.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def draw(data_file: Path, out: Path) -> None:
    data = json.loads(data_file.read_text())
    panels = data["panels"]
    cols = 3
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(13, 2.3 * rows), squeeze=False)
    for ax, panel in zip(axes.flat, panels, strict=False):
        for series in panel["series"]:
            xs = [float(t) - data["start"] for t, _ in series["values"]]
            ys = [float(v) for _, v in series["values"]]
            ax.plot(xs, ys, label=series["legend"][:32], linewidth=1.2)
        unit = f" ({panel['unit']})" if panel["unit"] not in ("", "short") else ""
        ax.set_title(panel["title"] + unit, fontsize=8.5)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if panel["series"]:
            ax.legend(fontsize=6, loc="upper left", frameon=False)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle("finpipe: the night (seconds from the start of the test run)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=60)
    plt.close(fig)


if __name__ == "__main__":
    draw(Path(sys.argv[1]), Path(sys.argv[2]))
