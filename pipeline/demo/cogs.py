"""Writing Cloud-Optimized GeoTIFFs: Sentinel-2 DN bands and SCL, Sentinel-1 gamma0, any array."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from pyproj import CRS

from .conventions import ASSETS, BANDS_10M, BANDS_20M, DN_OFFSET, DN_SCALE, S1_BANDS, S1_NODATA
from .render import _Frame
from .scene import _Grid


def _write_frame_cogs(frame: _Frame, grid: _Grid, item_dir: Path) -> None:
    nodata10 = np.repeat(np.repeat(frame.nodata20, 2, 0), 2, 1)
    for band, arr in zip(BANDS_10M, frame.refl10, strict=True):
        _write_cog(item_dir / f"{ASSETS[band][0]}.tif", _to_dn(arr, nodata10),
                   grid.transform, grid.epsg)
    for band, arr in zip(BANDS_20M, frame.refl20, strict=True):
        _write_cog(item_dir / f"{ASSETS[band][0]}.tif", _to_dn(arr, frame.nodata20),
                   grid.transform20, grid.epsg)
    _write_cog(item_dir / "SCL.tif", frame.scl, grid.transform20, grid.epsg, resampling="nearest")


def _write_s1_cogs(gamma0: np.ndarray, grid: _Grid, item_dir: Path) -> None:
    for band, arr in zip(S1_BANDS, gamma0, strict=True):
        # Overviews average linear power (= multilooking), never dB.
        _write_cog(item_dir / f"{band}.tif", arr, grid.transform, grid.epsg,
                   nodata=S1_NODATA, predictor=3)


def _to_dn(refl: np.ndarray, nodata: np.ndarray) -> np.ndarray:
    dn = np.clip(np.rint((refl - DN_OFFSET) / DN_SCALE), 1, 65535).astype(np.uint16)
    dn[nodata] = 0
    return dn


def _write_cog(path: Path, arr: np.ndarray, transform: Affine, epsg: int, *,
               resampling: str = "average", nodata: float | None = 0, predictor: int = 2) -> None:
    profile = dict(driver="COG", width=arr.shape[1], height=arr.shape[0], count=1,
                   dtype=arr.dtype.name, crs=CRS.from_epsg(epsg), transform=transform,
                   nodata=nodata, compress="DEFLATE", predictor=predictor, blocksize=256,
                   overview_resampling=resampling)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(arr, 1)
