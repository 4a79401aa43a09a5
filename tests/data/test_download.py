"""Dataset downloads against a local HTTP server on 127.0.0.1 (never a real dataset host)."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import io
import re
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

from pixelwise.core.errors import ConfigError, DataError
from pixelwise.data.download import DATASETS, DatasetSource, Resource, download_dataset


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        server: _Server = self.server  # type: ignore[assignment]
        server.requests.append((self.path, self.headers.get("Range")))
        data = server.files.get(self.path.lstrip("/"))
        if data is None:
            self.send_error(404)
            return
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        start = int(match.group(1)) if match and server.ranges else 0
        if start >= len(data) > 0:
            self.send_error(416)
            return
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        cut, server.cut = server.cut, None
        self.wfile.write(data[start:cut])  # with cut set, the connection drops early once

    def log_message(self, *args: object) -> None:  # keep the test output clean
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.ranges = True  # False: ignore Range headers, like a server without resume support
        self.cut: int | None = None  # send only this many bytes of the next answer


@pytest.fixture
def server():
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    guard = threading.Timer(60, srv.shutdown)  # stops by itself even if a finaliser never runs
    guard.daemon = True
    guard.start()
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}/"
    yield srv
    guard.cancel()
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=5)


def _tar(members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tf.addfile(info)
    return buf.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return buf.getvalue()


PETS_IMAGES = {"images/cat_1.jpg": b"jpeg-1" * 50, "images/dog_2.jpg": b"jpeg-2" * 50, "images/cat_1.mat": b"m"}
PETS_ANNOTATIONS = {"annotations/trimaps/cat_1.png": b"png-1", "annotations/trimaps/dog_2.png": b"png-2",
                    "annotations/trimaps/._cat_1.png": b"resource fork", "annotations/trainval.txt": b"cat_1 1 1 1\n",
                    "annotations/test.txt": b"dog_2 2 2 1\n"}


@pytest.fixture
def pets(server, monkeypatch):
    """Serve a tiny pets layout and pin the registry's md5 sums to it."""
    server.files = {"images.tar.gz": _tar(PETS_IMAGES), "annotations.tar.gz": _tar(PETS_ANNOTATIONS)}
    resources = tuple(dataclasses.replace(r, checksum=hashlib.md5(server.files[r.filename]).hexdigest())
                      for r in DATASETS["oxford-pets"].resources)
    monkeypatch.setitem(DATASETS, "oxford-pets", dataclasses.replace(DATASETS["oxford-pets"], resources=resources))
    return server


def _no_leftovers(root: Path, name: str) -> None:
    assert not (root / name).exists()
    assert not list(root.glob(f".{name}-*")), "a staging folder was left behind"


def test_download_gives_pets_layout(pets, tmp_path):
    dest = download_dataset("oxford-pets", tmp_path, progress=False, base_url=pets.url)
    assert dest == tmp_path / "oxford-pets"
    assert sorted(p.name for p in (dest / "images").iterdir()) == ["cat_1.jpg", "dog_2.jpg"]  # no stray .mat
    assert sorted(p.name for p in (dest / "annotations" / "trimaps").iterdir()) == ["cat_1.png", "dog_2.png"]
    assert (dest / "annotations" / "trainval.txt").read_bytes() == b"cat_1 1 1 1\n"
    assert (dest / "images" / "cat_1.jpg").read_bytes() == PETS_IMAGES["images/cat_1.jpg"]
    assert [r for _, r in pets.requests] == [None, None]
    assert "images.tar.gz" in (dest / ".sha256").read_text()
    assert not list(tmp_path.glob("*.part")) and not list(tmp_path.glob(".oxford-pets-*"))
    pets.requests.clear()
    assert download_dataset("oxford-pets", tmp_path, progress=False, base_url=pets.url) == dest
    assert pets.requests == []


def test_membrane_zip_trust_on_first_use(server, tmp_path, capsys):
    archive = _zip({"unet-master/README.md": b"readme", "unet-master/data/membrane/train/image/0.png": b"img",
                    "unet-master/data/membrane/train/label/0.png": b"lbl",
                    "unet-master/data/membrane/test/0.png": b"test"})
    server.files = {"unet-master.zip": archive}
    dest = download_dataset("membrane", tmp_path, progress=False, base_url=server.url)
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*.png")) == ["image/0.png", "label/0.png"]
    sha = hashlib.sha256(archive).hexdigest()
    assert (dest / ".sha256").read_text() == f"{sha}  unet-master.zip\n"
    assert sha in capsys.readouterr().out


def test_checksum_mismatch_deletes_the_file(pets, tmp_path, monkeypatch):
    source = DATASETS["oxford-pets"]
    bad = (dataclasses.replace(source.resources[0], checksum="0" * 32), *source.resources[1:])
    monkeypatch.setitem(DATASETS, "oxford-pets", dataclasses.replace(source, resources=bad))
    with pytest.raises(DataError) as e:
        download_dataset("oxford-pets", tmp_path, progress=False, base_url=pets.url)
    actual = hashlib.md5(pets.files["images.tar.gz"]).hexdigest()
    assert "images.tar.gz" in str(e.value) and "0" * 32 in str(e.value) and actual in str(e.value)
    assert not list(tmp_path.glob("images.tar.gz*"))
    _no_leftovers(tmp_path, "oxford-pets")


@pytest.mark.parametrize("ranges", [True, False], ids=["resume", "server-without-range"])
def test_resume_from_part_file(pets, tmp_path, ranges):
    pets.ranges = ranges
    data = pets.files["images.tar.gz"]
    (tmp_path / "images.tar.gz.part").write_bytes(data[: len(data) // 2])
    dest = download_dataset("oxford-pets", tmp_path, progress=False, base_url=pets.url)
    assert ("/images.tar.gz", f"bytes={len(data) // 2}-") in pets.requests
    assert (tmp_path / "images.tar.gz").read_bytes() == data
    assert (dest / "images" / "dog_2.jpg").is_file()


def test_dropped_connection_keeps_part_and_resumes(server, tmp_path):
    archive = _zip({"unet-master/data/membrane/train/image/0.png": bytes(range(256)) * 40,
                    "unet-master/data/membrane/train/label/0.png": b"lbl"})
    server.files, server.cut = {"unet-master.zip": archive}, 1000
    with pytest.raises(DataError, match="connection closed after 1000 of .*run again to resume"):
        download_dataset("membrane", tmp_path, progress=False, base_url=server.url)  # no checksum to catch it
    assert (tmp_path / "unet-master.zip.part").stat().st_size == 1000
    _no_leftovers(tmp_path, "membrane")
    dest = download_dataset("membrane", tmp_path, progress=False, base_url=server.url)
    assert server.requests[-1] == ("/unet-master.zip", "bytes=1000-")
    assert (tmp_path / "unet-master.zip").read_bytes() == archive
    assert (dest / "image" / "0.png").read_bytes() == bytes(range(256)) * 40


def test_existing_verified_file_is_not_downloaded(pets, tmp_path):
    for name, data in pets.files.items():
        (tmp_path / name).write_bytes(data)
    dest = download_dataset("oxford-pets", tmp_path, progress=False, base_url=pets.url)
    assert pets.requests == []
    assert (dest / "annotations" / "trimaps" / "cat_1.png").is_file()


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "zip-dotdot"])
def test_malicious_archive_is_refused(server, tmp_path, monkeypatch, kind):
    root = tmp_path / "root"
    outside = tmp_path / "abs-evil.txt"
    good = {"data/ok.txt": b"fine"}
    if kind == "dotdot":
        member, archive = "../evil.txt", _tar({**good, "../evil.txt": b"x"})
    elif kind == "absolute":
        member, archive = str(outside), _tar({**good, str(outside): b"x"})
    elif kind == "symlink":
        member, archive = "data/passwd", _tar(good, symlinks={"data/passwd": "/etc/passwd"})
    else:
        member, archive = "../evil.txt", _zip({**good, "../evil.txt": b"x"})
    filename = "evil.zip" if kind.startswith("zip") else "evil.tar.gz"
    server.files = {filename: archive}
    resource = Resource("https://example.invalid/" + filename, filename, hashlib.sha256(archive).hexdigest())
    monkeypatch.setitem(DATASETS, "evil", DatasetSource("test", "none", (resource,)))
    with pytest.raises(DataError) as e:
        download_dataset("evil", root, progress=False, base_url=server.url)
    assert repr(member) in str(e.value) and filename in str(e.value)
    assert not outside.exists() and not (tmp_path / "evil.txt").exists() and not (root / "evil.txt").exists()
    _no_leftovers(root, "evil")


def test_http_error_names_url_and_files(server, tmp_path):
    with pytest.raises(DataError) as e:
        download_dataset("membrane", tmp_path, progress=False, base_url=server.url)
    message = str(e.value)
    assert f"{server.url}unet-master.zip" in message and "404" in message and "unet-master.zip by hand" in message
    assert "\n" not in message


def test_cityscapes_and_unknown_names(tmp_path):
    with pytest.raises(ConfigError, match="cityscapes-dataset.com.*leftImg8bit_trainvaltest.zip.*gtFine/"):
        download_dataset("cityscapes", tmp_path)
    with pytest.raises(ConfigError, match="camvid, cityscapes, membrane, oxford-pets"):
        download_dataset("imagenet", tmp_path)
    assert not list(tmp_path.iterdir())


def test_existing_foreign_folder_is_not_overwritten(tmp_path):
    (tmp_path / "camvid").mkdir()
    (tmp_path / "camvid" / "mine.txt").write_text("user data")
    with pytest.raises(DataError, match="not a finished download"):
        download_dataset("camvid", tmp_path, base_url="http://127.0.0.1:9/")
    assert (tmp_path / "camvid" / "mine.txt").read_text() == "user data"
