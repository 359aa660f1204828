"""Which files of a mail become ticket attachments: type rules, duplicates, image sizes, safe names."""

import hashlib
import io
import mimetypes
import re
import unicodedata
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import NamedTuple

from mail2ticket.mail.parse import Attachment

# Larger images are refused before decoding: a few bytes can claim billions of pixels.
MAX_IMAGE_PIXELS = 40_000_000
_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|#%&{}^~`\[\]$@=;+!\']+')
_RESERVED = re.compile(r"^(con|prn|aux|nul|com\d|lpt\d)(\..*)?$", re.IGNORECASE)
_SIZE = re.compile(r"^\s*(\d+)\s*[xX×*]\s*(\d+)\s*$")
_MAX_NAME_BYTES = 180
DUPLICATE = "duplicate of an attachment the ticket has"
_RESIZABLE = {"JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF"}


class AttachmentKey(NamedTuple):
    """What makes two attachments the same file for a ticket."""

    filename: str
    content_type: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Rejected:
    attachment: Attachment
    reason: str


def key_of(attachment: Attachment) -> AttachmentKey:
    return AttachmentKey(attachment.filename, attachment.content_type, attachment.size, attachment.sha256)


def safe_filename(name: str, content_type: str = "application/octet-stream") -> str:
    """A file name without paths, control or shell-special characters, usable as an S3 key part."""
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", name)
    name = " ".join(name.split()).strip(" ._")
    if _RESERVED.match(name):
        name = f"_{name}"
    if not name:
        extension = mimetypes.guess_extension(content_type) or ".bin"
        name = f"attachment{extension}"
    if len(name.encode("utf-8")) > _MAX_NAME_BYTES:
        stem, dot, extension = name.rpartition(".")
        if not dot or len(extension) > 10:
            stem, extension = name, ""
        budget = _MAX_NAME_BYTES - len(extension.encode("utf-8")) - 1
        stem = stem.encode("utf-8")[:budget].decode("utf-8", "ignore").rstrip(" ._")
        name = f"{stem}.{extension}" if extension else stem
    return name


@lru_cache(maxsize=64)
def parse_size(value: str) -> tuple[int, int] | None:
    """`"100x20"` as (width, height); None when empty or unreadable."""
    match = _SIZE.match(value or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def select_attachments(
    attachments: Sequence[Attachment],
    excluded_types: Iterable[str],
    minimum: tuple[int, int] | None,
    maximum: tuple[int, int] | None,
    existing: Iterable[AttachmentKey] = (),
) -> tuple[list[Attachment], list[Rejected], list[Attachment]]:
    """The files to keep (renamed safely, images resized), the rejected ones with their reason, and the
    copies: a file the mail holds twice (same content) is one file, inline when either copy is; the copies
    are returned so that their content ids still point at it."""
    excluded = {t.strip().lower() for t in excluded_types}
    seen = set(existing)
    kept: list[Attachment] = []
    rejected: list[Rejected] = []
    copies: list[Attachment] = []
    first_of: dict[str, int] = {}
    for original in attachments:
        name = safe_filename(original.filename, original.content_type)
        attachment = original if name == original.filename else replace(original, filename=name)
        guessed = (mimetypes.guess_type(attachment.filename)[0] or "").lower()
        if attachment.content_type.lower() in excluded or guessed in excluded:
            rejected.append(Rejected(attachment, f"excluded type {guessed or attachment.content_type}"))
            continue
        if attachment.sha256 in first_of:
            index = first_of[attachment.sha256]
            if attachment.inline and not kept[index].inline:
                kept[index] = replace(kept[index], inline=True)
            copies.append(replace(attachment, sha256=kept[index].sha256))
            continue
        if attachment.content_type.startswith("image/") and attachment.content:
            attachment, reason = _fit_image(attachment, minimum, maximum)
            if reason:
                rejected.append(Rejected(attachment, reason))
                continue
        key = key_of(attachment)
        if key in seen:
            rejected.append(Rejected(attachment, DUPLICATE))
            continue
        seen.add(key)
        first_of[original.sha256] = len(kept)
        kept.append(attachment)
    return kept, rejected, copies


def _fit_image(
    attachment: Attachment, minimum: tuple[int, int] | None, maximum: tuple[int, int] | None
) -> tuple[Attachment, str | None]:
    """Drop an image under the minimum size, shrink one over the maximum, refuse a decompression bomb."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(attachment.content))
            width, height = image.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return attachment, "image refused: too many pixels (decompression bomb)"
    except Exception:
        return attachment, None  # not an image Pillow reads: kept as a plain file
    if width * height > MAX_IMAGE_PIXELS:
        return attachment, f"image refused: {width}x{height} pixels is too large to decode"
    if minimum and (width < minimum[0] or height < minimum[1]):
        return attachment, f"image {width}x{height} is under the minimum size {minimum[0]}x{minimum[1]}"
    if maximum and (width > maximum[0] or height > maximum[1]):
        return _resized(attachment, image, maximum), None
    return attachment, None


def _resized(attachment: Attachment, image: object, maximum: tuple[int, int]) -> Attachment:
    from PIL import Image

    assert isinstance(image, Image.Image)
    image_format = image.format or ""
    if image_format not in _RESIZABLE or getattr(image, "n_frames", 1) > 1:
        return attachment  # animated or exotic formats are kept as sent rather than broken
    try:
        image.thumbnail(maximum)
        buffer = io.BytesIO()
        image.save(buffer, format=image_format)
    except Exception:
        return attachment
    content = buffer.getvalue()
    return replace(attachment, content=content, size=len(content), sha256=hashlib.sha256(content).hexdigest())
