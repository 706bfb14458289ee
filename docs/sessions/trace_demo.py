import numpy as np

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import nn

rng = np.random.default_rng(0)
model = nn.Sequential(
    nn.Linear(3, 8, dtype=mg.float64, generator=rng),
    nn.ReLU(),
    nn.Linear(8, 2, dtype=mg.float64, generator=rng),
)
x = mg.tensor(rng.standard_normal((4, 3)))
target = mg.tensor([0, 1, 1, 0])
loss = F.cross_entropy(model(x), target)

with mg.debug.trace() as t:
    loss.backward()
print(t)
