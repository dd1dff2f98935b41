"""Headless commands behind `medview <command>`; each is one function over io and jobs."""
