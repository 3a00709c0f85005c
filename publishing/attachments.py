"""Attachments of requests: type sniffed from the content (never the name), size limits, and
durable storage under settings.attachments_dir (outside anything the portal serves) under
random names, with the SHA-256 of each file recorded; which files of that folder are old
enough for the retention job's sweep to judge (stale_files); and the sweep's quarantine folder
inside it, where files no row names wait before they are deleted (QUARANTINE, move, quarantined).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 20
# Magic bytes -> (media type, extension). Only these three kinds are accepted.
MAGIC = (
    (b"%PDF-", "application/pdf", ".pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
    (b"\xff\xd8\xff", "image/jpeg", ".jpg"),
)
TYPE_NAMES = {"application/pdf": "PDF", "image/png": "PNG", "image/jpeg": "JPG"}


@dataclass
class Upload:
    """A file as received: its name as the sender gave it and a readable binary stream."""

    filename: str
    stream: BinaryIO
    media_type: str = ""  # filled by inspect()
    size: int = 0
    sha256: str = ""


def sniff(head: bytes) -> tuple[str, str] | None:
    """(media type, extension) from the first bytes, or None for anything else."""
    for magic, media_type, ext in MAGIC:
        if head.startswith(magic):
            return media_type, ext
    return None


def inspect(upload: Upload, max_bytes: int) -> str | None:
    """Measure, sniff and hash an upload; returns what is wrong with it (Chinese), or None."""
    name = display_name(upload.filename)
    stream = upload.stream
    stream.seek(0, os.SEEK_END)
    upload.size = stream.tell()
    stream.seek(0)
    if upload.size == 0:
        return f"文件“{name}”是空文件"
    if upload.size > max_bytes:
        return (
            f"文件“{name}”大小 {upload.size / 1048576:.1f} MB，超过单个文件 "
            f"{max_bytes // 1048576} MB 的上限"
        )
    kind = sniff(stream.read(16))
    if kind is None:
        return f"文件“{name}”不是 PDF、JPG 或 PNG 文件（按文件内容判断，与扩展名无关）"
    upload.media_type = kind[0]
    stream.seek(0)
    digest = hashlib.sha256()
    while chunk := stream.read(CHUNK):
        digest.update(chunk)
    upload.sha256 = digest.hexdigest()
    stream.seek(0)
    return None


def display_name(filename: str | None) -> str:
    """The file's own name without any path, control characters or excessive length."""
    base = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip()
    return (base or "未命名文件")[:120]


def extension(media_type: str) -> str:
    return next(ext for _, mt, ext in MAGIC if mt == media_type)


# A trailing ".xyz" of the applicant's name: replaced, never kept in front of ours.
_NAME_EXTENSION = re.compile(r"\.[0-9A-Za-z]{1,10}$")
# Characters Windows refuses in a file name, and the path separators.
_NAME_UNSAFE = re.compile(r'[\\/:*?"<>|]')


def download_name(file_name: str | None, media_type: str) -> str:
    """The name a reviewer's browser saves an attachment under: the applicant's name without
    its extension (sanitised), then the extension of the type sniffed from the content — a
    PDF named "x.html" must not be saved, and then opened, as HTML."""
    stem = _NAME_EXTENSION.sub("", display_name(file_name))
    stem = _NAME_UNSAFE.sub("_", stem).strip(" .")
    return (stem or "附件") + extension(media_type)


def store(upload: Upload, directory: Path) -> str:
    """Write the upload under a random name, fsync it (and the folder); returns the name."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    name = secrets.token_hex(16) + extension(upload.media_type)
    final = directory / name
    tmp = directory / f".{name}.part"
    digest = hashlib.sha256()
    upload.stream.seek(0)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := upload.stream.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != upload.sha256:
            raise OSError(f"attachment changed while it was stored: {upload.filename!r}")
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(directory)
    return name


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# The names store() gives: the file, and its temporary name while it is written.
_EXTENSIONS = "|".join(re.escape(ext) for _, _, ext in MAGIC)
STORED_NAME = re.compile(rf"[0-9a-f]{{32}}(?:{_EXTENSIONS})")
PARTIAL_NAME = re.compile(rf"\.[0-9a-f]{{32}}(?:{_EXTENSIONS})\.part")


@dataclass
class StaleFiles:
    """Files of the attachments folder last written before a time: stored files (each to be
    kept only if a row still names it) and the temporary files of uploads that never finished."""

    stored: list[str]
    partial: list[str]
    all_stored: int = 0  # stored files of any age (the sweep's guard compares against it)


def stale_files(directory: Path, before: float) -> StaleFiles:
    """The files of store()'s naming last modified before `before` (a POSIX time). Anything
    else in the folder (another name, a folder, a link) is not ours to judge and is left out;
    a younger file may be an upload in progress, stored before its row is committed."""
    found = StaleFiles([], [])
    if not directory.is_dir():
        return found
    with os.scandir(directory) as entries:
        for entry in entries:
            if not entry.is_file(follow_symlinks=False):
                continue
            if STORED_NAME.fullmatch(entry.name):
                kind = found.stored
                found.all_stored += 1
            elif PARTIAL_NAME.fullmatch(entry.name):
                kind = found.partial
            else:
                continue
            try:
                if entry.stat(follow_symlinks=False).st_mtime < before:
                    kind.append(entry.name)
            except FileNotFoundError:  # gone meanwhile (an upload's rename, another sweep)
                continue
    return found


def remove(directory: Path, names: list[str]) -> None:
    for name in names:
        (directory / name).unlink(missing_ok=True)


def path_of(directory: Path, stored_name: str) -> Path:
    """The file of a stored name (names are ours: hex + extension, never a path)."""
    if "/" in stored_name or "\\" in stored_name or stored_name.startswith("."):
        raise ValueError("bad stored name")
    return directory / stored_name


# Where the retention sweep puts stored files no attachment row names, for a while before they
# are deleted: a worker pointed at the wrong database, or a restore whose dump predates an
# upload, must not destroy evidence at once. Inside the attachments folder, so on the same file
# system (a move is an atomic rename); its name starts with a dot, so no stored name reaches it
# (path_of) and stale_files passes it by (a folder).
QUARANTINE = ".unreferenced"


def quarantine_of(directory: Path) -> Path:
    return directory / QUARANTINE


def move(names: list[str], source: Path, target: Path, *, mtime: float | None = None) -> list[str]:
    """Move stored files from `source` to `target` (created on demand) by rename; those moved.
    mtime: set on each file first (the time it entered the quarantine: a crash before the
    rename leaves a file that looks young, which only delays the sweep). A name already in
    `target` or gone from `source` is skipped; a failure is left for the next run. Both
    folders are fsynced, so that a rename survives a crash."""
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    moved: list[str] = []
    try:
        for name in names:
            src, dst = path_of(source, name), path_of(target, name)
            if dst.exists():  # never replace a file (a copy put back by hand, say)
                continue
            try:
                if mtime is not None:
                    os.utime(src, (mtime, mtime))
                os.replace(src, dst)
            except FileNotFoundError:  # gone meanwhile
                continue
            moved.append(name)
    finally:  # also those moved before a failure
        if moved:
            fsync_dir(target)
            fsync_dir(source)
    return moved


def quarantined(directory: Path) -> dict[str, float]:
    """The stored files in the quarantine of `directory`, each with its mtime (when it entered)."""
    folder = quarantine_of(directory)
    if not folder.is_dir():
        return {}
    found = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            if not (entry.is_file(follow_symlinks=False) and STORED_NAME.fullmatch(entry.name)):
                continue
            try:
                found[entry.name] = entry.stat(follow_symlinks=False).st_mtime
            except FileNotFoundError:
                continue
    return found
