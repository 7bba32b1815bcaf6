"""Analysis of trained models: cluster ablation and specialization, attribution patching, circuits,
the Fourier view of modular addition, and language models. Depends on :mod:`modlib.core` and
:mod:`modlib.training`."""
