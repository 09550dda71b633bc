"""Training curves from a run's ``metrics.jsonl`` (the trainer's ``train`` and ``valid`` records)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from demvae.errors import CheckpointError
from demvae.metrics import title
from demvae.training.run_folder import RunFolder

# One panel per quantity: (key in the train records, key in the valid records, what the registry's title leaves
# unsaid); the title is :mod:`demvae.metrics`'; a missing key is not drawn.
PANELS: tuple[tuple[str | None, str | None, str], ...] = (
    ("loss", None, "annealed KL weight"),
    ("rec", "rec", "−log p(x|z)"),
    ("kl_z_avg", "kl_z_avg", ""),
    ("dispersion", "dispersion", "L_d"),
    ("kl_c", "kl_c", ""),
    ("mutual_info", "mutual_info", "I(x; c)"),
    ("param_var", "param_var", "prior natural parameters"),
    ("kl_weight", None, ""),
)


@dataclass
class History:
    train: list[dict[str, Any]]
    """``train`` records in step order (one per ``log_every`` steps)."""
    valid: list[dict[str, Any]]
    """``valid`` records in step order."""

    @property
    def metric(self) -> str | None:
        """The validation value that selected the model (``neg_elbo`` unless ``train.select_metric`` says)."""
        return self.valid[-1]["metric"] if self.valid else None

    @property
    def best_step(self) -> int | None:
        """The step of the kept model: the first validation with the smallest selection value (the trainer
        keeps a model only when it is strictly better)."""
        if not self.valid:
            return None
        return min(self.valid, key=lambda r: r[r["metric"]])["step"]


def read_history(run_dir: Path) -> History:
    """The run's records; a resumed run may log a step twice (after its last checkpoint): the later wins."""
    path = RunFolder(run_dir).metrics_log
    if not path.is_file():
        return History([], [])
    records: dict[tuple[str, int], dict[str, Any]] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            records[(record["kind"], int(record["step"]))] = record
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            raise CheckpointError(f"{path}:{n}: not a metrics record") from None
    ordered = [records[k] for k in sorted(records, key=lambda k: k[1])]
    return History([r for r in ordered if r["kind"] == "train"], [r for r in ordered if r["kind"] == "valid"])


def plot_histories(histories: dict[str, History]):
    """One panel per quantity that some run logged, one colour per run: training records as lines,
    validations as dots; the selection metric last, each run's kept model starred and its step dotted
    on every panel. Returns the matplotlib figure."""
    import matplotlib.pyplot as plt

    metric = next((h.metric for h in histories.values() if h.metric), "neg_elbo")
    panels = [(title(train or valid or "") + (f" ({gloss})" if gloss else ""), train, valid)
              for train, valid, gloss in PANELS
              if any(train in r or valid in r for h in histories.values() for r in h.train + h.valid)]
    panels.append((f"validation {title(metric)} (model selection)", None, metric))
    cols = 3
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.6 * rows), squeeze=False, sharex=True)
    cmap = plt.cm.tab10 if len(histories) <= 10 else plt.cm.tab20
    colours = [cmap(i) for i in range(cmap.N)]
    for ax, (heading, train_key, valid_key) in zip(axes.flat, panels):
        for (name, h), colour in zip(histories.items(), colours * 3):
            train = [(r["step"], r[train_key]) for r in h.train if train_key in r]
            valid = [(r["step"], r[valid_key]) for r in h.valid if valid_key in r]
            if train:
                ax.plot(*zip(*train), color=colour, lw=1.3, label=name)
            if valid:
                ax.plot(*zip(*valid), "o--", color=colour, ms=3.5, lw=0.8, label=None if train else name)
            if h.best_step is not None and (train or valid):
                ax.axvline(h.best_step, color=colour, ls=":", lw=1)
                best = next(r for r in h.valid if r["step"] == h.best_step)
                if valid_key == metric and metric in best:
                    ax.plot(best["step"], best[metric], "*", color=colour, ms=13, mec="black", mew=0.6)
        ax.set_title(heading, fontsize=9.5)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.25)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax in axes.flat[len(panels) - cols:len(panels)]:  # the lowest visible panel of each column
        ax.set_xlabel("step", fontsize=8)
        ax.xaxis.set_tick_params(labelbottom=True)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if len(histories) > 1 and handles:
        fig.legend(handles, labels, loc="upper center", ncol=min(len(labels), 6), fontsize=8, frameon=False)
        fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / (2.6 * rows)))
    else:
        fig.tight_layout()
    return fig
