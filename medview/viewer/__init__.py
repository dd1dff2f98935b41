"""View state without Qt: planes, slices, windows, measurements. `ui` draws what this holds."""
