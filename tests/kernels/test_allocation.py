"""Water-filling against a NumPy bisection reference, and the guarantee reserve's tier order
(the menu's allocation is tested in tests/kernels/test_menu.py)."""
import jax.numpy as jnp
import numpy as np

from kernels import allocation


def reference_fill(d, w, c):
    if d.sum() <= c:
        return np.ones_like(d)
    lo, hi = 0.0, 1e12
    for _ in range(200):
        lam = 0.5 * (lo + hi)
        if (d * np.minimum(1, lam * w)).sum() > c:
            hi = lam
        else:
            lo = lam
    return np.minimum(1, lo * w)


def test_waterfill_matches_bisection():
    rng = np.random.default_rng(0)
    for _ in range(200):
        d = rng.lognormal(0, 2, 5)
        w = rng.uniform(0.05, 1, 5)
        c = d.sum() * rng.uniform(0.05, 1.5)
        fill = np.asarray(allocation.waterfill(jnp.asarray(d, jnp.float32), jnp.asarray(w, jnp.float32),
                                               jnp.float32(c)))
        assert np.all((fill >= 0) & (fill <= 1))
        assert (d * fill).sum() <= c * (1 + 1e-5)
        np.testing.assert_allclose(fill, reference_fill(d, w, c), atol=2e-4)


def test_guarantee_reserve_serves_tiers_in_order():
    """A region's reserve (by_priority) serves its tiers strictly in order: trusted, then
    enterprise, then consumer."""
    d = jnp.array([[1.0, 1.0, 1.0], [2.0, 1.0, 1.0]])
    served = np.asarray(allocation.by_priority(d, jnp.array([1.5, 2.5])))
    np.testing.assert_allclose(served, [[1.0, 0.5, 0.0], [2.0, 0.5, 0.0]])
