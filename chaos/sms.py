"""An SMS channel for the drills: every message sent is one JSON line in a file.

``SMS_BACKEND=chaos.sms.FileSmsChannel`` with ``CHAOS_SMS_FILE``; the checks count
messages per (number, text): a customer told the same thing twice is a duplicate effect.
Each line is one ``write`` on an ``O_APPEND`` file, so the workers' lines never mix.
"""

from __future__ import annotations

import json
import os
import time


class FileSmsChannel:
    def send(self, to: str, body: str) -> None:
        line = json.dumps({"t": time.time(), "to": to, "body": body}) + "\n"
        fd = os.open(os.environ["CHAOS_SMS_FILE"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
