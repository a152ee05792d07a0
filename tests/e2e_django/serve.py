"""Serve the Django example on a free loopback port; print the port, then serve until killed.

Run by the fixtures of this package in a subprocess, with the settings overrides in the
environment (``DEMO_DATA_DIR``, ``MFAKIT_IDLE_SECONDS``, ...). One process, many threads:
the development e-mail backend (locmem) keeps the outbox in this process, where the dev
outbox page reads it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2] / "examples" / "django_project"


def main() -> None:
    sys.path.insert(0, str(PROJECT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "register_site.settings")
    import django
    from django.core.wsgi import get_wsgi_application
    from werkzeug.serving import make_server

    django.setup()
    server = make_server("127.0.0.1", 0, get_wsgi_application(), threaded=True)
    print(server.server_port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
