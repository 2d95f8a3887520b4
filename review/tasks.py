"""Celery tasks for human review: thin shells over services. Payloads are ids only."""

from __future__ import annotations

from celery import shared_task

from review.services.queues import review_queues_reconcile


@shared_task(acks_late=True)
def sync_review_queues() -> dict[str, str]:
    """The periodic reconcile: every annotation changed since each queue's last sync."""
    return review_queues_reconcile()
