"""`netlens data get`: fetch MNIST / Fashion-MNIST's four IDX files, checked against pinned sha256.

Why pinned hashes: the files come over plain HTTP from third-party buckets (and any mirror the
user names); the sha256 values below are the only thing that makes a download trustworthy, so
a file that does not match is never put where NetLens reads it. A mirror (`source`) changes only
where the bytes come from; other hashes need an explicit manifest file the user gives
(`manifest`), and the command says so when one is used.

Imports requests and tqdm only when downloading; never imports JAX.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from netlens.worker.datasets.mnist import IDX_FILES

GZ_FILES = tuple(f"{base}.gz" for base in IDX_FILES)
CHUNK = 64 * 1024
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Remote:
    """Where a dataset's four .gz files are published and their sha256 sums."""

    title: str
    url: str  # base URL; a file's URL is url + file name
    sha256: dict[str, str]
    home_page: str


# The sha256 sums are the ones published alongside these exact files by many independent
# projects (torchvision's mirror list, TensorFlow Datasets' checksums, ...); NetLens never
# computed them itself, since its build machines cannot reach these hosts. docs/datasets.md.
REMOTES: dict[str, Remote] = {
    "mnist": Remote(
        "MNIST",
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        {
            "train-images-idx3-ubyte.gz": (
                "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"
            ),
            "train-labels-idx1-ubyte.gz": (
                "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"
            ),
            "t10k-images-idx3-ubyte.gz": (
                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"
            ),
            "t10k-labels-idx1-ubyte.gz": (
                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"
            ),
        },
        "http://yann.lecun.com/exdb/mnist/",
    ),
    "fashion-mnist": Remote(
        "Fashion-MNIST",
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        {
            "train-images-idx3-ubyte.gz": (
                "08dc20ab1689590a0bcd66e874647b6ee8464e2d501b5a3f1f78831db19a3fdc"
            ),
            "train-labels-idx1-ubyte.gz": (
                "b0197879cbda89f3dc7b894f9fd52b858e68ea4182b6947c9d8c2b67e5f18dcc"
            ),
            "t10k-images-idx3-ubyte.gz": (
                "78dcbbfb5a27efaf1b6c1d616caca68560be8766c5bffcb2791df9273a534229"
            ),
            "t10k-labels-idx1-ubyte.gz": (
                "42bd18137a62d5998cdeae52bf3a0676ac6b706f5cf8439b47bb5b151ae3dccf"
            ),
        },
        "https://github.com/zalandoresearch/fashion-mnist",
    ),
}


class DataGetError(Exception):
    """A download that did not end with verified files in place; the message says what to do."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(path: Path) -> dict[str, str]:
    """sha256 sums from a JSON file {"<file>.gz": "<64 hex>", ...} naming exactly the four files.

    Only for mirrors that serve other bytes (and tests): the user names the file explicitly.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataGetError(f"--manifest: cannot read {path} as JSON ({exc})") from None
    if not isinstance(data, dict) or set(data) != set(GZ_FILES):
        raise DataGetError(
            f"--manifest: {path} must be a JSON object with exactly the keys {', '.join(GZ_FILES)}"
        )
    bad = [k for k, v in data.items() if not isinstance(v, str) or not _HEX64.match(v)]
    if bad:
        raise DataGetError(
            f"--manifest: {path}: the sha256 of {', '.join(bad)} is not 64 lower-case hex digits"
        )
    return dict(data)


def by_hand(name: str, folder: Path, url: str | None = None) -> str:
    """Instructions for fetching the files on another machine."""
    remote = REMOTES[name]
    base = url or remote.url
    lines = [
        f"To install {remote.title} by hand, download on a connected machine:",
        *(f"  {base}{f}" for f in GZ_FILES),
        f"(or from {remote.home_page}), check them with sha256sum against:",
        *(f"  {remote.sha256[f]}  {f}" for f in GZ_FILES),
        f"and put the four .gz files, as they are, in {folder}/",
        "Then `netlens data list` shows them as present.",
    ]
    return "\n".join(lines)


def file_state(path: Path, expected: str) -> str:
    """'missing', 'verified' or 'differs' (present with another sha256)."""
    if not path.is_file():
        return "missing"
    return "verified" if sha256_of(path) == expected else "differs"


def _raw_chunks(raw):
    """The body as sent (no Content-Encoding decoding: the sha256 is of the stored file),
    each chunk handed over as soon as it arrives so that a broken transfer keeps every byte
    received (iter_content's buffered reads drop the last partial chunk)."""
    read1 = getattr(raw, "read1", None)  # urllib3 >= 2
    if read1 is None:
        yield from raw.stream(CHUNK, decode_content=False)
        return
    while chunk := read1(CHUNK, decode_content=False):
        yield chunk


def download_file(
    session,
    url: str,
    dest: Path,
    expected: str,
    progress: bool,
    say: Callable[[str], None],
) -> None:
    """Stream `url` into `dest`.part (resuming it with a Range request), check the sha256, then
    rename it to `dest` atomically. Raises DataGetError; a broken transfer keeps the .part."""
    import requests
    import urllib3
    from tqdm import tqdm

    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    try:
        response = session.get(url, stream=True, timeout=(10, 60), headers=headers)
    except requests.RequestException as exc:
        raise ConnectionError(str(exc)) from exc  # nothing received: the caller explains
    with response:
        if have and response.status_code == 416:  # the .part is not a prefix of this file
            say(f"{dest.name}: the server refused to resume; starting again")
            part.unlink()
            return download_file(session, url, dest, expected, progress, say)
        if response.status_code not in (200, 206):
            raise DataGetError(
                f"{url} answered HTTP {response.status_code}; check the URL (--source) "
                "or download the files by hand (see `netlens data get --help`)"
            )
        resumed = (
            have > 0
            and response.status_code == 206
            and response.headers.get("Content-Range", "").startswith(f"bytes {have}-")
        )
        if have and not resumed:
            say(f"{dest.name}: the server does not resume downloads; starting again")
            have = 0
        digest = hashlib.sha256()
        if resumed:
            with open(part, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
            say(f"{dest.name}: resuming after {have:,} bytes")
        length = response.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else None
        received = have
        with (
            open(part, "ab" if resumed else "wb") as out,
            tqdm(
                total=total,
                initial=have,
                unit="B",
                unit_scale=True,
                desc=dest.name,
                disable=not progress,
                leave=False,
            ) as bar,
        ):
            try:
                for chunk in _raw_chunks(response.raw):
                    out.write(chunk)
                    out.flush()  # what arrived survives a dropped connection
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
                raise DataGetError(
                    f"{dest.name}: the download stopped after {received:,} bytes ({exc}); "
                    f"the part is kept in {part}; run the same command again to resume"
                ) from None
    if total is not None and received != total:
        raise DataGetError(
            f"{dest.name}: got {received:,} of {total:,} bytes; the part is kept in {part}; "
            "run the same command again to resume"
        )
    actual = digest.hexdigest()
    if actual != expected:
        part.unlink()
        raise DataGetError(
            f"{dest.name}: sha256 mismatch: got {actual}, expected {expected}; the download "
            "was deleted and nothing was put in place (a bad mirror or a corrupted transfer)"
        )
    os.replace(part, dest)


def get_dataset(
    name: str,
    data_dir: Path,
    source: str | None = None,
    manifest: dict[str, str] | None = None,
    force: bool = False,
    progress: bool = False,
    say: Callable[[str], None] = print,
) -> Path:
    """Download `name`'s four IDX files into data_dir/name/ (where the MNIST reader looks);
    the folder. Files already there with the right sha256 are kept unless `force`."""
    import requests

    if name not in REMOTES:
        raise DataGetError(f"NAME: unknown dataset {name!r}; choose one of {', '.join(REMOTES)}")
    remote = REMOTES[name]
    hashes = manifest if manifest is not None else remote.sha256
    base = source or remote.url
    if not base.endswith("/"):
        base += "/"
    folder = Path(data_dir) / name
    folder.mkdir(parents=True, exist_ok=True)
    with requests.Session() as session:
        for file in GZ_FILES:
            dest = folder / file
            state = file_state(dest, hashes[file])
            if state == "verified" and not force:
                say(f"{file}: already there (sha256 verified)")
                continue
            if state == "differs" and not force:
                raise DataGetError(
                    f"{dest} exists but its sha256 is not the expected {hashes[file]}; "
                    "--force replaces it"
                )
            try:
                download_file(session, base + file, dest, hashes[file], progress, say)
            except ConnectionError as exc:
                raise DataGetError(
                    f"could not reach {base} ({exc}).\n{by_hand(name, folder, base)}"
                ) from None
            say(f"{file}: downloaded (sha256 verified)")
    return folder


def dataset_status(name: str, data_dir: Path) -> tuple[str, str]:
    """('present' or 'missing', what was found) for the folder NetLens reads `name` from."""
    from netlens.worker.datasets.base import DatasetError
    from netlens.worker.datasets.mnist import locate

    folder = Path(data_dir) / name
    try:
        found = locate(name, None, Path(data_dir))
    except DatasetError:
        have = [f for f in (*IDX_FILES, *GZ_FILES) if (folder / f).is_file()]
        return "missing", (f"has only {', '.join(have)}" if have else "no files")
    if isinstance(found, Path):
        return "present", found.name
    remote = REMOTES[name]
    checked = [
        p.name for p in found if p.name in remote.sha256 and sha256_of(p) == remote.sha256[p.name]
    ]
    note = "sha256 verified" if len(checked) == 4 else "IDX files (not checked: not the .gz files)"
    return "present", note
