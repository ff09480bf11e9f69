"""An encoded image (JPEG, PNG, WebP or BMP bytes, as uploaded or base64-decoded) -> an RGB array, in memory, turned
upright as its EXIF says; what cannot be labelled is refused with the HTTP status that says why and a one-line
message."""

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from emotion.errors import UserError, first_line

FORMATS = {"JPEG", "MPO", "PNG", "WEBP", "BMP"}  # MPO: what Pillow calls many phones' JPEGs
ORIENTATION = 0x0112  # the EXIF tag that says how to turn the image upright
# Pillow warns of images over its own limit when it reads their header; the limit given to decode() refuses them
# before anything is decoded, so the warning says nothing new
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


class ImageRefused(UserError):
    """An upload the server will not label; status is the HTTP status that says why (400, 413, 415)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


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
    except Image.DecompressionBombError as err:  # a header that declares more pixels than Pillow ever decodes
        raise ImageRefused(413, f"the image declares more pixels than the {max_pixels / 1e6:.1f} million allowed "
                                f"(serve.max_image_pixels; {first_line(err)}): send a smaller image") from err
    except UnidentifiedImageError as err:
        raise ImageRefused(400, f"the upload is not an image ({len(data):,} bytes that no image reader knows): send "
                                "a JPEG, PNG, WebP or BMP") from err
    except OSError as err:  # Pillow's word for a file that ends early or is corrupt inside
        raise ImageRefused(400, f"cannot decode the image ({err}): it is truncated or corrupt; send the whole "
                                "file") from err
