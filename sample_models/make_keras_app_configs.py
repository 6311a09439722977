"""Write the architecture (config.json only, no weights) of a few keras.applications models to
tests/data/keras_apps/NAME/ for the published-anchor tests. Needs Keras (any backend)::

    KERAS_BACKEND=torch python sample_models/make_keras_app_configs.py [NAME ...]

(all of them without names).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import keras

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "keras_apps"
APPS = {
    "resnet50": (keras.applications.ResNet50, (224, 224, 3)),
    "vgg16": (keras.applications.VGG16, (224, 224, 3)),
    "inception_v3": (keras.applications.InceptionV3, (299, 299, 3)),
    "convnext_tiny": (keras.applications.ConvNeXtTiny, (224, 224, 3)),
}

if __name__ == "__main__":
    for name in sys.argv[1:] or list(APPS):
        build, shape = APPS[name]
        model = build(weights=None, include_top=False, input_shape=shape)
        folder = OUT / name
        os.makedirs(folder, exist_ok=True)
        config = keras.saving.serialize_keras_object(model)
        (folder / "config.json").write_text(json.dumps(config))
        (folder / "metadata.json").write_text(json.dumps({"keras_version": keras.__version__}))
        print("wrote", folder)
