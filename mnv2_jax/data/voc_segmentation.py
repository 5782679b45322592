"""`voc2012_segmentation`: PASCAL VOC 2012 semantic segmentation from the official tars (TFDS).

Why this exists: tfds's `voc/2012` has the detection boxes only, and the paper's Mobile
DeepLabv3 numbers (Table 7: VOC 2012 val mIoU) need the per-pixel class maps, for training on
DeepLab's "train_aug" set. This builder reads the official archives from the manual dir,
streaming their members with `tarfile` (nothing is extracted to disk), and goes through the
same TFDS -> ArrayRecord path as every other dataset of the project.

Configs:
  official  reads VOCtrainval_11-May-2012.tar only.
            train = ImageSets/Segmentation/train.txt (1,464 images),
            validation = ImageSets/Segmentation/val.txt (1,449 images).
  trainaug  also reads SBD's benchmark.tgz (Hariharan et al. 2011, "Semantic contours from
            inverse detectors": 11,355 VOC 2011 images with class maps in MATLAB files).
            train = "train_aug", the standard 10,582 images:
              (SBD train.txt ∪ SBD val.txt ∪ VOC seg train.txt) minus VOC seg val.txt,
            validation = VOC seg val.txt (1,449), as in `official`.
            Per image of train_aug, the class map is VOC's SegmentationClass PNG when the image
            is in VOC seg train (the official, finer annotation with its 255 boundary band:
            1,464 images), otherwise SBD's `GTcls.Segmentation` (no 255 band: the other 9,118);
            the image is VOC 2012's JPEGImages/<id>.jpg when the tar has it (SBD's images are
            VOC 2011 images, which VOC 2012 contains; the DeepLab-v2 recipe likewise copies
            VOC's JPEGImages over SBD's img/), otherwise SBD's img/<id>.jpg.
            The SBD tgz is gzip: it is read in one streaming pass (no random access); SBD
            images the VOC tar lacks (none expected) are paired with their class maps as
            they arrive, in either order.
            (Not verified here on the real archives, which this machine does not have: the
            counts are the published ones; the rule is tested on miniature archives.)

Features:
  image: uint8 (H, W, 3), the original JPEG bytes, unchanged (no re-encode).
  segmentation: uint8 (H, W, 1), PNG: the class index of every pixel, 0..20 (0 = background,
    `CLASS_NAMES`), 255 = "void" (VOC's object boundaries and difficult regions; ignored by the
    loss and mIoU). VOC's SegmentationClass files are palette PNGs whose *indices* are these
    values; they are decoded as indices (PIL mode "P"), never via the RGB colours.
  image/filename: "<id>.jpg".
Keys are the VOC image ids ("2007_000032"). Every label is checked (values in 0..20 or 255,
same height and width as the JPEG) and a bad file is named in the error.

Registration: importing this module registers the builder, after which
`tfds.builder("voc2012_segmentation/trainaug", data_dir=...)` works.
"""

from __future__ import annotations

import io
import os
import tarfile

import numpy as np
import tensorflow_datasets as tfds

from mnv2_jax.data import digits

VOC_TAR = "VOCtrainval_11-May-2012.tar"
SBD_TGZ = "benchmark.tgz"
VOC_URL = "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/" + VOC_TAR
SBD_URL = ("http://www.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/"
           "semantic_contours/" + SBD_TGZ)
CLASS_NAMES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car",
               "cat", "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person",
               "pottedplant", "sheep", "sofa", "train", "tvmonitor")
NUM_CLASSES = len(CLASS_NAMES)
IGNORE_LABEL = 255
# Split sizes of a build from the official archives (the fake archives of the tests differ).
OFFICIAL_COUNTS = {"official": {"train": 1_464, "validation": 1_449},
                   "trainaug": {"train": 10_582, "validation": 1_449}}
_VOC_LISTS = "ImageSets/Segmentation/"
_SBD_ROOT = "dataset/"


class ArchiveError(ValueError):
  """A missing or malformed archive or member (the message names it and says what is wrong)."""


def required_files(config_name: str) -> tuple[str, ...]:
  """The manual-dir files a config reads."""
  return (VOC_TAR, SBD_TGZ) if config_name == "trainaug" else (VOC_TAR,)


def missing_files(manual_dir: str, config_name: str) -> list[str]:
  return [n for n in required_files(config_name)
          if not os.path.isfile(os.path.join(manual_dir, n))]


def instructions(manual_dir: str) -> str:
  return (f"voc2012_segmentation reads the official archives, unextracted, from the manual dir "
          f"{manual_dir!r} (config.input.manual_dir; default <data_dir>/downloads/manual). "
          f"Config 'official' needs {VOC_TAR} (~2 GB, {VOC_URL}); config 'trainaug' needs it "
          f"and SBD's {SBD_TGZ} (~1.4 GB, {SBD_URL}). Put the files there as downloaded, then "
          "run mnv2_jax.data.prepare(config.input) once, or `tfds build "
          "voc2012_segmentation/<config> --manual_dir=<dir> --file_format=array_record`.")


def check_label(label: np.ndarray, name: str) -> np.ndarray:
  """Raises ArchiveError unless every value is a class index (0..20) or 255."""
  bad = np.setdiff1d(np.unique(label), np.r_[np.arange(NUM_CLASSES), IGNORE_LABEL])
  if bad.size:
    raise ArchiveError(f"{name}: label values {bad.tolist()[:8]} are neither a class index "
                       f"0..{NUM_CLASSES - 1} nor {IGNORE_LABEL}")
  return label


def decode_class_png(data: bytes, name: str) -> np.ndarray:
  """A VOC SegmentationClass PNG -> (H, W) uint8 class indices (the palette *indices*).

  Accepts palette ("P") PNGs, VOC's format, and 8-bit grayscale ("L") ones whose values are
  the indices already (e.g. SegmentationClassAug). An RGB PNG is refused: mapping colours back
  to classes is not this builder's job, and silently doing it wrong would corrupt labels.
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top
  with Image.open(io.BytesIO(data)) as image:
    if image.mode not in ("P", "L"):
      raise ArchiveError(f"{name}: PNG mode {image.mode!r}, expected a palette ('P') or "
                         "grayscale ('L') class-index image")
    label = np.array(image, dtype=np.uint8)  # Mode P: the indices, not the palette colours.
  return check_label(label, name)


def read_sbd_mat(data: bytes, name: str) -> np.ndarray:
  """An SBD cls/<id>.mat (MATLAB v5, struct GTcls) -> (H, W) uint8 `GTcls.Segmentation`."""
  try:
    from scipy import io as sio  # pylint: disable=g-import-not-at-top
  except ImportError as e:  # A dependency of scikit-learn, which the project pins.
    raise ArchiveError(f"{name}: reading SBD's .mat files needs scipy ({e})") from None
  try:
    mat = sio.loadmat(io.BytesIO(data), squeeze_me=True, struct_as_record=False)
    segmentation = mat["GTcls"].Segmentation
  except (sio.matlab.MatReadError, KeyError, AttributeError, ValueError, TypeError,
          NotImplementedError) as e:
    raise ArchiveError(f"{name}: not an SBD class file with GTcls.Segmentation ({e!r})") from None
  segmentation = np.asarray(segmentation)
  if segmentation.ndim != 2:
    raise ArchiveError(f"{name}: GTcls.Segmentation has shape {segmentation.shape}, expected "
                       "(H, W)")
  return check_label(segmentation.astype(np.uint8), name)


def trainaug_ids(voc_train, voc_val, sbd_ids) -> tuple[list[str], list[str]]:
  """The train_aug rule: (ids labelled from VOC, ids labelled from SBD), both sorted.

  train_aug = (SBD train ∪ SBD val ∪ VOC train) - VOC val; VOC's annotation wins where both
  exist (module docstring). On the official files: 1,464 + 9,118 = 10,582 ids.
  """
  voc_train, voc_val = set(voc_train), set(voc_val)
  return sorted(voc_train - voc_val), sorted(set(sbd_ids) - voc_train - voc_val)


def _image_size(jpeg: bytes, name: str) -> tuple[int, int]:
  from PIL import Image  # pylint: disable=g-import-not-at-top
  try:
    with Image.open(io.BytesIO(jpeg)) as image:  # Reads the header only.
      return image.height, image.width
  except OSError as e:
    raise ArchiveError(f"{name}: not a readable image ({e})") from None


def _example(image_id: str, jpeg: bytes, label: np.ndarray, name: str) -> dict:
  size = _image_size(jpeg, name)
  if size != label.shape:
    raise ArchiveError(f"{name}: label is {label.shape[0]}x{label.shape[1]} but image {image_id} "
                       f"is {size[0]}x{size[1]}")
  return {"image": jpeg, "segmentation": digits.encode_png_gray(label),
          "image/filename": f"{image_id}.jpg"}


def _ids(text: bytes) -> list[str]:
  return [line.strip() for line in text.decode("ascii").splitlines() if line.strip()]


class _VocTar:
  """Random access to the members of the (uncompressed) official VOC tar."""

  def __init__(self, path: str):
    self.path = path
    try:
      self._tar = tarfile.open(path, "r:")
    except (OSError, tarfile.TarError) as e:
      raise ArchiveError(f"{path}: not a readable (uncompressed) tar file ({e})") from None
    self._members = {m.name: m for m in self._tar.getmembers() if m.isfile()}
    anchor = _VOC_LISTS + "train.txt"
    roots = [n[:-len(anchor)] for n in self._members if n.endswith("/" + anchor)]
    if len(roots) != 1:
      raise ArchiveError(f"{path}: expected one .../VOC2012/{anchor}, found {len(roots)}; is "
                         f"it {VOC_TAR}?")
    self.root = roots[0]  # "VOCdevkit/VOC2012/" in the official tar.

  def close(self):
    self._tar.close()

  def has(self, relpath: str) -> bool:
    return self.root + relpath in self._members

  def read(self, relpath: str) -> bytes:
    member = self._members.get(self.root + relpath)
    if member is None:
      raise ArchiveError(f"{self.path}: no member {self.root + relpath}")
    return self._tar.extractfile(member).read()

  def split_ids(self, split: str) -> list[str]:
    return _ids(self.read(f"{_VOC_LISTS}{split}.txt"))

  def example(self, image_id: str) -> dict:
    name = f"{self.path}:{self.root}SegmentationClass/{image_id}.png"
    label = decode_class_png(self.read(f"SegmentationClass/{image_id}.png"), name)
    return _example(image_id, self.read(f"JPEGImages/{image_id}.jpg"), label, name)


def _sbd_examples(path: str, voc: _VocTar, exclude: set[str]):
  """Streams benchmark.tgz once; yields (id, example) for every SBD id not in `exclude`.

  After the pass, checks that the class files seen are exactly SBD's train.txt ∪ val.txt and
  that every yielded label found its image; a non-official archive fails the build there.
  """
  lists, mats, pending_labels, pending_images = {}, set(), {}, {}
  try:
    tar = tarfile.open(path, "r|*")
  except (OSError, tarfile.TarError) as e:
    raise ArchiveError(f"{path}: not a readable tar/tgz file ({e})") from None
  with tar:
    for member in tar:
      if not member.isfile():
        continue
      name = member.name
      folder, _, base = name.rpartition("/")
      image_id = base.rsplit(".", 1)[0]
      if folder.endswith("dataset") and base in ("train.txt", "val.txt"):
        lists[base] = _ids(tar.extractfile(member).read())
      elif folder.endswith("dataset/cls") and base.endswith(".mat"):
        mats.add(image_id)
        if image_id in exclude:
          continue
        label = read_sbd_mat(tar.extractfile(member).read(), f"{path}:{name}")
        if voc.has(f"JPEGImages/{image_id}.jpg"):
          yield image_id, _example(image_id, voc.read(f"JPEGImages/{image_id}.jpg"), label,
                                   f"{path}:{name}")
        elif image_id in pending_images:
          yield image_id, _example(image_id, pending_images.pop(image_id), label,
                                   f"{path}:{name}")
        else:
          pending_labels[image_id] = (label, name)
      elif folder.endswith("dataset/img") and base.endswith(".jpg"):
        if image_id in exclude or voc.has(f"JPEGImages/{image_id}.jpg"):
          continue
        jpeg = tar.extractfile(member).read()
        if image_id in pending_labels:
          label, label_name = pending_labels.pop(image_id)
          yield image_id, _example(image_id, jpeg, label, f"{path}:{label_name}")
        else:
          pending_images[image_id] = jpeg  # Dropped at the end if no class file comes.
  if set(lists) != {"train.txt", "val.txt"}:
    raise ArchiveError(f"{path}: no {_SBD_ROOT}train.txt and val.txt found; is it {SBD_TGZ}?")
  listed = set(lists["train.txt"]) | set(lists["val.txt"])
  if mats != listed:
    raise ArchiveError(f"{path}: class files {sorted(mats - listed)[:5]} are not in SBD's "
                       f"train/val lists, and listed ids {sorted(listed - mats)[:5]} have no "
                       "dataset/cls/<id>.mat")
  if pending_labels:
    raise ArchiveError(f"{path}: no image for {sorted(pending_labels)[:5]} in {VOC_TAR}'s "
                       "JPEGImages or SBD's dataset/img")


class Voc2012Segmentation(tfds.core.GeneratorBasedBuilder):
  """PASCAL VOC 2012 segmentation (+ SBD train_aug) from the official archives."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "official (1,464 / 1,449) and trainaug (10,582 / 1,449)."}
  BUILDER_CONFIGS = [
      tfds.core.BuilderConfig(
          name="official", description="VOC 2012 seg train (1,464) / val (1,449)."),
      tfds.core.BuilderConfig(
          name="trainaug", description="DeepLab's train_aug: (SBD train+val ∪ VOC train) - "
          "VOC val (10,582) / VOC val (1,449)."),
  ]
  MANUAL_DOWNLOAD_INSTRUCTIONS = instructions("<data_dir>/downloads/manual")

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        description=("PASCAL VOC 2012 semantic segmentation: 21 classes (background + 20), "
                     "255 = void. Class maps decoded from the palette indices."),
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(None, None, 3), dtype=np.uint8,
                                         encoding_format="jpeg"),
            "segmentation": tfds.features.Image(shape=(None, None, 1), dtype=np.uint8,
                                                encoding_format="png"),
            "image/filename": tfds.features.Text(),
        }),
        supervised_keys=("image", "segmentation"),
        homepage="http://host.robots.ox.ac.uk/pascal/VOC/voc2012/",
        citation=("@misc{pascal-voc-2012, author={Everingham, M. and Van Gool, L. and "
                  "Williams, C. K. I. and Winn, J. and Zisserman, A.}, title={The PASCAL "
                  "Visual Object Classes Challenge 2012 (VOC2012) Results}, year={2012}}\n"
                  "@inproceedings{hariharan2011semantic, title={Semantic contours from inverse "
                  "detectors}, author={Hariharan, Bharath and Arbel{\\'a}ez, Pablo and "
                  "Bourdev, Lubomir and Maji, Subhransu and Malik, Jitendra}, "
                  "booktitle={ICCV}, year={2011}}"),
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    manual_dir = os.fspath(dl_manager.manual_dir)
    missing = missing_files(manual_dir, self.builder_config.name)
    if missing:
      raise ArchiveError(f"missing {missing} in the manual dir {manual_dir!r}. "
                         + instructions(manual_dir))
    voc_path = os.path.join(manual_dir, VOC_TAR)
    sbd_path = (os.path.join(manual_dir, SBD_TGZ) if self.builder_config.name == "trainaug"
                else None)
    return {"train": self._generate_examples(voc_path, "train", sbd_path),
            "validation": self._generate_examples(voc_path, "val")}

  def _generate_examples(self, voc_path: str, split: str, sbd_path: str | None = None):
    """VOC's `split` list; with `sbd_path` (trainaug train), the train_aug rule instead."""
    voc = _VocTar(voc_path)
    try:
      voc_train, voc_val = voc.split_ids("train"), voc.split_ids("val")
      if sbd_path is None:
        ids = voc.split_ids(split)
      else:  # The VOC-labelled part of the rule (trainaug_ids); the SBD part streams below.
        ids = sorted(set(voc_train) - set(voc_val))
      for image_id in ids:
        yield image_id, voc.example(image_id)
      if sbd_path is not None:
        yield from _sbd_examples(sbd_path, voc, set(voc_train) | set(voc_val))
    finally:
      voc.close()
