"""Superset's configuration for the BI test (tests/browser/test_superset.py).

Superset keeps its own metadata in SQLite at TOLLGATE_SUPERSET_DB; nothing is fetched from
the internet and no example data is loaded.
"""

import os

SECRET_KEY = os.environ["TOLLGATE_SUPERSET_SECRET"]
SQLALCHEMY_DATABASE_URI = "sqlite:///" + os.environ["TOLLGATE_SUPERSET_DB"]
# One process serves everything; queries run in the web request (no Celery workers).
RESULTS_BACKEND = None
CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}
DATA_CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}
# No telemetry, no tiles, no example data.
SCARF_ANALYTICS = False
MAPBOX_API_KEY = ""
# Served on plain HTTP on loopback.
TALISMAN_ENABLED = False
SESSION_COOKIE_SECURE = False
