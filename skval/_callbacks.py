"""skorch callbacks of the LossVal net."""

from __future__ import annotations

import numpy as np
from skorch.callbacks import Callback


class WeightHistory(Callback):
    """Records a copy of the data weights at the end of every epoch."""

    def initialize(self):
        self.history_ = []
        return self

    def on_epoch_end(self, net, **kwargs):
        self.history_.append(net.criterion_.data_weights.detach().cpu().numpy().copy())

    def as_array(self):
        """Weights of every epoch, shape ``(n_epochs, n_samples)``."""
        return np.asarray(self.history_, dtype=np.float32)
