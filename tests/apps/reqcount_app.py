"""An app module that never imports its receivers nor calls framework.setup().

``/count`` says how many requests the receivers of the installed app
``reqcount`` saw in this process, or -1 if that module was never imported.
"""

import os
import sys

from framework import App

os.environ.setdefault("FRAMEWORK_SETTINGS_MODULE", "reqcount_settings")

app = App(__name__)


@app.route("/")
def index(request):
    return "ok"


@app.route("/count")
def count(request):
    receivers = sys.modules.get("reqcount.receivers")
    return {"started": -1 if receivers is None else len(receivers.STARTED)}
