"""The curated schema (schema.pbtxt), shipped as package data."""

import os

from core import names

SCHEMA_DIR = os.path.dirname(os.path.abspath(__file__))
SCHEMA_FILE = os.path.join(SCHEMA_DIR, names.SCHEMA_FILE)
