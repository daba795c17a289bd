"""Time --verify-images on 200 distinct signed images in a local registry (not part of the tests).

    python benchmarks/images.py

Starts Debian's docker-registry on 127.0.0.1 (tests/oci), pushes and signs 200 images, then times a
whole `kaudit scan --verify-images` of a manifest that uses them all, first with an empty cache and
then again with the cache (which must need no network round trip).
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tests.oci.cosign_sign import generate_key, sign, write_public_key  # noqa: E402
from tests.oci.push import push_image  # noqa: E402
from tests.oci.registry import RunningRegistry  # noqa: E402

IMAGES = 200


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="kaudit-images-"))
    with RunningRegistry(work) as registry:
        key = generate_key()
        public = write_public_key(key, work / "cosign.pub")
        references = []
        start = time.perf_counter()
        for index in range(IMAGES):
            digest = push_image(registry, f"bench/app{index}", "1.0")
            if index % 10:  # every tenth image stays unsigned
                sign(registry, f"bench/app{index}", digest, key)
            references.append(registry.reference(f"bench/app{index}", "1.0"))
        setup = time.perf_counter() - start
        containers = [{"name": f"c{i}", "image": ref} for i, ref in enumerate(references)]
        manifest = work / "deploy.yaml"
        manifest.write_text(yaml.safe_dump({"apiVersion": "apps/v1", "kind": "Deployment",
                                            "metadata": {"name": "bench", "namespace": "bench"},
                                            "spec": {"template": {"spec": {"containers": containers}}}}))
        command = [sys.executable, "-m", "kaudit.cli", "scan", str(manifest), "--verify-images", "--cosign-key",
                   str(public), "--registry-ca", str(registry.ca_file), "--image-cache", str(work / "cache.json"),
                   "-f", "json", "--fail-on", "never"]
        runs = []
        for _ in range(2):
            start = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True, cwd=HERE.parent)
            seconds = time.perf_counter() - start
            if done.returncode != 0:
                sys.exit(done.stderr[-500:])
            images = json.loads(done.stdout)["images"]
            unsigned = sum(1 for f in json.loads(done.stdout)["findings"] if f["rule"] == "unsigned-image")
            runs.append((seconds, images["roundTrips"], images["fromCache"], unsigned))
    print(f"{IMAGES} images pushed and signed in {setup:.1f} s (setup, not measured below)")
    print("| run | whole scan | registry round trips | from cache | unsigned found |")
    print("|---|---|---|---|---|")
    for name, (seconds, trips, cached, unsigned) in zip(("empty cache", "with cache"), runs):
        print(f"| {name} | {seconds:.2f} s | {trips} | {cached} | {unsigned} |")


if __name__ == "__main__":
    main()
