"""``manual_sync``: the user's own sync settings and manual sync (HTTPS, Google ID token).

POST /sync {"section"}   run (inline) or queue a sync of the caller's sections
GET  /status             settings, last sync and result per section, account status
PUT  /settings           validate and save the caller's settings
"""

from __future__ import annotations

import functions_framework

from adapters import logs
from adapters.identity import NotSignedIn
from functions import bootstrap
from functions.manual_logic import SyncIn, caller, save_settings, start_sync, status
from functions.webhook_logic import Rejected

logs.setup()


@functions_framework.http
def manual_sync(request):
    config = bootstrap.Config.from_env()
    store = bootstrap.shared_store(config)
    route = (request.method, request.path.rstrip("/") or "/")
    try:
        if route == ("GET", "/status"):
            user = caller(config, store, request.headers.get("Authorization"),
                          request.args.get("userId"))  # fmt: skip
            return status(store, user), 200
        if route == ("PUT", "/settings"):
            user = caller(config, store, request.headers.get("Authorization"))
            return save_settings(store, user, request.get_data()), 200
        if route == ("POST", "/sync"):
            body = SyncIn.model_validate_json(request.get_data() or b"{}")
            user = caller(config, store, request.headers.get("Authorization"), body.userId)
            return start_sync(config, store, user, body.section), 200
        return {"error": f"no route {route[0]} {route[1]}"}, 404
    except NotSignedIn as exc:
        return {"error": str(exc)}, 401
    except Rejected as rejected:
        return {"error": str(rejected)}, rejected.status
    except ValueError as exc:  # pydantic: a malformed body
        return {
            "error": f"invalid request: {exc.errors()[0]['msg'] if hasattr(exc, 'errors') else exc}"
        }, 400
