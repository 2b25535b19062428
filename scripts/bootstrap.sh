#!/usr/bin/env bash
# Install everything the tests and the local stack need on a fresh Debian machine (run as root
# or with sudo): the database servers, the PAM module that verifies IAM tokens, Node.js for the
# CDK, and a virtual environment with the project and its dev dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(postgresql mariadb-server libpam-python nodejs openssl chromium)
command -v python3 >/dev/null && python3 -c 'import venv, ensurepip' 2>/dev/null || packages+=(python3 python3-venv)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
