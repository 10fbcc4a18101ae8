"""Settings for every environment (DJANGO_SETTINGS_MODULE=config.settings).

Production differs from development only by environment variables (see docs/operations.md, "Configuration").
Without DATABASE_URL and REDIS_URL the project runs on the embedded default: SQLite, jobs run
in-process, an in-memory channel layer and a local-memory cache.

Split by concern, each part under the 400-line limit and read in this order; every part parses
the environment through the one `env` of base (which reads `.env` first).
"""

from config.settings.base import *  # noqa: F403, I001 (read in this order)
from config.settings.security import *  # noqa: F403
from config.settings.services import *  # noqa: F403
from config.settings.domain import *  # noqa: F403
from config.settings.observability import *  # noqa: F403
