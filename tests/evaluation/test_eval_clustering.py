import itertools

import numpy as np
import pytest

from demvae.evaluation.clustering import accuracy, cluster_scores, joint_code, per_variable_homogeneity


def _entropy(labels):
    _, counts = np.unique(labels, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


def _cond_entropy(a, b):
    """H(A | B) by brute force over the values of B."""
    a, b = np.asarray(a), np.asarray(b)
    h = 0.0
    for v in np.unique(b):
        mask = b == v
        h += mask.mean() * _entropy(a[mask])
    return h


def _brute(true, pred):
    hc, hk = _entropy(true), _entropy(pred)
    hom = 1.0 if hc == 0 else 1 - _cond_entropy(true, pred) / hc
    com = 1.0 if hk == 0 else 1 - _cond_entropy(pred, true) / hk
    return hom, com


@pytest.mark.parametrize("seed", range(5))
def test_homogeneity_completeness_against_entropies(seed):
    rng = np.random.default_rng(seed)
    true = rng.choice(["inform", "question", "directive", "commissive"], size=300)
    pred = rng.integers(0, 12, size=300)
    pred[:150] = (true[:150] == "inform") * 20  # some structure
    s = cluster_scores(true, pred)
    hom, com = _brute(true, pred)
    assert s["homogeneity"] == pytest.approx(hom, abs=1e-10)
    assert s["completeness"] == pytest.approx(com, abs=1e-10)
    assert s["v_measure"] == pytest.approx(2 * hom * com / (hom + com), abs=1e-10)
    mi = _entropy(true) - _cond_entropy(true, pred)
    assert s["nmi"] == pytest.approx(mi / ((_entropy(true) + _entropy(pred)) / 2), abs=1e-10)


def test_perfect_and_single_cluster():
    true = np.array(["a", "a", "b", "b", "c"])
    perfect = cluster_scores(true, [7, 7, 3, 3, 1])
    assert all(v == pytest.approx(1.0) for v in perfect.values())
    single = cluster_scores(true, [0] * 5)
    assert single["homogeneity"] == pytest.approx(0.0)
    assert single["completeness"] == pytest.approx(1.0)
    # one cluster per item is perfectly homogeneous
    assert cluster_scores(true, np.arange(5))["homogeneity"] == pytest.approx(1.0)


@pytest.mark.parametrize("k,m", [(5, 3), (2, 4), (3, 1), (1, 2)])
def test_joint_code_is_a_bijection(k, m):
    codes = np.array(list(itertools.product(range(k), repeat=m)))
    ids = joint_code(codes[::-1], k)[::-1]  # input order does not matter
    assert ids.shape == (k**m,)
    # every code present: the ids are the mixed-radix numbers, first variable most significant
    assert ids.tolist() == list(range(k**m))


def test_joint_code_validates():
    assert joint_code([2, 1, 2], 3).tolist() == [1, 0, 1]  # 1-d means M = 1; ids rank the distinct codes
    with pytest.raises(ValueError):
        joint_code([[0, 5]], 5)
    with pytest.raises(ValueError):
        joint_code([[-1, 0]], 5)


def test_accuracy_and_majority():
    true = ["x", "x", "x", "y", "z"]
    pred = ["x", "y", "x", "y", "x"]
    r = accuracy(pred, true)
    assert r == {"accuracy": pytest.approx(3 / 5), "majority": pytest.approx(3 / 5)}
    assert accuracy(np.array([0, 1, 1, 1]), np.array([0, 1, 1, 0]))["majority"] == pytest.approx(0.5)
    with pytest.raises(ValueError):
        accuracy([1, 2], [1])


def test_per_variable_homogeneity():
    labels = np.array(["a", "a", "b", "b"])
    codes = np.array([[0, 1, 0], [0, 0, 0], [1, 1, 0], [1, 0, 0]])
    hom = per_variable_homogeneity(codes, labels)
    assert hom == [pytest.approx(1.0), pytest.approx(0.0), pytest.approx(0.0)]
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 5, size=(200, 3))
    labels = rng.integers(0, 4, size=200)
    for i, h in enumerate(per_variable_homogeneity(codes, labels)):
        assert h == pytest.approx(_brute(labels, codes[:, i])[0], abs=1e-10)


def test_joint_code_does_not_overflow_at_the_supervised_dvae_size():
    """G = 30 variables × K = 8 values: K^G = 2^90 ids. Changing any one variable of a row must
    change its joint id, and equal rows must share one (checked against tuple hashing)."""
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 8, size=(400, 30))
    codes[200:] = codes[:200]  # duplicates
    ids = joint_code(codes, 8)
    by_row: dict[tuple, int] = {}
    for row, i in zip(map(tuple, codes), ids):
        assert by_row.setdefault(row, i) == i
    assert len(set(ids.tolist())) == len(by_row) == 200
    for v in range(30):
        changed = codes.copy()
        changed[:, v] = (changed[:, v] + 1) % 8
        both = joint_code(np.concatenate([codes, changed]), 8)
        assert not np.any(both[:400] == both[400:]), f"variable {v} is invisible to the joint id"


def test_joint_code_edge_cases():
    assert joint_code(np.zeros((0, 3), dtype=np.int64)).shape == (0,)  # no rows: no ids
    assert joint_code(np.array([[4, 1, 2]])).tolist() == [0]  # one row: id 0
    floats = np.array([[1.0, 2.0], [0.0, 2.0], [1.0, 2.0]])  # integer-valued floats are codes
    assert joint_code(floats).tolist() == [1, 0, 1]
    with pytest.raises(ValueError, match="integers"):
        joint_code(np.array([[1.5, 2.0]]))


def test_split_codes_views():
    from demvae.evaluation.codes import SplitCodes

    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(5), size=(4, 3))  # [N = 4, M = 3, K = 5]: M ≠ K, so a wrong axis shows
    codes = SplitCodes(probs)
    assert codes.codes.shape == (4, 3)
    assert codes.codes.tolist() == [[int(np.argmax(probs[n, m])) for m in range(3)] for n in range(4)]
    expected = [np.prod([probs[n, m].max() for m in range(3)]) for n in range(4)]
    np.testing.assert_allclose(codes.confidence, expected, rtol=1e-12)
    assert codes.joint.tolist() == joint_code(codes.codes).tolist()


def test_label_scores_skip_missing_labels_only():
    """-1 marks an example without the label; class 0 is a class like any other."""
    import torch

    from demvae.evaluation.codes import SplitCodes, label_scores

    probs = np.zeros((6, 1, 3))
    probs[np.arange(6), 0, [0, 0, 1, 1, 2, 2]] = 1.0  # joint codes 0 0 1 1 2 2

    class Split:
        labels = {"a": torch.tensor([0, 1, 1, 1, -1, -1]), "none": torch.tensor([-1] * 6)}

    scores = label_scores(SplitCodes(probs), Split())
    assert set(scores) == {"a"}  # a label nobody has is not scored
    expected = cluster_scores([0, 1, 1, 1], [0, 0, 1, 1])
    assert scores["a"] == pytest.approx(expected)
    assert scores["a"]["homogeneity"] < 0.9  # code 0 mixes classes 0 and 1 (dropping class 0 would hide it)


def test_parse_code_bounds():
    from demvae.errors import ConfigError
    from demvae.evaluation.codes import parse_code

    assert parse_code("0,4", (2, 5)) == [0, 4]
    for bad in ("0,5", "-1,0", "0", "0,1,2"):
        with pytest.raises(ConfigError, match="2 value"):
            parse_code(bad, (2, 5))


def test_accuracy_of_one_example_and_supervised_accuracy_keeps_class_zero():
    import torch

    from demvae.evaluation.codes import supervised_accuracy

    assert accuracy([2], [2]) == {"accuracy": 1.0, "majority": 1.0}
    with pytest.raises(ValueError):
        accuracy([], [])

    class Model:  # predicts class 0 for every sentence
        supervise = {"act": 0}

        def eval(self):
            return self

        def predict_labels(self, batch):
            return {"act": torch.zeros(batch.size, dtype=torch.long)}

    class Batch:
        def __init__(self, n):
            self.size = n

        def to(self, device):
            return self

    class Split:
        lengths = torch.tensor([3, 3, 3, 3])
        labels = {"act": torch.tensor([0, 0, 1, -1])}

        def __len__(self):
            return 4

        def batch(self, indices):
            return Batch(len(indices))

    Model.device = "cpu"
    out = supervised_accuracy(Model(), Split())
    assert out["act"]["accuracy"] == pytest.approx(2 / 3)  # 2 of the 3 labelled sentences are class 0
    assert out["act"]["majority"] == pytest.approx(2 / 3)


def test_majority_class_and_share():
    from demvae.evaluation.clustering import majority

    assert majority(np.array([2, 0, 2, 1])) == (2, 0.5)
    assert majority(np.array([3, 1, 1, 3])) == (1, 0.5)  # a tie: the smaller class id
    assert majority(np.array([0])) == (0, 1.0)
