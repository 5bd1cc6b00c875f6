"""Arrays bigger than memory, in and out: Zarr stores, tiled TIFFs and .npy files read lazily
as Dask arrays x (N, C, H, W), and outputs written chunk by chunk into a temporary Zarr store
(or .npy) beside the destination, renamed into place only when whole.

    big.zarr              a Zarr array (or a group holding one array)
    big.zarr::component   the array `component` of a Zarr group
    slide.tif             a TIFF (its full-resolution level), samples last, 8/16-bit -> [0, 1]

Needs the dask extra (pip install 'convcli[dask]'); imported only by a chunked run.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .errors import InputError
from .images import LoadedImage, load_image, to_gray
from .outputs import destination, umask

Array = NDArray[Any]
TIFF = (".tif", ".tiff")


def is_store(path: str | os.PathLike[str]) -> bool:
    """A Zarr store: NAME.zarr, or STORE::COMPONENT."""
    text = str(path)
    return "::" in text or Path(text.rstrip("/")).suffix.lower() == ".zarr"


def split(path: str | os.PathLike[str]) -> tuple[Path, str | None]:
    """"big.zarr::y" -> (Path("big.zarr"), "y"); "big.zarr" -> (Path("big.zarr"), None)."""
    store, _, component = str(path).partition("::")
    return Path(store), component or None


def require(what: str) -> Any:
    """The zarr module, or an InputError naming the extra that brings it."""
    try:
        import zarr
    except ImportError:
        raise InputError(f"{what} needs Zarr: pip install 'convcli[dask]'") from None
    return zarr


def open_lazy(path: str | os.PathLike[str], *, dtype: np.dtype[Any], gray: bool,
              chunks: tuple[int, int] | None, max_pixels: int | None = None) -> LoadedImage:
    """The image at path as a lazy x (N, C, H, W) of dtype: a Zarr array or .npy values as
    they are ((H, W), (C, H, W) or (N, C, H, W)), a TIFF's 8/16-bit samples mapped to [0, 1];
    a picture of another format is read whole. chunks: rows and columns per chunk (default:
    the store's own)."""
    import dask.array as da

    suffix, scale = Path(str(path)).suffix.lower(), None
    if is_store(path):
        array, source = _zarr_input(path)
    elif suffix in TIFF:
        array, source, scale = _tiff_input(Path(path))
    elif suffix == ".npy":
        array = np.load(_readable(Path(path)), mmap_mode="r", allow_pickle=False)
        source = f"{path} (.npy, values as they are)"
    else:
        picture = load_image(path, gray=False, dtype=dtype, max_pixels=max_pixels)
        array, source = picture.array, picture.source
    if array.ndim not in (2, 3, 4):
        raise InputError(f"{path} has shape {array.shape}; an image array must be (H, W), "
                         "(C, H, W) or (N, C, H, W)")
    if array.dtype.kind not in "fiub":
        raise InputError(f"{path} holds {array.dtype} values; an image must hold numbers")
    lazy = array if isinstance(array, da.Array) else da.from_array(array, asarray=False,
                                                                   chunks=_chunking(array))
    lazy = lazy.reshape((1,) * (4 - lazy.ndim) + lazy.shape)
    if chunks is not None:
        lazy = lazy.rechunk({0: 1, 1: -1, 2: chunks[0], 3: chunks[1]})
    lazy = lazy.astype(dtype) if scale is None else lazy.astype(dtype) / dtype.type(scale)
    loaded = LoadedImage(lazy, source, path=Path(str(path)))
    if gray and lazy.shape[1] > 1:
        loaded.notes.append("converted to one channel (luma 0.299 R + 0.587 G + 0.114 B)"
                            if lazy.shape[1] == 3 else "converted to one channel (mean)")
        loaded.array = to_gray(lazy).astype(dtype)
    return loaded


def _readable(path: Path) -> Path:
    if not path.exists():
        raise InputError(f"image {path} does not exist: check the path")
    return path


def _chunking(array: Any) -> tuple[Any, ...]:
    """The store's own rows and columns per chunk (2048 for an array without chunks), whole
    batch and channel axes."""
    own = getattr(array, "chunks", None)
    spatial = tuple(own[-2:]) if own is not None else (2048, 2048)
    return tuple([-1] * (array.ndim - 2)) + spatial


def _zarr_input(path: str | os.PathLike[str]) -> tuple[Any, str]:
    zarr = require("reading a Zarr store")
    store, component = split(path)
    _readable(store)
    try:
        opened = zarr.open(str(store), mode="r", path=component) if component else \
            zarr.open(str(store), mode="r")
    except (FileNotFoundError, KeyError, ValueError, TypeError) as error:
        raise InputError(f"cannot open {path} as a Zarr array ({error}): give a Zarr store, "
                         "or STORE::COMPONENT for an array inside a group") from None
    if not hasattr(opened, "shape"):                         # a group, searched all through
        names = sorted(name for name, member in _members(opened) if hasattr(member, "shape"))
        if len(names) != 1:
            listed = ", ".join(f"{store}::{name}" for name in names) or "none"
            raise InputError(f"{store} is a Zarr group with {len(names)} arrays; name one "
                             f"(arrays: {listed})")
        opened = opened[names[0]]
        component = names[0]
    name = f"{store}::{component}" if component else str(store)
    return opened, f"{name} (Zarr {opened.dtype}, values as they are)"


def _members(group: Any) -> list[tuple[str, Any]]:
    """Every member of a Zarr group, nested ones as "sub/name"."""
    try:
        return list(group.members(max_depth=None))
    except TypeError:                                    # an older Zarr: direct members only
        return list(group.members())


def _tiff_input(path: Path) -> tuple[Any, str, float | None]:
    """A TIFF's full-resolution level as a lazy (C, H, W) or (H, W) array, its description and
    the scale that maps its 8/16-bit samples to [0, 1] (None: values as they are)."""
    import dask.array as da

    zarr = require("reading a TIFF lazily")
    try:
        import tifffile
    except ImportError:
        raise InputError("reading a TIFF lazily needs tifffile: pip install 'convcli[dask]'"
                         ) from None
    _readable(path)
    try:
        opened = zarr.open(tifffile.imread(path, aszarr=True), mode="r")
    except (tifffile.TiffFileError, ValueError, KeyError, OSError) as error:
        raise InputError(f"cannot read {path} as a TIFF ({error}): check the file") from None
    if not hasattr(opened, "shape"):                         # a pyramid: its full resolution
        opened = opened["0"]
    lazy = da.from_array(opened, chunks=opened.chunks, asarray=False)
    if lazy.ndim == 3:                                       # samples last -> (C, H, W)
        lazy = lazy.transpose(2, 0, 1)
    if opened.dtype.kind == "u" and opened.dtype.itemsize <= 2:
        return lazy, f"{path} (TIFF {opened.dtype}, scaled to [0, 1])", \
            float(np.iinfo(opened.dtype).max)
    return lazy, f"{path} (TIFF {opened.dtype}, values as they are)", None


# ---- outputs ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    """An output written chunk by chunk: `path` as the user named it, `final` the path to
    replace (a symlink's target), `temporary` the store or .npy being filled beside it;
    `kind` "zarr" or "npy". Picklable: worker processes open `temporary` themselves."""

    path: Path
    final: Path
    temporary: Path
    kind: str

    def create(self, name: str | None, shape: tuple[int, ...], dtype: np.dtype[Any],
               chunks: tuple[int, ...]) -> None:
        """Make the empty array `name` (None: the store's root array, or the .npy)."""
        if self.kind == "npy":
            np.lib.format.open_memmap(self.temporary, mode="w+", dtype=dtype, shape=shape)
            return
        zarr = require("writing a Zarr store")
        store = str(self.temporary) if name is None else str(self.temporary / name)
        zarr.create_array(store=store, shape=shape, chunks=chunks, dtype=dtype,
                          fill_value=0, overwrite=True)

    def group(self, attributes: dict[str, Any]) -> None:
        """Make the temporary store a group with these attributes (before create(name))."""
        zarr = require("writing a Zarr store")
        zarr.open_group(str(self.temporary), mode="w").attrs.update(attributes)

    def write(self, name: str | None, region: tuple[slice, ...], block: Array) -> None:
        """Write one block into its region (run by a task, in any process)."""
        if self.kind == "npy":
            target = np.load(self.temporary, mmap_mode="r+")
            target[region] = block
            target.flush()
            return
        import zarr
        store = str(self.temporary) if name is None else str(self.temporary / name)
        zarr.open_array(store, mode="r+")[region] = block

    def commit(self) -> None:
        """Put the whole output in place: a file is renamed over the old; a store replaces
        the old store (moved aside first, deleted after)."""
        if self.kind == "npy":
            os.chmod(self.temporary, 0o666 & ~umask())
            os.replace(self.temporary, self.final)
            return
        old = None
        if self.final.exists():
            old = Path(tempfile.mkdtemp(dir=self.final.parent, prefix=f".{self.final.name}.",
                                        suffix=".old"))
            os.replace(self.final, old / "store")
        os.replace(self.temporary, self.final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def discard(self) -> None:
        """Remove the temporary output (the run failed or was interrupted)."""
        if self.temporary.is_dir():
            shutil.rmtree(self.temporary, ignore_errors=True)
        else:
            self.temporary.unlink(missing_ok=True)


def target(path: Path, kind: str) -> Target:
    """A Target for path, its temporary named beside the file it replaces."""
    where, final = destination(path)
    final = Path(os.path.abspath(final))     # workers elsewhere (another cwd) open it too
    if where != "file":
        raise InputError(f"a chunked run writes a file or a Zarr store, not a stream: give "
                         f"--out a file name, not {path}")
    if kind == "zarr":
        temporary = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.",
                                          suffix=".tmp"))
        shutil.rmtree(temporary)                  # the store is made in create()/group()
    else:
        handle, name = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.",
                                        suffix=".tmp")
        os.close(handle)
        temporary = Path(name)
    return Target(path, final, temporary, kind)


def check_store_output(path: Path) -> None:
    """Refuse, before any work, to replace a folder that is not a Zarr store."""
    final = destination(path)[1]
    if final.exists() and not final.is_dir():
        raise InputError(f"output {path} exists and is a file, not a Zarr store: choose "
                         "another --out, or remove it")
    if final.is_dir() and not any((final / name).exists()
                                  for name in ("zarr.json", ".zarray", ".zgroup")):
        raise InputError(f"output {path} is a folder that is not a Zarr store: convcli will "
                         "not replace it; choose another --out")
