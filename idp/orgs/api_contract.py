"""The management API's contract: its scopes, the fields and limits of its requests. The API
views (``idp.orgs.api``) check requests against it and the OpenAPI document
(``idp.orgs.openapi``) declares it, so the two cannot drift apart."""

from __future__ import annotations

from dataclasses import dataclass

from idp.identity.models import JoinRequestStatus, MembershipStatus
from idp.identity.phone import PHONE_LENGTH
from idp.orgs import operators, reviews

PREFIX = "/api/v1"
OPERATORS_SCOPE = "org.operators"
REVIEWS_SCOPE = "org.reviews"
# Which scope a route needs, by the start of its rule; a route under /api/v1/org/ that is not
# listed here is refused to everyone (deny by default).
ROUTE_SCOPES = {
    f"{PREFIX}/org/operators": OPERATORS_SCOPE,
    f"{PREFIX}/org/reviews": REVIEWS_SCOPE,
}
MAX_BODY = 16 * 1024  # bytes; the largest valid body (a 200-character reason) is under 1 KiB
PER_PAGE = 20
OPERATOR_STATUSES = [s.value for s in MembershipStatus]
EDITABLE_STATUSES = [s.value for s in operators.EDITABLE_STATUSES]
REVIEW_STATUSES = [*(s.value for s in JoinRequestStatus), "all"]


@dataclass(frozen=True)
class Text:
    """A string field of a request body: its longest length and whether line breaks and tabs
    may appear (the OpenAPI document declares the same limits)."""

    max_length: int
    multiline: bool = False


ADD_FIELDS = {"name": Text(operators.MAX_NAME), "phone": Text(PHONE_LENGTH)}
PATCH_FIELDS = {"phone": Text(PHONE_LENGTH), "status": Text(8)}
REJECT_FIELDS = {"reason": Text(reviews.MAX_REASON, multiline=True)}
QUERY_PARAMS = {"query": Text(operators.MAX_QUERY)}
