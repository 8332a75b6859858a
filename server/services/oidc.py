"""The OpenID Connect client: discovery, the authorization URL, the code exchange and a full
validation of the ID token, all through Authlib (and joserfc, Authlib's JOSE library).

Nothing here is hand-written JWT or JWKS handling: Authlib builds the authorization request
(PKCE S256) and exchanges the code; joserfc checks the signature against the provider's
key set (fetched again once when a token names a key we do not know: the provider rotated
its keys), and Authlib's ``CodeIDToken`` checks ``iss``, ``aud``, ``azp``, ``nonce``,
``exp``, ``iat`` and ``at_hash`` with a small leeway for clocks. What the organisation
requires on top (its tenant, its email domains) is ``domain.signin``'s.

Every failure is a ``DomainError``: ``ProviderUnavailable`` when the provider cannot be
reached or answers nonsense, ``SignInRefused`` when what it answered does not hold.

Authlib, joserfc (and with it ``cryptography``) and httpx2 are imported at the first
sign-in, not with the server: about 14 MB of a process's memory that a deployment
without an identity provider never needs (decision 142).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from server.domain.signin import (
    ProviderSettings,
    ProviderUnavailable,
    SignInRefused,
    origin_of,
)

if TYPE_CHECKING:
    from authlib.integrations.httpx_client import AsyncOAuth2Client
    from joserfc import jwt

log = logging.getLogger("opendpia.oidc")
SCOPE = "openid email profile"
LEEWAY_SECONDS = 60  # clocks of two machines disagree a little; a minute, no more


class OpenIdClient:
    """Talks to each organisation's provider on the organisation's behalf.

    Discovery documents and key sets are cached per issuer, in this process only: a
    document is read again at the start of every sign-in (so a provider that is down is
    told at once, not after a redirect to nowhere), a key set only when a token names a
    key it does not have.
    """

    def __init__(
        self,
        redirect_uri: str,
        *,
        timeout: float = 10.0,
        leeway: int = LEEWAY_SECONDS,
    ) -> None:
        self.redirect_uri = redirect_uri
        self._timeout = timeout
        self._leeway = leeway
        self._metadata: dict[str, dict[str, Any]] = {}
        self._keys: dict[str, dict[str, Any]] = {}

    def _client(self, provider: ProviderSettings) -> AsyncOAuth2Client:
        from authlib.integrations.httpx_client import AsyncOAuth2Client

        return AsyncOAuth2Client(
            client_id=provider.client_id,
            client_secret=provider.client_secret,
            scope=SCOPE,
            redirect_uri=self.redirect_uri,
            code_challenge_method="S256",
            timeout=self._timeout,
            follow_redirects=False,
        )

    async def _get_json(self, url: str, what: str, provider: ProviderSettings) -> dict[str, Any]:
        import httpx2

        try:
            async with httpx2.AsyncClient(timeout=self._timeout) as http:
                response = await http.get(url, headers={"accept": "application/json"})
            response.raise_for_status()
            data = response.json()
        except (httpx2.HTTPError, ValueError) as error:
            log.warning("%s of %s: %s", what, provider.issuer, error)
            raise _unavailable(provider) from None
        if not isinstance(data, dict):
            raise _unavailable(provider)
        return data

    async def metadata(self, provider: ProviderSettings, *, fresh: bool) -> dict[str, Any]:
        """The provider's discovery document (read again when ``fresh``)."""
        if not fresh and provider.issuer in self._metadata:
            return self._metadata[provider.issuer]
        url = provider.issuer.rstrip("/") + "/.well-known/openid-configuration"
        document = await self._get_json(url, "discovery", provider)
        needed = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
        if not all(isinstance(document.get(key), str) for key in needed):
            log.warning("discovery of %s lacks one of %s", provider.issuer, needed)
            raise _unavailable(provider)
        if document["issuer"].rstrip("/") != provider.issuer.rstrip("/"):
            # OpenID Connect Discovery 1.0 §4.3: the issuer must be the one asked for.
            log.warning("discovery of %s names issuer %s", provider.issuer, document["issuer"])
            raise _unavailable(provider)
        self._metadata[provider.issuer] = document
        return document

    def authorization_origins(self) -> set[str]:
        """Origins of the authorization endpoints seen so far (they may differ from the
        issuer's: the sign-in page lets its form lead to them)."""
        return {origin_of(m["authorization_endpoint"]) for m in self._metadata.values()}

    async def authorization_url(
        self,
        provider: ProviderSettings,
        *,
        state: str,
        nonce: str,
        code_verifier: str,
        login_hint: str,
    ) -> str:
        """Where to send the person: the provider's page, with PKCE S256, state and nonce."""
        metadata = await self.metadata(provider, fresh=True)
        async with self._client(provider) as client:
            url, _ = client.create_authorization_url(
                metadata["authorization_endpoint"],
                state=state,
                code_verifier=code_verifier,
                nonce=nonce,
                login_hint=login_hint,
            )
        return str(url)

    async def claims(
        self, provider: ProviderSettings, *, code: str, code_verifier: str, nonce: str
    ) -> Mapping[str, Any]:
        """Exchange ``code`` and answer the ID token's claims, every check passed."""
        import httpx2
        from authlib.integrations.httpx_client import OAuthError
        from authlib.oidc.core import CodeIDToken
        from joserfc.errors import ExpiredTokenError, JoseError

        metadata = await self.metadata(provider, fresh=False)
        try:
            async with self._client(provider) as client:
                token = await client.fetch_token(
                    metadata["token_endpoint"], code=code, code_verifier=code_verifier
                )
        except OAuthError as error:  # the provider refused the code (e.g. invalid_grant)
            log.info("token exchange refused by %s: %s", provider.issuer, error)
            raise SignInRefused(
                f"{provider.organisation_name}'s sign-in service refused to complete your "
                "sign-in (your account may be disabled there); sign in again, or ask your "
                "IT service desk"
            ) from None
        except (httpx2.HTTPError, ValueError) as error:
            log.warning("token exchange with %s: %s", provider.issuer, error)
            raise _unavailable(provider) from None
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise SignInRefused(
                f"{provider.organisation_name}'s sign-in service sent no ID token; ask your "
                "IT service desk to check OpenDPIA's app registration (scope openid)"
            )
        decoded = await self._verified(provider, metadata, id_token)
        checks = CodeIDToken(
            decoded.claims,
            decoded.header,
            {"iss": {"essential": True, "values": [metadata["issuer"]]}},
            {
                "nonce": nonce,
                "client_id": provider.client_id,
                "access_token": token.get("access_token"),
            },
        )
        try:
            checks.validate(now=int(time.time()), leeway=self._leeway)
        except ExpiredTokenError:
            raise SignInRefused(
                f"The sign-in that {provider.organisation_name}'s service sent has expired "
                "(or this server's clock is wrong); sign in again"
            ) from None
        except JoseError as error:
            log.info("ID token from %s failed a check: %s", provider.issuer, error)
            raise SignInRefused(
                f"The sign-in that {provider.organisation_name}'s service sent failed a check "
                f"({error.error}); sign in again"
            ) from None
        return dict(decoded.claims)

    async def _verified(
        self, provider: ProviderSettings, metadata: Mapping[str, Any], id_token: str
    ) -> jwt.Token:
        """The ID token decoded, its signature checked against the provider's keys."""
        from joserfc import jwt
        from joserfc.errors import BadSignatureError, InvalidKeyIdError, JoseError
        from joserfc.jwk import KeySet
        from joserfc.jws import JWSRegistry

        algorithms = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
        registry = JWSRegistry(algorithms=[a for a in algorithms if a != "none"])
        for attempt in (1, 2):
            keys = await self._key_set(provider, metadata, refresh=attempt == 2)
            try:
                key_set = KeySet.import_key_set(keys)  # type: ignore[arg-type]
                return jwt.decode(id_token, key_set, registry=registry)
            except InvalidKeyIdError:
                if attempt == 2:
                    break  # the provider's own key set does not have it either
            except BadSignatureError:
                break
            except (JoseError, ValueError) as error:
                log.info("ID token from %s unreadable: %s", provider.issuer, error)
                break
        raise SignInRefused(
            f"The sign-in that {provider.organisation_name}'s service sent is not signed by "
            "it (its signature does not match the service's keys); nobody was signed in. "
            "Try again; if it happens again, tell your IT service desk"
        )

    async def _key_set(
        self, provider: ProviderSettings, metadata: Mapping[str, Any], *, refresh: bool
    ) -> dict[str, Any]:
        """The provider's keys: cached, or fetched again (``refresh``) when a token names a
        key we lack. Tokens reach this only from the provider's token endpoint, after the
        state check, so a refresh cannot be triggered by a stranger."""
        cached = self._keys.get(provider.issuer)
        if cached is not None and not refresh:
            return cached
        keys = await self._get_json(metadata["jwks_uri"], "key set", provider)
        self._keys[provider.issuer] = keys
        return keys


def _unavailable(provider: ProviderSettings) -> ProviderUnavailable:
    return ProviderUnavailable(
        f"{provider.organisation_name}'s sign-in service ({provider.issuer}) is not "
        "answering, so nobody from it can sign in just now. Try again in a few minutes; "
        "if it lasts, tell your IT service desk"
    )
