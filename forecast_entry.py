"""The `forecast` console script: the command line (forecast.cli) behind a guard that
turns Ctrl-C at any moment, start-up included (importing jax takes a few seconds), into
one line and exit code 130. A module outside the forecast package, so that nothing heavy is
imported before the guard is in place.

On Linux the script first re-executes itself once with glibc's malloc asking for
transparent huge pages (GLIBC_TUNABLES=glibc.malloc.hugetlb=1): every kernel call
allocates ~100 MB of XLA temporaries per batch of 8192, and faulting them in 4 kB pages
cost a fifth of a CPU run's time at one-month blocks (benchmarks/NOTES.md, session 20:
2e5 trajectories 299-319 s -> 228 s, bit-identical). Not where the user set
glibc.malloc.hugetlb already, nor with FORECAST_HUGEPAGES=0; harmless where glibc is older
than 2.35 or huge pages are off."""
import os
import signal
import sys

MESSAGE = "interrupted: nothing written"
HUGEPAGES = "glibc.malloc.hugetlb=1"


def hugepages():
    """Re-execute this process once with HUGEPAGES added to GLIBC_TUNABLES (see above);
    returns where there is nothing to do."""
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    if (not sys.platform.startswith("linux") or os.environ.get("FORECAST_HUGEPAGES", "1") == "0"
            or "glibc.malloc.hugetlb" in tunables):
        return
    env = dict(os.environ, GLIBC_TUNABLES=":".join(t for t in (tunables, HUGEPAGES) if t))
    sys.stdout.flush()
    sys.stderr.flush()
    # A Ctrl-C during the new interpreter's start waits, blocked (the mask and pending
    # signals survive exec), until main's guard is in place and unblocks it.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    os.execve(sys.executable, list(sys.orig_argv), env)


def main():
    hugepages()
    hit = []
    # While the modules load, Ctrl-C is only noted (raised there, it may land in an import's
    # callback and be dropped); the command is not started if it came.
    signal.signal(signal.SIGINT, lambda signum, frame: hit.append(signum))
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # blocked across hugepages' exec
    from forecast.cli import main as command

    if hit:
        sys.stderr.write(MESSAGE + "\n")
        sys.exit(130)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # the command group re-sends dropped ones
    try:
        command()
    except KeyboardInterrupt:  # between the command's own handling and the exit
        sys.stderr.write(MESSAGE + "\n")
        sys.exit(130)


if __name__ == "__main__":
    main()
