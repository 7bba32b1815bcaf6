"""Training: the loop (:mod:`~modlib.training.train`), models, data (images, text, offline
stand-ins), profiles (the sizes of every experiment) and the pretrained-model zoo. Depends on
:mod:`modlib.core`."""
