"""Coverage-guided fuzz targets (atheris), run by hand; see ``docs/security.md``.

Each target states the invariants it checks; a failure is an uncaught exception, which
atheris reports with the input that caused it (saved as ``crash-<hash>``).
"""
