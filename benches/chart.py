"""Draws benches/ratios.png from benches/RESULTS.md.

The chart shows the table "evloop's rate divided by each peer's": one group
of bars per workload, one bar per peer, on a log scale (the ratios run from
below 0.1 to above 100), with a line at 1.0 where evloop and the peer are
even. It reads RESULTS.md rather than the raw runs so that the chart always
shows exactly the figures committed beside it.

    python benches/chart.py [RESULTS.md] [ratios.png]

compare.sh runs it at the end, with the bench virtualenv's Python (which
has matplotlib).
"""

import sys
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt  # noqa: E402

HERE = Path(__file__).resolve().parent
RATIO_TABLE = "evloop's rate divided by each peer's"


def read_results(path):
    """(date line, peers, {workload: [ratio or cell text, per peer]}) from RESULTS.md."""
    lines = Path(path).read_text().splitlines()
    date = next((l for l in lines if l.startswith("Measured ")), "")
    start = next(i for i, l in enumerate(lines) if l.startswith(RATIO_TABLE))
    table = []
    for l in lines[start + 1 :]:
        if l.startswith("|"):
            table.append([c.strip() for c in l.strip("|").split("|")])
        elif table:
            break  # the blank line after the table
    peers = table[0][1:]
    rows = {}
    for row in table[2:]:  # after the header and its |---| line
        rows[row[0]] = [parse(c) for c in row[1:]]
    return date, peers, rows


def parse(cell):
    """'5.36×' -> 5.36; anything else ('timeout', 'missing', '–') stays text."""
    try:
        return float(cell.rstrip("×"))
    except ValueError:
        return cell


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else HERE / "RESULTS.md"
    dst = sys.argv[2] if len(sys.argv) > 2 else HERE / "ratios.png"
    date, peers, rows = read_results(src)
    workloads = list(rows)

    fig, ax = plt.subplots(figsize=(12, 6))
    width = 0.8 / len(peers)
    for j, peer in enumerate(peers):
        xs, ys = [], []
        for i, w in enumerate(workloads):
            x = i - 0.4 + width * (j + 0.5)
            value = rows[w][j]
            if isinstance(value, float):
                xs.append(x)
                ys.append(value)
            elif value in ("timeout", "missing"):
                # Say why a bar is absent; "–" (no such workload) says nothing.
                ax.text(x, 1.0, value, rotation=90, ha="center", va="bottom", fontsize=7,
                        color="dimgray")
        # Bars grow from 1.0, up where evloop is faster, down where slower.
        heights = [y - 1.0 for y in ys]
        bars = ax.bar(xs, heights, width, bottom=1.0, label=peer, color=plt.cm.tab10(j % 10))
        # The figure at each bar's end, so that ratios near 1.0 show too.
        labels = [f"{y:.0f}" if y >= 10 else f"{y:.2f}" for y in ys]
        ax.bar_label(bars, labels=labels, fontsize=6, rotation=90, padding=2)
    ax.set_yscale("log")
    values = [v for row in rows.values() for v in row if isinstance(v, float)]
    ax.set_ylim(min(values + [1.0]) / 2, max(values + [1.0]) * 4)  # room for the labels
    ax.axhline(1.0, color="black", linewidth=1)
    ax.set_xticks(range(len(workloads)), workloads)
    ax.set_xlabel("workload (benches/README.md)")
    ax.set_ylabel("evloop's rate ÷ peer's rate (log scale; above 1: evloop is faster)")
    ax.grid(axis="y", which="major", alpha=0.3)
    ax.legend(title="peer", loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=9)
    # The date line without the command and the note on rates (the axis says it).
    title = date.split(" (`")[0].split(". Rates are")[0]
    ax.set_title("evloop's rate divided by each peer's (medians)\n"
                 + "\n".join(textwrap.wrap(title, 110)), fontsize=10)
    fig.tight_layout()
    fig.savefig(dst, dpi=100)
    print(f"wrote {dst}")


if __name__ == "__main__":
    main()
