"""Matplotlib figures of the reports (headless backend; written atomically as PNG)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ese.atomic import atomic_path  # noqa: E402


def save_figure(fig, path: str | Path) -> Path:
    """Write ``fig`` as PNG atomically and release it."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path


def learning_curve(history: list[dict], path: str | Path, title: str = "training") -> Path:
    """Train / dev loss and dev frame accuracy per epoch."""
    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax_loss.plot(epochs, [h["train_loss"] for h in history], marker="o", label="train")
    ax_loss.plot(epochs, [h["dev_loss"] for h in history], marker="o", label="dev")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("cross-entropy (nats / frame)")
    ax_loss.legend()
    ax_loss.grid(alpha=0.3)
    ax_acc.plot(epochs, [h["dev_frame_acc"] for h in history], marker="o", color="tab:green")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("dev frame accuracy (%)")
    ax_acc.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)
