"""Tokens and contexts: OAuth access tokens, and who a UAPI request asks about what."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from calls.uapi.wire import EXTENSION_SELF, USER_ME, USER_OWNER, USER_VIEWER, ErrorCode

from .base import EmulatorBase
from .errors import bad_request
from .world import Account, App


@dataclass
class Token:
    value: str
    app: App
    lifetime: int
    expires_at: float


@dataclass(frozen=True)
class Context:
    """Who is asking about what: the resolved URI segments of a UAPI request."""

    account: Account  # the user context (the token's account or one below it)
    user_segment: str  # as given in the URI, for links
    extension: str | None  # None for @self

    def extensions(self) -> frozenset[str]:
        if self.extension is None:
            return self.account.extensions
        return frozenset({self.extension})


class Tokens(EmulatorBase):
    def issue_token(self, client_id: str, client_secret: str | None = None) -> Token | None:
        """A new access token for the app, or None when the credentials are wrong."""
        app = self.world.apps.get(client_id)
        if app is None or (client_secret is not None and client_secret != app.client_secret):
            return None
        lifetime = self.token_lifetime if self.token_lifetime is not None else app.token_lifetime
        # 40 hex characters, like the PHP OAuth2 server VoipNow is built on.
        token = Token(secrets.token_hex(20), app, lifetime, time.time() + lifetime)
        self.tokens[token.value] = token
        return token

    def token_account(self, value: str | None) -> Account | None:
        token = self.tokens.get(value or "")
        if token is None:
            return None
        if token.expires_at <= time.time():
            del self.tokens[token.value]
            return None
        return self.world.accounts[token.app.account]

    def revoke_tokens(self, value: str | None = None) -> int:
        if value is None:
            count = len(self.tokens)
            self.tokens.clear()
            return count
        return 1 if self.tokens.pop(value, None) else 0

    def set_token_lifetime(self, seconds: int | None) -> None:
        """Give tokens issued from now on ``seconds`` of life; None: each app's own."""
        self.token_lifetime = seconds

    def resolve(self, account: Account, user_segment: str, ext_segment: str) -> Context:
        """Apply the userId and extension rules of the UAPI URI fragment."""
        world = self.world
        if user_segment in (USER_ME, USER_VIEWER):
            context_account = account
        elif user_segment == USER_OWNER:
            if ext_segment == EXTENSION_SELF:
                # Unknown in the docs: @owner with @self. The owner cannot be derived from
                # an extension, so the token's own account is used.
                context_account = account
            else:
                if ext_segment not in account.extensions:
                    raise bad_request(ErrorCode.EXTENSION_INVALID, "Invalid extension.")
                context_account = world.accounts[world.extensions[ext_segment].user_id]
        else:
            target = world.accounts.get(user_segment)
            if target is None or not (
                target.id == account.id
                or target.id in account.user_ids
                # organization_ids of a user account names the organization above it.
                or (account.kind == "serviceProvider" and target.id in account.organization_ids)
            ):
                raise bad_request(
                    ErrorCode.USER_INVALID,
                    "Invalid userId. It must be a User Id or @owner, @me, @viewer.",
                )
            context_account = target
        if ext_segment == EXTENSION_SELF:
            return Context(context_account, user_segment, None)
        if ext_segment not in context_account.extensions:
            raise bad_request(
                ErrorCode.EXTENSION_INVALID,
                "Invalid extension. It must be an existing extension number or @self.",
            )
        return Context(context_account, user_segment, ext_segment)
