"""Band selection on synthetic arrays (forecast.engine.lockstep.select): every band is the exact
order statistic x_(ceil(q n)) of a cell's finite values (numpy's method="inverted_cdf"),
for one process and for the population split over several processes (the bisection on
sortable keys, with the processes' all-gather replaced by a sum over the parts), with ties,
point masses, heavy tails, negative values, non-finite values and empty cells."""
import numpy as np
import pytest

from forecast.engine.lockstep import block_months
from forecast.engine.quantiles import count_at_or_below, from_keys, select, sortable_keys

Q = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)


def cells(n, rng):
    """(cells, n) float32 values with the hard cases."""
    rows = [rng.lognormal(0.0, 1.0, n),  # smooth
            np.exp(np.clip(rng.standard_cauchy(n) * 3.0, -80, 80))]  # heavy tails
    z = rng.lognormal(2.0, 0.5, n)
    z[rng.random(n) < 0.4] = 0.0  # a point mass at zero under the low quantiles
    rows.append(z)
    t = rng.normal(0.0, 1.0, n)
    t[rng.random(n) < 0.3] = 0.25  # an exact tie at an interior value
    rows.append(t)
    rows.append(-rng.lognormal(0.0, 2.0, n))  # negative values only
    rows.append(rng.integers(0, 5, n).astype(float))  # only five values
    w = rng.normal(0.0, 1.0, n)
    w[:7] = np.inf  # non-finite values, left out and counted apart
    w[100:103] = np.nan
    w[200:205] = -np.inf
    rows.append(w)
    rows.append(np.full(n, np.nan))  # no finite value: NaN bands
    return np.stack(rows).astype(np.float32)


def reference(x):
    out = np.full((x.shape[0], len(Q)), np.nan, np.float32)
    for c, row in enumerate(x):
        finite = row[np.isfinite(row)]
        if finite.size:
            out[c] = np.quantile(finite, Q, method="inverted_cdf")
    return out


def as_rows(x):
    """The kernel's layout: non-finite values as NaN."""
    return np.where(np.isfinite(x), x, np.nan).astype(np.float32)


@pytest.mark.parametrize("n, seed", [(20_000, 0), (1_001, 1), (3, 2)])
def test_one_process_reads_the_exact_order_statistics(n, seed):
    x = cells(n, np.random.default_rng(seed))
    got = select(as_rows(x), np.isfinite(x).sum(axis=1), Q)
    np.testing.assert_array_equal(got, reference(x))


@pytest.mark.parametrize("parts, seed", [(2, 3), (3, 4), (5, 5)])
def test_processes_find_the_one_process_values_by_bisection(parts, seed):
    """The population split unevenly over `parts` processes (one of them with no values of
    some cells): the bisection's values are bit-identical to one process's sort."""
    n = 6_000
    x = cells(n, np.random.default_rng(seed))
    cuts = np.sort(np.random.default_rng(seed + 10).choice(np.arange(1, n), parts - 1, replace=False))
    pieces = np.split(as_rows(x), cuts, axis=1)
    total = np.isfinite(x).sum(axis=1)
    # Run the parts in lockstep: each round every part's count, summed (the all-gather).
    import threading

    barrier = threading.Barrier(parts)
    slots = [None] * parts
    results = [None] * parts

    def worker(k):
        def gather(a):
            slots[k] = np.asarray(a, np.int64)
            barrier.wait()
            out = np.sum(slots, axis=0)
            barrier.wait()
            return out

        results[k] = select(pieces[k], total, Q, gather)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(parts)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    want = select(as_rows(x), total, Q)
    for got in results:
        np.testing.assert_array_equal(got.view(np.int32), want.view(np.int32))
    np.testing.assert_array_equal(want, reference(x))


def test_sortable_keys_order_like_the_values_and_invert():
    x = np.array([-np.inf, -3e38, -1.0, -1e-45, 0.0, 1e-45, 1.0, 3e38, np.inf], np.float32)
    k = sortable_keys(x)
    assert (np.diff(k.astype(np.int64)) > 0).all()
    np.testing.assert_array_equal(from_keys(k), x)


def test_counts_at_or_below_match_a_direct_count():
    rng = np.random.default_rng(6)
    x = np.sort(rng.integers(0, 20, (4, 50)).astype(np.float32), axis=1)
    finite = np.array([50, 49, 0, 17])
    pivot = rng.integers(-1, 21, (4, 3)).astype(np.float32)
    want = np.array([[np.sum(x[c, :finite[c]] <= p) for p in pivot[c]] for c in range(4)])
    np.testing.assert_array_equal(count_at_or_below(x, finite, pivot), want)


@pytest.mark.parametrize("n, months, series, budget, want", [
    (10_000, 120, 212, 250_000_000, 60),  # 10,000 x 120 x 212 = 2.5e8 > budget: 60 months
    (1_000, 120, 212, 250_000_000, 120),
    (100_000, 120, 212, 250_000_000, 10),
    (1_000_000, 120, 212, 250_000_000, 1),
    (1_000_000, 7, 212, 10, 1),
    (100, 7, 10, 5_000, 1),  # 7 is prime: one month a block
])
def test_blocks_are_the_largest_divisor_of_the_months_that_fits(n, months, series, budget, want):
    assert block_months(n, months, series, budget) == want
