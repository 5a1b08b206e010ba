"""Counts requests; nothing imports this module by hand: framework.setup() does."""

import logging

from framework import receiver
from framework import signals

log = logging.getLogger("reqcount")

STARTED = []
"""One entry per request_started seen in this process."""


@receiver(signals.request_started)
def count_request(sender, *, environ, **kwargs):
    STARTED.append(environ.get("PATH_INFO"))
    log.info("reqcount: request %d started: %s", len(STARTED), environ["PATH_INFO"])
