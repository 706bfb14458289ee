import numpy as np

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import nn


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        rng = np.random.default_rng(6)
        self.fc1 = nn.Linear(3, 4, dtype=mg.float64, generator=rng)
        self.fc2 = nn.Linear(4, 2, dtype=mg.float64, generator=rng)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


np.set_printoptions(precision=4, suppress=True)
model = MLP()
x = mg.tensor([0.5, -1.0, 2.0], dtype=mg.float64)  # one sample
target = mg.tensor([1.0, 0.0], dtype=mg.float64)
loss = ((model(x) - target) ** 2).sum()

with mg.debug.break_on("Linear"):
    loss.backward()
print("fc1.weight.grad:\n", model.fc1.weight.grad)
