"""`python -m bo.probe [URL]` (or `bo probe [URL]`): one GET of a health endpoint, for container
healthchecks (the image has no curl).

The exit code is the answer: 0 when the endpoint answered 2xx within the timeout, 1 otherwise,
with one line saying what it got. The URL is the argument, else `BO_PROBE_URL` (the image
sets the API's `/healthz`; each service of the compose stack names its own port).
Healthchecks run `python -m bo.probe`: it imports nothing of bo but this module (0.07 s of
CPU, where `bo probe` loads the whole command line first: about 1.2 s, every 10 s).
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Final

DEFAULT_URL: Final = "http://127.0.0.1:8000/healthz"
TIMEOUT_S: Final = 2.0


def probe(url: str, timeout_s: float = TIMEOUT_S) -> tuple[bool, str]:
    """Whether `url` answered 2xx, and a line saying what it answered."""
    if not url.startswith(("http://", "https://")):
        return False, f"{url}: not an http(s) URL"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310 (scheme checked above)
            return 200 <= resp.status < 300, f"{url}: {resp.status}"
    except urllib.error.HTTPError as exc:
        return False, f"{url}: {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        return False, f"{url}: {reason}"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    healthy, line = probe(args[0] if args else os.environ.get("BO_PROBE_URL") or DEFAULT_URL)
    print(line, file=sys.stdout if healthy else sys.stderr)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
