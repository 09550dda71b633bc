"""Evaluation: every metric of the paper.

Model-independent metrics are re-exported here (BLEU, wKL, clustering, embedding scores, tables);
the model-facing ones live in ``likelihood`` (importance-sampled NLL), ``generation``
(reconstructions, prior samples), ``codes`` (clusters of the discrete codes), ``rppl`` and ``run``
(``demvae eval``). The KL / dispersion / Var / MI statistics are the trainer's validation statistics
(:mod:`demvae.training.validation`) on the evaluated split, as in the original.
"""

from demvae.evaluation.bleu import multi_bleu, sacre_bleu
from demvae.evaluation.clustering import accuracy, cluster_scores, joint_code, per_variable_homogeneity
from demvae.evaluation.embedding import embedding_scores, load_word_vectors
from demvae.evaluation.tables import format_table, side_by_side
from demvae.evaluation.wkl import word_kl

__all__ = [
    "multi_bleu",
    "sacre_bleu",
    "word_kl",
    "joint_code",
    "cluster_scores",
    "accuracy",
    "per_variable_homogeneity",
    "load_word_vectors",
    "embedding_scores",
    "format_table",
    "side_by_side",
]
