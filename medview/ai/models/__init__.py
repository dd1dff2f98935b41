"""Model cards, the fp-stage file format and the registry of bundled and user models: plain
files and JSON, no torch, so the UI and the command line can list models without loading one."""
