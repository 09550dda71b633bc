"""``model.decode_code``: the decoder reads the one-hot code c beside z (opt-in; the paper's x depends on z only).

Checked against independent computations: the features carry exactly the chosen code; the importance weights,
which now sample c with z, equal p(c) p(z|c) / q(c|x) q(z|x) computed with torch.distributions, and averaged over
c ~ q(c|x) they give back p(z) = Σ_c p(c) p(z|c) (Monte Carlo); a model with it trains and generates from codes;
a latent without a code refuses it; and without it, the paper's features are what they were."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal

from demvae.config import compose
from demvae.errors import ConfigError
from demvae.expfam import Gaussian
from demvae.models import build_model, generation
from demvae.models.latents import MixtureLatent

B, H, M, K, U = 5, 8, 2, 3, 2


def _block(decode_code: bool = True) -> MixtureLatent:
    torch.manual_seed(0)
    return MixtureLatent(Gaussian(), H, n_variables=M, n_values=K, n_units=U, decode_code=decode_code).eval()


def _split(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Decoder features [..., F] -> (z [..., M, U], one-hot code [..., M, K])."""
    return features[..., : M * U].unflatten(-1, (M, U)), features[..., M * U:].unflatten(-1, (M, K))


def test_the_features_carry_the_chosen_code_after_z():
    block = _block()
    assert block.feature_dim == M * U + M * K
    codes = torch.tensor([[0, 2], [1, 1], [2, 0]])
    z, code = _split(block.prior_features(3, codes))
    assert torch.equal(code, F.one_hot(codes, K).float())
    torch.testing.assert_close(_split(block.prior_features(3, codes, mode=True))[0], block.prior.mode(codes))
    h = torch.randn(B, H)
    _, mode_code = _split(block.mode_features(h))
    assert torch.equal(mode_code, F.one_hot(block.code_probs(h).argmax(-1), K).float())
    torch.manual_seed(1)
    draws = torch.stack([_split(block.posterior_features(h))[1] for _ in range(3000)])  # [T, B, M, K]
    torch.testing.assert_close(draws.mean(0), block.code_probs(h), atol=0.04, rtol=0)


def test_training_features_are_straight_through_one_hot_draws_of_q_c():
    block = _block().train()
    h = torch.randn(B, H, requires_grad=True)
    features, terms = block(h, n_samples=4)
    _, code = _split(features)  # [B, S, M, K]
    assert features.shape == (B, 4, block.feature_dim)
    hard = code.detach()  # one-hot up to the straight-through's rounding (one_hot + y − y.detach())
    torch.testing.assert_close(hard, F.one_hot(hard.argmax(-1), K).float())
    code.sum().backward()  # the relaxation passes a gradient to q(c|x)'s head
    assert block.code_net[0].weight.grad is not None and block.code_net[0].weight.grad.abs().sum() > 0
    assert terms.kl_c is not None and terms.kl_z_avg is not None and terms.dispersion is not None


def test_importance_weights_sample_c_and_match_torch_distributions():
    block = _block()
    h = torch.randn(B, H)
    torch.manual_seed(2)
    features, log_w = block.importance_sample(h, 6)
    z, code = _split(features)
    codes = code.argmax(-1)  # [B, n, M]
    eta = block.posterior_natural(h)
    mu, var = Gaussian().moments(Gaussian().mean_params(eta))  # [B, M, U]
    log_q_z = Normal(mu.unsqueeze(1), var.sqrt().unsqueeze(1)).log_prob(z).sum((-1, -2))
    p_mu, p_var = Gaussian().moments(Gaussian().mean_params(block.prior.natural_params()))  # [M, K, U]
    variables = torch.arange(M)
    chosen_mu, chosen_sd = p_mu[variables, codes], p_var[variables, codes].sqrt()  # [B, n, M, U]
    log_p_z_c = Normal(chosen_mu, chosen_sd).log_prob(z).sum((-1, -2))
    log_q_c = block.code_log_probs(h).unsqueeze(1).expand(-1, 6, -1, -1).gather(-1, codes.unsqueeze(-1)).sum((-1, -2))
    torch.testing.assert_close(log_w, log_p_z_c - M * math.log(K) - log_q_c - log_q_z, rtol=1e-5, atol=1e-4)


def test_averaged_over_c_the_weights_give_back_the_marginal_prior():
    """E_{c~q(c|x)}[p(c) p(z|c) / q(c|x)] = Σ_c p(c) p(z|c) = p(z): the sampled code keeps the estimator unbiased."""
    block = _block()
    h = torch.randn(1, H)
    torch.manual_seed(3)
    features, log_w = block.importance_sample(h, 200_000)
    z, _ = _split(features)
    eta = block.posterior_natural(h).unsqueeze(1)
    log_q_z = Gaussian().log_prob(z, eta.expand(-1, z.shape[1], -1, -1, -1)).sum((-1, -2))
    ratio = (log_w + log_q_z - block.prior.log_prob(z)).exp()  # p(c)p(z|c)/q(c|x) over p(z), per draw
    assert abs(ratio.mean().item() - 1.0) < 0.03


def _tiny(tiny_overrides, **model):
    overrides = tiny_overrides({"model": {"dropout": 0.0, **model}, "train": {"max_steps": 4, "eval_every": 4}})
    return compose(model="dgm-vae-mi", overrides=overrides)


def test_a_model_that_decodes_the_code_trains_and_generates_from_codes(tiny_overrides, tmp_path):
    from demvae.training import Trainer

    cfg = _tiny(tiny_overrides, decode_code=True)
    trainer = Trainer(cfg, tmp_path / "run")
    trainer.fit()
    model = trainer.model.eval()
    block = model.latents[0]
    assert block.decode_code
    codes = torch.zeros(4, block.n_variables, dtype=torch.long)
    torch.manual_seed(0)
    first = generation.generate_from_codes(model, codes, generation.Procedure.named("prior"))
    torch.manual_seed(0)
    assert torch.equal(first, generation.generate_from_codes(model, codes, generation.Procedure.named("prior")))
    torch.manual_seed(0)
    assert torch.equal(first, model.sample_prior(4, codes))  # the documented equality holds with the code read too


def test_a_latent_without_a_code_refuses_it():
    cfg = compose(model="vae", overrides={"model": {"decode_code": True, "embed_dim": 8, "hidden_size": 8}})
    with pytest.raises(ConfigError, match="decode_code needs a mixture latent"):
        build_model(cfg.model, 20, 1, 2)
    with pytest.raises(ValueError, match="discrete code"):
        MixtureLatent(Gaussian(), H, n_variables=1, n_values=1, n_units=U, decode_code=True)


def test_without_it_the_features_are_z_alone():
    plain, coded = _block(decode_code=False), _block(decode_code=True)
    h = torch.randn(B, H)
    assert plain.feature_dim == M * U
    torch.testing.assert_close(plain.mode_features(h), _split(coded.mode_features(h))[0].flatten(1))
