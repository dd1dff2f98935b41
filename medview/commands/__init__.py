"""Headless commands behind `medview <command>`; each is one function over io and jobs."""

# Exit statuses every command shares: 0 done, 1 bad input, 2 usage error.
EXIT_OK, EXIT_BAD_INPUT, EXIT_USAGE = 0, 1, 2
