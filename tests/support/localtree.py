"""A local folder tree the way people have them, for the tests of tools that
mount or sync a box (davfs2, rclone): 500 small files in nested folders,
names with spaces, ``#``, ``%``, non-ASCII letters and long UTF-8 names;
and a digest of a tree to compare two of them.

    make_tree(path)                   -> the relative paths of its files
    digest(path)                      -> {relative path: sha256 hex} of every file
    touch_same_size(path, relpaths)   -> new bytes, same size and mtime
"""
import hashlib
import os
import random

FOLDERS, SUBFOLDERS, FILES = 10, 5, 10  # 500 files
SPECIAL = "special names"
# names every client must carry; the last one is 248 bytes of UTF-8, the
# longest davfs2 can create (docs/conformance.md)
SPECIAL_NAMES = ["with space.txt", "hash#1.txt", "100%.txt", "50%20off.txt", "é #%.txt",
                 "日本語ファイル.txt", "ไฟล์ภาษาไทย.txt", "emoji \U0001F600.txt",
                 "\u3042" * 82 + "ab"]
LONGEST = "\u3042" * 85  # 255 bytes of UTF-8: the longest name a Linux file may have


def make_tree(root, seed=15, extra_names=()):
    """Write the tree below ``root``; the relative paths of its files."""
    rng = random.Random(seed)
    made = []
    for d in range(FOLDERS):
        for s in range(SUBFOLDERS):
            folder = os.path.join("dir%02d" % d, "sub %d" % s)
            os.makedirs(os.path.join(root, folder), exist_ok=True)
            for f in range(FILES):
                rel = os.path.join(folder, "file%02d.txt" % f)
                _write(os.path.join(root, rel), rng.randbytes(rng.randint(1, 4096)))
                made.append(rel)
    os.makedirs(os.path.join(root, SPECIAL), exist_ok=True)
    for name in list(SPECIAL_NAMES) + list(extra_names):
        rel = os.path.join(SPECIAL, name)
        _write(os.path.join(root, rel), name.encode("utf-8") * 3)
        made.append(rel)
    return made


def _write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def digest(root):
    """{relative path: sha256 hex} of every regular file below ``root``."""
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            found[os.path.relpath(path, root)] = file_sha256(path)
    return found


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1024 * 1024), b""):
            h.update(chunk)
    return h.hexdigest()


def folders(root):
    """The relative paths of every folder below ``root``."""
    return {os.path.relpath(os.path.join(folder, d), root)
            for folder, dirs, _ in os.walk(root) for d in dirs}


def touch_same_size(root, relpaths):
    """Give files new bytes of the same size and keep their mtime: only a
    comparison by checksum sees the change."""
    for rel in relpaths:
        path = os.path.join(root, rel)
        st = os.stat(path)
        with open(path, "rb") as f:
            data = f.read()
        _write(path, bytes(255 - b for b in data))
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def big_file(path, mib, seed=7):
    """``mib`` MiB of pseudo-random bytes (not compressible); its sha256."""
    rng = random.Random(seed)
    h = hashlib.sha256()
    with open(path, "wb") as f:
        for _ in range(mib):
            chunk = rng.randbytes(1024 * 1024)
            h.update(chunk)
            f.write(chunk)
    return h.hexdigest()
