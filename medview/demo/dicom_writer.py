"""CT Image Storage files for the demo series: one file per slice, explicit VR little endian.

pydicom encodes the header once, with fixed-width placeholders for the few attributes that
change per slice (SOP Instance UID, Instance Number, position); each slice's file is that
header with the placeholders overwritten, then the pixel bytes. Writing therefore costs
little more than the bytes themselves and holds the GIL only briefly, while the slices
render on other threads. Everything is derived from the seed and site (UIDs hashed from
them, a fixed fake date), never from the clock, so the same seed gives byte-identical files.
The patient is obviously synthetic by name and ID.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medview.demo.sites import Site

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
# (centre, width, name): the first is the default a viewer opens with.
WINDOW_PRESETS = (
    (50, 350, "MEDIASTINUM"),
    (-600, 1500, "LUNG"),
    (40, 400, "ABDOMEN"),
    (500, 2000, "BONE"),
)


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
    """A UUID-derived UID (PS3.5 B.2: "2.25." and a 128-bit integer) hashed from the seed,
    site and parts; always 38 digits, so every UID has the same length."""
    key = "\x1f".join(["medview-demo", str(seed), site, *map(str, parts)]).encode()
    v = int.from_bytes(hashlib.sha256(key).digest()[:16], "big")
    return f"2.25.{10**37 + v % (9 * 10**37)}"


def _z_text(z: float) -> str:
    """Fixed-width DS text for a z position (+/-dddd.dddd)."""
    return f"{z:+010.4f}"


_UID_PLACEHOLDER = "2.25." + "7" * 38
_NUMBER_PLACEHOLDER = "0000"
_Z_PLACEHOLDER = _z_text(0.0)


def study_date(seed: int) -> str:
    """A fixed date derived from the seed (clearly not today's)."""
    return (dt.date(2001, 1, 1) + dt.timedelta(days=seed % 3650)).strftime("%Y%m%d")


class SeriesWriter:
    """Writes slices of one series; `write(k, pixels)` for each index k (0 = inferior)."""

    def __init__(
        self,
        folder: Path,
        seed: int,
        site: Site,
        geo: SeriesGeometry,
        description: str,
        days_later: int = 0,
    ) -> None:
        """`days_later`: a follow-up's study, that many days after the seed's (its own date
        and UIDs, the same patient)."""
        from pydicom.dataset import Dataset, FileMetaDataset
        from pydicom.uid import UID, ExplicitVRLittleEndian

        self.folder, self.seed, self.site, self.geo = folder, seed, site, geo
        self._later = (f"after {days_later} days",) if days_later else ()
        n = len(geo.z_positions)
        self._digits = max(4, len(str(n)))
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = UID(CT_IMAGE_STORAGE)
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        date = (
            dt.datetime.strptime(study_date(seed), "%Y%m%d").date() + dt.timedelta(days=days_later)
        ).strftime("%Y%m%d")
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
        ds.StudyInstanceUID = uid(seed, site.key, "study", *self._later)
        ds.SeriesInstanceUID = uid(seed, site.key, "series", *self._later)
        self.study_uid, self.series_uid = ds.StudyInstanceUID, ds.SeriesInstanceUID
        ds.StudyID = f"DEMO{seed}"
        ds.SeriesNumber = 2 if site.key == "b" else 1
        ds.AcquisitionNumber = 1
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.FrameOfReferenceUID = uid(seed, site.key, "frame")
        ds.PositionReferenceIndicator = ""
        ds.ImageComments = (
            f"Synthetic image made by MedView's demo generator (seed {seed}, "
            f"{site.key}); not a patient"
        )
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
        self._n = n
        self._header, self._slots = self._template(ds)

    def _template(self, ds) -> tuple[bytes, list[tuple[int, str]]]:
        """Encode the header with placeholders; find where each placeholder's bytes are."""
        from io import BytesIO

        from pydicom import dcmwrite

        geo = self.geo
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = _UID_PLACEHOLDER
        ds.InstanceNumber = _NUMBER_PLACEHOLDER
        ds.ImagePositionPatient = [
            round(geo.origin_xy[0], 4),
            round(geo.origin_xy[1], 4),
            _Z_PLACEHOLDER,
        ]
        ds.SliceLocation = _Z_PLACEHOLDER
        n_pixel_bytes = 2 * geo.rows * geo.cols
        ds.PixelData = bytes(n_pixel_bytes)
        out = BytesIO()
        dcmwrite(out, ds, enforce_file_format=True)
        header = out.getvalue()[:-n_pixel_bytes]
        slots = []
        for tag, text, kind in (
            (b"\x02\x00\x03\x00UI", _UID_PLACEHOLDER, "uid"),
            (b"\x08\x00\x18\x00UI", _UID_PLACEHOLDER, "uid"),
            (b"\x20\x00\x13\x00IS", _NUMBER_PLACEHOLDER, "number"),
            (b"\x20\x00\x32\x00DS", _Z_PLACEHOLDER, "z"),
            (b"\x20\x00\x41\x10DS", _Z_PLACEHOLDER, "z"),
        ):
            at = header.find(text.encode(), header.find(tag))
            if header.find(tag) < 0 or at < 0:
                raise RuntimeError(f"placeholder for {kind} not found in the DICOM template")
            slots.append((at, kind))
        if not header.endswith(b"\xe0\x7f\x10\x00OW\x00\x00" + n_pixel_bytes.to_bytes(4, "little")):
            raise RuntimeError("pixel data is not the last element of the DICOM template")
        return header, slots

    def filename(self, k: int) -> str:
        """File of array index k; numbered from the top (head) down, as scanners do."""
        return f"IM{self._n - k:0{self._digits}d}.dcm"

    def write(self, k: int, pixels: np.ndarray) -> None:
        number = self._n - k
        values = {
            "uid": uid(self.seed, self.site.key, "image", number, *self._later).encode(),
            "number": f"{number:04d}".encode(),
            "z": _z_text(self.geo.z_positions[k]).encode(),
        }
        buf = bytearray(self._header)
        for at, kind in self._slots:
            v = values[kind]
            buf[at : at + len(v)] = v
        with open(self.folder / self.filename(k), "wb") as f:
            f.write(buf)
            f.write(np.ascontiguousarray(pixels, "<i2").tobytes())
