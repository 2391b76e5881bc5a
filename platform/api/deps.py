"""What routes declare they need, by type."""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Request
from pydantic import Field, TypeAdapter, ValidationError
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from driftloop.platform.config import Settings
from driftloop.platform.serving.champions import ServedModels
from driftloop.platform.serving.predictions import PredictionStore
from driftloop.platform.store.engine import session_scope


# The getters are coroutines though they await nothing: FastAPI runs a plain function dependency
# in its thread pool, and three hops per request cost a prediction a measurable share.
async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_engine(request: Request) -> Engine:
    return request.app.state.engine


def get_session(engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[Session]:
    """One transaction per request, committed here at the edge (rolled back on any error). It may
    write, so on SQLite it holds the write lock from its first statement: routes that only read
    take :data:`ReadSessionDep`."""
    with session_scope(engine) as session:
        yield session


def get_read_session(engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[Session]:
    """A read-only transaction per request: it never waits for a writer, and cannot write."""
    with session_scope(engine, read_only=True) as session:
        yield session


async def get_served_models(request: Request) -> ServedModels:
    return request.app.state.served_models


async def get_prediction_store(request: Request) -> PredictionStore:
    return request.app.state.prediction_store


SettingsDep = Annotated[Settings, Depends(get_settings)]
ServedModelsDep = Annotated[ServedModels, Depends(get_served_models)]
PredictionStoreDep = Annotated[PredictionStore, Depends(get_prediction_store)]
EngineDep = Annotated[Engine, Depends(get_engine)]
# scope="function": the transaction commits when the route returns and before the response is
# sent. With the default ("request") FastAPI runs the commit after sending, so a client could
# read its own write too early, or get a 2xx for a write whose commit then failed.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
ReadSessionDep = Annotated[Session, Depends(get_read_session, scope="function")]
# Job ids and version numbers are 32-bit columns: a larger number names no row, and PostgreSQL
# would refuse the comparison (a 500) rather than find nothing.
MAX_ROW_NUMBER = 2**31 - 1
RowNumber = Annotated[int, Path(ge=1, le=MAX_ROW_NUMBER)]
_ROW_NUMBER = TypeAdapter(Annotated[int, Field(ge=1, le=MAX_ROW_NUMBER)])


def row_number(raw: str) -> int | None:
    """The number a path parameter declared :data:`RowNumber` stands for, or None where the route's
    own validation answers 422. Code that reads the parameter before that validation (a key check)
    goes through here: by the same parser, it cannot take a text the route refuses, nor fail on one
    (``int()`` raises on 4,301 digits, and on digits such as "²" that ``str.isdigit`` accepts)."""
    try:
        return _ROW_NUMBER.validate_python(raw)
    except ValidationError:
        return None
