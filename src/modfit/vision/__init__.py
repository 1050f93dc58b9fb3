"""Images: ImageFolder datasets, the image victim and its input pipeline. The image triggers (`patch`,
`blend`) live with the text ones in `modfit.attacks`; training, defences, grids and reports are shared."""

from modfit.vision.data import ImageExample, is_image_dataset, load_image_dataset
from modfit.vision.encoding import EncodedImages, ImagePreprocess, encode_images
from modfit.vision.model import ImageClassifier, load_image_classifier

__all__ = [
    "EncodedImages", "ImageClassifier", "ImageExample", "ImagePreprocess", "encode_images",
    "is_image_dataset", "load_image_classifier", "load_image_dataset",
]  # fmt: skip
