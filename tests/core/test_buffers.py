import numpy as np

from medview.core.buffers import empty_populated


def test_large_buffer_is_writable_with_the_right_shape():
    a = empty_populated((20, 512, 512), np.int16)
    assert a.shape == (20, 512, 512) and a.dtype == np.int16 and a.flags.writeable
    a[...] = 7
    assert int(a.sum()) == 7 * a.size
    assert a.flags.c_contiguous


def test_small_buffer_is_plain_numpy():
    a = empty_populated((2, 3), np.float32)
    assert a.shape == (2, 3) and a.dtype == np.float32
