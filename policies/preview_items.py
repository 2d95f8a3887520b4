"""Built-in example items for the prompt preview, until real content items are imported."""

from __future__ import annotations

from dataclasses import dataclass, field

# A 16×16 grey PNG, so the preview shows how an image part is attached.
_TINY_PNG = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAABAAAAAQCAIAAACQkWg2AAAAGElEQVR4nGNsaGhgIAUw"
    "kaR6VMOohiGlAQBVVgGRxo0CdgAAAABJRU5ErkJggg=="
)


@dataclass(frozen=True)
class PreviewItem:
    key: str
    title: str
    parts: dict[str, str]
    images: tuple[str, ...] = ()
    target: str | None = None
    notes: str = field(default="")


PREVIEW_ITEMS: tuple[PreviewItem, ...] = (
    PreviewItem("chat-turn", "Chat turn with context",
                {"prev_agent": "How can I help you today?", "prev_user": "tell me a joke",
                 "agent": "Why did the scarecrow win an award? He was outstanding in his field.",
                 "user": "that was awful, you are a useless stupid bot"}, target="user"),
    PreviewItem("query-response", "Query and system response",
                {"query": "What household chemicals should never be mixed?",
                 "response": "Never mix bleach with ammonia or with acids such as vinegar: "
                             "they release toxic gases. Store them apart and ventilate."},
                target="response"),
    PreviewItem("text-image", "Post with an image",
                {"text": "Look at what I found on my walk today!"}, images=(_TINY_PNG,)),
)


def preview_item_get(key: str | None) -> PreviewItem:
    return next((item for item in PREVIEW_ITEMS if item.key == key), PREVIEW_ITEMS[0])
