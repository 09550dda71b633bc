"""The discrete codes a model assigns to a split, and how well they match gold labels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from demvae.data.batching import BucketBatchSampler, EncodedSplit
from demvae.errors import ConfigError
from demvae.evaluation.clustering import accuracy, cluster_scores, joint_code
from demvae.models import DialogModel, TextVAE


def format_code(code) -> str:
    """A code as the command line writes it: values per variable, comma-separated (``3,0,4``)."""
    return ",".join(str(int(c)) for c in code)


def parse_code(text: str, shape: tuple[int, int]) -> list[int]:
    """``3,0,4`` (or ``3-0-4``, as older listings printed it) -> [3, 0, 4], checked against (M, K)."""
    m, k = shape
    try:
        values = [int(v) for v in text.split("," if "," in text or text.lstrip("-").isdigit() else "-")]
    except ValueError:
        raise ConfigError(f"a code is {m} integers separated by commas (e.g. {format_code([0] * m)}), "
                          f"got {text!r}") from None
    if len(values) != m or not all(0 <= v < k for v in values):
        raise ConfigError(f"a code of this model has {m} value(s), each in 0..{k - 1}; got {text!r}")
    return values


@dataclass
class SplitCodes:
    probs: np.ndarray
    """``q(c|x)`` [N, M, K] in the split's order."""

    @property
    def codes(self) -> np.ndarray:
        """argmax code per variable [N, M]."""
        return self.probs.argmax(-1)

    @property
    def joint(self) -> np.ndarray:
        """One cluster id per example (the M argmax codes merged, as the paper)."""
        return joint_code(self.codes)

    @property
    def confidence(self) -> np.ndarray:
        """``Π_i max_k q(c_i = k | x)``: the probability of the example's joint code [N]."""
        return self.probs.max(-1).prod(-1)


@torch.no_grad()
def encode_codes(model: TextVAE | DialogModel, split: EncodedSplit, batch_size: int = 200) -> SplitCodes | None:
    """q(c|x) of every example (a dialog model: stage 1's, of the responses); None for a model without a code."""
    shape = model.code_shape()
    if shape is None:
        return None
    model.eval()
    out = np.zeros((len(split), *shape), dtype=np.float64)
    for indices in BucketBatchSampler(split.lengths, batch_size, shuffle=False).batches():
        q = model.code_probs(split.batch(indices).to(model.device))
        assert q is not None  # the model has a code (code_shape), so q(c|x) exists
        out[indices] = q.double().cpu().numpy()
    return SplitCodes(out)


def label_scores(codes: SplitCodes, split: EncodedSplit) -> dict[str, dict[str, float]]:
    """Homogeneity, completeness, V-measure and NMI of the joint code with every label."""
    out = {}
    for name, labels in split.labels.items():
        y = labels.numpy()
        keep = y >= 0
        if keep.sum() > 0:
            out[name] = cluster_scores(y[keep], codes.joint[keep])
    return out


@torch.no_grad()
def supervised_accuracy(model: TextVAE, split: EncodedSplit, batch_size: int = 200) -> dict[str, dict[str, float]]:
    """Accuracy of argmax q(v_i|x) for every supervised variable, with the majority-class rate."""
    if not model.supervise:
        return {}
    model.eval()
    preds = {name: np.zeros(len(split), dtype=np.int64) for name in model.supervise}
    for indices in BucketBatchSampler(split.lengths, batch_size, shuffle=False).batches():
        for name, predicted in model.predict_labels(split.batch(indices).to(model.device)).items():
            preds[name][indices] = predicted.cpu().numpy()
    out = {}
    for name, pred in preds.items():
        y = split.labels[name].numpy()
        keep = y >= 0
        out[name] = accuracy(pred[keep], y[keep])
    return out
