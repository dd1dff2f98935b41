"""Fixtures of the main-window tests, shared by every GUI test in this folder."""

from tests.ui.ai_panel_fixtures import ai_volume, models, viewer  # noqa: F401
from tests.ui.annotation_fixtures import labelled  # noqa: F401
from tests.ui.main_window_fixtures import data_dir, two_series, window  # noqa: F401
from tests.ui.training_fixtures import train_panel, train_studies  # noqa: F401
