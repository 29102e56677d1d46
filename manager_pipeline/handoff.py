"""Handing an op's values to the next op on any machine (Celery workers), never with a secret in them.

A value is pickled, except what must not, or cannot usefully, travel as bytes:

- a variables document read from a source travels as where it was read (the source, the commit) and
  its sha256, and is read again where it is needed: its text may hold the source's Slack webhook;
- a deploy config travels without its Slack webhook; where it is needed, the webhook is read again
  from the config's document (the same bytes, checked by sha256);
- a saved plan travels as its id: the machine that takes it gets its files from the plan store
  (the artifact bucket), never from the disk of the machine that planned.

Anything else that holds a secret this process knows (``feedback/redact.py``) is refused, never written.
Where the bytes wait (the manager's database, or the artifact bucket) is a ``Stash``.
"""

from __future__ import annotations

import io
import pickle
import time
from dataclasses import dataclass, replace
from typing import Any, Protocol

from sqlalchemy import Column, Float, LargeBinary, String, Table, delete, insert, select

from manager_pipeline.config import SourceSpec
from manager_pipeline.contract import DeployConfig, load_variables, parse_variables, resolve
from manager_pipeline.database import engine_for, metadata
from manager_pipeline.errors import ManagerError
from manager_pipeline.feedback.redact import known_secrets, register_secret
from manager_pipeline.plans.record import Plan
from manager_pipeline.sources import VariablesDocument

# Values of finished runs are kept this long (a re-execution from a failed step reads its parent's).
RETENTION_S = 7 * 24 * 3600.0


class HandoffError(ManagerError):
    """A value that cannot be handed on (a secret in it) or taken (its source changed since)."""


@dataclass(frozen=True)
class DocumentRef:
    """Where a variables document was read, and what it held (sha256): enough to read it again."""

    spec: SourceSpec
    source: str
    location: str
    sha: str | None
    branch: str | None
    branch_verified: bool
    digest: str

    @classmethod
    def of(cls, document: VariablesDocument) -> DocumentRef:
        assert document.spec is not None
        return cls(
            spec=document.spec,
            source=document.source,
            location=document.location,
            sha=document.sha,
            branch=document.branch,
            branch_verified=document.branch_verified,
            digest=document.digest,
        )

    def restore(self, text: str) -> VariablesDocument:
        """The document as it was read, with ``text`` read again; refused unless the bytes are the same."""
        document = VariablesDocument(
            source=self.source,
            text=text,
            location=self.location,
            sha=self.sha,
            branch=self.branch,
            branch_verified=self.branch_verified,
            spec=self.spec,
        )
        if document.digest != self.digest:
            raise HandoffError(
                f"{self.location} changed since this run read it (sha256 {self.digest[:12]}, now "
                f"{document.digest[:12]}): the run stops here, nothing was applied; start it again"
            )
        return document


class Resolver(Protocol):
    """What the receiving machine asks for: a document read again, a plan with its files here."""

    def document(self, ref: DocumentRef) -> VariablesDocument: ...
    def plan(self, plan_id: str) -> Plan: ...


_DOCUMENT, _CONFIG, _PLAN = "variables", "deploy-config", "plan"


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj: Any) -> Any:
        if isinstance(obj, VariablesDocument) and obj.spec is not None:
            return (_DOCUMENT, DocumentRef.of(obj))
        # A bare config (no webhook, no document) is pickled as it is: it is what a reference carries.
        if isinstance(obj, DeployConfig) and (obj.slack_webhook or obj.origin is not None):
            origin = obj.origin if isinstance(obj.origin, VariablesDocument) and obj.origin.spec else None
            if obj.slack_webhook and origin is None:
                raise HandoffError(
                    f"the deploy config of {obj.source_name}/{obj.environment} holds a Slack webhook and no "
                    "document to read it again from: it is not handed to another machine"
                )
            # Without the webhook; the document (as a reference) only when the webhook is to be read again.
            bare = replace(obj, slack_webhook=None, origin=None)
            return (_CONFIG, bare, DocumentRef.of(origin) if obj.slack_webhook and origin else None)
        if isinstance(obj, Plan):
            return (_PLAN, obj.plan_id)
        return None


class _Unpickler(pickle.Unpickler):
    def __init__(self, body: bytes, resolver: Resolver):
        super().__init__(io.BytesIO(body))
        self.resolver = resolver

    def persistent_load(self, pid: Any) -> Any:
        kind = pid[0]
        if kind == _DOCUMENT:
            return self.resolver.document(pid[1])
        if kind == _CONFIG:
            bare, ref = pid[1], pid[2]
            if ref is None:
                return bare
            document = self.resolver.document(ref)
            webhook = webhook_of(document, bare)
            register_secret(webhook)  # masked by every sink of this process too
            return replace(bare, slack_webhook=webhook, origin=document)
        if kind == _PLAN:
            return self.resolver.plan(pid[1])
        raise pickle.UnpicklingError(f"unknown reference {kind!r}")


def webhook_of(document: VariablesDocument, config: DeployConfig) -> str | None:
    """The Slack webhook ``config`` was resolved with, from its document (checked: the same config)."""
    declared = (parse_variables(document.text, document.location).data or {}).get("environments") or {}
    data = load_variables(document.text, list(declared), document.location)
    again = resolve(data, config.environment, config.source_name, document.location)
    if again.digest != config.digest:
        raise HandoffError(
            f"{document.location} no longer resolves to the deploy config of this run for {config.environment}: "
            "the run stops here, nothing was applied; start it again"
        )
    return again.slack_webhook


def dumps(value: Any, what: str) -> bytes:
    """``value`` as bytes another machine can take; a HandoffError (naming ``what``, never the secret)
    when a secret this process knows would be in them."""
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
    body = buffer.getvalue()
    for secret in known_secrets():
        if secret.encode("utf-8") in body:
            raise HandoffError(
                f"{what} holds a secret the manager knows: it is not handed to another machine; keep secrets out "
                "of op outputs (pass where to read them instead)"
            )
    return body


def loads(body: bytes, resolver: Resolver) -> Any:
    return _Unpickler(body, resolver).load()


class Stash(Protocol):
    """Where handed values wait for the op that takes them."""

    def put(self, key: str, body: bytes) -> None: ...
    def get(self, key: str) -> bytes | None: ...


handoff_table = Table(
    "op_handoffs",
    metadata,
    Column("key", String(512), primary_key=True),
    Column("body", LargeBinary, nullable=False),
    Column("created_at", Float, nullable=False, index=True),
)

_LAST_PRUNE: dict[str, float] = {}


class DatabaseStash:
    """Values in the manager's database (every worker reaches it), one row each; old ones pruned hourly."""

    def __init__(self, database_url: str, retention_s: float = RETENTION_S):
        self.engine = engine_for(database_url, handoff_table)
        self.url, self.retention_s = database_url, retention_s

    def put(self, key: str, body: bytes) -> None:
        now = time.time()
        with self.engine.begin() as connection:
            # Written again by a retried step: the newest value counts.
            connection.execute(delete(handoff_table).where(handoff_table.c.key == key))
            connection.execute(insert(handoff_table).values(key=key, body=body, created_at=now))
            if now - _LAST_PRUNE.get(self.url, 0.0) > 3600:
                _LAST_PRUNE[self.url] = now
                connection.execute(delete(handoff_table).where(handoff_table.c.created_at < now - self.retention_s))

    def get(self, key: str) -> bytes | None:
        with self.engine.connect() as connection:
            return connection.execute(select(handoff_table.c.body).where(handoff_table.c.key == key)).scalar()


class S3Stash:
    """Values in the artifact bucket under ``handoff/`` (expire them with a lifecycle rule on that prefix)."""

    def __init__(self, client: Any, bucket: str, prefix: str = "handoff"):
        self.client, self.bucket, self.prefix = client, bucket, prefix.strip("/")

    def put(self, key: str, body: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=f"{self.prefix}/{key}", Body=body)

    def get(self, key: str) -> bytes | None:
        from botocore.exceptions import ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=f"{self.prefix}/{key}")["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return None
            raise
