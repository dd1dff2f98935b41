"""The 3D view's VTK scene, without Qt: the volume rendered with a transfer function, the
label layers as surfaces in their colours, a clipping box, the crosshair as a marker, and a
pick that turns a screen point into a voxel index.

VTK renders into its own off-screen OpenGL context (EGL on a headless Linux, GLX with a
display, WGL or Cocoa elsewhere) and hands back the frame as an array, which the Qt widget
(`ui.volume_view`) paints: the same code then runs on any Qt platform (xcb, Wayland, the
tests' offscreen one), and the view's pixels can be grabbed like any widget's. Mouse events
reach VTK's own trackball camera through a vtkGenericRenderWindowInteractor.

Every actor carries `grid_to_lps` as its user matrix, so VTK's world is patient LPS in mm:
the camera looks from the front with the head up, and a picked point is an LPS point that
the volume's own affine turns back into a voxel index. Only the VTK modules listed in
packaging/bundle_filter.py (VTK_MODULES) may be imported here: the bundle carries no others.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy.ndimage import map_coordinates

# imported for their object factories: VTK's OpenGL render window and volume ray caster
from vtkmodules import vtkRenderingOpenGL2, vtkRenderingVolumeOpenGL2  # noqa: F401
from vtkmodules.util.numpy_support import numpy_to_vtk, vtk_to_numpy
from vtkmodules.vtkCommonCore import vtkCommand, vtkLookupTable
from vtkmodules.vtkCommonDataModel import vtkImageData, vtkPiecewiseFunction, vtkPlane
from vtkmodules.vtkCommonMath import vtkMatrix4x4
from vtkmodules.vtkFiltersGeneral import vtkDiscreteFlyingEdges3D
from vtkmodules.vtkFiltersSources import vtkSphereSource
from vtkmodules.vtkInteractionStyle import vtkInteractorStyleTrackballCamera
from vtkmodules.vtkRenderingCore import (
    vtkAbstractMapper,
    vtkActor,
    vtkCellPicker,
    vtkColorTransferFunction,
    vtkPolyDataMapper,
    vtkRenderer,
    vtkRenderWindow,
    vtkVolume,
    vtkVolumeProperty,
    vtkWindowToImageFilter,
)
from vtkmodules.vtkRenderingUI import vtkGenericRenderWindowInteractor
from vtkmodules.vtkRenderingVolume import vtkGPUVolumeRayCastMapper

from medview.core.volume import Volume
from medview.viewer.layers import OverlayLayer
from medview.viewer.volume_presets import VolumePreset, grid_to_lps

BACKGROUND = (0.0, 0.0, 0.0)
CURSOR_COLOUR = (1.0, 0.85, 0.1)  # the slice views' crosshair yellow
Box = tuple[float, float, float, float, float, float]  # LPS (xmin, xmax, ymin, ymax, zmin, zmax)


def gl_problem() -> str:
    """'' when VTK can make an OpenGL 3.2 context here, else the sentence to show: the
    3D view needs one, and VTK aborts the process on some drivers when it cannot."""
    window = vtkRenderWindow()
    window.SetOffScreenRendering(True)
    if window.SupportsOpenGL():
        window.Finalize()
        return ""
    return (
        "The 3D view needs OpenGL 3.2, which this machine's graphics driver does not "
        "provide (on Linux install Mesa: libgl1-mesa-dri, libegl1)."
    )


def _image_data(array: np.ndarray) -> vtkImageData:
    """`array` (slice, row, col) as VTK image data on the unit grid (x = col), sharing its
    memory: the caller keeps the array alive as long as the image data."""
    image = vtkImageData()
    slices, rows, cols = array.shape
    image.SetDimensions(cols, rows, slices)
    scalars = numpy_to_vtk(array.reshape(-1), deep=False)
    image.GetPointData().SetScalars(scalars)
    return image


def _matrix(m: np.ndarray) -> vtkMatrix4x4:
    out = vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            out.SetElement(r, c, float(m[r, c]))
    return out


def _box_planes(box: Box) -> list[vtkPlane]:
    """Six planes whose inner sides (VTK keeps the side a normal points to) hold `box`."""
    planes = []
    for axis in range(3):
        for bound, sign in ((box[2 * axis], 1.0), (box[2 * axis + 1], -1.0)):
            plane = vtkPlane()
            origin, normal = [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]
            origin[axis], normal[axis] = bound, sign
            plane.SetOrigin(origin)
            plane.SetNormal(normal)
            planes.append(plane)
    return planes


class VolumeScene:
    """One renderer in one off-screen render window; `on_frame(rgb)` receives every frame
    rendered (by `render` or by the interactor while the reader turns the view)."""

    def __init__(self, on_frame: Callable[[np.ndarray], None] | None = None) -> None:
        self.on_frame = on_frame
        self.volume: Volume | None = None
        self.lps_box: Box | None = None  # the volume's extent in LPS
        self.clip: Box | None = None
        self._arrays: list[np.ndarray] = []  # memory the volume's VTK image data shares
        self._label_arrays: list[np.ndarray] = []  # and the surfaces' (remade with them)
        self.window = vtkRenderWindow()
        self.window.SetOffScreenRendering(True)
        self.window.SetSize(400, 400)
        self.renderer = vtkRenderer()
        self.renderer.SetBackground(*BACKGROUND)
        self.window.AddRenderer(self.renderer)
        self.interactor = vtkGenericRenderWindowInteractor()
        self.interactor.SetRenderWindow(self.window)
        self.interactor.SetInteractorStyle(vtkInteractorStyleTrackballCamera())
        self.interactor.Initialize()
        self._grabber = vtkWindowToImageFilter()
        self._grabber.SetInput(self.window)
        self._grabber.SetInputBufferTypeToRGB()
        self._grabber.ReadFrontBufferOff()
        self._grabber.ShouldRerenderOff()
        self.window.AddObserver(vtkCommand.EndEvent, self._frame_done)
        self.picker = vtkCellPicker()
        self.picker.SetTolerance(0.0005)
        self.volume_prop: vtkVolume | None = None
        self.preset: VolumePreset | None = None
        self._unit = 1.0  # mm: the smallest voxel side, the opacity's unit distance
        self._software: bool | None = None
        self.surfaces: list[vtkActor] = []
        self.cursor_actor = self._cursor_marker()
        self.renderer.AddActor(self.cursor_actor)

    @property
    def software(self) -> bool:
        """Whether OpenGL here is Mesa's software renderer (llvmpipe, softpipe): the
        volume is then ray cast at a quarter of the rays (set_volume)."""
        if self._software is None:
            self.window.Render()  # the context exists once rendered
            report = self.window.ReportCapabilities().lower()
            self._software = any(name in report for name in ("llvmpipe", "softpipe", "swrast"))
        return self._software

    # -- frames
    def resize(self, width: int, height: int) -> None:
        width, height = max(1, width), max(1, height)
        self.window.SetSize(width, height)
        self.interactor.UpdateSize(width, height)

    def render(self) -> np.ndarray:
        """Render now; the frame as (height, width, 3) uint8, top row first."""
        self.window.Render()
        return self._last

    def _frame_done(self, _obj: object, _event: str) -> None:
        self._grabber.Modified()
        self._grabber.Update()
        out = self._grabber.GetOutput()
        width, height, _ = out.GetDimensions()
        pixels = vtk_to_numpy(out.GetPointData().GetScalars()).reshape(height, width, 3)
        self._last = np.ascontiguousarray(pixels[::-1])
        if self.on_frame is not None:
            self.on_frame(self._last)

    # -- content
    def set_volume(self, volume: Volume) -> None:
        """Show `volume` (grey values; colour images get no volume rendering), clear the
        surfaces and the clip, and look at it from the front, head up."""
        self.clear()
        self.volume = volume
        self._unit = float(min(volume.spacing_mm))
        matrix = _matrix(grid_to_lps(volume.affine))
        corners = np.array(
            [[x, y, z, 1.0] for x in (0, 1) for y in (0, 1) for z in (0, 1)], float
        ) * [volume.shape[2] - 1, volume.shape[1] - 1, volume.shape[0] - 1, 1]
        lps = (grid_to_lps(volume.affine) @ corners.T).T[:, :3]
        lo, hi = lps.min(axis=0), lps.max(axis=0)
        self.lps_box = (lo[0], hi[0], lo[1], hi[1], lo[2], hi[2])
        if not volume.is_colour:
            array = np.ascontiguousarray(volume.array)
            self._arrays.append(array)
            mapper = vtkGPUVolumeRayCastMapper()
            mapper.SetInputData(_image_data(array))
            if self.software:
                # one ray per 2 x 2 pixels, one sample per voxel side: a quarter of the
                # work of VTK's default (measured on Mesa llvmpipe, 512 x 512 x 300 CT in a
                # 700 x 450 view: 2.0 s of CPU a frame instead of 7-9 s)
                mapper.AutoAdjustSampleDistancesOff()
                mapper.SetImageSampleDistance(2.0)
                mapper.SetSampleDistance(self._unit)
            prop = vtkVolume()
            prop.SetMapper(mapper)
            prop.SetUserMatrix(matrix)
            self.volume_prop = prop
            self.renderer.AddVolume(prop)
        self.reset_camera()

    def clear(self) -> None:
        if self.volume_prop is not None:
            self.renderer.RemoveVolume(self.volume_prop)
        self.volume_prop = None
        self.set_surfaces([])
        self._arrays = []
        self.volume = None
        self.clip = None

    def reset_camera(self) -> None:
        """From the front (anterior, LPS -y), head (+z) up: the patient's left on the right
        of the screen, as when facing them and as the coronal view shows it."""
        if self.lps_box is None:
            return
        b = self.lps_box
        centre = np.array([(b[0] + b[1]) / 2, (b[2] + b[3]) / 2, (b[4] + b[5]) / 2])
        camera = self.renderer.GetActiveCamera()
        camera.SetFocalPoint(*centre)
        camera.SetPosition(*(centre - [0.0, 1000.0, 0.0]))
        camera.SetViewUp(0.0, 0.0, 1.0)
        self.renderer.ResetCamera(*b)

    def set_preset(self, preset: VolumePreset) -> None:
        self.preset = preset
        if self.volume_prop is None:
            return
        opacity = vtkPiecewiseFunction()
        for value, alpha in preset.opacity:
            opacity.AddPoint(value, alpha)
        colour = vtkColorTransferFunction()
        for value, r, g, b in preset.colour:
            colour.AddRGBPoint(value, r, g, b)
        prop = vtkVolumeProperty()
        prop.SetScalarOpacity(opacity)
        prop.SetColor(colour)
        prop.SetInterpolationTypeToLinear()
        prop.ShadeOn()
        prop.SetAmbient(0.2)
        prop.SetDiffuse(0.8)
        prop.SetSpecular(0.2)
        # opacity per unit length: the same look at any voxel size
        prop.SetScalarOpacityUnitDistance(self._unit)
        self.volume_prop.SetProperty(prop)

    def set_volume_visible(self, visible: bool) -> None:
        if self.volume_prop is not None:
            self.volume_prop.SetVisibility(visible)

    def set_surfaces(self, layers: Sequence[OverlayLayer]) -> None:
        """One surface actor per label layer (discrete flying edges over every label value
        it holds but those hidden with alpha 0), each label in the layer's colour."""
        for actor in self.surfaces:
            self.renderer.RemoveActor(actor)
        self.surfaces = []
        self._label_arrays = []
        if self.volume is None:
            return
        matrix = _matrix(grid_to_lps(self.volume.affine))
        for layer in layers:
            array = np.ascontiguousarray(np.asarray(layer.array), dtype=np.uint8)
            counts = np.bincount(array.reshape(-1), minlength=256)
            values = [
                v
                for v in (np.flatnonzero(counts[1:]) + 1).tolist()
                if len(layer.colour_of(v)) < 4 or layer.colour_of(v)[3] > 0
            ]
            if not values:
                continue
            self._label_arrays.append(array)
            edges = vtkDiscreteFlyingEdges3D()
            edges.SetInputData(_image_data(array))
            for i, v in enumerate(values):
                edges.SetValue(i, float(v))
            edges.ComputeScalarsOn()
            edges.ComputeNormalsOn()
            table = vtkLookupTable()
            table.SetNumberOfTableValues(256)
            table.SetTableRange(0, 255)
            for value in range(256):
                rgb = layer.colour_of(value) if value else (0, 0, 0)
                table.SetTableValue(value, rgb[0] / 255, rgb[1] / 255, rgb[2] / 255, 1.0)
            table.Build()
            mapper = vtkPolyDataMapper()
            mapper.SetInputConnection(edges.GetOutputPort())
            mapper.SetLookupTable(table)
            mapper.SetScalarRange(0, 255)
            mapper.SetColorModeToMapScalars()
            mapper.InterpolateScalarsBeforeMappingOff()
            actor = vtkActor()
            actor.SetMapper(mapper)
            actor.SetUserMatrix(matrix)
            self.surfaces.append(actor)
            self.renderer.AddActor(actor)
        self._apply_clip()

    def set_clip(self, box: Box | None) -> None:
        """Clip the volume and the surfaces to `box` (LPS mm); None shows everything."""
        self.clip = box
        self._apply_clip()

    def _apply_clip(self) -> None:
        mappers: list[vtkAbstractMapper] = [a.GetMapper() for a in self.surfaces]
        if self.volume_prop is not None:
            mappers.append(self.volume_prop.GetMapper())
        for mapper in mappers:
            mapper.RemoveAllClippingPlanes()
            for plane in _box_planes(self.clip) if self.clip else []:
                mapper.AddClippingPlane(plane)

    # -- crosshair
    def _cursor_marker(self) -> vtkActor:
        sphere = vtkSphereSource()
        sphere.SetThetaResolution(16)
        sphere.SetPhiResolution(16)
        mapper = vtkPolyDataMapper()
        mapper.SetInputConnection(sphere.GetOutputPort())
        actor = vtkActor()
        actor.SetMapper(mapper)
        actor.GetProperty().SetColor(*CURSOR_COLOUR)
        actor.PickableOff()
        actor.VisibilityOff()
        self._sphere = sphere
        return actor

    def set_cursor(self, lps: np.ndarray | None) -> None:
        """The crosshair point as a small sphere (about two voxels across); None hides it."""
        self.cursor_actor.SetVisibility(lps is not None and self.volume is not None)
        if lps is not None and self.volume is not None:
            self._sphere.SetCenter(*map(float, lps))
            self._sphere.SetRadius(1.5 * float(max(self.volume.spacing_mm)))

    def pick(self, x: float, y: float) -> np.ndarray | None:
        """The LPS point under display point (x, y) (y counted from the top, in the render
        window's pixels) that the reader sees there: the nearer of the first surface hit
        and the volume's visible point (volume_hit); None where nothing is drawn."""
        height = self.window.GetSize()[1]
        hits = []
        if self.surfaces:
            self.picker.InitializePickList()
            for actor in self.surfaces:
                self.picker.AddPickList(actor)
            self.picker.PickFromListOn()
            if self.picker.Pick(x, height - 1 - y, 0.0, self.renderer):
                hits.append(np.array(self.picker.GetPickPosition(), float))
        near, far = self._ray(x, height - 1 - y)
        point = self.volume_hit(near, far)
        if point is not None:
            hits.append(point)
        if not hits:
            return None
        return min(hits, key=lambda p: float(np.linalg.norm(p - near)))

    def _ray(self, x: float, y: float) -> tuple[np.ndarray, np.ndarray]:
        """World (LPS) points on the near and far clipping planes under display (x, y)."""
        out = []
        for depth in (0.0, 1.0):
            self.renderer.SetDisplayPoint(x, y, depth)
            self.renderer.DisplayToWorld()
            w = self.renderer.GetWorldPoint()
            out.append(np.array(w[:3], float) / w[3])
        return out[0], out[1]

    def volume_hit(self, near: np.ndarray, far: np.ndarray) -> np.ndarray | None:
        """Where the ray near -> far has gathered half its opacity through the volume as
        the preset draws it (front-to-back compositing of the scalar opacity, per unit
        distance as the renderer applies it), inside the clip box: the point the reader
        sees. VTK's own volume pick stops at the first sample over a fixed opacity, which
        is the faint skin in a bone preset. None with the volume hidden or not hit."""
        prop, volume, box = self.volume_prop, self.volume, self.clip or self.lps_box
        if prop is None or not prop.GetVisibility() or self.preset is None:
            return None
        if volume is None or box is None:
            return None
        unit = self._unit
        length = float(np.linalg.norm(far - near))
        steps = np.arange(0.0, length, unit / 2) / length
        points = near + np.outer(steps, far - near)
        inside = np.ones(len(points), bool)
        for axis in range(3):
            lo, hi = box[2 * axis], box[2 * axis + 1]
            inside &= (points[:, axis] >= lo) & (points[:, axis] <= hi)
        if not inside.any():
            return None
        first, last = np.flatnonzero(inside)[[0, -1]]
        points = points[first : last + 1]
        to_grid = np.linalg.inv(grid_to_lps(volume.affine))
        xyz = (to_grid @ np.c_[points, np.ones(len(points))].T)[:3]
        xs, alphas = np.array(self.preset.opacity, float).T
        outside = float(xs[0]) - 1.0  # left of the table: transparent
        values = map_coordinates(volume.array, xyz[::-1], output=np.float32, order=1, cval=outside)
        alpha = np.interp(values, xs, alphas, left=0.0, right=float(alphas[-1]))
        alpha = 1.0 - (1.0 - np.clip(alpha, 0.0, 1.0)) ** 0.5  # half a unit per step
        seen = 1.0 - np.cumprod(1.0 - alpha)
        reached = np.flatnonzero(seen >= 0.5)
        return points[reached[0]] if reached.size else None

    def display_point(self, lps: Sequence[float]) -> tuple[float, float]:
        """Where LPS point `lps` lands in the frame: (x, y), y counted from the top."""
        self.renderer.SetWorldPoint(*map(float, lps), 1.0)
        self.renderer.WorldToDisplay()
        x, y, _ = self.renderer.GetDisplayPoint()
        return x, self.window.GetSize()[1] - 1 - y

    def close(self) -> None:
        """Free the OpenGL context now (not whenever Python collects the scene)."""
        self.clear()
        self.window.Finalize()
