"""A request body -> the uploaded image's bytes: size limits, content types and multipart bodies, each refused with a
4xx status and a one-line message (decoding: emotion.inference.image_bytes)."""

from python_multipart import FormParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header

from emotion.inference.image_bytes import ImageRefused

RAW_TYPES = {"image/jpeg", "image/png", "image/webp", "image/bmp", "application/octet-stream", ""}
MULTIPART, FIELD = "multipart/form-data", b"image"
HOW_TO_SEND = ("send a JPEG or PNG as multipart (curl -F image=@photo.jpg URL) or as the raw body with its type "
               "(curl --data-binary @photo.jpg -H 'Content-Type: image/jpeg' URL)")


def check_size(size: int, limit: int) -> None:
    """ImageRefused (413) when size bytes exceed the limit."""
    if size > limit:
        raise ImageRefused(413, f"upload of {size:,} bytes or more is larger than the limit of {limit:,} bytes "
                                "(serve.max_upload_bytes): send a smaller image")


def image_bytes(body: bytes, content_type: str) -> bytes:
    """The image in a request body: the body itself (a JPEG, PNG, WebP or BMP type, octet-stream or no type), or a
    multipart form's field named image (a file, or the bytes as a plain field)."""
    media_type, params = parse_options_header(content_type)
    media_type = media_type.decode("latin-1").lower()
    if media_type in RAW_TYPES:
        return body
    if media_type != MULTIPART:
        raise ImageRefused(415, f"content type {media_type!r} is not accepted: {HOW_TO_SEND}")
    files, fields = {}, {}
    try:  # files of any size stay in memory: the body is already bounded by serve.max_upload_bytes
        parser = FormParser(MULTIPART, lambda field: fields.setdefault(field.field_name, field.value),
                            lambda file: files.setdefault(file.field_name, file), boundary=params.get(b"boundary"),
                            config={"MAX_MEMORY_FILE_SIZE": float("inf")})
        parser.write(body)
        parser.finalize()
    except FormParserError as err:
        raise ImageRefused(400, f"malformed multipart body ({err}): {HOW_TO_SEND}") from err
    if FIELD in files:
        return files[FIELD].file_object.getvalue()
    if fields.get(FIELD) is not None:  # a client that sent the bytes as a plain field named image
        return fields[FIELD]
    sent = ", ".join(name.decode("latin-1") for name in (*files, *fields)) or "none"
    raise ImageRefused(400, f"the multipart form has no field named image (its fields: {sent}): {HOW_TO_SEND}")
