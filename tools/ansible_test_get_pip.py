"""Offline stand-in for ansible-test's pip bootstrap script (get-pip.py).

ansible-test's sanity venvs are created without pip and normally fetch a get-pip.py script
from a host this machine cannot reach. This script does the same job with what Python
ships: ``ensurepip`` puts the bundled pip into the running interpreter, then pip installs
the packages ansible-test asked for (``pip==X`` among them) from the package index.
``make sanity`` copies it to ~/.ansible/test/cache/get_pip_<version>.py when missing.
"""

from __future__ import annotations

import ensurepip
import os
import sys

GET_PIP_ONLY_FLAGS = {"--no-setuptools", "--no-wheel"}
# ansible-test runs this with a scrubbed environment (no PIP_CERT, SSL_CERT_FILE): name the
# system CA bundle so HTTPS to the package index verifies behind a TLS-inspecting proxy too.
SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def main() -> int:
    ensurepip.bootstrap(upgrade=True)
    from pip._internal.cli.main import main as pip_main

    args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY_FLAGS]
    if os.path.exists(SYSTEM_CA_BUNDLE):
        args = ["--cert", SYSTEM_CA_BUNDLE, *args]
    return pip_main(["install", "--upgrade", *args])


if __name__ == "__main__":
    sys.exit(main())
