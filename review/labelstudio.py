"""The Label Studio boundary: every call Touchstone makes to Label Studio goes through here,
through ``label-studio-sdk`` 2.x, with an explicit timeout.

Errors: ``LabelStudioUnavailable`` when the server cannot be reached or answers 5xx (the
caller retries with backoff and records why), ``ProjectMissing`` when a queue's project is
gone (deleted by hand), ``LabelStudioError`` for the rest.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from django.conf import settings
from label_studio_sdk import LabelStudio
from label_studio_sdk.core.api_error import ApiError

from touchstone.errors import ApplicationError

PAGE_SIZE = 500
IMPORT_BATCH = 500  # measured: ~2,000 tasks/s in batches of 500 on Community Edition


class LabelStudioError(ApplicationError):
    code = "label_studio_error"
    status = 502


class LabelStudioUnavailable(LabelStudioError):
    code = "label_studio_unavailable"
    status = 503


class ProjectMissing(LabelStudioError):
    code = "label_studio_project_missing"
    status = 409


class LabelStudioNotConfigured(ApplicationError):
    code = "label_studio_not_configured"
    status = 503


@dataclass(frozen=True)
class TaskAnnotations:
    task_id: int
    updated_at: datetime | None
    annotations: list[dict[str, Any]]
    data: dict[str, Any]


class LabelStudioClient:
    def __init__(self, base_url: str, token: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.sdk = LabelStudio(base_url=self.base_url, api_key=token, timeout=timeout)
        self.options = {"timeout_in_seconds": int(timeout), "max_retries": 0}  # we retry, with a record

    def _call(self, what: str, function: Any, *args: Any, project_id: int | None = None, **kwargs: Any) -> Any:
        try:
            return function(*args, request_options=self.options, **kwargs)
        except httpx.HTTPError as exc:  # refused, reset, timed out
            raise LabelStudioUnavailable(f"Label Studio at {self.base_url} is unreachable ({what}): {exc}") from exc
        except ApiError as exc:
            if exc.status_code and exc.status_code >= 500:
                raise LabelStudioUnavailable(f"Label Studio answered {exc.status_code} ({what})") from exc
            if exc.status_code == 404 and project_id is not None:
                raise ProjectMissing(f"Label Studio project {project_id} does not exist (deleted by hand?); "
                                     "recreate the queue's project with `queue recreate`") from exc
            raise LabelStudioError(f"Label Studio refused {what}: HTTP {exc.status_code}: {exc.body}") from exc

    def health(self) -> bool:
        try:
            return httpx.get(f"{self.base_url}/health", timeout=5).json().get("status") == "UP"
        except (httpx.HTTPError, ValueError):
            return False

    def project_create(self, *, title: str, label_config: str, instructions: str, maximum_annotations: int,
                       show_predictions: bool = False) -> int:
        project = self._call("creating a project", self.sdk.projects.create, title=title[:50],
                             label_config=label_config, expert_instruction=instructions, show_instruction=True,
                             maximum_annotations=maximum_annotations, show_skip_button=False,
                             show_collab_predictions=show_predictions, show_annotation_history=False)
        return int(project.id)

    def project_get(self, project_id: int) -> Any:
        return self._call("reading a project", self.sdk.projects.get, project_id, project_id=project_id)

    def project_delete(self, project_id: int) -> None:
        self._call("deleting a project", self.sdk.projects.delete, project_id, project_id=project_id)

    def tasks_import(self, project_id: int, tasks: Sequence[dict[str, Any]]) -> list[int]:
        """Import tasks; returns their ids in the order given."""
        response = self._call("importing tasks", self.sdk.projects.import_tasks, project_id, request=list(tasks),
                              return_task_ids=True, project_id=project_id)
        ids = list(getattr(response, "task_ids", None) or [])
        if len(ids) != len(tasks):
            raise LabelStudioError(f"imported {len(tasks)} tasks but Label Studio returned {len(ids)} ids")
        return [int(i) for i in ids]

    def _task_pages(self, project_id: int, what: str, **params: Any) -> Iterator[Any]:
        """Every task of the project, a page at a time. Stops at the total Label Studio reports:
        the SDK's own pager asks for one page past the end, which Label Studio logs as an error."""
        page, seen = 1, 0
        while True:
            response = self._call(what, self.sdk.tasks.list, project=project_id, page=page, page_size=PAGE_SIZE,
                                  project_id=project_id, **params)
            tasks = list(response.items or [])
            yield from tasks
            seen += len(tasks)
            total = getattr(response.response, "total", None)
            if not tasks or (total is not None and seen >= total):
                return
            page += 1

    def tasks_with_annotations(self, project_id: int, updated_after: datetime | None = None
                               ) -> Iterator[TaskAnnotations]:
        """Every task (with its annotations) changed after ``updated_after``; any annotation
        change updates its task. Filters on the task list, which Community Edition honours."""
        query = None
        if updated_after is not None:
            query = json.dumps({"filters": {"conjunction": "and", "items": [{
                "filter": "filter:tasks:updated_at", "operator": "greater", "type": "Datetime",
                # The only format its filter parses: UTC with milliseconds and a Z.
                "value": updated_after.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"}]}})
        # (``include`` would be three times faster on Label Studio's side, but it cuts each
        # annotation down to its id and time.)
        for task in self._task_pages(project_id, "listing tasks", fields="all", query=query):
            annotations = [a if isinstance(a, dict) else a.dict() for a in (task.annotations or [])]
            yield TaskAnnotations(int(task.id), getattr(task, "updated_at", None), annotations,
                                  dict(task.data or {}))

    def tasks_data(self, project_id: int) -> Iterator[tuple[int, dict[str, Any]]]:
        """Every task's id and data, without annotations."""
        for task in self._task_pages(project_id, "listing task data", include="id,data"):
            yield int(task.id), dict(task.data or {})

    def task_update_data(self, task_id: int, data: dict[str, Any]) -> None:
        """Replace a task's data (Label Studio replaces it whole; annotations stay)."""
        self._call("updating a task's data", self.sdk.tasks.update, str(task_id), data=data)

    def task_set_overlap(self, task_id: int, *, overlap: int) -> None:
        """How many annotations the task collects before Community Edition stops serving it.
        Label Studio does not recount a task's "labeled" flag when its overlap changes, so it is
        sent along, counted as Label Studio counts it (distinct annotators of finished
        annotations): a lowered overlap then shows the task done in its counter too."""
        task = self._call("reading a task", self.sdk.tasks.get, str(task_id))
        annotators = set()
        for annotation in task.annotations or []:
            annotation = annotation if isinstance(annotation, dict) else annotation.dict()
            user = annotation.get("completed_by")
            if not annotation.get("was_cancelled") and annotation.get("result") is not None and user:
                annotators.add(user if isinstance(user, int) else user.get("id"))
        self._call("updating a task", self.sdk.tasks.update, str(task_id), overlap=overlap,
                   is_labeled=len(annotators) >= overlap)

    def annotation_create(self, task_id: int, result: list[dict], *, completed_by: int | None = None,
                          lead_time: float | None = None) -> int:
        kwargs: dict[str, Any] = {"result": result}
        if completed_by is not None:
            kwargs["completed_by"] = completed_by
        if lead_time is not None:
            kwargs["lead_time"] = lead_time
        annotation = self._call("creating an annotation", self.sdk.annotations.create, task_id, **kwargs)
        return int(annotation.id)

    def webhook_create(self, *, project_id: int, url: str, secret_header: str, secret: str) -> int:
        webhook = self._call("creating a webhook", self.sdk.webhooks.create, url=url, project=project_id,
                             send_payload=True, send_for_all_actions=False, is_active=True,
                             headers={secret_header: secret},
                             actions=["ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_DELETED"],
                             project_id=project_id)
        return int(webhook.id)

    def annotation_update(self, annotation_id: int, result: list[dict]) -> None:
        self._call("updating an annotation", self.sdk.annotations.update, annotation_id, result=result)

    def user_create(self, *, email: str, name: str) -> int:
        """A Label Studio user (a labeler's account; simulated labelers in the demo and tests)."""
        user = self._call("creating a user", self.sdk.users.create, username=email.split("@")[0], email=email,
                          first_name=name)
        return int(user.id)


def label_studio_client() -> LabelStudioClient:
    """The client for the configured server (LABEL_STUDIO_URL, LABEL_STUDIO_API_TOKEN)."""
    if not settings.LABEL_STUDIO_API_TOKEN:
        raise LabelStudioNotConfigured("LABEL_STUDIO_API_TOKEN is not set: Touchstone cannot reach Label Studio")
    return LabelStudioClient(settings.LABEL_STUDIO_URL, settings.LABEL_STUDIO_API_TOKEN)
