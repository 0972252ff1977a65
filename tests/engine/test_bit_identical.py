"""Moving code must not move a number: a fixed-seed run and a fixed-seed comparison give the
recorded bits (sha256 of every variable's values), on the machine they were recorded on.

XLA's CPU code differs between processors and jax versions in its last bits, so the record
carries its fingerprint (jax, jaxlib, Python, machine, CPU model) and elsewhere the test is
skipped with that reason. After a change meant to move numbers (a model change), record
anew and say so in the commit: `python tests/engine/test_bit_identical.py --record`."""
import hashlib
import json
import platform
import sys
from pathlib import Path

import jax
import jaxlib
import pytest

RECORD = Path(__file__).parents[1] / "data" / "bit_identical.json"
CASES = {
    # the shipped calibration's draw table, one scenario, every output and the sample
    "run": lambda forecast, sc: forecast.run(sc.with_months(sc.load("baseline"), 12), n_trajectories=600, seed=20261207),
    # several scenarios: the scenarios' blocks and the paired differences' blocks
    "compare": lambda forecast, sc: forecast.compare(
        [sc.with_months(sc.load(name), 12) for name in ("baseline", "moratorium")], n_trajectories=600, seed=7),
}


def fingerprint() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() \
        else platform.processor()
    return {"jax": jax.__version__, "jaxlib": jaxlib.__version__, "python": platform.python_version(),
            "machine": platform.machine(), "cpu": model}


def digests(ds) -> dict:
    return {name: hashlib.sha256(ds[name].values.tobytes()).hexdigest() for name in sorted(ds.data_vars)}


def compute() -> dict:
    import forecast
    from forecast import scenario

    return {case: digests(make(forecast, scenario)) for case, make in CASES.items()}


@pytest.mark.slow  # two compiles and runs, ~80 s: run it alone after moving code
@pytest.mark.skipif(not RECORD.exists() or json.loads(RECORD.read_text())["fingerprint"] != fingerprint()
                    or jax.default_backend() != "cpu",
                    reason="the bits were recorded on another CPU, jax or Python (see the record's fingerprint)")
def test_outputs_are_the_recorded_bits():
    want = json.loads(RECORD.read_text())["digests"]
    got = compute()
    for case in CASES:
        assert set(got[case]) == set(want[case]), case
        moved = [name for name in want[case] if got[case][name] != want[case][name]]
        assert not moved, f"{case}: {len(moved)} variables changed, first {moved[:5]}"


if __name__ == "__main__":
    if "--record" not in sys.argv:
        sys.exit("usage: python tests/engine/test_bit_identical.py --record")
    RECORD.parent.mkdir(exist_ok=True)
    RECORD.write_text(json.dumps({"fingerprint": fingerprint(), "digests": compute()}, indent=1, sort_keys=True)
                      + "\n")
    print(f"recorded {sum(len(v) for v in json.loads(RECORD.read_text())['digests'].values())} digests in {RECORD}")
