"""Safe image loading: real encodings of the astronaut photo, and every way a file can be bad."""

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_fer.imageio import ImageError, load_image, max_file_bytes, read_header

ASTRONAUT = Path(__file__).resolve().parents[1] / "edge_fer" / "assets" / "astronaut.jpg"


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    image = cv2.imread(str(ASTRONAUT))
    return np.ascontiguousarray(image[40:240, 100:400])  # 300x200, not square, so width/height cannot swap


def encode(image: np.ndarray, ext: str) -> bytes:
    ok, buf = cv2.imencode(ext, image)
    assert ok
    return buf.tobytes()


@pytest.mark.parametrize("ext", [".jpg", ".png", ".bmp", ".webp", ".gif"])
def test_header_reports_size_of_real_encodings(photo, ext):
    header = read_header(encode(photo, ext))
    assert (header.width, header.height, header.complete) == (300, 200, True)


@pytest.mark.parametrize("ext", [".png", ".bmp", ".webp", ".tiff"])
def test_lossless_files_load_exactly(tmp_path, photo, ext):
    path = tmp_path / f"photo{ext}"
    path.write_bytes(encode(photo, ext))
    np.testing.assert_array_equal(load_image(path), photo)


def test_jpeg_loads_like_opencv_and_unicode_names_work(tmp_path):
    path = tmp_path / "астронавт.jpg"
    path.write_bytes(ASTRONAUT.read_bytes())
    image = load_image(path)
    assert image.shape == (512, 512, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image, cv2.imread(str(ASTRONAUT)))


def test_webp_lossy_header(photo):
    _, buf = cv2.imencode(".webp", photo, [cv2.IMWRITE_WEBP_QUALITY, 80])
    header = read_header(buf.tobytes())
    assert (header.format, header.width, header.height) == ("WebP", 300, 200)


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match=r"nope\.jpg: no such file"):
        load_image(tmp_path / "nope.jpg")


def test_directory(tmp_path):
    with pytest.raises(ImageError, match="is a directory"):
        load_image(tmp_path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(ImageError, match=r"empty\.png: empty file"):
        load_image(path)


@pytest.mark.parametrize("ext", [".jpg", ".png", ".webp"])
@pytest.mark.parametrize("keep", [0.3, 0.97])
def test_truncated_files_are_refused(tmp_path, photo, ext, keep):
    data = encode(photo, ext)
    path = tmp_path / f"cut{ext}"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ImageError, match=r"cut\.\w+: truncated"):
        load_image(path)


def test_text_file_is_not_an_image(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("these are not pixels\n" * 20)
    with pytest.raises(ImageError, match=r"notes\.jpg: not an image"):
        load_image(path)


def test_corrupt_jpeg_body(tmp_path, photo):
    data = bytearray(encode(photo, ".jpg"))
    start = data.find(b"\xff\xda")  # keep the headers, wreck the tables and scan header
    data[start - 200 : start + 40] = b"\x00" * 240
    path = tmp_path / "corrupt.jpg"
    path.write_bytes(bytes(data))
    with pytest.raises(ImageError, match=r"corrupt\.jpg: corrupt JPEG"):
        load_image(path)


def test_decompression_bomb_is_refused_from_the_header(tmp_path, photo):
    data = bytearray(encode(photo, ".png"))
    data[16:24] = (100_000).to_bytes(4, "big") + (100_000).to_bytes(4, "big")  # IHDR claims 10 gigapixels
    path = tmp_path / "bomb.png"
    path.write_bytes(bytes(data))
    with pytest.raises(ImageError, match=r"bomb\.png: 100000x100000 is 10000\.0 megapixels, over the limit of 40"):
        load_image(path)


@pytest.mark.parametrize("ext", [".jpg", ".png", ".tiff"])
def test_pixel_limit_is_configurable(tmp_path, photo, ext):
    path = tmp_path / f"photo{ext}"
    path.write_bytes(encode(photo, ext))
    assert load_image(path, max_pixels=60_000).shape == (200, 300, 3)
    with pytest.raises(ImageError, match=r"300x200 is 0\.1 megapixels"):
        load_image(path, max_pixels=59_999)


def test_prepare_opencv_sets_the_second_guard_in_a_fresh_process(tmp_path, photo):
    """OpenCV reads its pixel limit when it loads; formats without a header parse (TIFF) hit that guard."""
    import subprocess
    import sys

    path = tmp_path / "photo.tiff"
    path.write_bytes(encode(photo, ".tiff"))
    code = (
        "import sys\n"
        "from edge_fer.imageio import ImageError, load_image, prepare_opencv\n"
        "prepare_opencv(50_000)\n"
        "try:\n"
        "    load_image(sys.argv[1], max_pixels=10**9)\n"
        "except ImageError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == f"{path}: over OpenCV's pixel limit; raise --max-pixels to accept it"
    assert result.stderr == ""


def sparse_4gb(path: Path) -> None:
    with open(path, "wb") as f:
        f.truncate(4 << 30)


@pytest.mark.parametrize(
    "make, words",
    [
        (os.mkfifo, "is a FIFO (named pipe), not a regular file; pass the image itself"),
        (lambda p: p.symlink_to("/dev/zero"), "is a character device, not a regular file; pass the image itself"),
        (sparse_4gb, "is 4.0 GB, over the limit of 153.6 MB for images; check that it is the right file"),
    ],
    ids=["fifo", "link-to-dev-zero", "sparse-4GB"],
)
def test_what_is_not_an_image_file_is_refused_before_reading(tmp_path, make, words):
    """These hung (a FIFO), read until memory ran out (/dev/zero) or read 4.3 GB for 27 s (a sparse file)."""
    from tests.test_readfile import within_deadline

    path = tmp_path / "photo.png"
    make(path)
    with pytest.raises(ImageError) as caught:
        within_deadline(load_image, path)
    assert str(caught.value) == f"{path}: {words}"


def test_the_file_size_limit_follows_the_pixel_limit(tmp_path, photo):
    """A file bigger than any acceptable image could be is not read: 4 bytes a pixel plus 1 MiB of metadata."""
    path = tmp_path / "photo.bmp"
    path.write_bytes(encode(photo, ".bmp"))  # 300x200x3 + 54 header bytes
    assert max_file_bytes(60_000) == 240_000 + (1 << 20)
    assert load_image(path, max_pixels=60_000).shape == (200, 300, 3)
    with open(path, "ab") as f:
        f.truncate(max_file_bytes(60_000) + 1)
    with pytest.raises(ImageError, match=r"photo\.bmp: is 1\.2 MB, over the limit of 1\.2 MB for images"):
        load_image(path, max_pixels=60_000)


def test_dash_reads_standard_input(photo):
    import subprocess
    import sys

    code = "from edge_fer.imageio import load_image\nprint(load_image('-').shape)"
    data = encode(photo, ".png")
    result = subprocess.run([sys.executable, "-c", code], input=data, capture_output=True, timeout=60)
    assert result.stdout.decode().strip() == "(200, 300, 3)"
