"""The staff side: the register, flags, sharing, privacy and accounts pages, and the JSON API.

What the app mounts (nightreg/routes.py): the routers in admin.routes and `TEMPLATE_DIRS`.
"""

from pathlib import Path

TEMPLATE_DIRS = (Path(__file__).parent / "templates",)
