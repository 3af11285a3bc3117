"""Pages of a list, for the console pages and the management API alike."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from idp.errors import IdpError

T = TypeVar("T")
MAX_PER_PAGE = 100
MAX_PAGE = 100_000


class PageOutOfRangeError(IdpError):
    code = "invalid_page"
    message = _l("分页参数无效")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list."""

    items: list[T]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def check_page(page: int, per_page: int) -> None:
    """Refuse page numbers and sizes a list cannot serve (page from 1, 1–100 a page)."""
    if not 1 <= page <= MAX_PAGE or not 1 <= per_page <= MAX_PER_PAGE:
        raise PageOutOfRangeError()


def paginate(
    session: Session, stmt: Select[*tuple[Any, ...]], *, page: int, per_page: int
) -> tuple[list[Any], int]:
    """The rows of ``page`` of an ordered ``stmt`` and the total count of its rows."""
    check_page(page, per_page)
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    rows = session.execute(stmt.limit(per_page).offset((page - 1) * per_page)).all()
    return list(rows), int(total or 0)
