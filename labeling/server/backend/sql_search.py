"""An Argilla search engine that reads Argilla's own SQL database, so the server runs without
Elasticsearch. Chosen with ``ARGILLA_SEARCH_ENGINE=driftloop-sql`` once this module is imported
(``launch.py`` does it).

Runs inside the Argilla server's virtualenv. Every record, response, suggestion, vector and
metadata value is already in the database, so the index-upkeep methods do nothing and the query
methods load what a query needs and evaluate it with ``record_matching``. Works on SQLite and
PostgreSQL alike: JSON values are read by SQLAlchemy and compared in Python. Meant for one machine
and datasets of thousands of records; production uses Elasticsearch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID

from argilla_server.database import AsyncSessionLocal
from argilla_server.enums import MetadataPropertyType, SimilarityOrder
from argilla_server.models import (
    Dataset,
    Field,
    MetadataProperty,
    Question,
    Record,
    Response,
    Suggestion,
    User,
    Vector,
    VectorSettings,
)
from argilla_server.search_engine.base import (
    Filter,
    FloatMetadataMetrics,
    IntegerMetadataMetrics,
    MetadataFilterScope,
    MetadataMetrics,
    Order,
    ResponseFilterScope,
    SearchEngine,
    SearchResponseItem,
    SearchResponses,
    SuggestionFilterScope,
    TermsMetrics,
    TextQuery,
)
from record_matching import (
    RecordDoc,
    ResponseDoc,
    SuggestionDoc,
    TextMatcher,
    cosine_scores,
    flatten,
    matches,
    scopes_of,
    sort_records,
    tokens_of,
    user_rank,
)
from sqlalchemy import func, literal_column, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

ENGINE_NAME = "driftloop-sql"


@SearchEngine.register(ENGINE_NAME)
class SqlSearchEngine(SearchEngine):
    @classmethod
    async def new_instance(cls) -> SqlSearchEngine:
        return cls()

    async def close(self) -> None:
        pass

    async def ping(self) -> bool:
        try:
            async with AsyncSessionLocal() as db:
                await db.execute(select(1))
        except SQLAlchemyError:
            return False
        return True

    async def info(self) -> dict:
        return {"name": ENGINE_NAME, "version": {"number": "1", "distribution": ENGINE_NAME}}

    # The database is the index: nothing to keep up to date.

    async def create_index(self, dataset: Dataset) -> None:
        pass

    async def delete_index(self, dataset: Dataset) -> None:
        pass

    async def configure_metadata_property(self, dataset: Dataset, metadata_property: MetadataProperty) -> None:
        pass

    async def configure_index_vectors(self, vector_settings: VectorSettings) -> None:
        pass

    async def index_records(self, dataset: Dataset, records: Iterable[Record]) -> None:
        pass

    async def partial_record_update(self, record: Record, **update: Any) -> None:
        pass

    async def delete_records(self, dataset: Dataset, records: Iterable[Record]) -> None:
        pass

    async def update_record_response(self, response: Response) -> None:
        pass

    async def delete_record_response(self, response: Response) -> None:
        pass

    async def update_record_suggestion(self, suggestion: Suggestion) -> None:
        pass

    async def delete_record_suggestion(self, suggestion: Suggestion) -> None:
        pass

    # Queries.

    async def get_dataset_progress(self, dataset: Dataset) -> dict:
        if dataset.is_draft:
            return {}
        query = select(Record.status, func.count()).where(Record.dataset_id == dataset.id).group_by(Record.status)
        return await _count_by_status(query)

    async def get_dataset_user_progress(self, dataset: Dataset, user: User) -> dict:
        """The user's responses in the dataset by status. (Elasticsearch counts the statuses of every
        response on the records the user answered, which inflates a user's draft and submitted counts
        by the other annotators' responses; this counts the user's own.)"""
        if dataset.is_draft:
            return {}
        query = (
            select(Response.status, func.count())
            .join(Record, Response.record_id == Record.id)
            .where(Record.dataset_id == dataset.id, Response.user_id == user.id)
            .group_by(Response.status)
        )
        return await _count_by_status(query)

    async def search(
        self,
        dataset: Dataset,
        query: TextQuery | str | None = None,
        filter: Filter | None = None,
        sort: list[Order] | None = None,
        offset: int = 0,
        limit: int = 100,
        user_id: UUID | str | None = None,
    ) -> SearchResponses:
        async with AsyncSessionLocal() as db:
            records, relevance = await _matching_records(db, dataset.id, query, filter, sort)
        scores = relevance or {}
        if user_id:
            # Elasticsearch multiplies the relevance by a random score seeded with the user id.
            scores = {record.id: scores.get(record.id, 1.0) * user_rank(user_id, record.id) for record in records}
        if sort:
            sort_records(records, sort)
        elif scores:
            records.sort(key=lambda record: scores[record.id], reverse=True)
        items = [
            SearchResponseItem(record_id=record.id, score=None if sort else scores.get(record.id, 1.0))
            for record in records[offset : offset + limit]
        ]
        return SearchResponses(items=items, total=len(records))

    async def similarity_search(
        self,
        dataset: Dataset,
        vector_settings: VectorSettings,
        value: list[float] | None = None,
        record: Record | None = None,
        query: TextQuery | str | None = None,
        filter: Filter | None = None,
        max_results: int = 100,
        order: SimilarityOrder = SimilarityOrder.most_similar,
        threshold: float | None = None,
    ) -> SearchResponses:
        if bool(value) == bool(record):
            raise ValueError("Must provide either vector value or record to compute the similarity search")
        excluded = None
        if not value:
            excluded = record.id
            value = record.vector_value_by_vector_settings(vector_settings)
        if not value:
            raise ValueError("Cannot find a vector value to apply with provided info")
        if order == SimilarityOrder.least_similar:
            value = [-component for component in value]

        async with AsyncSessionLocal() as db:
            rows = await db.execute(
                select(Vector.record_id, Vector.value).where(Vector.vector_settings_id == vector_settings.id)
            )
            vectors = {record_id: vector for record_id, vector in rows}
            if filter is not None or query:
                allowed, _ = await _matching_records(db, dataset.id, query, filter, None)
                kept = {candidate.id for candidate in allowed}
                vectors = {key: vector for key, vector in vectors.items() if key in kept}
        vectors.pop(excluded, None)

        scores = cosine_scores(value, vectors)
        ranked = sorted(scores.items(), key=lambda pair: pair[1], reverse=True)[:max_results]
        total = len(ranked)
        if threshold is not None:
            ranked = [(key, score) for key, score in ranked if score >= threshold]
        return SearchResponses(items=[SearchResponseItem(record_id=k, score=s) for k, s in ranked], total=total)

    async def compute_metrics_for(self, metadata_property: MetadataProperty) -> MetadataMetrics:
        async with AsyncSessionLocal() as db:
            rows = await db.scalars(select(Record.metadata_).where(Record.dataset_id == metadata_property.dataset_id))
            per_record = [flatten((metadata or {}).get(metadata_property.name)) for metadata in rows]

        if metadata_property.type == MetadataPropertyType.terms:
            total = sum(len(values) for values in per_record)
            if total == 0:
                return TermsMetrics(total=0)
            counts = Counter(term for values in per_record for term in {str(value) for value in values})
            ordered = sorted(counts.items(), key=lambda pair: (-pair[1], pair[0]))
            return TermsMetrics(total=total, values=[TermsMetrics.TermCount(term=t, count=c) for t, c in ordered])

        numbers = [
            value
            for values in per_record
            for value in values
            if isinstance(value, int | float) and not isinstance(value, bool)
        ]
        metrics = (
            IntegerMetadataMetrics if metadata_property.type == MetadataPropertyType.integer else FloatMetadataMetrics
        )
        return metrics(min=min(numbers, default=None), max=max(numbers, default=None))


async def _count_by_status(query: Any) -> dict:
    async with AsyncSessionLocal() as db:
        counts = {str(status): count for status, count in await db.execute(query)}
    return {"total": sum(counts.values()), **counts}


async def _matching_records(
    db: AsyncSession,
    dataset_id: UUID,
    query: TextQuery | str | None,
    filter: Filter | None,
    sort: Sequence[Order] | None,
) -> tuple[list[RecordDoc], dict[UUID, float] | None]:
    """The dataset's records that pass the filter and the text query, in insertion order, with
    their text relevance when there is a query."""
    scopes = scopes_of(filter, sort)
    records = await _load_records(
        db,
        dataset_id,
        fields=bool(query),
        metadata=any(isinstance(scope, MetadataFilterScope) for scope in scopes),
        responses=any(isinstance(scope, ResponseFilterScope) for scope in scopes),
        suggestions=any(isinstance(scope, SuggestionFilterScope) for scope in scopes),
    )
    if filter is not None:
        records = [record for record in records if matches(record, filter)]
    if not query:
        return records, None

    text = TextQuery(q=query) if isinstance(query, str) else query
    names = [text.field] if text.field else await _searchable_field_names(db, dataset_id)
    relevance = TextMatcher(text.q).rank({record.id: tokens_of(record.fields, names) for record in records})
    return [record for record in records if record.id in relevance], relevance


async def _searchable_field_names(db: AsyncSession, dataset_id: UUID) -> list[str]:
    rows = await db.execute(select(Field.name, Field.settings).where(Field.dataset_id == dataset_id))
    return [name for name, settings in rows if (settings or {}).get("type") != "image"]


async def _load_records(
    db: AsyncSession,
    dataset_id: UUID,
    *,
    fields: bool,
    metadata: bool,
    responses: bool,
    suggestions: bool,
) -> list[RecordDoc]:
    columns = [Record.id, Record.external_id, Record.status, Record.inserted_at, Record.updated_at]
    columns += [Record.fields] if fields else []
    columns += [Record.metadata_] if metadata else []
    # Records logged in one batch can share a timestamp: SQLite's rowid keeps them in insertion order,
    # as Elasticsearch's index order would.
    tiebreak = literal_column("records.rowid") if db.bind.dialect.name == "sqlite" else Record.id
    rows = await db.execute(
        select(*columns).where(Record.dataset_id == dataset_id).order_by(Record.inserted_at, tiebreak)
    )
    records = {}
    for row in rows:
        record = RecordDoc(id=row[0], external_id=row[1], status=str(row[2]), inserted_at=row[3], updated_at=row[4])
        if fields:
            record.fields = row[5] or {}
        if metadata:
            record.metadata = row[-1] or {}
        records[record.id] = record

    if responses:
        rows = await db.execute(
            select(Response.record_id, Response.user_id, Response.status, Response.values)
            .join(Record, Response.record_id == Record.id)
            .where(Record.dataset_id == dataset_id)
        )
        for record_id, user_id, status, values in rows:
            if record_id in records:  # a record added since the first query is not part of this answer
                flat = {question: (answer or {}).get("value") for question, answer in (values or {}).items()}
                records[record_id].responses.append(ResponseDoc(user_id=user_id, status=str(status), values=flat))

    if suggestions:
        rows = await db.execute(
            select(
                Suggestion.record_id,
                Question.name,
                Suggestion.value,
                Suggestion.score,
                Suggestion.agent,
                Suggestion.type,
            )
            .join(Question, Suggestion.question_id == Question.id)
            .where(Question.dataset_id == dataset_id)
        )
        for record_id, question, value, score, agent, kind in rows:
            if record_id in records:
                records[record_id].suggestions[question] = SuggestionDoc(
                    value=value, score=score, agent=agent, type=str(kind) if kind is not None else None
                )
    return list(records.values())
