"""The `forecast` console script: the command line (forecast.cli) behind a guard that
turns Ctrl-C at any moment, start-up included (importing jax takes a few seconds), into
one line and exit code 130. A module outside the forecast package, so that nothing heavy is
imported before the guard is in place."""
import signal
import sys

MESSAGE = "interrupted: nothing written"


def main():
    hit = []
    # While the modules load, Ctrl-C is only noted (raised there, it may land in an import's
    # callback and be dropped); the command is not started if it came.
    signal.signal(signal.SIGINT, lambda signum, frame: hit.append(signum))
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
