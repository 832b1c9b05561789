"""The visitor's pages: check in by QR code, view and end one's own visit.

What the app mounts (nightreg/routes.py): `router` and `TEMPLATE_DIR`.
"""

from pathlib import Path

from kiosk.controllers import kiosk_router as router

TEMPLATE_DIR = Path(__file__).parent / "templates"

__all__ = ["TEMPLATE_DIR", "router"]
