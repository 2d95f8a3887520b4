"""A frozen golden-set version's items as a sample a labeling run can label.

The sample is a census of the version's items: every item once, inclusion probability 1,
method ``uniform`` with the sample size equal to the frame size (a uniform sample of the whole
frame is the frame). It is named ``golden:NAME@N``, records the version's digest, and is made
once: a second call returns it. Registered as the ``golden_set`` item-set provider of
:mod:`runs.item_sets` (``run create --golden-set NAME[@N]``).
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from content.models import Sample, SampleMember, SampleMethod
from goldsets.models import GoldenItem, GoldenSetVersion, GoldenSetVersionStatus
from goldsets.selectors import goldset_version_get
from touchstone.audit import audit_event_record
from touchstone.errors import ApplicationError, InvalidStateTransition
from touchstone.roles import permission_require


class GoldenSampleInvalid(ApplicationError):
    code = "invalid_golden_set"


def goldset_version_sample_name(version: GoldenSetVersion) -> str:
    return f"golden:{version.golden_set.name}@{version.number}"


@transaction.atomic(durable=True)
def goldset_version_sample(*, version: GoldenSetVersion, acting_user: AbstractBaseUser | None) -> Sample:
    """The census sample of a frozen golden-set version's items (made on first call).

    Raises PermissionDenied without ``content.add_sample``, InvalidStateTransition when the
    version is not frozen, GoldenSampleInvalid when a sample of that name holds other items."""
    permission_require(acting_user, "content.add_sample", to="make a sample of a golden set's items")
    if version.status != GoldenSetVersionStatus.FROZEN:
        raise InvalidStateTransition(f"golden-set version {version} is {version.status}: only a frozen "
                                     "version's items can be labeled")
    name = goldset_version_sample_name(version)
    existing = Sample.objects.filter(name=name).first()
    if existing is not None:
        if existing.parameters.get("digest") != version.digest:
            raise GoldenSampleInvalid(f"a sample named {name!r} exists but was not made from {version} "
                                      f"(digest {existing.parameters.get('digest')!r}, not {version.digest!r})")
        return existing
    item_ids = list(GoldenItem.objects.filter(version=version).order_by("position").values_list("item_id", flat=True))
    if not item_ids:
        raise GoldenSampleInvalid(f"golden-set version {version} has no items")
    n = len(item_ids)
    sample = Sample.objects.create(
        name=name, method=SampleMethod.UNIFORM, seed=0, frame_size=n, requested_size=n, size=n,
        expected_size=float(n), strata={},
        parameters={"census": True, "golden_set": version.golden_set.name, "version": version.number,
                    "digest": version.digest},
        frame_filter={"golden_set_version": str(version), "digest": version.digest}, created_by=acting_user)
    SampleMember.objects.bulk_create(
        (SampleMember(sample=sample, item_id=item_id, inclusion_probability=1.0) for item_id in item_ids),
        batch_size=1000)
    audit_event_record(actor=acting_user, event_type="sample.created", obj=sample, details={
        "method": "census of a golden-set version", "size": n, "golden_set_version": str(version),
        "digest": version.digest})
    return sample


def golden_set_item_set(ref: str, acting_user: AbstractBaseUser | None) -> Sample:
    """``NAME[@N]`` (default N: the newest frozen version) → its census sample."""
    name, _, number = ref.partition("@")
    if number and not number.isdigit():
        raise GoldenSampleInvalid(f"--golden-set {ref!r}: the version after '@' must be a number")
    version = goldset_version_get(name=name, number=int(number) if number else None)
    return goldset_version_sample(version=version, acting_user=acting_user)
