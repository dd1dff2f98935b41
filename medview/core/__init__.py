"""The domain: records and pure functions, standard library and numpy only."""
