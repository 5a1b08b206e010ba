"""A module that imports something missing (load errors must not be hidden)."""

import tests.apps.does_not_exist_anywhere  # noqa: F401
