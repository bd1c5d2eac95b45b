#!/usr/bin/env python3
"""Regenerates the damaged-archive corpus from base/: each case is a copy of the base backup with
one kind of damage. Manifests edited behind a valid checksum get their checksum line recomputed
(the way pgark writes it), so that the reader's later checks are what the case exercises.

    python3 testdata/damaged/make.py

What each case must make `pgark verify` say is in its expected.txt: the exit code, then the exact
error line, `{backup}` standing for the backup's path and `{version}` for pgark's. Those are
reviewed by hand when a message changes; this script never writes them.
"""

import hashlib
import json
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
BASE = HERE / "base"
BACKUP_ID = "2026-12-04T183330Z"
DATA = f"data/00001.0000.copy.zst"


def read_manifest(backup):
    return json.loads((backup / "manifest.json").read_text())


def write_manifest(backup, manifest):
    """Writes `manifest` with a checksum line that matches it."""
    manifest = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    body = json.dumps(manifest, indent=2, ensure_ascii=False)
    rest = body[len("{\n"):] + "\n"
    digest = hashlib.sha256(rest.encode()).hexdigest()
    (backup / "manifest.json").write_text('{\n  "manifest_sha256": "' + digest + '",\n' + rest)


def edit(change):
    def apply(backup):
        manifest = read_manifest(backup)
        change(manifest)
        write_manifest(backup, manifest)
    return apply


def raw_edit(change):
    def apply(backup):
        path = backup / "manifest.json"
        path.write_bytes(change(path.read_bytes()))
    return apply


def table(manifest):
    return manifest["tables"][0]


def set_chunk(index, field, value):
    def change(manifest):
        table(manifest)["chunks"][index][field] = value
    return change


def duplicate_chunk(manifest):
    t = table(manifest)
    t["chunks"].insert(1, dict(t["chunks"][0]))
    t["row_count"] = sum(c["rows"] for c in t["chunks"])
    t["raw_bytes"] = sum(c["raw_length"] for c in t["chunks"])


def miscount_rows(manifest):
    t = table(manifest)
    t["chunks"][0]["rows"] += 1
    t["row_count"] += 1


def lengthen_last_chunk(manifest):
    table(manifest)["chunks"][-1]["length"] += 1000


def change_data(change):
    def apply(backup):
        path = backup / DATA
        path.write_bytes(change(path.read_bytes()))
    return apply


def flip_byte(data):
    data = bytearray(data)
    data[len(data) // 4] ^= 0x55
    return bytes(data)


CASES = {
    "manifest-empty": raw_edit(lambda b: b""),
    "manifest-truncated": raw_edit(lambda b: b[: len(b) // 2]),
    "manifest-checksum-mismatch": raw_edit(
        lambda b: b.replace(b'"row_count": 3000', b'"row_count": 3001', 1)
    ),
    "manifest-wrong-format-version": edit(lambda m: m.update(format_version=99)),
    "manifest-not-pgark": edit(lambda m: m.update(format="something-else")),
    "manifest-negative-count": edit(set_chunk(0, "rows", -1)),
    "manifest-huge-size": edit(set_chunk(0, "raw_length", 2**63)),
    "manifest-duplicated-chunk": edit(duplicate_chunk),
    "manifest-rows-miscounted": edit(miscount_rows),
    "chunk-past-object-end": edit(lengthen_last_chunk),
    "data-object-truncated": change_data(lambda d: d[: len(d) // 2]),
    "data-object-missing": lambda backup: (backup / DATA).unlink(),
    "chunk-byte-flipped": change_data(flip_byte),
}


def main():
    for name, damage in CASES.items():
        backup = HERE / name / BACKUP_ID
        if backup.exists():
            shutil.rmtree(backup)
        shutil.copytree(BASE / BACKUP_ID, backup)
        damage(backup)


if __name__ == "__main__":
    main()
