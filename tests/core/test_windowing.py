import numpy as np

from medview.core.windowing import CT_PRESETS, Window, auto_window, default_window


def test_presets_have_standard_values():
    by_name = {w.name: (w.width, w.center) for w in CT_PRESETS}
    assert by_name["Lung"] == (1500, -600)
    assert by_name["Mediastinum"] == (350, 50)
    assert by_name["Bone"] == (2000, 500)
    assert Window(-600, 1500).bounds == (-1350, 150)


def test_auto_window_spans_the_percentiles():
    data = np.arange(10001, dtype=np.float32).reshape(1, 1, -1)
    w = auto_window(data)
    lo, hi = w.bounds
    assert abs(lo - 10) < 2 and abs(hi - 9990) < 2


def test_default_window_prefers_the_file():
    assert default_window("CT", [(30.0, 300.0)]).center == 30.0
    assert default_window("CT", []).name == "Abdomen"
    assert default_window("MR", [], np.arange(100.0).reshape(1, 10, 10)).name == "Auto"
