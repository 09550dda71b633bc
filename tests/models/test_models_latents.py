"""The latent blocks' posterior views, checked against independent computations: q(c|x) normalised over the K
values of each of the M variables (M ≠ K, so the wrong axis cannot pass), the mode/sample features, and the
importance weights log p(z) − log q(z|x) against torch.distributions."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from demvae.expfam import Gaussian
from demvae.models.latents import DiscreteLatent, MixtureLatent

B, H, M, K, U = 6, 8, 3, 5, 2


def _blocks():
    torch.manual_seed(0)
    mix = MixtureLatent(Gaussian(), H, n_variables=M, n_values=K, n_units=U, learn_prior=True,
                        concat_latent=True, temperature=1.0, z_head="linear", code_head="relu")
    disc = DiscreteLatent(H, n_variables=M, n_values=K, concat_latent=True, temperature=1.0)
    return {"mixture": mix, "discrete": disc}


@pytest.mark.parametrize("kind", ["mixture", "discrete"])
def test_code_probabilities_are_normalised_over_the_values(kind):
    block = _blocks()[kind]
    h = torch.randn(B, H)
    probs, log_probs = block.code_probs(h), block.code_log_probs(h)
    assert probs.shape == (B, M, K)
    torch.testing.assert_close(probs.sum(-1), torch.ones(B, M))
    torch.testing.assert_close(log_probs.exp(), probs)
    logits = (block.code_net(h) if kind == "mixture" else block.logits(h)).view(B, M, K)
    torch.testing.assert_close(probs, torch.softmax(logits, dim=2))


def test_discrete_features_are_one_hot_codes_of_the_right_variables():
    block = _blocks()["discrete"].eval()
    h = torch.randn(B, H)
    probs = block.code_probs(h)
    assert block.mode_features(h).shape == (B, M * K) and block.posterior_features(h).shape == (B, M * K)
    mode = block.mode_features(h).view(B, M, K)
    assert torch.equal(mode, F.one_hot(probs.argmax(-1), K).float())
    for i in range(M):  # a supervised variable's prediction and label log-probability
        assert torch.equal(block.predict_label(h, i), probs[:, i].argmax(-1))
        labels = torch.arange(B) % K
        torch.testing.assert_close(block.label_log_prob(h, i, labels), probs[torch.arange(B), i, labels].log())
    torch.manual_seed(1)
    draws = torch.stack([block.posterior_features(h).view(B, M, K) for _ in range(4000)])  # [T, B, M, K]
    assert torch.equal(draws.sum(-1), torch.ones(4000, B, M))
    torch.testing.assert_close(draws.mean(0), probs, atol=0.04, rtol=0)  # each variable drawn from its own q


def test_mixture_importance_weights_against_torch_distributions():
    block = _blocks()["mixture"].eval()
    h = torch.randn(B, H)
    torch.manual_seed(2)
    feats, log_w = block.importance_sample(h, 7)  # [B, 7, F], [B, 7]
    z = feats.view(B, 7, M, U)
    mean, var = Gaussian.moments_from_natural(block.posterior_natural(h))  # [B, M, U]
    log_q = torch.distributions.Normal(mean.unsqueeze(1), var.sqrt().unsqueeze(1)).log_prob(z).sum((2, 3))
    pm, pv = Gaussian.moments_from_natural(block.prior.natural_params())  # [M, K, U]
    comp = torch.distributions.Normal(pm, pv.sqrt()).log_prob(z.unsqueeze(-2)).sum(-1)  # [B, 7, M, K]
    log_p = (torch.logsumexp(comp, -1) - math.log(K)).sum(-1)
    torch.testing.assert_close(log_w, log_p - log_q, rtol=1e-5, atol=1e-4)


def test_mixture_mode_and_posterior_features():
    block = _blocks()["mixture"].eval()
    h = torch.randn(B, H)
    mean, var = Gaussian.moments_from_natural(block.posterior_natural(h))
    torch.testing.assert_close(block.mode_features(h), mean.reshape(B, M * U))
    torch.manual_seed(3)
    draws = torch.stack([block.posterior_features(h) for _ in range(4000)])
    torch.testing.assert_close(draws.mean(0), mean.reshape(B, -1), atol=0.1, rtol=0)
    torch.testing.assert_close(draws.var(0), var.reshape(B, -1), atol=0.15, rtol=0.1)
