"""The band passes on synthetic arrays: every band a value of known rank, exactly as the
engine's reducers and host planning compute it, with ties, point masses and heavy tails
that force every refinement path (pass C included) - checked against exact order
statistics; and the one pass of a small run, which must give those order statistics."""
import jax.numpy as jnp
import numpy as np
import pytest

from forecast.run import band_passes
from kernels import reduce

Q = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)


def synthetic_sweep(x, log_scale, batch):
    """A sweep over stored (month, trajectory, series) values: the kernel's reducers, batch
    by batch, merged as forecast.run merges them."""
    months, n_all, _ = x.shape
    mask = jnp.asarray(log_scale)
    merges = {"sum": np.add, "min": np.minimum, "max": np.maximum}
    calls = []

    def sweep(name, reducer, consts, config, merge, unit0, units, n=None, each=None, state=None, everywhere=False):
        calls.append(name)
        n = n_all if n is None else n
        host = None
        for start in range(0, n, batch):
            xb = x[:, start:start + batch]
            valid = jnp.ones(xb.shape[1], bool)
            finite = np.isfinite(xb).all(axis=(0, 2))
            per_month = []
            for t in range(months):
                xt = jnp.asarray(xb[t])
                yt = reduce.transform(xt, mask)
                per_month.append(reduce.REDUCERS[reducer](xt, yt, jnp.asarray(xb[0]), valid,
                                                          tuple(jnp.asarray(c[t]) for c in consts), config))
            ys = {k: np.stack([np.asarray(m[k]) for m in per_month]) for k in per_month[0]}
            ys["finite"] = np.int64(finite.sum())
            if each is not None:
                each({k: v for k, v in ys.items() if k not in merge})
            part = {k: np.asarray(ys[k], np.int64) if merge[k] == "sum" else ys[k] for k in merge}
            host = part if host is None else {k: merges[merge[k]](host[k], part[k]) for k in merge}
        return host

    return sweep, calls


def series(n, rng):
    """(n, series) float32 values with the hard cases, and their log-scale flags."""
    cols, logs = [], []
    cols.append(rng.lognormal(0.0, 1.0, n)); logs.append(True)  # smooth
    cols.append(np.exp(np.clip(rng.standard_cauchy(n) * 3.0, -80, 80))); logs.append(True)  # heavy tails
    z = rng.lognormal(2.0, 0.5, n)
    z[rng.random(n) < 0.4] = 0.0  # a point mass at zero under the low quantiles
    cols.append(z); logs.append(True)
    t = rng.normal(0.0, 1.0, n)
    t[rng.random(n) < 0.3] = 0.25  # an exact tie at an interior value
    cols.append(t); logs.append(False)
    # 60% of the values packed into a range far narrower than a pass-B sub-bin, all
    # distinct: the sub-bins holding the central targets hold thousands of values.
    d = rng.normal(0.0, 1.0, n)
    dense = rng.random(n) < 0.6
    d[dense] = 0.5 + np.sort(rng.random(dense.sum())) * 1e-4
    cols.append(d); logs.append(False)
    cols.append(rng.integers(0, 5, n).astype(float)); logs.append(False)  # only five values
    return np.stack(cols, axis=1).astype(np.float32), np.array(logs)


@pytest.mark.parametrize("n, seed", [(20_000, 0), (4_000, 1)])
def test_bands_on_synthetic_arrays_are_values_of_known_rank(n, seed):
    rng = np.random.default_rng(seed)
    months = 2
    parts = [series(n, rng) for _ in range(months)]
    x = np.stack([p[0] for p in parts])  # (month, trajectory, series)
    log_scale = parts[0][1]
    batch = 3000
    sweep, calls = synthetic_sweep(x, log_scale, batch)
    out = band_passes(sweep, months, x.shape[2], log_scale, n, -(-n // batch), Q, exact=0)
    assert "pass C" in out["passes"] and calls == ["pilot", "pass A", "pass B", "pass C"]
    values, errors = out["values"], out["errors"]
    for t in range(months):
        for j in range(x.shape[2]):
            ref = np.sort(x[t, :, j])
            for k, q in enumerate(Q):
                lo = ref[int(np.ceil((q - 1e-4) * n)) - 1]
                hi = ref[int(np.ceil((q + 1e-4) * n)) - 1]
                v = values[t, j, k]
                assert lo <= v <= hi, (t, j, q, v, lo, hi)
                assert v in ref  # a simulated value
                # The reported rank error bounds the true one: 0 where v's ranks (ties
                # included) cover the target. It can overstate it where float32 ties sit
                # inside the last sub-bin (the dense series here): v is exact there
                # although the counts cannot show it.
                r = int(np.ceil(q * n))
                first, last = np.searchsorted(ref, v) + 1, np.searchsorted(ref, v, side="right")
                true = max(first - r, r - last, 0) / n
                assert true <= 1e-4 + 1.0 / n
                assert errors[t, j, k] >= true - 1e-12
                if j != 4:
                    assert errors[t, j, k] <= 1e-4 + 1.0 / n, (t, j, q)
    # Moments and counts are exact over every value.
    np.testing.assert_allclose(out["moments"].mean, x.astype(np.float64).mean(axis=1), rtol=1e-4, atol=1e-6)
    assert out["acc"]["finite"] == n
    np.testing.assert_array_equal(out["acc"]["zero"], (x == 0).sum(axis=1))


def test_one_pass_gives_the_exact_order_statistics():
    """A run whose values fit keeps them all: one sweep, bands equal to x_(ceil(q n)) of the
    finite values of each cell (NaN and infinities left out and counted), rank error 0."""
    rng = np.random.default_rng(2)
    n, months, batch = 5_000, 2, 1_500
    parts = [series(n, rng) for _ in range(months)]
    x = np.stack([p[0] for p in parts])
    log_scale = parts[0][1]
    x[1, :7, 0] = np.inf  # non-finite values in one cell...
    x[0, 100:103, 3] = np.nan
    x[:, :, 5] = np.nan  # ...and a series with none finite
    sweep, calls = synthetic_sweep(x, log_scale, batch)
    out = band_passes(sweep, months, x.shape[2], log_scale, n, -(-n // batch), Q, exact=x.size)
    assert calls == ["one pass"] and out["passes"] == ["one pass"]
    for t in range(months):
        for j in range(x.shape[2]):
            finite = np.sort(x[t, :, j][np.isfinite(x[t, :, j])])
            m = finite.size
            for k, q in enumerate(Q):
                want = finite[int(np.ceil(q * m)) - 1] if m else np.nan
                np.testing.assert_equal(out["values"][t, j, k], want, err_msg=(t, j, q))
    assert not out["errors"].any()
    np.testing.assert_array_equal(out["hist"].sum(axis=2), np.isfinite(x).sum(axis=1))
    finite = np.where(np.isfinite(x), x, np.nan).astype(np.float64)
    np.testing.assert_allclose(out["moments"].mean[:, :5], np.nanmean(finite[..., :5], axis=1), rtol=1e-4, atol=1e-6)
    # One value more than the limit: the counting passes run instead.
    sweep, calls = synthetic_sweep(x[..., :5], log_scale[:5], batch)
    band_passes(sweep, months, 5, log_scale[:5], n, -(-n // batch), Q, exact=n * months * 5 - 1)
    assert calls[0] == "pilot"
