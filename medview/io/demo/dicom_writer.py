"""CT Image Storage files for the demo series: one file per slice, explicit VR little endian.

The header is built once and only the per-slice attributes change, which keeps writing near
the cost of the pixel bytes. Everything is derived from the seed and site (UIDs hashed from
them, a fixed fake date), never from the clock, so the same seed gives byte-identical files.
The patient is obviously synthetic by name and ID.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medview.io.demo.sites import Site

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
# (centre, width, name): the first is the default a viewer opens with.
WINDOW_PRESETS = ((50, 350, "MEDIASTINUM"), (-600, 1500, "LUNG"), (40, 400, "ABDOMEN"),
                  (500, 2000, "BONE"))


@dataclass(frozen=True)
class SeriesGeometry:
    """Where the slices are: row/column spacing, slice positions along z (index 0 is the
    most inferior slice, as in SimpleITK's array order), and the top-left pixel's x, y."""

    pixel_mm: float
    rows: int
    cols: int
    origin_xy: tuple[float, float]
    z_positions: tuple[float, ...]
    thickness_mm: float

    def affine(self) -> np.ndarray:
        """(slice, row, col) index -> LPS mm, in the array order of the label volume."""
        a = np.zeros((4, 4))
        a[3, 3] = 1.0
        a[2, 0] = self.thickness_mm
        a[1, 1] = self.pixel_mm
        a[0, 2] = self.pixel_mm
        a[:3, 3] = (self.origin_xy[0], self.origin_xy[1], self.z_positions[0])
        return a


def uid(seed: int, site: str, *parts: object) -> str:
    from pydicom.uid import generate_uid

    return generate_uid(entropy_srcs=["medview-demo", str(seed), site, *map(str, parts)])


def study_date(seed: int) -> str:
    """A fixed date derived from the seed (clearly not today's)."""
    return (dt.date(2001, 1, 1) + dt.timedelta(days=seed % 3650)).strftime("%Y%m%d")


class SeriesWriter:
    """Writes slices of one series; `write(k, pixels)` for each index k (0 = inferior)."""

    def __init__(self, folder: Path, seed: int, site: Site, geo: SeriesGeometry,
                 description: str) -> None:
        from pydicom.dataset import Dataset, FileMetaDataset
        from pydicom.uid import ExplicitVRLittleEndian

        self.folder, self.seed, self.site, self.geo = folder, seed, site, geo
        n = len(geo.z_positions)
        self._digits = max(4, len(str(n)))
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        date = study_date(seed)
        tag = f"{seed:06d}-{site.key.upper()}"
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.SOPClassUID = CT_IMAGE_STORAGE
        ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = date
        ds.StudyTime = ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = "120000"
        ds.AccessionNumber = ""
        ds.Modality = "CT"
        ds.Manufacturer = "MedView"
        ds.InstitutionName = site.institution
        ds.ReferringPhysicianName = ""
        ds.StationName = f"SYNTH{site.key.upper()}"
        ds.StudyDescription = "Synthetic demo CT chest and abdomen"
        ds.SeriesDescription = description
        ds.ManufacturerModelName = site.manufacturer_model
        ds.PatientName = f"SYNTHETIC^DEMO {tag}"
        ds.PatientID = f"SYNTH-{tag}"
        ds.PatientBirthDate = ""
        ds.PatientSex = "O"
        ds.BodyPartExamined = "CHEST"
        if site.contrast:
            ds.ContrastBolusAgent = "Iohexol 350 mgI/mL (simulated portal venous phase)"
            ds.ContrastBolusRoute = "IV"
        ds.SliceThickness = geo.thickness_mm
        ds.KVP = site.kvp
        ds.DataCollectionDiameter = 500
        ds.SoftwareVersions = "medview-demo 1"
        ds.ReconstructionDiameter = round(geo.pixel_mm * geo.cols, 2)
        ds.GantryDetectorTilt = 0
        ds.TableHeight = 150
        ds.RotationDirection = "CW"
        ds.XRayTubeCurrent = site.tube_current_ma
        ds.ConvolutionKernel = site.kernel
        ds.PatientPosition = "HFS"
        ds.StudyInstanceUID = uid(seed, site.key, "study")
        ds.SeriesInstanceUID = uid(seed, site.key, "series")
        ds.StudyID = f"DEMO{seed}"
        ds.SeriesNumber = 2 if site.key == "b" else 1
        ds.AcquisitionNumber = 1
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.FrameOfReferenceUID = uid(seed, site.key, "frame")
        ds.PositionReferenceIndicator = ""
        ds.ImageComments = (f"Synthetic image made by MedView's demo generator (seed {seed}, "
                            f"{site.key}); not a patient")
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = geo.rows
        ds.Columns = geo.cols
        ds.PixelSpacing = [geo.pixel_mm, geo.pixel_mm]
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.WindowCenter = [w[0] for w in WINDOW_PRESETS]
        ds.WindowWidth = [w[1] for w in WINDOW_PRESETS]
        ds.RescaleIntercept = 0
        ds.RescaleSlope = 1
        ds.RescaleType = "HU"
        ds.WindowCenterWidthExplanation = [w[2] for w in WINDOW_PRESETS]
        self._ds = ds
        self._n = n

    def filename(self, k: int) -> str:
        """File of array index k; numbered from the top (head) down, as scanners do."""
        return f"IM{self._n - k:0{self._digits}d}.dcm"

    def write(self, k: int, pixels: np.ndarray) -> None:
        from pydicom import dcmwrite

        ds = self._ds
        number = self._n - k
        z = self.geo.z_positions[k]
        ds.SOPInstanceUID = uid(self.seed, self.site.key, "image", number)
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = number
        ds.ImagePositionPatient = [round(self.geo.origin_xy[0], 4),
                                   round(self.geo.origin_xy[1], 4), round(z, 4)]
        ds.SliceLocation = round(z, 4)
        ds.PixelData = np.ascontiguousarray(pixels, "<i2").tobytes()
        dcmwrite(self.folder / self.filename(k), ds, enforce_file_format=True)
