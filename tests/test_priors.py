"""The priors' math, each checked against an independent computation."""
from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from replay import priors
from replay.priors import CGM, GMM, BinarizedGaussian, BinarizedGMM, Gaussian, GaussianPosterior as G
from replay.priors.divergences import binarized_gaussian_kl, gaussian_kernel, mmd2_per_sample



@pytest.fixture(autouse=True)
def double_precision():
    """The comparisons below are exact or tight: run this module in float64, restore afterwards."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def posterior(batch=64, dim=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, dim, generator=g), 0.5 * torch.randn(batch, dim, generator=g)


def test_binarized_with_r_zero_is_the_gaussian_kl_to_the_last_digit():
    mu, logvar = posterior()
    m, lv = torch.randn(6), torch.randn(6)
    plain = 0.5 * (lv - logvar + (logvar.exp() + (mu - m) ** 2) / lv.exp() - 1).sum(1)
    assert torch.equal(binarized_gaussian_kl(mu, logvar, m, lv, r=0.0), plain)
    assert torch.equal(BinarizedGaussian(6, r=0.0).regularizer(G(mu, logvar), mu), Gaussian(6).regularizer(G(mu, logvar), mu))


def test_binarized_with_r_zero_draws_the_gaussians_samples_but_moves_the_random_stream_on():
    """The premise of the r = 0 control runs: the same latents as the Gaussian prior from the same random state,
    with extra random numbers drawn (the +-r signs), so every later draw of the run differs."""
    torch.manual_seed(0)
    plain, after_plain = Gaussian(6).sample(500), torch.rand(3)
    torch.manual_seed(0)
    control, after_control = BinarizedGaussian(6, r=0.0).sample(500), torch.rand(3)
    assert torch.equal(control, plain) and not torch.equal(after_control, after_plain)


def test_gaussian_kl_matches_torch_distributions():
    mu, logvar = posterior()
    q, p = Normal(mu, (0.5 * logvar).exp()), Normal(torch.zeros(6), torch.ones(6))
    assert torch.allclose(Gaussian(6).regularizer(G(mu, logvar), mu), kl_divergence(q, p).sum(1))


@pytest.mark.parametrize("r", [0.01, 0.5, 2.0])
def test_binarized_kl_is_the_kl_to_the_shifted_prior(r):
    mu, logvar = posterior()
    m, lv = torch.randn(6), torch.randn(6)
    shifted = Normal(m + r * torch.sign(mu - m), (0.5 * lv).exp())
    expected = kl_divergence(Normal(mu, (0.5 * logvar).exp()), shifted).sum(1)
    assert torch.allclose(binarized_gaussian_kl(mu, logvar, m, lv, r), expected)


def test_binarized_gradients_are_finite_at_the_prior_mean():
    mu = torch.zeros(4, 6, requires_grad=True)  # exactly at the prior mean m = 0
    logvar = torch.zeros(4, 6, requires_grad=True)
    BinarizedGaussian(6, r=0.3).regularizer(G(mu, logvar), mu).sum().backward()
    assert torch.isfinite(mu.grad).all() and torch.isfinite(logvar.grad).all()
    prior = BinarizedGMM(6, n_classes=3, r=0.3)
    mu2 = prior.means[[0, 1]].detach().clone().requires_grad_(True)
    prior.regularizer(G(mu2, torch.zeros(2, 6)), mu2, labels=torch.tensor([0, 1])).sum().backward()
    assert torch.isfinite(mu2.grad).all() and torch.isfinite(prior.means.grad).all()


def test_gmm_closed_form_kl_agrees_with_monte_carlo():
    torch.manual_seed(0)
    prior = GMM(6, n_classes=3)
    mu, logvar = posterior(batch=4)
    labels = torch.tensor([0, 1, 2, 1])
    closed = prior.regularizer(G(mu, logvar), mu, labels=labels).detach()
    n = 200_000
    z = mu + (0.5 * logvar).exp() * torch.randn(n, *mu.shape)
    q = Normal(mu, (0.5 * logvar).exp())
    p = Normal(prior.means[labels].detach(), (0.5 * prior.logvars[labels]).exp().detach())
    monte_carlo = (q.log_prob(z) - p.log_prob(z)).sum(-1).mean(0)
    assert torch.allclose(closed, monte_carlo, rtol=0.02, atol=0.05)


def test_gmm_soft_estimators_one_hot_and_bound():
    torch.manual_seed(1)
    mc, bound = GMM(6, 3, soft="mc"), GMM(6, 3, soft="bound")
    bound.load_state_dict(mc.state_dict())
    for prior in (mc, bound):
        prior.observe_classes([0, 1, 2])
    mu, logvar = posterior(batch=3)
    labels = torch.tensor([0, 1, 2])
    one_hot = torch.nn.functional.one_hot(labels, 3).double()
    closed = mc.regularizer(G(mu, logvar), mu, labels=labels).detach()
    # the bound with one-hot probabilities is exactly the closed-form KL
    assert torch.allclose(bound.regularizer(G(mu, logvar), mu, probs=one_hot), closed)
    # the MC estimator with one-hot probabilities is unbiased for the same KL
    n = 100_000
    z = (mu + (0.5 * logvar).exp() * torch.randn(n, 3, 6)).reshape(-1, 6)
    estimate = mc.regularizer(G(mu.repeat(n, 1), logvar.repeat(n, 1)), z, probs=one_hot.repeat(n, 1))
    assert torch.allclose(estimate.view(n, 3).mean(0).detach(), closed, rtol=0.03, atol=0.05)
    # with mixed probabilities, sum_c p_c KL_c bounds the KL to the mixture from above (Jensen)
    probs = torch.tensor([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    estimate = mc.regularizer(G(mu.repeat(n, 1), logvar.repeat(n, 1)), z, probs=probs.repeat(n, 1))
    assert (estimate.view(n, 3).mean(0) <= bound.regularizer(G(mu, logvar), mu, probs=probs) + 0.02).all()


def test_gaussian_sampling_moments():
    torch.manual_seed(0)
    z = Gaussian(4).sample(200_000)
    assert z.mean(0).abs().max() < 0.01 and (z.var(0) - 1).abs().max() < 0.02


def test_binarized_sampling_is_a_symmetric_two_sided_mixture():
    torch.manual_seed(0)
    r = 3.0
    z = BinarizedGaussian(4, r=r).sample(200_000)
    assert z.mean(0).abs().max() < 0.03
    assert ((z.var(0) - (1 + r**2)).abs() < 0.1).all()  # variance of 0.5 N(r,1) + 0.5 N(-r,1)
    assert ((z > 0).double().mean(0) - 0.5).abs().max() < 0.01
    assert (z.abs() < 0.5).double().mean() < 0.01  # bimodal: almost nothing at the centre


def test_biased_sampling_follows_the_latents_side_statistics():
    torch.manual_seed(0)
    prior = BinarizedGaussian(3, r=2.0, sampling="biased")
    assert prior.wants_latents
    latents = torch.tensor([[1.0, -1.0, 1.0]] * 8 + [[-1.0, -1.0, 1.0]] * 2)
    prior.end_experience(latents)
    assert torch.allclose(prior.p_above, torch.tensor([0.8, 0.0, 1.0]))
    z = prior.sample(100_000)
    assert torch.allclose(z.mean(0), 2.0 * (2 * prior.p_above - 1), atol=0.03)


def test_gmm_conditional_sampling_moments():
    torch.manual_seed(0)
    for prior, extra in ((GMM(5, 4), 0.0), (BinarizedGMM(5, 4, r=1.5), 1.5**2)):
        prior.observe_classes([1, 3])
        z = prior.sample(100_000, torch.full((100_000,), 3)).detach()
        assert torch.allclose(z.mean(0), prior.means[3].detach(), atol=0.05)
        assert torch.allclose(z.var(0), prior.logvars[3].detach().exp() + extra, rtol=0.05, atol=0.05)
        unconditional = prior.sample(1000).detach()
        assert unconditional.shape == (1000, 5)


def test_mmd_zero_for_identical_samples_positive_for_shifted():
    a = torch.randn(50, 8)
    assert abs(float(mmd2_per_sample(a, a).mean())) < 1e-12
    assert float(mmd2_per_sample(a, a + 2.0).mean()) > 0.1
    kernel = gaussian_kernel(a[:2], a[2:4])
    assert torch.allclose(kernel[0, 1], torch.exp(-((a[0] - a[3]) ** 2).sum() / 16))


def test_descriptor_loss_follows_its_hinge():
    prior = CGM(2, n_classes=3, margin=1.0)
    prior.observe_classes([0, 1, 2])
    with torch.no_grad():
        prior.prototypes.copy_(torch.tensor([[0.0, 0.0], [0.5, 0.0], [3.0, 0.0]]))
    mu = torch.tensor([[0.1, 0.0]])
    loss = prior.descriptor_loss(mu, torch.tensor([0]), prior.prototypes)
    # own: 0.1^2; class 1 at squared distance 0.16 < m: hinge 0.84; class 2 at 8.41 > m: no hinge
    assert torch.allclose(loss, torch.tensor([0.01 + 0.84]))


def test_cgm_fixed_variance_head_and_information_rate():
    prior = CGM(10, n_classes=2, info_rate=15.0)
    assert math.isclose(prior.variance, 1 / 4 ** 1.5)
    head = prior.posterior_head(7)
    q = head(torch.randn(3, 7))
    assert torch.allclose(q.logvar, torch.full_like(q.mean, math.log(prior.variance)))
    assert not any("logvar" in name for name, _ in head.named_parameters())


def test_cgm_keeps_past_prototypes_fixed():
    prior = CGM(4, n_classes=4)
    prior.observe_classes([0, 1])
    before = prior.current_prototypes()[:2].detach().clone()
    prior.end_experience()
    prior.observe_classes([2, 3])
    with torch.no_grad():
        prior.prototypes.add_(1.0)
    assert torch.equal(prior.current_prototypes()[:2], before)
    z = prior.sample(20_000, torch.zeros(20_000, dtype=torch.long))
    assert torch.allclose(z.mean(0), before[0], atol=0.01)


def test_cgm_encoded_sampling_draws_from_each_classs_fitted_spread_plus_the_fixed_noise():
    """z ~ N(m_k, S_k + variance I), m_k and S_k the mean and covariance of class k's encodings, fitted when its
    experience ends; later experiences (whose latents hold the class again, via replay) leave the fit alone."""
    generator = torch.Generator().manual_seed(0)
    prior = CGM(3, n_classes=3, variance=0.1, sampling="encoded")
    assert prior.wants_latents and not CGM(3, n_classes=3).wants_latents
    mean = torch.tensor([1.0, -2.0, 0.5])
    mixing = torch.tensor([[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [0.0, 0.5, 0.3]])  # covariance mixing @ mixing.T
    latents = torch.cat([mean + torch.randn(4000, 3, generator=generator) @ mixing.T,
                         torch.randn(4000, 3, generator=generator) - 5.0])
    labels = torch.cat([torch.zeros(4000, dtype=torch.long), torch.ones(4000, dtype=torch.long)])
    prior.observe_classes([0, 1])
    prior.end_experience(latents, labels)
    fitted_covariance = torch.cov(latents[:4000].T.double()).float()
    assert torch.allclose(prior.spread_mean[0], latents[:4000].mean(0), atol=1e-5)
    factor = prior.spread_factor[0]
    assert torch.allclose(factor @ factor.T, fitted_covariance + 0.1 * torch.eye(3), atol=1e-4)
    torch.manual_seed(1)
    z = prior.sample(40_000, torch.zeros(40_000, dtype=torch.long)).detach()
    assert torch.allclose(z.mean(0), prior.spread_mean[0], atol=0.02)  # 4 standard errors
    assert torch.allclose(torch.cov(z.T), fitted_covariance + 0.1 * torch.eye(3), atol=0.04)
    # the next experience: class 0 arrives again only as replay, with other encodings; its fit stays
    prior.observe_classes([2])
    prior.end_experience(torch.cat([latents[:10] + 9.0, torch.zeros(5, 3)]),
                         torch.cat([torch.zeros(10, dtype=torch.long), torch.full((5,), 2)]))
    assert torch.allclose(prior.spread_mean[0], latents[:4000].mean(0), atol=1e-5)
    assert prior.fitted.tolist() == [True, True, True]
    # a class with a single encoding keeps the prototype sampler
    lone = CGM(2, n_classes=2, variance=0.1, sampling="encoded")
    lone.observe_classes([0])
    lone.end_experience(torch.ones(1, 2), torch.zeros(1, dtype=torch.long))
    draws = lone.sample(20_000, torch.zeros(20_000, dtype=torch.long))
    assert not lone.fitted[0] and torch.allclose(draws.mean(0), lone.current_prototypes()[0], atol=0.01)


def test_bad_input_gives_clear_errors():
    with pytest.raises(ValueError, match="unknown prior 'nope'"):
        priors.build("nope", latent_dim=4)
    with pytest.raises(ValueError, match="has no parameter 'radius'; allowed: r, sampling"):
        priors.build("binarized_gaussian", latent_dim=4, radius=1.0)
    with pytest.raises(ValueError, match="r must be a number >= 0"):
        priors.build("binarized_gmm", latent_dim=4, n_classes=2, r=-0.1)
    with pytest.raises(ValueError, match="needs n_classes"):
        priors.build("gmm", latent_dim=4)
    prior = priors.build("gmm", latent_dim=4, n_classes=3)
    prior.observe_classes([0])
    with pytest.raises(ValueError, match="class 2 has not been seen"):
        prior.sample(2, torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="outside the prior's 3 class slots"):
        prior.observe_classes([5])
    with pytest.raises(ValueError, match="do not match the prior's latent size 4"):
        prior.regularizer(G(torch.zeros(2, 7), torch.zeros(2, 7)), torch.zeros(2, 7), labels=torch.tensor([0, 0]))
    with pytest.raises(ValueError, match="has seen no class yet"):
        priors.build("cgm", latent_dim=4, n_classes=3).sample(2)


def test_straight_through_gradient_is_identity():
    from replay.priors.bernoulli import binarize_straight_through

    x = torch.tensor([-0.7, -0.1, 0.0, 0.2, 0.9], requires_grad=True)
    codes = binarize_straight_through(x)
    assert torch.equal(codes.detach(), torch.tensor([-1.0, -1.0, 1.0, 1.0, 1.0]))
    (codes * torch.arange(5.0)).sum().backward()
    assert torch.equal(x.grad, torch.arange(5.0))


def test_hyperplane_rounding_reproduces_the_fitted_moments():
    from replay.priors.bernoulli import Bernoulli, hyperplane_round, moment_matrix

    torch.manual_seed(0)
    n = 12
    a = torch.randn(n + 1, n + 1)
    v0 = a / a.norm(dim=1, keepdim=True)  # any unit rows: codes with representable moments
    codes = hyperplane_round(v0, torch.randn(40_000, n + 1))
    prior = Bernoulli(n, n_classes=2, check_samples=40_000)
    prior.observe_classes([0])
    prior.end_experience(codes, torch.zeros(len(codes), dtype=torch.long))
    record = prior.fit_errors[-1]["global"]
    assert record["max_moment_error"] < 0.03  # stated tolerance: sampling noise of 40k draws
    samples = prior.sample(40_000)
    assert (moment_matrix(samples) - moment_matrix(codes)).abs().max() < 0.03
    conditional = prior.sample(40_000, torch.zeros(40_000, dtype=torch.long))
    assert (moment_matrix(conditional) - moment_matrix(codes)).abs().max() < 0.03


def test_non_psd_moments_are_repaired_in_float64_and_recorded():
    from replay.priors.bernoulli import Bernoulli, hyperplane_factor, nearest_correlation

    h = torch.tensor([[1.0, 0.9, -0.9], [0.9, 1.0, 0.9], [-0.9, 0.9, 1.0]], dtype=torch.float64)
    assert torch.linalg.eigvalsh(h).min() < 0
    fixed = nearest_correlation(h)
    assert torch.linalg.eigvalsh(fixed).min() >= 0 and torch.allclose(fixed.diagonal(), torch.ones(3, dtype=torch.float64))
    v, repaired = hyperplane_factor(torch.tensor([[1.0, 0.8, -0.8, 0.0], [0.8, 1.0, 0.8, 0.0], [-0.8, 0.8, 1.0, 0.0],
                                                  [0.0, 0.0, 0.0, 1.0]], dtype=torch.float64))
    assert repaired and v.dtype == torch.float64 and torch.allclose(v.norm(dim=1), torch.ones(4, dtype=torch.float64))
    prior = Bernoulli(5, n_classes=2)
    codes = torch.tensor([[1.0, 1.0, -1.0, 1.0, -1.0], [1.0, -1.0, -1.0, -1.0, 1.0], [-1.0, 1.0, 1.0, 1.0, 1.0]]).repeat(10, 1)
    prior.end_experience(codes, torch.tensor([0, 1, 1] * 10))
    assert set(prior.fit_errors[-1]) == {"global", 0, 1} and all("max_moment_error" in r for r in prior.fit_errors[-1].values())


def test_conditional_bernoulli_sampling_follows_each_class():
    from replay.priors.bernoulli import Bernoulli

    torch.manual_seed(0)
    prior = Bernoulli(3, n_classes=2)
    prior.observe_classes([0, 1])
    codes = torch.tensor([[1.0, 1.0, -1.0]] * 90 + [[-1.0, 1.0, -1.0]] * 10 + [[-1.0, -1.0, 1.0]] * 100)
    prior.end_experience(codes, torch.tensor([0] * 100 + [1] * 100))
    first = prior.sample(20_000, torch.zeros(20_000, dtype=torch.long))
    assert torch.allclose(first.mean(0), torch.tensor([0.8, 1.0, -1.0]), atol=0.03)
    second = prior.sample(1000, torch.ones(1000, dtype=torch.long))
    assert torch.equal(second, torch.tensor([[-1.0, -1.0, 1.0]]).expand(1000, 3))


def test_cg_bpef_discrete_kl_is_the_direct_sum_and_zero_at_the_prior():
    from replay.priors import CGBPEF
    from replay.priors.cg_bpef import GridPosterior

    def grid_posterior(logits):  # the mean plays no part in the KL
        return GridPosterior(torch.zeros(len(logits), 3), logits)

    torch.manual_seed(0)
    prior = CGBPEF(3, n_classes=2, resolution=11, order=4)
    with torch.no_grad():
        prior.coefficients.normal_()
    prior.observe_classes([0, 1])
    logits = torch.randn(5, 3, 11)
    labels = torch.tensor([0, 1, 1, 0, 1])
    kl = prior.regularizer(grid_posterior(logits), torch.zeros(5, 3), labels=labels)
    q = torch.softmax(logits, -1)
    p = torch.softmax(prior.coefficients @ prior.basis.T, -1)
    direct = torch.zeros(5)
    for b in range(5):
        for j in range(3):
            for r in range(11):
                direct[b] += q[b, j, r] * math.log(q[b, j, r] / p[labels[b], j, r])
    assert torch.allclose(kl, direct)
    own_logits = (prior.coefficients @ prior.basis.T)[labels].detach()
    assert torch.allclose(prior.regularizer(grid_posterior(own_logits), torch.zeros(5, 3), labels=labels),
                          torch.zeros(5), atol=1e-12)
    posterior = torch.distributions.Categorical(logits=logits.unsqueeze(1))
    per_class = torch.distributions.Categorical(probs=p.unsqueeze(0))
    class_kl = torch.distributions.kl_divergence(posterior, per_class).sum(-1)  # [5, 2], independent of ours
    assert torch.allclose(prior.class_kl(logits), class_kl, atol=1e-6)
    mixed = prior.regularizer(grid_posterior(logits), torch.zeros(5, 3), probs=torch.tensor([[0.3, 0.7]] * 5))
    assert torch.allclose(mixed, 0.3 * class_kl[:, 0] + 0.7 * class_kl[:, 1], atol=1e-6)


def test_gumbel_noise_has_the_gumbel_moments():
    from replay.priors.cg_bpef import gumbel_noise

    torch.manual_seed(0)
    g = gumbel_noise(torch.empty(400_000, dtype=torch.float64))
    assert torch.isfinite(g).all()
    assert g.mean().item() == pytest.approx(0.5772157, abs=0.01)  # Euler-Mascheroni constant
    assert g.var().item() == pytest.approx(math.pi ** 2 / 6, abs=0.02)


def test_cg_bpef_grid_head_sampling_and_annealing():
    from replay.priors import CGBPEF

    torch.manual_seed(0)
    prior = CGBPEF(2, n_classes=2, resolution=21, order=3, t_max=1.0, t_min=0.5, anneal_steps=10)
    assert torch.allclose(prior.points, torch.tensor([(2 * r - 22) / 20 for r in range(1, 22)]))
    head = prior.posterior_head(4)
    q = head(torch.randn(6, 4))
    assert q.logits.shape == (6, 2, 21) and torch.allclose(q.mean, torch.softmax(q.logits, -1) @ prior.points)
    assert prior.temperature == 1.0
    for _ in range(3):  # draws do not move the schedule; training steps do
        z = prior.reparameterize(q)
    assert prior.temperature == 1.0
    for step in range(10):
        prior.training_step()
        assert prior.temperature == pytest.approx(0.5 ** ((step + 1) / 10))
    prior.training_step()  # past anneal_steps: kept at t_min
    assert prior.temperature == pytest.approx(0.5) and z.abs().max() <= 1.0
    with torch.no_grad():
        prior.coefficients[1] = torch.tensor([2.0, 0.0, 0.0])  # logits 2 zeta: mass towards +1
    prior.observe_classes([1])
    samples = prior.sample(50_000, torch.ones(50_000, dtype=torch.long))
    probs = torch.softmax(2.0 * prior.points, 0)
    assert set(samples.unique().tolist()) <= set(prior.points.tolist())
    assert torch.allclose(samples.mean(0), (probs * prior.points).sum().expand(2), atol=0.01)
    with pytest.raises(ValueError, match="order < resolution - 1"):
        CGBPEF(2, n_classes=2, resolution=5, order=4)


def test_clustered_mapping_is_the_identity_on_sector_boundaries_and_continuous():
    from replay.priors import InteLClustered

    prior = InteLClustered(3, n_classes=4)  # boundaries at 0, 90, 180, 270 degrees
    boundary = torch.tensor([[2.0, 0.0, 0.3], [0.0, 1.5, -1.0], [-0.7, 0.0, 0.0], [0.0, 0.0, 0.0]])
    assert torch.allclose(prior.mapping(boundary), boundary, atol=1e-2)  # within eps^c2-level of identity
    for angle in (0.0, math.pi / 2, math.pi):  # approach a boundary from both sides
        sides = [prior.mapping(torch.tensor([[math.cos(angle + s), math.sin(angle + s), 0.0]])) for s in (-1e-6, 1e-6)]
        assert torch.allclose(sides[0], sides[1], atol=5e-3)
    inside = torch.tensor([[1.0, 1.0, 0.0]])  # sector 0's centre direction: pushed outwards along it
    moved = prior.mapping(inside)[0, :2]
    assert moved.norm() > inside[0, :2].norm() + 1 and torch.allclose(moved / moved.norm(), inside[0, :2] / inside[0, :2].norm())


def test_clustered_gradients_are_finite_at_boundaries_and_origin():
    from replay.priors import InteLClustered

    prior = InteLClustered(2, n_classes=3)
    y = torch.tensor([[0.0, 0.0], [1.0, 0.0], [-0.5, 0.8660254]], requires_grad=True)
    prior.mapping(y).sum().backward()
    assert torch.isfinite(y.grad).all()
    mu = y.detach().clone().requires_grad_(True)
    prior.regularizer(G(mu, torch.zeros(3, 2)), mu, labels=torch.tensor([0, 1, 2])).sum().backward()
    assert torch.isfinite(mu.grad).all()


def test_sector_conditional_sampling_lands_in_the_requested_sector():
    from replay.priors import InteLClustered

    torch.manual_seed(0)
    prior = InteLClustered(4, n_classes=5)
    prior.observe_classes(range(5))
    classes = torch.arange(5).repeat(400)
    z = prior.sample(len(classes), classes)
    index, _, _ = prior.sector_geometry(z[:, :2])
    assert torch.equal(index, classes)
    with pytest.raises(ValueError, match="has not been seen"):
        InteLClustered(4, n_classes=5).sample(2, torch.tensor([0, 1]))


def test_sparse_loss_rewards_sparser_codes_and_hoyer_measures_it():
    from replay.priors import InteLSparse
    from replay.priors.intel import hoyer

    prior = InteLSparse(6, gamma=1.0)
    sparse = torch.eye(6).repeat(4, 1) * 0.98 + 0.001  # each sample selects one (different) dimension
    dense = torch.full((24, 6), 0.5)
    assert prior.sparsity_loss(sparse).mean() < prior.sparsity_loss(dense).mean()
    same_dim = torch.zeros(24, 6).index_fill_(1, torch.tensor([0]), 0.98) + 0.001  # sparse but all the same dim
    assert prior.sparsity_loss(sparse).mean() < prior.sparsity_loss(same_dim).mean()
    codes = torch.randn(200, 8)
    one_hot = torch.zeros(200, 8).scatter_(1, torch.randint(8, (200, 1)), torch.randn(200, 1))
    assert float(hoyer(one_hot).mean()) > 0.99 and float(hoyer(codes).mean()) < 0.4
    z = prior.reparameterize(G(torch.randn(5, 6), torch.zeros(5, 6)))
    assert z.shape == (5, 6) and prior.sample(7).shape == (7, 6)
