#!/usr/bin/env python3
"""A reimplementation of Harbor's task checksum, dirhash(task_dir, "sha256") with
dirhash-python's defaults (match ["*"], no ignore, linked_dirs and linked_files
followed, empty_dirs False, entry_properties {name, data}), written from dirhash's
documented protocol (its DIRHASH_STANDARD and Protocol class):

  file hash       = sha256(file bytes)
  entry descriptor= "\\0".join(sorted(["data:<file hash>", "name:<name>"]))        file
                  = "\\0".join(sorted(["dirhash:<dir hash>", "name:<name>"]))      directory
  directory hash  = sha256("\\0\\0".join(sorted(entry descriptors)).encode())
  directories with no file below them are left out; an empty root is an error.

Used by the unit test's expected values (tests/unit/test_dirhash.c) and by the
Harbor compatibility check, which recomputes every trial's task_checksum.

  harbor_dirhash.py DIR   prints the hash
"""
import hashlib
import os
import sys


def _file_hash(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _dir_hash(path, seen):
    real = os.path.realpath(path)
    if real in seen:
        raise ValueError(f"{path}: cyclic symbolic link")
    seen = seen | {real}
    descriptors = []
    with os.scandir(path) as it:
        for entry in it:
            full = os.path.join(path, entry.name)
            if entry.is_dir(follow_symlinks=True):
                sub = _dir_hash(full, seen)
                if sub is None:
                    continue  # empty directories are left out
                props = [f"dirhash:{sub}", f"name:{entry.name}"]
            elif entry.is_file(follow_symlinks=True):
                props = [f"data:{_file_hash(full)}", f"name:{entry.name}"]
            else:
                continue
            descriptors.append("\000".join(sorted(props)))
    if not descriptors:
        return None
    text = "\000\000".join(sorted(descriptors))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def dirhash_sha256(directory):
    h = _dir_hash(directory, frozenset())
    if h is None:
        raise ValueError(f"{directory}: Nothing to hash")
    return h


if __name__ == "__main__":
    print(dirhash_sha256(sys.argv[1]))
