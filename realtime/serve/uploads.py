"""Uploaded bytes -> an RGB image, in memory: size limits, content types, multipart bodies, undecodable or truncated
files, each refused with a 4xx status and a one-line message."""

import io

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from python_multipart import FormParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header

from emotion.errors import UserError

FORMATS = {"JPEG", "MPO", "PNG", "WEBP", "BMP"}  # MPO: what Pillow calls many phones' JPEGs
ORIENTATION = 0x0112  # the EXIF tag that says how to turn the image upright
RAW_TYPES = {"image/jpeg", "image/png", "image/webp", "image/bmp", "application/octet-stream", ""}
MULTIPART, FIELD = "multipart/form-data", b"image"
HOW_TO_SEND = ("send a JPEG or PNG as multipart (curl -F image=@photo.jpg URL) or as the raw body with its type "
               "(curl --data-binary @photo.jpg -H 'Content-Type: image/jpeg' URL)")


class ImageRefused(UserError):
    """An upload the server will not label; status is the HTTP status that says why (400, 413, 415)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def check_size(size: int, limit: int) -> None:
    """ImageRefused (413) when size bytes exceed the limit."""
    if size > limit:
        raise ImageRefused(413, f"upload of {size:,} bytes or more is larger than the limit of {limit:,} bytes "
                                "(serve.max_upload_bytes): send a smaller image")


def image_bytes(body: bytes, content_type: str) -> bytes:
    """The image in a request body: the body itself (a JPEG, PNG, WebP or BMP type, octet-stream or no type), or a
    multipart form's first file (else its field named image)."""
    media_type, params = parse_options_header(content_type)
    media_type = media_type.decode("latin-1").lower()
    if media_type in RAW_TYPES:
        return body
    if media_type != MULTIPART:
        raise ImageRefused(415, f"content type {media_type!r} is not accepted: {HOW_TO_SEND}")
    files, fields = [], {}
    try:  # files of any size stay in memory: the body is already bounded by serve.max_upload_bytes
        parser = FormParser(MULTIPART, lambda field: fields.setdefault(field.field_name, field.value), files.append,
                            boundary=params.get(b"boundary"), config={"MAX_MEMORY_FILE_SIZE": float("inf")})
        parser.write(body)
        parser.finalize()
    except FormParserError as err:
        raise ImageRefused(400, f"malformed multipart body ({err}): {HOW_TO_SEND}") from err
    if files:
        return files[0].file_object.getvalue()
    if fields.get(FIELD) is not None:  # a client that sent the bytes as a plain field named image
        return fields[FIELD]
    raise ImageRefused(400, f"the multipart form holds no file and no field named image: {HOW_TO_SEND}")


def decode(data: bytes, max_pixels: int) -> np.ndarray:
    """An RGB uint8 array (H, W, 3) of an uploaded JPEG, PNG, WebP or BMP, turned upright as its EXIF says."""
    if not data:
        raise ImageRefused(400, "the upload is empty (0 bytes): send the bytes of a JPEG, PNG, WebP or BMP image")
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in FORMATS:
                raise ImageRefused(415, f"{image.format} images are not supported: send a JPEG, PNG, WebP or BMP")
            width, height = image.size  # from the header: nothing is decoded yet
            if width * height > max_pixels:
                raise ImageRefused(413, f"the image is {width}x{height} ({width * height / 1e6:.1f} megapixels), more "
                                        f"than the {max_pixels / 1e6:.1f} allowed (serve.max_image_pixels): send a "
                                        "smaller image")
            if image.getexif().get(ORIENTATION, 1) != 1:  # exif_transpose copies the image even when upright
                image = ImageOps.exif_transpose(image)
            return np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
    except UnidentifiedImageError as err:
        raise ImageRefused(400, f"the upload is not an image ({len(data):,} bytes that no image reader knows): send "
                                "a JPEG, PNG, WebP or BMP") from err
    except OSError as err:  # Pillow's word for a file that ends early or is corrupt inside
        raise ImageRefused(400, f"cannot decode the image ({err}): it is truncated or corrupt; send the whole "
                                "file") from err
