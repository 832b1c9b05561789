"""The staff side: pages under /admin and the JSON API under /api/v1, a subpackage per feature.

Each feature package holds its controllers and, in its own `templates/` folder, its templates
(named "admin/<page>.html" as before). Shared templates (the layout, the error page, macros more
than one feature uses) stay in `admin/templates/`. The staff guard is in `admin.web`; what the
app mounts (nightreg/routes.py) is the routers in `admin.routes` and `TEMPLATE_DIRS`.
"""

from pathlib import Path

_HERE = Path(__file__).parent

FEATURES = ("register", "flags", "privacy", "sharing", "accounts", "operations", "round")

# Every folder the template loader searches for the staff side's templates: the shared one, then
# each feature's. Template names are unique across them.
TEMPLATE_DIRS: tuple[Path, ...] = (
    _HERE / "templates",
    *(_HERE / feature / "templates" for feature in FEATURES),
)
