#!/usr/bin/env python3
"""Write an OCI image layout for the registry tests.

mkoci.py DIR TAG ROOTFS.tar COMPRESSION ARCH[,ARCH...] [--attestation] [--hardlink-layer] [LABEL]

One image per architecture (one layer: ROOTFS.tar plus /etc/arch naming the
architecture, the compression and LABEL (distinct blobs), compressed with gzip, zstd or none); with several architectures,
or --attestation, the tag names an index of them (plus an unknown/unknown
attestation manifest when asked). --hardlink-layer adds a second layer whose
app/linked is a hardlink to the first layer's etc/arch."""
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile


def blob(d, data):
    h = hashlib.sha256(data).hexdigest()
    p = os.path.join(d, "blobs", "sha256", h)
    with open(p, "wb") as f:
        f.write(data)
    return "sha256:" + h, len(data)


def layer_tar(rootfs, arch):
    out = io.BytesIO()
    with tarfile.open(rootfs) as src, tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as dst:
        for m in src.getmembers():
            dst.addfile(m, src.extractfile(m) if m.isfile() else None)
        info = tarfile.TarInfo("etc/arch")
        extra = [a for a in sys.argv[6:] if not a.startswith("--")]
        data = " ".join([arch, sys.argv[4]] + extra).encode() + b"\n"
        info.size = len(data)
        info.mode = 0o644
        dst.addfile(info, io.BytesIO(data))
    return out.getvalue()


def compress(data, how):
    if how == "gzip":
        return gzip.compress(data, 1, mtime=0), "application/vnd.oci.image.layer.v1.tar+gzip"
    if how == "zstd":
        z = subprocess.run(["zstd", "-q", "-c", "-1"], input=data, stdout=subprocess.PIPE, check=True).stdout
        return z, "application/vnd.oci.image.layer.v1.tar+zstd"
    return data, "application/vnd.oci.image.layer.v1.tar"


def hardlink_tar():
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as dst:
        info = tarfile.TarInfo("app/linked")
        info.type = tarfile.LNKTYPE
        info.linkname = "etc/arch"
        info.mode = 0o644
        dst.addfile(info)
    return out.getvalue()


def main():
    d, tag, rootfs, how, archs = sys.argv[1:6]
    attest = "--attestation" in sys.argv[6:]
    os.makedirs(os.path.join(d, "blobs", "sha256"), exist_ok=True)
    with open(os.path.join(d, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    descs = []
    for arch in archs.split(","):
        raw = layer_tar(rootfs, arch)
        comp, mt = compress(raw, how)
        ldig, lsize = blob(d, comp)
        layers = [{"mediaType": mt, "digest": ldig, "size": lsize}]
        diff_ids = ["sha256:" + hashlib.sha256(raw).hexdigest()]
        if "--hardlink-layer" in sys.argv[6:]:
            raw2 = hardlink_tar()
            comp2, mt2 = compress(raw2, how)
            dig2, size2 = blob(d, comp2)
            layers.append({"mediaType": mt2, "digest": dig2, "size": size2})
            diff_ids.append("sha256:" + hashlib.sha256(raw2).hexdigest())
        cfg = {"architecture": arch, "os": "linux",
               "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                          "Cmd": ["sh"], "WorkingDir": "/app"},
               "history": [{"created_by": "mkoci.py"}],
               "rootfs": {"type": "layers", "diff_ids": diff_ids}}
        cdig, csize = blob(d, json.dumps(cfg).encode())
        man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
               "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdig, "size": csize},
               "layers": layers}
        mdig, msize = blob(d, json.dumps(man).encode())
        descs.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": mdig,
                      "size": msize, "platform": {"architecture": arch, "os": "linux"}})
    if attest:
        cdig, csize = blob(d, b"{}")
        man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
               "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdig, "size": csize},
               "layers": []}
        mdig, msize = blob(d, json.dumps(man).encode())
        descs.insert(0, {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": mdig, "size": msize,
                         "platform": {"architecture": "unknown", "os": "unknown"},
                         "annotations": {"vnd.docker.reference.type": "attestation-manifest"}})
    if len(descs) == 1:
        top = dict(descs[0])
        del top["platform"]
    else:
        idx = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": descs}
        idig, isize = blob(d, json.dumps(idx).encode())
        top = {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": idig, "size": isize}
    top["annotations"] = {"org.opencontainers.image.ref.name": tag}
    with open(os.path.join(d, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [top]}, f)


main()
