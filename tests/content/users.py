"""A user allowed to draw samples (``content.add_sample``), for tests whose set-up needs a sample."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group


def sampler():
    """The labeling-ops user "sampler" (made on first use)."""
    user, made = get_user_model().objects.get_or_create(username="sampler", defaults={"is_staff": True})
    if made:
        user.groups.add(Group.objects.get(name="labeling ops"))
    return user
