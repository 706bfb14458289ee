import numpy as np

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import nn

rng = np.random.default_rng(0)
fc1 = nn.Linear(3, 4, dtype=mg.float64, generator=rng)
x = mg.tensor(rng.standard_normal((2, 3)))

with mg.detect_anomaly():
    h = F.relu(fc1(x))
    features = h.sqrt()  # sqrt(0) where the ReLU is off: its gradient is infinite
    loss = features.sum()
    loss.backward()
