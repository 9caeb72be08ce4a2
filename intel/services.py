"""Writes for threat and trusted lists, their activation, and the per-process matcher cache.

Only the managing account's admins change lists (GuardDuty: the administrator; members read
only). Quotas (6 threat lists, 1 trusted list per account and region) are enforced by unique slot
numbers in the database, so concurrent creates cannot exceed them. Activation parses and compiles
in a Celery task and switches `active_version` in one UPDATE; on any failure the list goes to
ERROR with the reason and the previous version stays in force.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections import OrderedDict
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max

from accounts import access
from accounts.events import audit_record
from accounts.models import Account
from console.errors import ConflictError, NotFoundError, ServiceError
from intel.matching import CompiledList, CompiledMatcher, IndicatorHit, compile_parsed, custom_hit
from intel.models import MAX_THREAT_LISTS, MAX_TRUSTED_LISTS, IntelSet, IntelSetVersion
from intel.parsers import MAX_FILE_BYTES, ListFormatError, parse_list
from intel.s3 import parse_s3_uri, read_s3_object

NAME_RE = re.compile(r"^[A-Za-z0-9 _\-]{1,300}$")
MANAGE = "manage threat and trusted lists"
# Statuses in which a list's active version is used by detection. ACTIVATING and ERROR keep the
# previous good version in force while a replacement is parsed or after it failed.
IN_FORCE = (IntelSet.Status.ACTIVE, IntelSet.Status.ACTIVATING, IntelSet.Status.ERROR)


def max_entries(kind: str) -> int:
    """GuardDuty: 250,000 per threat list, 2,000 per trusted list. Vigil accepts more."""
    if kind == IntelSet.Kind.TRUSTED:
        return getattr(settings, "VIGIL_INTEL_MAX_TRUSTED_ENTRIES", 50_000)
    return getattr(settings, "VIGIL_INTEL_MAX_THREAT_ENTRIES", 1_000_000)


def _quota(kind: str) -> int:
    return MAX_TRUSTED_LISTS if kind == IntelSet.Kind.TRUSTED else MAX_THREAT_LISTS


def _validate(*, name: str | None = None, fmt: str | None = None, region: str | None = None) -> None:
    if name is not None and not NAME_RE.match(name):
        raise ServiceError("A list name is 1 to 300 letters, digits, spaces, hyphens or underscores.")
    if fmt is not None and fmt not in IntelSet.Format.values:
        raise ServiceError(f"Unknown format {fmt!r}; use one of {', '.join(IntelSet.Format.values)}.")
    if region is not None and region not in settings.VIGIL_REGIONS:
        raise ServiceError(f"Unknown region {region!r}.")


def _validate_source(location: str, content: bytes | None) -> None:
    if bool(location) == (content is not None):
        raise ServiceError("Give either a file or an s3:// location.")
    if location:
        parse_s3_uri(location)
    elif content is not None and len(content) > MAX_FILE_BYTES:
        raise ServiceError(f"The file is {len(content):,} bytes; the limit is {MAX_FILE_BYTES:,} bytes (35 MB).")
    elif content is not None and not content:
        raise ServiceError("The file is empty.")


def _take_slot(*, account: Account, region: str, kind: str) -> int:
    used = set(
        IntelSet.objects.filter(account=account, region=region, kind=kind, slot__isnull=False).values_list("slot", flat=True)
    )
    for slot in range(1, _quota(kind) + 1):
        if slot not in used:
            return slot
    if kind == IntelSet.Kind.TRUSTED:
        raise ConflictError(f"Account {account.aws_account_id} already has a trusted IP list in {region} (the limit is one).")
    raise ConflictError(f"Account {account.aws_account_id} already has {MAX_THREAT_LISTS} threat lists in {region} (the limit).")


def _dispatch_activation(intel_set: IntelSet) -> None:
    from intel.tasks import intel_set_activate_task

    intel_set_activate_task.delay_on_commit(intel_set.id)


@transaction.atomic
def intel_set_create(
    *,
    actor: Any,
    account: Account,
    region: str,
    kind: str,
    name: str,
    fmt: str,
    location: str = "",
    content: bytes | None = None,
    upload_name: str = "",
    activate: bool = True,
    expected_bucket_owner: str = "",
    tags: dict | None = None,
) -> IntelSet:
    manager = access.require_manager_role(actor, account, access.ADMIN_ROLES, what=MANAGE)
    if kind not in IntelSet.Kind.values:
        raise ServiceError("A list is a threat list or a trusted IP list.")
    _validate(name=name, fmt=fmt, region=region)
    _validate_source(location, content)
    if expected_bucket_owner and not re.fullmatch(r"\d{12}", expected_bucket_owner):
        raise ServiceError("The expected bucket owner is a 12-digit AWS account id.")
    for _attempt in range(3):
        slot = _take_slot(account=manager, region=region, kind=kind)
        try:
            with transaction.atomic():  # savepoint: a lost race on a slot retries with the next one
                intel_set = IntelSet.objects.create(
                    account=manager, region=region, kind=kind, slot=slot, name=name, format=fmt,
                    location=location, upload=content, upload_name=upload_name[:255],
                    expected_bucket_owner=expected_bucket_owner, tags=tags or {}, created_by=actor,
                    status=IntelSet.Status.ACTIVATING if activate else IntelSet.Status.INACTIVE,
                )
            break
        except IntegrityError:
            continue
    else:
        raise ConflictError("Another list was created at the same time; try again.")
    audit_record(account=manager, actor=actor, action="intel.list_create", target=name, set_id=intel_set.set_id,
                 kind=kind, region=region, format=fmt, location=location or f"upload:{upload_name}")
    if activate:
        _dispatch_activation(intel_set)
    return intel_set


def _get_for_manage(actor: Any, set_id: str, *, lock: bool = False) -> IntelSet:
    qs = IntelSet.objects.select_related("account").exclude(status=IntelSet.Status.DELETED)
    if lock:
        qs = qs.select_for_update(of=("self",))
    intel_set = qs.filter(set_id=set_id).first()
    if intel_set is None:
        raise NotFoundError("No such list.")
    try:
        access.require_manager_role(actor, intel_set.account, access.ADMIN_ROLES, what=MANAGE)
    except NotFoundError:
        # Members see their administrator's lists: a member's admin is refused, not told "not found".
        from intel.selectors import owner_ids_visible_to

        if intel_set.account_id in owner_ids_visible_to(actor):
            raise access.PermissionDeniedError(
                f"Lists of account {intel_set.account.aws_account_id} are managed by its admins only."
            )
        raise
    return intel_set


@transaction.atomic
def intel_set_update(
    *,
    actor: Any,
    set_id: str,
    name: str | None = None,
    location: str | None = None,
    content: bytes | None = None,
    upload_name: str = "",
    fmt: str | None = None,
    activate: bool | None = None,
) -> IntelSet:
    """GuardDuty's Update*(Name, Location, Activate): a new source takes effect on activation;
    Activate=False deactivates."""
    intel_set = _get_for_manage(actor, set_id, lock=True)
    if intel_set.is_busy:
        raise ConflictError(f"The list is {intel_set.status}; wait until that finishes.")
    _validate(name=name, fmt=fmt)
    changed: dict[str, Any] = {}
    if name is not None and name != intel_set.name:
        changed["name"] = name
        intel_set.name = name
    if fmt is not None and fmt != intel_set.format:
        changed["format"] = fmt
        intel_set.format = fmt
    if location is not None or content is not None:
        _validate_source(location or "", content)
        intel_set.location = location or ""
        intel_set.upload = content
        intel_set.upload_name = upload_name[:255] if content is not None else ""
        changed["location"] = location or f"upload:{upload_name}"
    if activate is True:
        intel_set.status = IntelSet.Status.ACTIVATING
    elif activate is False:
        intel_set.status = IntelSet.Status.INACTIVE
    intel_set.save()
    action = {True: "intel.list_activate_request", False: "intel.list_deactivate", None: "intel.list_update"}[activate]
    audit_record(account=intel_set.account, actor=actor, action=action, target=intel_set.name,
                 set_id=intel_set.set_id, changed=changed)
    if activate is True:
        _dispatch_activation(intel_set)
    return intel_set


@transaction.atomic
def intel_set_delete(*, actor: Any, set_id: str) -> None:
    intel_set = _get_for_manage(actor, set_id, lock=True)
    if intel_set.is_busy:
        raise ConflictError(f"The list is {intel_set.status}; wait until that finishes.")
    intel_set.status = IntelSet.Status.DELETED
    intel_set.slot = None  # gives the quota slot back
    intel_set.upload = None
    intel_set.active_version = None
    intel_set.save()
    intel_set.versions.all().delete()
    audit_record(account=intel_set.account, actor=actor, action="intel.list_delete", target=intel_set.name,
                 set_id=intel_set.set_id)


# --- activation (runs in the Celery task) -----------------------------------------------------


def _read_source(intel_set: IntelSet) -> bytes:
    if intel_set.location:
        return read_s3_object(account=intel_set.account, uri=intel_set.location, region=intel_set.region,
                              expected_bucket_owner=intel_set.expected_bucket_owner)
    if intel_set.upload is None:
        raise ServiceError("The list has no file to activate; upload one.")
    return bytes(intel_set.upload)


def _rejected_json(parsed) -> list[dict[str, Any]]:
    return [{"line": r.line, "reason": r.reason, "text": r.text} for r in parsed.rejected]


def intel_set_activate(*, intel_set_id: int) -> IntelSet | None:
    """Parse and compile the list's current source, then make it the active version atomically.
    Parsing runs outside any transaction (it may take seconds); the switch is one short one."""
    intel_set = IntelSet.objects.select_related("account").filter(id=intel_set_id).first()
    if intel_set is None or intel_set.status != IntelSet.Status.ACTIVATING:
        return intel_set  # deleted or deactivated meanwhile: nothing to do
    started = time.perf_counter()
    attempt: dict[str, Any] = {}
    try:
        data = _read_source(intel_set)
        parsed = parse_list(data, intel_set.format)
        attempt = {"counts": parsed.counts, "entries": parsed.entries, "rejected": _rejected_json(parsed),
                   "rejected_total": parsed.rejected_total}
        limit = max_entries(intel_set.kind)
        if parsed.entries > limit:
            raise ServiceError(f"The list has {parsed.entries:,} entries; the limit is {limit:,}.")
        blob = compile_parsed(parsed).to_bytes()
    except (ListFormatError, ServiceError) as exc:
        message = str(exc) if isinstance(exc, ListFormatError) else exc.message
        return _activation_failed(intel_set_id, message, attempt)
    seconds = time.perf_counter() - started
    with transaction.atomic():
        intel_set = IntelSet.objects.select_for_update().select_related("account").get(id=intel_set_id)
        if intel_set.status != IntelSet.Status.ACTIVATING:
            return intel_set
        number = (intel_set.versions.aggregate(n=Max("number"))["n"] or 0) + 1
        version = IntelSetVersion.objects.create(
            intel_set=intel_set, number=number, source_sha256=hashlib.sha256(data).hexdigest(),
            source_bytes=len(data), compiled=blob, counts=parsed.counts, entries=parsed.entries,
            rejected=attempt["rejected"], rejected_total=parsed.rejected_total, parse_seconds=seconds,
        )
        intel_set.active_version = version
        intel_set.status = IntelSet.Status.ACTIVE
        intel_set.error_details = ""
        intel_set.last_attempt = {**attempt, "seconds": round(seconds, 3)}
        intel_set.save(update_fields=["active_version", "status", "error_details", "last_attempt", "updated_at"])
        # Older versions are never used again; keep only the one in force.
        intel_set.versions.exclude(id=version.id).delete()
        audit_record(account=intel_set.account, actor=None, action="intel.list_activated", target=intel_set.name,
                     set_id=intel_set.set_id, version=number, entries=parsed.entries,
                     rejected=parsed.rejected_total, seconds=round(seconds, 3))
    return intel_set


def _activation_failed(intel_set_id: int, message: str, attempt: dict[str, Any]) -> IntelSet | None:
    with transaction.atomic():
        intel_set = IntelSet.objects.select_for_update().select_related("account").filter(id=intel_set_id).first()
        if intel_set is None or intel_set.status != IntelSet.Status.ACTIVATING:
            return intel_set
        intel_set.status = IntelSet.Status.ERROR
        intel_set.error_details = message
        intel_set.last_attempt = attempt
        intel_set.save(update_fields=["status", "error_details", "last_attempt", "updated_at"])
        audit_record(account=intel_set.account, actor=None, action="intel.list_error", target=intel_set.name,
                     set_id=intel_set.set_id, error=message[:500],
                     previous_version_in_force=intel_set.active_version_id is not None)
    return intel_set


# --- the matcher for detection ------------------------------------------------------------------

_cache_lock = threading.Lock()
# Matchers keyed by their content version, least recently used last out. Accounts with no lists of
# their own (the common case) all share the one built-in-only matcher, whatever their region.
_matchers: OrderedDict[str, CompiledMatcher] = OrderedDict()
_matcher_versions: dict[str, set[int]] = {}
_compiled: dict[int, CompiledList] = {}  # version id -> compiled list (versions are immutable)


def _cache_size() -> int:
    return getattr(settings, "VIGIL_INTEL_MATCHER_CACHE", 32)


def _in_force(manager_id: int, region: str) -> list[tuple[str, str, int]]:
    return list(
        IntelSet.objects.filter(account_id=manager_id, region=region, status__in=IN_FORCE,
                                active_version__isnull=False)
        .order_by("kind", "slot")
        .values_list("kind", "name", "active_version_id")
    )


def matcher_for(*, account_id: int, region: str) -> CompiledMatcher:
    """Built-in feeds + the threat lists and trusted list in force for the account that manages
    `account_id`, in `region`. Cached per process; a small query decides whether to rebuild."""
    from intel.builtin import builtin_sources, builtin_version

    account = Account.objects.filter(id=account_id).first()
    if account is None:
        raise NotFoundError("No such account.")
    manager = access.managing_account(account)
    rows = _in_force(manager.id, region)  # version ids are global, so rows identify the content
    version = hashlib.sha256(repr((rows, builtin_version())).encode()).hexdigest()[:16]
    with _cache_lock:
        cached = _matchers.get(version)
        if cached is not None:
            _matchers.move_to_end(version)
            return cached
    missing = [vid for *_, vid in rows if vid not in _compiled]
    if missing:
        blobs = dict(IntelSetVersion.objects.filter(id__in=missing).values_list("id", "compiled"))
        loaded = {vid: CompiledList.from_bytes(bytes(blob)) for vid, blob in blobs.items()}
        with _cache_lock:
            _compiled.update(loaded)
    sources: list[tuple[IndicatorHit, CompiledList]] = []
    trusted = None
    trusted_name = ""
    complete = True
    for kind, name, vid in rows:
        compiled = _compiled.get(vid)
        if compiled is None:  # replaced between the two queries: use the rest, cache nothing
            complete = False
            continue
        if kind == IntelSet.Kind.TRUSTED:
            trusted, trusted_name = compiled, name
        else:
            sources.append((custom_hit(name), compiled))
    sources.extend(builtin_sources())
    matcher = CompiledMatcher(sources, trusted, version=version, trusted_name=trusted_name)
    if complete:
        with _cache_lock:
            _matchers[version] = matcher
            _matcher_versions[version] = {vid for *_, vid in rows}
            while len(_matchers) > _cache_size():
                old, _ = _matchers.popitem(last=False)
                _matcher_versions.pop(old, None)
            # Compiled lists no cached matcher uses any more are dropped (replaced, deactivated).
            keep = set().union(*_matcher_versions.values())
            for vid in [v for v in _compiled if v not in keep]:
                del _compiled[vid]
    return matcher


def matcher_cache_clear() -> None:
    with _cache_lock:
        _matchers.clear()
        _compiled.clear()
        _matcher_versions.clear()
