"""The lectures' training strategies, each built on the layers, optimisers and training loop
below it (one page each in docs/strategies/):

- ``transfer``     transfer learning: freeze, replace the head, per-part learning rates
- ``multitask``    multi-task learning: a shared trunk, one head and loss per task
- ``curriculum``   curriculum learning: easy examples first, with a pacing function
- ``distill``      knowledge distillation and FitNets hints
- ``adversarial``  FGSM adversarial examples and adversarial training
- ``tune``         hyper-parameter search on Optuna
- ``pretrain``     greedy layer-wise (denoising) autoencoder pre-training

Import the one you use (``from minigrad.strategies import transfer``); nothing here is loaded
with ``import minigrad``. The paths they had before this package (``minigrad.transfer``,
``minigrad.data.curriculum``, ...) still import the same modules (see ``minigrad/_moved.py``).
"""
