"""Shared test setup: tiny models run fastest (and without thread contention) on one thread."""

import torch

torch.set_num_threads(1)
