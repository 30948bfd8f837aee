"""Keeps schemathesis from locking itself out.

The fuzzed surface includes key and user administration, and schemathesis learns ids and
emails from the answers it reads (`GET /keys` lists its own key). Disabling, revoking,
rotating or deleting the very key it calls with, or deactivating or demoting the user behind
it, would turn every later case into a 401 that proves nothing. So a case aimed at that key
or user is pointed at one that does not exist: the route is still exercised (and must
answer 404), and the run keeps its credentials. Every other key and user is fair game.
"""

import os

import schemathesis

OWN_KEY_ID = os.environ["RAPPORT_SCHEMATHESIS_KEY_ID"].strip()
OWN_EMAIL = os.environ["RAPPORT_SCHEMATHESIS_EMAIL"].strip().lower()


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    params = case.path_parameters or {}
    if str(params.get("id", "")).strip() == OWN_KEY_ID:
        params["id"] = "key_schemathesis_elsewhere"
    if str(params.get("email", "")).strip().lower() == OWN_EMAIL:
        params["email"] = "nobody@schemathesis.invalid"
