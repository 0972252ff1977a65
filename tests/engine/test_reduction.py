"""The run's reduction (forecast.engine.bands): a Block of batches merges into Bands with
the population's exact order statistics, exact counts and its mean and standard deviation,
whatever the batches' sizes and the order they arrive in; Bands go to a checkpoint's
arrays and back bit for bit."""
import numpy as np

from forecast.engine.bands import COUNTS, Bands, Block

QS = (0.05, 0.5, 0.95)


def batch(x):
    """One batch's block outputs as kernels.reduce's lockstep reducer gives them: values
    (months, series, trajectories), exact counts and moments (scale 1) per (month, series)."""
    finite = np.isfinite(x)
    n = finite.sum(axis=-1)
    mean = np.where(n > 0, np.nansum(x, axis=-1) / np.maximum(n, 1), 0.0)
    m2 = np.nansum(np.where(finite, (x - mean[..., None]) ** 2, 0.0), axis=-1)
    counts = {"count": n, "nonfinite": (~finite).sum(axis=-1), "positive": (x > 0).sum(axis=-1),
              "zero": (x == 0).sum(axis=-1), "above_start": (x > x[:1]).sum(axis=-1)}
    return dict(values=x.astype(np.float32), **{k: v.astype(np.int64) for k, v in counts.items()},
                mean=mean, m2=m2, scale=np.ones_like(mean), finite=int(finite.all(axis=(0, 1)).sum()))


def test_a_block_merges_into_the_populations_exact_bands():
    rng = np.random.default_rng(1)
    months, series, sizes = 3, 4, (5, 7, 2)
    xs = [rng.lognormal(size=(months, series, k)).astype(np.float32) for k in sizes]
    xs[1][0, 2, 3] = np.nan  # a non-finite value is left out of its cell
    bands = Bands.empty(months, series, len(QS), 0)
    block = Block(0, months, series, sum(sizes))
    offsets = np.cumsum((0,) + sizes)
    for i in (2, 0, 1):  # arrival order does not matter
        block.add(i, batch(xs[i].astype(np.float64)), sizes[i], offsets[i])
    block.into(bands, QS)
    everyone = np.concatenate(xs, axis=-1).astype(np.float64)
    for t in range(months):
        for s in range(series):
            cell = everyone[t, s][np.isfinite(everyone[t, s])]
            want = np.quantile(cell.astype(np.float32), QS, method="inverted_cdf")
            np.testing.assert_array_equal(bands.values[t, s], want)
    np.testing.assert_array_equal(bands.count, np.isfinite(everyone).sum(axis=-1))
    np.testing.assert_array_equal(bands.nonfinite, (~np.isfinite(everyone)).sum(axis=-1))
    np.testing.assert_allclose(bands.moments.mean, np.nanmean(everyone, axis=-1), rtol=1e-6)
    np.testing.assert_allclose(bands.moments.std, np.nanstd(everyone, axis=-1, ddof=1), rtol=1e-6)
    assert bands.finite == sum(sizes) - 1


def test_bands_go_to_a_checkpoint_and_back_bit_for_bit():
    rng = np.random.default_rng(2)
    bands = Bands.empty(2, 3, len(QS), 4)
    bands.values[:] = rng.normal(size=bands.values.shape)
    for k in COUNTS:
        getattr(bands, k)[:] = rng.integers(0, 50, (2, 3))
    bands.moments.mean[:] = rng.normal(size=(2, 3))
    bands.sample[:] = rng.normal(size=bands.sample.shape)
    bands.sample_params["param0/g_hw"] = rng.normal(size=4)
    saved = {k: np.array(v) for k, v in bands.dump().items()}
    again = Bands.empty(2, 3, len(QS), 4)
    again.load(saved)
    for k, v in bands.dump().items():
        assert again.dump()[k].tobytes() == np.asarray(v).tobytes(), k
