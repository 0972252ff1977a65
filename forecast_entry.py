"""The `forecast` console script: the command line (forecast.cli) behind a guard that
turns Ctrl-C during its start-up (importing jax takes a few seconds) into one line and exit
code 130, as it is everywhere else. A module outside the forecast package, so that nothing
heavy is imported before the guard is in place."""
import sys


def main():
    try:
        from forecast.cli import INTERRUPTED, main as command
    except KeyboardInterrupt:
        sys.stderr.write("interrupted: nothing written\n")
        sys.exit(130)
    try:
        command()
    except KeyboardInterrupt:  # between click's handling and the exit
        sys.stderr.write(INTERRUPTED + "\n")
        sys.exit(130)


if __name__ == "__main__":
    main()
