"""Single sign-on pages: leaving for an organisation's provider, coming back from it, and the
organisation's sign-in settings for its administrators.

The way out (``leave_for_provider``) remembers the sign-in server-side (state, nonce, PKCE
verifier: ``services.signin``) and binds it to this browser with a short-lived cookie
holding the state, so that a callback URL carried to another browser (login CSRF) or
used twice is refused. The way back validates everything before a session opens, with the
same session cookie as a password sign-in; every failure is a page that says what
happened and what to do, with the status of ``web.errors``.
"""

from __future__ import annotations

import hmac
import re
from datetime import timedelta

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from server.domain.errors import AccessDenied, DomainError, InvalidToken, TooManyAttempts
from server.domain.signin import ProviderSettings, SignInRefused, identity_from_claims
from server.web.auth import SESSION_COOKIE, runtime_of
from server.web.context import UserRequest, user_page
from server.web.errors import http_status_for
from server.web.middleware import CONTENT_SECURITY_POLICY
from server.web.rendering import field, form, page

CALLBACK_PATH = "/login/oidc/callback"
STATE_COOKIE = "opendpia_sso"
STATE_SECONDS = 600
SSO_FAILURE = "(single sign-on)"  # how refused callbacks are counted for throttling


async def leave_for_provider(
    request: Request, provider: ProviderSettings, email: str, next_path: str
) -> Response:
    """Send the person to their organisation's provider (or say why not)."""
    runtime = runtime_of(request)
    try:
        state, nonce, verifier = await runtime.signin.begin(provider.organisation_id, next_path)
        url = await runtime.oidc.authorization_url(
            provider, state=state, nonce=nonce, code_verifier=verifier, login_hint=email
        )
    except DomainError as error:
        return failed(request, error)
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        STATE_COOKIE,
        state,
        max_age=STATE_SECONDS,
        path=CALLBACK_PATH,
        httponly=True,
        samesite="lax",  # sent on the provider's top-level redirect back to us
        secure=runtime.settings.env == "production",
    )
    return response


async def callback(request: Request) -> Response:
    runtime = runtime_of(request)
    query = request.query_params
    state = query.get("state", "")[:200]
    address = request.client.host if request.client else "unknown"
    try:
        await runtime.accounts.check_sign_in_rate(SSO_FAILURE, address)
        if not state:
            raise InvalidToken(
                "This address is where sign-in services send people back; start from the "
                "sign-in page"
            )
        cookie = request.cookies.get(STATE_COOKIE, "")
        if not hmac.compare_digest(cookie.encode(), state.encode()):
            raise InvalidToken(
                "This sign-in was started in another browser, or its cookie was lost: the "
                "state does not match. Start again from the sign-in page in this browser"
            )
        pending = await runtime.signin.claim(state)
        provider = await runtime.signin.for_organisation(pending.organisation_id)
        if provider is None:
            raise SignInRefused("Your organisation no longer signs in with single sign-on")
        if query.get("error"):
            raise _provider_error(provider, query.get("error", ""), query.get("error_description"))
        code = query.get("code", "")
        if not code or len(code) > 2000:
            raise SignInRefused("The sign-in service sent no authorization code; try again")
        claims = await runtime.oidc.claims(
            provider, code=code, code_verifier=pending.code_verifier, nonce=pending.nonce
        )
        lifetime = timedelta(hours=runtime.settings.sso_session_hours)
        signed = await runtime.signin.sign_in(
            runtime.accounts, provider, identity_from_claims(claims), lifetime
        )
    except DomainError as error:
        if isinstance(error, AccessDenied) and not isinstance(error, TooManyAttempts):
            # Replayed, stolen or refused callbacks count like wrong passwords.
            await runtime.accounts.record_failure(SSO_FAILURE, address)
        response = failed(request, error)
        response.delete_cookie(STATE_COOKIE, path=CALLBACK_PATH)
        return response
    response = RedirectResponse(pending.next_path or "/projects", status_code=303)
    response.delete_cookie(STATE_COOKIE, path=CALLBACK_PATH)
    response.set_cookie(
        SESSION_COOKIE,
        signed.secret,
        max_age=int(lifetime.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=runtime.settings.env == "production",
    )
    return response


def _provider_error(provider: ProviderSettings, error: str, description: str | None) -> DomainError:
    said = f" It said: {description[:200]}" if description else ""
    if error == "access_denied":
        return SignInRefused(
            f"{provider.organisation_name}'s sign-in service did not sign you in: you "
            f"cancelled, did not agree, or your account may not use OpenDPIA.{said} Start "
            "again from the sign-in page, or ask your IT service desk"
        )
    return SignInRefused(
        f"{provider.organisation_name}'s sign-in service answered with an error "
        f"({error[:60]}).{said} Try again; if it happens again, tell your IT service desk"
    )


async def forms_may_leave_for_providers(request: Request, response: Response) -> Response:
    """The sign-in form's answer may redirect to a provider, and browsers hold a form's
    redirects to the page's ``form-action``: the sign-in page allows the organisations'
    providers there (decision 84), every other page only itself."""
    origins = await runtime_of(request).signin.provider_origins()
    origins |= runtime_of(request).oidc.authorization_origins()
    allowed = " ".join(sorted(o for o in origins if _SAFE_ORIGIN.fullmatch(o)))
    policy = CONTENT_SECURITY_POLICY.replace("form-action 'self'", f"form-action 'self' {allowed}")
    response.headers["content-security-policy"] = policy.strip()
    return response


_SAFE_ORIGIN = re.compile(r"https?://[A-Za-z0-9.\-\[\]:]{1,300}")


def failed(request: Request, error: DomainError) -> Response:
    status = http_status_for(error)
    response = page(request, "sign_in_failed.html", status, message=str(error), status=status)
    if isinstance(error, TooManyAttempts):
        response.headers["Retry-After"] = str(error.retry_after)
    return response


@user_page
async def settings_page(context: UserRequest) -> Response:
    request, runtime = context.request, context.runtime
    directory = runtime.signin
    organisation_id, code, name = await directory.organisation(request.path_params["code"])
    if not await directory.may_administer(context.user, organisation_id):
        raise AccessDenied(f"Only {name}'s administrators can change how its people sign in")
    current = await directory.for_organisation(organisation_id)
    values = _values(current, await directory.domains_of(organisation_id))
    error, saved, status = None, False, 200
    if request.method == "POST":
        data = await form(request)
        values = {key: field(data, key, 2000) for key in _TEXT_FIELDS}
        values.update({key: "on" if field(data, key) else "" for key in _CHOICES})
        try:
            current = await directory.save(
                code,
                actor=f"user:{context.user.id}",
                channel="browser",
                issuer=values["issuer"],
                client_id=values["client_id"],
                client_secret=values["client_secret"] or None,
                domains=values["domains"],
                tenant=values["tenant"],
                jit=bool(values["jit"]),
                admin_group=values["admin_group"],
                forbid_passwords=bool(values["forbid_passwords"]),
            )
        except DomainError as failure:
            error, status = str(failure), http_status_for(failure)
        else:
            values, saved = _values(current, current.domains), True
        values["client_secret"] = ""  # never sent back, not even what was just typed
    return page(
        request,
        "sign_in_settings.html",
        status,
        code=code,
        organisation=name,
        values=values,
        masked_secret=current.masked_secret if current else "",
        redirect_uri=runtime.oidc.redirect_uri,
        error=error,
        saved=saved,
    )


_TEXT_FIELDS = ("domains", "issuer", "client_id", "client_secret", "tenant", "admin_group")
_CHOICES = ("jit", "forbid_passwords")


def _values(current: ProviderSettings | None, domains: tuple[str, ...]) -> dict[str, str]:
    if current is None:
        return {key: "" for key in (*_TEXT_FIELDS, *_CHOICES)} | {"domains": " ".join(domains)}
    return {
        "domains": " ".join(current.domains),
        "issuer": current.issuer,
        "client_id": current.client_id,
        "client_secret": "",
        "tenant": current.tenant,
        "admin_group": current.admin_group,
        "jit": "on" if current.jit else "",
        "forbid_passwords": "on" if current.forbid_passwords else "",
    }


routes = [
    Route(CALLBACK_PATH, callback),
    Route("/admin/organisations/{code}/sign-in", settings_page, methods=["GET", "POST"]),
]
