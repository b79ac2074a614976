from __future__ import annotations

from wsgi2asgi.cli import main

raise SystemExit(main())
