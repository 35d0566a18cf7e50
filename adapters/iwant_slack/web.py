"""The Slack Web API client we use, and what its failures mean for a sender.

``send_message`` must raise on failure so the iwant plugin can decide: an exception with
``undeliverable = True`` means "this recipient can never get it" (the notification is marked
undeliverable); anything else is transient and retried with backoff by the plugin.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any

from iwant_platform.contract import SendError, Undeliverable
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

log = logging.getLogger(__name__)

# Errors about the recipient or the place: sending again will never work.
PERMANENT_ERRORS = frozenset(
    {
        "user_not_found",
        "users_not_found",
        "user_not_visible",
        "user_disabled",
        "account_inactive",
        "cannot_dm_bot",
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "restricted_action",
        "restricted_action_read_only_channel",
        "restricted_action_thread_only_channel",
        "team_access_not_granted",
        "too_many_users",
        "not_enough_users",
        "msg_too_long",
        "invalid_blocks",
    }
)
# Errors that mean our token is wrong: nothing works until someone fixes the configuration.
AUTH_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"}
)

# How long we honour a Retry-After inside one call before giving up to the caller's backoff.
MAX_RETRY_AFTER_SECONDS = 30
RATE_LIMIT_RETRIES = 3


class SlackDeliveryError(SendError):
    """Sending failed, probably for a while only: retry later. ``error``: Slack's code."""

    def __init__(self, message: str, error: str | None = None) -> None:
        super().__init__(message)
        self.error = error


class SlackUndeliverable(SlackDeliveryError, Undeliverable):
    """Sending can never succeed (no such user, a bot, deactivated, no such channel …)."""


class SlackRateLimited(SlackDeliveryError):
    """Slack kept answering 429 after our bounded retries; ``retry_after`` says how long."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message, "ratelimited")
        self.retry_after = retry_after


class BoundedRateLimitRetryHandler(RateLimitErrorRetryHandler):
    """slack-sdk's 429 handler sleeps for whatever Retry-After says; we honour it only up
    to a bound, so a sending thread never sleeps for an hour on one message."""

    def __init__(
        self,
        max_retry_count: int,
        max_wait: float,
        on_rate_limited: Callable[[float], None] | None = None,
    ) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait = max_wait
        self.on_rate_limited = on_rate_limited

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        wait = retry_after(response.headers)
        # Only chat.postMessage shares the workspace's message budget; a 429 of another
        # method (users.info, conversations.open) has limits of its own.
        if self.on_rate_limited is not None and request.url.split("?")[0].endswith(
            "/chat.postMessage"
        ):
            try:  # every process of the bot pauses, not only this thread
                self.on_rate_limited(wait)
            except Exception:
                log.exception("reporting a 429 failed")
        return wait <= self.max_wait

    def prepare_for_next_attempt(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        if response is None:
            raise error  # type: ignore[misc]
        state.next_attempt_requested = True
        time.sleep(retry_after(response.headers) + random.random() * 0.25)
        state.increment_current_attempt()


def retry_after(headers: dict[str, Any]) -> float:
    """Seconds from a Retry-After header (slack-sdk gives header values as lists)."""
    for key, value in headers.items():
        if key.lower() == "retry-after":
            raw = value[0] if isinstance(value, list | tuple) else value
            try:
                return max(0.0, float(raw))
            except (TypeError, ValueError):
                return 1.0
    return 1.0


def make_web_client(
    token: str,
    base_url: str | None,
    timeout: int = 15,
    on_rate_limited: Callable[[float], None] | None = None,
) -> WebClient:
    """A WebClient that retries connection errors, 5xx once, and 429s after Retry-After
    (each 429's wait also goes to ``on_rate_limited``)."""
    kwargs: dict[str, Any] = {
        "token": token,
        "timeout": timeout,
        "retry_handlers": [
            ConnectionErrorRetryHandler(max_retry_count=2),
            ServerErrorRetryHandler(max_retry_count=1),
            BoundedRateLimitRetryHandler(
                RATE_LIMIT_RETRIES, MAX_RETRY_AFTER_SECONDS, on_rate_limited
            ),
        ],
    }
    if base_url:
        kwargs["base_url"] = base_url
    return WebClient(**kwargs)


def api_error(exc: SlackApiError) -> str:
    response = exc.response
    try:
        return str(response.get("error") or "unknown_error")
    except Exception:
        return "unknown_error"


def delivery_error(exc: Exception, what: str) -> SlackDeliveryError:
    """Map any failure of a Web API call to the exception a sender raises."""
    if isinstance(exc, SlackDeliveryError):
        return exc
    if isinstance(exc, SlackApiError):
        error = api_error(exc)
        status = getattr(exc.response, "status_code", None)
        if status == 429 or error == "ratelimited":
            headers = getattr(exc.response, "headers", {}) or {}
            return SlackRateLimited(f"{what}: rate limited by Slack", retry_after(headers))
        if error in PERMANENT_ERRORS:
            return SlackUndeliverable(f"{what}: {error}", error)
        return SlackDeliveryError(f"{what}: {error}", error)
    return SlackDeliveryError(f"{what}: {type(exc).__name__}: {exc}")
