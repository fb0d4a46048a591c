"""SAFE archives (full Sentinel-2 L2A products from DHuS hubs and Copernicus OData).

:func:`safe_extract` unpacks a zipped SAFE without trusting the archive: every
member is checked *before* anything is written (absolute paths, drive letters,
``..`` components, symbolic links, device files, names that resolve outside the
target, absurd sizes are refused), files are extracted into a staging folder
inside the target and the product folder is renamed into place last, so an
interrupted or refused extraction leaves no product behind and nothing is ever
written outside ``target_dir``.

:func:`item_from_safe` turns an unpacked product into a :class:`pystac.Item` with
Earth Search band names, local hrefs, ``proj:*`` from the files and radiometry from
the product's own ``MTD_MSIL2A.xml`` (:func:`pipeline.harmonise.scaling_from_metadata`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import stat
import uuid
import zipfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import pystac
import rasterio
import rasterio.warp
import shapely.geometry

from ..errors import DownloadError, MissingBandError, UnsafeArchiveError
from ..harmonise import read_product_metadata, scaling_from_metadata

__all__ = [
    "file_checksum",
    "item_from_safe",
    "safe_extract",
]

#: Earth Search band -> (resolution folder, ESA file tag) inside ``IMG_DATA``.
SAFE_BANDS: dict[str, tuple[str, str]] = {
    "coastal": ("R60m", "B01_60m"), "blue": ("R10m", "B02_10m"), "green": ("R10m", "B03_10m"),
    "red": ("R10m", "B04_10m"), "rededge1": ("R20m", "B05_20m"), "rededge2": ("R20m", "B06_20m"),
    "rededge3": ("R20m", "B07_20m"), "nir": ("R10m", "B08_10m"), "nir08": ("R20m", "B8A_20m"),
    "nir09": ("R60m", "B09_60m"), "swir16": ("R20m", "B11_20m"), "swir22": ("R20m", "B12_20m"),
    "scl": ("R20m", "SCL_20m"),
}
#: Refuse archives that would unpack to more than this (a real L2A SAFE is ~1.2 GB).
MAX_UNPACKED_BYTES = 8 * 1024**3


def safe_extract(archive: str | Path, target_dir: str | Path, *, max_bytes: int = MAX_UNPACKED_BYTES) -> Path:
    """Unpack a zipped product into ``target_dir``; return the product folder.

    The archive must hold exactly one top-level folder (``<name>.SAFE``). When that
    folder already exists in ``target_dir`` it is returned as is (idempotent re-runs).

    Raises
    ------
    UnsafeArchiveError
        A member has an absolute path or drive letter, a ``..`` component, is a symbolic
        link or special file, resolves outside ``target_dir``, or the total size exceeds
        ``max_bytes``. Nothing is written in that case.
    """
    archive, target = Path(archive), Path(target_dir)
    target.mkdir(parents=True, exist_ok=True)
    root = target.resolve()
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as exc:
        raise UnsafeArchiveError(f"{archive.name} is not a zip archive: {exc}") from None
    with zf:
        members = zf.infolist()
        tops = _check_members(members, root, archive.name, max_bytes)
        if len(tops) != 1:
            raise UnsafeArchiveError(f"{archive.name}: expected one product folder, found {sorted(tops)}")
        top = tops.pop()
        final = root / top
        if final.is_dir():
            return final
        staging = root / f".{top}.partial-{uuid.uuid4().hex[:8]}"
        staging.mkdir()
        try:
            for info in members:
                rel = PurePosixPath(info.filename)
                dest = staging.joinpath(*rel.parts)
                if info.is_dir():
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(dest, "xb") as out:
                    shutil.copyfileobj(src, out, 1024 * 1024)
            os.replace(staging / top, final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return final


def _check_members(members: Sequence[zipfile.ZipInfo], root: Path, name: str, max_bytes: int) -> set[str]:
    total = 0
    tops: set[str] = set()
    for info in members:
        raw = info.filename
        if "\x00" in raw or "\\" in raw:
            raise UnsafeArchiveError(f"{name}: member {raw!r} has a backslash or NUL in its name")
        rel = PurePosixPath(raw)
        if rel.is_absolute() or (rel.parts and (len(rel.parts[0]) == 2 and rel.parts[0][1] == ":")):
            raise UnsafeArchiveError(f"{name}: member {raw!r} has an absolute path; refusing to unpack")
        if any(part == ".." for part in rel.parts):
            raise UnsafeArchiveError(f"{name}: member {raw!r} climbs out with '..'; refusing to unpack")
        kind = stat.S_IFMT(info.external_attr >> 16)  # 0: no Unix type recorded (a plain file)
        if kind == stat.S_IFLNK:
            raise UnsafeArchiveError(f"{name}: member {raw!r} is a symbolic link; refusing to unpack")
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise UnsafeArchiveError(f"{name}: member {raw!r} is a special file; refusing to unpack")
        resolved = (root / Path(*rel.parts)).resolve() if rel.parts else root
        if not resolved.is_relative_to(root) or resolved == root:
            raise UnsafeArchiveError(f"{name}: member {raw!r} resolves outside the target folder")
        total += info.file_size
        if total > max_bytes:
            raise UnsafeArchiveError(f"{name}: unpacks to more than {max_bytes} bytes; refusing (zip bomb?)")
        tops.add(rel.parts[0])
    return tops


def file_checksum(path: str | Path, algorithm: str) -> str:
    """Hex digest of ``path`` with ``algorithm`` (``MD5``, ``SHA3-256``, ``BLAKE3``...)."""
    algo = algorithm.lower().replace("_", "-")
    if algo == "blake3":
        import blake3  # optional; callers fall back to MD5 when it is missing

        h = blake3.blake3()
    else:
        h = hashlib.new(algo.replace("-", "_") if algo.startswith("sha3") else algo)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1024 * 1024), b""):
            h.update(block)
    return str(h.hexdigest())


def item_from_safe(
    safe_dir: str | Path,
    *,
    bands: Sequence[str],
    template: pystac.Item | None = None,
) -> pystac.Item:
    """An item for an unpacked L2A product: local band hrefs, proj:*, MTD radiometry.

    ``template`` (the search result) provides id, datetime, geometry and properties;
    without it they come from the metadata and the first band file.

    Raises
    ------
    MissingBandError
        A requested band has no file in ``GRANULE/*/IMG_DATA``.
    DownloadError
        The product has no ``MTD_MSIL2A.xml`` (not an L2A product, or a broken download).
    """
    safe = Path(safe_dir)
    mtd_path = safe / "MTD_MSIL2A.xml"
    if not mtd_path.is_file():
        raise DownloadError(f"{safe.name}: no MTD_MSIL2A.xml; not a complete Sentinel-2 L2A product")
    meta = read_product_metadata(mtd_path)
    files = {p.name: p for p in safe.glob("GRANULE/*/IMG_DATA/R*m/*") if p.is_file()}
    if template is not None:
        item = template.clone()
    else:
        item = pystac.Item(safe.name.removesuffix(".SAFE"), None, None,
                           dt.datetime.now(dt.UTC), {})
    item.properties["s2:processing_baseline"] = f"{meta.baseline[0]:02d}.{meta.baseline[1]:02d}"
    item.properties["s2:product_uri"] = meta.product_uri or safe.name
    ext = "https://stac-extensions.github.io/projection/v1.1.0/schema.json"
    if ext not in item.stac_extensions:
        item.stac_extensions.append(ext)
    assets: dict[str, pystac.Asset] = {k: v for k, v in item.assets.items() if k not in SAFE_BANDS}
    for band in bands:
        folder, tag = SAFE_BANDS.get(band, ("", band))
        match = next((p for n, p in sorted(files.items())
                      if p.parent.name == folder and n.rsplit(".", 1)[0].endswith(f"_{tag}")), None)
        if match is None:
            raise MissingBandError(f"{safe.name}: no {tag} file for band {band!r} under GRANULE/*/IMG_DATA/{folder}")
        with rasterio.open(match) as ds:
            epsg = ds.crs.to_epsg() if ds.crs else None
            shape = [ds.height, ds.width]
            transform = list(ds.transform)[:6]
            bounds = rasterio.warp.transform_bounds(ds.crs, "EPSG:4326", *ds.bounds) if ds.crs else None
            dtype = ds.dtypes[0]
        scaling = scaling_from_metadata(meta, band)
        asset = pystac.Asset(str(match.resolve()), media_type=pystac.MediaType.JPEG2000
                             if match.suffix.lower() == ".jp2" else pystac.MediaType.GEOTIFF,
                             roles=["data"])
        asset.extra_fields.update({
            "proj:epsg": epsg, "proj:shape": shape, "proj:transform": transform,
            "raster:bands": [{"nodata": scaling.nodata, "data_type": dtype, "scale": scaling.scale,
                              "offset": scaling.offset, "kp:scaling_source": scaling.source}],
        })
        assets[band] = asset
        if item.geometry is None and bounds is not None:
            item.geometry = shapely.geometry.mapping(shapely.geometry.box(*bounds))
            item.bbox = list(bounds)
    item.assets = {}
    for key, asset in assets.items():
        item.add_asset(key, asset)
    return item
