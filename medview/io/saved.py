"""Where MedView keeps what the reader saves: the one module that joins paths onto the data
folder (workspace.data_dir(); MEDVIEW_DATA_DIR overrides it). Every layer asks here, so the
layout can be read in one place and cannot drift apart between the viewer, the engine and
the panels (it was computed in six places in four layers):

    labels/<series>/                 a series' label map, history and status (io.labels)
    measurements/<series>.json       the measurements drawn on a series (viewer)
    findings/<series>.json           accept / reject decisions on AI findings (viewer)
    models/<name>/<version>/         fine-tuned and imported model versions (ai.models)
    models/active.json               which version of each model is active
    training/<base>-<time>/          a fine-tune's work folder: job, checkpoint, run record
    training/cache/                  studies prepared as arrays, shared by runs
    training/replay/                 the bundled models' rehearsal studies, generated once
    training/discarded/              runs the reader discarded (moved beside the run)
    pacs/                            PACS nodes, the study index, received files (net)
    settings.ini                     the application's settings (ui.settings)
    protocols.json                   the reader's hanging protocols (viewer.protocols)
    patient_salt                     this installation's salt of patient keys (io.patient_key)
    demo/seed<seed>-site<site>/      the demo study `medview demo` generates

<series> is workspace.safe_name(series key). This is the layout MedView has always written;
it must not change, or a reader's earlier work would seem gone (tests/io/test_saved.py)."""

from __future__ import annotations

import time
from pathlib import Path

from medview.io.workspace import data_dir, safe_name


def root() -> Path:
    """The data folder itself (a training job naming it means its labels)."""
    return data_dir()


def labels_dir() -> Path:
    return data_dir() / "labels"


def measurements_file(series_key: str) -> Path:
    return data_dir() / "measurements" / f"{safe_name(series_key)}.json"


def findings_file(series_key: str) -> Path:
    return data_dir() / "findings" / f"{safe_name(series_key)}.json"


def models_dir() -> Path:
    return data_dir() / "models"


def active_models_file() -> Path:
    return models_dir() / "active.json"


def training_dir() -> Path:
    return data_dir() / "training"


def new_run_dir(base: str) -> Path:
    """A new fine-tune's work folder, named for its base model and the time it started."""
    return training_dir() / f"{base.replace(':', '-')}-{time.strftime('%Y%m%d-%H%M%S')}"


def training_cache_dir() -> Path:
    return training_dir() / "cache"


def replay_dir() -> Path:
    return training_dir() / "replay"


def pacs_dir() -> Path:
    return data_dir() / "pacs"


def settings_file() -> Path:
    return data_dir() / "settings.ini"


def protocols_file() -> Path:
    return data_dir() / "protocols.json"


def patient_salt_file() -> Path:
    return data_dir() / "patient_salt"


def demo_dir(seed: int, site: str) -> Path:
    return data_dir() / "demo" / f"seed{seed}-site{site}"
