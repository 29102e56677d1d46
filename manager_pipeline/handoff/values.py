"""Handing an op's values to the next op on any machine (Celery workers), as data: JSON and ids,
never pickled objects, never with a secret in them.

The rows wait where others can write (every staging worker and the webhook receiver reach the
manager's database), so nothing in one is trusted for what it says:

- each row is signed (HMAC-SHA256 under ``MANAGER_HANDOFF_KEY``, bound to its key) and a row that
  fails is refused before it is read (``seal``, ``unseal``);
- a run's request travels as its event's tags and the sha256 of manager.yaml, and is resolved again
  from manager.yaml where it is taken; a manager.yaml that changed since is refused;
- a variables document travels as where it was read (the source, the commit) and its sha256, and is
  read again where it is needed: its text may hold the source's Slack webhook;
- a deploy config of a document travels as that document and its digest, and is validated again from
  it (the webhook comes back that way); one made from a plan's record travels as its tfvars;
- a saved plan travels as its id: the machine that takes it gets its files from the plan store
  (the artifact bucket), never from the disk of the machine that planned;
- the rest (a working directory, an outcome, their parts) are plain values of a fixed list of types.

Anything else, or anything that holds a secret this process knows (``feedback/redact.py``), is
refused, never written. Where the rows wait (the manager's database, or the artifact bucket) is a
``Stash``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Any, Mapping, Protocol

from sqlalchemy import delete, insert, select

from manager_pipeline.config.model import AwsAccess, SourceSpec, TriggerSpec
from manager_pipeline.config.request import ResolvedRequest
from manager_pipeline.contract import DeployConfig, parse_variables
from manager_pipeline.contract.deploy_config import InstanceSettings
from manager_pipeline.db.migrate import upgraded_engine
from manager_pipeline.db.tables import handoff_table
from manager_pipeline.errors import ManagerError
from manager_pipeline.events import DispatchEvent
from manager_pipeline.outcome import Outcome, OutcomeStatus
from manager_pipeline.pipeline.read import read_config
from manager_pipeline.plans.record import Plan
from manager_pipeline.redact import known_secrets, register_secret
from manager_pipeline.sources import VariablesDocument
from manager_pipeline.terraform.plan import PlanSummary
from manager_pipeline.terraform.workdir import BackendSettings, Workdir

# Values of finished runs are kept this long (a re-execution from a failed step reads its parent's).
RETENTION_S = 7 * 24 * 3600.0


class HandoffError(ManagerError):
    """A value that cannot be handed on (a secret in it, a type that is not data) or taken (its
    signature fails, its source or manager.yaml changed since)."""


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
    """What the receiving machine asks for: a document read again, a plan with its files here, a
    request resolved again against manager.yaml as it is here."""

    def document(self, ref: DocumentRef) -> VariablesDocument: ...
    def plan(self, plan_id: str) -> Plan: ...
    def request(self, event: DispatchEvent, manager_digest: str, recorded: SourceSpec | None) -> ResolvedRequest: ...


def resolve_again(config, event: DispatchEvent, manager_digest: str, recorded: SourceSpec | None) -> ResolvedRequest:
    """``event``'s request under ``config`` (a ManagerConfig), refused unless it is the manager.yaml the run
    resolved it under: the policy, the source and the module are manager.yaml's, never a row's."""
    if config.digest != manager_digest:
        raise HandoffError(
            f"manager.yaml changed since this run resolved its request (sha256 {manager_digest[:12]}, now "
            f"{config.digest[:12]}): the run stops here, nothing was applied; start it again"
        )
    return ResolvedRequest.resolve(config, event, recorded)


# Plain values that travel field by field: no code, no secret, no path to anything but their own.
_PLAIN: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        AwsAccess,
        BackendSettings,
        DispatchEvent,
        InstanceSettings,
        Outcome,
        PlanSummary,
        SourceSpec,
        TriggerSpec,
        Workdir,
    )
}
_ENUMS: dict[str, type[Enum]] = {OutcomeStatus.__name__: OutcomeStatus}
_TAG = "~"


def _encode(value: Any, what: str) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)) and not isinstance(value, Enum):
        return value
    if isinstance(value, list):
        return [_encode(item, what) for item in value]
    if isinstance(value, tuple):
        return {_TAG: "tuple", "items": [_encode(item, what) for item in value]}
    if isinstance(value, Path):
        return {_TAG: "path", "value": str(value)}
    if isinstance(value, Enum) and type(value).__name__ in _ENUMS:
        return {_TAG: type(value).__name__, "value": value.value}
    if isinstance(value, Mapping):
        if not all(isinstance(key, str) for key in value):
            raise HandoffError(f"{what} has a mapping with keys that are not text: it is not handed to another machine")
        return {_TAG: "dict", "items": {key: _encode(item, what) for key, item in value.items()}}
    if isinstance(value, Plan):
        return {_TAG: "plan", "id": value.plan_id}
    if isinstance(value, VariablesDocument):
        if value.spec is None:
            raise HandoffError(f"{what} is a variables document of unknown origin: it is not handed to another machine")
        return {_TAG: "variables", "ref": _encode(_fields(DocumentRef.of(value)), what)}
    if isinstance(value, DeployConfig):
        return _encode_config(value, what)
    if isinstance(value, ResolvedRequest):
        event = value.event
        # A destroy's source may have left manager.yaml: then it is the one its plans recorded.
        recorded = value.source if event.destroy else None
        return {
            _TAG: "request",
            "event": _encode(event, what),
            "manager_digest": value.manager_digest,
            "recorded": _encode(recorded, what),
        }
    if dataclasses.is_dataclass(value) and type(value).__name__ in _PLAIN and _PLAIN[type(value).__name__] is type(value):
        return {_TAG: type(value).__name__, "fields": _encode(_fields(value), what)}
    raise HandoffError(
        f"{what} is a {type(value).__name__}, which is not handed to another machine as data: hand on ids and "
        "plain values (handoff/values.py lists them)"
    )


def _fields(value: Any) -> dict[str, Any]:
    return {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}


def _encode_config(config: DeployConfig, what: str) -> dict[str, Any]:
    origin = config.origin if isinstance(config.origin, VariablesDocument) and config.origin.spec else None
    if origin is not None:
        return {
            _TAG: "deploy-config",
            "ref": _encode(_fields(DocumentRef.of(origin)), what),
            "environment": config.environment,
            "source": config.source_name,
            "digest": config.digest,
        }
    if config.slack_webhook:
        raise HandoffError(
            f"the deploy config of {config.source_name}/{config.environment} holds a Slack webhook and no "
            "document to read it again from: it is not handed to another machine"
        )
    # Made from a plan's record (an apply, a destroy): what Terraform received, and nothing more.
    return {_TAG: "deploy-config", "tfvars": _encode(config.to_tfvars(), what)}


def _decode(data: Any, resolver: Resolver) -> Any:
    if isinstance(data, list):
        return [_decode(item, resolver) for item in data]
    if not isinstance(data, dict):
        return data
    kind = data.get(_TAG)
    if kind == "tuple":
        return tuple(_decode(item, resolver) for item in data["items"])
    if kind == "path":
        return Path(data["value"])
    if kind == "dict":
        return {key: _decode(item, resolver) for key, item in data["items"].items()}
    if kind in _ENUMS:
        return _ENUMS[kind](data["value"])
    if kind == "plan":
        return resolver.plan(str(data["id"]))
    if kind == "variables":
        return resolver.document(DocumentRef(**_decode(data["ref"], resolver)))
    if kind == "deploy-config":
        if "tfvars" in data:
            return DeployConfig.from_tfvars(_decode(data["tfvars"], resolver))
        document = resolver.document(DocumentRef(**_decode(data["ref"], resolver)))
        config = config_of(document, data["environment"], data["source"], data["digest"])
        register_secret(config.slack_webhook)  # masked by every sink of this process too
        return config
    if kind == "request":
        recorded = _decode(data["recorded"], resolver)
        return resolver.request(_decode(data["event"], resolver), str(data["manager_digest"]), recorded)
    if kind in _PLAIN:
        return _PLAIN[kind](**_decode(data["fields"], resolver))
    raise HandoffError(f"a handed-on value names an unknown kind {str(kind)[:40]!r}: refused")


def config_of(document: VariablesDocument, environment: str, source: str, digest: str) -> DeployConfig:
    """The deploy config validated again from ``document``, refused unless it is the one this run made."""
    declared = (parse_variables(document.text, document.location).data or {}).get("environments") or {}
    again = read_config(document, list(declared), environment, source)
    if again.digest != digest:
        raise HandoffError(
            f"{document.location} no longer resolves to the deploy config of this run for {environment}: "
            "the run stops here, nothing was applied; start it again"
        )
    return replace(again, origin=document)


def dumps(value: Any, what: str) -> bytes:
    """``value`` as JSON another machine can take; a HandoffError (naming ``what``, never the secret)
    when it is not data, or a secret this process knows would be in it."""
    body = json.dumps(_encode(value, what), sort_keys=True, separators=(",", ":")).encode("utf-8")
    for secret in known_secrets():
        if secret.encode("utf-8") in body:
            raise HandoffError(
                f"{what} holds a secret the manager knows: it is not handed to another machine; keep secrets out "
                "of op outputs (pass where to read them instead)"
            )
    return body


def loads(body: bytes, resolver: Resolver) -> Any:
    try:
        data = json.loads(body)
    except ValueError:
        raise HandoffError("a handed-on value is not JSON: refused") from None
    try:
        return _decode(data, resolver)
    except (KeyError, TypeError, ValueError) as exc:
        raise HandoffError(f"a handed-on value is malformed ({type(exc).__name__}): refused") from None


_SEAL = b"mp-handoff-1:"


def _mac(key: bytes, name: str, body: bytes) -> str:
    return hmac.new(key, name.encode("utf-8") + b"\n" + body, hashlib.sha256).hexdigest()


def seal(body: bytes, key: bytes, name: str) -> bytes:
    """``body`` signed for the row ``name``: a row moved to another name, or changed, fails ``unseal``."""
    return _SEAL + _mac(key, name, body).encode("ascii") + b"\n" + body


def unseal(row: bytes, key: bytes, name: str) -> bytes:
    """The body of a row ``seal`` wrote under ``name`` with ``key``; a HandoffError for any other row."""
    head, _, body = bytes(row).partition(b"\n")
    given = head.removeprefix(_SEAL).decode("ascii", errors="replace") if head.startswith(_SEAL) else ""
    if not hmac.compare_digest(given, _mac(key, name, body)):
        raise HandoffError(
            f"the handed-on value {name} is not signed with this manager's MANAGER_HANDOFF_KEY (changed, or written "
            "by something that does not hold it): refused, nothing was applied; re-execute the run from that step"
        )
    return body


class Stash(Protocol):
    """Where handed values wait for the op that takes them."""

    def put(self, key: str, body: bytes) -> None: ...
    def get(self, key: str) -> bytes | None: ...


_LAST_PRUNE: dict[str, float] = {}


class DatabaseStash:
    """Values in the manager's database (every worker reaches it), one row each; old ones pruned hourly."""

    def __init__(self, database_url: str, retention_s: float = RETENTION_S):
        self.engine = upgraded_engine(database_url)
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
