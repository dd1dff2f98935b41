"""A 300-slice 512 x 512 CT series for benchmarks, uncompressed or RLE, written once and
reused (same content every run so numbers compare across runs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def make_ct_series(folder: Path, n: int = 300, size: int = 512, rle: bool = False) -> Path:
    """Write the series into `folder` unless a complete copy is already there."""
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, RLELossless, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    if len(list(folder.glob("*.dcm"))) == n:
        return folder
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    body = ((yy - size / 2) / (0.4 * size)) ** 2 + ((xx - size / 2) / (0.45 * size)) ** 2 < 1
    study, series, frame = (
        generate_uid(entropy_srcs=[f"bench-{k}-{rle}"]) for k in ("study", "series", "for")
    )
    for i in range(n):
        img = np.where(body, 1024 + 40, 0).astype(np.uint16)
        img += rng.integers(0, 30, img.shape, dtype=np.uint16) * body.astype(np.uint16)
        img[size // 4 : size // 4 + 20, size // 2 + (i % 50)] = 2000
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[f"bench-{rle}-{i}"])
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.PatientName, ds.PatientID = "CT", "Bench^Mark", "BENCH"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.SeriesNumber, ds.InstanceNumber = 1, n - i  # reverse of position: sorting matters
        ds.ImagePositionPatient = [-180.0, -180.0, -300.0 + 1.0 * i]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [0.7, 0.7]
        ds.SliceThickness = 1.0
        ds.Rows = ds.Columns = size
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
        ds.PixelData = img.tobytes()
        if rle:
            ds.compress(RLELossless, encoding_plugin="pydicom", generate_instance_uid=False)
        pydicom.dcmwrite(folder / f"{i * 7919 % n:05d}.dcm", ds, enforce_file_format=True)
    return folder
