"""``hf:ORG/NAME[@REVISION]``: a Hub checkpoint's ``config.json`` and the processor configs it has, read from
huggingface_hub's cache or fetched into it. Never the weights.

huggingface_hub does the fetching, so its settings hold: a gated or private repo uses the user's token
(``HF_TOKEN`` or a stored ``hf auth login``), ``HF_HUB_OFFLINE=1`` serves the cache alone, ``HF_HOME`` and
``HF_HUB_CACHE`` say where the cache is, ``HF_ENDPOINT`` which server to ask. Every failure is one line.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torchcost.errors import first_line
from torchcost.sources.base import ModelSourceError, require

CONFIG = "config.json"
# What a vision, audio or multimodal checkpoint's processors read (image size, patching, audio features).
PROCESSOR_CONFIGS = ("preprocessor_config.json", "processor_config.json", "video_preprocessor_config.json")
HUB_ID = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*)(?:@(?P<revision>[^\s@]+))?$")


@dataclass(frozen=True)
class HubId:
    repo: str  # ORG/NAME
    revision: str | None  # a branch, tag or commit; None: the repo's default branch

    def __str__(self) -> str:
        return self.repo + (f"@{self.revision}" if self.revision else "")


def hub_id(name: str) -> HubId | None:
    """``name`` as a Hub id, or None when it is not written as one or names a file or folder that exists here."""
    match = HUB_ID.match(name)
    if match is None or name.endswith(".json") or Path(name).exists():
        return None
    return HubId(match["repo"], match["revision"])


def cached(repo: HubId) -> Path | None:
    """The folder of the repo's config.json in the cache, without asking the Hub; None when it is not there."""
    hub = require("huggingface_hub", "transformers")
    found = hub.try_to_load_from_cache(repo.repo, CONFIG, revision=repo.revision)
    return Path(found).parent if isinstance(found, str) else None


def fetch(repo: HubId) -> Path:
    """The folder holding the repo's config.json and whichever processor configs it has, fetched into the cache
    where they are not there yet."""
    hub = require("huggingface_hub", "transformers")
    # HF_ENDPOINT is read now, not when huggingface_hub was imported; the cache and the token are its own
    download = functools.partial(hub.hf_hub_download, revision=repo.revision, endpoint=os.environ.get("HF_ENDPOINT"))
    try:
        config = Path(download(repo.repo, CONFIG))
    except Exception as exc:
        raise ModelSourceError(failure(hub, repo, exc)) from None
    for name in PROCESSOR_CONFIGS:  # most checkpoints have none of these: a missing one is no failure
        with contextlib.suppress(Exception):
            download(repo.repo, name)
    return config.parent


def failure(hub: Any, repo: HubId, exc: Exception) -> str:
    """Why the repo's config.json could not be had, in one line with what to do."""
    errors = hub.errors
    cache = hub.constants.HF_HUB_CACHE
    why = first_line(exc) or type(exc).__name__
    if isinstance(exc, errors.GatedRepoError):
        return (
            f"hf:{repo} is a gated repo and this machine has no token that may read it: accept its terms on "
            "its Hub page, then `hf auth login` or set HF_TOKEN"
        )
    if isinstance(exc, errors.RevisionNotFoundError):
        return f"hf:{repo}: the repo has no revision {repo.revision!r}; name a branch, tag or commit it has"
    if isinstance(exc, errors.RepositoryNotFoundError):
        return (
            f"hf:{repo}: no such repo on the Hub (check the name, ORG/NAME as on its page; a private repo needs "
            "HF_TOKEN)"
        )
    if isinstance(exc, errors.RemoteEntryNotFoundError):
        return (
            f"hf:{repo} has no config.json: torchcost builds transformers models from their config, and this "
            "repo is not one"
        )
    if isinstance(exc, errors.HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", "an error")
        return f"hf:{repo}: the Hub answered {status} ({why}); try again later"
    if hub.constants.is_offline_mode():
        return (
            f"hf:{repo}: its config.json is not in the Hub cache ({cache}) and HF_HUB_OFFLINE is set: fetch it "
            "once with the network on, or give a config file (hf:path/to/config.json)"
        )
    return (
        f"hf:{repo}: cannot reach the Hub ({why}) and its config.json is not in the cache ({cache}); "
        "connect, or use a shipped preset (torchcost list) or a config file (hf:path/to/config.json)"
    )
