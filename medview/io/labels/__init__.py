"""The reader's labels on disk: the per-series store and its journal, autosave, the catalog
of studies marked done, label file formats and matching a label map to a series."""
